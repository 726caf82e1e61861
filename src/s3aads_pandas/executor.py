"""The parallel executor: bounded worker threads that share one client, and stop on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(func: Callable[[T], R], items: Iterable[T], max_workers: int) -> list[R]:
    """``func`` over ``items`` on at most ``max_workers`` threads; results in input order.

    A single item runs on the calling thread. The first exception (KeyboardInterrupt included)
    cancels the work not yet started and propagates once the running calls have returned.
    """
    work = list(items)
    if len(work) <= 1 or max_workers <= 1:
        return [func(item) for item in work]
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(work)), thread_name_prefix="s3aads")
    try:
        futures = [pool.submit(func, item) for item in work]
        for future in as_completed(futures):
            future.result()
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
