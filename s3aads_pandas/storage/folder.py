"""``file:///path``: databases that are folders of ``/path`` on this machine, through obstore's
``LocalStore``; a table is a folder of its database, each key segment a folder, each row a file.

What a folder lacks, this module gives it:

- **Key order.** A directory lists in no order: keys are walked folder by folder, each sorted
  as S3 sorts keys (a folder ``a`` sorts as ``a/``), so listings come in key order and resume
  after a key without walking what comes before it.
- **If-Match.** ``LocalStore`` has no conditional overwrite: every write and delete of a key
  holds an exclusive lock on one of the database's :data:`LOCKS` lock files (chosen by the key,
  in ``.s3aads-locks/``; ``fcntl.flock``, which every process of this machine respects), under
  which an If-Match write compares the ETag first. Writes of keys under other locks go on in
  parallel. Without ``fcntl`` (Windows) a conditional write is refused, never made unconditional.
- **No empty folders.** A delete removes the folders it leaves empty, so that a table without
  rows is no longer listed.

Files keep only the payload: no content type and no user metadata.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import obstore
from obstore.exceptions import PreconditionError
from obstore.store import LocalStore

from s3aads_pandas.errors import InvalidArgumentError, S3RequestError
from s3aads_pandas.storage.obstore_transport import ObstoreTransport
from s3aads_pandas.storage.transport import Listed, Written

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SCHEME = "file://"
#: The folder of a database's lock files, and how many there are (a key's is its CRC-32 modulo).
LOCK_FOLDER = ".s3aads-locks"
LOCKS = 64
#: The files that LocalStore writes before it renames them into place (``<key>#<n>``); it refuses
#: to write a key whose last segment looks so, but a folder's name may (``t/a#1/x``).
_STAGED = re.compile(r"#\d+$")


def folder_path(url: str) -> Path:
    """The folder a ``file:///path`` URL names (``~`` is the home folder)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost", "~"):
        raise InvalidArgumentError(f"a folder URL is file:///absolute/path, got {url!r}")
    path = urllib.parse.unquote(parsed.path)
    return Path("~" + path).expanduser() if parsed.netloc == "~" else Path(path)


class FolderTransport(ObstoreTransport[LocalStore]):
    """The databases that are folders of ``root``."""

    keeps_metadata = False

    def __init__(self, root: Path) -> None:
        super().__init__(f"{SCHEME}{root.as_posix().rstrip('/')}/")
        self.root = root
        self._stores: dict[str, LocalStore] = {}

    def _store(self, bucket: str) -> LocalStore:
        store = self._stores.get(bucket)
        if store is None:
            if not (self.root / bucket).is_dir():
                raise self._missing(bucket)
            store = self._stores.setdefault(bucket, LocalStore(self.root / bucket))
        return store

    def _folder(self, store: LocalStore) -> Path:
        return Path(str(store.prefix))

    # -- listing -------------------------------------------------------------------------------

    def _keys(self, store: LocalStore, prefix: str, after: str | None) -> Iterator[Listed]:
        base = prefix[: prefix.rfind("/") + 1]
        return self._walk(self._folder(store) / base, base, prefix, after)

    def _walk(self, folder: Path, base: str, prefix: str, after: str | None) -> Iterator[Listed]:
        """The files under ``folder`` (whose keys start with ``base``) in key order, skipping
        what does not start with ``prefix`` and what is not after ``after``."""
        for name, entry in _sorted_entries(folder, top=base == ""):
            key = base + name
            if not (key.startswith(prefix) or prefix.startswith(key)):
                continue
            if name.endswith("/"):
                if after is None or after < key or after.startswith(key):  # else all of it is before `after`
                    yield from self._walk(Path(entry.path), key, prefix, after)
            elif after is None or key > after:
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # deleted since the folder was read
                    continue
                yield Listed(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc), _etag(stat))

    def _folders(self, store: LocalStore, prefix: str) -> list[str]:
        base = prefix[: prefix.rfind("/") + 1]
        root = self._folder(store)
        return [base + name for name, entry in _sorted_entries(root / base, top=base == "")
                if name.endswith("/") and (base + name).startswith(prefix)
                and next(self._walk(Path(entry.path), base + name, "", None), None) is not None]

    # -- writes --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, store: LocalStore, key: str, conditional: bool) -> Iterator[None]:
        """Hold the write lock of ``key`` (every process of this machine respects it)."""
        if fcntl is None:
            if conditional:
                raise S3RequestError(f"{self.url} databases make conditional writes with fcntl file locks, "
                                     "which this system lacks: use overwrite=True, or an S3 database")
            yield
            return
        locks = self._folder(store) / LOCK_FOLDER
        path = locks / str(zlib.crc32(key.encode("utf-8", "surrogatepass")) % LOCKS)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the database's first write
            locks.mkdir(exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _failed(self, error: Exception, bucket: str, key: str | None) -> Exception:
        if key is not None and _STAGED.search(key):
            return InvalidArgumentError(
                f"{self.url} databases cannot hold the key {key!r}: a file name that ends in '#' and digits is "
                "how obstore names a partial write; give that column such values in a memory:// or S3 database")
        return super()._failed(error, bucket, key)

    def _write(self, store: LocalStore, key: str, body: bytes, attributes: dict[str, str] | None,
               condition: Mapping[str, str]) -> Written:
        with self._locked(store, key, conditional=bool(condition)):
            if "IfMatch" in condition:
                etag = obstore.head(store, key)["e_tag"]  # NotFoundError when there is no such key
                if etag != condition["IfMatch"]:
                    raise PreconditionError(f"{etag} does not match {condition['IfMatch']}")
            mode: Literal["create", "overwrite"] = "create" if condition.get("IfNoneMatch") == "*" else "overwrite"
            written = obstore.put(store, key, body, mode=mode)
        return Written(str(written["e_tag"]))

    def _remove(self, store: LocalStore, key: str) -> None:
        root = self._folder(store)
        with self._locked(store, key, conditional=False):
            with contextlib.suppress(FileNotFoundError):
                obstore.delete(store, key)
            for parent in (root / key).parents:
                if parent == root or not parent.is_relative_to(root):
                    break
                try:
                    parent.rmdir()
                except OSError:  # not empty, or gone
                    break

    # -- databases -----------------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        self._announce("ListBuckets", "")
        try:
            return sorted(entry.name for entry in os.scandir(self.root)
                          if entry.is_dir() and not entry.name.startswith("."))
        except FileNotFoundError:
            return []

    def create_bucket(self, bucket: str) -> None:
        self._create(bucket, lambda: _made(self.root / bucket))


def _made(folder: Path) -> bool:
    """Make the database's folder; False when it exists."""
    if folder.is_dir():
        return False
    folder.mkdir(parents=True)
    return True


def _etag(stat: os.stat_result) -> str:
    """The ETag LocalStore gives the file: its inode, modification time (µs) and size."""
    return f'"{stat.st_ino:x}-{stat.st_mtime_ns // 1000:x}-{stat.st_size:x}"'


def _sorted_entries(folder: Path, top: bool) -> list[tuple[str, os.DirEntry[str]]]:
    """A folder's entries in key order, a folder's name ending in ``/``; none when it is gone.
    The ``top`` folder of a database hides its lock files."""
    named = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):  # a folder is never staged: `t/a#1/x` is a key
                    if not (top and entry.name == LOCK_FOLDER):
                        named.append((entry.name + "/", entry))
                elif not _STAGED.search(entry.name):
                    named.append((entry.name, entry))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(named, key=lambda pair: pair[0])
