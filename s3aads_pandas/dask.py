"""Scale-out on Dask: read and write s3aads tables with one task per partition.

Clients do not pickle, so tasks carry only the connection settings that boto3 needs to make one
(endpoint, region, profile, botocore config); each worker makes its own client and takes its
credentials from its own environment through boto3's credential chain. Nothing secret is put in
the task graph.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pickle
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd

from s3aads_pandas.config import ConnectionSettings
from s3aads_pandas.errors import InvalidArgumentError, InvalidValueError, extra_required
from s3aads_pandas.frames.accessor import WriteResult
from s3aads_pandas.frames.codecs import PayloadOption
from s3aads_pandas.frames.formats import empty_frame_like
from s3aads_pandas.frames.read import (
    Errors,
    check_errors,
    read_rows,
    report_failures,
    resolve_table,
    split_table_name,
)
from s3aads_pandas.storage.adapter import PAGE_SIZE
from s3aads_pandas.storage.memory import URL as MEMORY
from s3aads_pandas.tables.datastore import Database, Table
from s3aads_pandas.tables.keys import is_value_list

with extra_required("dask", "s3aads_pandas.dask"):
    import dask
    import dask.dataframe as dd
    from dask.dataframe.extensions import register_dataframe_accessor

#: Above this many values of the partition column, values are grouped into at most this many partitions.
MAX_PARTITIONS = 256
#: What a group of values aims to hold, estimated from one page of the listing.
PARTITION_ROWS = 1_000
PARTITION_BYTES = 128 * 2**20


@dataclasses.dataclass(frozen=True)
class _TableSpec:
    """What a worker needs to open the table: no client, no credentials."""

    settings: ConnectionSettings
    database: str
    table: str
    columns: tuple[str, ...]
    #: The process that made the graph: a memory:// database lives there only.
    process: int = dataclasses.field(default_factory=os.getpid)

    @classmethod
    def of(cls, table: Table, max_workers: int | None = None) -> _TableSpec:
        """The spec of ``table``, with a connection pool for ``max_workers`` threads per task."""
        settings = table.database.settings
        if settings.client is not None or settings.session is not None:
            raise InvalidArgumentError(
                "Dask workers make their own S3 clients: give the Database endpoint_url, "
                "region_name or profile_name instead of a ready boto3 client or session"
            )
        keys = (settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_session_token)
        if any(keys) and not settings.public_keys:
            raise InvalidArgumentError(
                "Dask workers take their credentials from their own environment (AWS_ACCESS_KEY_ID..., "
                "a profile, an instance role), never from the task graph: give the Database a "
                "profile_name, or set the credentials in the workers' environment, instead of aws_* keys"
            )
        portable = settings.replace(max_workers=settings.max_workers if max_workers is None else max_workers)
        return cls(portable, table.database.name, table.name, tuple(table.codec.columns))

    def open(self) -> Table:
        """The table on this worker, over the worker's store for these settings."""
        if self.settings.root == MEMORY and os.getpid() != self.process:
            raise InvalidArgumentError(
                f"memory://{self.database} lives in the memory of the process that made this Dask graph, and "
                "this worker runs in another: use a file:// database (workers on this machine share its "
                "folder), an S3 one, or Dask's threaded scheduler"
            )
        return Table(self.table, _worker_database(self.settings, self.database), list(self.columns))


_worker_databases: dict[bytes, Database] = {}
_worker_databases_lock = threading.Lock()


def _worker_database(settings: ConnectionSettings, name: str) -> Database:
    """One database (so one store) per worker process, settings and name, shared by its tasks:
    making a store costs ~0.2 s.

    Keyed by the pickled settings, as each task brings its own copy and a botocore ``Config``
    compares by identity.
    """
    key = pickle.dumps((settings, name))
    with _worker_databases_lock:
        if key not in _worker_databases:
            _worker_databases[key] = Database(name, settings)
        return _worker_databases[key]


@dataclasses.dataclass(frozen=True)
class _ReadTask:
    """One partition: the rows matching ``filters``, listed as one run of first-column values
    (first, last, how many) when ``key_range`` is set, else by the filters' prefixes."""

    spec: _TableSpec
    filters: dict[str, Any]
    options: dict[str, Any]
    key_range: tuple[str, str, int] | None = None

    def __call__(self) -> pd.DataFrame:
        table = self.spec.open()
        if self.key_range is None:
            rows = table.list_rows(**self.filters)
        else:
            rows = table.list_rows_between(*self.key_range, **self.filters)
        return read_rows(table, rows, progress=False, **self.options)


def _run(task: _ReadTask) -> pd.DataFrame:
    return task()


def read_s3aads(
    table: Table | str,
    *,
    data: bool = True,
    decode: PayloadOption = "bytes",
    format: str | None = None,
    partition_on: str | None = None,
    npartitions: int | None = None,
    meta: pd.DataFrame | None = None,
    max_workers: int | None = None,
    filters: dict[str, Any] | None = None,
    **column_filters: Any,
) -> dd.DataFrame:
    """A Dask DataFrame of the table's rows, one partition per value of ``partition_on``.

    ``partition_on`` defaults to the first key column, whose values a single Delimiter listing
    gives; filters on it prune partitions before any payload is read (no listing at all when
    they name the values). Past :data:`MAX_PARTITIONS` values, consecutive values are grouped
    into partitions of about :data:`PARTITION_ROWS` rows or :data:`PARTITION_BYTES` (estimated
    from one listing page), each read with one listing of its run of keys; ``npartitions``
    caps the number of partitions instead. Another column can be given, at the cost of a
    listing of the table per partition.

    ``meta`` is known without reading: key columns as strings plus ``data``; in dataset mode
    (``format=``) it comes from ``meta=``, or else from the first object, of which only its
    parquet footer or its first lines are read.
    """
    source = resolve_table(table)
    codec = source.codec
    chosen = {**(filters or {}), **column_filters}
    codec.encode_filters(chosen)  # refuse bad filters before planning
    column = partition_on or codec.columns[0]
    codec.check_known([column])
    if npartitions is not None and (not isinstance(npartitions, int) or npartitions < 1):
        raise InvalidArgumentError(f"npartitions must be a positive integer, got {npartitions!r}")
    if column in chosen:  # the filter names the partitions: nothing to list
        wanted = chosen[column]
        values = sorted({str(v) for v in (wanted if is_value_list(wanted) else [wanted])})
    else:
        values = [v[0] for v in source.distinct([column], **chosen)]
    # listed values of the first column are every value in their range: a group of consecutive
    # ones (in listing order) is one run of keys; values named by a filter may be far apart
    # (a directory bucket lists in no order: there each partition lists its values' prefixes)
    runs = column == codec.columns[0] and column not in chosen and source.database.lists_in_key_order
    if runs:
        values.sort(key=codec.first_column_start)
    spec = _TableSpec.of(source, max_workers)
    options = {"data": data, "decode": decode, "format": format}
    tasks = [
        _ReadTask(spec, {**chosen, column: group}, options,
                  (group[0], group[-1], len(group)) if runs and len(group) > 1 else None)
        for group in _group(values, npartitions or _default_partitions(source, values, runs))
    ]
    if meta is None:
        meta = _meta(source, codec.columns, data, format, tasks)
    # Dask would turn object columns into Arrow strings, decoding bytes payloads: keep them as read.
    with dask.config.set({"dataframe.convert-string": False}):
        if not tasks:
            return dd.from_pandas(meta, npartitions=1)
        return dd.from_map(_run, tasks, meta=meta, label="read-s3aads", enforce_metadata=False)


def _default_partitions(table: Table, values: Sequence[str], runs: bool) -> int:
    """One partition per value up to :data:`MAX_PARTITIONS`; past it, groups sized from a sample.

    One page of the table's listing (one request) tells how many rows a value has and how big
    they are, so that a table keyed by unique ids is not cut into hundreds of tasks of a few rows.
    """
    if len(values) <= MAX_PARTITIONS or not runs:
        return MAX_PARTITIONS
    rows = list(itertools.islice(table.iter_rows(), PAGE_SIZE))
    if not rows:
        return MAX_PARTITIONS
    rows_per_value = len(rows) / len({row.segments[0] for row in rows})
    row_bytes = max(1.0, sum(row.size for row in rows) / len(rows))
    values_per_partition = max(1, int(min(PARTITION_ROWS, PARTITION_BYTES / row_bytes) / rows_per_value))
    return max(1, min(MAX_PARTITIONS, -(-len(values) // values_per_partition)))


def _group(values: Sequence[str], npartitions: int) -> list[list[str]]:
    """``values`` in order, cut into ``npartitions`` groups (or one each, if fewer) of even size."""
    count = min(npartitions, len(values))
    bounds = [len(values) * i // count for i in range(count + 1)] if count else [0]
    return [list(values[start:stop]) for start, stop in itertools.pairwise(bounds)]


def _meta(table: Table, columns: Sequence[str], data: bool, format: str | None, tasks: list[_ReadTask]) -> pd.DataFrame:
    keys = {c: pd.Series([], dtype="str") for c in columns}
    if not data:
        return pd.DataFrame(keys)
    if format is None:
        return pd.DataFrame({**keys, "data": pd.Series([], dtype=object)})
    first = next((row for task in tasks for row in table.iter_rows(**task.filters)), None)
    if first is None:
        return pd.DataFrame(keys)
    store, bucket, key = table.database.store, table.database.name, first.key
    sample = empty_frame_like(lambda byte_range: store.get_range(bucket, key, byte_range), format,
                              f"s3://{bucket}/{key}")
    return pd.concat([pd.DataFrame(keys), sample], axis=1)


@dataclasses.dataclass(frozen=True)
class _WriteTask:
    spec: _TableSpec
    options: dict[str, Any]

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return pd.DataFrame({"written": [0], "failures": [{}]})
        result = frame.s3aads.write(self.spec.open(), progress=False, errors="skip", **self.options)
        return pd.DataFrame({"written": [result.written], "failures": [result.failures]})


def to_s3aads(
    ddf: dd.DataFrame,
    table: Table | str,
    data: str = "data",
    *,
    overwrite: bool = True,
    encode: PayloadOption = None,
    partition_by: Sequence[str] | None = None,
    format: str | None = None,
    max_workers: int | None = None,
    errors: Errors = "raise",
) -> WriteResult:
    """Write every partition in parallel on the workers, as ``df.s3aads.write`` does.

    Failed rows are collected from every partition: with ``errors="raise"`` one
    :class:`BulkOperationError` names them all once every partition is done; with
    ``errors="skip"`` a :class:`FailedRowsWarning` counts them and the result lists them.

    In dataset mode the rows are first shuffled so that each key's group is in one partition
    (one object per key); in row mode a key given by two rows is refused, as with pandas, which
    takes one pass over the key columns before writing.
    """
    check_errors(errors)
    target = resolve_table(table) if partition_by is None else Table(*_names(table), list(partition_by))
    spec = _TableSpec.of(target, max_workers)  # refuses what workers cannot use, before any request
    columns = list(target.codec.columns)
    options: dict[str, Any] = {"overwrite": overwrite}
    if partition_by is not None:
        options.update(partition_by=list(partition_by), format=format or "parquet")
        ddf = ddf.shuffle(on=columns)
    else:
        options.update(data=data, encode=encode)
        keys = ddf[columns]
        duplicated = len(keys) - len(keys.drop_duplicates())
        if duplicated:
            raise InvalidValueError(
                f"{duplicated} row(s) repeat the key of another row, so one would silently replace "
                "another: remove the duplicates, or write as a dataset with partition_by"
            )
    target.database.ensure_recorded(target.name, columns, options.get("format"))
    meta = pd.DataFrame({"written": pd.Series([], dtype="int64"), "failures": pd.Series([], dtype=object)})
    outcome = ddf.map_partitions(_WriteTask(spec, options), meta=meta).compute()
    failures: dict[str, str] = {}
    for found in outcome["failures"]:
        failures.update(found)
    written = int(outcome["written"].sum())
    report_failures("write", failures, written + len(failures), errors)
    return WriteResult(written, failures)


def _names(table: Table | str) -> tuple[str, Database]:
    return (table.name, table.database) if isinstance(table, Table) else split_table_name(table)


@register_dataframe_accessor("s3aads")
class DaskS3aadsAccessor:
    """``ddf.s3aads.write(table, ...)``: :func:`to_s3aads` as an accessor."""

    def __init__(self, ddf: dd.DataFrame) -> None:
        self._ddf = ddf

    def write(self, table: Table | str, data: str = "data", **options: Any) -> WriteResult:
        return to_s3aads(self._ddf, table, data, **options)
