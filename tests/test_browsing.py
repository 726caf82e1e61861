"""What the explorer browses, without any widget: listings, choices, loads and the code."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from s3aads_pandas import ColumnsNotSetError, Database, S3aadsError, Table
from s3aads_pandas.notebook.browsing import SUGGESTIONS, Browsing, Cancelled, describe_choice, parse_choice, suggestions
from s3aads_pandas.storage import memory


@pytest.fixture
def events() -> Iterator[Table]:
    database = Database("memory://browse")
    database.create()
    table = Table("events", database, ["kind", "year", "id"])
    rows = [(kind, year, i) for kind in ("buy", "view") for year in (2020, 2021) for i in range(3)]
    pd.DataFrame({"kind": [r[0] for r in rows], "year": [r[1] for r in rows], "id": [r[2] for r in rows],
                  "data": [f"{r}".encode() for r in rows]}).s3aads.write(table)
    yield table
    memory.forget_all()


def listed(browsing: Browsing, chosen: dict[str, list[str]]) -> tuple[list[dict[str, str]], dict[str, list[str]]]:
    choices: dict[str, list[str]] = {}
    rows = browsing.list_rows(chosen, cancelled=lambda: False, on_choices=choices.__setitem__,
                              on_progress=lambda rows: None)
    assert rows is browsing.rows
    return [browsing.table.codec.decode(row.segments) for row in rows], choices


def test_a_leading_choice_narrows_and_offers_all_its_values(events: Table) -> None:
    browsing = Browsing(events)
    rows, choices = listed(browsing, {"kind": ["view"]})
    assert {r["kind"] for r in rows} == {"view"} and len(rows) == 6
    assert choices == {"kind": ["buy", "view"], "year": ["2020", "2021"], "id": ["0", "1", "2"]}


def test_a_later_choice_is_applied_and_its_column_offers_what_the_listing_holds(events: Table) -> None:
    rows, choices = listed(Browsing(events), {"year": ["2021"], "id": ["1", "2"]})
    assert [(r["kind"], r["year"], r["id"]) for r in rows] == [
        ("buy", "2021", "1"), ("buy", "2021", "2"), ("view", "2021", "1"), ("view", "2021", "2")]
    assert choices["year"] == ["2020", "2021"] and choices["id"] == ["0", "1", "2"]


def test_load_code_and_payload_follow_the_choice(events: Table) -> None:
    browsing = Browsing(events.database)
    assert browsing.table_choices() == [("events (kind, year, id)", "events")]
    browsing.open_table("events")
    chosen = {"kind": ["buy"], "id": ["0"]}
    listed(browsing, chosen)
    sizes: list[int] = []
    frame = browsing.load(chosen, "str", cancelled=lambda: False, on_chunk=sizes.append)
    assert frame["data"].tolist() == ["('buy', 2020, 0)", "('buy', 2021, 0)"] and sizes == [2]
    assert browsing.code(chosen, "str") == "pd.read_s3aads('memory://browse/events', kind='buy', id='0', decode='str')"
    assert browsing.payload(1) == ("kind = buy · year = 2021 · id = 0", b"('buy', 2021, 0)")
    assert describe_choice(chosen) == "kind = buy · id = 0"
    assert describe_choice({"kind": ["buy", "view"]}) == "kind ∈ {buy, view}"


def test_a_cancelled_listing_stops_at_the_next_row(events: Table) -> None:
    seen: list[int] = []
    with pytest.raises(Cancelled):
        Browsing(events).list_rows({}, cancelled=lambda: len(seen) >= 3, on_choices=lambda *_: None,
                                   on_progress=lambda rows: seen.append(len(rows)))
    assert seen == [1, 2, 3]


def test_load_reads_the_rows_in_hand_and_lists_nothing_again(events: Table, count_requests) -> None:
    browsing = Browsing(events)
    chosen = {"year": ["2021"]}
    listed(browsing, chosen)
    assert browsing.complete and browsing.listed_for == chosen
    counter = count_requests(events.database)
    frame = browsing.load(chosen, "bytes", cancelled=lambda: False, on_chunk=lambda size: None)
    assert dict(counter.operations) == {"GetObject": 6}  # the six rows' payloads, and no LIST
    assert sorted(frame["id"]) == ["0", "0", "1", "1", "2", "2"] and set(frame["year"]) == {"2021"}
    counter.reset()
    other = browsing.load({"kind": ["buy"]}, "bytes", cancelled=lambda: False, on_chunk=lambda size: None)
    assert counter.operations["ListObjectsV2"] >= 1 and len(other) == 6  # another choice is listed


def test_a_choice_of_later_columns_is_applied_to_the_listing_in_hand(events: Table, count_requests) -> None:
    browsing = Browsing(events)
    listed(browsing, {})
    counter = count_requests(events.database)
    rows, choices = listed(browsing, {"year": ["2021"], "id": ["2"]})
    assert dict(counter.operations) == {}  # no request
    assert [(r["kind"], r["year"], r["id"]) for r in rows] == [("buy", "2021", "2"), ("view", "2021", "2")]
    assert choices == {"kind": ["buy", "view"], "year": ["2020", "2021"], "id": ["0", "1", "2"]}
    browsing.list_rows({"year": ["2021"]}, cancelled=lambda: False, on_choices=lambda *_: None,
                       on_progress=lambda rows: None, again=True)
    assert counter.operations["ListObjectsV2"] == 1 and len(browsing.rows) == 6  # listed again, when asked
    listed(browsing, {"kind": ["buy"]})  # a leading choice narrows another listing
    assert [p["Prefix"] for p in counter.params("ListObjectsV2") if not p.get("Delimiter")] == ["events/",
                                                                                               "events/buy/"]


def test_a_cancelled_listing_leaves_its_part_in_hand_and_offers_its_values(events: Table) -> None:
    browsing = Browsing(events)
    choices: dict[str, list[str]] = {}
    with pytest.raises(Cancelled):
        browsing.list_rows({}, cancelled=lambda: len(browsing.rows) >= 4, on_choices=choices.__setitem__,
                           on_progress=lambda rows: None)
    assert not browsing.complete and len(browsing.rows) == 4
    assert choices["year"] == ["2020", "2021"] and choices["id"] == ["0", "1", "2"]  # what the part holds
    frame = browsing.load({}, "str", cancelled=lambda: False, on_chunk=lambda size: None)
    assert frame["data"].tolist() == ["('buy', 2020, 0)", "('buy', 2020, 1)", "('buy', 2020, 2)", "('buy', 2021, 0)"]


def test_nothing_chosen_is_said_before_any_request(events: Table) -> None:
    empty = Browsing()
    with pytest.raises(S3aadsError, match="choose a table first"):
        empty.code({}, "bytes")
    with pytest.raises(S3aadsError, match="choose a database first"):
        empty.open_table("events")
    with pytest.raises(ColumnsNotSetError, match="no columns to explore"):
        Browsing(events.database).open_table(Table("nothing", events.database))


def test_a_filter_takes_any_typed_values_and_suggests_a_few_that_complete_them() -> None:
    offered = {str(i) for i in range(100_000)} | {"Smith, J"}
    assert parse_choice(" 7, 12,,7 ", offered) == ["7", "12"]
    assert parse_choice("Smith, J", offered) == ["Smith, J"]  # one value, commas and all
    assert parse_choice("no such value", offered) == ["no such value"] and parse_choice(" ", offered) == []
    assert suggestions("", offered) == sorted(offered)[:SUGGESTIONS]
    assert suggestions("7, 9999", offered) == ["7, 9999", "7, 99990", "7, 99991", "7, 99992", "7, 99993",
                                               "7, 99994", "7, 99995", "7, 99996", "7, 99997", "7, 99998",
                                               "7, 99999", "7, 19999", "7, 29999", "7, 39999", "7, 49999",
                                               "7, 59999", "7, 69999", "7, 79999", "7, 89999"]
    assert "7, 7" not in suggestions("7, ", offered)  # a value is chosen once
    assert suggestions("smi", offered) == ["Smith, J"]  # any case, anywhere in the value


def test_the_other_columns_offer_their_values_as_pages_arrive() -> None:
    database = Database("memory://pages")
    database.create()
    table = Table("t", database, ["kind", "id"])
    pd.DataFrame({"kind": ["a"] * 2500, "id": range(2500), "data": ["x"] * 2500}).s3aads.write(table, progress=False)
    reports: list[tuple[str, int]] = []
    Browsing(table).list_rows({}, cancelled=lambda: False, on_progress=lambda rows: None,
                              on_choices=lambda column, values: reports.append((column, len(values))))
    assert reports == [("kind", 1), ("id", 1000), ("kind", 1), ("id", 2000), ("kind", 1), ("id", 2500)]
    memory.forget_all()
