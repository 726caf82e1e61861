"""The parallel executor: per-item errors, progress, and a prompt stop on Ctrl-C, for items run
on bounded worker threads (:func:`run_each`: no thread is left running when a call returns or
raises) or as tasks on the package's event loop (:func:`run_each_async`, as many in flight as
an adaptive limiter says)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from s3aads_pandas.errors import TransferInterrupted, failure_reason
from s3aads_pandas.progress import progress_bar
from s3aads_pandas.storage import loop
from s3aads_pandas.storage.retry import RampingLimiter, interrupted
from s3aads_pandas.storage.usage import submit

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)

#: Transfers of fewer items than this show no progress bar unless asked to.
PROGRESS_MIN_ITEMS = 200
_THREAD_PREFIX = "s3aads"


@dataclasses.dataclass
class BatchResult(Generic[R]):
    """What :func:`run_each` did: a result per item (None where it failed) and the failures."""

    results: list[R | None]
    failures: dict[str, str]


def run_each(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    label: Callable[[T], str],
    max_workers: int,
    progress: bool | None = None,
    desc: str = "",
) -> BatchResult[R]:
    """``func`` over every item on a bounded pool; a failing item is recorded, never dropped.

    ``label`` names an item in the failures (its S3 key). ``progress=None`` shows a tqdm bar
    for :data:`PROGRESS_MIN_ITEMS` items or more. Items are handed to the pool as slots free
    up (two per worker), so memory stays bounded for long inputs and the calling thread only
    waits. Ctrl-C skips what has not started, lets the requests in flight end their current
    attempt (no retry starts after it), waits for them, and re-raises; a second Ctrl-C stops
    the wait; after the first, the error raised (:class:`TransferInterrupted`) says how many
    items were done.
    """
    results: list[R | None] = [None] * len(items)
    failures: dict[str, str] = {}
    show = progress if progress is not None else len(items) >= PROGRESS_MIN_ITEMS
    workers = max(1, min(max_workers, len(items)))
    slots = threading.BoundedSemaphore(2 * workers)
    stop = threading.Event()
    counting = threading.Lock()
    done = [0]
    bar = progress_bar(total=len(items), desc=desc, unit="row", disable=not show, leave=False)

    def call(index: int) -> None:
        interrupted.set(stop)  # the retry layer makes no new attempt once the call is interrupted
        try:
            if not stop.is_set():
                results[index] = func(items[index])
                with counting:
                    done[0] += 1
        except Exception as error:  # one item's failure is reported, not raised
            failures[label(items[index])] = failure_reason(error)
        finally:
            with counting:
                bar.update(1)
            slots.release()

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_THREAD_PREFIX)
    try:
        for index in range(len(items)):
            slots.acquire()
            submit(pool, call, index)  # in the caller's context: its usage blocks count the request
        pool.shutdown(wait=True)
    except BaseException as error:
        stop.set()
        try:
            _wait_for_flight(pool, desc)
        finally:
            bar.close()
        if isinstance(error, KeyboardInterrupt):
            raise _interrupted(desc, done[0], failures, len(items)) from None
        raise
    bar.close()
    return _finished(results, failures, desc)


def _interrupted(desc: str, done: int, failures: Mapping[str, str], total: int) -> TransferInterrupted:
    """What a Ctrl-C raises once the requests in flight ended: the rows done, failed and asked for."""
    logger.warning("%s interrupted after %d of %d items", desc or "transfer", done, total)
    return TransferInterrupted(desc or "transfer", done, len(failures), total)


def _abandoned(desc: str) -> None:
    logger.warning("%s abandoned: its requests in flight end in the background", desc or "transfer")


def _finished(results: list[R | None], failures: dict[str, str], desc: str) -> BatchResult[R]:
    """The batch's outcome; a warning says how many items failed, if any."""
    if failures:
        logger.warning("%s: %d of %d items failed", desc or "transfer", len(failures), len(results))
    return BatchResult(results, failures)


def _wait_for_flight(pool: ThreadPoolExecutor, desc: str) -> None:
    """Skip the items not started and wait for those in flight; a second Ctrl-C stops waiting."""
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except KeyboardInterrupt:  # a second Ctrl-C: return now; the attempts in flight end unwatched
        _abandoned(desc)
        raise


def run_each_async(
    func: Callable[[T], Awaitable[R]],
    items: Sequence[T],
    *,
    label: Callable[[T], str],
    limiter: RampingLimiter,
    max_in_flight: int,
    progress: bool | None = None,
    desc: str = "",
) -> BatchResult[R]:
    """:func:`run_each` for a coroutine function, on the package's event loop.

    As many items are in flight as ``limiter`` says, and never more than ``max_in_flight``;
    a task is made for an item only when it can start, so memory follows what is in flight,
    not the number of items. Ctrl-C (in the calling thread) starts nothing more, lets the
    requests in flight end their current attempt, waits for them, and raises
    :class:`TransferInterrupted`; a second Ctrl-C stops the wait.
    """
    show = progress if progress is not None else len(items) >= PROGRESS_MIN_ITEMS
    stop = threading.Event()
    done = [0]
    failures: dict[str, str] = {}
    bar = progress_bar(total=len(items), desc=desc, unit="row", disable=not show, leave=False)
    future: Future[list[R | None]] = Future()
    try:
        loop.start(_run_all(func, items, label, limiter, max(1, max_in_flight), bar, stop, done, failures), future)
        results = loop.wait(future)
    except KeyboardInterrupt:
        stop.set()
        try:
            if not future.cancel():  # it began: wait for the requests in flight
                loop.wait(future)
        except KeyboardInterrupt:  # a second Ctrl-C: return now; the attempts in flight end unwatched
            _abandoned(desc)
            raise
        finally:
            bar.close()
        raise _interrupted(desc, done[0], failures, len(items)) from None
    bar.close()
    return _finished(results, failures, desc)


async def _run_all(func: Callable[[T], Awaitable[R]], items: Sequence[T], label: Callable[[T], str],
                   limiter: RampingLimiter, most: int, bar: Any, stop: threading.Event, done: list[int],
                   failures: dict[str, str]) -> list[R | None]:
    """Every item's task, started as the limit allows, until all end or ``stop`` is set."""
    interrupted.set(stop)  # the tasks inherit it: no request makes a new attempt once stopped
    results: list[R | None] = [None] * len(items)
    in_flight = 0
    ended = asyncio.Event()

    async def call(index: int) -> None:
        nonlocal in_flight
        try:
            results[index] = await func(items[index])
            done[0] += 1
        except Exception as error:  # one item's failure is reported, not raised
            failures[label(items[index])] = failure_reason(error)
        finally:
            in_flight -= 1
            bar.update(1)
            ended.set()

    tasks = set()
    for index in range(len(items)):
        while in_flight >= min(most, limiter.limit) and not stop.is_set():
            ended.clear()
            await ended.wait()
        if stop.is_set():
            break
        in_flight += 1
        task = asyncio.create_task(call(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while in_flight:
        ended.clear()
        await ended.wait()
    return results
