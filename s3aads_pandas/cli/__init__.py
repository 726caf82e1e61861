"""The ``s3aads`` command: a local S3 endpoint, a demo, and tables to and from files."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from s3aads_pandas.cli import commands
from s3aads_pandas.cli.files import BASE64_SUFFIX, FILE_FORMATS
from s3aads_pandas.cli.messages import error_lines, usage_line, warning_line
from s3aads_pandas.config import configure
from s3aads_pandas.errors import S3aadsError, TransferInterrupted
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.frames.formats import FORMATS
from s3aads_pandas.storage.usage import usage


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


FILTER_HELP = "keep rows whose column equals the value; col=a,b or the column twice means any of them"
DATABASE_HELP = "an S3 bucket, or a URL: s3://bucket, file:///path/to/folder, memory://name"
TABLE_HELP = "the database and the table: bucket/table, or file:///path/to/folder/table"
DATASET_HELP = ("read each object as a table of rows in this format (default: as the table's record says, which "
                "--partition-by imports record)")


def _decode_help() -> str:
    codecs = ", ".join(f"{name} ({codec.description})" for name, codec in CODECS.items())
    return (f"payloads as {codecs} (default: {commands.DEFAULT_DECODE}); in CSV and JSON lines files bytes are "
            f"written as base64 under the header data{BASE64_SUFFIX}, which import decodes")


def _port(text: str) -> int:
    """A TCP port number, 0 for any free one."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, got {text!r}")
    return int(text)


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The options that may come before the command or after it; after it, absent ones keep
    what was given before (``default`` is then argparse.SUPPRESS)."""
    flag = False if default is None else default
    parser.add_argument("--endpoint-url", metavar="URL", default=default,
                        help="S3 endpoint (default: boto3's, such as AWS_ENDPOINT_URL or a profile's)")
    parser.add_argument("--region", metavar="NAME", default=default,
                        help="the AWS region of the buckets (default: boto3's, such as AWS_DEFAULT_REGION)")
    parser.add_argument("--root", metavar="URL", default=default,
                        help="where databases named without a URL live: memory:// or file:///path (default: S3)")
    parser.add_argument("--cache", action="store_true", default=flag,
                        help="keep payloads read from S3 in the user cache folder, and read unchanged ones from it")
    parser.add_argument("--cache-dir", metavar="DIR", default=default,
                        help="keep payloads read from S3 in DIR (implies --cache)")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag,
                        help="no progress bar and no summary (progress bars show only on a terminal)")
    parser.add_argument("--usage", action="store_true", default=flag,
                        help="at the end, say on stderr how many requests the command sent and what they cost on S3")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="s3aads", description="S3 as a cheap datastore: tables of S3 objects.")
    _connection_options(top, None)
    subcommands = top.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                                     help="what to do; `s3aads COMMAND --help` tells more")
    common = _Parser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)

    def command(name: str, help: str, run: Any) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[common])
        sub.set_defaults(run=run)
        return sub

    serve = command("serve", "run a local S3 endpoint on 127.0.0.1 (in memory, no authentication)",
                    commands.cmd_serve)
    serve.add_argument("--port", type=_port, default=0, help="port, 0 to 65535 (default 0: any free one)")

    demo = command("demo", "write and read a sample table on an embedded local endpoint, with timings",
                   commands.cmd_demo)
    demo.add_argument("--rows", type=_positive, default=300, help="rows to write (default: 300)")
    demo.add_argument("--database", metavar="URL",
                      help="write there, such as file:///tmp/s3aads/demo (default: an embedded local S3 endpoint)")

    create = command("create", "create a database (an S3 bucket or a folder); nothing happens when it exists",
                     commands.cmd_create)
    create.add_argument("database", metavar="DB", help=DATABASE_HELP)

    drop = command("drop", "delete a table: every row and its column record", commands.cmd_drop)
    drop.add_argument("table", metavar="DB/TABLE", help=f"the table to delete ({TABLE_HELP})")
    drop.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    tables = command("tables", "list the tables of a database and their columns", commands.cmd_tables)
    tables.add_argument("database", metavar="DB", help=DATABASE_HELP)

    count = command("count", "print how many rows of DB/TABLE match col=value filters (a listing, no GET)",
                    commands.cmd_count)
    count.add_argument("table", metavar="DB/TABLE", help=f"the table to count ({TABLE_HELP})")
    count.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)

    distinct = command("distinct", "print the distinct values of columns among the rows of DB/TABLE",
                       commands.cmd_distinct)
    distinct.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    distinct.add_argument("columns", metavar="COLUMNS", help="key columns, comma-separated")
    distinct.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)

    query = command("query", "print the rows of DB/TABLE matching col=value filters", commands.cmd_query)
    query.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    query.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)
    query.add_argument("--format", choices=FILE_FORMATS, help="output format (default: from -o, else table)")
    query.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of the terminal")
    query.add_argument("--decode", choices=tuple(CODECS), help=_decode_help())
    query.add_argument("--dataset", choices=tuple(FORMATS), help=DATASET_HELP)
    query.add_argument("--keys-only", action="store_true", help="key columns only, no payloads")

    export = command("export", "write the rows of DB/TABLE to a CSV, JSON lines or Parquet file",
                     commands.cmd_export)
    export.add_argument("table", metavar="DB/TABLE", help=f"the table to read ({TABLE_HELP})")
    export.add_argument("file", metavar="FILE", help="a .csv, .jsonl (or .json) or .parquet file to write")
    export.add_argument("filters", nargs="*", metavar="col=value", help=FILTER_HELP)
    export.add_argument("--decode", choices=tuple(CODECS), help=_decode_help())
    export.add_argument("--dataset", choices=tuple(FORMATS), help=DATASET_HELP)

    imports = command("import", "write the rows of a CSV, JSON lines or Parquet file to DB/TABLE",
                      commands.cmd_import)
    imports.add_argument("table", metavar="DB/TABLE", help=f"the table to write ({TABLE_HELP})")
    imports.add_argument("file", metavar="FILE", help="a .csv, .jsonl (or .json) or .parquet file to read")
    imports.add_argument("--columns", help="key columns, comma-separated (default: the table's record)")
    imports.add_argument("--data", default="data", help="payload column (default: data)")
    imports.add_argument("--partition-by", metavar="COLUMNS",
                         help="dataset mode: key columns, comma-separated; each group becomes one Parquet object")
    imports.add_argument("--create", action="store_true", help="create the database first if it does not exist")
    return top


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    print(warning_line(message), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = {name: getattr(args, name) for name in ("endpoint_url", "region", "root")}
        settings["cache"] = args.cache_dir or args.cache
        if any(settings.values()):
            configure(**{("region_name" if k == "region" else k): v for k, v in settings.items() if v})
        with warnings.catch_warnings(), usage() as used:
            warnings.showwarning = _show_warning
            try:
                return int(args.run(args))
            finally:
                if args.usage:
                    print(usage_line(used), file=sys.stderr)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (S3aadsError, OSError, ImportError, TransferInterrupted) as error:
        for line in error_lines(error, args.command):
            print(line, file=sys.stderr)
        return 130 if isinstance(error, TransferInterrupted) else 1
    except KeyboardInterrupt:
        print("s3aads: interrupted", file=sys.stderr)
        return 130


def exit_with(code: int) -> NoReturn:
    """Leave the process with ``code``; after a Ctrl-C (130) at once, as Unix tools do: the
    output is flushed and every row written is whole, and the attempts still in flight (a
    second Ctrl-C leaves them) are not waited for."""
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_with(main())
