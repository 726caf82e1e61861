"""``Database`` and ``Table``: the datastore API of s3aads, on the S3 adapter and the key codec.

A database is an S3 bucket and a table a top-level "folder" of it; the two live in one module
because each hands out the other (``Database.get_table``, ``Table(name, "bucket-name")``).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from s3aads_pandas.config import ConnectionSettings, default_settings
from s3aads_pandas.errors import (
    ColumnError,
    ColumnsNotSetError,
    InvalidArgumentError,
    PayloadTypeError,
    SchemaMismatchError,
    UnknownSortFieldError,
)
from s3aads_pandas.storage.adapter import PAGE_SIZE, Listed, ObjectStore
from s3aads_pandas.storage.buckets import lists_in_key_order
from s3aads_pandas.storage.connect import S3_SCHEME, open_store, split_database_url
from s3aads_pandas.storage.listing import Lister
from s3aads_pandas.tables import column_record
from s3aads_pandas.tables.compat import LISTED_FIELDS, DatabaseCompat, TableCompat
from s3aads_pandas.tables.keys import (
    KeyCodec,
    decode_segment,
    validate_columns,
    validate_database_name,
    validate_folder_name,
    validate_table_name,
)
from s3aads_pandas.tables.rows import Row, folder_values, matching_rows, objects_under

logger = logging.getLogger(__name__)

#: What listings hand out: rows, or the objects of a table without columns.
T = TypeVar("T", Row, Listed)

class Database(DatabaseCompat):
    """An S3 bucket, or a database on this machine. Nothing is sent until a method needs it.

    ``name`` is a bucket, ``s3://bucket``, ``memory://name`` (in this process's memory) or
    ``file:///path/to/db`` (a folder); a plain name is a database of the settings' ``root``
    (S3 unless configured). Connection settings come from :func:`s3aads_pandas.configure`
    unless given here, as a :class:`ConnectionSettings` or as keyword arguments
    (``endpoint_url=...``, ``client=...``).
    """

    def __init__(self, name: str, settings: ConnectionSettings | None = None, **connection: Any) -> None:
        base = settings if settings is not None else default_settings()
        url = split_database_url(name) if isinstance(name, str) else None
        if url is not None:
            connection = {**connection, "root": url.root}
            name = url.name
        self.settings = base.replace(**connection) if connection else base
        local = self.settings.root is not None
        self.name = validate_folder_name(name) if local else validate_database_name(name)
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()
        self._recorded: dict[str, column_record.TableRecord] = {}
        self._wide_stores: dict[int, ObjectStore] = {}

    def __repr__(self) -> str:
        if self.settings.root is not None:
            return f"Database({self.reference!r})"
        endpoint = f", endpoint_url={self.settings.endpoint_url!r}" if self.settings.endpoint_url else ""
        return f"Database({self.name!r}{endpoint})"

    @property
    def url(self) -> str:
        """The URL that names this database: ``s3://bucket``, ``memory://name``, ``file:///path``."""
        return f"{self.settings.root or S3_SCHEME}{self.name}"

    @property
    def reference(self) -> str:
        """What names this database in messages and code: its bucket name, or its URL."""
        return self.name if self.settings.root is None else self.url

    @property
    def store(self) -> ObjectStore:
        """The S3 adapter, with a client made on first use and shared by every thread."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.settings)
        return self._store

    @property
    def store_opened(self) -> bool:
        """Whether :attr:`store` is made (making it makes clients, which takes a while)."""
        return self._store is not None

    def store_for(self, workers: int) -> tuple[ObjectStore, int]:
        """A store whose connection pool fits ``workers`` threads, and the workers it allows.

        A client handed over by the caller cannot be resized: its pool size caps the workers.
        """
        if workers <= self.settings.max_workers:
            return self.store, workers
        if self.settings.client is not None:
            pool = self.settings.client.meta.config.max_pool_connections
            if workers > pool:
                logger.warning("using %d workers, the connection pool size of the given client", pool)
            return self.store, min(workers, pool)
        with self._lock:
            if workers not in self._wide_stores:
                wider = self.settings.replace(max_workers=workers)
                self._wide_stores[workers] = open_store(wider)
            return self._wide_stores[workers], workers

    @classmethod
    def list_databases(cls, settings: ConnectionSettings | None = None, **connection: Any) -> list[str]:
        """Names of all buckets the credentials can see, or of the databases of the ``root``."""
        base = settings if settings is not None else default_settings()
        chosen = base.replace(**connection) if connection else base
        return open_store(chosen).list_buckets()

    def create(self) -> bool:
        """Create the bucket; False (and nothing happens) when this account already has it."""
        return self.store.create_bucket(self.name)

    def exists(self) -> bool:
        return self.store.bucket_exists(self.name)

    @property
    def lists_in_key_order(self) -> bool:
        """Whether listings of this database come in key order (those of a directory bucket do not)."""
        return lists_in_key_order(self.name)

    def in_key_order(self, listed: Iterable[T]) -> list[T]:
        """Listed rows or objects, kept, in key order: sorted when the bucket lists in no order."""
        kept = list(listed)
        return kept if self.lists_in_key_order else sorted(kept, key=lambda item: item.key)

    def lister(self) -> Lister:
        """The listing engine over this database, with as many LISTs in flight as workers."""
        return Lister(self.store, self.name, self.settings.max_workers)

    def folder_values(self, prefix: str) -> set[str]:
        """The values of the "folders" under ``prefix`` (a Delimiter listing, 1,000 a request)."""
        return folder_values(self.store.iter_common_prefixes(self.name, prefix), prefix, self.name)

    @property
    def tables(self) -> list[str]:
        """Names of the tables, sorted: the top-level "folders" of the bucket (column records hidden)."""
        return sorted(p[:-1] for p in self.store.iter_common_prefixes(self.name, prefix=""))

    def get_table(
        self,
        name: str | None = None,
        columns: Sequence[str] | None = None,
        *,
        infer_columns: bool = False,
        table_name: str | None = None,
    ) -> Table | None:
        """The table ``name`` with its recorded columns, or None when it has no rows.

        A table exists while it has rows, as in ``tables``: a column record left without rows
        (every row deleted, or the table dropped by s3aads 2.x) gives None, and keeps its columns
        for the next write. A table written by s3aads 2.x has no record: its columns are then
        ``columns`` when given, ``col1..colN`` from the depth of its first key with
        ``infer_columns=True``, or unknown (the key-level methods work without them).
        ``table_name=`` is s3aads 2.x's name for ``name``.
        """
        name = validate_table_name(_renamed("name", name, "table_name", table_name))
        first = next(self.store.iter_objects(self.name, f"{name}/", first_page=1), None)
        if first is None:
            return None
        recorded = self.recorded_columns(name)
        if columns or recorded is not None:
            return Table(name, self, list(columns or recorded or ()))
        if infer_columns:
            depth = len(first.key.split("/")) - 1
            return Table(name, self, [f"col{i}" for i in range(1, depth + 1)])
        return Table(name, self)

    def drop_table(self, name: str | None = None, *, table_name: str | None = None) -> int:
        """Delete every object of the table and its record (DeleteObjects, 1,000 keys a request).

        Returns how many objects were deleted under the table's prefix. ``table_name=`` is
        s3aads 2.x's name for ``name``.
        """
        name = validate_table_name(_renamed("name", name, "table_name", table_name))
        keys = (obj.key for obj in self.lister().objects(f"{name}/"))
        deleted = self.store.delete_many(self.name, itertools.chain(keys, [column_record.record_key(name)]))
        with self._lock:
            self._recorded.pop(name, None)
        logger.info("dropped table %s of %s (%d objects)", name, self.name, deleted - 1)
        return deleted - 1

    # -- column records, used by Table ---------------------------------------------------------

    def knows_record(self, table: str) -> bool:
        """Whether the record of ``table`` is in hand: checking a write against it sends nothing."""
        return table in self._recorded

    def recorded_columns(self, table: str) -> tuple[str, ...] | None:
        """The columns recorded for ``table`` (one GET, then cached), or None without a record."""
        record = self.table_record(table)
        return record.columns if record else None

    def table_record(self, table: str) -> column_record.TableRecord | None:
        """The record of ``table`` (one GET, then cached): its columns and, for a dataset
        table, its objects' format; None without a record."""
        known = self._recorded.get(table)
        if known is None:
            known = column_record.read_record(self.store, self.name, table)
            if known is not None:
                with self._lock:
                    self._recorded[table] = known
        return known

    def ensure_recorded(self, table: str, columns: Sequence[str], dataset: str | None = None) -> None:
        """Record ``columns`` for ``table`` unless recorded (with ``dataset``, the format of a
        dataset table's objects); refuse columns that contradict the record.

        The record is written with If-None-Match, so when two first writers race, the one whose
        record lost reads the winner's and is refused if its columns differ.
        """
        columns = validate_columns(columns)
        recorded = self.recorded_columns(table)
        if recorded is None:
            record = column_record.TableRecord(columns, dataset)
            if column_record.write_record(self.store, self.name, table, record):
                with self._lock:
                    self._recorded[table] = record
                return
            recorded = self.recorded_columns(table)
        if recorded != columns:
            raise SchemaMismatchError(
                f"table {table!r} of database {self.name!r} is recorded with columns "
                f"{list(recorded or ())}, not {list(columns)}; use Database({self.reference!r})"
                f".get_table({table!r}) or give the recorded columns"
            )

SORT_FIELDS = tuple(LISTED_FIELDS)


class Versioned(NamedTuple):
    """A row's payload with the ETag that identifies this version of it."""

    data: bytes
    etag: str


class Table(TableCompat):
    """A top-level "folder" of a bucket whose further key segments are the columns.

    ``database`` is a :class:`Database` or a bucket name. Without ``columns`` the table uses
    the columns recorded in the bucket, if any.
    """

    database: Database

    def __init__(self, name: str, database: Database | str, columns: Sequence[str] | None = None) -> None:
        self.name = validate_table_name(name)
        self.database = database if isinstance(database, Database) else Database(database)
        self._columns = validate_columns(columns) if columns else None
        self._codec: KeyCodec | None = None

    def __repr__(self) -> str:
        columns = list(self._columns) if self._columns is not None else "<not loaded>"
        return f"Table({self.name!r}, database={self.database.reference!r}, columns={columns})"

    # -- columns ----------------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The key columns: as given or set, else as recorded in the bucket, else empty."""
        if self._columns is None:
            recorded = self.database.recorded_columns(self.name)
            if recorded is None:
                return []
            self._columns = recorded
        return list(self._columns)

    @columns.setter
    def columns(self, columns: Sequence[str]) -> None:
        """``table.columns = [...]``, as s3aads 2.x code does after ``get_table``."""
        self._columns = validate_columns(columns) if columns else None

    @property
    def codec(self) -> KeyCodec:
        columns = self.columns
        if not columns:
            raise ColumnsNotSetError(
                f"table {self.name!r} has no columns: pass columns=[...] to Table(), or use "
                f"Database({self.database.reference!r}).get_table({self.name!r}, infer_columns=True) "
                "for a table written without a column record"
            )
        if self._codec is None or list(self._codec.columns) != columns:  # made once: a row's call pays no validation
            self._codec = KeyCodec(self.name, columns)
        return self._codec

    def ready(self, *, writing: bool = False) -> bool:
        """Whether naming a row sends no request: its columns are in hand (for a write, known to
        be recorded in the bucket as well)."""
        return self._columns is not None and (not writing or self.database.knows_record(self.name))

    # -- rows by column values --------------------------------------------------------------------

    def to_key(self, **columns: Any) -> str:
        """The S3 key of a row, table name included (``daily-data/1/2020/01/01``)."""
        return self.codec.to_key(columns)

    def insert(
        self,
        data: bytes,
        metadata: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = True,
        **columns: Any,
    ) -> dict[str, Any]:
        """Store ``data`` as the row named by ``columns`` (one PUT once the table is recorded).

        ``metadata`` passes S3 PutObject parameters through (ContentType, Metadata,
        ServerSideEncryption, ...). With ``overwrite=False`` the write is conditional
        (If-None-Match) and an existing row raises :class:`RowExistsError`. The first write
        records the table's columns in the bucket.
        """
        key, body, params = self.checked_write(data, metadata, columns)
        return self.database.store.put(self.database.name, key, body, params, overwrite=overwrite).as_response()

    def insert_string(
        self,
        data: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = True,
        **columns: Any,
    ) -> dict[str, Any]:
        """Store a str as UTF-8."""
        return self.insert(utf8_payload(data), metadata, overwrite=overwrite, **columns)

    def select_with_etag(self, **columns: Any) -> Versioned | None:
        """The payload and ETag of one row (one GET), for a later :meth:`update`; None if missing."""
        found = self.database.store.get_with_etag(self.database.name, self.to_key(**columns))
        return None if found is None else Versioned(*found)

    def update(
        self,
        data: bytes,
        if_match: str,
        metadata: Mapping[str, Any] | None = None,
        **columns: Any,
    ) -> dict[str, Any]:
        """Replace a row only if it is unchanged since ``select_with_etag`` gave ``if_match``.

        One conditional PUT (If-Match); a row changed or deleted meanwhile raises
        :class:`RowChangedError`, and nothing is written. When an attempt's answer was lost and
        what is stored cannot tell whether it landed, :class:`WriteOutcomeUnknownError` says so.
        """
        key, body, params = self.checked_write(data, metadata, columns)
        return self.database.store.put_if_match(self.database.name, key, body, if_match, params).as_response()

    def checked_write(
        self, data: Any, metadata: Mapping[str, Any] | None, columns: Mapping[str, Any]
    ) -> tuple[str, bytes, dict[str, Any]]:
        """Everything a row write needs, checked before anything is sent; the table recorded."""
        body = _payload(data)
        key = self.to_key(**columns)
        params = metadata if metadata is not None else {}
        self.database.store.check_put_params(params)
        self.database.ensure_recorded(self.name, self.codec.columns)
        return key, body, dict(params)

    def select(self, **columns: Any) -> bytes | None:
        """The payload of one row, or None when there is no such row (one GET)."""
        return self.database.store.get(self.database.name, self.to_key(**columns))

    def select_string(self, **columns: Any) -> str | None:
        return text(self.select(**columns))

    def delete(self, **columns: Any) -> dict[str, Any]:
        """Delete one row (one DeleteObject; no error when it does not exist, as in S3)."""
        return self.database.store.delete(self.database.name, self.to_key(**columns))

    def query(self, **filters: Any) -> list[dict[str, str]]:
        """Rows whose columns equal the filters exactly; a list of values means any of them.

        Filters on leading columns narrow the S3 listing to their prefix.
        """
        return self.decoded(self.iter_rows(**filters))

    def decoded(self, rows: Iterable[Row]) -> list[dict[str, str]]:
        """Listed rows as :meth:`query` returns them: their columns, in key order."""
        codec = self.codec
        return [codec.decode(row.segments) for row in self.database.in_key_order(rows)]

    # -- rows by key ------------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """``<table>/<key>``: the S3 key of a row given by its key."""
        return f"{self.name}/{key}"

    def insert_by_key(self, key: str, data: bytes, **params: Any) -> dict[str, Any]:
        """Store ``data`` at ``<table>/<key>``; ``params`` are S3 PutObject parameters."""
        body = self.checked_write_by_key(data, params)
        return self.database.store.put(self.database.name, self.full_key(key), body, params).as_response()

    def checked_write_by_key(self, data: Any, params: Mapping[str, Any]) -> bytes:
        """The payload of a write by key, checked with its parameters before anything is sent."""
        body = _payload(data)
        self.database.store.check_put_params(params)
        return body

    def select_by_key(self, key: str) -> bytes | None:
        """The payload at ``<table>/<key>``, or None (one GET)."""
        return self.database.store.get(self.database.name, self.full_key(key))

    def delete_by_key(self, key: str) -> dict[str, Any]:
        return self.database.store.delete(self.database.name, self.full_key(key))

    def query_by_key(self, key: str = "", sort_by: str | None = None) -> list[str]:
        """Keys (without the table name) that start with ``key``: a raw prefix match."""
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise UnknownSortFieldError(
                f"sort_by must be one of {', '.join(SORT_FIELDS)}, got {sort_by!r}"
            )
        objects = list(self.database.store.iter_objects(self.database.name, self.full_key(key)))
        if sort_by or not self.database.lists_in_key_order:
            field = LISTED_FIELDS[sort_by or "Key"]
            objects.sort(key=lambda obj: (getattr(obj, field) is None, getattr(obj, field)))  # what is unknown last
        start = len(self.name) + 1
        return [obj.key[start:] for obj in objects]

    # -- listings ---------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Keys (without the table name) of every row; of every object under the table when its
        columns are unknown (a table of s3aads 2.x), as s3aads 2.x lists them."""
        if not self.columns:  # every object under the table, whatever its depth
            return self.keys_of(self.database.lister().objects(f"{self.name}/"))
        return self.keys_of(self.iter_rows())

    def keys_of(self, listed: Iterable[T]) -> list[str]:
        """The keys of listed rows or objects as :attr:`keys` gives them: without the table's
        name, in key order."""
        start = len(self.name) + 1
        return [item.key[start:] for item in self.database.in_key_order(listed)]

    def count(self, **filters: Any) -> int:
        """Number of rows (matching the filters, if any); of objects, for a table without columns."""
        if not filters and not self.columns:
            return sum(1 for _ in self.database.lister().objects(f"{self.name}/"))
        return sum(1 for _ in self.iter_rows(**filters))  # counted as listed, not held

    def distinct(self, columns: Sequence[str] | str, **filters: Any) -> list[tuple[str, ...]]:
        """Distinct combinations of ``columns`` among the rows matching ``filters``, sorted.

        The next column after fully given leading columns (the first column, with no filters)
        is read with a Delimiter listing: one request per 1,000 values, not per 1,000 rows.
        """
        chosen = [columns] if isinstance(columns, str) else list(columns)
        codec = self.codec
        if not chosen:
            raise ColumnError(f"distinct needs at least one column of {', '.join(codec.columns)}")
        codec.check_known(chosen)
        encoded = codec.encode_filters(filters)
        position = codec.columns.index(chosen[0])
        delimited = (
            len(chosen) == 1
            and position < len(codec.columns) - 1
            and set(encoded) == set(codec.columns[:position])
            and all(len(values) == 1 for values in encoded.values())
        )
        if delimited:
            (prefix,) = codec.listing_prefixes(encoded)
            return sorted((value,) for value in self.database.folder_values(prefix))
        indexes = [codec.columns.index(c) for c in chosen]
        return sorted({tuple(decode_segment(row.segments[i]) for i in indexes) for row in self.iter_rows(**filters)})

    def iter_rows(self, **filters: Any) -> Iterator[Row]:
        """Rows matching the filters, streamed as they are listed: in key order, except from a
        directory bucket, which lists in no order (``list_rows`` sorts).

        Several prefixes (a list of values for leading columns) are listed at the same time, and
        one prefix that spans many pages fans out over key ranges (see ``storage.listing``).
        Stopping the iteration stops the listing.
        """
        codec = self.codec
        objects = objects_under(self.database.lister(), codec.listing_prefixes(codec.encode_filters(filters)))
        yield from matching_rows(codec, filters, objects, self.database.name)

    def list_rows(self, **filters: Any) -> list[Row]:
        """Rows matching the filters, in key order (:meth:`iter_rows`, kept)."""
        return self.database.in_key_order(self.iter_rows(**filters))

    def list_rows_between(self, first: Any, last: Any, values: int = 0, /, **filters: Any) -> list[Row]:
        """Rows whose first column runs from ``first`` to ``last`` in listing order, in one listing.

        For a run of many first-column values this costs one request per 1,000 rows, where
        listing each value's prefix costs at least one request per value. ``values``, the number
        of values in the run if known, sizes the first page: one key more than that, so a run of
        one row per value is one request without a page of keys past its end.
        """
        codec = self.codec
        start, end = codec.first_column_start(first), codec.first_column_start(last)
        # the keys of `last` start with `end` (are `end`, with one column); S3 lists what comes
        # after a key: start one character early, then skip up to `start`
        before = end[:-1] + chr(ord("/") + 1) if end.endswith("/") else end + "\x00"
        listed = self.database.lister().objects(codec.prefix, start_after=start[:-1], before=before,
                                                first_page=values + 1 if values else PAGE_SIZE)
        objects = (obj for obj in listed if obj.key >= start)
        return self.database.in_key_order(matching_rows(codec, filters, objects, self.database.name))


def _renamed(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    """The one of two spellings of an argument that was given (s3aads 2.x's, or ours)."""
    if (value is None) == (old_value is None):
        raise InvalidArgumentError(
            f"give the table name once, as {name}= or as {old_name}= (its s3aads 2.x spelling)"
        )
    return value if value is not None else old_value


def bytes_like(value: Any) -> bytes | None:
    """``value`` as bytes when it is bytes, bytearray or memoryview; else None."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return None


def utf8_payload(data: Any) -> bytes:
    """A str to store as UTF-8 (``insert_string``); anything else is refused."""
    if not isinstance(data, str):
        raise PayloadTypeError(f"insert_string takes a str, got {type(data).__name__}; use insert() for bytes")
    return data.encode("utf-8")


def text(data: bytes | None) -> str | None:
    """A payload read as UTF-8 (``select_string``)."""
    return None if data is None else data.decode("utf-8")


def _payload(data: Any) -> bytes:
    raw = bytes_like(data)
    if raw is not None:
        return raw
    if isinstance(data, str):
        raise PayloadTypeError(
            "data must be bytes, got str: use insert_string() to store text as UTF-8, "
            "or encode it first"
        )
    if data is None:
        raise PayloadTypeError("data is missing: pass the payload as bytes, data=b'...'")
    raise PayloadTypeError(
        f"data must be bytes, got {type(data).__name__}: serialise it first "
        "(for example json.dumps(obj).encode())"
    )
