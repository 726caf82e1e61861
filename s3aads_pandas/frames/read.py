"""``pd.read_s3aads``: a table, or a filtered slice of it, as a DataFrame."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from s3aads_pandas.errors import (
    BulkOperationError,
    FailedRowsWarning,
    InvalidArgumentError,
    TableNotFoundError,
    warn_caller,
)
from s3aads_pandas.frames.codecs import PayloadOption, decoder
from s3aads_pandas.frames.formats import bytes_to_frame, check_format
from s3aads_pandas.progress import counted
from s3aads_pandas.storage.adapter import PAGE_SIZE
from s3aads_pandas.storage.usage import usage
from s3aads_pandas.tables.datastore import Database, Table
from s3aads_pandas.tables.rows import Row
from s3aads_pandas.tables.transfer import get_objects

logger = logging.getLogger(__name__)

Errors = Literal["raise", "skip"]
#: Where a DataFrame made with ``errors="skip"`` keeps the rows that failed: ``{key: reason}``.
FAILURES_ATTR = "s3aads_failures"
#: Where a DataFrame read in one piece keeps what its read cost: :meth:`Usage.as_dict`.
USAGE_ATTR = "s3aads_usage"


def split_table_name(table: str) -> tuple[str, Database]:
    """The table name and the Database of a ``"database/table"`` string, the database a bucket
    or a URL (``"file:///data/shop/events"``: the last segment is the table)."""
    scheme, _, path = table.rpartition("://") if isinstance(table, str) else ("", "", "")
    database, _, name = path.rpartition("/")
    if not isinstance(table, str) or not database or not name or (not scheme and "/" in database):
        raise InvalidArgumentError(
            f"table must be a Table or a 'database/table' string (the database a bucket, or a URL such "
            f"as memory://shop or file:///data/shop), got {table!r}"
        )
    return name, Database(f"{scheme}://{database}" if scheme else database)


def resolve_table(table: Table | str) -> Table:
    """A Table, or ``"database/table"`` whose columns come from the table's record."""
    if isinstance(table, Table):
        return table
    name, database = split_table_name(table)
    found = database.get_table(name)
    if found is None:
        raise TableNotFoundError(
            f"table {name!r} of database {database.reference!r} has no rows and no column record; "
            f"for a new table pass Table({name!r}, {database.reference!r}, columns=[...])",
            name, database.reference,
        )
    return found


def check_errors(errors: str) -> Errors:
    if errors not in ("raise", "skip"):
        raise InvalidArgumentError(f"errors must be 'raise' or 'skip', got {errors!r}")
    return errors  # type: ignore[return-value]


def report_failures(action: str, failures: dict[str, str], total: int, errors: Errors) -> None:
    """Raise one error naming every failed key, or warn with the count (``errors="skip"``)."""
    if not failures:
        return
    if errors == "raise":
        raise BulkOperationError(action, failures, total)
    warn_caller(
        f"{action} failed for {len(failures)} of {total} rows; they are listed in the result's "
        f"failures (DataFrame.attrs[{FAILURES_ATTR!r}] for reads)",
        FailedRowsWarning,
    )


def read_s3aads(
    table: Table | str,
    *,
    columns: Sequence[str] | None = None,
    data: bool = True,
    decode: PayloadOption = "bytes",
    format: str | None = None,
    distinct: bool = False,
    dtype: Any = None,
    dtype_backend: Literal["numpy_nullable", "pyarrow"] | None = None,
    chunksize: int | None = None,
    nrows: int | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    errors: Errors = "raise",
    filters: Mapping[str, Any] | None = None,
    **column_filters: Any,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read the rows of an s3aads table into a DataFrame.

    One column per key column (strings unless ``dtype`` says otherwise), plus ``data``. Filters
    are keyword arguments per column, a scalar or a list of values; ``filters={...}`` takes the
    same for columns whose names clash with a parameter. ``columns`` keeps some key columns;
    ``distinct=True`` gives their distinct combinations without payloads. ``format`` reads each
    object as a Parquet/CSV/JSON-lines table and adds the key columns (dataset mode).
    ``chunksize`` returns an iterator of DataFrames, listing and fetching as it goes; ``nrows``
    stops the listing once that many rows match (as in ``pd.read_csv``).
    ``errors="skip"`` leaves out rows that fail and lists them in ``df.attrs["s3aads_failures"]``.
    """
    source = resolve_table(table)
    codec = source.codec
    wanted = list(columns) if columns is not None else list(codec.columns)
    codec.check_known(wanted)
    chosen_filters = {**(filters or {}), **column_filters}
    codec.encode_filters(chosen_filters)  # refuse bad filters before any request
    check_errors(errors)
    if format is not None:
        check_format(format)
    for name, value in (("chunksize", chunksize), ("nrows", nrows)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    if distinct and chunksize is not None:
        raise InvalidArgumentError("distinct=True returns one DataFrame; leave chunksize unset")
    loader = _Loader(source, wanted, data and not distinct, decode, format, dtype, dtype_backend,
                     max_workers, progress, errors)
    # a generator: nothing is listed, and no bar made, until the rows are asked for
    rows: Iterator[Row] = itertools.islice(counted(source.iter_rows(**chosen_filters), progress, "s3aads list"),
                                           nrows)
    if chunksize is not None:
        return loader.chunks(rows, chunksize)  # as listed: a directory bucket's are in no order
    with usage() as used:
        frame = _whole(loader, source, chosen_filters, distinct, rows)
    frame.attrs[USAGE_ATTR] = used.as_dict()
    return frame


def _whole(loader: _Loader, source: Table, filters: dict[str, Any], distinct: bool,
           rows: Iterator[Row]) -> pd.DataFrame:
    """The one DataFrame of a read that is not chunked, from the listed ``rows`` (unused for
    ``distinct``, which lists by folders)."""
    if distinct:
        combos = source.distinct(loader.columns, **filters)
        return loader.finish(pd.DataFrame(combos, columns=loader.columns, dtype="str"), {})
    if not source.database.lists_in_key_order:
        rows = iter(source.database.in_key_order(rows))
    if not loader.data:
        return loader.keys_only(rows)
    return loader.frame(list(rows))


def read_rows(table: Table, rows: list[Row], *, data: bool = True, decode: PayloadOption = "bytes",
              format: str | None = None, progress: bool | None = None) -> pd.DataFrame:
    """The DataFrame of rows listed elsewhere (a Dask task's range), as :func:`read_s3aads` makes it."""
    loader = _Loader(table, list(table.codec.columns), data, decode, format, dtype=None, dtype_backend=None,
                     max_workers=None, progress=progress, errors="raise")
    return loader.frame(rows)


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """Lists of ``size`` rows as they are listed; one empty list when there is no row."""
    batch = list(itertools.islice(rows, size))
    yield batch
    while batch := list(itertools.islice(rows, size)):
        yield batch


class _Loader:
    """Turns listed rows into DataFrames the way one read_s3aads call asked for."""

    def __init__(self, table: Table, columns: list[str], data: bool, decode: PayloadOption, format: str | None,
                 dtype: Any, dtype_backend: str | None, max_workers: int | None,
                 progress: bool | None, errors: Errors) -> None:
        self.table = table
        self.columns = columns
        self.data = data
        self.decode = decoder(decode)
        self.format = format
        self.dtype = dtype
        self.dtype_backend = dtype_backend
        self.max_workers = max_workers
        self.progress = progress
        self.errors = errors

    def chunks(self, rows: Iterator[Row], size: int) -> Iterator[pd.DataFrame]:
        """Frames of ``size`` rows as they are listed; one empty frame when no row matches."""
        return (self.frame(batch) for batch in _batches(rows, size))

    def keys_only(self, rows: Iterator[Row]) -> pd.DataFrame:
        """The key columns of listed rows, a frame per listing page: the rows are never all held
        as Python objects, so memory peaks near twice the result (the parts and their concat)."""
        parts = [self._keys_frame(batch) for batch in _batches(rows, PAGE_SIZE)]
        return self.finish(pd.concat(parts, ignore_index=True), {})

    def frame(self, rows: list[Row]) -> pd.DataFrame:
        keys_frame = self._keys_frame(rows)
        if not self.data:
            return self.finish(keys_frame, {})
        keys = [row.key for row in rows]
        transform = self._part if self.format else self.decode
        result = get_objects(self.table.database, keys, transform, missing_ok=False,
                             etags=[row.etag for row in rows], max_workers=self.max_workers, progress=self.progress)
        report_failures("read", result.failures, len(keys), self.errors)
        ok = [i for i, key in enumerate(keys) if key not in result.failures]
        if self.format:
            frame = self._dataset(keys_frame, [result.results[i] for i in ok], ok)
        else:
            frame = keys_frame.iloc[ok].reset_index(drop=True)
            frame["data"] = pd.Series([result.results[i] for i in ok], dtype=object)
        return self.finish(frame, result.failures)

    def _keys_frame(self, rows: list[Row]) -> pd.DataFrame:
        codec = self.table.codec
        decoded = [codec.decode(row.segments) for row in rows]
        return pd.DataFrame(
            {column: pd.Series([row[column] for row in decoded], dtype="str") for column in self.columns}
        )

    def _part(self, body: bytes) -> pd.DataFrame:
        """One dataset object as a DataFrame (run on the workers, so a bad one fails its row)."""
        part = bytes_to_frame(body, self.format or "")
        clash = sorted(set(part.columns) & set(self.columns))
        if clash:
            raise ValueError(f"the payload has column(s) {', '.join(clash)} that are also key columns")
        return part

    def _dataset(self, keys_frame: pd.DataFrame, parts: list[Any], positions: list[int]) -> pd.DataFrame:
        frames = []
        for part, position in zip(parts, positions, strict=True):
            keys = keys_frame.iloc[[position] * len(part)].reset_index(drop=True)
            frames.append(pd.concat([keys, part.reset_index(drop=True)], axis=1))
        if not frames:
            return keys_frame.iloc[0:0]
        return pd.concat(frames, ignore_index=True)

    def finish(self, frame: pd.DataFrame, failures: dict[str, str]) -> pd.DataFrame:
        if self.dtype is not None:
            frame = frame.astype(self.dtype if isinstance(self.dtype, Mapping)
                                 else {column: self.dtype for column in self.columns})
        if self.dtype_backend is not None:
            frame = frame.convert_dtypes(dtype_backend=self.dtype_backend)
        frame.attrs[FAILURES_ATTR] = dict(failures)
        return frame
