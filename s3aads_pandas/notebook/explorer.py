"""The table explorer: an ipywidgets app to browse a database's tables, rows and payloads.

Built from core ipywidgets only, so it renders wherever widgets do (JupyterLab, Notebook 7,
VS Code, Voila) without a front-end build. Listings and loads run on a background thread so the
notebook stays responsive; ``wait()`` joins that thread (for scripts and tests).
"""

from __future__ import annotations

import html
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from s3aads_pandas.errors import ColumnsNotSetError, S3aadsError, extra_required
from s3aads_pandas.frames.read import read_s3aads
from s3aads_pandas.notebook.preview import render
from s3aads_pandas.tables.datastore import Database, Row, Table
from s3aads_pandas.tables.keys import decode_segment

with extra_required("notebook", "the explorer"):
    import ipywidgets as widgets

logger = logging.getLogger(__name__)

ANY = "(any)"
PAGE_SIZES = (10, 20, 50, 100)


class _Cancelled(Exception):
    """Raised inside a background task when the user pressed Cancel."""


class Explorer(widgets.VBox):
    """Pick a table, narrow it column by column, page through rows, preview a payload, load it.

    The loaded frame is ``explorer.df``; ``explorer.code`` holds the ``pd.read_s3aads`` call
    that reproduces the selection.
    """

    def __init__(self, source: Table | Database | str, *, page_size: int = 20) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        self.add_class("s3aads-explorer")
        self.df: pd.DataFrame | None = None
        self.table: Table | None = source if isinstance(source, Table) else None
        self.database = source.database if isinstance(source, Table) else (
            source if isinstance(source, Database) else Database(source))
        self.rows: list[Row] = []
        self.page = 0
        self._task: threading.Thread | None = None
        self._cancel = threading.Event()
        self._updating_filters = False

        self.table_picker = widgets.Dropdown(description="Table", options=[])
        self.filter_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.filters: dict[str, widgets.SelectMultiple] = {}
        self.status = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.header = widgets.HTML()
        self.rows_view = widgets.Select(options=[], rows=page_size, layout=widgets.Layout(width="100%"))
        self.rows_view.add_class("s3aads-rows")
        self.previous_button = widgets.Button(description="Previous", icon="arrow-left")
        self.next_button = widgets.Button(description="Next", icon="arrow-right")
        self.page_size = widgets.Dropdown(options=PAGE_SIZES, value=page_size if page_size in PAGE_SIZES else 20,
                                          description="Page size")
        self.page_label = widgets.HTML()
        self.preview = widgets.HTML()
        self.preview.add_class("s3aads-preview")
        self.load_button = widgets.Button(description="Load DataFrame", icon="download", button_style="primary")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="list the table again, for rows written since")
        self.load_progress = widgets.IntProgress(value=0, min=0, max=1, description="Loaded", layout=widgets.Layout(visibility="hidden"))
        self.code = widgets.Textarea(description="Code", layout=widgets.Layout(width="100%"))
        self.error = widgets.HTML()
        self.error.add_class("s3aads-error")

        self.children = [
            widgets.HTML(f"<h3>s3aads explorer: {html.escape(self.database.name)}</h3>"),
            self.table_picker, self.filter_box,
            widgets.HBox([self.status, self.refresh_button, self.cancel_button]),
            self.header, self.rows_view,
            widgets.HBox([self.previous_button, self.next_button, self.page_size, self.page_label]),
            self.preview,
            widgets.HBox([self.load_button, self.load_progress]),
            self.code, self.error,
        ]
        self.table_picker.observe(self._guard(self._on_table), names="value")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.refresh_button.on_click(self._guard(lambda _: self._refresh_all()))
        self.previous_button.on_click(self._guard(lambda _: self._show_page(self.page - 1)))
        self.next_button.on_click(self._guard(lambda _: self._show_page(self.page + 1)))
        self.page_size.observe(self._guard(self._on_page_size), names="value")
        self.rows_view.observe(self._guard(self._on_row), names="value")
        self.load_button.on_click(self._guard(lambda _: self.load()))
        self._guard(lambda _: self._start())(None)

    # -- set-up -----------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.table is not None:
            self.table_picker.options = [(self._table_label(self.table.name, self.table.columns), self.table.name)]
            self.table_picker.disabled = True
            self._open(self.table)
            return
        names = self.database.tables
        if not names:
            self.status.value = "<i>this database has no tables</i>"
            return
        self.table_picker.options = [
            (self._table_label(name, self.database.recorded_columns(name)), name) for name in names
        ]
        if self.table_picker.value == names[0]:  # the widget chose it already, without an event
            self._on_table({"new": names[0]})
        else:
            self.table_picker.value = names[0]

    @staticmethod
    def _table_label(name: str, columns: Any) -> str:
        shown = ", ".join(columns) if columns else "columns inferred from the keys"
        return f"{name} ({shown})"

    def _on_table(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        table = self.database.get_table(change["new"], infer_columns=True)
        if table is None:
            raise S3aadsError(f"table {change['new']!r} has no rows any more")
        self._open(table)

    def _open(self, table: Table) -> None:
        if not table.columns:
            raise ColumnsNotSetError(f"table {table.name!r} has no columns to explore")
        self.table = table
        self.filters = {}
        for column in table.columns:
            selector = widgets.SelectMultiple(description=column, options=[ANY], value=(ANY,), rows=6)
            selector.observe(self._guard(self._on_filter), names="value")
            self.filters[column] = selector
        self.filter_box.children = list(self.filters.values())
        self.header.value = (
            "<code>" + html.escape(" / ".join(table.columns)) + "</code>"
        )
        self._cascade(0)
        self.refresh()

    # -- filters ----------------------------------------------------------------------------------

    def selection(self) -> dict[str, list[str]]:
        """The chosen values per column ("any" is left out)."""
        chosen = {
            column: [v for v in selector.options if v in selector.value and v != ANY]
            for column, selector in self.filters.items()
        }
        return {column: values for column, values in chosen.items() if values}

    def _on_filter(self, change: dict[str, Any]) -> None:
        if self._updating_filters:
            return
        column = change["owner"].description
        if ANY in change["new"] and len(change["new"]) > 1:
            chosen = tuple(v for v in change["new"] if v != ANY)
            if ANY not in (change["old"] or ()):
                chosen = (ANY,)  # "any" picked again: it replaces the values
            self._set_value(change["owner"], chosen)
        elif not change["new"]:
            self._set_value(change["owner"], (ANY,))
        self._cascade(list(self.filters).index(column) + 1)
        self.refresh()

    def _set_value(self, selector: widgets.SelectMultiple, value: tuple[str, ...]) -> None:
        self._updating_filters = True
        try:
            selector.value = value
        finally:
            self._updating_filters = False

    def _cascade(self, start: int) -> None:
        """Choices for the columns from ``start`` on: the values under the choices before them.

        A column's values are listed once every column before it has values chosen, with the
        narrowest prefix those choices give (a Delimiter listing when each has one value). The
        last column's values come from the listing of the rows (see :meth:`refresh`), which
        covers the same prefix: it is listed once.
        """
        assert self.table is not None
        columns = list(self.filters)
        for position in range(start, len(columns) - 1):
            before = {c: v for c, v in self.selection().items() if columns.index(c) < position}
            ready = len(before) == position
            values = [v[0] for v in self.table.distinct([columns[position]], **before)] if ready else []
            self._set_choices(columns[position], values, ready)
        last = columns[-1]
        self._set_choices(last, [v for v in self.filters[last].options if v != ANY], self._last_ready())

    def _last_ready(self) -> bool:
        """Whether every column before the last has values chosen (its values can be listed)."""
        return all(column in self.selection() for column in list(self.filters)[:-1])

    def _set_choices(self, column: str, values: list[str], ready: bool) -> None:
        selector = self.filters[column]
        kept = tuple(v for v in selector.value if v in values) or (ANY,)
        self._updating_filters = True
        try:
            selector.options = [ANY, *values]
            selector.value = kept
            selector.disabled = not ready
            selector.tooltip = None if ready else "choose values for the columns before"
        finally:
            self._updating_filters = False

    # -- listing ----------------------------------------------------------------------------------

    def _refresh_all(self) -> None:
        """The Refresh button: the choices and the rows listed again."""
        if self.table is not None:
            self._cascade(0)
            self.refresh()

    def refresh(self) -> None:
        """List the rows matching the filters, in the background; the first page shows as soon as
        it is listed, and the last column's choices come from the same listing."""
        assert self.table is not None
        table, chosen = self.table, self.selection()
        self.code.value = self._code(table, chosen)
        last = list(self.filters)[-1]
        wanted = set(chosen.pop(last, []))
        collect = self._last_ready()

        def task() -> None:
            rows: list[Row] = []
            values: set[str] = set()
            self.rows = rows
            for row in table.iter_rows(**chosen):
                if self._cancel.is_set():
                    raise _Cancelled
                value = decode_segment(row.segments[-1])
                if collect:
                    values.add(value)
                if wanted and value not in wanted:
                    continue
                rows.append(row)
                if len(rows) == self.page_size.value:
                    self._show_page(0, listing=True)  # the first rows, while the listing goes on
                if len(rows) % 1000 == 0:
                    self.status.value = f"listing… {len(rows):,} rows so far"
            if collect:
                self._set_choices(last, sorted(values), ready=True)
            self._show_page(self.page if len(rows) > self.page_size.value else 0)

        self._run("listing…", task)

    def _show_page(self, page: int, *, listing: bool = False) -> None:
        size = self.page_size.value
        pages = max(1, -(-len(self.rows) // size))
        self.page = min(max(page, 0), pages - 1)
        start = self.page * size
        shown = self.rows[start:start + size]
        codec = self.table.codec if self.table is not None else None
        self.rows_view.options = [
            (" / ".join(codec.decode(row.segments).values()) if codec else row.key, start + i)
            for i, row in enumerate(shown)
        ]
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= pages - 1
        end = start + len(shown)
        so_far = " so far" if listing else ""
        self.page_label.value = (f"rows {start + 1:,}–{end:,} of {len(self.rows):,}{so_far}" if shown
                                 else "no matching rows")
        self.status.value = f"listing… {len(self.rows):,} rows so far" if listing else f"{len(self.rows):,} matching rows"

    def _on_page_size(self, change: dict[str, Any]) -> None:
        self.rows_view.rows = change["new"]
        self._show_page(0)

    def _on_row(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        key = self.rows[change["new"]].key
        self.preview.value = render(key, self.database.store.get(self.database.name, key))

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Fetch the matching rows with their payloads into ``explorer.df`` (in the background)."""
        assert self.table is not None
        table, chosen, total = self.table, self.selection(), len(self.rows)

        def task() -> None:
            self.load_progress.max = max(total, 1)
            self.load_progress.value = 0
            self.load_progress.layout.visibility = "visible"
            parts = []
            for chunk in read_s3aads(table, filters=chosen, chunksize=200, progress=False):
                if self._cancel.is_set():
                    raise _Cancelled
                parts.append(chunk)
                self.load_progress.value = min(self.load_progress.value + len(chunk), self.load_progress.max)
            self.df = pd.concat(parts, ignore_index=True) if parts else read_s3aads(table, filters=chosen)
            self.status.value = f"loaded {len(self.df):,} rows into <code>explorer.df</code>"

        self._run("loading…", task)

    @staticmethod
    def _code(table: Table, chosen: dict[str, list[str]]) -> str:
        recorded = table.database.recorded_columns(table.name)
        source = (repr(f"{table.database.name}/{table.name}") if recorded == tuple(table.columns)
                  else f"Table({table.name!r}, {table.database.name!r}, columns={table.columns!r})")
        values = {c: v[0] if len(v) == 1 else v for c, v in chosen.items()}
        if set(values) & set(inspect.signature(read_s3aads).parameters):  # a column named like a parameter
            return f"pd.read_s3aads({source}, filters={values!r})"
        return f"pd.read_s3aads({source}" + "".join(f", {c}={v!r}" for c, v in values.items()) + ")"

    # -- background work and errors ---------------------------------------------------------------

    def _run(self, busy: str, task: Callable[[], None]) -> None:
        """Run ``task`` on a background thread; one at a time, the newest replacing the last."""
        self.cancel()
        self.wait()
        self._cancel.clear()
        self.status.value = busy
        self.cancel_button.disabled = False
        self.error.value = ""

        def body() -> None:
            try:
                task()
            except _Cancelled:
                self.status.value = "cancelled"
            except Exception as error:  # shown in the widget: callbacks have nowhere else to go
                self._show_error(error)
            finally:
                self.cancel_button.disabled = True
                self.load_progress.layout.visibility = "hidden"

        self._task = threading.Thread(target=body, name="s3aads-explorer", daemon=True)
        self._task.start()

    def cancel(self) -> None:
        """Stop the listing or load in progress (it stops at the next row)."""
        if self._task is not None and self._task.is_alive():
            self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the listing or load in progress to finish."""
        if self._task is not None:
            self._task.join(timeout)

    def _guard(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Show a callback's error in the widget instead of losing it in the kernel log."""
        def guarded(argument: Any) -> None:
            try:
                callback(argument)
            except Exception as error:
                self._show_error(error)
        return guarded

    def _show_error(self, error: Exception) -> None:
        logger.warning("explorer: %s", error)
        kind = "error" if isinstance(error, S3aadsError) else f"unexpected {type(error).__name__}"
        self.error.value = (
            f"<div style='color:#b00020;border:1px solid #b00020;padding:4px'><b>{kind}:</b> "
            f"{html.escape(str(error))}</div>"
        )
        self.status.value = "failed"
