"""The asyncio API in a service's event loop: how long the loop waits while calls run.

Starts ``fast_s3.py`` with ``--latency`` seconds added to every request and N rows of 1 KiB,
then, on one event loop with a ticker task that sleeps 10 ms and records how late it wakes:
1,000 concurrent ``select`` calls, a ``read_s3aads`` of the whole table, and both at once.
Prints a Markdown table of wall seconds, the ticker's worst and 99th-percentile lag, and the
cyclic garbage collector's full collections meanwhile (how many, and the longest): each holds the
GIL while it walks every object the process tracks, the loop's thread waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fast_s3 import started

from s3aads_pandas import ConnectionSettings, Database, aio

TICK = 0.01


class FullCollections:
    """The durations of the garbage collector's full (generation 2) collections while on."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def measured(label: str, work: Callable[[], Awaitable[Any]]) -> None:
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - start - TICK)

    ticking = asyncio.create_task(ticker())
    start = time.perf_counter()
    with FullCollections() as collections:
        await work()
    wall = time.perf_counter() - start
    running = False
    await ticking
    p99 = statistics.quantiles(lags, n=100, method="inclusive")[98] if len(lags) > 1 else lags[0]
    longest = max(collections.durations, default=0.0)
    print(f"| {label} | {wall:.2f} s | {max(lags) * 1000:.1f} ms | {p99 * 1000:.1f} ms "
          f"| {len(collections.durations)}, {longest * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--selects", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    with started(args.latency, ("bench", "events/", args.rows, 1024)) as endpoint:
        settings = ConnectionSettings(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                                      aws_secret_access_key="local")
        table = aio.AsyncTable("events", Database("bench", settings), ["id"])

        async def selects() -> None:
            payloads = await asyncio.gather(*(table.select(id=row) for row in range(args.selects)))
            assert all(payloads)

        async def read() -> None:
            frame = await aio.read_s3aads(table)
            assert len(frame) == args.rows

        async def both() -> None:
            await asyncio.gather(selects(), read())

        async def session() -> None:
            await table.select(id=0)  # the first call makes the client and the worker threads
            print(f"{args.rows:,} rows of 1 KiB, {args.latency * 1000:.0f} ms added to every request; "
                  f"a ticker sleeps {TICK * 1000:.0f} ms on the same loop\n")
            print(f"the process tracks {len(gc.get_objects()):,} objects\n")
            print("| on the loop | wall | ticker's worst lag | 99th percentile | full collections, longest |")
            print("|---|---:|---:|---:|---:|")
            await measured(f"{args.selects:,} concurrent selects", selects)
            await measured(f"read_s3aads of {args.rows:,} rows", read)
            await measured("both at once", both)

        asyncio.run(session())


if __name__ == "__main__":
    main()
