"""``Database``: an S3 bucket seen as a set of tables."""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any

from . import schema
from .config import ConnectionSettings, default_settings
from .errors import SchemaMismatchError
from .keys import validate_columns, validate_database_name, validate_table_name
from .s3 import ObjectStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .table import Table

logger = logging.getLogger(__name__)


def open_store(settings: ConnectionSettings) -> ObjectStore:
    """An S3 adapter over a new client for ``settings``, with their pool size and retry policy."""
    return ObjectStore(settings.make_client(), settings.max_workers, settings.retry_policy())


class Database:
    """An S3 bucket. Nothing talks to S3 until a method that needs it is called.

    Connection settings come from :func:`s3aads_pandas.configure` unless given here, as a
    :class:`ConnectionSettings` or as keyword arguments (``endpoint_url=...``, ``client=...``).
    """

    def __init__(self, name: str, settings: ConnectionSettings | None = None, **connection: Any) -> None:
        self.name = validate_database_name(name)
        base = settings if settings is not None else default_settings()
        self.settings = base.replace(**connection) if connection else base
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()
        self._recorded: dict[str, tuple[str, ...]] = {}
        self._wide_stores: dict[int, ObjectStore] = {}

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.settings.endpoint_url!r}" if self.settings.endpoint_url else ""
        return f"Database({self.name!r}{endpoint})"

    @property
    def store(self) -> ObjectStore:
        """The S3 adapter, with a client made on first use and shared by every thread."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.settings)
        return self._store

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
        """Names of all buckets the credentials can see."""
        base = settings if settings is not None else default_settings()
        chosen = base.replace(**connection) if connection else base
        return open_store(chosen).list_buckets()

    def create(self) -> None:
        """Create the bucket; nothing happens when this account already has it."""
        self.store.create_bucket(self.name)

    def exists(self) -> bool:
        return self.store.bucket_exists(self.name)

    @property
    def tables(self) -> list[str]:
        """Names of the tables: the top-level "folders" of the bucket (column records hidden)."""
        return [p[:-1] for p in self.store.iter_common_prefixes(self.name, prefix="")]

    def get_table(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        *,
        infer_columns: bool = False,
    ) -> Table | None:
        """The table ``name`` with its recorded columns, or None when it has no rows nor record.

        A table written by s3aads 2.x has no record: its columns are then ``columns`` when given,
        ``col1..colN`` from the depth of its first key with ``infer_columns=True``, or unknown.
        """
        from .table import Table

        validate_table_name(name)
        recorded = self.recorded_columns(name)
        if recorded is not None:
            return Table(name, self, list(columns) if columns else list(recorded))
        first = next(self.store.iter_objects(self.name, f"{name}/"), None)
        if first is None:
            return None
        if columns:
            return Table(name, self, list(columns))
        if infer_columns:
            depth = len(first["Key"].split("/")) - 1
            return Table(name, self, [f"col{i}" for i in range(1, depth + 1)])
        return Table(name, self)

    def drop_table(self, name: str) -> int:
        """Delete every object of the table and its record (DeleteObjects, 1,000 keys a request).

        Returns how many objects were deleted under the table's prefix.
        """
        validate_table_name(name)
        keys = (obj["Key"] for obj in self.store.iter_objects(self.name, f"{name}/"))
        deleted = self.store.delete_many(self.name, itertools.chain(keys, [schema.record_key(name)]))
        with self._lock:
            self._recorded.pop(name, None)
        logger.info("dropped table %s of %s (%d objects)", name, self.name, deleted - 1)
        return deleted - 1

    # -- column records, used by Table ---------------------------------------------------------

    def recorded_columns(self, table: str) -> tuple[str, ...] | None:
        """The columns recorded for ``table`` (one GET, then cached), or None without a record."""
        known = self._recorded.get(table)
        if known is None:
            known = schema.read_columns(self.store, self.name, table)
            if known is not None:
                with self._lock:
                    self._recorded[table] = known
        return known

    def ensure_recorded(self, table: str, columns: Sequence[str]) -> None:
        """Record ``columns`` for ``table`` unless recorded; refuse columns that contradict it.

        The record is written with If-None-Match, so when two first writers race, the one whose
        record lost reads the winner's and is refused if its columns differ.
        """
        columns = validate_columns(columns)
        recorded = self.recorded_columns(table)
        if recorded is None:
            if schema.write_columns(self.store, self.name, table, columns):
                with self._lock:
                    self._recorded[table] = columns
                return
            recorded = self.recorded_columns(table)
        if recorded != columns:
            raise SchemaMismatchError(
                f"table {table!r} of database {self.name!r} is recorded with columns "
                f"{list(recorded or ())}, not {list(columns)}; use Database({self.name!r})"
                f".get_table({table!r}) or give the recorded columns"
            )
