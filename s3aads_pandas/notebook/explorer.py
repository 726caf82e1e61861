"""The table explorer: an ipywidgets app to browse databases, tables, rows and payloads.

Rows show in itables' grid widget (DataTables: sort, search and pages in the browser, cell text
escaped). Everything else is core ipywidgets, so it renders wherever widgets do (JupyterLab,
Notebook 7, VS Code, Voila) without a front-end build. Listings and loads run on a background
thread so the notebook stays responsive; ``wait()`` joins that thread (for scripts and tests).
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
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.frames.read import read_s3aads
from s3aads_pandas.notebook.preview import render
from s3aads_pandas.tables.datastore import Database, Table
from s3aads_pandas.tables.rows import Row

with extra_required("notebook", "the explorer"):
    import ipywidgets as widgets
    from itables.widget import ITable

logger = logging.getLogger(__name__)

PAGE_SIZES = (10, 20, 50, 100)
#: The grid holds at most this many rows (the first, in key order); filters narrow the rest.
GRID_ROWS = 10_000
#: Rows of the loaded frame shown under it.
HEAD_ROWS = 5
SIZE, MODIFIED = "size (bytes)", "last modified (UTC)"

#: Voila's page sets a 28px line-height, and widths of 100% plus a border overflow their box.
_STYLE = """<style>
.s3aads-explorer { line-height: 1.4; }
.s3aads-explorer .s3aads-preview pre { line-height: 1.35; margin: 4px 0; white-space: pre-wrap; }
.s3aads-explorer .widget-textarea, .s3aads-explorer textarea, .s3aads-explorer .s3aads-grid,
.s3aads-explorer .s3aads-loaded { box-sizing: border-box; max-width: 100%; }
.s3aads-explorer .s3aads-loaded { overflow-x: auto; }
.s3aads-explorer .s3aads-summary { font-family: var(--jp-code-font-family, monospace); }
</style>"""


class _Cancelled(Exception):
    """Raised inside a background task when the user pressed Cancel."""


class Explorer(widgets.VBox):
    """Pick a database and a table, filter any column, browse and preview rows, load a frame.

    The loaded frame is ``explorer.df``; ``explorer.code`` holds the ``pd.read_s3aads`` call
    that reproduces the selection.
    """

    def __init__(self, source: Table | Database | str | None = None, *, page_size: int = 20) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        self.add_class("s3aads-explorer")
        self.df: pd.DataFrame | None = None
        self.table: Table | None = source if isinstance(source, Table) else None
        self.database: Database | None = source.database if isinstance(source, Table) else (
            source if isinstance(source, Database) else Database(source) if source else None)
        self.rows: list[Row] = []
        self._task: threading.Thread | None = None
        self._cancel = threading.Event()
        self._quiet = False  # set while the explorer itself changes a picker: not the user's choice
        self.page_size = page_size if page_size in PAGE_SIZES else 20

        wide = widgets.Layout(width="auto")  # stretched to the explorer; 100% plus margins overflows it
        self.database_picker = widgets.Dropdown(description="Database", options=[], layout=wide)
        self.table_picker = widgets.Dropdown(description="Table", options=[], layout=wide)
        self.filter_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.filters: dict[str, widgets.SelectMultiple] = {}
        self.summary = widgets.HTML()
        self.summary.add_class("s3aads-summary")
        self.status = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="list the table again, for rows written since")
        self.grid = ITable(self._grid_frame([]), **self._grid_options())
        self.grid.add_class("s3aads-grid")
        self.preview = widgets.HTML()
        self.preview.add_class("s3aads-preview")
        self.decode = widgets.ToggleButtons(options=list(CODECS), value="bytes", description="Decode",
                                            tooltip="how the payloads are decoded into the data column",
                                            tooltips=[codec.description for codec in CODECS.values()])
        self.load_button = widgets.Button(description="Load DataFrame", icon="download", button_style="primary",
                                          disabled=True)
        self.load_progress = widgets.IntProgress(value=0, min=0, max=1, description="Loaded",
                                                 layout=widgets.Layout(visibility="hidden"))
        self.loaded = widgets.HTML()
        self.loaded.add_class("s3aads-loaded")
        self.code = widgets.Textarea(description="Code", layout=wide)
        self.error = widgets.HTML()
        self.error.add_class("s3aads-error")

        self.children = [
            widgets.HTML(_STYLE + "<h3>s3aads explorer</h3>"),
            *([self.database_picker] if source is None else []),
            self.table_picker, self.filter_box, self.summary,
            widgets.HBox([self.status, self.refresh_button, self.cancel_button]),
            self.grid, self.preview,
            widgets.HBox([self.decode, self.load_button, self.load_progress]),
            self.loaded, self.code, self.error,
        ]
        self.database_picker.observe(self._guard(self._on_database), names="value")
        self.table_picker.observe(self._guard(self._on_table), names="value")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.refresh_button.on_click(self._guard(lambda _: self._refresh_all()))
        self.grid.observe(self._guard(self._on_select), names="selected_rows")
        self.decode.observe(self._guard(lambda _: self._show_code()), names="value")
        self.load_button.on_click(self._guard(lambda _: self.load()))
        self._guard(lambda _: self._start())(None)

    # -- set-up -----------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.table is not None:
            label = self._table_label(self.table.name, self.table.columns)
            self._quietly(self.table_picker, options=[(label, self.table.name)], value=self.table.name)
            self.table_picker.disabled = True
            self._open(self.table)
        elif self.database is not None:
            self._list_tables()
        else:
            names = sorted(Database.list_databases())
            self.database_picker.options = names
            self.database_picker.value = None
            self.status.value = ("<i>choose a database</i>" if names
                                 else "<i>these credentials list no databases (S3 buckets)</i>")

    def _on_database(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        self.cancel()
        self.wait()
        self.database = Database(change["new"])
        self._list_tables()

    def _list_tables(self) -> None:
        assert self.database is not None  # only called with a database chosen
        self.table, self.rows = None, []
        self._clear()
        names = self.database.tables
        labels = [(self._table_label(name, self.database.recorded_columns(name)), name) for name in names]
        self._quietly(self.table_picker, options=labels, value=None)
        if not names:
            self.status.value = "<i>this database has no tables</i>"
            return
        self.table_picker.value = names[0]

    @staticmethod
    def _table_label(name: str, columns: Any) -> str:
        shown = ", ".join(columns) if columns else "columns inferred from the keys"
        return f"{name} ({shown})"

    def _on_table(self, change: dict[str, Any]) -> None:
        if change["new"] is None or self._quiet or self.database is None:
            return
        table = self.database.get_table(change["new"], infer_columns=True)
        if table is None:
            raise S3aadsError(f"table {change['new']!r} has no rows any more: press Refresh")
        self._open(table)

    def _open(self, table: Table) -> None:
        if not table.columns:
            raise ColumnsNotSetError(f"table {table.name!r} has no columns to explore")
        self.table = table
        self.filters = {}
        for column in table.columns:
            selector = widgets.SelectMultiple(description=column, options=[], rows=6,
                                              tooltip="no choice: any value")
            selector.observe(self._guard(self._on_filter), names="value")
            self.filters[column] = selector
        self.filter_box.children = list(self.filters.values())
        self.refresh()

    def _clear(self) -> None:
        self.filters = {}
        self.filter_box.children = []
        self.summary.value = self.preview.value = self.loaded.value = self.code.value = ""
        self.grid.update(self._grid_frame([]), selected_rows=[])
        self.load_button.disabled = True

    # -- filters ----------------------------------------------------------------------------------

    def selection(self) -> dict[str, list[str]]:
        """The chosen values per column (a column with none chosen takes any value)."""
        chosen = {column: [v for v in selector.options if v in selector.value]
                  for column, selector in self.filters.items()}
        return {column: values for column, values in chosen.items() if values}

    def _on_filter(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.refresh()

    def _set_choices(self, column: str, values: list[str]) -> None:
        selector = self.filters[column]
        self._quietly(selector, options=values, value=tuple(v for v in selector.value if v in values))

    def _quietly(self, picker: widgets.Widget, **traits: Any) -> None:
        """Set a picker's options and value without taking it for a choice of the user."""
        self._quiet = True
        try:
            for name, value in traits.items():
                setattr(picker, name, value)
        finally:
            self._quiet = False

    def _describe_selection(self) -> str:
        parts = []
        for column, values in self.selection().items():
            shown = f"= {values[0]}" if len(values) == 1 else "∈ {" + ", ".join(values) + "}"
            parts.append(f"{column} {shown}")
        return html.escape(" · ".join(parts) if parts else "all rows (choose values to filter any column)")

    # -- listing ----------------------------------------------------------------------------------

    def _refresh_all(self) -> None:
        """The Refresh button: the tables, or the choices and rows, listed again."""
        if self.table is not None:
            self.refresh()
        elif self.database is not None:
            self._list_tables()

    def refresh(self) -> None:
        """List the matching rows in the background. Leading chosen columns narrow the listing;
        the other choices are applied to it, and every column's choices come from it."""
        assert self.table is not None  # only called with a table open
        table, chosen = self.table, self.selection()
        leading = len(table.codec.narrowed_columns(table.codec.encode_filters(chosen)))
        columns = list(self.filters)
        narrowing = {c: chosen[c] for c in columns[:leading]}
        applied = {columns.index(c): set(v) for c, v in chosen.items() if c not in narrowing}
        self.summary.value = self._describe_selection()
        self._show_code()
        self.preview.value = self.loaded.value = ""

        def task() -> None:
            for position in range(leading):  # a chosen column offers all its values, not only those
                before = {c: chosen[c] for c in columns[:position]}
                self._set_choices(columns[position], [v[0] for v in table.distinct([columns[position]], **before)])
            seen: list[set[str]] = [set() for _ in columns]
            rows: list[Row] = []
            self.rows = rows
            for row in table.iter_rows(**narrowing):
                if self._cancel.is_set():
                    raise _Cancelled
                values = list(table.codec.decode(row.segments).values())
                for position in range(leading, len(columns)):
                    seen[position].add(values[position])
                if all(values[p] in wanted for p, wanted in applied.items()):
                    rows.append(row)
                    if len(rows) == self.page_size:
                        self._show_rows(listing=True)  # the first page, while the listing goes on
                if len(rows) % 1000 == 0 and rows:
                    self.status.value = f"listing… {len(rows):,} rows so far"
            for position in range(leading, len(columns)):
                self._set_choices(columns[position], sorted(seen[position]))
            self._show_rows()

        self._run("listing…", task)

    def _show_rows(self, *, listing: bool = False) -> None:
        shown = self.rows[:GRID_ROWS]
        self.grid.update(self._grid_frame(shown), selected_rows=[])
        count = len(self.rows)
        if listing:
            self.status.value = f"listing… {count:,} rows so far"
        elif count > GRID_ROWS:
            self.status.value = f"{count:,} matching rows; the grid holds the first {GRID_ROWS:,}: filter to narrow"
        else:
            self.status.value = f"{count:,} matching row{'s' if count != 1 else ''}" if count else "no matching rows"
        self.load_button.disabled = count == 0

    def _grid_frame(self, rows: list[Row]) -> pd.DataFrame:
        """Key columns, size and last-modified time of the rows, as the grid shows them."""
        columns = self.table.columns if self.table is not None else []
        decoded = [self.table.codec.decode(row.segments) for row in rows] if self.table is not None else []
        frame = pd.DataFrame({column: pd.Series([d[column] for d in decoded], dtype=object) for column in columns})
        frame[SIZE] = pd.Series([row.size for row in rows], dtype="int64")
        frame[MODIFIED] = pd.Series([row.last_modified.strftime("%Y-%m-%d %H:%M:%S") if row.last_modified else ""
                                     for row in rows], dtype=object)
        return frame

    def _grid_options(self) -> dict[str, Any]:
        return {"select": {"style": "single"}, "pageLength": self.page_size, "lengthMenu": list(PAGE_SIZES),
                "maxBytes": 0, "classes": "display compact cell-border", "showIndex": False}

    def _on_select(self, change: dict[str, Any]) -> None:
        """Preview the row the user selected, and only that one."""
        if not change["new"] or self.table is None:
            self.preview.value = ""
            return
        row = self.rows[change["new"][0]]
        values = self.table.codec.decode(row.segments)
        title = " · ".join(f"{column} = {value}" for column, value in values.items())
        self.preview.value = render(title, self.table.database.store.get(self.table.database.name, row.key))

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Fetch the matching rows with their payloads into ``explorer.df`` (in the background)."""
        if self.table is None:
            raise S3aadsError("choose a table first")
        table, chosen, total, decode = self.table, self.selection(), len(self.rows), self.decode.value

        def task() -> None:
            self.load_progress.max = max(total, 1)
            self.load_progress.value = 0
            self.load_progress.layout.visibility = "visible"
            parts = []
            for chunk in read_s3aads(table, filters=chosen, decode=decode, chunksize=200, progress=False):
                if self._cancel.is_set():
                    raise _Cancelled
                parts.append(chunk)
                self.load_progress.value = min(self.load_progress.value + len(chunk), self.load_progress.max)
            self.df = pd.concat(parts, ignore_index=True)  # chunks give at least one frame
            self.loaded.value = self._describe_frame(self.df)
            self.status.value = f"loaded {len(self.df):,} rows into <code>explorer.df</code>"

        self._run("loading…", task)

    @staticmethod
    def _describe_frame(frame: pd.DataFrame) -> str:
        """Shape, dtypes and head of the loaded frame, as escaped HTML."""
        dtypes = pd.DataFrame({"column": frame.columns.astype(str), "dtype": frame.dtypes.astype(str).values})
        return (f"<b>explorer.df</b>: {len(frame):,} rows × {frame.shape[1]} columns"
                f"<div style='display:flex;gap:16px;align-items:flex-start'>"
                f"{dtypes.to_html(index=False, escape=True)}{frame.head(HEAD_ROWS).to_html(escape=True)}</div>")

    def _show_code(self) -> None:
        if self.table is not None:
            self.code.value = self._code(self.table, self.selection(), self.decode.value)

    @staticmethod
    def _code(table: Table, chosen: dict[str, list[str]], decode: str) -> str:
        recorded = table.database.recorded_columns(table.name)
        source = (repr(f"{table.database.name}/{table.name}") if recorded == tuple(table.columns)
                  else f"Table({table.name!r}, {table.database.name!r}, columns={table.columns!r})")
        values = {c: v[0] if len(v) == 1 else v for c, v in chosen.items()}
        decoding = f", decode={decode!r}" if decode != "bytes" else ""
        if set(values) & set(inspect.signature(read_s3aads).parameters):  # a column named like a parameter
            return f"pd.read_s3aads({source}, filters={values!r}{decoding})"
        return f"pd.read_s3aads({source}" + "".join(f", {c}={v!r}" for c, v in values.items()) + decoding + ")"

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
