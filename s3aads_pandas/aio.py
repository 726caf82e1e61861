"""The datastore from asyncio code (FastAPI, aiohttp, any event loop): coroutines with the names,
parameters, results and exceptions of the synchronous API, on the same core: the same retries,
deadlines, conditional writes, cache and usage counts (a ``usage()`` block in a coroutine counts
what the calls it awaits send). The caller's event loop is never blocked while a request is in
flight.

A row's calls (``select``, ``insert``, ``update``, ``delete`` and their kin) are coroutines on
the package's event loop (:mod:`s3aads_pandas.storage.loop`): on obstore's stores their GETs and
PUTs (conditional ones too) go out through obstore's asynchronous API, as many at once as the
store's pace allows, with no thread each; a request through boto3, and the HEAD that tells what
became of a refused write whose earlier answer was lost, run on that loop's executor. The first
call of a table reads its column record and makes the store's clients on a worker thread.
Listings (``iter_rows``, ``query``, ``count``, ``keys``) are the listing engine's tasks on that
loop, their pages handed to the caller's loop as they come. Frames and the other calls
(``read_s3aads``, ``write``, ``distinct``...) run the synchronous core on this module's worker
threads, up to :data:`WORKER_THREADS` at once; the LISTs, GETs and PUTs they send go out on the
package's loop, as the synchronous ones do.

A cancelled coroutine stops waiting; a request already sent still completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pandas as pd

from s3aads_pandas.config import ConnectionSettings
from s3aads_pandas.frames.accessor import WriteResult
from s3aads_pandas.frames.read import read_s3aads as _read_s3aads
from s3aads_pandas.storage import loop, usage
from s3aads_pandas.storage.adapter import Listed, ObjectStore
from s3aads_pandas.tables.datastore import Database, Table, Versioned, text, utf8_payload
from s3aads_pandas.tables.rows import Matching, Row, pages_under

T = TypeVar("T")

#: How many calls that list or make frames run at once, each on a thread of its own.
WORKER_THREADS = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """The worker threads, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="s3aads-aio")
        return _pool


def _forget_workers() -> None:
    """In a forked child the parent's threads do not exist: start new ones on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_workers)


async def run(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` on a worker thread, in the caller's context (its usage blocks)."""
    future = usage.submit(_workers(), functools.partial(call, *args, **kwargs))
    return await asyncio.wrap_future(future)


async def _iterate(items: Iterator[T]) -> AsyncGenerator[T, None]:
    """``items``, each taken on a worker thread; closed when left."""
    try:
        while (item := await run(next, items, _END)) is not _END:
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            await run(close)


_END: Any = object()


def _coroutine(method: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """A coroutine that runs ``method`` of the wrapped synchronous object on a worker thread."""

    @functools.wraps(method)
    async def call(self: AsyncDatabase | AsyncTable, *args: Any, **kwargs: Any) -> T:
        return await run(getattr(self.sync, method.__name__), *args, **kwargs)

    return call


class AsyncDatabase:
    """:class:`~s3aads_pandas.Database` for asyncio code: ``name`` and the connection as there;
    ``async with AsyncDatabase(...) as db`` works too."""

    def __init__(self, name: str, settings: ConnectionSettings | None = None, **connection: Any) -> None:
        self.sync: Database = Database(name, settings, **connection)

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    @property
    def name(self) -> str:
        return self.sync.name

    create = _coroutine(Database.create)
    exists = _coroutine(Database.exists)
    drop_table = _coroutine(Database.drop_table)

    async def tables(self) -> list[str]:
        """The database's tables (a property of the synchronous Database)."""
        return await run(lambda: self.sync.tables)

    async def get_table(self, name: str, columns: Sequence[str] | None = None, *,
                        infer_columns: bool = False) -> AsyncTable | None:
        """The table ``name`` with its recorded columns, or None when it has no rows (as there)."""
        table = await run(self.sync.get_table, name, columns, infer_columns=infer_columns)
        return None if table is None else AsyncTable.of(table)


class AsyncTable:
    """:class:`~s3aads_pandas.Table` for asyncio code; ``database`` is an AsyncDatabase, a
    Database, a name or a URL."""

    def __init__(self, name: str, database: AsyncDatabase | Database | str,
                 columns: Sequence[str] | None = None) -> None:
        if isinstance(database, AsyncDatabase):
            database = database.sync
        self.sync: Table = Table(name, database, columns)

    @classmethod
    def of(cls, table: Table) -> AsyncTable:
        """The async face of a synchronous Table."""
        wrapper = cls.__new__(cls)
        wrapper.sync = table
        return wrapper

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    @property
    def name(self) -> str:
        return self.sync.name

    @property
    def columns(self) -> list[str]:
        """The key columns in hand, which reading sends nothing for: as given, or as recorded in
        the bucket once a call has read the table's record (:meth:`read_columns`); empty before."""
        return self.sync.columns if self.sync.ready() else []

    async def read_columns(self) -> list[str]:
        """The key columns: as given, else as recorded in the bucket (its record read on a worker
        thread the first time), else empty (a table of s3aads 2.x), as the synchronous Table's."""
        await self._opened()
        return await self._prepared(lambda: self.sync.columns)

    distinct = _coroutine(Table.distinct)
    query_by_key = _coroutine(Table.query_by_key)

    # -- a row's calls, on the package's event loop -----------------------------------------------

    async def _opened(self) -> ObjectStore:
        """The database's store, made on a worker thread the first time (making clients takes a while)."""
        database = self.sync.database
        if not database.store_opened:
            await run(lambda: database.store)
        return database.store

    async def _prepared(self, step: Callable[..., T], *args: Any, writing: bool = False) -> T:
        """``step(*args)``, a row's key or a write's checked payload: here when the table is
        :meth:`~s3aads_pandas.Table.ready` and it sends nothing, else on a worker thread, where
        it reads or writes the column record."""
        if self.sync.ready(writing=writing):
            return step(*args)
        return await run(step, *args)

    async def _key(self, columns: Mapping[str, Any]) -> str:
        return await self._prepared(functools.partial(self.sync.to_key, **columns))

    @property
    def _bucket(self) -> str:
        return self.sync.database.name

    async def insert(self, data: bytes, metadata: Mapping[str, Any] | None = None, *, overwrite: bool = True,
                     **columns: Any) -> dict[str, Any]:
        """:meth:`Table.insert <s3aads_pandas.Table.insert>`."""
        store = await self._opened()
        key, body, params = await self._prepared(self.sync.checked_write, data, metadata, columns, writing=True)
        written = await loop.awaited(store.put_async(self._bucket, key, body, params, overwrite=overwrite))
        return written.as_response()

    async def insert_string(self, data: str, metadata: Mapping[str, Any] | None = None, *, overwrite: bool = True,
                            **columns: Any) -> dict[str, Any]:
        """Store a str as UTF-8."""
        return await self.insert(utf8_payload(data), metadata, overwrite=overwrite, **columns)

    async def select(self, **columns: Any) -> bytes | None:
        """The payload of one row, or None when there is no such row (one GET)."""
        store = await self._opened()
        return await loop.awaited(store.get_async(self._bucket, await self._key(columns)))

    async def select_string(self, **columns: Any) -> str | None:
        return text(await self.select(**columns))

    async def select_with_etag(self, **columns: Any) -> Versioned | None:
        """:meth:`Table.select_with_etag <s3aads_pandas.Table.select_with_etag>`."""
        store = await self._opened()
        found = await loop.awaited(store.get_with_etag_async(self._bucket, await self._key(columns)))
        return None if found is None else Versioned(*found)

    async def update(self, data: bytes, if_match: str, metadata: Mapping[str, Any] | None = None,
                     **columns: Any) -> dict[str, Any]:
        """:meth:`Table.update <s3aads_pandas.Table.update>`: a compare-and-swap (If-Match)."""
        store = await self._opened()
        key, body, params = await self._prepared(self.sync.checked_write, data, metadata, columns, writing=True)
        written = await loop.awaited(store.put_if_match_async(self._bucket, key, body, if_match, params))
        return written.as_response()

    async def delete(self, **columns: Any) -> dict[str, Any]:
        """Delete one row (no error when it does not exist, as in S3)."""
        store = await self._opened()
        return await loop.awaited(store.delete_async(self._bucket, await self._key(columns)))

    async def insert_by_key(self, key: str, data: bytes, **params: Any) -> dict[str, Any]:
        """Store ``data`` at ``<table>/<key>``; ``params`` are S3 PutObject parameters."""
        store = await self._opened()
        body = self.sync.checked_write_by_key(data, params)
        written = await loop.awaited(store.put_async(self._bucket, self.sync.full_key(key), body, params))
        return written.as_response()

    async def select_by_key(self, key: str) -> bytes | None:
        """The payload at ``<table>/<key>``, or None (one GET)."""
        store = await self._opened()
        return await loop.awaited(store.get_async(self._bucket, self.sync.full_key(key)))

    async def delete_by_key(self, key: str) -> dict[str, Any]:
        store = await self._opened()
        return await loop.awaited(store.delete_async(self._bucket, self.sync.full_key(key)))

    # -- listings, on the package's event loop ----------------------------------------------------

    def iter_rows(self, **filters: Any) -> AsyncIterator[Row]:
        """``async for row in table.iter_rows(**filters)``: the matching rows as they are listed."""
        return self._rows(filters)

    async def _rows(self, filters: Mapping[str, Any]) -> AsyncGenerator[Row, None]:
        await self._opened()
        codec = await self._prepared(lambda: self.sync.codec)
        matching = Matching(codec, filters, self._bucket)
        prefixes = codec.listing_prefixes(codec.encode_filters(filters))
        async with contextlib.aclosing(loop.iterate_async(pages_under(self.sync.database.lister(), prefixes))) as pages:
            async for objects in pages:
                for row in matching.rows(objects):
                    yield row
        matching.done()

    async def _table_pages(self) -> AsyncGenerator[list[Listed], None]:
        """Every object under the table, whatever its depth (a table without columns), a page at a time."""
        await self._opened()
        async with contextlib.aclosing(loop.iterate_async(self.sync.database.lister().pages(f"{self.name}/"))) as pages:
            async for objects in pages:
                yield objects

    async def _without_columns(self) -> bool:
        """Whether the table has no columns, given or recorded (a table of s3aads 2.x)."""
        return not await self.read_columns()

    async def query(self, **filters: Any) -> list[dict[str, str]]:
        """:meth:`Table.query <s3aads_pandas.Table.query>`."""
        return self.sync.decoded([row async for row in self.iter_rows(**filters)])

    async def count(self, **filters: Any) -> int:
        """:meth:`Table.count <s3aads_pandas.Table.count>`: rows counted as listed, not held."""
        if not filters and await self._without_columns():
            return sum([len(objects) async for objects in self._table_pages()])
        counted = 0
        async for _ in self.iter_rows(**filters):  # counted as listed, not held
            counted += 1
        return counted

    async def keys(self) -> list[str]:
        """Keys (without the table name) of every row (a property of the synchronous Table)."""
        if await self._without_columns():
            return self.sync.keys_of([obj async for page in self._table_pages() for obj in page])
        return self.sync.keys_of([row async for row in self.iter_rows()])


def _table(table: AsyncTable | Table | str) -> Table | str:
    return table.sync if isinstance(table, AsyncTable) else table


async def read_s3aads(table: AsyncTable | Table | str, *, progress: bool | None = False,
                      **options: Any) -> pd.DataFrame | AsyncIterator[pd.DataFrame]:
    """:func:`~s3aads_pandas.read_s3aads`, with its parameters; no progress bar unless asked.
    With ``chunksize`` it gives an async iterator of DataFrames, listing and fetching as it goes."""
    frames = await run(_read_s3aads, _table(table), progress=progress, **options)
    if isinstance(frames, pd.DataFrame):
        return frames
    return _iterate(frames)


async def write(frame: pd.DataFrame, table: AsyncTable | Table | str, data: str = "data", *,
                progress: bool | None = False, **options: Any) -> WriteResult:
    """``frame.s3aads.write(table, ...)``, with its parameters; no progress bar unless asked."""
    return await run(frame.s3aads.write, _table(table), data, progress=progress, **options)
