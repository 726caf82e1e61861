"""How a statement runs: which s3aads tables it reads, what S3 does for it, what DuckDB runs.

A statement is planned before anything is listed or fetched. Each reference to an s3aads table
becomes a :class:`Source`: ``col = v`` / ``col IN (...)`` conditions of its SELECT's WHERE
narrow its listing (leading key columns narrow the prefix; the others are applied to the
listing), and its payloads are fetched only when ``data`` is referenced: for the rows that
survive WHERE and LIMIT when ``data`` is only selected, otherwise for every listed row.
DataFrames of the notebook namespace join in under their own names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Literal

import pandas as pd

from s3aads_pandas.errors import SqlError, extra_required
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.storage.usage import Pricing
from s3aads_pandas.tables.datastore import Table

with extra_required("notebook", "s3aads SQL"):
    from sqlglot import exp

#: Which payloads a source fetches: none, those of the result's rows, or those of every listed row.
Fetch = Literal["none", "result", "listed"]
_NUMBER_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


@dataclasses.dataclass
class Source:
    """One reference to an s3aads table, and what S3 does for it."""

    table: Table
    view: str  # the name DuckDB knows it by
    name: str  # the name the statement uses for it (its alias, or the table's name)
    filters: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: Whether the filters are the whole of its SELECT's WHERE (nothing is left to evaluate).
    filters_are_where: bool = False
    fetch: Fetch = "none"
    stop_after: int | None = None  # the listing stops once this many rows match ``where``
    where: exp.Expression | None = None

    @property
    def prefixes(self) -> list[str]:
        """The key prefixes listed: the leading filtered columns narrow them."""
        codec = self.table.codec
        return codec.listing_prefixes(codec.encode_filters(self.filters))


@dataclasses.dataclass
class Plan:
    """A statement rewritten for DuckDB, with the tables and frames it reads."""

    statement: exp.Expression
    sources: list[Source]
    frames: dict[str, tuple[str, pd.DataFrame]]  # view -> the DataFrame's name in the notebook, and it
    decode: str
    #: Result columns that hold row numbers in place of payloads (``fetch="result"``).
    payload_columns: list[int] = dataclasses.field(default_factory=list)

    @property
    def sql(self) -> str:
        return self.statement.sql(dialect="duckdb")


def plan(statement: exp.Expression, tables: Callable[[exp.Table], Table | pd.DataFrame], *, decode: str = "bytes",
         limit: int | None = None) -> Plan:
    """Plan a SELECT (or a set operation of SELECTs) over the names ``tables`` resolves.

    ``tables(node)`` is asked for every table reference but the statement's own CTEs: it gives
    a Table or a DataFrame, or raises :class:`SqlError` for a name it does not know.
    """
    statement = _with_limit(statement.copy(), limit)
    sources, frames, scopes = _bind_tables(statement, tables)
    _refuse_json_of_raw_payloads(statement, sources, decode)
    for source, select in scopes:
        source.filters, source.filters_are_where = pushdown(select, source, sources)
    _read_key_columns_as_numbers(statement, sources)
    _choose_fetches(statement, sources)
    result = Plan(statement, sources, frames, decode)
    if len(sources) == 1 and not frames and isinstance(statement, exp.Select) and _one_row_per_row(statement):
        if not statement.args.get("order") and not any(statement.find_all(exp.Window)):
            _stop_early(statement, sources[0])
        if sources[0].fetch == "listed" and _data_only_selected(statement):
            sources[0].fetch = "result"
            result.payload_columns = _payload_positions(statement, sources[0].table)
    return result


# -- tables -------------------------------------------------------------------------------------


def _bind_tables(statement: exp.Expression, tables: Callable[[exp.Table], Table | pd.DataFrame]) -> tuple[
        list[Source], dict[str, tuple[str, pd.DataFrame]], list[tuple[Source, exp.Select | None]]]:
    """Each table reference renamed to a DuckDB view, keeping the name the statement uses."""
    defined = {cte.alias for cte in statement.find_all(exp.CTE)}
    sources: list[Source] = []
    frames: dict[str, tuple[str, pd.DataFrame]] = {}
    scopes: list[tuple[Source, exp.Select | None]] = []
    for node in list(statement.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier) or (node.name in defined and not node.text("db")):
            continue
        bound = tables(node)
        name = node.alias or node.name
        if isinstance(bound, Table):
            view = f"s3aads_{len(sources)}"
            source = Source(bound, view, name)
            sources.append(source)
            scopes.append((source, _selecting(node)))
        else:
            view = f"frame_{len(frames)}"
            frames[view] = (node.name, bound)
        node.replace(exp.Table(this=exp.to_identifier(view),
                               alias=exp.TableAlias(this=exp.to_identifier(name, quoted=True))))
    return sources, frames, scopes


def _selecting(node: exp.Table) -> exp.Select | None:
    """The SELECT whose FROM or JOIN names this table directly (its WHERE filters its rows)."""
    clause = node.parent
    if isinstance(clause, (exp.From, exp.Join)) and isinstance(clause.parent, exp.Select):
        return clause.parent
    return None


def _sources_of(select: exp.Select) -> list[exp.Expression]:
    clauses = [select.args.get("from_"), *(select.args.get("joins") or [])]
    return [clause.this for clause in clauses if clause is not None]


def _owner(column: exp.Column, sources: list[Source], select: exp.Select) -> Source | None:
    """The s3aads source a column reference belongs to, when that is certain."""
    qualifier = column.table
    if qualifier:
        named = [s for s in sources if s.name == qualifier and _in(s, select)]
        return named[0] if len(named) == 1 and column.name in named[0].table.columns else None
    if len(_sources_of(select)) != 1:
        return None  # several sources: an unqualified name is left to DuckDB to resolve
    local = [s for s in sources if _in(s, select)]
    return local[0] if len(local) == 1 and column.name in local[0].table.columns else None


def _in(source: Source, select: exp.Select) -> bool:
    return any(isinstance(n, exp.Table) and n.name == source.view for n in _sources_of(select))


# -- pushdown -----------------------------------------------------------------------------------


def pushdown(select: exp.Select | None, source: Source, sources: list[Source]) -> tuple[dict[str, list[str]], bool]:
    """Listing filters for a source from ``col = v`` / ``col IN (...)`` conjuncts of its WHERE,
    and whether they are the whole WHERE.

    These conditions reject NULLs, so they may narrow a listing even for an outer join's side.
    """
    filters: dict[str, list[str]] = {}
    if select is None or select.args.get("where") is None:
        return filters, True
    whole = True
    condition = select.args["where"].this
    for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
        conjunct = conjunct.unnest()
        if isinstance(conjunct, exp.EQ):
            column, values = conjunct.this, [conjunct.expression]
            if not isinstance(column, exp.Column):
                column, values = conjunct.expression, [conjunct.this]
        elif isinstance(conjunct, exp.In) and not conjunct.args.get("query"):
            column, values = conjunct.this, conjunct.expressions
        else:
            whole = False
            continue
        if not isinstance(column, exp.Column) or not all(_is_value(v) for v in values) or (
                _owner(column, sources, select) is not source):
            whole = False
            continue
        found = [_text(v) for v in values]
        name = column.name
        filters[name] = [v for v in filters[name] if v in found] if name in filters else found
    return filters, whole


def _is_value(node: exp.Expression) -> bool:
    return isinstance(node, (exp.Literal, exp.Boolean)) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string)


def _text(node: exp.Expression) -> str:
    """A literal as the key segment text it matches."""
    if isinstance(node, exp.Neg):
        return "-" + node.this.this
    return str(node.this)


def _number(node: exp.Expression) -> bool:
    return _is_value(node) and not isinstance(node, exp.Boolean) and not (
        isinstance(node, exp.Literal) and node.is_string)


def _read_key_columns_as_numbers(statement: exp.Expression, sources: list[Source]) -> None:
    """Key columns are text; compared with a number they are read as numbers (others fail it)."""
    keys = {c for s in sources for c in s.table.columns}
    names = {s.name for s in sources}

    def is_key(node: exp.Expression) -> bool:
        return isinstance(node, exp.Column) and node.name in keys and (not node.table or node.table in names)

    def as_number(node: exp.Expression) -> None:
        node.replace(exp.TryCast(this=node.copy(), to=exp.DataType.build("DOUBLE")))

    for node in list(statement.find_all(*_NUMBER_COMPARISONS, exp.Between, exp.In)):
        if isinstance(node, exp.Between):
            if is_key(node.this) and _number(node.args["low"]) and _number(node.args["high"]):
                as_number(node.this)
        elif isinstance(node, exp.In):
            if is_key(node.this) and node.expressions and all(_number(v) for v in node.expressions):
                as_number(node.this)
        elif is_key(node.this) and _number(node.expression):
            as_number(node.this)
        elif is_key(node.expression) and _number(node.this):
            as_number(node.expression)


# -- payloads -----------------------------------------------------------------------------------


def _data_references(statement: exp.Expression) -> Iterator[tuple[exp.Expression, str]]:
    """``data`` (also as ``data.field``) and stars (not COUNT(*)), each with its table qualifier."""
    for node in statement.find_all(exp.Column, exp.Star):
        if isinstance(node, exp.Column) and node.name == "data":
            yield node, node.table
        elif isinstance(node, exp.Column) and node.table == "data":  # a field of a JSON payload
            yield node, node.text("db")
        elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            yield node, node.table
        elif isinstance(node, exp.Star) and not isinstance(node.parent, (exp.Count, exp.Column)):
            yield node, ""


#: The JSON operators and functions (``->``, ``->>``, ``json_extract``, ``json_extract_string``).
_JSON_READS = (exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar)


def _refuse_json_of_raw_payloads(statement: exp.Expression, sources: list[Source], decode: str) -> None:
    """A JSON operator on the payload of an s3aads table read as bytes or text is an error: DuckDB
    would answer NULL for every row, as if no payload had the field."""
    codec = CODECS[decode]
    if codec.sql_type == "JSON" or not sources:
        return
    names = {source.name for source in sources}
    for node in statement.find_all(*_JSON_READS):
        payload = node.this
        if isinstance(payload, exp.Column) and payload.name == "data" and (payload.table or "") in names | {""}:
            raise SqlError(f"{node.sql(dialect='duckdb')} reads JSON, and the payloads are read as {codec.name} "
                           f"({codec.description}): give --decode json")


def _choose_fetches(statement: exp.Expression, sources: list[Source]) -> None:
    for _, qualifier in _data_references(statement):
        for source in sources:
            if not qualifier or qualifier == source.name:
                source.fetch = "listed"


def _one_row_per_row(select: exp.Select) -> bool:
    """No grouping, aggregate, DISTINCT, subquery or CTE: each result row is one listed row."""
    if any(select.args.get(k) for k in ("group", "having", "distinct", "with_", "qualify")):
        return False
    return not any(select.find_all(exp.AggFunc, exp.Subquery, exp.Unnest))


def _stop_early(select: exp.Select, source: Source) -> None:
    """With LIMIT (and OFFSET) and ``data`` not in WHERE, listing stops once enough rows match."""
    limit, offset = select.args.get("limit"), select.args.get("offset")
    if any(clause is not None and not isinstance(clause.expression, exp.Literal) for clause in (limit, offset)):
        return  # a count known only when DuckDB runs
    where = select.args.get("where")
    if limit is None or (where is not None and any(True for _ in _data_references(where))):
        return
    skipped = int(offset.expression.this) if offset is not None else 0
    source.stop_after = int(limit.expression.this) + skipped
    source.where = where.this.copy() if where is not None and not source.filters_are_where else None


def _data_only_selected(select: exp.Select) -> bool:
    """Whether ``data`` appears only as whole select items, so its payloads can come last."""
    selected = set()
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if (isinstance(inner, exp.Column) and inner.name == "data") or (
                isinstance(inner, exp.Star) and not inner.args):
            selected.add(id(inner))
    return all(id(node) in selected for node, _ in _data_references(select))


def _payload_positions(select: exp.Select, table: Table) -> list[int]:
    positions, position = [], 0
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Star):
            position += len(table.columns)
            positions.append(position)
        elif isinstance(inner, exp.Column) and inner.name == "data":
            positions.append(position)
        position += 1
    return positions


def _with_limit(statement: exp.Expression, limit: int | None) -> exp.Expression:
    """``--limit N``: the statement's LIMIT, or N when that is smaller."""
    if limit is None:
        return statement
    if not isinstance(statement, exp.Select):
        return exp.select("*").from_(exp.subquery(statement, "limited")).limit(limit)
    current = statement.args.get("limit")
    if current is not None and isinstance(current.expression, exp.Literal) and int(current.expression.this) <= limit:
        return statement
    return statement.limit(limit)


# -- explain ------------------------------------------------------------------------------------


_FETCHES = {
    "none": "no payloads (data is not referenced)",
    "result": "payloads of the result's rows only: one GET per row",
    "listed": "payloads of every listed row: one GET per row (data is used before the result is known)",
}


def explain(query: Plan) -> str:
    """The plan in words: what is listed and fetched from S3, and what DuckDB runs."""
    lines = ["Plan (nothing has run)", ""]
    for source in query.sources:
        table = source.table
        lines.append(f"S3: {source.name} = {table.database.reference}/{table.name} "
                     f"(key columns {', '.join(table.columns)})")
        prefixes = source.prefixes
        lines.append(f"  LIST {len(prefixes)} prefix{'es' if len(prefixes) != 1 else ''}: "
                     + ", ".join(prefixes[:5]) + (f", … {len(prefixes) - 5} more" if len(prefixes) > 5 else ""))
        lines.append("    one request per prefix and per further 1,000 keys")
        narrowed = table.codec.narrowed_columns(table.codec.encode_filters(source.filters))
        applied = {c: v for c, v in source.filters.items() if c not in narrowed}
        if applied:
            lines.append("  applied to the listing: " + " AND ".join(
                f"{c} IN ({', '.join(map(repr, v))})" for c, v in applied.items()))
        if source.stop_after is not None:
            lines.append(f"  the listing stops once {source.stop_after:,} rows match")
        decoding = f"; decoded as {query.decode}" if source.fetch != "none" else ""
        lines.append(f"  GET: {_FETCHES[source.fetch]}{decoding}")
    for name, frame in query.frames.values():
        lines.append(f"DataFrame: {name} ({len(frame):,} rows, from the notebook)")
    lines += ["", "DuckDB runs:", f"  {query.sql}", "", *_estimate(query)]
    return "\n".join(lines)


def _estimate(query: Plan, pricing: Pricing | None = None) -> list[str]:
    """What the plan will cost, as far as it can be known before the listing: the LISTs it
    sends at least, and the price of each row it fetches."""
    prices = pricing or Pricing()
    lists = sum(len(source.prefixes) for source in query.sources)
    per_list, per_get = prices.cost({"ListObjectsV2": 1}), prices.cost({"GetObject": 1})
    lines = ["Estimated cost (S3 Standard, us-east-1 list prices):",
             f"  LIST: at least {lists:,} request{'s' if lists != 1 else ''} (${lists * per_list:.6f}), "
             f"one more per further 1,000 keys listed"]
    fetching = [source for source in query.sources if source.fetch != "none"]
    if fetching:
        cached = any(source.table.database.store.cache is not None for source in fetching)
        lines.append(f"  GET: one per row fetched, ${per_get * 1000:.4f} per 1,000 rows"
                     + ("; payloads the cache holds send none" if cached else ""))
    else:
        lines.append("  GET: none")
    return lines
