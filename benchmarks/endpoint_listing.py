"""Listing a large table on the embedded local endpoint, with default settings.

moto rescans a bucket for each LIST, so each LIST of a 100,000-key bucket costs about a second
of CPU, and 16 at once took more than the 90 s deadline each. The rows are stored straight into
moto's backend (100,000 PUTs over HTTP take about 10 minutes), then listed as a user lists them:
the first rows (``pd.read_s3aads(table, data=False, nrows=20)``) and all of them
(``table.count()``). ``--fixed`` lists without the pace that follows LIST latency, as before it.
Prints a Markdown row of wall seconds, and the most LISTs in flight at once.
"""

from __future__ import annotations

import argparse
import math
import threading
import time

import pandas as pd

from s3aads_pandas import Database, Table, configure
from s3aads_pandas.local import LocalS3
from s3aads_pandas.storage.retry import LatencyPace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--fixed", action="store_true", help="no pace: 16 LISTs in flight, as before")
    args = parser.parse_args()
    if args.fixed:
        LatencyPace.SLOW = math.inf
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    with LocalS3() as server:
        configure(server.settings())
        database = Database("listing-bench")
        database.create()
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for row in range(args.rows):
            backend.put_object("listing-bench", f"events/c{row % 997}/{row}", b'{"n": 1}')
        table = Table("events", database, ["customer", "id"])

        in_flight, most = [0], [0]
        lock = threading.Lock()
        original = database.store.transport.list_page

        def counted(*arguments: object, **keywords: object) -> object:
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            try:
                return original(*arguments, **keywords)  # type: ignore[arg-type]
            finally:
                with lock:
                    in_flight[0] -= 1

        database.store.transport.list_page = counted  # type: ignore[method-assign]
        started = time.perf_counter()
        first = pd.read_s3aads(table, data=False, nrows=20, progress=False)
        first_rows = time.perf_counter() - started
        started = time.perf_counter()
        try:
            counted_rows = f"{table.count():,}"
        except Exception as error:  # what a user would see
            counted_rows = f"failed: {str(error)[:120]}"
        listing = time.perf_counter() - started
        mode = "fixed 16" if args.fixed else "paced"
        print(f"| {mode} | {args.rows:,} | {first_rows:.1f} s ({len(first)} rows) | {listing:.1f} s ({counted_rows}) "
              f"| {most[0]} |")


if __name__ == "__main__":
    main()
