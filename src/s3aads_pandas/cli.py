"""The ``s3aads`` command: a local S3 endpoint, a demo, and tables to and from files."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from .config import configure
from .database import Database
from .errors import S3aadsError
from .pandas_io import read_s3aads, resolve_table, split_table_name
from .table import Table

FILE_FORMATS = ("table", "csv", "json", "parquet")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _filters(pairs: Sequence[str]) -> dict[str, Any]:
    """``col=value`` pairs; a column given twice or ``col=a,b`` means any of the values."""
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column:
            raise S3aadsError(f"filters are column=value, got {pair!r}")
        filters.setdefault(column, []).extend(value.split(","))
    return {c: v[0] if len(v) == 1 else v for c, v in filters.items()}


def _format_of(path: str | None, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    return {"csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "pq": "parquet"}.get(suffix, "table")


def _write_frame(frame: pd.DataFrame, output: str | None, fmt: str) -> None:
    if fmt == "parquet":
        if not output:
            raise S3aadsError("--format parquet needs -o FILE: Parquet is binary")
        frame.to_parquet(output, index=False)
        return
    text = {
        "table": lambda: frame.to_string(index=False) + "\n",
        "csv": lambda: frame.to_csv(index=False),
        "json": lambda: frame.to_json(orient="records", lines=True, force_ascii=False),
    }[fmt]()
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _read_file(path: str) -> pd.DataFrame:
    suffix = Path(path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if suffix in {".json", ".jsonl"}:
        return pd.read_json(path, orient="records", lines=True, dtype=False)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise S3aadsError(f"cannot tell the format of {path!r}: use a .csv, .parquet or .jsonl file")


def cmd_serve(args: argparse.Namespace) -> int:
    from .local_s3 import LocalS3

    with LocalS3(port=args.port) as server:
        exports = " ".join(f"{k}={v}" for k, v in server.environ().items())
        print(f"export {exports}", flush=True)
        print(f"# local S3 endpoint on {server.endpoint_url}, data in memory; Ctrl-C stops it", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .local_s3 import LocalS3

    steps: list[tuple[str, float]] = []

    def step(name: str, started: float) -> None:
        steps.append((name, time.perf_counter() - started))

    started = time.perf_counter()
    with LocalS3() as server:
        os.environ.update(server.environ())
        configure(endpoint_url=server.endpoint_url)
        step("start a local S3 endpoint", started)
        started = time.perf_counter()
        db = Database("s3aads-demo")
        db.create()
        table = Table("daily-data", db, ["id", "year", "month", "day"])
        frame = pd.DataFrame({
            "id": range(args.rows),
            "year": [2020 + i % 3 for i in range(args.rows)],
            "month": [f"{1 + i % 12:02d}" for i in range(args.rows)],
            "day": [f"{1 + i % 28:02d}" for i in range(args.rows)],
            "data": [f'{{"row": {i}, "value": {i * i % 97}}}' for i in range(args.rows)],
        })
        frame.s3aads.write(table, progress=False)
        step(f"write {len(frame)} rows with df.s3aads.write", started)
        started = time.perf_counter()
        back = pd.read_s3aads(table, year=2021, decode="json", progress=False)
        step(f"read the {len(back)} rows of 2021 with pd.read_s3aads", started)
    print(back.head(10).to_string(index=False))
    print()
    for name, seconds in steps:
        print(f"{seconds:7.3f} s  {name}")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    database = Database(args.database)
    rows = [(name, ", ".join(database.recorded_columns(name) or ())) for name in database.tables]
    _write_frame(pd.DataFrame(rows, columns=["table", "columns"]), None, "table")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    fmt = _format_of(args.output, args.format)
    frame = read_s3aads(resolve_table(args.table), data=not args.keys_only, decode=args.decode,
                        filters=_filters(args.filters), progress=False if args.quiet else None)
    _write_frame(frame, args.output, fmt)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    fmt = _format_of(args.file, None)
    if fmt == "table":
        raise S3aadsError(f"cannot tell the format of {args.file!r}: use a .csv, .parquet or .jsonl file")
    frame = read_s3aads(resolve_table(args.table), decode=args.decode, filters=_filters(args.filters))
    _write_frame(frame, args.file, fmt)
    print(f"exported {len(frame)} rows to {args.file}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    frame = _read_file(args.file)
    if args.partition_by:
        result = frame.s3aads.write(args.table, partition_by=args.partition_by.split(","), format="parquet")
    else:
        table = resolve_table(args.table) if not args.columns else Table(
            *split_table_name(args.table), args.columns.split(","))
        result = frame.s3aads.write(table, data=args.data)
    print(f"imported {result.written} objects into {args.table}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="s3aads", description="S3 as a cheap datastore: tables of S3 objects.")
    top.add_argument("--endpoint-url", help="S3 endpoint (default: boto3's, e.g. AWS_ENDPOINT_URL)")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run a local S3 endpoint on 127.0.0.1 (in memory)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="write and read a sample table on an embedded endpoint")
    demo.add_argument("--rows", type=int, default=300)
    demo.set_defaults(run=cmd_demo)

    tables = commands.add_parser("tables", help="list the tables of a database and their columns")
    tables.add_argument("database")
    tables.set_defaults(run=cmd_tables)

    query = commands.add_parser("query", help="print the rows of DB/TABLE matching col=value filters")
    query.add_argument("table", metavar="DB/TABLE")
    query.add_argument("filters", nargs="*", metavar="col=value")
    query.add_argument("--format", choices=FILE_FORMATS, help="output format (default: from -o, else table)")
    query.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of the terminal")
    query.add_argument("--decode", choices=("str", "json", "bytes"), default="str")
    query.add_argument("--keys-only", action="store_true", help="key columns only, no payloads")
    query.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    query.set_defaults(run=cmd_query)

    export = commands.add_parser("export", help="write the rows of DB/TABLE to a CSV, JSON lines or Parquet file")
    export.add_argument("table", metavar="DB/TABLE")
    export.add_argument("file")
    export.add_argument("filters", nargs="*", metavar="col=value")
    export.add_argument("--decode", choices=("str", "json", "bytes"), default="str")
    export.set_defaults(run=cmd_export)

    imports = commands.add_parser("import", help="write the rows of a CSV, JSON lines or Parquet file to DB/TABLE")
    imports.add_argument("table", metavar="DB/TABLE")
    imports.add_argument("file")
    imports.add_argument("--columns", help="key columns, comma-separated (default: the table's record)")
    imports.add_argument("--data", default="data", help="payload column (default: data)")
    imports.add_argument("--partition-by", help="dataset mode: key columns; each group becomes one Parquet object")
    imports.set_defaults(run=cmd_import)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.endpoint_url:
        configure(endpoint_url=args.endpoint_url)
    try:
        return int(args.run(args))
    except (S3aadsError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        rest = str(error).splitlines()[1:]
        print(f"s3aads: error: {first}", file=sys.stderr)
        for line in rest:
            print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("s3aads: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
