"""What the explorer browses, without widgets: the database and table in hand, the rows the
chosen values select and the choices each column offers, the frame a load makes, and the code
that reproduces it. ``notebook/explorer.py`` draws it; this module is tested on its own.
"""

from __future__ import annotations

import heapq
import html
import inspect
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any, NamedTuple

import pandas as pd

from s3aads_pandas.config import default_settings
from s3aads_pandas.errors import ColumnsNotSetError, S3aadsError
from s3aads_pandas.frames.read import read_rows, read_s3aads
from s3aads_pandas.storage.listing import ListingStopped
from s3aads_pandas.tables.datastore import Database, Table
from s3aads_pandas.tables.rows import Row

SIZE, MODIFIED = "size (bytes)", "last modified (UTC)"
#: Rows a load reads at a time: the progress bar moves, and Cancel stops it, between chunks.
LOAD_CHUNK = 200
#: Chosen values per column; a column with none chosen takes any value.
Chosen = dict[str, list[str]]
#: How many values a filter suggests at a time (the browser gets these, not all of a column's).
SUGGESTIONS = 50
#: A listing reports the values its non-leading columns offer so far after every page (1,000
#: rows) up to 10,000 rows, then every 10,000: each report costs a pass over the values.
CHOICES_EVERY = 1000


class Cancelled(Exception):
    """Raised inside a listing or a load when the user cancelled it."""


class _InHand(NamedTuple):
    """A whole listing of one narrowing (the leading chosen columns): every row under it with
    its column values, and the values each column offers."""

    narrowing: Chosen
    rows: list[tuple[Row, list[str]]]
    offered: dict[str, list[str]]


def _stopping(rows: Iterator[Row]) -> Iterator[Row]:
    """``rows``; a listing stopped by its caller's event (see ``stop_listing``) is cancelled."""
    try:
        yield from rows
    except ListingStopped:
        raise Cancelled from None


def _report_due(listed: int) -> bool:
    return listed % CHOICES_EVERY == 0 and (listed <= 10 * CHOICES_EVERY or listed % (10 * CHOICES_EVERY) == 0)


def _matches(values: list[str], applied: dict[int, set[str]]) -> bool:
    return all(values[position] in wanted for position, wanted in applied.items())


class Browsing:
    """The database, the table and the listed rows; every method that lists or loads takes
    ``cancelled`` (checked at each row or chunk) and callbacks that say how far it got.

    The rows in hand are one selection that the grid, the status line and Load all read:
    ``listed_for`` is the choice they were listed for, and ``complete`` says whether the listing
    ended (False after a cancel or a failure: the rows are then the part listed so far). Load
    of that choice reads those rows, and lists nothing again. A listing that was cancelled
    changes none of this once it knows (a newer one may be under way): each change checks
    ``cancelled`` under one lock, which the newer listing's changes take too.
    """

    def __init__(self, source: Table | Database | str | None = None, *, root: str | None = None) -> None:
        self.table: Table | None = source if isinstance(source, Table) else None
        self.database: Database | None = source.database if isinstance(source, Table) else (
            source if isinstance(source, Database) else Database(source) if source else None)
        #: How databases picked by name are reached: the settings now, in ``root`` when given.
        self.settings = default_settings() if root is None else default_settings().replace(root=root)
        self.rows: list[Row] = []
        self.listed_for: Chosen | None = None
        self.complete = False
        self._in_hand: _InHand | None = None
        self._lock = threading.Lock()

    def _commit(self, cancelled: Callable[[], bool], **state: Any) -> None:
        """Set the rows in hand (``rows``, ``listed_for``, ``complete``, ``_in_hand``), unless the
        listing that has them was cancelled (:class:`Cancelled`)."""
        with self._lock:
            if cancelled():
                raise Cancelled
            for name, value in state.items():
                setattr(self, name, value)

    # -- databases and tables ---------------------------------------------------------------------

    def database_names(self) -> list[str]:
        """The buckets the credentials list, or the databases of the settings' root."""
        return sorted(Database.list_databases(self.settings))

    def open_database(self, name: str) -> None:
        self.database, self.table = Database(name, self.settings), None
        self._forget_rows()

    def _forget_rows(self) -> None:
        self.rows, self.listed_for, self.complete, self._in_hand = [], None, False, None

    def table_choices(self) -> list[tuple[str, str]]:
        """``(label, name)`` of the database's tables; the label names the columns."""
        if self.database is None:
            return []
        self.table = None
        self._forget_rows()
        return [(table_label(name, self.database.recorded_columns(name)), name) for name in self.database.tables]

    def open_table(self, table: Table | str) -> Table:
        if isinstance(table, str):
            if self.database is None:
                raise S3aadsError("choose a database first")
            found = self.database.get_table(table, infer_columns=True)
            if found is None:
                raise S3aadsError(f"table {table!r} has no rows any more: press Refresh")
            table = found
        if not table.columns:
            raise ColumnsNotSetError(f"table {table.name!r} has no columns to explore")
        self.table = table
        self._forget_rows()
        return table

    def _open(self) -> Table:
        if self.table is None:
            raise S3aadsError("choose a table first")
        return self.table

    # -- listing ----------------------------------------------------------------------------------

    def list_rows(self, chosen: Chosen, *, cancelled: Callable[[], bool],
                  on_choices: Callable[[str, Collection[str]], None],
                  on_progress: Callable[[list[Row]], None], again: bool = False) -> list[Row]:
        """The rows the chosen values select, into ``self.rows`` as they are listed.

        Leading chosen columns narrow the listing (and offer all their values, through Delimiter
        listings); the other choices are applied to it, and those columns offer the values it
        holds, reported as pages arrive (see :data:`CHOICES_EVERY`) and at its end (the values
        so far, when it is cancelled or fails). ``on_progress`` gets the rows so far after each
        matching row. A choice that narrows as the last whole listing did is
        applied to that listing, with no request, unless ``again`` asks for a new one.
        """
        table = self._open()
        columns = table.columns
        leading = len(table.codec.narrowed_columns(table.codec.encode_filters(chosen)))
        narrowing = {c: chosen[c] for c in columns[:leading] if c in chosen}
        applied = {columns.index(c): set(v) for c, v in chosen.items() if c not in narrowing}
        if not again and self._in_hand is not None and self._in_hand.narrowing == narrowing:
            return self._choose_in_hand(self._in_hand, chosen, applied, cancelled, on_choices)
        offered = {}
        for position in range(leading):
            before = {c: chosen[c] for c in columns[:position]}
            offered[columns[position]] = [v[0] for v in table.distinct([columns[position]], **before)]
            on_choices(columns[position], offered[columns[position]])
        seen: list[set[str]] = [set() for _ in columns]
        rows: list[Row] = []
        every: list[tuple[Row, list[str]]] = []
        self._commit(cancelled, rows=rows, listed_for=dict(chosen), complete=False, _in_hand=None)
        try:
            for row in _stopping(table.iter_rows(**narrowing)):
                if cancelled():
                    raise Cancelled
                values = list(table.codec.decode(row.segments).values())
                every.append((row, values))
                for position in range(leading, len(columns)):
                    seen[position].add(values[position])
                if _report_due(len(every)):
                    for position in range(leading, len(columns)):
                        on_choices(columns[position], set(seen[position]))
                if _matches(values, applied):
                    rows.append(row)
                    on_progress(rows)
        finally:
            for position in range(leading, len(columns)):
                offered[columns[position]] = sorted(seen[position])
                on_choices(columns[position], offered[columns[position]])
        self._commit(cancelled, complete=True, _in_hand=_InHand(narrowing, every, offered))
        return rows

    def _choose_in_hand(self, in_hand: _InHand, chosen: Chosen, applied: dict[int, set[str]],
                        cancelled: Callable[[], bool], on_choices: Callable[[str, Collection[str]], None]) -> list[Row]:
        """The chosen rows of the whole listing in hand."""
        rows = [row for row, values in in_hand.rows if _matches(values, applied)]
        self._commit(cancelled, rows=rows, listed_for=dict(chosen), complete=True)
        for column, values in in_hand.offered.items():
            on_choices(column, values)
        return rows

    def grid_frame(self, rows: list[Row]) -> pd.DataFrame:
        """Key columns, size and last-modified time of the rows, as the grid shows them."""
        columns = self.table.columns if self.table is not None else []
        decoded = [self.table.codec.decode(row.segments) for row in rows] if self.table is not None else []
        frame = pd.DataFrame({column: pd.Series([d[column] for d in decoded], dtype=object) for column in columns})
        frame[SIZE] = pd.Series([row.size for row in rows], dtype="int64")
        frame[MODIFIED] = pd.Series([row.last_modified.strftime("%Y-%m-%d %H:%M:%S") if row.last_modified else ""
                                     for row in rows], dtype=object)
        return frame

    def payload(self, position: int) -> tuple[str, bytes | None]:
        """The title (its column values) and payload of one listed row: one GET."""
        table = self._open()
        row = self.rows[position]
        values = table.codec.decode(row.segments)
        title = " · ".join(f"{column} = {value}" for column, value in values.items())
        return title, table.database.store.get_listed(table.database.name, row.key, row.etag)

    # -- loading ----------------------------------------------------------------------------------

    def load(self, chosen: Chosen, decode: str, *, cancelled: Callable[[], bool],
             on_chunk: Callable[[int], None]) -> pd.DataFrame:
        """The chosen rows with their payloads, read in chunks of 200 (``on_chunk`` gets each
        size): the rows in hand when they were listed for this choice (all of them, or the part
        a cancelled listing got), else a listing of the choice."""
        table = self._open()
        if chosen == self.listed_for:
            rows = self.rows
            chunks: Iterator[pd.DataFrame] = (read_rows(table, rows[start:start + LOAD_CHUNK], decode=decode,
                                                        progress=False)
                                              for start in range(0, max(len(rows), 1), LOAD_CHUNK))
        else:
            chunks = read_s3aads(table, filters=chosen, decode=decode, chunksize=LOAD_CHUNK, progress=False)
        parts = []
        for chunk in chunks:
            if cancelled():
                raise Cancelled
            parts.append(chunk)
            on_chunk(len(chunk))
        return pd.concat(parts, ignore_index=True)  # chunks give at least one frame

    def code(self, chosen: Chosen, decode: str) -> str:
        """The ``pd.read_s3aads`` call that loads what is chosen."""
        table = self._open()
        recorded = table.database.recorded_columns(table.name)
        source = (repr(f"{table.database.reference}/{table.name}") if recorded == tuple(table.columns)
                  else f"Table({table.name!r}, {table.database.reference!r}, columns={table.columns!r})")
        values: dict[str, Any] = {c: v[0] if len(v) == 1 else v for c, v in chosen.items()}
        decoding = f", decode={decode!r}" if decode != "bytes" else ""
        if set(values) & set(inspect.signature(read_s3aads).parameters):  # a column named like a parameter
            return f"pd.read_s3aads({source}, filters={values!r}{decoding})"
        return f"pd.read_s3aads({source}" + "".join(f", {c}={v!r}" for c, v in values.items()) + decoding + ")"


def parse_choice(typed: str, offered: Collection[str]) -> list[str]:
    """The values a filter's text chooses: one value, or several separated by commas (a text
    that is one offered value, commas and all, is that value); an empty text chooses none."""
    if typed in offered:
        return [typed]
    return list(dict.fromkeys(value.strip() for value in typed.split(",") if value.strip()))


def suggestions(typed: str, offered: Collection[str], limit: int = SUGGESTIONS) -> list[str]:
    """What a filter offers for its text: the whole text with its last value completed by the
    offered values not chosen before it that contain what is typed of it (those that start with
    it first), sorted."""
    before, comma, last = typed.rpartition(",")
    head = f"{before}, " if comma else ""
    taken = {value.strip() for value in before.split(",")} if comma else set()
    term = last.strip().casefold()
    fitting = [value for value in offered if term in value.casefold() and value not in taken]
    chosen = heapq.nsmallest(limit, (value for value in fitting if value.casefold().startswith(term)))
    if len(chosen) < limit:
        first = set(chosen)
        chosen += heapq.nsmallest(limit - len(chosen), (value for value in fitting if value not in first))
    return [head + value for value in chosen]


def table_label(name: str, columns: Any) -> str:
    shown = ", ".join(columns) if columns else "columns inferred from the keys"
    return f"{name} ({shown})"


def describe_choice(chosen: Chosen) -> str:
    """The chosen values in one line (``kind ∈ {buy, view} · id = 2``), as escaped HTML."""
    parts = []
    for column, values in chosen.items():
        shown = f"= {values[0]}" if len(values) == 1 else "∈ {" + ", ".join(values) + "}"
        parts.append(f"{column} {shown}")
    return html.escape(" · ".join(parts) if parts else "all rows (choose values to filter any column)")
