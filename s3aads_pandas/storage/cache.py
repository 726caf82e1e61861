"""A folder of payloads on this machine, each filed under the version (ETag) S3 gave it.

A listing names each object's current ETag, so a payload filed under that ETag is the object's
current body: a changed object has a new ETag, and so is a miss by construction. Nothing is
stale and nothing needs expiring; the folder is only bounded, least recently used first.

Entries are written to a temporary file and renamed into place, so a reader sees a whole entry
or none, and several processes (Dask workers, two kernels) can share one folder. Each entry
carries a SHA-256 of its payload, checked on every read: a damaged or truncated entry is
dropped and the payload fetched again, never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

#: What a cache folder holds at most, by default: 1 GiB.
DEFAULT_MAX_BYTES = 1 << 30
#: The first bytes of every entry; a folder of another layout is never read as this one.
_MAGIC = b"s3aads-cache-1\n"
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

    ``where`` names the S3 endpoint, so that two endpoints' buckets of one name never meet. For
    each key, the ETag stored last is also kept: :meth:`latest` is what a conditional GET
    (If-None-Match) asks S3 about when no listing says which version is current.
    """

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._added = 0  # bytes this process added since it last counted the folder
        self._counted: int | None = None  # the folder's size when it was last counted

    def __repr__(self) -> str:
        return f"PayloadCache({str(self.folder)!r}, max_bytes={self.max_bytes:,})"

    # -- reading -------------------------------------------------------------------------------

    def get(self, where: str, bucket: str, key: str, etag: str) -> bytes | None:
        """The payload of that version of the key, or None (never a damaged one)."""
        path = self._entry(where, bucket, key, etag)
        try:
            content = path.read_bytes()
        except OSError:
            return None
        body = _payload(content)
        if body is None:
            logger.warning("a damaged cache entry was dropped and its payload will be fetched again: %s", path)
            _remove(path)
            return None
        _touch(path)  # recently used: trimmed last
        return body

    def latest(self, where: str, bucket: str, key: str) -> Cached | None:
        """The version of the key stored last, if its payload is still held."""
        try:
            etag = self._pointer(where, bucket, key).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        body = self.get(where, bucket, key, etag)
        return None if body is None else Cached(body, etag)

    # -- writing -------------------------------------------------------------------------------

    def put(self, where: str, bucket: str, key: str, etag: str, body: bytes) -> None:
        """File ``body`` under its ETag, and note that ETag as the key's latest. A cache that
        cannot be written (a full disk, no permission) is logged, never the caller's failure."""
        if not etag:
            return
        content = _MAGIC + hashlib.sha256(body).digest() + body
        try:
            self._write(self._entry(where, bucket, key, etag), content)
            self._write(self._pointer(where, bucket, key), etag.encode("utf-8"))
        except OSError as error:
            logger.warning("the payload cache in %s could not be written: %s", self.folder, error)
            return
        self._grew(len(content) + len(etag))

    def _write(self, path: Path, content: bytes) -> None:
        """Write atomically: a temporary file in the entry's folder, renamed over the entry."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.replace(temporary, path)
        except BaseException:
            _remove(Path(temporary))
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
        for path in self.folder.glob("*/*"):
            try:
                status = path.stat()
            except OSError:  # removed meanwhile, by another process
                continue
            files.append((status.st_mtime, status.st_size, path))
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

    # -- where entries are ---------------------------------------------------------------------

    def _entry(self, where: str, bucket: str, key: str, etag: str) -> Path:
        return self._path("entry", where, bucket, key, etag.strip('"'))

    def _pointer(self, where: str, bucket: str, key: str) -> Path:
        return self._path("latest", where, bucket, key)

    def _path(self, *parts: str) -> Path:
        """A file named by the hash of ``parts``: any key is a valid, short file name."""
        name = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / name[:2] / name[2:]


def _payload(content: bytes) -> bytes | None:
    """The payload of an entry's content, if its checksum holds."""
    if not content.startswith(_MAGIC) or len(content) < len(_MAGIC) + _DIGEST:
        return None
    digest, body = content[len(_MAGIC):len(_MAGIC) + _DIGEST], content[len(_MAGIC) + _DIGEST:]
    return body if hashlib.sha256(body).digest() == digest else None


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):  # trimmed meanwhile, by another process
        os.utime(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # removed meanwhile, by another process
        path.unlink()


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
