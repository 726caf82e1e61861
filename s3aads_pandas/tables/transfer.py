"""Bulk payload transfers of one database: many GETs or PUTs on the parallel executor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from s3aads_pandas.errors import S3RequestError
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

    ``etags`` are the versions a listing named, which the cache may hold (then no GET is sent).
    A missing key gives None with ``missing_ok``, else it is a failure (it was listed, so it
    was deleted meanwhile).
    """
    store, workers = _workers(database, max_workers)

    def fetch(item: tuple[str, str | None]) -> V | None:
        key, etag = item
        body = store.get(database.name, key) if etag is None else store.get_listed(database.name, key, etag)
        if body is None:
            if missing_ok:
                return None
            raise S3RequestError("NoSuchKey: the object was deleted after it was listed", code="NoSuchKey")
        return transform(body)

    items = list(zip(keys, etags or [None] * len(keys), strict=True))
    return run_each(fetch, items, label=lambda item: item[0], max_workers=workers, progress=progress,
                    desc="s3aads read")


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
