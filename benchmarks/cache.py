"""A repeated read with the payload cache: what it sends and how long it takes.

Starts ``fast_s3.py`` (an in-memory endpoint that costs microseconds a request: against moto,
its LISTs would be what is measured), ``--latency`` seconds added to every request, seeded with
N rows of ``--size`` bytes, then reads the table with ``pd.read_s3aads``
without a cache, then on a new cache folder: once (every payload fetched), again (nothing changed), and after another
writer changed 5 rows and deleted 2. Prints a Markdown table of wall seconds and the requests
the server saw, by the project's count and by the server's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from fast_s3 import served, started

from s3aads_pandas import ConnectionSettings, Database, Table, usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="bytes a payload")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp())
    with started(args.latency, ("bench", "events/", args.rows, args.size)) as endpoint:
        settings = ConnectionSettings(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                                      aws_secret_access_key="local")
        table = Table("events", Database("bench", settings.replace(cache=str(work / "cache"))), ["id"])
        other = Table("events", Database("bench", settings), ["id"])
        print(f"{args.rows:,} rows of {args.size:,} bytes, {args.latency * 1000:.0f} ms added to every request\n")
        print("| read | wall | requests (usage) | requests (server) | from cache |")
        print("|---|---:|---|---:|---:|")

        def timed(label: str, read: Table = table) -> None:
            before = served(endpoint)
            start = time.perf_counter()
            with usage() as used:
                frame = pd.read_s3aads(read, progress=False)
            wall = time.perf_counter() - start
            requests = ", ".join(f"{count:,} {name}" for name, count in sorted(used.requests.items()))
            print(f"| {label} ({len(frame):,} rows) | {wall:.2f} s | {requests} | {served(endpoint) - before:,} "
                  f"| {used.cache_hits:,} |")

        timed("without a cache", other)
        timed("first, empty cache")
        timed("second, nothing changed")
        for row in range(5):
            other.insert(b"changed", id=row)
        for row in (10, 11):
            other.delete(id=row)
        timed("after 5 changed, 2 deleted")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
