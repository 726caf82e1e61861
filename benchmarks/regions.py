"""What a bucket in another region and a directory bucket cost, counted at the endpoint.

``python benchmarks/regions.py --rows 2000 --selects 50`` runs on the local endpoint, which
answers as AWS does (``s3aads_pandas.local.aws``), with the client configured for us-east-1:

- ``insert`` + ``select`` x S on a bucket in us-east-1 and on one in eu-west-1, on each transport:
  the requests the endpoint answered (redirects included), the seconds, and what went wrong;
- a write and a read of N rows in a general-purpose bucket and in a directory bucket.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pandas as pd

from s3aads_pandas import Database, Table
from s3aads_pandas.local import LocalS3


def measured(server: LocalS3, work: Callable[[], None]) -> tuple[str, int, int, float]:
    """What ``work`` cost: its outcome, the requests answered, those refused as wrongly signed, seconds."""
    server.answered.clear()
    started = time.perf_counter()
    try:
        work()
        outcome = "ok"
    except Exception as error:  # a benchmark reports a failure as its outcome
        outcome = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:90]}"
    elapsed = time.perf_counter() - started
    wrong = sum(n for answer, n in server.answered.items() if answer.split()[1] in {"301", "400"})
    return outcome, sum(server.answered.values()), wrong, elapsed


def rows_are(expected: int, got: int) -> None:
    if got != expected:
        raise AssertionError(f"{got} rows, not {expected}")


def regions(server: LocalS3, selects: int) -> None:
    print("| bucket region | transport | outcome | requests | of them redirected | seconds |")
    print("|---|---|---|---:|---:|---:|")
    for region in ("us-east-1", "eu-west-1"):
        for transport in ("obstore", "boto3"):
            server.reset()
            name = f"bench-{region}"
            Database(name, server.settings(), region_name=region).create()
            db = Database(name, server.settings(), region_name="us-east-1", transport=transport)
            table = Table("t", db, ["id"])

            def work(table: Table = table) -> None:
                table.insert(b"payload", id=1)
                for _ in range(selects):
                    assert table.select(id=1) == b"payload"

            outcome, requests, wrong, seconds = measured(server, work)
            print(f"| {region} | {transport} | {outcome} | {requests} | {wrong} | {seconds:.2f} |")


def directory(server: LocalS3, rows: int) -> None:
    print("| bucket | operation | outcome | requests | seconds |")
    print("|---|---|---|---:|---:|")
    frame = pd.DataFrame({"id": range(rows), "data": [f"row {i}".encode() for i in range(rows)]})
    for name in ("bench-general", "bench--use1-az4--x-s3"):
        server.reset()
        db = Database(name, server.settings())
        db.create()
        table = Table("t", db, ["id"])
        steps = {
            "write": lambda table=table: rows_are(rows, frame.s3aads.write(table, progress=False).written),
            "read": lambda table=table: rows_are(rows, len(pd.read_s3aads(table, progress=False))),
            "keys": lambda table=table: rows_are(rows, len(table.keys)),
        }
        for operation, step in steps.items():
            outcome, requests, _, seconds = measured(server, step)
            print(f"| {name} | {operation} | {outcome} | {requests} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--selects", type=int, default=50)
    args = parser.parse_args()
    with LocalS3() as server:
        regions(server, args.selects)
        print()
        directory(server, args.rows)


if __name__ == "__main__":
    main()
