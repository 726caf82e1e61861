"""Running a plan: list (and fetch) each source from S3, then run the statement in DuckDB."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pandas as pd

from s3aads_pandas.errors import SqlError, extra_required
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.frames.read import read_rows
from s3aads_pandas.notebook.query import Plan, Source
from s3aads_pandas.progress import counted
from s3aads_pandas.storage.adapter import PAGE_SIZE
from s3aads_pandas.tables.rows import Row

with extra_required("notebook", "s3aads SQL"):
    import duckdb
    from sqlglot import exp


def run(query: Plan, *, progress: bool | None = None) -> pd.DataFrame:
    """The statement's result; payloads of the result's rows are fetched after DuckDB ran."""
    check_before_listing(query)
    registered: dict[str, pd.DataFrame] = {}
    with duckdb.connect() as connection:
        connection.execute("SET python_enable_replacements = false")  # only what is registered, no local variable
        listed: dict[str, list[Row]] = {}
        for source in query.sources:
            keys, listed[source.view] = _list(source, connection, progress)
            registered[source.view] = _with_payloads(source, keys, listed[source.view], query.decode, progress)
            _register(connection, source, registered[source.view], query.decode)
        for view, (_, frame) in query.frames.items():
            connection.register(view, frame)
        try:
            relation = connection.sql(query.sql)
            types = [str(t) for t in relation.types]
            result = relation.df()
        except duckdb.Error as error:
            unreadable = _first_unreadable(query, registered) if isinstance(error, duckdb.ConversionException) else None
            raise unreadable or _sql_error(error, query.sources) from None
    result = _python_values(result, types)
    if query.payload_columns:
        (source,) = query.sources
        result = _fill_payloads(result, query.payload_columns, source, registered[source.view], listed[source.view],
                                query.decode, progress)
    return result


def check_before_listing(query: Plan) -> None:
    """Bind the statement over one placeholder row per source, shaped as its listing will be:
    an unknown column, or arithmetic on the text of a key column, is told before any listing
    (DuckDB binds a relation when it is made and runs it only when its rows are asked for)."""
    with duckdb.connect() as connection:
        connection.execute("SET python_enable_replacements = false")
        for source in query.sources:
            _register(connection, source, _placeholder(source, query.decode), query.decode)
        for view, (_, frame) in query.frames.items():
            connection.register(view, frame.head(0))
        try:
            connection.sql(query.sql)
        except duckdb.Error as error:
            raise _sql_error(error, query.sources) from None


def _placeholder(source: Source, decode: str) -> pd.DataFrame:
    """One row of the frame a source's listing (and fetch) gives DuckDB, of the same types."""
    row: dict[str, Any] = dict.fromkeys(source.table.columns, "")
    if source.fetch == "listed":
        row["data"] = "" if CODECS[decode].sql_type or decode == "str" else b""
    elif source.fetch == "result":
        row["data"] = 0
    return pd.DataFrame([row])


def _list(source: Source, connection: Any, progress: bool | None) -> tuple[pd.DataFrame, list[Row]]:
    """The key frame of a source's listing, and the rows listed (their ETags say which version
    each payload fetch is of); with ``stop_after``, only as many pages as needed."""
    table = source.table
    listing = counted(table.iter_rows(**source.filters), progress, "s3aads list")
    if source.stop_after is None or source.where is None:
        limit = None if source.stop_after is None else max(source.stop_after, 1)
        rows = table.database.in_key_order(itertools.islice(listing, limit))  # sorted where listed in no order
        return read_rows(table, rows, data=False), rows
    counting = exp.select("count(*)").from_(_aliased("page", source.name)).where(source.where)
    pages, rows, found = [], [], 0
    while batch := list(itertools.islice(listing, PAGE_SIZE)):
        page = read_rows(table, batch, data=False)
        pages.append(page)
        rows += batch
        connection.register("page", page)
        try:
            found += connection.sql(counting.sql(dialect="duckdb")).fetchall()[0][0]
        except duckdb.Error as error:
            raise _sql_error(error, [source]) from None
        if found >= source.stop_after:
            break
    return (pd.concat(pages, ignore_index=True) if pages else read_rows(table, [], data=False)), rows


_UNKNOWN_COLUMN = re.compile(r'Referenced column "(.+?)" not found')
_NO_FUNCTION_FOR_TEXT = re.compile(r"No function matches the given name and argument types '(.+?\(.*VARCHAR.*\))'")


def _sql_error(error: Exception, sources: list[Source]) -> SqlError:
    """DuckDB's complaint on one line; an unknown column is told with the columns there are, and
    arithmetic on text with the cast that key columns (always text) need."""
    message = str(error).strip().splitlines()[0]
    unknown = _UNKNOWN_COLUMN.search(message)
    if unknown:
        known = "; ".join(f"{s.name}: {', '.join([*s.table.columns, 'data'])}" for s in sources)
        return SqlError(f"unknown column {unknown.group(1)!r}" + (f"; the columns are {known}" if known else ""))
    on_text = _NO_FUNCTION_FOR_TEXT.search(message)
    if on_text:
        column = next((c for s in sources for c in s.table.columns), "id")
        return SqlError(f"{on_text.group(1)} does not exist: key columns are text, so cast them, such as "
                        f"SUM({column}::INT) or ORDER BY {column}::DOUBLE")
    return SqlError(message)


def _first_unreadable(query: Plan, registered: dict[str, pd.DataFrame]) -> SqlError | None:
    """Which row's payload DuckDB could not cast to the ``--decode`` codec's SQL type, by its key
    columns; None when every payload reads (the statement failed for another reason)."""
    codec = CODECS[query.decode]
    if codec.sql_type is None:
        return None
    for source in query.sources:
        frame = registered[source.view]
        for position, text in enumerate(frame["data"] if source.fetch == "listed" else ()):
            if text is None:  # a row deleted since it was listed: NULL, which DuckDB takes
                continue
            try:
                codec.decode(text.encode("utf-8"))
            except ValueError as error:
                row = frame.iloc[position]
                named = ", ".join(f"{column}={row[column]!r}" for column in source.table.columns)
                others = " or ".join(name for name in CODECS if name != codec.name)
                return SqlError(f"the payload of {source.table.name} row {named} is not {codec.description} "
                                f"({error}): use --decode {others}, or leave that row out with WHERE")
    return None


def _aliased(view: str, name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(view), alias=exp.TableAlias(this=exp.to_identifier(name, quoted=True)))


def _with_payloads(source: Source, keys: pd.DataFrame, rows: list[Row], decode: str,
                   progress: bool | None) -> pd.DataFrame:
    if source.fetch == "listed":  # a codec with an SQL type is parsed by DuckDB, from text
        handed = "str" if CODECS[decode].sql_type else decode
        return keys.s3aads.fetch(source.table, decode=handed, progress=progress, etags=[row.etag for row in rows])
    if source.fetch == "result":  # row numbers stand in for payloads until the result is known
        return keys.assign(data=pd.Series(range(len(keys)), dtype="int64"))
    return keys


def _register(connection: Any, source: Source, frame: pd.DataFrame, decode: str) -> None:
    sql_type = CODECS[decode].sql_type
    if sql_type is None or source.fetch != "listed":
        connection.register(source.view, frame)
        return
    connection.register(f"{source.view}_text", frame)
    connection.execute(
        f'CREATE VIEW "{source.view}" AS SELECT * REPLACE (data::{sql_type} AS data) FROM "{source.view}_text"'
    )


def _python_values(result: pd.DataFrame, types: list[str]) -> pd.DataFrame:
    """JSON as Python objects, BLOBs as bytes (None where missing), sums of integers as integers."""
    for position, kind in enumerate(types):
        if kind == "HUGEINT":  # what SUM of integers gives; pandas would make it a float
            column = result.iloc[:, position]
            if column.dropna().apply(float.is_integer).all():
                result.isetitem(position, column.astype("Int64"))
        if kind in ("JSON", "BLOB"):
            convert = json.loads if kind == "JSON" else bytes
            column = result.iloc[:, position]
            result.isetitem(position, pd.Series([None if pd.isna(v) else convert(v) for v in column],
                                                index=result.index, dtype=object))
    return result


def _fill_payloads(result: pd.DataFrame, positions: list[int], source: Source, keys: pd.DataFrame,
                   listed: list[Row], decode: str, progress: bool | None) -> pd.DataFrame:
    """Row numbers in the payload columns replaced by the payloads of those rows, fetched once
    (the fetch replaces the row numbers ``keys`` holds in its ``data`` column)."""
    rows = sorted({int(n) for p in positions for n in result.iloc[:, p]})
    fetched = keys.iloc[rows].s3aads.fetch(source.table, decode=decode, progress=progress,
                                           etags=[listed[n].etag for n in rows])
    payloads = dict(zip(rows, fetched["data"], strict=True))
    for position in positions:
        column = result.iloc[:, position]
        result.isetitem(position, pd.Series([payloads[int(n)] for n in column], index=result.index, dtype=object))
    return result
