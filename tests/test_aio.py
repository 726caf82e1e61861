"""The asyncio API: the synchronous API's calls as coroutines, on the same core, never blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest

from s3aads_pandas import (
    ColumnsNotSetError,
    Database,
    PayloadTypeError,
    RowChangedError,
    RowExistsError,
    Table,
    aio,
    usage,
)
from s3aads_pandas.storage import loop

#: A row's calls go out through obstore's asynchronous API from S3: over HTTP on that transport,
#: and on this machine's databases, whose calls take the path of the boto3 transport's (a thread).
WIRE = ("obstore",)


def test_every_coroutine_gives_what_the_synchronous_call_gives(db: Database) -> None:
    async def session() -> dict[str, Any]:
        async with aio.AsyncDatabase(db.name) as adb:
            table = aio.AsyncTable("events", adb, columns=["year", "id"])
            await table.insert(b"one", year=2020, id=1)
            await table.insert_string("ten", year=2020, id=10)
            await table.insert(b"2021", year=2021, id=1)
            seen: dict[str, Any] = {
                "exists": await adb.exists(),
                "tables": await adb.tables(),
                "select": await table.select(year=2020, id=1),
                "string": await table.select_string(year=2020, id=10),
                "query": await table.query(id=1),
                "distinct": await table.distinct("year"),
                "count": await table.count(year=2020),
                "keys": await table.keys(),
                "rows": [row.segments async for row in table.iter_rows(year=2020)],
            }
            versioned = await table.select_with_etag(year=2020, id=1)
            assert versioned is not None
            await table.update(b"new", versioned.etag, year=2020, id=1)
            with pytest.raises(RowChangedError):
                await table.update(b"stale", versioned.etag, year=2020, id=1)
            with pytest.raises(RowExistsError):
                await table.insert(b"again", overwrite=False, year=2021, id=1)
            await table.delete(year=2021, id=1)
            await table.insert_by_key("2022/7", b"by key")
            seen["by_key"] = await table.select_by_key("2022/7")
            await table.delete_by_key("2022/7")
            seen["after"] = await table.query()
            found = await adb.get_table("events")
            assert found is not None and found.columns == ["year", "id"]
            seen["missing"] = await adb.get_table("nothing")
            seen["dropped"] = await adb.drop_table("events")
            return seen

    seen = asyncio.run(session())
    assert seen["exists"] and seen["tables"] == ["events"]
    assert seen["select"] == b"one" and seen["string"] == "ten"
    assert seen["query"] == [{"year": "2020", "id": "1"}, {"year": "2021", "id": "1"}]
    assert seen["distinct"] == [("2020",), ("2021",)] and seen["count"] == 2
    assert seen["keys"] == ["2020/1", "2020/10", "2021/1"]
    assert seen["rows"] == [["2020", "1"], ["2020", "10"]]
    assert seen["by_key"] == b"by key"
    assert seen["after"] == [{"year": "2020", "id": "1"}, {"year": "2020", "id": "10"}]
    assert seen["missing"] is None and seen["dropped"] == 2
    assert Table("events", db, columns=["year", "id"]).count() == 0


def test_frames_read_and_write_with_the_synchronous_parameters(db: Database) -> None:
    frame = pd.DataFrame({"year": ["2020", "2020", "2021"], "id": ["1", "2", "3"], "data": ["a", "b", "c"]})
    table = aio.AsyncTable("t", db.name, columns=["year", "id"])

    async def session() -> tuple[Any, pd.DataFrame, list[pd.DataFrame]]:
        written = await aio.write(frame, table)
        read = await aio.read_s3aads(table, year="2020", decode="str")
        chunks = await aio.read_s3aads(table, chunksize=2)
        assert not isinstance(chunks, pd.DataFrame)
        return written, read, [chunk async for chunk in chunks]

    written, read, chunks = asyncio.run(session())
    assert written.written == 3 and not written.failures
    assert read["data"].tolist() == ["a", "b"] and read["id"].tolist() == ["1", "2"]
    assert [len(chunk) for chunk in chunks] == [2, 1]
    assert pd.concat(chunks)["id"].tolist() == ["1", "2", "3"]
    pd.testing.assert_frame_equal(read, pd.read_s3aads(Table("t", db), year="2020", decode="str"))


def test_the_synchronous_exceptions_are_raised(db: Database) -> None:
    table = aio.AsyncTable("unknown", db.name)
    with pytest.raises(ColumnsNotSetError):
        asyncio.run(table.select(id=1))


def test_the_loop_runs_while_a_request_is_in_flight(db: Database) -> None:
    """The GET waits until a task on the loop lets it go: were the loop blocked by the select,
    that task could never run and the GET would wait in vain."""
    Table("t", db, columns=["id"]).insert(b"payload", id=1)
    sent, released = threading.Event(), threading.Event()
    waited: list[bool] = []

    def hold(operation: str, params: Mapping[str, Any]) -> None:
        if operation == "GetObject":
            sent.set()
            waited.append(released.wait(timeout=60))

    db.store.hooks.append(hold)

    async def session() -> bytes | None:
        select = asyncio.ensure_future(aio.AsyncTable("t", db, columns=["id"]).select(id=1))
        while not sent.is_set():
            await asyncio.sleep(0.01)
        released.set()
        return await select

    assert asyncio.run(session()) == b"payload"
    assert waited == [True]


def test_concurrent_calls_are_counted_by_a_usage_block_in_the_coroutine(db: Database) -> None:
    table = Table("t", db, columns=["id"])
    pd.DataFrame({"id": range(120), "data": [str(i) for i in range(120)]}).s3aads.write(table, progress=False)

    async def session() -> tuple[list[bytes | None], Any]:
        handle = aio.AsyncTable("t", db, columns=["id"])
        with usage() as spent:
            payloads = await asyncio.gather(*(handle.select(id=i) for i in range(120)))
        return payloads, spent

    payloads, spent = asyncio.run(session())
    assert payloads == [str(i).encode() for i in range(120)]
    assert spent.requests["GetObject"] == 120


def test_leaving_an_async_for_early_closes_the_listing(db: Database) -> None:
    table = Table("t", db, columns=["id"])
    pd.DataFrame({"id": range(30), "data": ["x"] * 30}).s3aads.write(table, progress=False)

    async def first_three() -> list[str]:
        seen = []
        async for row in aio.AsyncTable("t", db, columns=["id"]).iter_rows():
            seen.append(row.segments[0])
            if len(seen) == 3:
                break
        return seen

    assert asyncio.run(first_three()) == ["0", "1", "10"]


def test_a_rows_calls_go_out_on_the_package_loop_with_no_thread_of_their_own(db: Database) -> None:
    """On obstore's stores a GET and a PUT (conditional too) are sent by the package's loop
    itself; what goes through boto3 (or the record's first read and write) runs on a thread."""
    senders: list[tuple[str, str]] = []
    db.store.hooks.append(lambda operation, params: senders.append((operation, threading.current_thread().name)))
    table = aio.AsyncTable("t", db, columns=["id"])

    async def session() -> list[bytes | None]:
        await table.insert(b"first", id=0)  # records the columns: on a worker thread
        senders.clear()
        await asyncio.gather(*(table.insert(str(i).encode(), id=i) for i in range(1, 40)))
        await asyncio.gather(*(table.insert(str(i).encode(), overwrite=False, id=i) for i in range(40, 50)))
        first = await table.select_with_etag(id=0)
        assert first is not None
        await table.update(b"swapped", first.etag, id=0)
        return list(await asyncio.gather(*(table.select(id=i) for i in range(50))))

    assert asyncio.run(session()) == [b"swapped"] + [str(i).encode() for i in range(1, 50)]
    sent = {(operation, name) for operation, name in senders}
    on_loop = db.store.sends_async and db.store.cache is None
    expected = loop.THREAD_PREFIX if on_loop else f"{loop.THREAD_PREFIX}-io"
    assert {operation for operation, _ in sent} == {"PutObject", "GetObject"}
    assert {name.rsplit("_", 1)[0] for _, name in sent} == {expected}


def test_listings_go_out_on_the_package_loop_with_no_worker_thread(db: Database, seed) -> None:
    """A listing of several pages fans out over key ranges: each is a task on the package's loop,
    whose LISTs that loop sends on S3 (its Delimiter listings, through boto3, on a thread of its
    executor); none takes one of this module's worker threads."""
    rows = 1200
    table = Table("t", db, columns=["id", "n"])
    table.insert(b"-", id=0, n=0)  # the column record
    seed(db.name, [f"t/{i // 100}/{i % 100}" for i in range(1, rows)])
    senders: list[str] = []
    db.store.hooks.append(lambda operation, params: senders.append(threading.current_thread().name)
                          if operation == "ListObjectsV2" else None)
    listed = aio.AsyncTable("t", db, columns=["id", "n"])

    async def session() -> tuple[int, list[str], list[dict[str, str]], list[str]]:
        return (await listed.count(), await listed.keys(), await listed.query(id=[3, 7]),
                [row.key async for row in listed.iter_rows(id=5)])

    count, keys, queried, five = asyncio.run(session())
    names = {name.rsplit("_", 1)[0] for name in senders}
    assert count == rows and keys == table.keys and queried == table.query(id=[3, 7])
    assert five == [row.key for row in table.iter_rows(id=5)] and len(five) == 100
    assert names <= {loop.THREAD_PREFIX, f"{loop.THREAD_PREFIX}-io"}
    assert (loop.THREAD_PREFIX in names) == db.store.sends_async


def test_a_tables_columns_are_read_by_a_coroutine_and_the_property_sends_nothing(db: Database) -> None:
    Table("t", db, columns=["year", "id"]).insert(b"x", year=2020, id=1)
    table = aio.AsyncTable("t", db)

    async def session() -> tuple[list[str], list[str], list[str]]:
        with usage() as spent:
            before = table.columns
        assert spent.requests == {}
        return before, await table.read_columns(), table.columns

    assert asyncio.run(session()) == ([], ["year", "id"], ["year", "id"])
    assert asyncio.run(aio.AsyncTable("t", db, columns=["year", "id"]).read_columns()) == ["year", "id"]
    assert asyncio.run(aio.AsyncTable("none", db).read_columns()) == []


def test_bad_input_to_a_rows_call_sends_nothing(db: Database) -> None:
    table = aio.AsyncTable("t", db, columns=["id"])
    with usage() as spent:
        with pytest.raises(PayloadTypeError, match="use insert_string"):
            asyncio.run(table.insert("text", id=1))
        with pytest.raises(PayloadTypeError, match="use insert"):
            asyncio.run(table.insert_string(b"bytes", id=1))
    assert spent.requests == {}
    assert Table("t", db, columns=["id"]).count() == 0
