"""The explorer widget driven without a front end: set values, click buttons, read traits."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from s3aads_pandas import Database, Table, explore
from s3aads_pandas.notebook.explorer import ANY, Explorer
from s3aads_pandas.notebook.preview import MAX_TEXT_CHARS, render

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


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
    return [label for label, _ in explorer.rows_view.options]


def test_database_explorer_lists_tables_with_columns(table: Table) -> None:
    explorer = explore("s3aads-test")
    explorer.wait()
    assert [label for label, _ in explorer.table_picker.options] == ["events (kind, year, id)", "other (a)"]
    assert explorer.table.name == "events"
    assert explorer.filters["kind"].options == (ANY, "buy", "click", "view")
    explorer.table_picker.value = "other"
    explorer.wait()
    assert shown_rows(explorer) == ["1"] and list(explorer.filters) == ["a"]


def test_filters_cascade_with_the_narrowest_listing(table: Table, count_requests) -> None:
    explorer = explore(table)
    explorer.wait()
    assert explorer.filters["year"].disabled  # no kind chosen yet
    counter = count_requests(table.database)
    explorer.filters["kind"].value = ("view",)
    explorer.wait()
    assert explorer.filters["year"].options == (ANY, "2020", "2021", "2022")
    assert not explorer.filters["year"].disabled and explorer.filters["id"].disabled
    delimited = [p for p in counter.params("ListObjectsV2") if p.get("Delimiter")]
    assert [p["Prefix"] for p in delimited] == ["events/view/"]
    assert shown_rows(explorer) == ["view / 2020 / 1", "view / 2021 / 2", "view / 2022 / <b>x</b>"]
    explorer.filters["kind"].value = ("view", "buy")
    explorer.wait()
    assert explorer.filters["year"].options == (ANY, "2020", "2021", "2022")
    explorer.filters["year"].value = ("2021",)
    explorer.wait()
    assert shown_rows(explorer) == ["buy / 2021 / 3", "view / 2021 / 2"]
    assert explorer.code.value == "pd.read_s3aads('s3aads-test/events', kind=['buy', 'view'], year='2021')"
    explorer.filters["kind"].value = (ANY, "buy", "view")  # picking "any" again clears the values
    explorer.wait()
    assert explorer.filters["kind"].value == (ANY,) and explorer.filters["year"].value == (ANY,)
    assert len(explorer.rows) == 30


def test_paging(table: Table) -> None:
    explorer = Explorer(table, page_size=10)
    explorer.wait()
    assert explorer.page_label.value == "rows 1–10 of 30" and explorer.previous_button.disabled
    explorer.next_button.click()
    explorer.next_button.click()
    assert explorer.page_label.value == "rows 21–30 of 30" and explorer.next_button.disabled
    explorer.page_size.value = 50
    assert explorer.page_label.value == "rows 1–30 of 30" and len(shown_rows(explorer)) == 30
    explorer.filters["kind"].value = ("nothing",) if "nothing" in explorer.filters["kind"].options else ("buy",)
    explorer.wait()
    assert explorer.page_label.value == "rows 1–2 of 2"


def test_preview_of_json_text_image_and_escaping(table: Table) -> None:
    explorer = Explorer(table, page_size=50)
    explorer.wait()
    labels = shown_rows(explorer)
    explorer.rows_view.value = labels.index("view / 2020 / 1")
    assert "(JSON, 9 bytes)" in explorer.preview.value and "{\n  &quot;n&quot;: 25\n}" in explorer.preview.value
    explorer.rows_view.value = labels.index("view / 2022 / <b>x</b>")
    assert "<script>" not in explorer.preview.value and "<b>x</b>" not in explorer.preview.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in explorer.preview.value
    assert "events/view/2022/&lt;b&gt;x&lt;%2Fb&gt;" in explorer.preview.value
    explorer.rows_view.value = labels.index("buy / 2022 / 9")
    assert "<img" in explorer.preview.value and "data:image/png;base64," in explorer.preview.value


def test_preview_renderer_binary_and_truncation() -> None:
    binary = render("t/1", bytes(range(256)) * 4)
    assert "binary, 1,024 bytes" in binary and "00000000  00 01 02" in binary
    long = render("t/2", b"a" * (MAX_TEXT_CHARS + 5))
    assert f"showing the first {MAX_TEXT_CHARS:,}" in long
    assert "no such object" in render("t/3", None)


def test_load_dataframe(table: Table) -> None:
    explorer = explore(table)
    explorer.wait()
    explorer.filters["kind"].value = ("view",)
    explorer.wait()
    explorer.load_button.click()
    explorer.wait()
    assert explorer.df is not None
    assert explorer.df["id"].tolist() == ["1", "2", "<b>x</b>"]
    assert explorer.df["data"].iloc[0] == b'{"n": 25}'
    assert explorer.load_progress.value == 3
    assert "loaded 3 rows" in explorer.status.value


def test_errors_show_inside_the_widget(s3: str | None) -> None:
    explorer = explore("no-such-bucket")
    explorer.wait()
    assert "database &#x27;no-such-bucket&#x27; does not exist" in explorer.error.value


def test_cancel_stops_a_long_listing(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    explorer = explore(table)
    explorer.wait()
    real_rows = table.list_rows()

    def endless(**filters):  # a listing that would never end by itself
        while True:
            time.sleep(0.001)
            yield real_rows[0]

    monkeypatch.setattr(table, "iter_rows", endless)
    explorer.refresh()
    time.sleep(0.2)
    assert explorer.status.value.startswith("listing") and not explorer.cancel_button.disabled
    assert len(explorer.rows_view.options) == explorer.page_size.value  # the first page, mid-listing
    assert explorer.page_label.value.endswith("so far")
    explorer.cancel_button.click()
    explorer.wait(timeout=5)
    assert explorer.status.value == "cancelled" and explorer.cancel_button.disabled
    listed = len(explorer.rows)
    time.sleep(0.05)
    assert len(explorer.rows) == listed > 30  # the listing stopped; what it listed stays shown


def test_the_last_column_is_listed_once_with_the_rows(table: Table, count_requests) -> None:
    explorer = explore(table)
    explorer.wait()
    counter = count_requests(table.database)
    for column in table.columns[:-1]:  # choose a value in every column but the last
        selector = explorer.filters[column]
        selector.value = (selector.options[1],)
        explorer.wait()
    last = explorer.filters[table.columns[-1]]
    assert not last.disabled and len(last.options) > 1  # its values came with the rows
    chosen = {c: [explorer.filters[c].value[0]] for c in table.columns[:-1]}
    assert sorted(last.options[1:]) == sorted(row["id"] for row in table.query(**chosen))
    prefix = table.codec.listing_prefixes(table.codec.encode_filters(chosen))[0]
    listings = [p["Prefix"] for p in counter.params("ListObjectsV2")]
    assert listings.count(prefix) == 1 + 1  # the rows listing, and the query above

    explorer.refresh_button.click()
    explorer.wait()
    assert [p["Prefix"] for p in counter.params("ListObjectsV2")].count(prefix) > 2


def test_copy_as_code_uses_filters_for_columns_named_like_parameters(db: Database) -> None:
    table = Table("odd", db, ["format", "id"])
    table.insert(b"x", format="csv", id=1)
    explorer = explore(table)
    explorer.wait()
    explorer.filters["format"].value = ("csv",)
    explorer.wait()
    assert explorer.code.value == "pd.read_s3aads('s3aads-test/odd', filters={'format': 'csv'})"
    assert len(eval(explorer.code.value, {"pd": pd})) == 1  # the code runs and finds the row
