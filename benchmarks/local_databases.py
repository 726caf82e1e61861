"""Write, list and read N rows on each database this machine can hold, with default settings.

- ``file://``: a new temporary folder;
- ``memory://``: this process's memory;
- ``endpoint``: the embedded local S3 endpoint (moto's server on a thread of this process, as
  ``LocalS3`` and ``s3aads demo`` start it), over HTTP on the default transport.

Each step is one call of the public API, as a user makes it: ``df.s3aads.write(table)``, then
``table.count()`` (a listing), then ``pd.read_s3aads(table)``. Prints a Markdown table of wall
seconds and rows per second; a step that fails prints its error instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from s3aads_pandas import ConnectionSettings, Database, Table, configure
from s3aads_pandas.local import LocalS3

COLUMNS = ["customer", "id"]
logger = logging.getLogger("local_databases")


def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "customer": [f"c{i % 997:03d}" for i in range(n)],
        "id": [str(i) for i in range(n)],
        "data": [f'{{"row": {i}, "kind": "{("order", "refund")[i % 5 == 0]}"}}'.encode() for i in range(n)],
    })


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    try:
        result = step()
    except Exception as error:  # the measurement is that it failed, and how
        return time.perf_counter() - started, error
    return time.perf_counter() - started, result


def run(where: str, n: int) -> list[str]:
    frame = rows(n)
    endpoint = LocalS3() if where == "endpoint" else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as folder, endpoint as server:
        if server is not None:
            configure(server.settings())
        url = {"file": f"file://{folder}/bench", "memory": "memory://bench", "endpoint": "bench"}[where]
        database = Database(url)
        database.create()
        table = Table("events", database, COLUMNS)
        cells = [where, f"{n:,}"]
        for step in (lambda: frame.s3aads.write(table, progress=False), table.count,
                     lambda: pd.read_s3aads(table, progress=False)):
            seconds, result = timed(step)
            if isinstance(result, Exception):
                cells.append(f"failed after {seconds:.1f} s: {str(result).splitlines()[0][:120]}")
                break
            count = result if isinstance(result, int) else len(result) if isinstance(result, pd.DataFrame) else n
            cells.append(f"{seconds:.1f} s ({count / seconds:,.0f} rows/s)")
            logger.info("%s: %s", where, cells[-1])  # each step as it ends: the slow ones take minutes
        configure(ConnectionSettings())
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--where", default="file,memory,endpoint", help="comma-separated: file, memory, endpoint")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    print("| database | rows | write | list (count) | read |")
    print("|---|---:|---:|---:|---:|")
    for where in args.where.split(","):
        print("| " + " | ".join(run(where, args.rows)) + " |", flush=True)


if __name__ == "__main__":
    main()
