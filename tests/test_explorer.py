"""The explorer widget driven without a front end: set values, click buttons, read traits."""

from __future__ import annotations

import itertools
import json
import threading

import pandas as pd
import pytest

from s3aads_pandas import Database, Table, explore
from s3aads_pandas.errors import BulkOperationError, S3aadsError
from s3aads_pandas.notebook import explorer as explorer_module
from s3aads_pandas.notebook.explorer import MODIFIED, SIZE, Explorer
from s3aads_pandas.notebook.preview import MAX_TEXT_CHARS, render

#: A whole 1x1 PNG: its header, its pixel, and its end.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000b49444154789c"
                    "6360000200000500017a5eab3f0000000049454e44ae426082")

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)


@pytest.fixture
def table(db: Database) -> Table:
    table = Table("events", db, ["kind", "year", "id"])
    rows = [("click", 2020, i) for i in range(25)] + [("view", 2020, 1), ("view", 2021, 2), ("buy", 2021, 3)]
    frame = pd.DataFrame(rows, columns=["kind", "year", "id"])
    frame["data"] = [json.dumps({"n": i}).encode() for i in range(len(frame))]
    frame.s3aads.write(table)
    table.insert(b"<script>alert(1)</script>", kind="view", year=2022, id="<b>x</b>")
    table.insert(PNG, kind="buy", year=2022, id=9)
    Table("other", db, ["a"]).insert(b"x", a=1)
    return table


def shown_rows(explorer: Explorer) -> list[str]:
    """The grid's rows as "value / value / value" of their key columns."""
    frame = explorer.grid.df
    return [" / ".join(values) for values in frame[explorer.table.columns].itertuples(index=False)]


def select(explorer: Explorer, label: str) -> None:
    explorer.grid.selected_rows = [shown_rows(explorer).index(label)]


def test_database_explorer_lists_tables_with_columns(table: Table) -> None:
    explorer = explore("s3aads-test")
    explorer.wait()
    assert [label for label, _ in explorer.table_picker.options] == ["events (kind, year, id)", "other (a)"]
    assert explorer.table.name == "events" and explorer.table_picker.value == "events"
    assert explorer.filters["kind"].options == ("buy", "click", "view")
    explorer.table_picker.value = "other"
    explorer.wait()
    assert shown_rows(explorer) == ["1"] and list(explorer.filters) == ["a"]


def test_a_table_explorer_names_its_table(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    assert explorer.table_picker.value == "events" and explorer.table_picker.disabled
    assert explorer.table_picker.label == "events (kind, year, id)"


def test_the_status_line_says_what_the_session_has_spent(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    listed = explorer.spent.requests["ListObjectsV2"]
    assert listed >= 1 and "this session: " in explorer.spent_label.value
    select(explorer, "view / 2020 / 1")
    assert explorer.spent.requests["GetObject"] >= 1  # the preview's
    explorer.refresh_button.click()  # lists again
    explorer.wait()
    assert explorer.spent.requests["ListObjectsV2"] > listed  # the total goes on growing
    assert f"{explorer.spent.total:,} requests" in explorer.spent_label.value


def test_without_a_database_the_buckets_are_offered(table: Table) -> None:
    Database("s3aads-second").create()
    Table("t", Database("s3aads-second"), ["x"]).insert(b"1", x="only")
    explorer = explore()
    explorer.wait()
    assert explorer.database_picker.options == ("s3aads-second", "s3aads-test")
    assert explorer.database_picker.value is None and explorer.table is None
    explorer.database_picker.value = "s3aads-second"
    explorer.wait()
    assert explorer.table.name == "t" and shown_rows(explorer) == ["only"]
    explorer.database_picker.value = "s3aads-test"
    explorer.wait()
    assert explorer.table.name == "events" and len(explorer.rows) == 30


def test_the_grid_shows_key_columns_size_and_last_modified(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    frame = explorer.grid.df
    assert list(frame.columns) == ["kind", "year", "id", SIZE, MODIFIED]
    assert len(frame) == 30 and frame[SIZE].iloc[0] == len(b'{"n": 27}')
    assert frame[MODIFIED].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert explorer.status.value == "30 matching rows" and not explorer.load_button.disabled


def test_any_column_filters_on_its_own(table: Table, count_requests) -> None:
    explorer = explore(table)
    explorer.wait()
    assert not any(selector.disabled for selector in explorer.filters.values())
    assert explorer.filters["year"].options == ("2020", "2021", "2022")
    counter = count_requests(table.database)
    explorer.choose("year", "2021")  # not the leading column: applied to the listing in hand
    explorer.wait()
    assert shown_rows(explorer) == ["buy / 2021 / 3", "view / 2021 / 2"]
    assert explorer.summary.value == "year = 2021"
    assert dict(counter.operations) == {}  # no new listing
    assert explorer.filters["kind"].options == ("buy", "click", "view")
    explorer.refresh_button.click()  # Refresh lists again, for rows written since
    explorer.wait()
    assert [p["Prefix"] for p in counter.params("ListObjectsV2")] == ["events/"]
    assert shown_rows(explorer) == ["buy / 2021 / 3", "view / 2021 / 2"]


def test_leading_choices_narrow_the_listing_and_keep_their_alternatives(table: Table, count_requests) -> None:
    explorer = explore(table)
    explorer.wait()
    counter = count_requests(table.database)
    explorer.choose("kind", "view")
    explorer.wait()
    assert shown_rows(explorer) == ["view / 2020 / 1", "view / 2021 / 2", "view / 2022 / <b>x</b>"]
    listed = [p["Prefix"] for p in counter.params("ListObjectsV2") if not p.get("Delimiter")]
    assert listed == ["events/view/"]
    assert explorer.filters["kind"].options == ("view",)  # what completes the text typed
    explorer.filters["kind"].value = "view, "
    assert explorer.filters["kind"].options == ("view, buy", "view, click")  # others can still be added
    assert explorer.filters["year"].options == ("2020", "2021", "2022")
    explorer.choose("kind", "buy", "view")
    explorer.wait()
    explorer.choose("id", "2", "3")
    explorer.wait()
    assert shown_rows(explorer) == ["buy / 2021 / 3", "view / 2021 / 2"]
    assert explorer.summary.value == "kind ∈ {buy, view} · id ∈ {2, 3}"
    source = f"{table.database.reference}/events"
    assert explorer.code.value == f"pd.read_s3aads('{source}', kind=['buy', 'view'], id=['2', '3'])"
    explorer.choose("kind")
    explorer.choose("id")
    explorer.wait()
    assert len(explorer.rows) == 30 and explorer.summary.value.startswith("all rows")


def test_preview_only_what_is_selected(table: Table, count_requests) -> None:
    explorer = Explorer(table, page_size=50)
    counter = count_requests(table.database)
    explorer.wait()
    assert explorer.preview.value == "" and "GetObject" not in counter.operations
    select(explorer, "view / 2020 / 1")
    assert "(JSON, 9 bytes)" in explorer.preview.value and "{\n  &quot;n&quot;: 25\n}" in explorer.preview.value
    assert "kind = view · year = 2020 · id = 1" in explorer.preview.value
    select(explorer, "view / 2022 / <b>x</b>")
    assert "<script>" not in explorer.preview.value and "<b>x</b>" not in explorer.preview.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in explorer.preview.value
    assert "id = &lt;b&gt;x&lt;/b&gt;" in explorer.preview.value and "%2F" not in explorer.preview.value
    select(explorer, "buy / 2022 / 9")
    assert "<img" in explorer.preview.value and "data:image/png;base64," in explorer.preview.value
    assert counter.operations["GetObject"] == 3
    explorer.grid.selected_rows = []
    assert explorer.preview.value == ""


def test_preview_renderer_binary_and_truncation() -> None:
    binary = render("t/1", bytes(range(256)) * 4)
    assert "binary, 1,024 bytes" in binary and "00000000  00 01 02" in binary
    cut = render("t/4", PNG[:-20])  # an image cut short: a browser would draw a broken-image icon
    assert "<img" not in cut and "PNG that is cut short or damaged, binary, 48 bytes" in cut
    long = render("t/2", b"a" * (MAX_TEXT_CHARS + 5))
    assert f"showing the first {MAX_TEXT_CHARS:,}" in long
    assert "no such object" in render("t/3", None)


def test_load_dataframe_shows_it_decoded_as_chosen(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    explorer.choose("kind", "view")
    explorer.wait()
    explorer.choose("year", "2020", "2021")  # JSON payloads only
    explorer.wait()
    explorer.decode.value = "json"
    assert explorer.code.value == (
        f"pd.read_s3aads('{table.database.reference}/events', kind='view', year=['2020', '2021'], decode='json')")
    explorer.load_button.click()
    explorer.wait()
    assert explorer.df is not None
    assert explorer.df["id"].tolist() == ["1", "2"]
    assert explorer.df["data"].tolist() == [{"n": 25}, {"n": 26}]
    assert explorer.load_progress.value == 2
    assert "loaded 2 rows" in explorer.status.value
    shown = explorer.loaded.value
    assert "2 rows × 4 columns" in shown and "<td>data</td>" in shown and "<td>object</td>" in shown
    assert "{&#x27;n&#x27;: 25}" in shown or "{'n': 25}" in shown


def test_the_loaded_frame_is_escaped(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    explorer.choose("year", "2022")
    explorer.wait()
    explorer.load()
    explorer.wait()
    assert "&lt;b&gt;x&lt;/b&gt;" in explorer.loaded.value and "<b>x</b>" not in explorer.loaded.value
    assert "<script>" not in explorer.loaded.value


def test_load_dataframe_of_binary_payloads_decoded_as_text_fails_in_the_widget(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    explorer.choose("kind", "buy")
    explorer.decode.value = "str"
    explorer.wait()
    explorer.load()
    explorer.wait()
    assert "error" in explorer.error.value and explorer.df is None


def test_an_empty_database_has_nothing_to_load(db: Database) -> None:
    explorer = explore(db)
    explorer.wait()
    assert "no tables" in explorer.status.value
    assert explorer.load_button.disabled and len(explorer.grid.df) == 0
    with pytest.raises(S3aadsError, match="choose a table first"):
        explorer.load()


def test_the_grid_holds_a_bounded_number_of_rows(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explorer_module, "GRID_ROWS", 7)
    explorer = explore(table)
    explorer.wait()
    assert len(explorer.grid.df) == 7 and len(explorer.rows) == 30
    assert explorer.status.value == "30 matching rows; the grid holds the first 7: filter to narrow"


def test_errors_show_inside_the_widget(s3: str | None) -> None:
    explorer = explore("no-such-bucket")
    explorer.wait()
    assert "database &#x27;no-such-bucket&#x27; does not exist" in explorer.error.value


def test_cancel_stops_a_long_listing(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    explorer = explore(table)
    explorer.wait()
    real_rows = table.list_rows()

    under_way, stopped = threading.Event(), threading.Event()

    def endless(**filters):  # a listing that would never end by itself
        try:
            for count in itertools.count(1):
                if count == 50:
                    under_way.set()
                yield real_rows[0]
        finally:
            stopped.set()

    monkeypatch.setattr(table, "iter_rows", endless)
    explorer.refresh(again=True)
    assert under_way.wait(60)
    assert explorer.status.value.startswith("listing") and not explorer.cancel_button.disabled
    assert len(explorer.grid.df) >= explorer.page_size  # the first page at least, mid-listing
    explorer.cancel_button.click()
    explorer.wait(timeout=60)
    assert stopped.wait(60)  # the listing was closed, not left running
    assert explorer.cancel_button.disabled
    count = len(explorer.rows)
    assert count >= 49 and len(explorer.grid.df) == count  # the grid holds what was listed, all of it
    assert explorer.status.value == (f"listing stopped after {count:,} matching rows: the grid holds them, "
                                     "and Load reads these only; Refresh lists them all")
    assert not explorer.load_button.disabled
    explorer.load()  # reads the rows in hand, with no new listing (which would never end)
    explorer.wait(timeout=60)
    assert explorer.df is not None and len(explorer.df) == count
    assert explorer.status.value == f"loaded {count:,} rows into <code>explorer.df</code>"


def test_refresh_does_not_wait_for_the_listing_it_replaces(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    explorer = explore(table)
    explorer.wait()
    real_rows = table.list_rows()
    real_iter_rows = table.iter_rows
    stuck, release, stopped = threading.Event(), threading.Event(), threading.Event()

    def stuck_listing(**filters):  # a listing whose next LIST has not answered yet
        try:
            yield from real_rows[:5]
            stuck.set()
            release.wait(60)
            yield from real_rows  # what it lists once the answer comes: too late to be shown
        finally:
            stopped.set()

    listings = iter([stuck_listing, real_iter_rows])
    monkeypatch.setattr(table, "iter_rows", lambda **filters: next(listings)(**filters))
    explorer.refresh(again=True)
    assert stuck.wait(60)
    explorer.refresh(again=True)  # returns at once: the stuck listing is cancelled, not waited for
    assert not stopped.is_set() and not release.is_set()
    release.set()
    explorer.wait(timeout=60)
    assert stopped.is_set()  # it stopped at its next row, by itself
    assert explorer.browsing.complete and explorer.rows == real_rows  # the newest listing's rows, whole
    assert len(explorer.grid.df) == len(real_rows) and explorer.status.value == f"{len(real_rows)} matching rows"
    assert explorer.cancel_button.disabled and explorer.error.value == ""


def test_copy_as_code_uses_filters_for_columns_named_like_parameters(db: Database) -> None:
    table = Table("odd", db, ["format", "id"])
    table.insert(b"x", format="csv", id=1)
    explorer = explore(table)
    explorer.wait()
    explorer.choose("format", "csv")
    explorer.wait()
    assert explorer.code.value == f"pd.read_s3aads('{db.reference}/odd', filters={{'format': 'csv'}})"
    assert len(eval(explorer.code.value, {"pd": pd})) == 1  # the code runs and finds the row


def test_the_grid_sends_every_row_it_holds_however_large() -> None:
    db = Database("memory://grid")  # what the grid sends depends on the rows, not on where they come from
    db.create()
    big = Table("wide", db, ["name"])
    pd.DataFrame({"name": [f"{i:04d}" for i in range(3500)], "data": [b""] * 3500}).s3aads.write(
        big, progress=False)  # a grid frame of 3 x 3,500 cells: past itables' default limit of 64 KB
    explorer = explore(big)
    explorer.wait()
    sent = explorer.grid._dt_args  # what the browser gets
    assert len(json.loads(sent["data_json"])) == 3500 and "downsampling_warning" not in sent


def test_a_bulk_failure_shows_as_a_list_of_its_rows() -> None:
    failures = {f"events/<{row}>": "NoSuchKey: deleted since it was listed" for row in range(25)}
    shown = explorer_module._error_html(BulkOperationError("read", failures, 100))
    assert shown.startswith("read failed for 25 of 100 rows (the others succeeded):<ul>"
                            "<li><code>events/&lt;0&gt;</code>")
    assert shown.count("<li>") == explorer_module.SHOWN_FAILURES + 1 and "… and 5 more" in shown
    assert "<" + "0>" not in shown  # every key escaped


def test_a_cancelled_load_says_so_after_a_stopped_listing_too(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    explorer = explore(table)
    explorer.wait()
    explorer.browsing.complete = False  # as a cancelled listing leaves it

    def cancelled_load(*arguments, **keywords):
        raise explorer_module.Cancelled

    monkeypatch.setattr(explorer.browsing, "load", cancelled_load)
    explorer.load()
    explorer.wait(timeout=60)
    assert explorer.status.value == "cancelled" and explorer.df is None


def test_a_filter_suggests_fifty_values_and_takes_any(db: Database) -> None:
    table = Table("wide", db, ["id"])
    pd.DataFrame({"id": range(120), "data": ["x"] * 120}).s3aads.write(table, progress=False)
    explorer = explore(table)
    explorer.wait()
    assert len(explorer.filters["id"].options) == 50  # of 120 values: the browser gets a few
    explorer.filters["id"].value = "11"  # typing
    assert explorer.filters["id"].options[:3] == ("11", "110", "111") and explorer.selection() == {}
    explorer.choose("id", "5000")  # not among the values offered
    explorer.wait()
    assert explorer.status.value == "no matching rows" and explorer.load_button.disabled
    explorer.choose("id", "7", "70")
    explorer.wait()
    assert shown_rows(explorer) == ["7", "70"] and explorer.summary.value == "id ∈ {7, 70}"
