"""The ``%%s3aads`` cell magic and ``%s3aads`` line magic (``%load_ext s3aads_pandas``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from s3aads_pandas.config import default_settings
from s3aads_pandas.errors import MagicError, S3aadsError, extra_required
from s3aads_pandas.notebook.sql import Context, Explanation, execute

with extra_required("notebook", "the %%s3aads magic"):
    from IPython.core.magic import Magics, line_cell_magic, magics_class

_OPTIONS_WITH_VALUE = {"-o": "out", "--out": "out", "--database": "database", "--limit": "limit",
                       "--endpoint-url": "endpoint_url", "--decode": "decode"}
_FLAGS = {"--no-progress": "no_progress", "--force": "force", "--explain": "explain"}


def split_options(line: str) -> tuple[dict[str, Any], str]:
    """Leading options of the magic line, and the rest of it untouched (the SQL, quotes and all)."""
    options: dict[str, Any] = {"out": None, "database": None, "limit": None, "endpoint_url": None,
                               "decode": "bytes", "no_progress": False, "force": False, "explain": False}
    rest = line.strip()
    while rest.startswith("-"):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, has_value, value = token.partition("=")
        if name in _FLAGS and not has_value:
            options[_FLAGS[name]] = True
        elif name in _OPTIONS_WITH_VALUE:
            if not has_value:
                value, _, rest = rest.partition(" ")
                rest = rest.lstrip()
            if not value:
                raise MagicError(f"option {name} needs a value")
            options[_OPTIONS_WITH_VALUE[name]] = value
        else:
            known = ", ".join([*sorted(set(_OPTIONS_WITH_VALUE) - {"-o"}), "-o", *_FLAGS])
            raise MagicError(f"unknown option {token!r}; the options are {known}")
    if options["limit"] is not None:
        if not options["limit"].isdigit():
            raise MagicError(f"--limit takes a whole number, got {options['limit']!r}")
        options["limit"] = int(options["limit"])
    if options["out"] is not None and not options["out"].isidentifier():
        raise MagicError(f"-o takes a Python name, got {options['out']!r}")
    return options, rest


@magics_class
class S3aadsMagics(Magics):
    """Run SQL on s3aads tables and DataFrames of the notebook, with DuckDB.

    ``%%s3aads [-o NAME] [--database DB] [--limit N] [--decode bytes|str|json] [--explain]
    [--no-progress] [--endpoint-url URL] [--force]`` followed by one statement: any DuckDB
    ``SELECT`` (GROUP BY, aggregates, JOIN, window functions, CTEs...), ``SHOW TABLES [FROM db]``,
    ``DESCRIBE t``, ``DELETE FROM t WHERE ...``. A table is a Table or DataFrame bound to that
    name, or ``db.table`` (``"my-db"."my-table"`` for names with hyphens). Key columns are text;
    ``data`` is the payload, decoded as ``--decode`` says (JSON fields: ``data->>'field'``).
    ``:name`` binds a notebook variable as a value. ``--explain`` shows the plan without running it.
    """

    @line_cell_magic
    def s3aads(self, line: str, cell: str | None = None) -> pd.DataFrame | Explanation:
        try:
            options, rest = split_options(line)
            sql = cell if cell is not None else rest
            if cell is not None and rest:
                raise MagicError(f"unexpected text on the %%s3aads line: {rest!r}; put the SQL in the cell")
            settings = default_settings()
            if options["endpoint_url"]:
                settings = settings.replace(endpoint_url=options["endpoint_url"])
            context = Context(
                namespace=self.shell.user_ns if self.shell is not None else {},
                database=options["database"],
                settings=settings,
                limit=options["limit"],
                progress=False if options["no_progress"] else None,
                force=options["force"],
                decode=options["decode"],
                explain=options["explain"],
            )
            result = execute(sql, context)
        except MagicError:
            raise
        except S3aadsError as error:
            raise MagicError(str(error)) from None
        if options["out"] and self.shell is not None:
            self.shell.user_ns[options["out"]] = result
        return result


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(S3aadsMagics)
