"""pd.read_s3aads: tables and slices of them as DataFrames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import s3aads_pandas
from s3aads_pandas import (
    BulkOperationError,
    ColumnError,
    Database,
    FailedRowsWarning,
    InvalidArgumentError,
    SkippedKeysWarning,
    Table,
    TableNotFoundError,
)

DIRECTORY_BUCKETS = True  # also run against a directory bucket (see conftest)

COLUMNS = ["id", "year", "month"]


@pytest.fixture
def table(db: Database) -> Table:
    table = Table("daily-data", db, COLUMNS)
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "10", "1", "a/b", "ü"],
            "year": [2020, 2020, 2020, 2021, 2021, 2021],
            "month": ["01", "02", "03", "01", "..", "%"],
        }
    )
    frame["data"] = [json.dumps({"n": i}) for i in range(len(frame))]
    frame.s3aads.write(table)
    return table


def test_registered_on_pandas() -> None:
    assert pd.read_s3aads is s3aads_pandas.read_s3aads


def test_reads_every_row_with_key_columns_as_strings(table: Table) -> None:
    frame = pd.read_s3aads(table)
    assert list(frame.columns) == ["id", "year", "month", "data"]
    assert len(frame) == 6
    assert frame.loc[frame["id"] == "1", "month"].tolist() == ["01", "01"]  # "01" stays "01"
    assert all(isinstance(value, str) for value in frame["year"])
    assert set(frame["id"]) == {"1", "2", "10", "a/b", "ü"}
    row = frame[frame["month"] == ".."].iloc[0]
    assert (row["id"], json.loads(row["data"])) == ("a/b", {"n": 4})


def test_database_slash_table_string_uses_the_record(table: Table) -> None:
    frame = pd.read_s3aads(f"{table.database.name}/daily-data", data=False)
    assert list(frame.columns) == COLUMNS and len(frame) == 6


def test_unknown_table_string_says_what_to_do(db: Database) -> None:
    with pytest.raises(TableNotFoundError, match=r"columns=\[...\]"):
        pd.read_s3aads(f"{db.name}/nothing")
    with pytest.raises(InvalidArgumentError, match="'database/table'"):
        pd.read_s3aads("just-a-name")


def test_filters_scalar_list_and_non_leading(table: Table) -> None:
    assert pd.read_s3aads(table, id=1, data=False)["year"].tolist() == ["2020", "2021"]
    assert sorted(pd.read_s3aads(table, id=[1, 2], year=2020, data=False)["id"]) == ["1", "2"]
    assert sorted(pd.read_s3aads(table, month="01", data=False)["id"]) == ["1", "1"]
    assert pd.read_s3aads(table, filters={"year": [2021]}, month="%", data=False)["id"].tolist() == ["ü"]
    with pytest.raises(ColumnError, match="'day'"):
        pd.read_s3aads(table, day=1)


def test_decode_options(table: Table) -> None:
    one = {"id": 2}
    assert pd.read_s3aads(table, **one)["data"].tolist() == [b'{"n": 1}']
    assert pd.read_s3aads(table, decode="str", **one)["data"].tolist() == ['{"n": 1}']
    assert pd.read_s3aads(table, decode="json", **one)["data"].tolist() == [{"n": 1}]
    assert pd.read_s3aads(table, decode=len, **one)["data"].tolist() == [8]
    with pytest.raises(InvalidArgumentError, match="decode must be one of"):
        pd.read_s3aads(table, decode="yaml")


def test_dtype_and_dtype_backend(table: Table) -> None:
    frame = pd.read_s3aads(table, id=[1, 2, 10], data=False, dtype={"id": "int64", "year": "int64"})
    assert frame["id"].dtype == "int64" and frame["month"].tolist() == ["01", "01", "03", "02"]
    assert pd.read_s3aads(table, id=1, year=2020, data=False, dtype="category")["id"].dtype == "category"
    arrow = pd.read_s3aads(table, data=False, dtype_backend="pyarrow")
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in arrow.dtypes)


def test_columns_and_distinct(table: Table, count_requests) -> None:
    assert list(pd.read_s3aads(table, columns=["month", "id"], data=False).columns) == ["month", "id"]
    counter = count_requests(table.database)
    years = pd.read_s3aads(table, columns=["year"], distinct=True)
    assert years.to_dict("list") == {"year": ["2020", "2021"]}
    assert counter.operations["GetObject"] == 0
    assert pd.read_s3aads(table, columns=["id"], distinct=True, year=2021)["id"].tolist() == ["1", "a/b", "ü"]


def test_chunksize_streams_the_table(table: Table) -> None:
    chunks = pd.read_s3aads(table, chunksize=4)
    assert not isinstance(chunks, pd.DataFrame)
    frames = list(chunks)
    assert [len(f) for f in frames] == [4, 2]
    streamed = pd.concat(frames, ignore_index=True)
    if not table.database.lists_in_key_order:  # chunks come as listed: a directory bucket's in no order
        streamed = streamed.loc[streamed[COLUMNS].s3aads.keys(table).sort_values().index].reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, pd.read_s3aads(table))
    with pytest.raises(InvalidArgumentError, match="chunksize"):
        pd.read_s3aads(table, chunksize=0)


def test_empty_result_has_the_right_columns(table: Table) -> None:
    frame = pd.read_s3aads(table, id="nobody")
    assert list(frame.columns) == ["id", "year", "month", "data"] and frame.empty
    assert list(pd.read_s3aads(table, id="nobody", data=False).columns) == COLUMNS


def test_request_budget_n_gets_plus_listing(table: Table, count_requests) -> None:
    counter = count_requests(table.database)
    pd.read_s3aads(table)
    assert dict(counter.operations) == {"ListObjectsV2": 1, "GetObject": 6}
    counter.reset()
    pd.read_s3aads(table, data=False)
    assert dict(counter.operations) == {"ListObjectsV2": 1}
    counter.reset()
    pd.read_s3aads(table, id=1, year=2021)
    assert dict(counter.operations) == {"ListObjectsV2": 1, "GetObject": 1}
    assert counter.params("ListObjectsV2")[0]["Prefix"] == "daily-data/1/2021/"


@pytest.mark.any_keys
def test_wrong_depth_keys_are_skipped_with_one_warning(table: Table) -> None:
    table.database.store.put(table.database.name, "daily-data/1/2020", b"shallow")
    with pytest.warns(SkippedKeysWarning, match="skipped 1 object"):
        assert len(pd.read_s3aads(table)) == 6


def test_failed_rows_raise_one_error_naming_each(table: Table, fail_keys) -> None:
    bad = {"daily-data/2/2020/02", "daily-data/ü/2021/%25"}
    fail_keys(table.database, "GetObject", bad)
    with pytest.raises(BulkOperationError) as info:
        pd.read_s3aads(table)
    assert set(info.value.failures) == bad
    assert "read failed for 2 of 6 keys" in str(info.value)
    assert all("InternalError" in reason for reason in info.value.failures.values())


def test_errors_skip_returns_the_rest_and_reports_the_failed(table: Table, fail_keys) -> None:
    fail_keys(table.database, "GetObject", {"daily-data/10/2020/03"})
    with pytest.warns(FailedRowsWarning, match="1 of 6") as caught:
        frame = pd.read_s3aads(table, errors="skip")
    assert caught[0].filename == __file__  # the user's line
    assert len(frame) == 5 and "10" not in set(frame["id"])
    assert list(frame.attrs["s3aads_failures"]) == ["daily-data/10/2020/03"]


def test_a_payload_that_cannot_be_decoded_fails_its_row(table: Table) -> None:
    table.insert(b"not json", id=99, year=2020, month="01")
    with pytest.raises(BulkOperationError) as info:
        pd.read_s3aads(table, decode="json")
    assert list(info.value.failures) == ["daily-data/99/2020/01"]


def test_chunks_list_lazily(db: Database, seed, count_requests) -> None:
    big = Table("big", db, ["id"])
    big.insert(b"first", id="0")
    seed(db.name, [f"big/{i:05d}" for i in range(1, 1050)], b"payload")
    counter = count_requests(db)
    first = next(pd.read_s3aads(big, chunksize=10))
    assert len(first) == 10
    assert dict(counter.operations) == {"ListObjectsV2": 1, "GetObject": 10}  # one page, not all
    counter.reset()
    sizes = [len(chunk) for chunk in pd.read_s3aads(big, chunksize=400, data=False)]
    assert sizes == [400, 400, 250]
    assert dict(counter.operations) == {"ListObjectsV2": 2}


def test_a_listing_counts_its_rows_when_asked(table: Table, capsys: pytest.CaptureFixture) -> None:
    pd.read_s3aads(table, data=False, progress=True)
    assert "s3aads list" in capsys.readouterr().err  # a bar of rows listed, the total unknown ahead
    pd.read_s3aads(table, data=False, progress=False)
    assert "s3aads list" not in capsys.readouterr().err
