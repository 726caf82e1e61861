"""A folder of payloads on this machine, each filed under the version (ETag) S3 gave it.

A listing names each object's current ETag, so a payload filed under that ETag is the object's
current body: a changed object has a new ETag, and so is a miss by construction. Nothing is
stale and nothing needs expiring; the folder is only bounded, least recently used first.

A key's entry is one file: its ETag, a SHA-256 of the two, and the payload. It is written to a
temporary file and renamed into place, so a reader sees a whole entry or none, and several
processes (Dask workers, two kernels) can share one folder. The checksum is checked on every
read: a damaged or truncated entry is dropped and the payload fetched again, never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

#: What a cache folder holds at most, by default: 1 GiB.
DEFAULT_MAX_BYTES = 1 << 30
#: The first bytes of every entry; a folder of another layout is never read as this one.
_MAGIC = b"s3aads-cache-2\n"
_DIGEST = hashlib.sha256().digest_size
#: The share of the bound a process may add before it counts the folder again: other processes
#: add too, so the folder can exceed its bound by this share for each process that writes to it.
_RECOUNT_SHARE = 0.1
#: Trimming frees down to this share of the bound, so that the next entries do not trim again.
_TRIM_TO = 0.9


class Cached(NamedTuple):
    """A payload the cache holds, and the ETag it is filed under."""

    body: bytes
    etag: str


class PayloadCache:
    """Payloads by (where, bucket, key, ETag) in ``folder``, at most ``max_bytes`` of them.

    ``where`` names the S3 endpoint, so that two endpoints' buckets of one name never meet. One
    file holds the version of a key stored last, with its ETag: another version is a miss, and
    :meth:`latest` is what a conditional GET (If-None-Match) asks S3 about when no listing says
    which version is current.
    """

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._added = 0  # bytes this process added since it last counted the folder
        self._counted: int | None = None  # the folder's size when it was last counted
        self._made: set[str] = set()  # the subfolders this process knows exist

    def __repr__(self) -> str:
        return f"PayloadCache({str(self.folder)!r}, max_bytes={self.max_bytes:,})"

    # -- reading -------------------------------------------------------------------------------

    def get(self, where: str, bucket: str, key: str, etag: str) -> bytes | None:
        """The payload of that version of the key, or None (never a damaged one)."""
        held = self.latest(where, bucket, key)
        return held.body if held is not None and held.etag.strip('"') == etag.strip('"') else None

    def latest(self, where: str, bucket: str, key: str) -> Cached | None:
        """The version of the key stored last, with its ETag, if it is whole."""
        path = self._file(where, bucket, key)
        try:
            with open(path, "rb") as file:
                content = file.read()
        except OSError:
            return None
        held = _entry(content)
        if held is None:
            logger.warning("a damaged cache entry was dropped and its payload will be fetched again: %s", path)
            _remove(path)
            return None
        _touch(path)  # recently used: trimmed last
        return held

    # -- writing -------------------------------------------------------------------------------

    def put(self, where: str, bucket: str, key: str, etag: str, body: bytes) -> None:
        """Keep ``body`` as the key's version ``etag``. A cache that cannot be written (a full
        disk, no permission) is logged, never the caller's failure."""
        if not etag:
            return
        tag = etag.encode("utf-8")
        content = b"".join((_MAGIC, len(tag).to_bytes(2, "big"), tag, _digest(tag, body), body))
        try:
            self._write(self._file(where, bucket, key), content)
        except OSError as error:
            logger.warning("the payload cache in %s could not be written: %s", self.folder, error)
            self._made.clear()  # the folder may have been removed: make it again next time
            return
        self._grew(len(content))

    def _write(self, path: str, content: bytes) -> None:
        """Write atomically: a temporary file in the entry's folder, renamed over the entry."""
        parent = os.path.dirname(path)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        temporary = f"{parent}/.partial-{uuid.uuid4().hex}"
        try:
            with open(temporary, "xb") as file:
                file.write(content)
            os.replace(temporary, path)
        except BaseException:
            _remove(temporary)
            raise

    # -- bounding ------------------------------------------------------------------------------

    def _grew(self, size: int) -> None:
        with self._lock:
            self._added += size
            known = self._counted
            if known is not None and known + self._added <= self.max_bytes and self._added < self._recount_after:
                return
            self._trim()

    @property
    def _recount_after(self) -> int:
        return max(1, int(self.max_bytes * _RECOUNT_SHARE))

    def _trim(self) -> None:
        """Count the folder; when it holds more than the bound, remove the least recently used
        files until it holds :data:`_TRIM_TO` of it (under the lock)."""
        files = []
        for found in self.folder.glob("*/*"):
            try:
                status = found.stat()
            except OSError:  # removed meanwhile, by another process
                continue
            files.append((status.st_mtime, status.st_size, str(found)))
        total = sum(size for _, size, _ in files)
        if total > self.max_bytes:
            files.sort()
            goal = self.max_bytes * _TRIM_TO
            for _, size, path in files:
                if total <= goal:
                    break
                _remove(path)
                total -= size
            logger.debug("the payload cache in %s was trimmed to %d bytes", self.folder, total)
        self._counted, self._added = total, 0

    def _file(self, where: str, bucket: str, key: str) -> str:
        """The entry's file, named by a hash: any key is a valid, short file name."""
        name = hashlib.sha256(f"{where}\0{bucket}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.folder}/{name[:2]}/{name[2:]}"


def _digest(tag: bytes, body: bytes) -> bytes:
    return hashlib.sha256(len(tag).to_bytes(2, "big") + tag + body).digest()


def _entry(content: bytes) -> Cached | None:
    """The payload and ETag an entry holds, if its checksum holds."""
    start = len(_MAGIC) + 2
    if not content.startswith(_MAGIC) or len(content) < start:
        return None
    length = int.from_bytes(content[start - 2:start], "big")
    tag, digest = content[start:start + length], content[start + length:start + length + _DIGEST]
    body = content[start + length + _DIGEST:]
    if len(digest) < _DIGEST or _digest(tag, body) != digest:
        return None
    return Cached(body, tag.decode("utf-8", "replace"))


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):  # trimmed meanwhile, by another process
        os.utime(path)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):  # removed meanwhile, by another process
        os.unlink(path)


_opened: dict[tuple[Path, int], PayloadCache] = {}
_opened_lock = threading.Lock()


def open_cache(folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> PayloadCache:
    """The process's one :class:`PayloadCache` of ``folder``: the databases that share a folder
    share what this process knows of its size."""
    folder = folder.expanduser().resolve()
    with _opened_lock:
        cache = _opened.get((folder, max_bytes))
        if cache is None:
            cache = _opened[(folder, max_bytes)] = PayloadCache(folder, max_bytes)
        return cache
