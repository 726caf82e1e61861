"""``Table``: the s3aads API over the key codec and the S3 adapter."""

from __future__ import annotations

import itertools
import logging
import random as _random
import warnings
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from .database import Database
from .errors import (
    ColumnError,
    ColumnsNotSetError,
    InvalidArgumentError,
    PayloadTypeError,
    SkippedKeysWarning,
    TableEmptyError,
)
from .executor import parallel_map
from .keys import KeyCodec, decode_segment, validate_columns, validate_table_name
from .payloads import bytes_like
from .s3 import PAGE_SIZE, ObjectStore

logger = logging.getLogger(__name__)

SORT_FIELDS = ("Key", "LastModified", "ETag", "Size", "StorageClass")
_FILTER_METHOD = "filter_objects_by_"


class Versioned(NamedTuple):
    """A row's payload with the ETag that identifies this version of it."""

    data: bytes
    etag: str


class Row(NamedTuple):
    """One listed row: its S3 object entry and its raw (still escaped) key segments."""

    segments: list[str]
    obj: dict[str, Any]


class Table:
    """A top-level "folder" of a bucket whose further key segments are the columns.

    ``database`` is a :class:`Database` or a bucket name. Without ``columns`` the table uses
    the columns recorded in the bucket, if any.
    """

    def __init__(self, name: str, database: Database | str, columns: Sequence[str] | None = None) -> None:
        self.name = validate_table_name(name)
        self.database = database if isinstance(database, Database) else Database(database)
        self._columns = validate_columns(columns) if columns else None
        self._object_type: type | None = None

    def __repr__(self) -> str:
        columns = list(self._columns) if self._columns is not None else "<not loaded>"
        return f"Table({self.name!r}, database={self.database.name!r}, columns={columns})"

    # -- columns ----------------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The key columns: as given, else as recorded in the bucket, else empty."""
        if self._columns is None:
            recorded = self.database.recorded_columns(self.name)
            if recorded is None:
                return []
            self._columns = recorded
        return list(self._columns)

    @property
    def codec(self) -> KeyCodec:
        columns = self.columns
        if not columns:
            raise ColumnsNotSetError(
                f"table {self.name!r} has no columns: pass columns=[...] to Table(), or use "
                f"Database({self.database.name!r}).get_table({self.name!r}, infer_columns=True) "
                "for a table written without a column record"
            )
        return KeyCodec(self.name, columns)

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        """``<column>s()`` and ``filter_objects_by_<column>(value)``, as in s3aads."""
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        if attribute.startswith(_FILTER_METHOD):
            column = attribute[len(_FILTER_METHOD):]
            if column in self.columns:
                return lambda value: self.filter_objects_by(**{column: value})
        elif attribute.endswith("s") and attribute[:-1] in self.columns:
            column = attribute[:-1]
            return lambda: [values[0] for values in self.distinct([column])]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")

    def __dir__(self) -> list[str]:
        extra = [f"{c}s" for c in self._columns or ()] + [f"{_FILTER_METHOD}{c}" for c in self._columns or ()]
        return sorted(set(super().__dir__()) | set(extra))

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
        key, body, params = self._checked_write(data, metadata, columns)
        return self.database.store.put(self.database.name, key, body, params, overwrite=overwrite)

    def insert_string(
        self,
        data: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = True,
        **columns: Any,
    ) -> dict[str, Any]:
        """Store a str as UTF-8."""
        if not isinstance(data, str):
            raise PayloadTypeError(
                f"insert_string takes a str, got {type(data).__name__}; use insert() for bytes"
            )
        return self.insert(data.encode("utf-8"), metadata, overwrite=overwrite, **columns)

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
        :class:`RowChangedError`, and nothing is written.
        """
        key, body, params = self._checked_write(data, metadata, columns)
        return self.database.store.put_if_match(self.database.name, key, body, if_match, params)

    def _checked_write(
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
        data = self.select(**columns)
        return None if data is None else data.decode("utf-8")

    def delete(self, **columns: Any) -> dict[str, Any]:
        """Delete one row (one DeleteObject; no error when it does not exist, as in S3)."""
        return self.database.store.delete(self.database.name, self.to_key(**columns))

    def query(self, **filters: Any) -> list[dict[str, str]]:
        """Rows whose columns equal the filters exactly; a list of values means any of them.

        Filters on leading columns narrow the S3 listing to their prefix.
        """
        codec = self.codec
        return [codec.decode(row.segments) for row in self.list_rows(**filters)]

    # -- rows by key ------------------------------------------------------------------------------

    def _full_key(self, key: str) -> str:
        return f"{self.name}/{key}"

    def insert_by_key(self, key: str, data: bytes, **params: Any) -> dict[str, Any]:
        """Store ``data`` at ``<table>/<key>``; ``params`` are S3 PutObject parameters."""
        body = _payload(data)
        self.database.store.check_put_params(params)
        return self.database.store.put(self.database.name, self._full_key(key), body, params)

    def select_by_key(self, key: str) -> bytes | None:
        """The payload at ``<table>/<key>``, or None (one GET)."""
        return self.database.store.get(self.database.name, self._full_key(key))

    def delete_by_key(self, key: str) -> dict[str, Any]:
        return self.database.store.delete(self.database.name, self._full_key(key))

    def query_by_key(self, key: str = "", sort_by: str | None = None) -> list[str]:
        """Keys (without the table name) that start with ``key``: a raw prefix match."""
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise InvalidArgumentError(
                f"sort_by must be one of {', '.join(SORT_FIELDS)}, got {sort_by!r}"
            )
        objects = list(self.database.store.iter_objects(self.database.name, self._full_key(key)))
        if sort_by:
            objects.sort(key=lambda obj: obj.get(sort_by) or "")
        start = len(self.name) + 1
        return [obj["Key"][start:] for obj in objects]

    # -- listings ---------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Keys (without the table name) of every row."""
        start = len(self.name) + 1
        return [row.obj["Key"][start:] for row in self.list_rows()]

    @property
    def objects(self) -> list[Any]:
        """Every row as a namedtuple ``Object`` with one field per column."""
        return self.filter_objects_by()

    def filter_objects_by(self, **filters: Any) -> list[Any]:
        """Rows matching the filters, as namedtuples ``Object``."""
        return [self._object_type_for()(**row) for row in self.query(**filters)]

    def _object_type_for(self) -> type:
        if self._object_type is None:
            self._object_type = namedtuple("Object", self.codec.columns)  # type: ignore[misc]
        return self._object_type

    def count(self, **filters: Any) -> int:
        """Number of rows (matching the filters, if any)."""
        return len(self.list_rows(**filters))

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
            store, bucket = self.database.store, self.database.name
            segments = (p[len(prefix):-1] for p in store.iter_common_prefixes(bucket, prefix))
            return sorted({(decode_segment(segment),) for segment in segments if segment})
        indexes = [codec.columns.index(c) for c in chosen]
        found = {tuple(row.segments[i] for i in indexes) for row in self.list_rows(**filters)}
        return sorted(tuple(decode_segment(segment) for segment in combo) for combo in found)

    def random_key(self) -> str:
        """The key (without the table name) of a row chosen at random."""
        keys = self.keys
        if not keys:
            raise TableEmptyError(f"table {self.name!r} has no rows to choose from")
        return _random.choice(keys)

    def random(self) -> dict[str, Any]:
        """A random row: its columns and its payload under ``data``."""
        key = self.random_key()
        codec = self.codec
        row: dict[str, Any] = codec.decode(key.split("/"))
        row["data"] = self.select_by_key(key)
        return row

    def explore(self, *, page_size: int = 20) -> Any:
        """An ipywidgets explorer of this table (needs the ``notebook`` extra)."""
        from .explorer import Explorer

        return Explorer(self, page_size=page_size)

    def copy(self, key: str) -> Copy:
        """``table.copy(key).to(other_table, other_key)`` copies one object server-side."""
        return Copy(self, key)

    def iter_rows(self, **filters: Any) -> Iterator[Row]:
        """Rows matching the filters in key order, listed page by page as they are consumed."""
        codec, prefixes = self._plan(filters)
        store, bucket = self.database.store, self.database.name
        objects = (obj for prefix in prefixes for obj in _objects_under(store, bucket, prefix))
        yield from _matching_rows(codec, filters, objects, bucket)

    def list_rows(self, **filters: Any) -> list[Row]:
        """Rows matching the filters, in key order; several prefixes are listed in parallel."""
        codec, prefixes = self._plan(filters)
        store, bucket = self.database.store, self.database.name
        listings = parallel_map(
            lambda prefix: list(_objects_under(store, bucket, prefix)),
            prefixes,
            self.database.settings.max_workers,
        )
        objects = (obj for listing in listings for obj in listing)
        return list(_matching_rows(codec, filters, objects, bucket))

    def list_rows_between(self, first: Any, last: Any, values: int = 0, /, **filters: Any) -> list[Row]:
        """Rows whose first column runs from ``first`` to ``last`` in listing order, in one listing.

        For a run of many first-column values this costs one request per 1,000 rows, where
        listing each value's prefix costs at least one request per value. ``values``, the number
        of values in the run if known, sizes the first page: one key more than that, so a run of
        one row per value is one request without a page of keys past its end.
        """
        codec = self.codec
        start, end = codec.first_column_start(first), codec.first_column_start(last)
        store, bucket = self.database.store, self.database.name

        def within(key: str) -> bool:  # the keys of `last` start with `end` (are `end`, with one column)
            return key <= end or (key.startswith(end) and end.endswith("/"))

        # S3 lists what comes after a key: start one character early, then skip up to `start`
        listed = store.iter_objects(bucket, codec.prefix, start_after=start[:-1],
                                    first_page=values + 1 if values else PAGE_SIZE)
        from_start = itertools.dropwhile(lambda obj: obj["Key"] < start, listed)
        objects = itertools.takewhile(lambda obj: within(obj["Key"]), from_start)
        return list(_matching_rows(codec, filters, objects, bucket))

    def _plan(self, filters: Mapping[str, Any]) -> tuple[KeyCodec, list[str]]:
        codec = self.codec
        return codec, codec.listing_prefixes(codec.encode_filters(filters))


def _objects_under(store: ObjectStore, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Objects under a listing prefix; a prefix that is a whole key yields that key only."""
    objects = store.iter_objects(bucket, prefix)
    if prefix.endswith("/"):
        return objects
    return (obj for obj in objects if obj["Key"] == prefix)


def _matching_rows(
    codec: KeyCodec,
    filters: Mapping[str, Any],
    objects: Iterable[dict[str, Any]],
    bucket: str,
) -> Iterator[Row]:
    """The objects that are rows and match the filters; one warning for those that are not rows."""
    positions = codec.positions(codec.encode_filters(filters))
    skipped = 0
    for obj in objects:
        segments = codec.split(obj["Key"])
        if segments is None:
            skipped += 1
        elif KeyCodec.matches(segments, positions):
            yield Row(segments, obj)
    if skipped:
        _warn_skipped(skipped, bucket, codec)


class Copy:
    """The source half of ``table.copy(key).to(destination, key)``."""

    def __init__(self, table: Table, key: str) -> None:
        self.source_table = table
        self.source_key = key

    def to(self, dest_table: Table, dest_key: str | None = None, **params: Any) -> dict[str, Any]:
        """Copy server-side (one CopyObject); ``params`` pass through to S3's CopyObject."""
        source = self.source_table
        return dest_table.database.store.copy(
            source.database.name,
            f"{source.name}/{self.source_key}",
            dest_table.database.name,
            f"{dest_table.name}/{dest_key if dest_key is not None else self.source_key}",
            **params,
        )


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


def _warn_skipped(count: int, bucket: str, codec: KeyCodec) -> None:
    message = (
        f"skipped {count} object(s) under s3://{bucket}/{codec.prefix} whose key does not have "
        f"the table's {len(codec.columns)} column(s) {', '.join(codec.columns)}"
    )
    logger.warning(message)
    warnings.warn(message, SkippedKeysWarning, stacklevel=5)
