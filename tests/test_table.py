"""The s3aads Table API over S3, in memory and over HTTP."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from s3aads_pandas import (
    ColumnsNotSetError,
    Database,
    InvalidArgumentError,
    SkippedKeysWarning,
    Table,
    TableEmptyError,
)

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)
DIRECTORY_BUCKETS = True  # also run against a directory bucket (see conftest)

COLUMNS = ["id", "year", "month", "day"]


@pytest.fixture
def table(db: Database) -> Table:
    return Table(name="daily-data", database=db, columns=COLUMNS)


@pytest.fixture
def filled(table: Table) -> Table:
    for id_ in (1, 2, 10):
        for year in (2020, 2021):
            table.insert(id=id_, year=year, month="01", day="01", data=f"{id_}-{year}".encode())
    return table


def test_seed_example_from_the_readme(s3: str | None) -> None:
    db = Database("joeyism-test")
    db.create()
    table = Table(name="daily-data", database=db, columns=["id", "year", "month", "day"])
    table.insert(id=1, year=2020, month="01", day="01", data=b'["a", "b"]')
    table.insert(id=2, year=2020, month="01", day="01", data=b'["c", "d"]')
    table.insert(id=3, year=2020, month="01", day="01", data=b'["abk20dj3i"]')
    assert table.select(id=1, year=2020, month="01", day="01") == b'["a", "b"]'
    assert table.select(id=2, year=2020, month="01", day="01") == b'["c", "d"]'
    assert table.select(id=3, year=2020, month="01", day="01") == b'["abk20dj3i"]'
    for id_ in (1, 2, 3):
        table.delete(id=id_, year=2020, month="01", day="01")
    assert table.select(id=1, year=2020, month="01", day="01") is None
    assert table.count() == 0


def test_table_accepts_a_database_name(s3: str | None, db: Database) -> None:
    table = Table("daily-data", db.name, COLUMNS)
    table.insert_string("hi", id=1, year=2020, month="01", day="01")
    assert table.database.name == db.name
    assert table.select_string(id=1, year=2020, month="01", day="01") == "hi"
    assert table.select_string(id=9, year=2020, month="01", day="01") is None


@pytest.mark.s3_only
def test_insert_passes_s3_parameters_through(table: Table) -> None:
    table.insert(
        b"{}",
        metadata={"ContentType": "application/json", "Metadata": {"source": "test"}},
        id=1, year=2020, month="01", day="01",
    )
    head = table.database.store.boto3_client.head_object(Bucket=table.database.name, Key="daily-data/1/2020/01/01")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"source": "test"}


def test_query_matches_exactly_on_any_subset_of_columns(filled: Table) -> None:
    assert filled.query(id=1) == [
        {"id": "1", "year": "2020", "month": "01", "day": "01"},
        {"id": "1", "year": "2021", "month": "01", "day": "01"},
    ]
    assert {row["id"] for row in filled.query(year=2020)} == {"1", "2", "10"}
    assert all(row["year"] == "2020" for row in filled.query(year=2020))
    assert filled.query(id=10, year=2021) == [{"id": "10", "year": "2021", "month": "01", "day": "01"}]
    assert filled.query(id=[1, 2], year=2021) == [
        {"id": "1", "year": "2021", "month": "01", "day": "01"},
        {"id": "2", "year": "2021", "month": "01", "day": "01"},
    ]
    assert filled.query(id=3) == []
    assert len(filled.query()) == 6


def test_whole_keys_that_prefix_each_other_give_each_row_once(db: Database) -> None:
    table = Table("ids", db, ["id"])
    for row in (7, 70, 71):
        table.insert(b"x", id=row)
    assert table.query(id=[7, 70]) == [{"id": "7"}, {"id": "70"}]  # t/7's listing holds t/70 too
    assert table.count(id=["70", "7", "71"]) == 3


def test_distinct_on_any_columns(filled: Table) -> None:
    assert filled.distinct(["year"]) == [("2020",), ("2021",)]
    assert filled.distinct(["id"]) == [("1",), ("10",), ("2",)]
    assert filled.distinct(["year", "id"])[:2] == [("2020", "1"), ("2020", "10")]
    assert len(filled.distinct(["id", "year"])) == 6
    assert filled.distinct(["month", "day"]) == [("01", "01")]
    assert filled.distinct(["year"], id=10) == [("2020",), ("2021",)]
    assert filled.distinct("id", year=2021) == [("1",), ("10",), ("2",)]


def test_per_column_helpers(filled: Table) -> None:
    assert filled.ids() == ["1", "10", "2"]
    assert filled.years() == ["2020", "2021"]
    assert filled.days() == ["01"]
    objects = filled.filter_objects_by_year("2021")
    assert [o.id for o in objects] == ["1", "10", "2"]
    assert type(objects[0]).__name__ == "Object" and objects[0]._fields == tuple(COLUMNS)
    assert "filter_objects_by_month" in dir(filled) and "months" in dir(filled)
    with pytest.raises(AttributeError):
        filled.hours()


def test_objects_and_filter_objects_by(filled: Table) -> None:
    assert len(filled.objects) == 6
    only = filled.filter_objects_by(id="10", year="2020")
    assert [(o.id, o.year, o.month, o.day) for o in only] == [("10", "2020", "01", "01")]


def test_keys_count_and_random(filled: Table) -> None:
    assert filled.keys[0] == "1/2020/01/01"
    assert len(filled.keys) == filled.count() == 6
    assert filled.count(year=2021) == 3
    assert filled.random_key() in filled.keys
    row = filled.random()
    assert row["data"] == f"{row['id']}-{row['year']}".encode()


def test_random_of_an_empty_table_says_so(table: Table) -> None:
    with pytest.raises(TableEmptyError, match="no rows"):
        table.random_key()


def test_key_methods(filled: Table) -> None:
    key = filled.to_key(id=1, year=2020, month="01", day="01")
    assert key == "daily-data/1/2020/01/01"
    assert filled.select_by_key("1/2020/01/01") == b"1-2020"
    assert filled.select_by_key("1/2020/01/31") is None
    filled.insert_by_key("7/2020/01/01", b"seven")
    assert filled.select(id=7, year=2020, month="01", day="01") == b"seven"
    filled.delete_by_key("7/2020/01/01")
    assert filled.select_by_key("7/2020/01/01") is None
    # query_by_key is the raw prefix match of s3aads: "1" also finds "10"
    assert filled.query_by_key("1") == ["1/2020/01/01", "1/2021/01/01", "10/2020/01/01", "10/2021/01/01"]
    assert filled.query_by_key("1/") == ["1/2020/01/01", "1/2021/01/01"]
    assert len(filled.query_by_key()) == 6


def test_query_by_key_sorts(filled: Table) -> None:
    time.sleep(1.1)  # S3 reports LastModified to the second
    filled.insert_by_key("2/2019/01/01", b"a much longer payload than the others")
    assert filled.query_by_key(sort_by="Size")[-1] == "2/2019/01/01"
    assert filled.query_by_key(sort_by="LastModified")[-1] == "2/2019/01/01"
    assert filled.query_by_key(sort_by="Key") == sorted(filled.query_by_key())
    with pytest.raises(InvalidArgumentError, match="sort_by must be one of"):
        filled.query_by_key(sort_by="Colour")


def test_copy_to_another_table_and_database(filled: Table) -> None:
    other_db = Database("s3aads-test-2")
    other_db.create()
    backup = Table("backup", other_db, COLUMNS)
    filled.copy("1/2020/01/01").to(backup, "1/2020/01/01")
    filled.copy("2/2020/01/01").to(backup)
    assert backup.select(id=1, year=2020, month="01", day="01") == b"1-2020"
    assert backup.keys == ["1/2020/01/01", "2/2020/01/01"]


def test_unicode_and_slashes_round_trip(table: Table) -> None:
    table.insert(b"x", id="a/b", year="ünï cødé", month="%", day="..")
    assert table.to_key(id="a/b", year="ünï cødé", month="%", day="..") == "daily-data/a%2Fb/ünï cødé/%25/%2E%2E"
    assert table.query(id="a/b") == [{"id": "a/b", "year": "ünï cødé", "month": "%", "day": ".."}]
    assert table.select(id="a/b", year="ünï cødé", month="%", day="..") == b"x"
    assert table.ids() == ["a/b"]


def test_table_without_columns_uses_the_record(filled: Table) -> None:
    again = Table("daily-data", Database(filled.database.name))
    assert again.columns == COLUMNS
    assert again.count() == 6


def test_table_without_columns_or_record_explains_what_to_do(db: Database) -> None:
    table = Table("legacy", db)
    assert table.columns == []
    with pytest.raises(ColumnsNotSetError, match="pass columns="):
        table.query(id=1)


def test_repr_does_not_talk_to_s3(db: Database, count_requests) -> None:
    counter = count_requests(db)
    table = Table("daily-data", db)
    assert repr(table) == f"Table('daily-data', database={db.reference!r}, columns=<not loaded>)"
    assert repr(db) == f"Database({db.reference!r})" or "endpoint_url" in repr(db)
    assert counter.total == 0


# values whose keys sort differently from the values: '-', '!', ' ' and '.' come before '/'
RUN_VALUES = ["2024", "2024-01", "2024!", "a", "a b", "a/b", "%", "..", "é", "z"]


@pytest.mark.key_order
@pytest.mark.parametrize("columns", [["k", "n"], ["k"]], ids=["two-columns", "one-column"])
def test_a_run_of_first_column_values_is_listed_exactly(db: Database, count_requests, columns: list[str]) -> None:
    table = Table("runs", db, columns)
    for value in RUN_VALUES:
        for n in (["1", "2"] if len(columns) == 2 else [None]):
            table.insert(b"-", **({"k": value, "n": n} if n else {"k": value}))
    in_order = sorted(RUN_VALUES, key=table.codec.first_column_start)
    assert [row["k"] for row in table.query()][:: len(columns)] == in_order  # the order S3 lists them in
    counter = count_requests(db)
    for i in range(len(in_order)):
        for j in range(i, len(in_order)):
            rows = table.list_rows_between(in_order[i], in_order[j])
            assert [table.codec.decode(row.segments)["k"] for row in rows][:: len(columns)] == in_order[i:j + 1]
    assert counter.operations["ListObjectsV2"] == 55  # one listing per run, never one per value
    narrowed = table.list_rows_between(in_order[0], in_order[-1], k=["a", "z"])
    assert [table.codec.decode(row.segments)["k"] for row in narrowed][:: len(columns)] == ["a", "z"]


#: Keys another tool wrote, whose segments no value here encodes to: read as values, `odd/%` would
#: be the row `%` (whose key is `odd/%25`) and `odd/a%20b` a row `a%20b` that fetches nothing.
FOREIGN_KEYS = ["odd/%", "odd/%zz", "odd/.", "odd/..", "odd/a%20b", "odd/a%2Eb", "odd/%2f"]


@pytest.mark.s3_only
def test_keys_other_tools_wrote_are_skipped_never_read_as_another_row(db: Database) -> None:
    table = Table("odd", db, ["id"])
    table.insert(b"percent", id="%")  # odd/%25
    table.insert(b"dot", id=".")  # odd/%2E
    table.insert(b"plain", id="a b")
    for key in FOREIGN_KEYS:
        db.store.boto3_client.put_object(Bucket=db.name, Key=key, Body=b"theirs")
    ours = [{"id": "%"}, {"id": "."}, {"id": "a b"}]
    with pytest.warns(SkippedKeysWarning, match=r"skipped 7 object\(s\).*7 whose key segments are not escaped"):
        assert table.query() == ours
    with pytest.warns(SkippedKeysWarning, match="skipped 7 object"):
        frame = pd.read_s3aads(table)
    payloads = [b"percent", b"dot", b"plain"]
    assert frame.to_dict("records") == [{**row, "data": data} for row, data in zip(ours, payloads, strict=True)]
    assert table.select(id="%") == b"percent" and table.select(id=".") == b"dot"
    with pytest.warns(SkippedKeysWarning, match="skipped 7 object"):
        assert table.distinct("id") == [("%",), (".",), ("a b",)]
    with pytest.warns(SkippedKeysWarning):
        assert table.count() == 3
    assert sorted(table.query_by_key()) == sorted(["%25", "%2E", "a b"] + [k[4:] for k in FOREIGN_KEYS])
    assert table.select_by_key("%") == b"theirs"  # by key, every object is reachable
    assert frame.s3aads.delete(table) == 3
    assert sorted(table.query_by_key()) == sorted(k[4:] for k in FOREIGN_KEYS)  # theirs untouched


@pytest.mark.s3_only
def test_a_delimiter_listing_skips_folders_other_tools_wrote(db: Database) -> None:
    table = Table("odd", db, ["id", "n"])
    table.insert(b"ours", id="%", n=1)  # the key odd/%25/1
    db.store.boto3_client.put_object(Bucket=db.name, Key="odd/%/2", Body=b"theirs")  # the value % unescaped
    with pytest.warns(SkippedKeysWarning, match=r"skipped 1 folder\(s\) under s3://[^ ]+/odd/: .*'odd/%/'"):
        assert table.distinct(["id"]) == [("%",)]
    with pytest.warns(SkippedKeysWarning, match="skipped 1 folder"):
        assert table.first_column_values() == ["%"]
    with pytest.warns(SkippedKeysWarning, match=r"skipped 1 object.*'odd/%/2'"):
        assert table.distinct(["id", "n"]) == [("%", "1")]
    with pytest.warns(SkippedKeysWarning):
        assert table.distinct("id", n=[1, 2]) == [("%",)]  # listed, not a Delimiter listing
