"""The payload cache: a repeated read sends only its listing, and never serves a stale or damaged payload.

Requests are counted where S3 would bill them, at the endpoint, by operation.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from s3aads_pandas import ConnectionSettings, Database, Table, usage
from s3aads_pandas.errors import InvalidArgumentError
from s3aads_pandas.local import LocalS3
from s3aads_pandas.storage.cache import PayloadCache

#: Rows of the tables read: a few listing pages' worth would only slow the suite; the benchmark reads 10,000.
ROWS = 60


@pytest.fixture(params=["boto3", "obstore"])
def server(request: pytest.FixtureRequest, local_s3: LocalS3) -> LocalS3:
    local_s3.reset()
    request.node.transport = request.param
    return local_s3


def settings(server: LocalS3, transport: str = "obstore", **changes: object) -> ConnectionSettings:
    return server.settings().replace(transport=transport, **changes)


def seeded(server: LocalS3, transport: str, rows: int = ROWS) -> Table:
    """A table written by a writer without a cache: another program, as far as a reader knows."""
    writer = Database("cached", settings(server, transport))
    writer.create()
    table = Table("events", writer, ["id"])
    frame = pd.DataFrame({"id": range(rows), "data": [f"payload {i}".encode() for i in range(rows)]})
    frame.s3aads.write(table, progress=False)
    return table


def reader(server: LocalS3, transport: str, folder: Path) -> Table:
    return Table("events", Database("cached", settings(server, transport, cache=str(folder))), ["id"])


def sent(server: LocalS3, before: Counter[str]) -> dict[str, int]:
    """What the endpoint answered since ``before``, by operation."""
    return dict(server.operations - before)


def test_a_repeated_read_sends_only_its_listing(server: LocalS3, request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    transport = request.node.transport
    seeded(server, transport)
    table = reader(server, transport, tmp_path)
    before = Counter(server.operations)
    with usage() as used:
        first = pd.read_s3aads(table, progress=False)
    assert used.requests["GetObject"] == ROWS and used.bytes_received == sum(map(len, first["data"]))
    assert dict(used.requests) == sent(server, before)  # operation by operation, the region's HeadBucket too

    before = Counter(server.operations)
    with usage() as used:
        again = pd.read_s3aads(table, progress=False)
    assert sent(server, before) == {"ListObjectsV2": 1}  # one listing page, and no GET
    assert dict(used.requests) == sent(server, before)  # what usage says is what S3 saw
    assert used.cache_hits == ROWS and used.bytes_received == 0
    pd.testing.assert_frame_equal(again, first, check_like=True)


@pytest.mark.parametrize("server", ["obstore"], indirect=True)  # listings give ETags on both: the first test
def test_a_changed_row_is_fetched_again_and_a_deleted_one_is_gone(server: LocalS3, request: pytest.FixtureRequest,
                                                                  tmp_path: Path) -> None:
    transport = request.node.transport
    writer = seeded(server, transport)
    table = reader(server, transport, tmp_path)
    pd.read_s3aads(table, progress=False)
    for row in range(5):
        writer.insert(f"changed {row}".encode(), id=row)
    for row in (10, 11):
        writer.delete(id=row)

    before = Counter(server.operations)
    frame = pd.read_s3aads(table, progress=False, dtype={"id": int})
    assert sent(server, before) == {"ListObjectsV2": 1, "GetObject": 5}
    payloads = dict(zip(frame["id"], frame["data"], strict=True))
    assert len(payloads) == ROWS - 2 and 10 not in payloads and 11 not in payloads
    assert [payloads[row] for row in range(6)] == [*(f"changed {row}".encode() for row in range(5)), b"payload 5"]
    assert frame.attrs["s3aads_usage"]["cache_hits"] == ROWS - 2 - 5


@pytest.mark.parametrize("server", ["obstore"], indirect=True)  # the cache checks what it holds, on any transport
def test_damaged_entries_are_never_served(server: LocalS3, request: pytest.FixtureRequest, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    transport = request.node.transport
    seeded(server, transport)
    table = reader(server, transport, tmp_path)
    first = pd.read_s3aads(table, progress=False)
    entries = [path for path in tmp_path.glob("*/*") if path.read_bytes().startswith(b"s3aads-cache")]
    assert len(entries) == ROWS
    for number, path in enumerate(entries):  # a flipped byte, a truncation, an emptied file
        content = path.read_bytes()
        damaged = [content[:-1] + bytes([content[-1] ^ 1]), content[: len(content) // 2], b""][number % 3]
        path.write_bytes(damaged)

    before = Counter(server.operations)
    with caplog.at_level(logging.WARNING, "s3aads_pandas.storage.cache"):
        again = pd.read_s3aads(table, progress=False)
    pd.testing.assert_frame_equal(again, first)
    assert sent(server, before) == {"ListObjectsV2": 1, "GetObject": ROWS}
    assert sum("damaged cache entry" in record.getMessage() for record in caplog.records) == ROWS
    before = Counter(server.operations)
    pd.read_s3aads(table, progress=False)
    assert sent(server, before) == {"ListObjectsV2": 1}  # fetched again, and filed again


def test_a_select_of_a_cached_row_is_a_conditional_get(server: LocalS3, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    transport = request.node.transport
    writer = seeded(server, transport, rows=2)
    table = reader(server, transport, tmp_path)
    assert table.select(id=1) == b"payload 1"  # fetched, and filed

    before = Counter(server.answered)
    with usage() as used:
        assert table.select(id=1) == b"payload 1"
    assert dict(server.answered - before) == {"GET 304": 1}  # S3 sent no body
    assert used.cache_hits == 1 and used.bytes_received == 0

    writer.insert(b"new", id=1)
    before = Counter(server.answered)
    assert table.select(id=1) == b"new"
    assert dict(server.answered - before) == {"GET 200": 1}
    writer.delete(id=1)
    assert table.select(id=1) is None


@pytest.mark.parametrize("server", ["obstore"], indirect=True)
def test_what_a_database_writes_it_reads_back_from_the_cache(server: LocalS3, request: pytest.FixtureRequest,
                                                             tmp_path: Path) -> None:
    transport = request.node.transport
    database = Database("cached", settings(server, transport, cache=str(tmp_path)))
    database.create()
    table = Table("events", database, ["id"])
    frame = pd.DataFrame({"id": range(20), "data": [b"x" * (i + 1) for i in range(20)]})
    frame.s3aads.write(table, progress=False)
    table.insert(b"one more", id=20)

    before = Counter(server.operations)
    back = pd.read_s3aads(table, progress=False, dtype={"id": int}).sort_values("id")
    assert sent(server, before) == {"ListObjectsV2": 1}
    assert back["data"].tolist() == [b"x" * (i + 1) for i in range(20)] + [b"one more"]


def test_dataset_reads_and_fetch_use_the_cache(local_s3: LocalS3, tmp_path: Path) -> None:
    local_s3.reset()
    database = Database("cached", settings(local_s3, cache=str(tmp_path)))
    database.create()
    sales = pd.DataFrame({"region": ["eu", "eu", "us"], "amount": [1.0, 2.0, 3.0]})
    sales.s3aads.write(Table("sales", database, ["region"]), partition_by=["region"], format="parquet")
    before = Counter(local_s3.operations)
    back = pd.read_s3aads(Table("sales", database, ["region"]), format="parquet", progress=False)
    assert sent(local_s3, before) == {"ListObjectsV2": 1}  # the two objects it wrote, from the cache
    assert sorted(back["amount"]) == [1.0, 2.0, 3.0]

    keys = pd.DataFrame({"region": ["eu", "us"]})
    before = Counter(local_s3.answered)
    fetched = keys.s3aads.fetch(Table("sales", database, ["region"]))
    assert dict(local_s3.answered - before) == {"GET 304": 2}  # no listing: each row asks S3 if it changed
    uncached = keys.s3aads.fetch(Table("sales", Database("cached", settings(local_s3)), ["region"]))
    assert fetched["data"].tolist() == uncached["data"].tolist()


def _read_in_a_process(endpoint_settings: ConnectionSettings, folder: str) -> int:
    table = Table("events", Database("cached", endpoint_settings.replace(cache=folder)), ["id"])
    return len(pd.read_s3aads(table, progress=False))


@pytest.mark.parametrize("transport", ["obstore"])
def test_processes_share_one_cache_folder(local_s3: LocalS3, transport: str, tmp_path: Path) -> None:
    local_s3.reset()
    seeded(local_s3, transport)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:  # both file the same entries at once
        counts = list(pool.map(_read_in_a_process, [settings(local_s3)] * 2, [str(tmp_path)] * 2))
    assert counts == [ROWS, ROWS]

    before = Counter(local_s3.operations)
    frame = pd.read_s3aads(reader(local_s3, transport, tmp_path), progress=False, dtype={"id": int})
    assert sent(local_s3, before) == {"ListObjectsV2": 1}  # the region is known: the seeding database learned it
    assert frame.sort_values("id")["data"].tolist() == [f"payload {i}".encode() for i in range(ROWS)]


def test_the_cache_keeps_to_its_bound_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    cache = PayloadCache(tmp_path, max_bytes=10_000)
    for number in range(4):
        cache.put("endpoint", "bucket", f"k{number}", f'"e{number}"', bytes(2_000))
    for age, path in enumerate(sorted(tmp_path.glob("*/*"), key=lambda path: path.stat().st_mtime_ns)):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # older than anything read or written from now
    assert cache.get("endpoint", "bucket", "k0", '"e0"') == bytes(2_000)  # k0 is now the most recently used

    cache.put("endpoint", "bucket", "k4", '"e4"', bytes(2_000))
    held = {key for key in ("k0", "k1", "k2", "k3", "k4") if cache.get("endpoint", "bucket", key, f'"e{key[1]}"')}
    assert held == {"k0", "k2", "k3", "k4"}  # k1 was the least recently used
    assert sum(path.stat().st_size for path in tmp_path.glob("*/*")) <= 10_000
    assert cache.latest("endpoint", "bucket", "k4") == (bytes(2_000), '"e4"')
    assert cache.get("another endpoint", "bucket", "k4", '"e4"') is None


def test_a_cache_that_cannot_be_written_costs_no_read(local_s3: LocalS3, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    local_s3.reset()
    seeded(local_s3, "obstore", rows=3)
    taken = tmp_path / "a file"
    taken.write_text("not a folder")
    with caplog.at_level(logging.WARNING, "s3aads_pandas.storage.cache"):
        frame = pd.read_s3aads(reader(local_s3, "obstore", taken), progress=False)
    assert len(frame) == 3
    assert any("could not be written" in record.getMessage() for record in caplog.records)


def test_cache_settings() -> None:
    for wrong in ("", 3, None):
        with pytest.raises(InvalidArgumentError, match="cache must be True"):
            ConnectionSettings(cache=wrong)  # type: ignore[arg-type]
    for wrong in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="cache_max_bytes must be a positive number"):
            ConnectionSettings(cache=True, cache_max_bytes=wrong)  # type: ignore[arg-type]


def test_true_is_the_user_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    database = Database("cached", region_name="us-east-1", cache=True)
    assert database.store.cache is not None
    assert database.store.cache.folder == tmp_path / "s3aads-pandas" / "payloads"


def test_databases_on_this_machine_are_read_where_they_are(tmp_path: Path) -> None:
    database = Database("memory://uncached", cache=str(tmp_path))
    database.create()
    Table("t", database, ["id"]).insert(b"x", id=1)
    assert database.store.cache is None
    assert pd.read_s3aads("memory://uncached/t", progress=False)["data"].tolist() == [b"x"]
    assert list(tmp_path.iterdir()) == []


def test_a_cache_folder_removed_meanwhile_is_made_again(tmp_path: Path) -> None:
    cache = PayloadCache(tmp_path / "cache")
    cache.put("endpoint", "bucket", "k", '"e1"', b"one")
    shutil.rmtree(tmp_path / "cache")
    cache.put("endpoint", "bucket", "k", '"e2"', b"two")  # logged, not raised
    cache.put("endpoint", "bucket", "k", '"e2"', b"two")
    assert cache.get("endpoint", "bucket", "k", '"e2"') == b"two"
