"""The ``%%s3aads`` cell magic and ``%s3aads`` line magic (``%load_ext s3aads_pandas``)."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from s3aads_pandas.config import default_settings
from s3aads_pandas.errors import MagicError, S3aadsError, extra_required
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.notebook.sql import Context, Explanation, Text, execute
from s3aads_pandas.storage.usage import usage

with extra_required("notebook", "the %%s3aads magic"):
    from IPython.core.error import UsageError
    from IPython.core.magic import Magics, line_cell_magic, magics_class
    from IPython.core.magic_arguments import argument, magic_arguments
    from IPython.display import display

def split_options(line: str, parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, str]:
    """The leading options of the magic line, parsed, and the rest of it untouched (the SQL,
    quotes and all): argparse alone would split the SQL into words."""
    tokens: list[str] = []
    rest = line.strip()
    takes_value = False
    while rest and (takes_value or rest.startswith("-")):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        tokens.append(token)
        if takes_value:
            takes_value = False
            continue
        name, has_value, _ = token.partition("=")
        action = parser._option_string_actions.get(name)
        if action is None:
            known = ", ".join(sorted({option for option in parser._option_string_actions if option != "-o"}))
            raise MagicError(f"unknown option {token!r}; the options are {known}, -o")
        takes_value = action.nargs != 0 and not has_value
    if takes_value:
        raise MagicError(f"option {tokens[-1]} needs a value")
    try:
        options = parser.parse_args(tokens)
    except UsageError as error:
        raise MagicError(str(error)) from None
    if options.limit is not None:
        if not options.limit.isdigit():
            raise MagicError(f"--limit takes a whole number, got {options.limit!r}")
        options.limit = int(options.limit)
    if options.out is not None and not options.out.isidentifier():
        raise MagicError(f"-o takes a Python name, got {options.out!r}")
    return options, rest


@magics_class
class S3aadsMagics(Magics):
    """The ``%%s3aads`` cell magic and ``%s3aads`` line magic."""

    @line_cell_magic
    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="also store the result in the notebook variable NAME")
    @argument("--database", metavar="DB", help="the database of table names that name none")
    @argument("--limit", metavar="N", help="at most N rows: the statement's own LIMIT when that is smaller")
    @argument("--decode", default="bytes", metavar="CODEC",
              help=f"how the payload column reads: {', '.join(CODECS)} (default: bytes)")
    @argument("--explain", action="store_true", help="show the plan and send no request")
    @argument("--no-progress", action="store_true", help="no progress bar")
    @argument("--quiet", action="store_true", help="no line saying what the statement sent and what it cost")
    @argument("--endpoint-url", metavar="URL", help="the S3 endpoint, for this statement")
    @argument("--force", action="store_true", help="let a DELETE without WHERE delete every row")
    def s3aads(self, line: str, cell: str | None = None) -> pd.DataFrame | Explanation:
        """Run SQL on s3aads tables and DataFrames of the notebook, with DuckDB.

        The options, then one statement (in the cell, or after the options on the line): any DuckDB
        ``SELECT`` (GROUP BY, aggregates, JOIN, window functions, CTEs...), ``SHOW TABLES [FROM db]``,
        ``DESCRIBE t``, ``DELETE FROM t WHERE ...``. A table is a Table or DataFrame bound to that
        name, or ``db.table`` (``"my-db"."my-table"`` for names with hyphens). Key columns are text;
        ``data`` is the payload, decoded as ``--decode`` says (JSON fields: ``data->>'field'``).
        ``:name`` binds a notebook variable as a value. ``--explain`` shows the plan without running it.
        After a statement, one line says what it sent and cost (``--quiet`` hides it).
        """
        try:
            options, rest = split_options(line, self.s3aads.parser)
            sql = cell if cell is not None else rest
            if cell is not None and rest:
                raise MagicError(f"unexpected text on the %%s3aads line: {rest!r}; put the SQL in the cell")
            settings = default_settings()
            if options.endpoint_url:
                settings = settings.replace(endpoint_url=options.endpoint_url)
            context = Context(
                namespace=self.shell.user_ns if self.shell is not None else {},
                database=options.database,
                settings=settings,
                limit=options.limit,
                progress=False if options.no_progress else None,
                force=options.force,
                decode=options.decode,
                explain=options.explain,
            )
            with usage() as used:
                result = execute(sql, context)
        except MagicError:
            raise
        except S3aadsError as error:
            raise MagicError(str(error)) from None
        if options.out and self.shell is not None:
            self.shell.user_ns[options.out] = result
        if not (options.quiet or options.explain):
            display(Text(used.summary()))
        return result


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(S3aadsMagics)
