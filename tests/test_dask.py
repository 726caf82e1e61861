"""Dask: reading and writing tables on a LocalCluster of worker processes over HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from botocore.config import Config
from distributed import Client, LocalCluster

from s3aads_pandas import (
    BulkOperationError,
    ConnectionSettings,
    Database,
    FailedRowsWarning,
    InvalidArgumentError,
    InvalidValueError,
    PayloadTypeError,
    Table,
    configure,
)
from s3aads_pandas import dask as dask_module
from s3aads_pandas.dask import read_s3aads, to_s3aads
from s3aads_pandas.frames import formats
from s3aads_pandas.local import LOCAL_CREDENTIALS, LocalS3
from s3aads_pandas.local.faults import FaultPlan

DIRECTORY_BUCKETS = True  # also run against a directory bucket (see conftest)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture
def db(local_s3: LocalS3) -> Iterator[Database]:
    local_s3.reset()
    configure(endpoint_url=local_s3.endpoint_url)  # for "database/table" names
    database = Database("dask-db")
    database.create()
    yield database
    configure(ConnectionSettings())


def events(n: int = 120) -> pd.DataFrame:
    return pd.DataFrame({
        "kind": [("click", "view", "buy")[i % 3] for i in range(n)],
        "id": [str(i) for i in range(n)],
        "data": [f"payload {i}".encode() for i in range(n)],
    })


def test_round_trip_in_row_mode(client: Client, db: Database) -> None:
    table = Table("events", db, ["kind", "id"])
    result = to_s3aads(dd.from_pandas(events(), npartitions=4), table)
    assert result.written == 120 and result.failures == {}
    ddf = read_s3aads(table)
    assert ddf.npartitions == 3  # one per kind
    assert list(ddf.columns) == ["kind", "id", "data"] and pd.api.types.is_string_dtype(ddf["id"].dtype)
    back = ddf.compute().sort_values("id", key=lambda s: s.astype(int), ignore_index=True)
    pd.testing.assert_frame_equal(back, events(), check_dtype=False)


def test_workers_in_other_processes_share_a_file_database(client: Client, tmp_path: Path) -> None:
    folder = Database(f"file://{tmp_path}/dask-db")
    folder.create()
    table = Table("events", folder, ["kind", "id"])
    assert to_s3aads(dd.from_pandas(events(), npartitions=4), table).written == 120
    assert table.count() == 120  # the workers wrote into the folder this process reads
    back = read_s3aads(f"{folder.url}/events").compute().sort_values("id", key=lambda s: s.astype(int),
                                                                      ignore_index=True)
    pd.testing.assert_frame_equal(back, events(), check_dtype=False)


def test_workers_read_through_one_cache_folder(client: Client, db: Database, local_s3: LocalS3,
                                               tmp_path: Path) -> None:
    table = Table("events", db, ["kind", "id"])
    events(30).s3aads.write(table, progress=False)
    cached = Table("events", Database("dask-db", db.settings.replace(cache=str(tmp_path))), ["kind", "id"])
    first = read_s3aads(cached).compute()
    before = Counter(local_s3.operations)
    again = read_s3aads(cached).compute()
    seen = local_s3.operations - before
    assert seen["ListObjectsV2"] >= 1 and seen["GetObject"] == 0  # the workers found every payload in the folder
    assert sorted(again["data"]) == sorted(first["data"]) == sorted(events(30)["data"])


def test_a_memory_database_is_refused_on_workers_in_other_processes(client: Client) -> None:
    database = Database("memory://dask-db")
    database.create()
    table = Table("events", database, ["kind", "id"])
    table.insert(b"x", kind="click", id="1")
    with pytest.raises(InvalidArgumentError, match="use a file:// database"):
        read_s3aads(table).compute()
    threaded = read_s3aads(table).compute(scheduler="threads")  # the threads of this process see it
    assert threaded["data"].tolist() == [b"x"]


def test_round_trip_in_dataset_mode(client: Client, db: Database) -> None:
    sales = pd.DataFrame({"region": ["eu", "eu", "us", "us"] * 5, "amount": [float(i) for i in range(20)],
                          "units": list(range(20))})
    ddf = dd.from_pandas(sales, npartitions=2)
    ddf.s3aads.write("dask-db/sales", partition_by=["region"], format="parquet")
    back = read_s3aads("dask-db/sales", format="parquet")
    assert back.npartitions == 2 and str(back["units"].dtype) == "int64"  # meta from the first object
    computed = back.compute()
    assert sorted(computed["units"]) == list(range(20))
    assert computed.groupby("region")["units"].count().to_dict() == {"eu": 10, "us": 10}


def test_duplicate_keys_across_partitions_are_refused(client: Client, db: Database) -> None:
    frame = pd.concat([events(6), events(6)], ignore_index=True)
    with pytest.raises(InvalidValueError, match="6 row"):
        to_s3aads(dd.from_pandas(frame, npartitions=2), Table("events", db, ["kind", "id"]))
    assert db.tables == []


def test_filters_prune_partitions_before_reading(client: Client, db: Database, count_requests) -> None:
    table = Table("events", db, ["kind", "id"])
    events().s3aads.write(table)
    counter = count_requests(db)
    pruned = read_s3aads(table, kind=["view", "buy"])
    assert pruned.npartitions == 2
    assert counter.total == 0  # the filter named the partitions: no request to plan the graph
    assert sorted(pruned.compute()["kind"].unique()) == ["buy", "view"]
    planned = read_s3aads(table, data=False)
    assert dict(counter.operations) == {"ListObjectsV2": 1}  # one Delimiter listing
    assert counter.params("ListObjectsV2")[0]["Delimiter"] == "/"
    assert len(planned.compute()) == 120


def test_an_error_in_one_partition_is_reported(client: Client, db: Database) -> None:
    events(12).s3aads.write(Table("events", db, ["kind", "id"]))
    # a second endpoint on the same in-memory store, where one object always fails
    with LocalS3(faults=FaultPlan(rate=0, failing=frozenset({"dask-db/events/view/4"}))) as faulty:
        table = Table("events", Database("dask-db", endpoint_url=faulty.endpoint_url, max_attempts=3),
                      ["kind", "id"])  # a persistent fault: reported, whatever the attempts
        with pytest.raises(BulkOperationError) as info:
            read_s3aads(table, kind=["view", "click"]).compute()
        assert list(info.value.failures) == ["events/view/4"]
        assert "InternalError" in info.value.failures["events/view/4"]


def test_failed_rows_are_collected_from_every_partition(client: Client, db: Database) -> None:
    Table("events", db, ["kind", "id"]).insert(b"", kind="buy", id="x")
    failing = frozenset({"dask-db/events/view/1", "dask-db/events/buy/5"})
    with LocalS3(faults=FaultPlan(rate=0, failing=failing)) as faulty:
        table = Table("events", Database("dask-db", endpoint_url=faulty.endpoint_url, max_attempts=3),
                      ["kind", "id"])  # a persistent fault: reported, whatever the attempts
        with pytest.raises(BulkOperationError) as info:
            to_s3aads(dd.from_pandas(events(12), npartitions=3), table)
        assert info.value.failed_keys == ["events/buy/5", "events/view/1"]
        assert "write failed for 2 of 12" in str(info.value)
        with pytest.warns(FailedRowsWarning, match="write failed for 2 of 12 rows"):
            result = dd.from_pandas(events(12), npartitions=3).s3aads.write(table, errors="skip")
        assert sorted(result.failures) == ["events/buy/5", "events/view/1"] and result.written == 10


def test_the_task_graph_carries_no_credentials(client: Client, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    events(6).s3aads.write(Table("events", db, ["kind", "id"]))
    secret = "driver-only-secret-3f9a"  # the driver's own; the workers have theirs
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    table = Table("events", Database("dask-db", endpoint_url=db.settings.endpoint_url), ["kind", "id"])
    ddf = read_s3aads(table)
    graph = cloudpickle.dumps(dict(ddf.__dask_graph__()))
    assert db.settings.endpoint_url.encode() in graph  # the graph does carry the settings...
    assert secret.encode() not in graph  # ...but not the credentials
    assert len(ddf.compute()) == 6


def test_explicit_credentials_are_refused_before_any_request(client: Client, db: Database, count_requests) -> None:
    events(6).s3aads.write(Table("events", db, ["kind", "id"]))
    keyed = Database("dask-db", endpoint_url=db.settings.endpoint_url,
                     aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-for-the-graph")
    counter = count_requests(keyed)
    table = Table("events", keyed, ["kind", "id"])
    with pytest.raises(InvalidArgumentError, match="workers' environment"):
        read_s3aads(table, kind="buy")
    with pytest.raises(InvalidArgumentError, match="profile_name"):
        to_s3aads(dd.from_pandas(events(6), npartitions=2), table)
    assert counter.total == 0
    if db.settings.endpoint_url:  # keys anyone may know (the local endpoint's) may travel
        public = Database("dask-db", endpoint_url=db.settings.endpoint_url, public_keys=True,
                          aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        bought = read_s3aads(Table("events", public, ["kind", "id"]), kind="buy").compute()
        assert len(bought) == len(read_s3aads(Table("events", db, ["kind", "id"]), kind="buy").compute()) > 0


def test_tasks_on_a_worker_share_one_store(client: Client, db: Database) -> None:
    events(60).s3aads.write(Table("events", db, ["kind", "id"]))
    # a botocore Config compares by identity, and each task unpickles its own copy of it
    configured = Database("dask-db", endpoint_url=db.settings.endpoint_url,
                          config=Config(s3={"addressing_style": "path"}))
    ddf = read_s3aads(Table("events", configured, ["kind", "id"]), partition_on="id")

    def stores_made() -> int:
        opened = lambda: sum(d._store is not None for d in dask_module._worker_databases.values())  # noqa: E731
        return sum(client.run(opened).values())

    before = stores_made()
    assert ddf.npartitions == 60 and len(ddf.compute()) == 60
    assert 1 <= stores_made() - before <= len(client.scheduler_info()["workers"])  # not one per task


def _object_size(db: Database, table: str) -> int:
    listed = db.store.boto3_client.list_objects_v2(Bucket=db.name, Prefix=f"{table}/")["Contents"]
    return min(obj["Size"] for obj in listed)


@pytest.mark.parametrize(
    "columns, rows, gets", [(3, 20_000, 1), (3_000, 2, 2)], ids=["footer-in-sample", "wide-footer"]
)
def test_dataset_meta_comes_from_the_parquet_footer(
    db: Database, count_requests, columns: int, rows: int, gets: int
) -> None:
    numbers = {f"c{i}": np.random.default_rng(i).random(rows) for i in range(columns)}
    frame = pd.DataFrame({"region": ["eu"] * rows, **numbers})
    frame["label"] = "x"
    frame["units"] = 7
    frame.s3aads.write("dask-db/wide", partition_by=["region"], format="parquet")
    assert _object_size(db, "wide") > formats.SAMPLE_BYTES
    counter = count_requests(db)
    ddf = read_s3aads(Table("wide", db, ["region"]), format="parquet")
    ranges = [params.get("Range", "") for params in counter.params("GetObject")]
    assert len(ranges) == gets and all(r.startswith("bytes=-") for r in ranges)  # never the whole object
    computed = ddf.compute(scheduler="sync")
    assert dict(ddf.dtypes) == dict(computed.dtypes) and list(ddf.columns) == list(computed.columns)
    assert str(ddf["label"].dtype) == str(frame["label"].dtype) and str(ddf["units"].dtype) == "int64"


def test_dataset_meta_comes_from_the_first_lines_of_a_csv(db: Database, count_requests) -> None:
    frame = pd.DataFrame({"region": "eu", "n": range(10_000), "amount": 0.5, "note": "some text"})
    frame.s3aads.write("dask-db/lines", partition_by=["region"], format="csv")
    assert _object_size(db, "lines") > formats.SAMPLE_BYTES
    counter = count_requests(db)
    ddf = read_s3aads(Table("lines", db, ["region"]), format="csv")
    assert [p.get("Range") for p in counter.params("GetObject")] == [f"bytes=0-{formats.SAMPLE_BYTES - 1}"]
    assert {c: str(t) for c, t in ddf.dtypes.items() if c != "region"} == {
        "n": "int64", "amount": "float64", "note": str(frame["note"].dtype)}


def test_a_csv_sample_cut_inside_a_quoted_field_falls_back_to_the_whole_object(db: Database) -> None:
    long_field = "line\n" * (formats.SAMPLE_BYTES // 5)  # the sample ends inside this quoted field
    pd.DataFrame({"region": ["eu"], "n": [1], "text": [long_field]}).s3aads.write(
        "dask-db/quoted", partition_by=["region"], format="csv")
    ddf = read_s3aads(Table("quoted", db, ["region"]), format="csv")
    assert list(ddf.columns) == ["region", "n", "text"] and str(ddf["n"].dtype) == "int64"


def test_a_dataset_read_in_the_wrong_format_names_the_object(db: Database) -> None:
    pd.DataFrame({"region": ["eu"], "n": [1]}).s3aads.write("dask-db/lines", partition_by=["region"], format="csv")
    with pytest.raises(PayloadTypeError, match=r"s3://dask-db/lines/eu is not a parquet file"):
        read_s3aads(Table("lines", db, ["region"]), format="parquet")


def test_many_values_are_read_in_runs_of_keys(db: Database, count_requests, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_module, "MAX_PARTITIONS", 4)
    monkeypatch.setattr(dask_module, "PARTITION_ROWS", 10)
    table = Table("events", db, ["id", "kind"])
    events(40).s3aads.write(table)  # 40 ids, one row each
    ddf = read_s3aads(table)
    assert ddf.npartitions == 4
    counter = count_requests(dask_module._worker_database(dask_module._TableSpec.of(table).settings, db.name))
    back = ddf.compute(scheduler="sync")
    assert dict(counter.operations) == {"ListObjectsV2": 4, "GetObject": 40}  # a listing per run, not per id
    assert [p["MaxKeys"] for p in counter.params("ListObjectsV2")] == [11] * 4  # its 10 keys and the next
    assert list(back["id"]) == list(pd.read_s3aads(table)["id"])  # every row once, in key order
    assert read_s3aads(table, npartitions=3).npartitions == 3
    with pytest.raises(InvalidArgumentError, match="npartitions must be a positive integer, got 0"):
        read_s3aads(table, npartitions=0)


@pytest.mark.parametrize("ids, rows_per_id, limits, expected", [
    (40, 1, {"PARTITION_ROWS": 10}, 4),  # 10 ids of one row each per partition
    (40, 1, {"PARTITION_ROWS": 20}, 2),
    (40, 1, {"PARTITION_BYTES": 20 * len(b"payload 10")}, 2),  # or as many bytes
    (12, 5, {"PARTITION_ROWS": 10}, 6),  # 2 ids of 5 rows
    (12, 5, {"PARTITION_ROWS": 1}, 8),  # never more than MAX_PARTITIONS
], ids=["rows", "fewer", "bytes", "dense", "capped"])
def test_past_max_partitions_groups_are_sized_from_one_listing_page(
        db: Database, count_requests, monkeypatch: pytest.MonkeyPatch, ids: int, rows_per_id: int,
        limits: dict[str, int], expected: int) -> None:
    monkeypatch.setattr(dask_module, "MAX_PARTITIONS", 8)
    for name, value in limits.items():
        monkeypatch.setattr(dask_module, name, value)
    table = Table("events", db, ["id", "kind"])
    frame = pd.DataFrame({"id": [f"{i:03d}" for i in range(ids) for _ in range(rows_per_id)],
                          "kind": [f"k{j}" for _ in range(ids) for j in range(rows_per_id)]})
    frame["data"] = [b"payload 10"] * len(frame)
    frame.s3aads.write(table)
    counter = count_requests(db)
    assert read_s3aads(table).npartitions == expected
    assert counter.operations["ListObjectsV2"] == 2  # the values, and one page of rows
    assert read_s3aads(table, npartitions=3).npartitions == 3
