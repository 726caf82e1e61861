"""Bulk payload transfers of one database: many GETs or PUTs on the parallel executor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from s3aads_pandas.errors import S3RequestError, failure_reason
from s3aads_pandas.tables.datastore import Database
from s3aads_pandas.tables.executor import BatchResult, run_each

V = TypeVar("V")


def _workers(database: Database, max_workers: int | None) -> tuple[Any, int]:
    return database.store_for(max_workers or database.settings.max_workers)


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
    store, workers = _workers(database, max_workers)
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

    def fetch(index: int) -> V | None:
        body = store.get(database.name, keys[index])
        if body is None:
            if missing_ok:
                return None
            raise S3RequestError("NoSuchKey: the object was deleted after it was listed", code="NoSuchKey")
        return transform(body)

    fetched = run_each(fetch, missing, label=lambda index: keys[index], max_workers=workers, progress=progress,
                       desc="s3aads read")
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
    store, workers = _workers(database, max_workers)
    extra = dict(params or {})
    if extra:
        store.check_put_params(extra)

    def put(item: tuple[str, bytes]) -> None:
        store.put(database.name, item[0], item[1], extra, overwrite=overwrite)

    return run_each(
        put, items, label=lambda item: item[0], max_workers=workers, progress=progress, desc="s3aads write"
    )
