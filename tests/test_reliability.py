"""No row lost under faults, safe concurrent writers, interrupted writes leave whole objects."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Iterator

import pandas as pd
import pytest

from s3aads_pandas import (
    BulkOperationError,
    Database,
    RowChangedError,
    S3RequestError,
    Table,
    TransferInterrupted,
)
from s3aads_pandas.local import LocalS3
from s3aads_pandas.local.faults import KINDS, FaultPlan
from s3aads_pandas.storage import loop


def faulty(plan: FaultPlan) -> Iterator[LocalS3]:
    with LocalS3(faults=plan) as server:
        server.reset()
        yield server


@pytest.fixture
def flaky() -> Iterator[LocalS3]:
    """10% of requests faulted, every kind of fault, seeded."""
    yield from faulty(FaultPlan(rate=0.10, seed=2024, latency=0.05))


def payload(i: int) -> bytes:
    return f"row {i}: ".encode() + bytes(range(256)) * 4


TRANSPORTS = pytest.mark.parametrize("transport", ["boto3", "obstore"])


@TRANSPORTS
def test_bulk_write_and_read_back_under_faults_lose_nothing(flaky: LocalS3, transport: str) -> None:
    db = Database("faults", endpoint_url=flaky.endpoint_url, transport=transport)
    db.create()
    table = Table("rows", db, ["id"])
    frame = pd.DataFrame({"id": range(300), "data": [payload(i) for i in range(300)]})
    result = frame.s3aads.write(table, progress=False)
    assert result.written == 300 and result.failures == {}
    back = pd.read_s3aads(table, progress=False)
    assert len(back) == 300
    assert all(data == payload(int(i)) for i, data in zip(back["id"], back["data"], strict=True))
    assert set(flaky.faults.injected) == set(KINDS)  # every kind happened
    assert sum(flaky.faults.injected.values()) > 40  # of about 600 requests
    assert db.store.retrier.retries > 0


@TRANSPORTS
def test_a_persistently_failing_key_is_reported_exactly(transport: str) -> None:
    for server in faulty(FaultPlan(rate=0, failing=frozenset({"faults/rows/17"}))):
        db = Database("faults", endpoint_url=server.endpoint_url, transport=transport, max_attempts=3)
        db.create()
        table = Table("rows", db, ["id"])
        frame = pd.DataFrame({"id": range(40), "data": [payload(i) for i in range(40)]})
        with pytest.raises(BulkOperationError) as info:
            frame.s3aads.write(table, progress=False)
        assert list(info.value.failures) == ["rows/17"]
        assert "InternalError" in info.value.failures["rows/17"]
        assert sorted(table.ids(), key=int) == [str(i) for i in range(40) if i != 17]


def test_compare_and_swap_update(db: Database) -> None:
    table = Table("counters", db, ["name"])
    table.insert(b"1", name="hits")
    current = table.select_with_etag(name="hits")
    assert current is not None and current.data == b"1"
    table.update(b"2", current.etag, name="hits")
    with pytest.raises(RowChangedError, match="changed since ETag"):
        table.update(b"2 again", current.etag, name="hits")  # stale ETag
    assert table.select(name="hits") == b"2"
    fresh = table.select_with_etag(name="hits")
    table.delete(name="hits")
    with pytest.raises(RowChangedError, match="was deleted"):
        table.update(b"3", fresh.etag, name="hits")
    assert table.select(name="hits") is None
    assert table.select_with_etag(name="nothing") is None


@TRANSPORTS
def test_interrupting_a_bulk_write_leaves_only_whole_objects(local_s3: LocalS3, transport: str) -> None:
    local_s3.reset()
    db = Database("interrupted", endpoint_url=local_s3.endpoint_url, transport=transport)
    db.create()
    table = Table("big", db, ["id"])
    table.insert(b"", id="first")
    body = {i: payload(i) * 64 for i in range(400)}  # 64 KiB each
    sent = []

    def interrupt_after_some(operation: str, params: object) -> None:
        sent.append(1)
        if len(sent) == 40:
            _thread.interrupt_main()

    db.store.hooks.append(interrupt_after_some)
    frame = pd.DataFrame({"id": list(body), "data": list(body.values())})
    before = set(threading.enumerate())  # the aio module's workers, for one, live as long as the process
    with pytest.raises(TransferInterrupted) as interrupt:
        frame.s3aads.write(table, progress=False)
    assert not [t for t in threading.enumerate() if t not in before and t.name.startswith("s3aads")
                and not t.name.startswith(loop.THREAD_PREFIX)]  # the event loop's live as long as the process
    stored = {row["id"]: table.select(id=row["id"]) for row in table.query() if row["id"] != "first"}
    assert 0 < len(stored) < 400 and interrupt.value.done == len(stored)  # it says how many landed
    assert all(data == body[int(i)] for i, data in stored.items())  # each one whole


class _Denied:
    status_code = 403


@pytest.mark.s3_only
@pytest.mark.parametrize("how", ["delete_many", "drop_table", "accessor"])
def test_a_failed_bulk_delete_tries_every_batch_and_names_every_row(db: Database, seed, how: str) -> None:
    keys = [f"t/{i:04d}" for i in range(2500)]
    seed(db.name, keys)
    calls: list[int] = []

    def deny_after_the_first(**kwargs) -> object:
        calls.append(1)
        if len(calls) == 1:
            return None
        return _Denied(), {"Error": {"Code": "AccessDenied", "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}

    def two_keys_refused(parsed: dict, **kwargs) -> None:
        if len(calls) == 1:
            parsed["Errors"] = [{"Key": key, "Code": "InternalError", "Message": "try again"} for key in keys[:2]]

    events = db.store.boto3_client.meta.events
    events.register("before-call.s3.DeleteObjects", deny_after_the_first)
    events.register("after-call.s3.DeleteObjects", two_keys_refused)
    with pytest.raises(BulkOperationError) as info:
        if how == "delete_many":
            db.store.delete_many(db.name, keys)
        elif how == "drop_table":
            db.drop_table("t")
        else:
            pd.DataFrame({"id": [key[2:] for key in keys]}).s3aads.delete(Table("t", db, ["id"]))
    assert len(calls) == 3  # every batch was tried
    failed = set(info.value.failures)
    assert failed >= set(keys[:2]) | set(keys[1000:])
    assert failed - set(keys) <= {".s3aads-table.t.json"}  # drop_table also deletes the record
    assert not set(keys[2:1000]) & failed
    assert "InternalError: try again" in info.value.failures[keys[0]]
    assert "AccessDenied" in info.value.failures[keys[2499]]


@TRANSPORTS
def test_a_whole_object_answered_in_part_is_never_a_payload(transport: str) -> None:
    for server in faulty(FaultPlan(rate=0.0, kinds=("partial",))):
        db = Database("faults", endpoint_url=server.endpoint_url, transport=transport, max_attempts=2)
        db.create()
        table = Table("rows", db, ["id"])
        table.insert(bytes(range(100)), id=1)
        server.faults.plan.rate = 1.0  # every GET answered 206 with the first 50 bytes
        with pytest.raises(S3RequestError):
            table.select(id=1)
        assert server.faults.injected["partial"] >= 2  # each attempt refused it
        server.faults.plan.rate = 0.0
        assert table.select(id=1) == bytes(range(100))
