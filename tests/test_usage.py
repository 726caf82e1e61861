"""``usage()`` counts what the S3 endpoint saw, request by request, and prices it."""

from __future__ import annotations

import pandas as pd
import pytest

from s3aads_pandas import Database, Pricing, Table, usage
from s3aads_pandas.local import LocalS3
from s3aads_pandas.local.faults import FaultPlan


def rows(count: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(count), "data": [b"0123456789"] * count})


@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_usage_counts_what_the_endpoint_answered(transport: str) -> None:
    plan = FaultPlan(rate=0, script=(None, None, None, "slowdown", "internal"))  # two retried requests
    with LocalS3(faults=plan) as server:
        server.reset()
        db = Database("billed", endpoint_url=server.endpoint_url, transport=transport)
        with usage() as used:
            db.create()
            table = Table("t", db, ["id"])
            rows(100).s3aads.write(table, progress=False)  # on the pool's threads
            back = pd.read_s3aads(table, progress=False)
        assert len(back) == 100
        assert sum(server.faults.injected.values()) == 2
        assert used.total == sum(server.answered.values())  # the two retries included: S3 bills them
        assert used.requests["PutObject"] >= 101 and used.requests["GetObject"] >= 100
        assert used.bytes_sent >= 100 * 10


def test_blocks_nest_and_count_only_their_own_requests() -> None:
    db = Database("memory://nested")
    db.create()
    table = Table("t", db, ["id"])
    with usage() as outer:
        rows(300).s3aads.write(table, progress=False)
        with usage() as inner:
            pd.read_s3aads(table, progress=False)
        table.select(id=1)
    assert dict(inner.requests) == {"ListObjectsV2": 1, "GetObject": 300}
    assert outer.requests["GetObject"] == 1 + 300 + 1  # the record's, the read's, the select's
    assert outer.requests["PutObject"] == 301  # the rows and the table's record
    assert inner.bytes_sent == 0 and 300 * 10 < outer.bytes_sent < 300 * 10 + 200  # the record is a short JSON
    counted = outer.total
    table.select(id=1)
    assert outer.total == counted  # a closed block counts nothing more


def test_cost_follows_the_pricing() -> None:
    db = Database("memory://priced")
    db.create()
    table = Table("t", db, ["id"])
    table.insert(b"x", id=1)  # the record is written outside the block
    with usage(Pricing(get=1.0, put=10.0)) as used:
        table.insert(b"y", id=2)  # 1 PUT
        table.select(id=2)  # 1 GET
        table.delete(id=2)  # 1 DELETE, free
    assert dict(used.requests) == {"PutObject": 1, "GetObject": 1, "DeleteObject": 1}
    assert used.cost == pytest.approx((10.0 + 1.0) / 1000)
    assert Pricing().cost({"GetObject": 1000, "PutObject": 1000, "DeleteObject": 1000}) == pytest.approx(0.0054)


def test_a_write_and_a_read_say_what_they_cost(tmp_path) -> None:
    db = Database("memory://per-call")
    db.create()
    table = Table("t", db, ["id"])
    result = rows(5).s3aads.write(table, progress=False)
    assert result.usage is not None and dict(result.usage.requests) == {"GetObject": 1, "PutObject": 6}
    frame = pd.read_s3aads(table, progress=False)
    assert frame.attrs["s3aads_usage"]["requests"] == {"ListObjectsV2": 1, "GetObject": 5}
    assert frame.head(2).attrs["s3aads_usage"] == frame.attrs["s3aads_usage"]  # copied along, as pandas does
    assert repr(result) == "WriteResult(written=5, failures={})"  # what notebooks show is unchanged
    frame.to_parquet(tmp_path / "read.parquet")  # pandas writes attrs into the file as JSON
