"""``memory://``: databases in this process's memory, one obstore ``MemoryStore`` each.

They are shared by every Database of the process that names them, and gone when it ends (Dask
workers in other processes do not see them). obstore's store keeps keys in key order, user
metadata, and makes both conditional writes (If-None-Match, If-Match) itself, atomically.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import obstore
from obstore.store import MemoryStore

from s3aads_pandas.storage.local_transport import LocalTransport
from s3aads_pandas.storage.transport import Listed, Written

URL = "memory://"

_databases: dict[str, MemoryStore] = {}
_databases_lock = threading.Lock()


class MemoryTransport(LocalTransport[MemoryStore]):
    """The databases of this process's memory."""

    def __init__(self) -> None:
        super().__init__(URL)

    def _store(self, bucket: str) -> MemoryStore:
        store = _databases.get(bucket)
        if store is None:
            raise self._missing(bucket)
        return store

    def _keys(self, store: MemoryStore, prefix: str, after: str | None) -> Iterator[Listed]:
        folder = prefix[: max(prefix.rfind("/"), 0)] or None
        for chunk in obstore.list(store, folder, offset=after):
            for obj in chunk:
                key = obj["path"]
                if key.startswith(prefix):
                    yield Listed(key, obj["size"], obj["last_modified"], obj["e_tag"])
                elif key > prefix:
                    return

    def _folders(self, store: MemoryStore, prefix: str) -> list[str]:
        folder = prefix[: max(prefix.rfind("/"), 0)] or None
        listed = obstore.list_with_delimiter(store, folder)
        return sorted(f"{name}/" for name in listed["common_prefixes"] if f"{name}/".startswith(prefix))

    def _write(self, store: MemoryStore, key: str, body: bytes, attributes: dict[str, str] | None,
               condition: Mapping[str, str]) -> Written:
        mode: Any = "overwrite"
        if condition.get("IfNoneMatch") == "*":
            mode = "create"
        elif "IfMatch" in condition:
            mode = {"e_tag": condition["IfMatch"]}
        written = obstore.put(store, key, body, attributes=attributes, mode=mode)
        return Written(str(written["e_tag"]))

    def _remove(self, store: MemoryStore, key: str) -> None:
        obstore.delete(store, key)

    def list_buckets(self) -> list[str]:
        self._announce("ListBuckets", "")
        with _databases_lock:
            return sorted(_databases)

    def _create(self, bucket: str) -> bool:
        with _databases_lock:
            if bucket in _databases:
                return False
            _databases[bucket] = MemoryStore()
            return True


def forget_all() -> None:
    """Forget every ``memory://`` database of this process (as a test that starts empty needs)."""
    with _databases_lock:
        _databases.clear()
