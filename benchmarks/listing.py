"""A full listing of a table: boto3's paginator and obstore's list, against the listing engine
on each transport.

``python benchmarks/listing.py --keys 20000 --latency 0.1`` seeds a table of KEYS keys (ids x
5 years x 4 months) into moto's server (or ``--server fast``, ``fast_s3.py``) with LATENCY
seconds added per request, then lists it
both ways, each in a process of its own, and prints wall time, LIST requests, the most LISTs in
flight at once, wall time in units of the latency (against ``fast_s3.py``, which is not the
bound, the round trips on the critical path), client CPU and the peak of Python memory
(tracemalloc, in a second run). moto's server rescans every key of the bucket
for each LIST, so its CPU, shared with the client on a small machine, bounds the engine's gain
here more than it would on S3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import start_server  # noqa: E402
from fast_s3 import started  # noqa: E402

BUCKET = "listing-bench"


def keys(count: int) -> list[str]:
    ids = max(1, count // 20)
    return [f"t/{i}/{year}/{month:02d}" for i in range(ids) for year in range(2020, 2025) for month in range(1, 5)]


def list_once(how: str, url: str, workers: int, memory: bool) -> dict[str, Any]:
    """One listing in this process: what it took."""
    import boto3
    import botocore.config

    from s3aads_pandas import Database
    from s3aads_pandas.storage.listing import Lister

    transport = how.partition("-")[2] or "boto3"
    settings = {"endpoint_url": url, "region_name": "us-east-1", "max_workers": workers, "transport": transport}
    db = Database(BUCKET, **settings)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          config=botocore.config.Config(max_pool_connections=workers))
    state = {"calls": 0, "running": 0, "peak": 0}
    lock = threading.Lock()

    def begun() -> None:
        with lock:
            state["calls"] += 1
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])

    def ended() -> None:
        with lock:
            state["running"] -= 1

    def counted(call: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begun()
            try:
                return call(*args, **kwargs)
            finally:
                ended()
        return wrapper

    def counted_async(call: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not db.store.sends_async:  # it calls list_page on a thread, which counts
                return await call(*args, **kwargs)
            begun()
            try:
                return await call(*args, **kwargs)
            finally:
                ended()
        return wrapper

    db.store.list_page = counted(db.store.list_page)  # type: ignore[method-assign]
    if hasattr(db.store, "list_page_async"):  # the engine lists on the event loop
        db.store.list_page_async = counted_async(db.store.list_page_async)  # type: ignore[method-assign]
    client.list_objects_v2 = counted(client.list_objects_v2)  # type: ignore[method-assign]
    if memory:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    if how == "paginator":
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=BUCKET, Prefix="t/")
        listed = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    elif how == "obstore":
        listed = [obj["path"] for batch in counted(lambda: obstore_pages(url))() for obj in batch]
        state["calls"] = (len(listed) + 999) // 1000
    else:
        listed = [obj.key for obj in Lister(db.store, BUCKET, workers).objects("t/")]
    result = {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "keys": len(listed),
              "lists": state["calls"], "in_flight": state["peak"]}
    if memory:
        result["peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    return result


def obstore_pages(url: str) -> Any:
    """obstore's own listing of the table, sequential, a page at a time."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(BUCKET, config={"endpoint": url, "region": "us-east-1", "access_key_id": "local",
                                    "secret_access_key": "local"}, client_options={"allow_http": True})
    return obstore.list(store, "t/", chunk_size=1000)


#: What is compared: boto3's paginator, obstore's list, and the engine on each transport.
WAYS = {
    "paginator": "boto3 paginator (sequential)",
    "obstore": "obstore list (sequential)",
    "engine-boto3": "listing engine, boto3",
    "engine-obstore": "listing engine, obstore",
}


def list_each_way(url: str, workers: int) -> list[tuple[str, dict[str, Any], float]]:
    """Each way's listing in a process of its own, then again for its peak memory."""
    rows = []
    for how in WAYS:
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--workers", str(workers), "--one",
                                           how, url, memory], capture_output=True, text=True,
                                          check=True).stdout) for memory in ("0", "1")]
        rows.append((how, runs[0], runs[1]["peak_mb"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--server", choices=["moto", "fast"], default="moto",
                        help="moto's server, or fast_s3.py (which does not rescan the bucket for each LIST)")
    parser.add_argument("--one", nargs=3, metavar=("HOW", "URL", "MEMORY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    from s3aads_pandas.local import LOCAL_CREDENTIALS

    os.environ.update(LOCAL_CREDENTIALS)  # moto's server takes any keys
    if args.one:
        how, url, memory = args.one
        print(json.dumps(list_once(how, url, args.workers, memory == "1")))
        return

    keys_file = Path(tempfile.mkdtemp()) / "keys.txt"
    keys_file.write_text("\n".join(keys(args.keys)))
    if args.server == "fast":
        with started(args.latency, keys=(BUCKET, str(keys_file))) as url:
            rows = list_each_way(url, args.workers)
    else:
        server, url = start_server(args.latency, "--seed", BUCKET, str(keys_file))
        try:
            rows = list_each_way(url, args.workers)
        finally:
            server.terminate()
            server.wait(10)
    print(f"`python benchmarks/listing.py --keys {args.keys} --latency {args.latency} --workers {args.workers} "
          f"--server {args.server}`\n")
    print("| listing | keys | wall | LISTs | LISTs in flight | wall / latency | client CPU | CPU per key "
          "| peak memory |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for how, run, peak in rows:
        name = WAYS[how] + (f" ({args.workers} workers)" if how.startswith("engine") else "")
        print(f"| {name} | {run['keys']:,} | {run['wall']:.1f} s | {run['lists']} | {run['in_flight']} "
              f"| {run['wall'] / args.latency:.0f} | {run['cpu']:.2f} s "
              f"| {1e6 * run['cpu'] / max(1, run['keys']):.1f} us | {peak:.1f} MB |")


if __name__ == "__main__":
    main()
