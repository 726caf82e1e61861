"""The table explorer: an ipywidgets app to browse databases, tables, rows and payloads.

Rows show in itables' grid widget (DataTables: sort, search and pages in the browser, cell text
escaped). Everything else is core ipywidgets, so it renders wherever widgets do (JupyterLab,
Notebook 7, VS Code, Voila) without a front-end build. Listings and loads run on a background
thread so the notebook stays responsive; ``wait()`` joins that thread (for scripts and tests).
"""

from __future__ import annotations

import functools
import html
import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import pandas as pd

from s3aads_pandas.errors import BulkOperationError, S3aadsError, extra_required
from s3aads_pandas.frames.codecs import CODECS
from s3aads_pandas.notebook.browsing import (
    MODIFIED,
    SIZE,
    Browsing,
    Cancelled,
    Chosen,
    describe_choice,
    parse_choice,
    suggestions,
    table_label,
)
from s3aads_pandas.notebook.preview import render
from s3aads_pandas.storage.listing import stop_listing
from s3aads_pandas.storage.usage import Pricing, Usage, counting
from s3aads_pandas.tables.datastore import Database, Table
from s3aads_pandas.tables.rows import Row

with extra_required("notebook", "the explorer"):
    import ipywidgets as widgets
    from itables.widget import ITable

logger = logging.getLogger(__name__)

PAGE_SIZES = (10, 20, 50, 100)
#: The grid holds at most this many rows (the first, in key order); filters narrow the rest.
GRID_ROWS = 10_000
#: While a listing goes on, the grid gets the rows so far at most this often (seconds).
GRID_EVERY = 1.0
#: Rows of the loaded frame shown under it.
HEAD_ROWS = 5
__all__ = ["MODIFIED", "SIZE", "Explorer"]

#: Voila's page sets a 28px line-height, and widths of 100% plus a border overflow their box.
_STYLE = """<style>
.s3aads-explorer { line-height: 1.4; }
.s3aads-explorer .s3aads-preview pre { line-height: 1.35; margin: 4px 0; white-space: pre-wrap;
  max-height: 30em; overflow: auto; }
.s3aads-explorer .s3aads-error > div:not(:empty) { color: var(--jp-error-color1, #b00020);
  border: 1px solid var(--jp-error-color1, #b00020); padding: 4px 8px; white-space: pre-wrap; }
.s3aads-explorer .s3aads-error ul { margin: 4px 0; padding-left: 20px; }
.s3aads-explorer .widget-textarea, .s3aads-explorer textarea, .s3aads-explorer .s3aads-grid,
.s3aads-explorer .s3aads-loaded { box-sizing: border-box; max-width: 100%; }
.s3aads-explorer .s3aads-loaded { overflow-x: auto; }
.s3aads-explorer .s3aads-summary { font-family: var(--jp-code-font-family, monospace); }
.s3aads-explorer .s3aads-grid td { max-width: 24em; overflow: hidden; text-overflow: ellipsis; }
</style>"""


#: Failed rows an error names one by one; the rest are counted.
SHOWN_FAILURES = 20


def _error_html(error: Exception) -> str:
    """An error as escaped HTML: a bulk failure as its summary and a list of the failed rows."""
    if not isinstance(error, BulkOperationError):
        return html.escape(str(error))
    failed = sorted(error.failures.items())
    items = "".join(f"<li><code>{html.escape(key)}</code>: {html.escape(reason)}</li>"
                    for key, reason in failed[:SHOWN_FAILURES])
    more = f"<li>… and {len(failed) - SHOWN_FAILURES:,} more</li>" if len(failed) > SHOWN_FAILURES else ""
    return (f"{html.escape(error.action)} failed for {len(failed):,} of {error.total:,} rows "
            f"(the others succeeded):<ul>{items}{more}</ul>")


class Explorer(widgets.VBox):
    """Pick a database and a table, filter any column, browse and preview rows, load a frame.

    The loaded frame is ``explorer.df``; ``explorer.code`` holds the ``pd.read_s3aads`` call
    that reproduces the selection. What is browsed is ``explorer.browsing`` (no widgets); this
    class draws it and runs its listings and loads on a background thread.
    """

    def __init__(self, source: Table | Database | str | None = None, *, root: str | None = None,
                 page_size: int = 20) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        self.add_class("s3aads-explorer")
        self.df: pd.DataFrame | None = None
        self.browsing = Browsing(source, root=root)
        self._tasks: list[threading.Thread] = []  # the newest last; those it replaced may still run
        self._cancel = threading.Event()  # the newest task's
        self._quiet = False  # set while the explorer itself changes a picker: not the user's choice
        self.page_size = page_size if page_size in PAGE_SIZES else 20

        wide = widgets.Layout(width="auto")  # stretched to the explorer; 100% plus margins overflows it
        self.database_picker = widgets.Dropdown(description="Database", options=[], layout=wide)
        self.table_picker = widgets.Dropdown(description="Table", options=[], layout=wide)
        self.filter_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.filters: dict[str, widgets.Combobox] = {}
        self._chosen: Chosen = {}  # what each filter's text chose when Enter was last pressed in it
        self._offered: dict[str, Collection[str]] = {}  # each column's values: listed, or so far
        self.summary = widgets.HTML()
        self.summary.add_class("s3aads-summary")
        self.status = widgets.HTML()
        self.spent = Usage(Pricing())  # what this explorer has sent, in all
        self.spent_label = widgets.HTML(layout=widgets.Layout(margin="0 0 0 12px"))
        self.spent_label.add_class("s3aads-spent")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="list the table again, for rows written since")
        self.grid = ITable(self.browsing.grid_frame([]), **self._grid_options())
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
            widgets.HBox([self.status, self.refresh_button, self.cancel_button, self.spent_label]),
            self.grid, self.preview,
            widgets.HBox([self.decode, self.load_button, self.load_progress],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            self.loaded, self.code, self.error,
        ]
        self.database_picker.observe(self._guard(self._on_database), names="value")
        self.table_picker.observe(self._guard(self._on_table), names="value")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.refresh_button.on_click(self._guard(lambda _: self._refresh_all()))
        self.grid.observe(self._guard(self._on_select), names="selected_rows")
        self.decode.observe(self._guard(lambda _: self._show_code()), names="value")
        self.load_button.on_click(self._guard(lambda _: self.load()))
        with counting(self.spent):
            self._guard(lambda _: self._start())(None)

    @property
    def table(self) -> Table | None:
        return self.browsing.table

    @property
    def database(self) -> Database | None:
        return self.browsing.database

    @property
    def rows(self) -> list[Row]:
        return self.browsing.rows

    # -- set-up -----------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.table is not None:
            label = table_label(self.table.name, self.table.columns)
            self._quietly(self.table_picker, options=[(label, self.table.name)], value=self.table.name)
            self.table_picker.disabled = True
            self._open(self.table)
        elif self.database is not None:
            self._list_tables()
        else:
            names = self.browsing.database_names()
            self.database_picker.options = names
            self.database_picker.value = None
            root = self.browsing.settings.root
            self.status.value = ("<i>choose a database</i>" if names else
                                 f"<i>{html.escape(root)} holds no databases</i>" if root else
                                 "<i>these credentials list no databases (S3 buckets)</i>")

    def _on_database(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        self.cancel()
        self.wait()
        self.browsing.open_database(change["new"])
        self._list_tables()

    def _list_tables(self) -> None:
        labels = self.browsing.table_choices()
        self._clear()
        self._quietly(self.table_picker, options=labels, value=None)
        if not labels:
            self.status.value = "<i>this database has no tables</i>"
            return
        self.table_picker.value = labels[0][1]

    def _on_table(self, change: dict[str, Any]) -> None:
        if change["new"] is None or self._quiet or self.database is None:
            return
        self._open(change["new"])

    def _open(self, table: Table | str) -> None:
        opened = self.browsing.open_table(table)
        self.filters, self._chosen, self._offered = {}, {}, {}
        for column in opened.columns:
            box = widgets.Combobox(description=column, placeholder="any value", ensure_option=False,
                                   style={"description_width": "initial"},  # the whole name
                                   tooltip="a value, or several separated by commas, then Enter; empty: any value")
            box.add_class("s3aads-filter")
            box.observe(self._guard(functools.partial(self._on_typing, column)), names="value")
            box.on_submit(self._guard(functools.partial(self._on_submit, column)))
            self.filters[column] = box
        self.filter_box.children = list(self.filters.values())
        self.refresh()

    def _clear(self) -> None:
        self.filters, self._chosen, self._offered = {}, {}, {}
        self.filter_box.children = []
        self.summary.value = self.preview.value = self.loaded.value = self.code.value = ""
        self._fill_grid([])
        self.load_button.disabled = True

    # -- filters ----------------------------------------------------------------------------------

    def selection(self) -> dict[str, list[str]]:
        """The chosen values per column (a column with none chosen takes any value)."""
        return {column: self._chosen[column] for column in self.filters if column in self._chosen}

    def choose(self, column: str, *values: str) -> None:
        """Filter ``column`` to ``values`` (none: any value), as typing them and Enter does."""
        box = self.filters[column]
        self._quietly(box, value=", ".join(values))
        self._on_submit(column, box)

    def _on_submit(self, column: str, box: widgets.Combobox) -> None:
        values = parse_choice(box.value, self._offered.get(column, ()))
        if values == self._chosen.get(column, []):
            return
        if values:
            self._chosen[column] = values
        else:
            self._chosen.pop(column, None)
        self.refresh()

    def _on_typing(self, column: str, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._suggest(column)

    def _set_choices(self, column: str, values: Collection[str]) -> None:
        self._offered[column] = values
        self._suggest(column)

    def _suggest(self, column: str) -> None:
        """Offer the values that complete what is typed (a few: not all of a column's)."""
        box = self.filters.get(column)
        if box is not None:
            self._quietly(box, options=tuple(suggestions(box.value, self._offered.get(column, ()))))

    def _quietly(self, picker: widgets.Widget, **traits: Any) -> None:
        """Set a picker's options and value without taking it for a choice of the user."""
        self._quiet = True
        try:
            for name, value in traits.items():
                setattr(picker, name, value)
        finally:
            self._quiet = False

    # -- listing ----------------------------------------------------------------------------------

    def _refresh_all(self) -> None:
        """The Refresh button: the tables, or the choices and rows, listed again."""
        if self.table is not None:
            self.refresh(again=True)
        elif self.database is not None:
            self._list_tables()

    def refresh(self, *, again: bool = False) -> None:
        """List the matching rows in the background. Leading chosen columns narrow the listing;
        the other choices are applied to it, and every column's choices come from it. A choice
        of the other columns only is applied to the listing in hand, unless ``again``."""
        chosen = self.selection()
        self.summary.value = describe_choice(chosen)
        self._show_code()
        self.preview.value = self.loaded.value = ""
        self._fill_grid([])  # until the rows of this choice arrive: the grid shows what the status line says
        self.load_button.disabled = True

        def task(cancel: threading.Event) -> None:
            current = functools.partial(self._is_current, cancel)
            grid_sent = [time.monotonic()]

            def progress(rows: list[Row]) -> None:
                if not current():
                    return
                if len(rows) == self.page_size or (len(rows) % 1000 == 0 and len(rows) <= GRID_ROWS
                                                   and time.monotonic() - grid_sent[0] >= GRID_EVERY):
                    grid_sent[0] = time.monotonic()
                    self._show_rows(listing=True)  # the grid fills as pages arrive, while the listing goes on
                elif len(rows) % 1000 == 0:
                    self.status.value = f"listing… {len(rows):,} rows so far"

            def choices(column: str, values: Collection[str]) -> None:
                if current():
                    self._set_choices(column, values)

            stop_listing.set(cancel)  # this thread's: its listing stops at once when cancelled
            try:
                self.browsing.list_rows(chosen, cancelled=cancel.is_set, on_choices=choices,
                                        on_progress=progress, again=again)
            except Cancelled:
                pass  # the rows so far stay in hand, and the status line says they are a part
            finally:  # failed too
                if current():
                    self._show_rows()

        self._run("listing…", task)

    def _show_rows(self, *, listing: bool = False) -> None:
        shown = self.rows[:GRID_ROWS]
        self._fill_grid(shown)
        count = len(self.rows)
        if listing:
            self.status.value = f"listing… {count:,} rows so far"
        elif not self.browsing.complete:
            self.status.value = self._partial()
        elif count > GRID_ROWS:
            self.status.value = f"{count:,} matching rows; the grid holds the first {GRID_ROWS:,}: filter to narrow"
        else:
            self.status.value = f"{count:,} matching row{'s' if count != 1 else ''}" if count else "no matching rows"
        self.load_button.disabled = count == 0

    def _partial(self) -> str:
        """What the status line says of the rows a stopped listing left in hand."""
        count = len(self.rows)
        held = f"the grid holds the first {GRID_ROWS:,}" if count > GRID_ROWS else "the grid holds them"
        return (f"listing stopped after {count:,} matching row{'s' if count != 1 else ''}: {held}, and Load "
                f"reads these only; Refresh lists them all")

    def _fill_grid(self, rows: list[Any]) -> None:
        """Give the grid these rows, all of them: itables applies only the options passed to each
        update, and without ``maxBytes=0`` it would send the browser a sample of a large frame."""
        self.grid.update(self.browsing.grid_frame(rows), selected_rows=[], **self._grid_options())

    def _grid_options(self) -> dict[str, Any]:
        return {"select": {"style": "single"}, "pageLength": self.page_size, "lengthMenu": list(PAGE_SIZES),
                "maxBytes": 0, "classes": "display nowrap compact cell-border", "showIndex": False}

    def _on_select(self, change: dict[str, Any]) -> None:
        """Preview the row the user selected, and only that one."""
        if not change["new"] or self.table is None:
            self.preview.value = ""
            return
        with counting(self.spent):
            self.preview.value = render(*self.browsing.payload(change["new"][0]))
        self._show_spent()

    def _show_spent(self) -> None:
        self.spent_label.value = f"<small>this session: {html.escape(self.spent.summary())}</small>"

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Fetch the matching rows with their payloads into ``explorer.df`` (in the background)."""
        if self.table is None:
            raise S3aadsError("choose a table first")
        chosen, total, decode = self.selection(), len(self.rows), self.decode.value

        def loaded(count: int) -> None:
            self.load_progress.value = min(self.load_progress.value + count, self.load_progress.max)

        def task(cancel: threading.Event) -> None:
            self.load_progress.max = max(total, 1)
            self.load_progress.value = 0
            self.load_progress.layout.visibility = "visible"
            frame = self.browsing.load(chosen, decode, cancelled=cancel.is_set, on_chunk=loaded)
            if not self._is_current(cancel):
                raise Cancelled
            self.df = frame
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
            self.code.value = self.browsing.code(self.selection(), self.decode.value)

    # -- background work and errors ---------------------------------------------------------------

    def _run(self, busy: str, task: Callable[[threading.Event], None]) -> None:
        """Run ``task`` on a background thread, the newest replacing the last: the task in
        progress is cancelled and left to stop by itself (its requests in flight end unwatched),
        and from then on changes no widget. ``task`` gets its own cancel event."""
        self.cancel()
        cancel = self._cancel = threading.Event()
        self.status.value = busy
        self.cancel_button.disabled = False
        self.error.value = ""

        def body() -> None:
            try:
                with counting(self.spent):
                    task(cancel)
            except Cancelled:  # a load: a cancelled listing ends in its task
                if self._is_current(cancel):
                    self.status.value = "cancelled"
            except Exception as error:  # shown in the widget: callbacks have nowhere else to go
                if self._is_current(cancel):
                    self._show_error(error)
                else:
                    logger.debug("explorer: a replaced task failed: %s", error)
            finally:
                if self._is_current(cancel):
                    self.cancel_button.disabled = True
                    self.load_progress.layout.visibility = "hidden"
                self._show_spent()

        self._tasks = [thread for thread in self._tasks if thread.is_alive()]
        thread = threading.Thread(target=body, name="s3aads-explorer", daemon=True)
        self._tasks.append(thread)
        thread.start()

    def _is_current(self, cancel: threading.Event) -> bool:
        """Whether the task of ``cancel`` is the newest: only it changes the widgets."""
        return self._cancel is cancel

    def cancel(self) -> None:
        """Stop the listing or load in progress (it stops at the next row)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the listing or load in progress, and any it replaced, to finish."""
        for thread in list(self._tasks):
            thread.join(timeout)

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
        self.error.value = f"<div><b>{kind}:</b> {_error_html(error)}</div>"
        stopped = self.browsing.listed_for is not None and not self.browsing.complete
        self.status.value = f"failed: {self._partial()}" if stopped else "failed"
