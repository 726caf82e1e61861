"""s3aads SQL: a small SQL dialect over tables, parsed with sqlglot and run on the datastore.

``col = v`` and ``col IN (...)`` joined by AND become listing filters (leading columns narrow the
prefix); every other condition is evaluated on the listed keys. Payloads are fetched only for the
rows that survive WHERE, ORDER BY and LIMIT, and only when ``data`` or ``*`` is selected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from s3aads_pandas.config import ConnectionSettings, default_settings
from s3aads_pandas.errors import S3aadsError, extra_required
from s3aads_pandas.frames.read import read_s3aads
from s3aads_pandas.storage.adapter import PAGE_SIZE
from s3aads_pandas.tables.datastore import Database, Table

with extra_required("notebook", "s3aads SQL"):
    import sqlglot
    from sqlglot import exp

Row = Mapping[str, str]
Predicate = Callable[[Row], bool]


class SqlError(S3aadsError, ValueError):
    """A statement that cannot run: bad syntax, unsupported SQL, unknown table or column."""


@dataclasses.dataclass
class Context:
    """What a statement may refer to besides the datastore."""

    namespace: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    database: str | None = None
    settings: ConnectionSettings | None = None
    limit: int | None = None
    progress: bool | None = None
    force: bool = False

    def database_named(self, name: str) -> Database:
        return Database(name, self.settings or default_settings())


def parse(sql: str) -> exp.Expression:
    """One statement; SHOW is read with MySQL's grammar, which knows it."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SqlError("no statement given: write SELECT ..., SHOW TABLES, DESCRIBE t or DELETE FROM t")
    dialect = "mysql" if text.split(None, 1)[0].upper() == "SHOW" else None
    try:
        statements = sqlglot.parse(text, read=dialect)
    except sqlglot.errors.TokenError:
        raise SqlError("syntax error: the SQL cannot be read; look for a quote (' or \") that is not closed") from None
    except sqlglot.errors.ParseError as error:
        raise SqlError(f"syntax error: {_describe_parse_error(error)}") from None
    if len(statements) != 1 or statements[0] is None:
        raise SqlError("give one statement per cell or line")
    return statements[0]


#: What the parser's names of expressions are in SQL, for its "missing" errors.
_EXPRESSION_NAMES = {"EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "In": "IN",
                     "Like": "LIKE", "ILike": "ILIKE", "And": "AND", "Or": "OR", "Not": "NOT", "Limit": "LIMIT",
                     "Where": "WHERE", "Order": "ORDER BY", "Between": "BETWEEN"}
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


def execute(sql: str, context: Context) -> pd.DataFrame:
    """Run one statement and return its result as a DataFrame."""
    statement = parse(sql)
    if isinstance(statement, exp.Select):
        return _select(statement, context)
    if isinstance(statement, exp.Show):
        return _show_tables(statement, context)
    if isinstance(statement, exp.Describe):
        return _describe(statement, context)
    if isinstance(statement, exp.Delete):
        return _delete(statement, context)
    raise SqlError(
        f"unsupported statement {statement.sql()[:60]!r}: use SELECT, SHOW TABLES, DESCRIBE or DELETE"
    )


# -- tables -------------------------------------------------------------------------------------


def resolve(node: exp.Expression | None, context: Context) -> Table:
    """A Table bound to a name in the namespace, or ``db.table`` with its recorded columns."""
    if not isinstance(node, exp.Table) or node.args.get("catalog"):
        shown = node.sql() if node is not None else "nothing"
        raise SqlError(f"FROM needs a table name or database.table, got {shown}")
    name, database = node.name, node.text("db") or None
    if database is None:
        bound = context.namespace.get(name)
        if isinstance(bound, Table):
            return bound
        if context.database is None:
            raise SqlError(
                f"unknown table {name!r}: bind a Table to that name, write database.table, "
                "or give --database"
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


# -- values and conditions ----------------------------------------------------------------------


def literal(node: exp.Expression, context: Context) -> Any:
    """The Python value of a literal or a ``:name`` bound from the namespace."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        number = node.this
        return int(number) if re.fullmatch(r"-?\d+", number) else float(number)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return -literal(node.this, context)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Placeholder):
        name = node.name
        if name not in context.namespace:
            raise SqlError(f"parameter :{name} is not defined in the notebook namespace")
        return context.namespace[name]
    raise SqlError(f"expected a value, got {node.sql()!r}")


def _column(node: exp.Expression, columns: list[str]) -> str | None:
    if not isinstance(node, exp.Column):
        return None
    if node.name not in columns:
        raise SqlError(f"unknown column {node.name!r}; the key columns are {', '.join(columns)}")
    return node.name


def split_where(condition: exp.Expression | None, columns: list[str], context: Context) -> tuple[dict[str, list[str]], list[exp.Expression]]:
    """Listing filters from ``col = v`` / ``col IN (...)`` conjuncts, and the rest to evaluate."""
    filters: dict[str, list[str]] = {}
    residual: list[exp.Expression] = []
    if condition is None:
        return filters, residual
    for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
        conjunct = conjunct.unnest()
        values = _pushdown_values(conjunct, columns, context)
        if values is None:
            residual.append(conjunct)
            continue
        column, found = values
        filters[column] = [v for v in filters[column] if v in found] if column in filters else found
    return filters, residual


def _pushdown_values(node: exp.Expression, columns: list[str], context: Context) -> tuple[str, list[str]] | None:
    if isinstance(node, exp.EQ):
        column = _column(node.this, columns)
        if column and _is_value(node.expression):
            return column, [str(literal(node.expression, context))]
    if isinstance(node, exp.In) and not node.args.get("query"):
        column = _column(node.this, columns)
        if column and all(_is_value(v) for v in node.expressions):
            return column, [str(literal(v, context)) for v in node.expressions]
    return None


def _is_value(node: exp.Expression) -> bool:
    return isinstance(node, (exp.Literal, exp.Placeholder, exp.Boolean)) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)
    )


_COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}


def compile_condition(node: exp.Expression, columns: list[str], context: Context) -> Predicate:
    """A predicate over a row's key values; unsupported SQL is refused before anything runs."""
    node = node.unnest()
    if isinstance(node, exp.And):
        parts = [compile_condition(n, columns, context) for n in node.flatten()]
        return lambda row: all(p(row) for p in parts)
    if isinstance(node, exp.Or):
        parts = [compile_condition(n, columns, context) for n in node.flatten()]
        return lambda row: any(p(row) for p in parts)
    if isinstance(node, exp.Not):
        inner = compile_condition(node.this, columns, context)
        return lambda row: not inner(row)
    if type(node) in _COMPARISONS:
        return _comparison(node, columns, context)
    if isinstance(node, exp.Between):
        low = _comparison(exp.GTE(this=node.this, expression=node.args["low"]), columns, context)
        high = _comparison(exp.LTE(this=node.this, expression=node.args["high"]), columns, context)
        return lambda row: low(row) and high(row)
    if isinstance(node, exp.In) and not node.args.get("query"):
        column = _required_column(node.this, columns, node)
        accepted = {str(literal(v, context)) for v in node.expressions}
        return lambda row: row[column] in accepted
    if isinstance(node, (exp.Like, exp.ILike)):
        column = _required_column(node.this, columns, node)
        pattern = _like_regex(str(literal(node.expression, context)), isinstance(node, exp.ILike))
        return lambda row: pattern.fullmatch(row[column]) is not None
    if isinstance(node, exp.Is):
        _required_column(node.this, columns, node)
        return lambda row: False  # key values are never NULL
    raise SqlError(f"unsupported condition in WHERE: {node.sql()!r}")


def _required_column(node: exp.Expression, columns: list[str], whole: exp.Expression) -> str:
    column = _column(node, columns)
    if column is None:
        raise SqlError(f"unsupported condition in WHERE: {whole.sql()!r} (put a key column on the left)")
    return column


def _comparison(node: exp.Expression, columns: list[str], context: Context) -> Predicate:
    """``col op value``; numeric when the value is a number (rows that are not numbers fail it)."""
    compare = _COMPARISONS[type(node)]
    left, right = node.this, node.expression
    if _column(right, columns) and not _column(left, columns):
        left, right = right, left
        compare = {exp.GT: _COMPARISONS[exp.LT], exp.LT: _COMPARISONS[exp.GT],
                   exp.GTE: _COMPARISONS[exp.LTE], exp.LTE: _COMPARISONS[exp.GTE]}.get(type(node), compare)
    column = _required_column(left, columns, node)
    if _column(right, columns):
        other = right.name
        return lambda row: compare(row[column], row[other])
    value = literal(right, context)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return lambda row: _number_compare(compare, row[column], value)
    text = str(value)
    return lambda row: compare(row[column], text)


def _number_compare(compare: Callable[[Any, Any], bool], text: str, value: float) -> bool:
    try:
        return compare(float(text), value)
    except ValueError:
        return False


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matching_keys(table: Table, where: exp.Expression | None, context: Context,
                  nrows: int | None = None) -> pd.DataFrame:
    """The key frame of the rows matching WHERE: filters pushed down, the rest evaluated.

    With ``nrows`` the listing stops once that many rows match (a LIMIT without ORDER BY).
    """
    columns = table.columns
    filters, residual = split_where(where, columns, context)
    predicates = [compile_condition(node, columns, context) for node in residual]
    if not predicates:
        return read_s3aads(table, data=False, filters=filters, nrows=nrows, progress=context.progress)
    kept, found = [], 0
    for chunk in read_s3aads(table, data=False, filters=filters, chunksize=PAGE_SIZE, progress=context.progress):
        matching = chunk[[all(p(row) for p in predicates) for row in chunk.to_dict("records")]]
        kept.append(matching)
        found += len(matching)
        if nrows is not None and found >= nrows:
            break
    return pd.concat(kept, ignore_index=True).head(nrows)  # chunks give at least one frame


# -- statements ---------------------------------------------------------------------------------


def _select(statement: exp.Select, context: Context) -> pd.DataFrame:
    for clause, keyword in (("joins", "JOIN"), ("group", "GROUP BY"), ("having", "HAVING"),
                            ("with_", "WITH"), ("laterals", "LATERAL")):
        if statement.args.get(clause):
            raise SqlError(f"unsupported SQL in SELECT: {keyword} is not available")
    source = statement.args.get("from_")
    table = resolve(source.this if source is not None else None, context)
    columns = table.columns
    outputs, counting = _projection(statement, columns)
    limit = _limit(statement, context)
    early = limit is not None and not counting and not statement.args.get("distinct") and not statement.args.get("order")
    frame = matching_keys(table, _where(statement), context, nrows=max(limit, 1) if early else None)
    if counting:
        return pd.DataFrame({"count": [len(frame)]})
    if statement.args.get("distinct"):
        frame = frame[[c for c in outputs if c != "data"]].drop_duplicates(ignore_index=True)
    frame = _order(frame, statement, outputs)
    if limit is not None:
        frame = frame.head(limit)
    if "data" in outputs:
        frame = frame.s3aads.fetch(table, progress=context.progress)
    return frame[outputs].reset_index(drop=True)


def _where(statement: exp.Expression) -> exp.Expression | None:
    clause = statement.args.get("where")
    return clause.this if clause is not None else None


def _projection(statement: exp.Select, columns: list[str]) -> tuple[list[str], bool]:
    outputs: list[str] = []
    for node in statement.expressions:
        if isinstance(node, exp.Star):
            outputs += [*columns, "data"]
        elif isinstance(node, exp.Count) and isinstance(node.this, exp.Star) and len(statement.expressions) == 1:
            return [], True
        elif isinstance(node, exp.Column) and (node.name == "data" or node.name in columns):
            outputs.append(node.name)
        elif isinstance(node, exp.Column):
            raise SqlError(f"unknown column {node.name!r}; the columns are {', '.join([*columns, 'data'])}")
        else:
            raise SqlError(f"unsupported expression in SELECT: {node.sql()!r} (select columns, data, * or COUNT(*))")
    if statement.args.get("distinct") and "data" in outputs:
        raise SqlError("SELECT DISTINCT takes key columns, not data")
    return list(dict.fromkeys(outputs)), False


def _order(frame: pd.DataFrame, statement: exp.Select, outputs: list[str]) -> pd.DataFrame:
    order = statement.args.get("order")
    if not order or frame.empty:
        return frame
    names, ascending = [], []
    for item in order.expressions:
        name = item.this.name if isinstance(item.this, exp.Column) else None
        if name not in frame.columns:
            raise SqlError(f"ORDER BY takes key columns, got {item.this.sql()!r}")
        names.append(name)
        ascending.append(not item.args.get("desc"))
    return frame.sort_values(names, ascending=ascending, key=_sort_key, kind="stable", ignore_index=True)


def _sort_key(values: pd.Series) -> pd.Series:
    """Numbers sort as numbers when every value of the column is one; otherwise as text."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if not numbers.isna().any() else values


def _limit(statement: exp.Select, context: Context) -> int | None:
    node = statement.args.get("limit")
    limits = [context.limit] if context.limit is not None else []
    if node is not None:
        value = literal(node.expression, context)
        if not isinstance(value, int) or value < 0:
            raise SqlError(f"LIMIT takes a whole number, got {node.expression.sql()!r}")
        limits.append(value)
    return min(limits) if limits else None


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


def _delete(statement: exp.Delete, context: Context) -> pd.DataFrame:
    table = resolve(statement.this, context)
    where = _where(statement)
    if where is None and not context.force:
        raise SqlError(
            f"DELETE without WHERE would delete every row of {table.name!r}: add a WHERE, or "
            "--force to delete them all"
        )
    frame = matching_keys(table, where, context)
    deleted = frame.s3aads.delete(table) if len(frame) else 0
    return pd.DataFrame({"deleted": [deleted]})
