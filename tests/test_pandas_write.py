"""df.s3aads: write, fetch, delete and keys, in row mode and dataset mode."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from s3aads_pandas import (
    BulkOperationError,
    ColumnError,
    Database,
    FailedRowsWarning,
    InvalidArgumentError,
    InvalidValueError,
    PayloadTypeError,
    Table,
)

COLUMNS = ["id", "year"]


@pytest.fixture
def table(db: Database) -> Table:
    return Table("events", db, COLUMNS)


def frame(n: int = 5, **extra) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "year": 2020, "data": [f"row {i}".encode() for i in range(n)], **extra})


def _keys(db: Database) -> list[str]:
    return [obj.key for obj in db.store.iter_objects(db.name, "")]


def test_write_then_read_round_trip(table: Table) -> None:
    result = frame().s3aads.write(table)
    assert result.written == 5 and result.failures == {}
    back = pd.read_s3aads(table)
    assert sorted(back["data"]) == sorted(frame()["data"])
    assert table.select(id=3, year=2020) == b"row 3"


def test_str_payloads_are_utf8_and_objects_need_a_codec(table: Table) -> None:
    texts = pd.DataFrame({"id": [1, 2], "year": [2020, 2020], "data": ["héllo", "wörld"]})
    texts.s3aads.write(table)
    assert table.select_string(id=1, year=2020) == "héllo"
    objects = pd.DataFrame({"id": [3], "year": [2020], "data": [{"a": [1, 2]}]})
    with pytest.raises(PayloadTypeError, match=r"row 0, column 'data'.*encode='json'"):
        objects.s3aads.write(table)
    objects.s3aads.write(table, encode="json")
    assert table.select(id=3, year=2020) == b'{"a": [1, 2]}'
    objects.rename(columns={"data": "body"}).s3aads.write(table, data="body", encode=lambda v: repr(v))
    assert table.select_string(id=3, year=2020) == "{'a': [1, 2]}"


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (frame().drop(columns="year"), ColumnError, "lacks key column.*year"),
        (frame().assign(extra=1), ColumnError, "extra are neither key columns.*would be lost"),
        (frame().drop(columns="data"), ColumnError, "no payload column 'data'"),
        (frame().assign(year=[2020, 2020, np.nan, 2020, 2020]), InvalidValueError,
         "row 2: column 'year' has a missing value"),
        (frame().assign(id=[1, 1, 2, 3, 4]), InvalidValueError, "more than one row.*events/1/2020"),
        (frame().assign(data=[b"ok", b"ok", 5, b"ok", b"ok"]), PayloadTypeError, "row 2, column 'data'"),
    ],
)
def test_bad_frames_are_refused_before_anything_is_written(table: Table, bad, error, message) -> None:
    with pytest.raises(error, match=message):
        bad.s3aads.write(table)
    assert _keys(table.database) == []


def test_overwrite_false_reports_existing_rows(table: Table) -> None:
    table.insert(b"original", id=1, year=2020)
    with pytest.raises(BulkOperationError, match="write failed for 1 of 5") as info:
        frame().s3aads.write(table, overwrite=False)
    assert list(info.value.failures) == ["events/1/2020"]
    assert "exists" in info.value.failures["events/1/2020"]
    assert table.select(id=1, year=2020) == b"original"
    assert table.count() == 5


def test_failed_puts_are_all_named_and_the_rest_stored(table: Table, fail_keys) -> None:
    table.insert(b"x", id=100, year=2020)  # records the table
    fail_keys(table.database, "PutObject", {"events/1/2020", "events/3/2020"})
    with pytest.raises(BulkOperationError) as info:
        frame().s3aads.write(table)
    assert info.value.failed_keys == ["events/1/2020", "events/3/2020"]
    assert sorted(table.ids()) == ["0", "100", "2", "4"]
    with pytest.warns(FailedRowsWarning):
        result = frame().s3aads.write(table, errors="skip")
    assert result.written == 3 and result.failed_keys == ["events/1/2020", "events/3/2020"]


def test_write_budget_is_one_put_per_row(table: Table, count_requests) -> None:
    frame(1).s3aads.write(table)
    counter = count_requests(table.database)
    frame(50).s3aads.write(table)
    assert dict(counter.operations) == {"PutObject": 50}


def test_fetch_adds_payloads_and_none_for_missing_rows(table: Table) -> None:
    frame(3).s3aads.write(table)
    wanted = pd.DataFrame({"id": [2, 0, 7], "year": [2020, 2020, 2020]}, index=[10, 11, 12])
    fetched = wanted.s3aads.fetch(table, decode="str")
    assert fetched["data"].tolist() == ["row 2", "row 0", None]
    assert list(fetched.index) == [10, 11, 12] and "data" not in wanted


def test_keys_and_delete(table: Table, count_requests) -> None:
    frame(3).s3aads.write(table)
    assert frame(3).s3aads.keys(table).tolist() == ["events/0/2020", "events/1/2020", "events/2/2020"]
    counter = count_requests(table.database)
    assert frame(2).s3aads.delete(table) == 2
    assert dict(counter.operations) == {"DeleteObjects": 1}
    assert table.ids() == ["2"]


def test_delete_uses_1000_keys_a_request(table: Table, count_requests, seed) -> None:
    table.insert(b"", id=0, year=2020)
    seed(table.database.name, [f"events/{i}/2020" for i in range(2500)])
    counter = count_requests(table.database)
    assert frame(2500).s3aads.delete(table) == 2500
    assert [len(p["Delete"]["Objects"]) for p in counter.params("DeleteObjects")] == [1000, 1000, 500]
    assert table.count() == 0


def test_many_workers_share_a_pool_that_fits(table: Table, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    frame(120).s3aads.write(table, max_workers=48)  # more rows than workers: all 48 in flight at once
    assert len(pd.read_s3aads(table, max_workers=48)) == 120
    assert "Connection pool is full" not in caplog.text


def test_progress_bar_only_when_long_or_asked(table: Table, capsys: pytest.CaptureFixture) -> None:
    frame(5).s3aads.write(table)
    assert "s3aads write" not in capsys.readouterr().err
    frame(5).s3aads.write(table, progress=True)
    assert "s3aads write" in capsys.readouterr().err
    frame(250).s3aads.write(table, progress=False)
    assert "s3aads write" not in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_dataset_mode_round_trip(db: Database, fmt: str) -> None:
    sales = pd.DataFrame(
        {
            "region": ["eu", "eu", "us", "us", "us"],
            "day": ["01", "02", "01", "01", "02"],
            "amount": [1.5, 2.0, 3.25, 4.0, 5.5],
            "units": [1, 2, 3, 4, 5],
            "sku": ["a", "b", "c", "d", "e"],
        }
    )
    result = sales.s3aads.write("s3aads-test/sales", partition_by=["region", "day"], format=fmt)
    assert result.written == 4  # one object per (region, day)
    back = pd.read_s3aads("s3aads-test/sales", format=fmt)
    assert list(back.columns) == ["region", "day", "amount", "units", "sku"]
    pd.testing.assert_frame_equal(
        back.sort_values("sku", ignore_index=True)[["amount", "units"]], sales[["amount", "units"]]
    )
    assert pd.read_s3aads("s3aads-test/sales", format=fmt, region="us", day="01")["units"].tolist() == [3, 4]


def test_dataset_mode_keeps_parquet_dtypes(db: Database) -> None:
    frame_ = pd.DataFrame(
        {
            "day": ["01", "01", "02"],
            "when": pd.to_datetime(["2020-01-01 10:00", "2020-01-01 11:00", "2020-01-02 09:30"]),
            "flag": [True, False, True],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "label": pd.Categorical(["x", "y", "x"]),
        }
    )
    frame_.s3aads.write("s3aads-test/typed", partition_by=["day"])
    back = pd.read_s3aads("s3aads-test/typed", format="parquet")
    for column in ["when", "flag", "count"]:
        assert back[column].dtype == frame_[column].dtype, column
    assert back["count"].isna().tolist() == [False, True, False]


def test_dataset_mode_refuses_wrong_partitions(db: Database) -> None:
    Table("sales", db, ["region", "day"]).insert(b"", region="eu", day="01")
    data = pd.DataFrame({"region": ["eu"], "day": ["01"], "x": [1]})
    with pytest.raises(InvalidArgumentError, match="partition_by must be the key columns"):
        data.s3aads.write("s3aads-test/sales", partition_by=["day", "region"])
    with pytest.raises(InvalidArgumentError, match="format must be one of"):
        data.s3aads.write("s3aads-test/sales", partition_by=["region", "day"], format="xlsx")
    with pytest.raises(InvalidArgumentError, match="needs partition_by"):
        data.s3aads.write("s3aads-test/sales", format="parquet")


def test_dataset_mode_groups_values_that_make_one_key(db: Database) -> None:
    mixed = pd.DataFrame({"day": [1, "1", 2, 1], "amount": [1.0, 2.0, 3.0, 4.0]})  # 1 and "1": one key
    assert mixed.s3aads.write(f"{db.name}/mixed", partition_by=["day"]).written == 2
    back = pd.read_s3aads(f"{db.name}/mixed", format="parquet", day=1)
    assert back["amount"].tolist() == [1.0, 2.0, 4.0]  # the rows of the key, in the frame's order


def test_dataset_mode_names_the_row_of_a_bad_key_value(db: Database) -> None:
    for bad, problem in (([["a"], "b"], "got a list"), ([None, "b"], "missing value")):
        frame = pd.DataFrame({"day": bad, "amount": [1.0, 2.0]}, index=["first", "second"])
        with pytest.raises(InvalidValueError, match=f"row 'first': column 'day' .*{problem}"):
            frame.s3aads.write(f"{db.name}/bad", partition_by=["day"])
    assert Table("bad", db, ["day"]).count() == 0
