"""Bulk reads and writes at S3's concurrency, with default settings, against the best a client can do.

Starts ``fast_s3.py`` (an in-memory endpoint fast enough that the client is what is measured)
with ``--latency`` seconds added to every request, and for each ``--rows``: writes that many rows
of 1 KiB and reads them back, with this project's synchronous API (``df.s3aads.write``,
``pd.read_s3aads``) and its asyncio API (``aio.write``, ``aio.read_s3aads``), all with default
settings, and the same work as a plain obstore asyncio loop with 256 requests in flight (the
reference). A read is its listing and its GETs. First, unmeasured, one row is written (the
process's first call makes its clients, boto3's taking a few hundred ms of CPU, and learns the
bucket's region) and 1,000 rows are written and read (the store's pace ramps up from 64 in flight
and its connections are opened): what is measured is a long-lived process's transfers, a
service's or a notebook's. Each measurement is made ``--repeat`` times, the clients taking turns,
and the fastest is kept: on 2 cores shared with the server, runs vary by 10-50%. Prints a
Markdown table: wall seconds, the ratio to the reference, and the client's CPU per row (this
process's, Rust's threads included).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import obstore
import pandas as pd
from fast_s3 import started
from obstore.store import S3Store

from s3aads_pandas import ConnectionSettings, Database, Table, aio

REFERENCE_IN_FLIGHT = 256
PAYLOAD = 1024


class Measure:
    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu


def measured(work: Callable[[], Any]) -> Measure:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Measure(time.perf_counter() - wall, time.process_time() - cpu)


def reference(endpoint: str, rows: int, body: bytes) -> tuple[Measure, Measure]:
    """The plain obstore asyncio loop: a semaphore of 256, one store."""
    store = S3Store("bench", config={"endpoint": endpoint, "region": "us-east-1", "access_key_id": "local",
                                     "secret_access_key": "local"}, client_options={"allow_http": True})

    async def bounded(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        gate = asyncio.Semaphore(REFERENCE_IN_FLIGHT)

        async def one(call: Callable[[], Awaitable[Any]]) -> Any:
            async with gate:
                return await call()

        return await asyncio.gather(*(one(call) for call in calls))

    async def get(key: str) -> bytes:
        return bytes(await (await obstore.get_async(store, key)).bytes_async())

    async def write() -> None:
        await bounded([lambda key=f"ref/{row}": obstore.put_async(store, key, body) for row in range(rows)])

    async def read() -> None:
        keys = [obj["path"] for chunk in obstore.list(store, "ref/", chunk_size=1000) for obj in chunk]
        bodies = await bounded([lambda key=key: get(key) for key in keys])
        assert len(bodies) == rows

    return measured(lambda: asyncio.run(write())), measured(lambda: asyncio.run(read()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 20_000])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    body = bytes(range(256)) * (PAYLOAD // 256)
    print(f"rows of {PAYLOAD} bytes, {args.latency * 1000:.0f} ms added to every request, default settings; "
          f"the reference is a plain obstore asyncio loop with {REFERENCE_IN_FLIGHT} in flight\n")
    print("| rows | operation | client | wall | x reference | client CPU per row |")
    print("|---:|---|---|---:|---:|---:|")
    with started(args.latency, ("bench", "seeded/", 1, PAYLOAD)) as endpoint:
        settings = ConnectionSettings(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                                      aws_secret_access_key="local")
        db = Database("bench", settings)
        warm = Table("warm", db, ["id"])
        warm.insert(b"", id=0)  # the process's first call makes its clients and learns the region
        pd.DataFrame({"id": range(1000), "data": [body] * 1000}).s3aads.write(warm, progress=False)
        pd.read_s3aads(warm, progress=False)  # the pace has ramped up and the connections are open
        for rows in args.rows:
            measure_rows(db, endpoint, rows, body, args.repeat)


def fastest(measures: list[Measure]) -> Measure:
    return min(measures, key=lambda measure: measure.wall)


def measure_rows(db: Database, endpoint: str, rows: int, body: bytes, repeat: int) -> None:
    frame = pd.DataFrame({"id": range(rows), "data": [body] * rows})
    sync_table, async_table = Table(f"sync{rows}", db, ["id"]), aio.AsyncTable(f"async{rows}", db, ["id"])
    runs: dict[tuple[str, str], list[Measure]] = {}
    for turn in range(repeat):
        sync = {
            ("write", "df.s3aads.write"): lambda: frame.s3aads.write(sync_table, progress=False),
            ("read", "pd.read_s3aads"): lambda: pd.read_s3aads(sync_table, progress=False),
        }
        asynchronous = {
            ("write", "aio.write"): lambda: asyncio.run(aio.write(frame, async_table)),
            ("read", "aio.read_s3aads"): lambda: asyncio.run(aio.read_s3aads(async_table)),
        }
        for client in ([sync, asynchronous] if turn % 2 == 0 else [asynchronous, sync]):
            for label, work in client.items():
                runs.setdefault(label, []).append(measured(work))
        written, read = reference(endpoint, rows, body)
        runs.setdefault(("write", "reference"), []).append(written)
        runs.setdefault(("read", "reference"), []).append(read)
    results = {label: fastest(measures) for label, measures in runs.items() if label[1] != "reference"}
    baseline = {operation: fastest(runs[(operation, "reference")]) for operation in ("write", "read")}
    for (operation, client), result in sorted(results.items(), key=lambda item: item[0][0], reverse=True):
        print(f"| {rows:,} | {operation} | {client} | {result.wall:.2f} s | "
              f"{result.wall / baseline[operation].wall:.2f}x | {result.cpu / rows * 1000:.2f} ms |")
    for operation, result in baseline.items():
        print(f"| {rows:,} | {operation} | obstore asyncio, {REFERENCE_IN_FLIGHT} in flight | "
              f"{result.wall:.2f} s | 1.00x | {result.cpu / rows * 1000:.2f} ms |", flush=True)

if __name__ == "__main__":
    main()
