"""The s3aads 2.x surface that is not the datastore's own: boto3 resources, per-column methods,
namedtuple rows. ``Database`` and ``Table`` are built from these mixins, so that the core reads
on its own in ``datastore`` and boto3's resource API is used in this one file.
"""

from __future__ import annotations

import functools
import random as _random
from collections import namedtuple
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from s3aads_pandas.errors import TableEmptyError
from s3aads_pandas.storage.connect import new_session
from s3aads_pandas.storage.transport import Listed
from s3aads_pandas.tables.keys import KeyCodec, has_methods

if TYPE_CHECKING:
    from s3aads_pandas.storage.adapter import ObjectStore

#: s3aads 2.x's generated filters: ``filter_objects_by_<column>(val)``.
FILTER_METHOD = "filter_objects_by_"


class DatabaseCompat:
    """``db.bucket`` and the boto3 resource behind it, as s3aads 2.x exposes them."""

    if TYPE_CHECKING:
        name: str

        @property
        def store(self) -> ObjectStore: ...
        def folder_values(self, prefix: str) -> set[str]: ...

    @property
    def bucket(self) -> Any:
        """The boto3 ``Bucket`` resource of this database, as s3aads 2.x exposes it."""
        return self._s3_resource.Bucket(self.name)

    @functools.cached_property
    def _s3_resource(self) -> Any:
        """boto3's S3 service resource over this database's boto3 client (made on first use)."""
        client = self.store.boto3_client
        resource = new_session().resource("s3", region_name=client.meta.region_name or "us-east-1")
        resource.meta.client = client
        return resource


class TableCompat:
    """``<column>s()``, ``filter_objects_by_<column>()``, ``objects``, ``first_column_values()``
    ``select_all_by_filter()``, ``random()``, ``random_key()`` and ``copy()``, as in s3aads 2.x."""

    if TYPE_CHECKING:
        name: str
        database: DatabaseCompat
        _columns: tuple[str, ...] | None

        @property
        def columns(self) -> list[str]: ...
        @property
        def keys(self) -> list[str]: ...
        def query(self, **filters: Any) -> list[dict[str, str]]: ...
        def distinct(self, columns: list[str], **filters: Any) -> list[tuple[str, ...]]: ...
        def select_by_key(self, key: str) -> bytes | None: ...
        @property
        def codec(self) -> KeyCodec: ...

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        """``<column>s()`` and ``filter_objects_by_<column>(value)``, as in s3aads."""
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        if attribute.startswith(FILTER_METHOD):
            column = attribute[len(FILTER_METHOD):]
            if column in self.columns:
                def filter_by(val: Any) -> list[Any]:  # s3aads 2.x's parameter name
                    return self.filter_objects_by(**{column: val})
                return filter_by
        elif attribute.endswith("s") and attribute[:-1] in self.columns:
            column = attribute[:-1]
            return lambda: [values[0] for values in self.distinct([column])]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")

    def __dir__(self) -> list[str]:
        named = [c for c in self._columns or () if has_methods(c)]
        extra = [f"{c}s" for c in named] + [f"{FILTER_METHOD}{c}" for c in named]
        return sorted(set(super().__dir__()) | set(extra))

    @property
    def objects(self) -> list[Any]:
        """Every row as a namedtuple ``Object`` with one field per column (columns that are not
        identifiers get positional names ``_0, _1...``). Without columns, as in s3aads 2.x, an
        ``Object()`` with no field per key."""
        if not self.columns:
            return [_object_type(())() for _ in self.keys]
        return self.filter_objects_by()

    def filter_objects_by(self, **filters: Any) -> list[Any]:
        """Rows matching the filters, as namedtuples ``Object``."""
        make = _object_type(tuple(self.columns))
        return [make(*row.values()) for row in self.query(**filters)]  # rows list the columns in order

    def first_column_values(self) -> list[str]:
        """The distinct values of the first key segment, sorted (one Delimiter listing per 1,000)."""
        return sorted(self.database.folder_values(f"{self.name}/"))

    def select_all_by_filter(self, key: str = "") -> list[Any]:
        """boto3 ``ObjectSummary`` objects of every key that starts with ``key``, as in s3aads 2.x."""
        resource = self.database._s3_resource
        summaries = []
        for obj in self.database.store.iter_objects(self.database.name, f"{self.name}/{key}"):
            summaries.append(_summary(resource, self.database.name, obj))
        return summaries


    def random_key(self) -> str:
        """The key (without the table name) of a row chosen at random."""
        keys = self.keys
        if not keys:
            raise TableEmptyError(f"table {self.name!r} has no rows to choose from")
        return _random.choice(keys)

    def random(self) -> dict[str, Any]:
        """A random row: its columns (none, for a table without columns) and its payload under
        ``data``."""
        key = self.random_key()
        row: dict[str, Any] = self.codec.decode(key.split("/")) if self.columns else {}
        row["data"] = self.select_by_key(key)
        return row

    def copy(self, key: str) -> Copy:
        """``table.copy(key).to(other_table, other_key)`` copies one object server-side."""
        return Copy(self, key)


class Copy:
    """The source half of ``table.copy(key).to(destination, key)``."""

    def __init__(self, table: TableCompat, key: str) -> None:
        self.source_table = table
        self.source_key = key

    def to(self, dest_table: TableCompat, dest_key: str | None = None, **params: Any) -> dict[str, Any]:
        """Copy server-side (one CopyObject); ``params`` pass through to S3's CopyObject."""
        source = self.source_table
        written = dest_table.database.store.copy(
            source.database.name,
            f"{source.name}/{self.source_key}",
            dest_table.database.name,
            f"{dest_table.name}/{dest_key if dest_key is not None else self.source_key}",
            **params,
        )
        return written.as_response()


#: The fields of an S3 listing, as boto3 names them, and the attribute of :class:`Listed` of each.
LISTED_FIELDS = {"Key": "key", "LastModified": "last_modified", "ETag": "etag", "Size": "size",
                 "StorageClass": "storage_class"}


def _summary(resource: Any, bucket: str, listed: Listed) -> Any:
    """A boto3 ObjectSummary that holds what the listing said, as s3aads 2.x returned."""
    summary = resource.ObjectSummary(bucket, listed.key)
    summary.meta.data = {field: getattr(listed, name) for field, name in LISTED_FIELDS.items()}
    return summary


@functools.lru_cache(maxsize=64)
def _object_type(columns: tuple[str, ...]) -> type:
    return namedtuple("Object", columns, rename=True)
