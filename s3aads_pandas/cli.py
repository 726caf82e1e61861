"""The ``s3aads`` command: a local S3 endpoint, a demo, and tables to and from files."""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from s3aads_pandas.config import configure
from s3aads_pandas.errors import BulkOperationError, DatabaseNotFoundError, S3aadsError
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.frames.read import read_s3aads, resolve_table, split_table_name
from s3aads_pandas.tables.datastore import Database, Table

FILE_FORMATS = ("table", "csv", "json", "parquet")
#: Rows `query` reads and prints at a time: the first ones show after the first listing page.
QUERY_CHUNK = 1000
#: The header suffix of a column of bytes written as base64 text to a CSV or JSON lines file;
#: import decodes such a column back into bytes under its name without the suffix.
BASE64_SUFFIX = ":base64"
_READERS = {"csv": "CSV", "json": "JSON lines", "parquet": "Parquet"}


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
    _write_frames(iter([frame]), output, fmt)


def _write_frames(frames: Iterator[pd.DataFrame], output: str | None, fmt: str) -> None:
    """Write frames one after the other as one file, so that the first rows show at once (a
    terminal table is aligned over all its rows, so it is written when they are all read)."""
    if fmt == "parquet":
        if not output:
            raise S3aadsError("--format parquet needs -o FILE: Parquet is binary")
        pd.concat(list(frames), ignore_index=True).to_parquet(output, index=False)
        return
    if fmt == "table":  # one alignment for every row: the table is printed once it is all read
        frames = iter([pd.concat(list(frames), ignore_index=True)])
    with open(output, "w", encoding="utf-8") if output else contextlib.nullcontext(sys.stdout) as stream:
        for number, frame in enumerate(frames):
            if fmt in {"csv", "json"}:
                frame = _bytes_as_base64(frame)
            first = number == 0
            if fmt == "table":
                text = frame.to_string(index=False) + "\n" if len(frame) else "  ".join(map(str, frame.columns)) + "\n"
            elif fmt == "csv":
                text = frame.to_csv(index=False, header=first)
            else:
                text = frame.to_json(orient="records", lines=True, force_ascii=False) if len(frame) else ""
                text = text if not text or text.endswith("\n") else text + "\n"
            stream.write(text)
            stream.flush()


def _bytes_as_base64(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of bytes as base64 text under ``<name>:base64``: text files cannot hold raw bytes."""
    encoded = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object and values.map(lambda v: isinstance(v, bytes)).any():
            encoded[name] = values.map(lambda v: base64.b64encode(v).decode() if isinstance(v, bytes) else v)
    if not encoded:
        return frame
    return frame.assign(**encoded).rename(columns={name: f"{name}{BASE64_SUFFIX}" for name in encoded})


def _base64_as_bytes(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """The inverse of :func:`_bytes_as_base64`."""
    for name in [c for c in frame.columns if str(c).endswith(BASE64_SUFFIX)]:
        try:
            decoded = frame[name].map(lambda v: base64.b64decode(v, validate=True))
        except (ValueError, TypeError):
            raise S3aadsError(f"column {name!r} of {path} is not base64 text") from None
        frame = frame.assign(**{name: decoded}).rename(columns={name: name[: -len(BASE64_SUFFIX)]})
    return frame


def _read_file(path: str) -> pd.DataFrame:
    """The rows of a CSV, JSON lines or Parquet file; a file that is not one says so in a line."""
    fmt = _format_of(path, None)
    if fmt == "table":
        raise S3aadsError(f"cannot tell the format of {path!r}: use a .csv, .parquet or .jsonl file")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "json":
            frame = pd.read_json(path, orient="records", lines=True, dtype=False)
        else:
            with warnings.catch_warnings():  # a row longer than the header would lose fields
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except (OSError, ImportError):
        raise
    except Exception as error:  # each reader has its own errors for a malformed file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise S3aadsError(f"cannot read {path} as {_READERS[fmt]}: {reason}") from None
    if frame.empty and not len(frame.columns):
        raise S3aadsError(f"{path} holds no rows and no columns")
    return _base64_as_bytes(frame, path)


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


def _progress(args: argparse.Namespace) -> bool | None:
    """Progress bars on a terminal (for long transfers), never with -q or into a pipe or file."""
    return False if args.quiet or not sys.stderr.isatty() else None


def _say(args: argparse.Namespace, message: str) -> None:
    """A summary line on stderr, unless -q."""
    if not args.quiet:
        print(message, file=sys.stderr)


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
    rows = [(name, ", ".join(database.recorded_columns(name) or ())) for name in database.tables]
    _write_frame(pd.DataFrame(rows, columns=["table", "columns"]), None, "table")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    fmt = _format_of(args.output, args.format)
    if fmt == "parquet" and not args.output:
        raise S3aadsError("--format parquet needs -o FILE: Parquet is binary")
    frames = read_s3aads(resolve_table(args.table), data=not args.keys_only, decode=args.decode,
                         filters=_filters(args.filters), chunksize=QUERY_CHUNK, progress=_progress(args))
    _write_frames(frames, args.output, fmt)
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    print(resolve_table(args.table).count(**_filters(args.filters)))
    return 0


def cmd_distinct(args: argparse.Namespace) -> int:
    table = resolve_table(args.table)
    columns = args.columns.split(",")
    frame = pd.DataFrame(table.distinct(columns, **_filters(args.filters)), columns=columns, dtype="str")
    _write_frames(iter([frame]), None, "table")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    fmt = _format_of(args.file, None)
    if fmt == "table":
        raise S3aadsError(f"cannot tell the format of {args.file!r}: use a .csv, .parquet or .jsonl file")
    folder = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(folder):  # before the table is read, not after
        raise S3aadsError(f"cannot write {args.file}: the folder {folder} does not exist")
    frame = read_s3aads(resolve_table(args.table), decode=args.decode, filters=_filters(args.filters),
                        progress=_progress(args))
    _write_frame(frame, args.file, fmt)
    _say(args, f"exported {len(frame)} rows to {args.file}")  # type: ignore[arg-type]  # not chunked: a frame
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    frame = _read_file(args.file)
    table_name, database = split_table_name(args.table)
    if args.create:
        database.create()
    if args.partition_by:
        partition_by = args.partition_by.split(",")
        absent = [column for column in partition_by if column not in frame.columns]
        if absent:
            recorded = Table(table_name, database).columns
            known = (f"the key columns of {args.table} are: {', '.join(recorded)}" if recorded
                     else f"the columns of {args.file} are: {', '.join(map(str, frame.columns))}")
            raise S3aadsError(f"--partition-by names column(s) {', '.join(absent)} that {args.file} lacks; {known}")
        result = frame.s3aads.write(args.table, partition_by=partition_by, format="parquet",
                                    progress=_progress(args))
    else:
        table = resolve_table(args.table) if not args.columns else Table(
            table_name, database, args.columns.split(","))
        result = frame.s3aads.write(table, data=args.data, progress=_progress(args))
    _say(args, f"imported {result.written} objects into {args.table}")
    return 0


FILTER_HELP = "keep rows whose column equals the value; col=a,b or the column twice means any of them"
def _decode_help() -> str:
    codecs = ", ".join(f"{name} ({codec.description})" for name, codec in CODECS.items())
    return (f"payloads as {codecs} (default: str); in CSV and JSON lines files bytes are written as base64 "
            f"under the header data{BASE64_SUFFIX}, which import decodes")


def _port(text: str) -> int:
    """A TCP port number, 0 for any free one."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, got {text!r}")
    return int(text)


DATABASE_HELP = "an S3 bucket, or a URL: s3://bucket, file:///path/to/folder, memory://name"
TABLE_HELP = "the database and the table: bucket/table, or file:///path/to/folder/table"


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="s3aads", description="S3 as a cheap datastore: tables of S3 objects.")
    top.add_argument("--endpoint-url", metavar="URL",
                     help="S3 endpoint (default: boto3's, such as AWS_ENDPOINT_URL or a profile's)")
    top.add_argument("--root", metavar="URL",
                     help="where databases named without a URL live: memory:// or file:///path (default: S3)")
    top.add_argument("-q", "--quiet", action="store_true", dest="quiet_before",
                     help="the same as -q after the command")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                                  help="what to do; `s3aads COMMAND --help` tells more")
    quiet = _Parser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar and no summary (progress bars show only on a terminal)")

    def command(name: str, help: str, run: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[quiet])
        sub.set_defaults(run=run)
        return sub

    serve = command("serve", "run a local S3 endpoint on 127.0.0.1 (in memory, no authentication)", cmd_serve)
    serve.add_argument("--port", type=_port, default=0, help="port, 0 to 65535 (default 0: any free one)")

    demo = command("demo", "write and read a sample table on an embedded local endpoint, with timings", cmd_demo)
    demo.add_argument("--rows", type=_positive, default=300, help="rows to write (default: 300)")
    demo.add_argument("--database", metavar="URL",
                      help="write there, such as file:///tmp/s3aads/demo (default: an embedded local S3 endpoint)")

    create = command("create", "create a database (an S3 bucket or a folder); nothing happens when it exists",
                     cmd_create)
    create.add_argument("database", metavar="DB", help=DATABASE_HELP)

    drop = command("drop", "delete a table: every row and its column record", cmd_drop)
    drop.add_argument("table", metavar="DB/TABLE", help=f"the table to delete ({TABLE_HELP})")
    drop.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    tables = command("tables", "list the tables of a database and their columns", cmd_tables)
    tables.add_argument("database", metavar="DB", help=DATABASE_HELP)

    count = command("count", "print how many rows of DB/TABLE match col=value filters (a listing, no GET)",
                    cmd_count)
    count.add_argument("table", metavar="DB/TABLE", help=f"the table to count ({TABLE_HELP})")
    count.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)

    distinct = command("distinct", "print the distinct values of columns among the rows of DB/TABLE", cmd_distinct)
    distinct.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    distinct.add_argument("columns", metavar="COLUMNS", help="key columns, comma-separated")
    distinct.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)

    query = command("query", "print the rows of DB/TABLE matching col=value filters", cmd_query)
    query.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    query.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)
    query.add_argument("--format", choices=FILE_FORMATS, help="output format (default: from -o, else table)")
    query.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of the terminal")
    query.add_argument("--decode", choices=tuple(CODECS), default="str", help=_decode_help())
    query.add_argument("--keys-only", action="store_true", help="key columns only, no payloads")

    export = command("export", "write the rows of DB/TABLE to a CSV, JSON lines or Parquet file", cmd_export)
    export.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    export.add_argument("file", metavar="FILE", help="a .csv, .jsonl (or .json) or .parquet file to write")
    export.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)
    export.add_argument("--decode", choices=tuple(CODECS), default="str", help=_decode_help())

    imports = command("import", "write the rows of a CSV, JSON lines or Parquet file to DB/TABLE", cmd_import)
    imports.add_argument("table", metavar="DB/TABLE", help=f"the table to write ({TABLE_HELP})")
    imports.add_argument("file", metavar="FILE", help="a .csv, .jsonl (or .json) or .parquet file to read")
    imports.add_argument("--columns", help="key columns, comma-separated (default: the table's record)")
    imports.add_argument("--data", default="data", help="payload column (default: data)")
    imports.add_argument("--partition-by", metavar="COLUMNS",
                         help="dataset mode: key columns, comma-separated; each group becomes one Parquet object")
    imports.add_argument("--create", action="store_true", help="create the database first if it does not exist")
    return top


def _bulk_failure(error: BulkOperationError, examples: int = 3) -> list[str]:
    """The failed rows in a few lines: how many failed of each kind, with a few example keys."""
    kinds: dict[str, list[str]] = {}
    for key, reason in sorted(error.failures.items()):
        kinds.setdefault(reason.split(":", 1)[0], []).append(key)
    lines = [f"s3aads: error: {error.action} failed for {len(error.failures)} of {error.total} rows "
             "(the others succeeded)"]
    for keys in kinds.values():
        more = f" and {len(keys) - examples} more" if len(keys) > examples else ""
        lines.append(f"  {len(keys)} x {error.failures[keys[0]]} ({', '.join(keys[:examples])}{more})")
    if any(kind.endswith("DecodeError") for kind in kinds):
        lines.append("  those payloads are not in the --decode format: --decode str or --decode bytes reads them")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.quiet = args.quiet or args.quiet_before  # -q before the command, or after it
    try:
        if args.endpoint_url:
            configure(endpoint_url=args.endpoint_url)
        if args.root:
            configure(root=args.root)
        return int(args.run(args))
    except DatabaseNotFoundError as error:
        print(f"s3aads: error: database {error.database!r} does not exist: create it with "
              f"`s3aads create {error.database}`, or import with --create", file=sys.stderr)
        return 1
    except BulkOperationError as error:
        for line in _bulk_failure(error):
            print(line, file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (S3aadsError, OSError, ImportError) as error:
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
