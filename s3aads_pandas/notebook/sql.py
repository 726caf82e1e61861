"""s3aads SQL: DuckDB's SQL over s3aads tables and notebook DataFrames, with S3 doing the least.

Statements are parsed with sqlglot. SELECTs are planned (:mod:`.query`: what is listed and
fetched) and run (:mod:`.engine`: DuckDB over the listed rows). SHOW TABLES, DESCRIBE and
DELETE are answered from the datastore itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from s3aads_pandas.config import ConnectionSettings, default_settings
from s3aads_pandas.errors import SqlError, extra_required
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.notebook import engine
from s3aads_pandas.notebook.query import Plan, explain, plan
from s3aads_pandas.tables.datastore import Database, Table

with extra_required("notebook", "s3aads SQL"):
    import sqlglot
    from sqlglot import exp

__all__ = ["Context", "Explanation", "SqlError", "execute", "parse"]


@dataclasses.dataclass
class Context:
    """What a statement may refer to besides the datastore."""

    namespace: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    database: str | None = None
    settings: ConnectionSettings | None = None
    limit: int | None = None
    progress: bool | None = None
    force: bool = False
    decode: str = "bytes"
    explain: bool = False
    #: One Database (so one store, one column-record cache) per name for the statement.
    databases: dict[str, Database] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.decode not in CODECS:
            raise SqlError(f"--decode takes one of {', '.join(CODECS)}, got {self.decode!r}")

    def database_named(self, name: str) -> Database:
        if name not in self.databases:
            self.databases[name] = Database(name, self.settings or default_settings())
        return self.databases[name]


def parse(sql: str) -> exp.Expression:
    """One statement; SHOW is read with MySQL's grammar, which knows it."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SqlError("no statement given: write SELECT ..., SHOW TABLES, DESCRIBE t or DELETE FROM t")
    _check_statement_word(text)
    dialect = "mysql" if text.split(None, 1)[0].upper() == "SHOW" else "duckdb"
    try:
        statements = sqlglot.parse(text, read=dialect)
    except sqlglot.errors.TokenError:
        raise SqlError("syntax error: the SQL cannot be read; look for a quote (' or \") that is not closed") from None
    except sqlglot.errors.ParseError as error:
        raise SqlError(f"syntax error: {_describe_parse_error(error)}") from None
    statement = statements[0] if len(statements) == 1 else None
    if not isinstance(statement, exp.Expression):
        raise SqlError("give one statement per cell or line")
    return statement


#: The words a statement the magic runs can start with (DuckDB's FROM-first SELECT included).
_FIRST_WORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "DELETE", "FROM")
#: Words of statements it does not run, which the parser names as unsupported.
_OTHER_STATEMENTS = frozenset({
    "INSERT", "UPDATE", "CREATE", "DROP", "ALTER", "COPY", "PRAGMA", "SET", "VALUES", "EXPLAIN", "SUMMARIZE",
    "PIVOT", "UNPIVOT", "ATTACH", "DETACH", "INSTALL", "LOAD", "CALL", "USE", "BEGIN", "COMMIT", "ROLLBACK",
    "TRUNCATE", "MERGE", "REPLACE", "EXPORT", "IMPORT", "CHECKPOINT", "VACUUM", "ANALYZE",
})


def _check_statement_word(text: str) -> None:
    """Refuse a statement that starts with no statement's word, naming the word and the likely
    one: the parser alone reads ``SELEC * FROM t`` as a multiplication."""
    first = re.match(r"\(|[^\s(]+", text)
    word = first.group(0) if first else text
    if word == "(" or word.upper() in _FIRST_WORDS or word.upper() in _OTHER_STATEMENTS:
        return
    guess = difflib.get_close_matches(word.upper(), _FIRST_WORDS, n=1, cutoff=0.6)
    hint = f": did you mean {guess[0]}?" if guess else ""
    raise SqlError(f"syntax error: a statement starts with SELECT, WITH, SHOW TABLES, DESCRIBE or DELETE, "
                   f"not {word!r}{hint}")


#: What the parser's names of expressions are in SQL, for its "missing" errors.
_EXPRESSION_NAMES = {"EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "In": "IN",
                     "Like": "LIKE", "ILike": "ILIKE", "And": "AND", "Or": "OR", "Not": "NOT", "Limit": "LIMIT",
                     "Where": "WHERE", "Order": "ORDER BY", "Between": "BETWEEN", "Mul": "*", "Div": "/",
                     "Add": "+", "Sub": "-"}
_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+.*?>")


def _describe_parse_error(error: sqlglot.errors.ParseError) -> str:
    """The parser's first complaint in SQL's words, not in the names of its classes."""
    if not error.errors:
        return str(error)
    first = error.errors[0]
    description = str(first.get("description"))
    missing = _MISSING.search(description)
    if missing:
        name = _EXPRESSION_NAMES.get(missing.group(2), missing.group(2).upper())
        part = "a value after it" if missing.group(1) == "expression" else f"its {missing.group(1)}"
        description = f"{name} is incomplete: it needs {part}"
    description = _TOKEN.sub(lambda match: repr(match.group(1)), description)
    near = re.sub(r"\x1b\[[0-9;]*m", "", str(first.get("highlight") or "")).strip()
    where = f" at line {first.get('line')}, column {first.get('col')}"
    return f"{description}{where}" + (f", near {near!r}" if near else "")


class Text(str):
    """Shown as text in IPython, not as a quoted string."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class Explanation(Text):
    """A plan in words."""


def execute(sql: str, context: Context) -> pd.DataFrame | Explanation:
    """Run one statement and return its result as a DataFrame (its plan, with ``explain``)."""
    statement = bind_parameters(parse(sql), context.namespace)
    if isinstance(statement, (exp.Select, exp.SetOperation)):
        return _run(_plan(statement, context), context)
    if isinstance(statement, exp.Delete):
        return _delete(statement, context)
    if context.explain:
        raise SqlError("--explain takes a SELECT or a DELETE")
    if isinstance(statement, exp.Show):
        return _show_tables(statement, context)
    if isinstance(statement, exp.Describe):
        return _describe(statement, context)
    raise SqlError(
        f"unsupported statement {statement.sql()[:60]!r}: use SELECT, SHOW TABLES, DESCRIBE or DELETE"
    )


def _plan(statement: exp.Expression, context: Context) -> Plan:
    return plan(statement, lambda node: bound(node, context), decode=context.decode, limit=context.limit)


def _run(query: Plan, context: Context) -> pd.DataFrame | Explanation:
    if context.explain:
        return Explanation(explain(query))
    return engine.run(query, progress=context.progress)


# -- tables and parameters ----------------------------------------------------------------------


def bound(node: exp.Table, context: Context) -> Table | pd.DataFrame:
    """What a table name stands for: a Table or DataFrame of the namespace, or ``db.table``."""
    if node.args.get("catalog"):
        raise SqlError(f"FROM needs a table name or database.table, got {node.sql()}")
    name, database = node.name, node.text("db") or None
    if database is None:
        value = context.namespace.get(name)
        if isinstance(value, (Table, pd.DataFrame)):
            return value
        if context.database is None:
            raise SqlError(
                f"unknown table {name!r}: bind a Table or a DataFrame to that name, write "
                "database.table, or give --database"
            )
        database = context.database
    table = context.database_named(database).get_table(name)
    if table is None:
        raise SqlError(f"unknown table {name!r} in database {database!r}: it has no rows and no column record")
    if not table.columns:
        raise SqlError(
            f"table {name!r} in database {database!r} has no recorded columns (written by s3aads "
            "2.x?): bind Table(name, database, columns=[...]) to a name and query that name"
        )
    return table


def resolve(node: exp.Expression | None, context: Context) -> Table:
    """The s3aads table a DESCRIBE or DELETE names."""
    table = bound(node, context) if isinstance(node, exp.Table) else None
    if not isinstance(table, Table):
        shown = node.sql() if node is not None else "nothing"
        raise SqlError(f"expected an s3aads table (a Table bound to a name, or database.table), got {shown}")
    return table


def bind_parameters(statement: exp.Expression, namespace: Mapping[str, Any]) -> exp.Expression:
    """``:name`` replaced by the value of that notebook variable, always as a value, never as SQL."""
    for node in list(statement.find_all(exp.Placeholder)):
        name = node.name
        if not name or name == "?":
            raise SqlError("parameters are named: write :name for a notebook variable")
        if name not in namespace:
            raise SqlError(f"parameter :{name} is not defined in the notebook namespace")
        try:
            node.replace(exp.convert(namespace[name]))
        except ValueError:
            kind = type(namespace[name]).__name__
            raise SqlError(f"parameter :{name} is a {kind}, not a value SQL can take") from None
    return statement


# -- statements answered by the datastore -------------------------------------------------------


def _show_tables(statement: exp.Show, context: Context) -> pd.DataFrame:
    if str(statement.name).upper() != "TABLES":
        raise SqlError("the only SHOW statement is SHOW TABLES [FROM database]")
    name = statement.text("db") or context.database
    if not name:
        raise SqlError("SHOW TABLES needs a database: SHOW TABLES FROM db, or give --database")
    database = context.database_named(name)
    tables = database.tables
    recorded = [database.recorded_columns(t) for t in tables]
    return pd.DataFrame(
        {"table": pd.Series(tables, dtype="str"),
         "columns": pd.Series([", ".join(c) if c else "" for c in recorded], dtype="str")}
    )


def _describe(statement: exp.Describe, context: Context) -> pd.DataFrame:
    table = resolve(statement.this, context)
    columns = table.columns
    rows = table.count()
    return pd.DataFrame({"column": columns, "position": range(1, len(columns) + 1), "rows": rows})


def _delete(statement: exp.Delete, context: Context) -> pd.DataFrame | Explanation:
    """The rows matching WHERE, found as a SELECT of their key columns finds them, deleted."""
    table = resolve(statement.this, context)
    where = statement.args.get("where")
    if where is None and not context.force:
        raise SqlError(
            f"DELETE without WHERE would delete every row of {table.name!r}: add a WHERE, or "
            "--force to delete them all"
        )
    target = statement.this
    select = exp.select(*(exp.column(c, quoted=True) for c in table.columns)).from_(target.copy())
    if where is not None:
        select = select.where(where.this.copy())

    def tables(node: exp.Table) -> Table | pd.DataFrame:  # the target is resolved already
        same = node.name == target.name and node.text("db") == target.text("db")
        return table if same else bound(node, context)

    query = plan(select, tables, decode=context.decode)  # no --limit: it never cuts a DELETE short
    if context.explain:
        return Explanation(explain(query) + "\n\nThen DeleteObjects: one request per 1,000 matching rows")
    frame = engine.run(query, progress=context.progress)
    deleted = frame.s3aads.delete(table) if len(frame) else 0
    return pd.DataFrame({"deleted": [deleted]})
