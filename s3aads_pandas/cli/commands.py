"""The commands: each reads its parsed arguments, checks what it can before any request, and
returns the exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from s3aads_pandas.cli.files import file_format, format_of, read_file, write_frames
from s3aads_pandas.config import configure
from s3aads_pandas.errors import S3aadsError
from s3aads_pandas.frames.read import read_s3aads, resolve_table, split_table_name
from s3aads_pandas.tables.datastore import Database, Table

#: Rows `query` reads and prints at a time: the first ones show after the first listing page.
QUERY_CHUNK = 1000
#: How ``--decode`` reads payloads when it is not given.
DEFAULT_DECODE = "str"


def _filters(pairs: Sequence[str]) -> dict[str, Any]:
    """``col=value`` pairs; a column given twice or ``col=a,b`` means any of the values."""
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column:
            raise S3aadsError(f"filters are column=value, got {pair!r}")
        filters.setdefault(column, []).extend(value.split(","))
    return {c: v[0] if len(v) == 1 else v for c, v in filters.items()}


def _progress(args: argparse.Namespace) -> bool | None:
    """Progress bars on a terminal (for long transfers), never with -q or into a pipe or file."""
    return False if args.quiet or not sys.stderr.isatty() else None


def _say(args: argparse.Namespace, message: str) -> None:
    """A summary line on stderr, unless -q."""
    if not args.quiet:
        print(message, file=sys.stderr)


def _listed(names: Sequence[object]) -> str:
    return ", ".join(map(str, names))


def cmd_serve(args: argparse.Namespace) -> int:
    from s3aads_pandas.local.server import LocalS3

    with LocalS3(port=args.port) as server:
        exports = " ".join(f"{k}={v}" for k, v in server.environ().items())
        print(f"export {exports}", flush=True)
        _say(args, f"# local S3 endpoint on {server.endpoint_url}, data in memory, no authentication; "
                   "Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from s3aads_pandas.local.server import LocalS3

    steps: list[tuple[str, float]] = []

    def step(name: str, started: float) -> None:
        steps.append((name, time.perf_counter() - started))

    started = time.perf_counter()
    with contextlib.ExitStack() as endpoint:
        if args.database is None:
            server = endpoint.enter_context(LocalS3())
            os.environ.update(server.environ())
            configure(endpoint_url=server.endpoint_url)
            step("start a local S3 endpoint", started)
            started = time.perf_counter()
        db = Database(args.database or "s3aads-demo")
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
    print()
    if args.database is None:
        print("The local endpoint kept its data in memory: it is gone. To keep data without an AWS account, "
              "use a folder: s3aads demo --database file:///tmp/s3aads/demo")
    else:
        print(f"The table is kept in {db.url}/daily-data: s3aads query {db.url}/daily-data year=2021")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    created = Database(args.database).create()
    _say(args, f"created database {args.database}" if created else f"database {args.database} exists already")
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    table = resolve_table(args.table)
    if not args.yes:
        if not sys.stdin.isatty():
            raise S3aadsError(f"drop deletes every row of {args.table}: confirm with --yes")
        answer = input(f"delete table {table.name} of database {table.database.reference} and all its rows? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            _say(args, "nothing deleted")
            return 1
    deleted = table.database.drop_table(table.name)
    _say(args, f"dropped {args.table}: {deleted} rows deleted")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    database = Database(args.database)
    rows = [(name, _listed(database.recorded_columns(name) or ())) for name in database.tables]
    write_frames(iter([pd.DataFrame(rows, columns=["table", "columns"])]), None, "table")
    return 0


def _read_options(args: argparse.Namespace, table: Table) -> dict[str, Any]:
    """How to read the table's objects: each a table of rows (``--dataset``, or the format its
    record names) or each one row's payload (``--decode``)."""
    record = table.database.table_record(table.name)
    dataset = args.dataset or (record.dataset if record else None)
    data = not getattr(args, "keys_only", False)  # export has no --keys-only
    if dataset is None:
        return {"decode": args.decode or DEFAULT_DECODE, "data": data}
    if args.decode:
        raise S3aadsError(f"--decode reads one payload a row, and the objects of {args.table} are {dataset} "
                          "tables of rows: leave out --decode")
    return {"format": dataset, "data": data}


def cmd_query(args: argparse.Namespace) -> int:
    fmt = format_of(args.output, args.format)
    if fmt == "parquet" and not args.output:
        raise S3aadsError("--format parquet needs -o FILE: Parquet is binary")
    _check_folder(args.output)
    table = resolve_table(args.table)
    frames = read_s3aads(table, filters=_filters(args.filters), chunksize=QUERY_CHUNK, progress=_progress(args),
                         **_read_options(args, table))
    rows = [0]

    def counted(frames: Any) -> Any:
        for frame in frames:
            rows[0] += len(frame)
            yield frame

    write_frames(counted(frames), args.output, fmt)
    if args.output:
        _say(args, f"wrote {rows[0]} rows to {args.output}")
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    print(resolve_table(args.table).count(**_filters(args.filters)))
    return 0


def cmd_distinct(args: argparse.Namespace) -> int:
    table = resolve_table(args.table)
    columns = args.columns.split(",")
    frame = pd.DataFrame(table.distinct(columns, **_filters(args.filters)), columns=columns, dtype="str")
    write_frames(iter([frame]), None, "table")
    return 0


def _check_folder(path: str | None) -> None:
    """Refuse a file to write in a folder that does not exist: before the table is read, not after."""
    folder = os.path.dirname(os.path.abspath(path)) if path else None
    if folder and not os.path.isdir(folder):
        raise S3aadsError(f"cannot write {path}: the folder {folder} does not exist")


def cmd_export(args: argparse.Namespace) -> int:
    fmt = file_format(args.file)
    _check_folder(args.file)
    table = resolve_table(args.table)
    frame = read_s3aads(table, filters=_filters(args.filters), progress=_progress(args), **_read_options(args, table))
    write_frames(iter([frame]), args.file, fmt)  # not chunked: one frame
    _say(args, f"exported {len(frame)} rows to {args.file}")  # type: ignore[arg-type]
    return 0


def _named_columns(option: str, text: str, frame: pd.DataFrame, path: str) -> list[str]:
    """The columns an option names, each of which the file must have."""
    columns = [column.strip() for column in text.split(",")]
    absent = [column for column in columns if column not in frame.columns]
    if absent:
        raise S3aadsError(f"{option} names {_listed(absent)}, which {path} lacks; "
                          f"its columns are: {_listed(frame.columns)}")
    return columns


def _check_payload(args: argparse.Namespace, frame: pd.DataFrame, keys: list[str]) -> None:
    """A row-per-object file has the payload column and no column that would be lost."""
    if args.data not in frame.columns:
        raise S3aadsError(f"{args.file} has no payload column {args.data!r}: name it with --data COLUMN "
                          f"(its columns are: {_listed(frame.columns)})")
    extra = [str(column) for column in frame.columns if column not in keys and column != args.data]
    if extra:
        raise S3aadsError(
            f"column(s) {_listed(extra)} of {args.file} are neither key columns ({_listed(keys)}) nor the payload "
            f"column ({args.data}), and would be lost: add them to --columns, or import the file as a dataset "
            f"with --partition-by {','.join(keys)}")


def cmd_import(args: argparse.Namespace) -> int:
    """Checks the file against the options first (no request), then against the table's record."""
    option = "--partition-by" if args.partition_by else "--columns"
    named = args.partition_by or args.columns
    frame = read_file(args.file, text_only=not args.partition_by)
    keys = _named_columns(option, named, frame, args.file) if named else None
    if keys is not None and not args.partition_by:
        _check_payload(args, frame, keys)
    table_name, database = split_table_name(args.table)
    if args.create:
        database.create()
    recorded = database.recorded_columns(table_name)
    if keys is None:
        if recorded is None:
            raise S3aadsError(f"{args.table} has no column record yet: name its key columns with --columns "
                              f"(the columns of {args.file} are: {_listed(frame.columns)})")
        keys = _named_columns(f"the record of {args.table}", ",".join(recorded), frame, args.file)
        _check_payload(args, frame, keys)
    elif recorded is not None and tuple(keys) != recorded:
        raise S3aadsError(f"{args.table} is recorded with the key columns {_listed(recorded)}, not {_listed(keys)}: "
                          f"give {option} {','.join(recorded)}")
    target = Table(table_name, database, keys)
    frame = _whole_floats_as_integers(frame, keys)
    if args.partition_by:
        result = frame.s3aads.write(target, partition_by=keys, format="parquet", progress=_progress(args))
    else:
        result = frame.s3aads.write(target, data=args.data, progress=_progress(args))
    _say(args, f"imported {result.written} objects into {args.table}")
    return 0


def _whole_floats_as_integers(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Key columns of whole numbers as integers: a file's reader makes 1 a float 1.0 (whose key
    would say "1.0") when the column also has an empty value."""
    floats = [key for key in keys if pd.api.types.is_float_dtype(frame[key])
              and (frame[key].dropna() % 1 == 0).all()]
    return frame.astype({key: "Int64" for key in floats}) if floats else frame
