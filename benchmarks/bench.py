"""Read and write N rows over HTTP with a fixed latency per request, six ways, in one run.

- s3aads-pandas: ``df.s3aads.write`` and ``pd.read_s3aads`` on a pool of W workers, on each
  transport (obstore, the default, and boto3);
- s3aads 2.x through its own API (sequential: a sample of rows is timed and scaled to N);
- a plain boto3 ThreadPoolExecutor loop sharing one client (the best a boto3 client can do);
- a plain obstore ThreadPoolExecutor loop sharing one store (the best obstore can do);
- the limit N x latency / W.

The S3 endpoint is moto's server in its own process (benchmarks/latency_server.py) with the
latency added to every request. Prints a Markdown table: wall time, S3 requests, client CPU
milliseconds per row, and the ratios that the targets are stated in.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Measure:
    wall: float
    cpu: float
    requests: float

    def scaled(self, factor: float, fixed: Measure | None = None) -> Measure:
        base = fixed or Measure(0, 0, 0)
        return Measure(base.wall + self.wall * factor, base.cpu + self.cpu * factor,
                       base.requests + self.requests * factor)


class Requests:
    """Counts requests sent by the boto3 clients it is attached to (retries included), or the
    requests of a store of this project (its request hooks), or those counted by hand."""

    def __init__(self, *clients: Any) -> None:
        self.count = 0
        for client in clients:
            client.meta.events.register("request-created.s3", self._count)

    def _count(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1


def measure(counter: Requests, work: Callable[[], Any]) -> Measure:
    before = counter.count
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Measure(time.perf_counter() - wall, time.process_time() - cpu, counter.count - before)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) that process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(latency: float, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server with ``latency`` added per request; ``extra`` are more of its options."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "latency_server.py"), "--port", str(port), "--latency", str(latency), *extra]
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the benchmark S3 server did not start")


def run(rows: int, latency: float, workers: int, sample: int, payload: int) -> list[tuple[str, str, Measure]]:
    import boto3
    import pandas as pd
    import s3aads  # after AWS_ENDPOINT_URL is set: it makes its clients at import
    from botocore.config import Config

    from s3aads_pandas import Database, Table

    body = os.urandom(payload)
    frame = pd.DataFrame({"id": range(rows), "year": 2024, "data": [body] * rows})
    results: list[tuple[str, str, Measure]] = []

    # this project, on each transport
    for transport in ("obstore", "boto3"):
        db = Database("bench", max_workers=workers, transport=transport)
        db.create()
        ours = Table(f"ours-{transport}", db, ["id", "year"])
        ours_counter = Requests()
        db.store.hooks.append(ours_counter._count)
        name = f"s3aads-pandas ({transport})"
        write = functools.partial(frame.s3aads.write, ours, max_workers=workers, progress=False)
        read = functools.partial(pd.read_s3aads, ours, max_workers=workers, progress=False)
        results.append(("write", name, measure(ours_counter, write)))
        results.append(("read", name, measure(ours_counter, read)))

    # plain boto3 loop, one shared client with a pool that fits the workers
    client = boto3.client("s3", config=Config(max_pool_connections=workers, retries={"mode": "standard"}))
    loop_counter = Requests(client)
    keys = [f"boto3/{i}/2024" for i in range(rows)]

    def boto3_write() -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda key: client.put_object(Bucket="bench", Key=key, Body=body), keys))

    def boto3_read() -> None:
        listed = [
            obj["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="boto3/")
            for obj in page.get("Contents", [])
        ]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda key: client.get_object(Bucket="bench", Key=key)["Body"].read(), listed))

    results.append(("write", "boto3 thread pool", measure(loop_counter, boto3_write)))
    results.append(("read", "boto3 thread pool", measure(loop_counter, boto3_read)))
    results += obstore_loop(os.environ["AWS_ENDPOINT_URL"], rows, workers, body)

    # s3aads 2.x, sequential: time a sample and scale it to N rows
    theirs = s3aads.Table("theirs", database="bench", columns=["id", "year"])
    original_counter = Requests(s3aads.resources.s3_client, s3aads.resources.s3_resource.meta.client)
    with ThreadPoolExecutor(workers) as pool:  # the table to read from, written unmeasured
        list(pool.map(lambda i: client.put_object(Bucket="bench", Key=f"theirs/{i}/2024", Body=body), range(rows)))
    written = measure(original_counter,
                      lambda: [theirs.insert(id=f"w{i}", year=2024, data=body) for i in range(sample)])
    results.append(("write", f"s3aads 2.x ({sample} rows scaled)", written.scaled(rows / sample)))
    listing: list[dict[str, str]] = []
    listed = measure(original_counter, lambda: listing.extend(theirs.query(year=2024)))
    read = measure(original_counter, lambda: [theirs.select(**row) for row in listing[:sample]])
    results.append(("read", f"s3aads 2.x ({sample} rows scaled)", read.scaled(rows / sample, listed)))

    limit = Measure(rows * latency / workers, 0, rows)
    results += [("write", "limit N x L / W", limit), ("read", "limit N x L / W", limit)]
    return results


def obstore_loop(url: str, rows: int, workers: int, body: bytes) -> list[tuple[str, str, Measure]]:
    """The same writes and reads as a plain obstore loop: one store shared by a thread pool."""
    import obstore
    from obstore.store import S3Store

    store = S3Store("bench", config={"endpoint": url, "region": "us-east-1", "access_key_id": "bench",
                                     "secret_access_key": "bench"}, client_options={"allow_http": True})
    counter = Requests()
    keys = [f"obstore/{i}/2024" for i in range(rows)]

    def put(key: str) -> None:
        counter._count()
        obstore.put(store, key, body)

    def get(key: str) -> bytes:
        counter._count()
        return bytes(obstore.get(store, key).bytes())

    def write() -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(put, keys))

    def read() -> None:
        listed = []
        for batch in obstore.list(store, "obstore/", chunk_size=1000):
            counter._count()
            listed += [obj["path"] for obj in batch]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(get, listed))

    return [("write", "obstore thread pool", measure(counter, write)),
            ("read", "obstore thread pool", measure(counter, read))]


def table(results: list[tuple[str, str, Measure]], rows: int) -> str:
    lines = [
        "| operation | client | wall s | S3 requests | client CPU ms/row | wall / limit | vs s3aads 2.x "
        "| CPU vs boto3 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(op, who.split(" (")[0]): m for op, who, m in results}
    for op, who, m in results:
        limit = by[(op, "limit N x L / W")]
        original = by[(op, "s3aads 2.x")]
        loop = by[(op, "boto3 thread pool")]
        cpu = f"{1000 * m.cpu / rows:.2f}" if m.cpu else "-"
        lines.append(
            f"| {op} | {who} | {m.wall:.2f} | {m.requests:.0f} | {cpu} | {m.wall / limit.wall:.2f}x | "
            f"{original.wall / m.wall:.1f}x faster | "
            + (f"{m.cpu / loop.cpu:.2f}x" if m.cpu and loop.cpu else "-") + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (default 0.1)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--sample", type=int, default=20, help="rows timed for sequential s3aads 2.x")
    parser.add_argument("--payload", type=int, default=1024, help="payload bytes per row")
    args = parser.parse_args()

    server, url = start_server(args.latency)
    os.environ.update(
        {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
         "AWS_DEFAULT_REGION": "us-east-1"}
    )
    try:
        results = run(args.rows, args.latency, args.workers, args.sample, args.payload)
    finally:
        server.terminate()
        server.wait(10)
    command = " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]])
    print(f"`{command}`: N={args.rows} rows of {args.payload} bytes, latency {args.latency * 1000:.0f} ms, "
          f"W={args.workers} workers\n")
    print(table(results, args.rows))


if __name__ == "__main__":
    main()
