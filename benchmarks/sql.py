"""What ``%%s3aads`` asks of S3: statements against a table, with their requests and wall time.

``python benchmarks/sql.py --rows 2000 --latency 0.1`` seeds a table (region x day x order_id,
JSON payloads) into moto's server with LATENCY seconds added per request, then runs each
statement through the magic's engine and prints its LIST and GET requests and wall time, next to
reading the whole table first (``pd.read_s3aads``) and running the statement on that.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import start_server  # noqa: E402

REGIONS = ("east", "north", "south", "west")

STATEMENTS = [
    ("bytes", "SELECT region, COUNT(*) AS n FROM orders GROUP BY region"),
    ("bytes", "SELECT day, COUNT(*) AS n FROM orders WHERE region = 'north' GROUP BY day"),
    ("bytes", "SELECT order_id, data FROM orders WHERE region = 'north' AND day = '06'"),
    ("bytes", "SELECT order_id, data FROM orders ORDER BY order_id DESC LIMIT 10"),
    ("json", "SELECT data->>'item' AS item, SUM((data->>'price')::INT) AS total FROM orders "
             "WHERE region IN ('north', 'south') GROUP BY item"),
    ("bytes", "SELECT r.manager, COUNT(*) AS n FROM orders o JOIN managers r ON r.region = o.region "
              "WHERE o.day = '01' GROUP BY r.manager"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (default 0.1)")
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    server, url = start_server(args.latency)
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        run(args.rows, args.workers)
    finally:
        server.terminate()
        server.wait(20)


def run(rows: int, workers: int) -> None:
    import duckdb
    import pandas as pd

    from s3aads_pandas import Database, Table
    from s3aads_pandas.notebook.sql import Context, execute

    db = Database("sql-bench", max_workers=workers)
    db.create()
    orders = Table("orders", db, ["region", "day", "order_id"])
    frame = pd.DataFrame({
        "region": [REGIONS[i % 4] for i in range(rows)],
        "day": [f"{i % 50 + 1:02d}" for i in range(rows)],
        "order_id": [f"{i:06d}" for i in range(rows)],
        "data": [json.dumps({"item": f"item-{i % 7}", "price": i % 13}) for i in range(rows)],
    })
    frame.s3aads.write(orders, progress=False)
    managers = pd.DataFrame({"region": list(REGIONS), "manager": ["Ada", "Bo", "Cy", "Di"]})
    counter: collections.Counter[str] = collections.Counter()
    db.store.hooks.append(lambda operation, params: counter.update([operation]))

    print(f"{rows:,} rows, {len(REGIONS)} regions x 50 days\n")
    print("| statement | LISTs | GETs | wall |")
    print("|---|---:|---:|---:|")
    for decode, sql in STATEMENTS:
        counter.clear()
        started = time.perf_counter()
        execute(sql, Context(namespace={"orders": orders, "managers": managers}, progress=False, decode=decode))
        wall = time.perf_counter() - started
        print(f"| `{sql}`{' (--decode json)' if decode == 'json' else ''} | {counter.get('ListObjectsV2', 0):,} "
              f"| {counter.get('GetObject', 0):,} | {wall:.2f} s |")

    counter.clear()
    started = time.perf_counter()
    whole = pd.read_s3aads(orders, decode="str", progress=False)  # noqa: F841  (DuckDB reads it by name)
    duckdb.sql("SELECT region, COUNT(*) FROM whole GROUP BY region").fetchall()
    wall = time.perf_counter() - started
    print(f"| read the whole table, then DuckDB (any statement) | {counter.get('ListObjectsV2', 0):,} "
          f"| {counter.get('GetObject', 0):,} | {wall:.2f} s |")


if __name__ == "__main__":
    main()
