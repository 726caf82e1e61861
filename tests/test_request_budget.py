"""The request budget: each operation costs the requests the README says, counted on the wire."""

from __future__ import annotations

import pytest

from s3aads_pandas import Database, Table


@pytest.fixture
def table(db: Database) -> Table:
    table = Table("daily-data", db, ["id", "year", "month", "day"])
    for id_ in (1, 2, 10):
        for year in (2020, 2021):
            table.insert(b"x", id=id_, year=year, month="01", day="01")
    return table


def test_first_write_records_the_table_then_one_request_per_row(db: Database, count_requests) -> None:
    counter = count_requests(db)
    table = Table("fresh", db, ["id"])
    table.insert(b"x", id=1)
    # record looked up, written; the fixture made the bucket, so this process knows its region
    assert dict(counter.operations) == {"GetObject": 1, "PutObject": 2}
    counter.reset()
    table.insert(b"y", id=2)
    assert dict(counter.operations) == {"PutObject": 1}


def test_select_insert_delete_are_one_request_each(table: Table, count_requests) -> None:
    counter = count_requests(table.database)
    assert table.select(id=1, year=2020, month="01", day="01") == b"x"
    assert dict(counter.operations) == {"GetObject": 1}
    counter.reset()
    assert table.select(id=3, year=2020, month="01", day="01") is None
    assert dict(counter.operations) == {"GetObject": 1}
    counter.reset()
    table.insert(b"y", id=3, year=2020, month="01", day="01")
    assert dict(counter.operations) == {"PutObject": 1}
    counter.reset()
    table.delete(id=3, year=2020, month="01", day="01")
    assert dict(counter.operations) == {"DeleteObject": 1}
    counter.reset()
    table.select_by_key("1/2020/01/01")
    assert dict(counter.operations) == {"GetObject": 1}


def test_query_on_leading_columns_lists_only_their_prefix(table: Table, count_requests) -> None:
    counter = count_requests(table.database)
    assert len(table.query(id=1)) == 2
    assert dict(counter.operations) == {"ListObjectsV2": 1}
    assert counter.params("ListObjectsV2")[0]["Prefix"] == "daily-data/1/"
    counter.reset()
    table.query(id=1, year=2021)
    assert [p["Prefix"] for p in counter.params("ListObjectsV2")] == ["daily-data/1/2021/"]
    counter.reset()
    table.query(id=[1, 2])
    assert sorted(p["Prefix"] for p in counter.params("ListObjectsV2")) == ["daily-data/1/", "daily-data/2/"]
    counter.reset()
    table.query(year=2020)
    assert [p["Prefix"] for p in counter.params("ListObjectsV2")] == ["daily-data/"]


def test_distinct_first_column_uses_a_delimiter_listing(table: Table, count_requests) -> None:
    counter = count_requests(table.database)
    assert table.distinct(["id"]) == [("1",), ("10",), ("2",)]
    (params,) = counter.params("ListObjectsV2")
    assert params["Delimiter"] == "/" and params["Prefix"] == "daily-data/"
    counter.reset()
    assert table.distinct(["year"], id=10) == [("2020",), ("2021",)]
    (params,) = counter.params("ListObjectsV2")
    assert params["Delimiter"] == "/" and params["Prefix"] == "daily-data/10/"


def test_listing_pages_through_more_than_1000_keys(db: Database, count_requests, seed) -> None:
    table = Table("big", db, ["id"])
    table.insert(b"-", id=0)
    seed(db.name, [f"big/{i}" for i in range(1, 2100)])
    counter = count_requests(db)
    assert table.count() == 2100
    assert counter.operations["ListObjectsV2"] == 3
    assert all(p["MaxKeys"] == 1000 for p in counter.params("ListObjectsV2"))
    counter.reset()
    assert len(table.ids()) == 2100  # Delimiter listings page too
    assert counter.operations["ListObjectsV2"] == 3


def test_drop_table_deletes_1000_keys_a_request(db: Database, count_requests, seed) -> None:
    table = Table("big", db, ["id"])
    table.insert(b"-", id=0)
    seed(db.name, [f"big/{i}" for i in range(1, 2100)])
    counter = count_requests(db)
    assert db.drop_table("big") == 2100
    assert dict(counter.operations) == {"ListObjectsV2": 3, "DeleteObjects": 3}
    sizes = [len(p["Delete"]["Objects"]) for p in counter.params("DeleteObjects")]
    assert sizes == [1000, 1000, 101]  # 2,100 rows and the column record
    assert list(db.store.iter_objects(db.name, "")) == []
