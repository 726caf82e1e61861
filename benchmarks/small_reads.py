"""A small service's read: ``pd.read_s3aads("bucket/table", id=...)``, one call per request.

Each call names its table as a string, so each makes its Database: a boto3 client, the table's
column record (a GET), then the row's listing and GET. Starts ``fast_s3.py`` with ``--latency``
seconds added to every request, writes ``--rows`` rows, then makes ``--calls`` such reads one
after another and prints the mean wall time and client CPU of a call (this process's CPU, Rust's
threads included).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from fast_s3 import started

from s3aads_pandas import Database, Table, configure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.01)
    args = parser.parse_args()
    with started(args.latency) as endpoint:
        configure(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                  aws_secret_access_key="local")
        Database("bench").create()
        table = Table("events", "bench", ["id"])
        pd.DataFrame({"id": range(args.rows), "data": [b"x" * 100] * args.rows}).s3aads.write(table, progress=False)
        pd.read_s3aads("bench/events", id=0)  # the process's first call imports and loads what it needs
        wall, cpu = time.perf_counter(), time.process_time()
        for call in range(args.calls):
            assert len(pd.read_s3aads("bench/events", id=call % args.rows)) == 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"| {args.calls} calls, {args.latency * 1000:.0f} ms a request | {wall / args.calls * 1000:.1f} ms "
          f"| {cpu / args.calls * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
