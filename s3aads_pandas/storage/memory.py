"""``memory://``: databases in this process's memory, one obstore ``MemoryStore`` each.

They are shared by every Database of the process that names them, and gone when it ends (Dask
workers in other processes do not see them). obstore's store keeps keys in key order, user
metadata, and makes both conditional writes (If-None-Match, If-Match) itself, atomically.
"""

from __future__ import annotations

import threading

from obstore.store import MemoryStore

from s3aads_pandas.storage.obstore_transport import ObstoreTransport

URL = "memory://"

_databases: dict[str, MemoryStore] = {}
_databases_lock = threading.Lock()


class MemoryTransport(ObstoreTransport[MemoryStore]):
    """The databases of this process's memory."""

    def __init__(self) -> None:
        super().__init__(URL)

    def _store(self, bucket: str) -> MemoryStore:
        store = _databases.get(bucket)
        if store is None:
            raise self._missing(bucket)
        return store

    def list_buckets(self) -> list[str]:
        self._announce("ListBuckets", "")
        with _databases_lock:
            return sorted(_databases)

    def create_bucket(self, bucket: str) -> None:
        self._create(bucket, lambda: _made(bucket))


def _made(bucket: str) -> bool:
    """Make the database ``bucket``; False when it exists."""
    with _databases_lock:
        if bucket in _databases:
            return False
        _databases[bucket] = MemoryStore()
        return True


def forget_all() -> None:
    """Forget every ``memory://`` database of this process (as a test that starts empty needs)."""
    with _databases_lock:
        _databases.clear()
