"""Write and read back N rows with a share of requests faulted; print what happened.

``python benchmarks/faults.py --rows 2000 --rate 0.1`` prints the rows written and read back,
the faults injected by kind, the retries made and the rows lost or corrupted (both must be 0).
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from s3aads_pandas import Database, Table
from s3aads_pandas.faults import FaultPlan
from s3aads_pandas.local_s3 import LOCAL_CREDENTIALS, LocalS3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.1, help="share of requests faulted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)

    with LocalS3(faults=FaultPlan(rate=args.rate, seed=args.seed, latency=0.05)) as server:
        db = Database("faults", endpoint_url=server.endpoint_url, max_workers=args.workers)
        db.create()
        table = Table("rows", db, ["id"])
        payloads = [f"row {i} ".encode() * 100 for i in range(args.rows)]
        started = time.perf_counter()
        written = pd.DataFrame({"id": range(args.rows), "data": payloads}).s3aads.write(table, progress=False)
        back = pd.read_s3aads(table, progress=False)
        elapsed = time.perf_counter() - started
        by_id = dict(zip(back["id"].astype(int), back["data"]))
        lost = sum(1 for i in range(args.rows) if i not in by_id)
        corrupted = sum(1 for i, data in by_id.items() if data != payloads[i])
        faults = server.faults.injected

    print(f"`python benchmarks/faults.py --rows {args.rows} --rate {args.rate} --seed {args.seed}`\n")
    print("| rows written | rows read back | faults injected | by kind | retries | rows lost | rows corrupted | seconds |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(faults.items()))
    print(f"| {written.written} | {len(back)} | {sum(faults.values())} | {kinds} | {db.store.retrier.retries} "
          f"| {lost} | {corrupted} | {elapsed:.1f} |")


if __name__ == "__main__":
    main()
