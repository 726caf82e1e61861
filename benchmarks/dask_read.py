"""Read one table with pandas and with Dask on a LocalCluster, and show how Dask splits the work.

The table has N rows spread over P values of its first column. pandas reads it in this process
with W threads; Dask plans one partition per value (one Delimiter listing), then each task on a
worker process lists its prefix and reads its rows with W threads of its own. The S3 endpoint is
benchmarks/latency_server.py with the latency added to every request; requests are counted by
that server, so the workers' requests are counted too, and so is the CPU the server spends (on
the same machine, it competes with the readers for the cores). Prints two Markdown tables: the
comparison, and the tasks (how many, on which worker, how long).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import process_cpu, start_server
from latency_server import COUNT_PATH


def served(url: str) -> int:
    """How many S3 requests the benchmark server has answered, from any process."""
    with urllib.request.urlopen(url + COUNT_PATH, timeout=10) as answer:
        return int(answer.read())


@dataclass
class Timed:
    result: Any
    wall: float
    requests: int
    server_cpu: float

    def __add__(self, other: Timed) -> Timed:
        return Timed(other.result, self.wall + other.wall, self.requests + other.requests,
                     self.server_cpu + other.server_cpu)

    def row(self, name: str, versus: str = "") -> str:
        return f"| {name} | {self.wall:.2f} | {self.requests} | {self.server_cpu:.2f} | {versus} |"


def timed(server: subprocess.Popen[bytes], url: str, work: Callable[[], Any]) -> Timed:
    requests, cpu, start = served(url), process_cpu(server.pid), time.perf_counter()
    result = work()
    wall = time.perf_counter() - start
    return Timed(result, wall, served(url) - requests, process_cpu(server.pid) - cpu)


def run(server: subprocess.Popen[bytes], url: str, args: argparse.Namespace) -> None:
    import dask
    import pandas as pd
    from distributed import Client, LocalCluster, get_task_stream

    from s3aads_pandas import Database, Table
    from s3aads_pandas.dask import read_s3aads

    db = Database("bench", max_workers=args.workers)
    db.create()
    table = Table("events", db, ["part", "id"])
    body = os.urandom(args.payload)
    frame = pd.DataFrame({"part": [f"p{i % args.parts:03d}" for i in range(args.rows)],
                          "id": range(args.rows), "data": [body] * args.rows})
    frame.s3aads.write(table, progress=False)

    pandas = timed(server, url, lambda: pd.read_s3aads(table, progress=False))
    with LocalCluster(n_workers=args.processes, threads_per_worker=args.threads, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("s3aads_pandas.dask"))  # workers import once, before timing
        plan = timed(server, url, lambda: read_s3aads(table, npartitions=args.npartitions))
        with get_task_stream(client) as stream:
            compute = timed(server, url, lambda: dask.compute(*plan.result.to_delayed()))
    partitions = compute.result
    computed = pd.concat(partitions, ignore_index=True)
    if not len(pandas.result) == len(computed) == args.rows:
        raise RuntimeError(f"read {len(pandas.result)} rows with pandas and {len(computed)} with Dask, not {args.rows}")

    total = plan + compute
    command = " ".join(["python", "benchmarks/dask_read.py", *sys.argv[1:]])
    print(f"`{command}`: N={args.rows} rows of {args.payload} "
          f"bytes in P={args.parts} values of the first column, latency {args.latency * 1000:.0f} ms, "
          f"W={args.workers} threads per reader; Dask: {args.processes} worker processes x "
          f"{args.threads} thread(s)\n")
    print("| read | wall s | S3 requests | S3 server CPU s | vs pandas |\n|---|---:|---:|---:|---:|")
    print(pandas.row("pandas `pd.read_s3aads`", "1.00x"))
    print(plan.row("Dask: plan (`read_s3aads`)"))
    print(compute.row("Dask: compute"))
    print(total.row("Dask: total", f"{pandas.wall / total.wall:.2f}x"))
    print(f"| limit N x L / W (one reader) | {args.rows * args.latency / args.workers:.2f} | {args.rows} | | |\n")

    tasks = [t for t in stream.data if "read-s3aads" in str(t["key"])]
    seconds = [sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in tasks]
    per_worker = Counter(t["worker"] for t in tasks)
    rows = [len(partition) for partition in partitions]
    print("| tasks | rows per task | tasks per worker | task seconds (median / max) |\n|---:|---|---|---|")
    print(f"| {len(tasks)} | {min(rows)}-{max(rows)} | {' / '.join(str(n) for n in sorted(per_worker.values()))} "
          f"| {statistics.median(seconds):.2f} / {max(seconds):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--parts", type=int, default=16, help="values of the first column (partitions)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (default 0.1)")
    parser.add_argument("--workers", type=int, default=32, help="threads per reader")
    parser.add_argument("--npartitions", type=int, default=None, help="at most this many partitions (default 256)")
    parser.add_argument("--processes", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--threads", type=int, default=1, help="Dask threads per worker process")
    parser.add_argument("--payload", type=int, default=1024, help="payload bytes per row")
    args = parser.parse_args()

    server, url = start_server(args.latency)
    # in the environment before the cluster starts, so that its worker processes inherit it
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        run(server, url, args)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
