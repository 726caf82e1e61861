"""Write and read back N rows with a share of requests faulted; print what happened.

``python benchmarks/faults.py --rows 2000 --rate 0.3 --kinds slowdown,internal`` runs the same
write and read twice on the local endpoint, without faults and with them, and prints for each
the rows written and read back, the faults injected by kind, the retries made, the rows lost or
corrupted (both must be 0), the seconds taken, and how much slower the faulted run was.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from s3aads_pandas import Database, Table
from s3aads_pandas.local import LOCAL_CREDENTIALS, LocalS3
from s3aads_pandas.local.faults import KINDS, FaultPlan


def run(rows: int, plan: FaultPlan, workers: int) -> dict[str, object]:
    """One write and read back of ``rows`` rows under ``plan``; what happened."""
    with LocalS3(faults=plan) as server:
        server.reset()
        db = Database("faults", endpoint_url=server.endpoint_url, max_workers=workers)
        db.create()
        table = Table("rows", db, ["id"])
        payloads = [f"row {i} ".encode() * 100 for i in range(rows)]
        started = time.perf_counter()
        written = pd.DataFrame({"id": range(rows), "data": payloads}).s3aads.write(table, progress=False)
        back = pd.read_s3aads(table, progress=False)
        elapsed = time.perf_counter() - started
        by_id = dict(zip(back["id"].astype(int), back["data"], strict=True))
        faults = server.faults.injected if server.faults else {}
        return {
            "written": written.written,
            "read": len(back),
            "faults": sum(faults.values()),
            "kinds": ", ".join(f"{kind} {count}" for kind, count in sorted(faults.items())) or "none",
            "retries": db.store.retrier.retries,
            "lost": sum(1 for i in range(rows) if i not in by_id),
            "corrupted": sum(1 for i, data in by_id.items() if data != payloads[i]),
            "seconds": elapsed,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.1, help="share of requests faulted")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    kinds = tuple(args.kinds.split(","))

    clean = run(args.rows, FaultPlan(rate=0, seed=args.seed), args.workers)
    faulted = run(args.rows, FaultPlan(rate=args.rate, kinds=kinds, seed=args.seed, latency=0.05), args.workers)

    print(f"`python benchmarks/faults.py --rows {args.rows} --rate {args.rate} --kinds {args.kinds} "
          f"--seed {args.seed}`\n")
    print("| run | rows written | rows read back | faults injected | by kind | retries | rows lost "
          "| rows corrupted | seconds | x fault-free |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, result in (("fault-free", clean), (f"{args.rate:.0%} faulted", faulted)):
        print(f"| {name} | {result['written']} | {result['read']} | {result['faults']} | {result['kinds']} "
              f"| {result['retries']} | {result['lost']} | {result['corrupted']} | {result['seconds']:.1f} "
              f"| {result['seconds'] / clean['seconds']:.2f} |")


if __name__ == "__main__":
    main()
