"""Bulk payload transfers of one database: many GETs or PUTs on the parallel executor, as tasks
on the package's event loop where the store sends them there (S3 through obstore), else on
worker threads (boto3, and the databases of this machine)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from s3aads_pandas.errors import S3RequestError, failure_reason
from s3aads_pandas.storage.adapter import ObjectStore
from s3aads_pandas.tables.datastore import Database
from s3aads_pandas.tables.executor import BatchResult, run_each, run_each_async

T = TypeVar("T")
V = TypeVar("V")


def _run(database: Database, max_workers: int | None, items: Sequence[T], label: Callable[[T], str],
         blocking: Callable[[ObjectStore, T], V], asynchronous: Callable[[ObjectStore, T], Awaitable[V]],
         progress: bool | None, desc: str) -> BatchResult[V]:
    """``asynchronous(store, item)`` for every item on the event loop when the store sends there
    (at most ``max_workers`` in flight, when given), else ``blocking(store, item)`` on threads."""
    store = database.store
    if store.sends_async:
        return run_each_async(lambda item: asynchronous(store, item), items, label=label,
                              limiter=store.bulk_limiter, max_in_flight=max_workers or database.settings.max_in_flight,
                              progress=progress, desc=desc)
    store, workers = database.store_for(max_workers or database.settings.max_workers)
    return run_each(lambda item: blocking(store, item), items, label=label, max_workers=workers,
                    progress=progress, desc=desc)


def get_objects(
    database: Database,
    keys: Sequence[str],
    transform: Callable[[bytes], V],
    *,
    missing_ok: bool,
    etags: Sequence[str | None] | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
) -> BatchResult[V | None]:
    """GET every key and ``transform`` its body, in parallel; a key that fails is reported.

    ``etags`` are the versions a listing named: those the cache holds are read from it in this
    thread, with no request (handing them to the pool would cost more than reading them), and
    only the others are fetched. A missing key gives None with ``missing_ok``, else it is a
    failure (it was listed, so it was deleted meanwhile).
    """
    store = database.store
    results: list[V | None] = [None] * len(keys)
    failures: dict[str, str] = {}
    missing = []
    for index, (key, etag) in enumerate(zip(keys, etags or [None] * len(keys), strict=True)):
        body = store.cached(database.name, key, etag)
        if body is None:
            missing.append(index)
            continue
        try:
            results[index] = transform(body)
        except Exception as error:  # one row's failure is reported, not raised
            failures[key] = failure_reason(error)

    def received(index: int, body: bytes | None) -> V | None:
        if body is None:
            if missing_ok:
                return None
            raise S3RequestError("NoSuchKey: the object was deleted after it was listed", code="NoSuchKey")
        return transform(body)

    def fetch(store: ObjectStore, index: int) -> V | None:
        return received(index, store.get(database.name, keys[index]))

    async def fetch_async(store: ObjectStore, index: int) -> V | None:
        return received(index, await store.get_async(database.name, keys[index]))

    fetched = _run(database, max_workers, missing, lambda index: keys[index], fetch, fetch_async, progress,
                   "s3aads read")
    for index, result in zip(missing, fetched.results, strict=True):
        results[index] = result
    return BatchResult(results, failures | fetched.failures)


def put_objects(
    database: Database,
    items: Sequence[tuple[str, bytes]],
    *,
    params: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    max_workers: int | None = None,
    progress: bool | None = None,
) -> BatchResult[None]:
    """PUT every (key, body) in parallel; with ``overwrite=False`` an existing key is a failure."""
    extra = dict(params or {})
    if extra:
        database.store.check_put_params(extra)

    def put(store: ObjectStore, item: tuple[str, bytes]) -> None:
        store.put(database.name, item[0], item[1], extra, overwrite=overwrite)

    async def put_async(store: ObjectStore, item: tuple[str, bytes]) -> None:
        await store.put_async(database.name, item[0], item[1], extra, overwrite=overwrite)

    return _run(database, max_workers, items, lambda item: item[0], put, put_async, progress, "s3aads write")
