"""The ``df.s3aads`` accessor: a DataFrame's rows written to, fetched from or deleted in a table."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from s3aads_pandas.errors import (
    ColumnError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidValueError,
    S3aadsError,
)
from s3aads_pandas.frames.codecs import PayloadOption, decoder, encoder
from s3aads_pandas.frames.formats import check_format, frame_to_bytes
from s3aads_pandas.frames.read import (
    Errors,
    check_errors,
    report_failures,
    resolve_table,
    split_table_name,
)
from s3aads_pandas.storage.usage import Usage, usage
from s3aads_pandas.tables.datastore import Table
from s3aads_pandas.tables.keys import KeyCodec
from s3aads_pandas.tables.transfer import get_objects, put_objects

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WriteResult:
    """What a bulk write stored: how many objects, ``{key: reason}`` for those that failed, and
    the requests it sent (a :class:`Usage`; None for a Dask write, whose workers send them)."""

    written: int
    failures: dict[str, str]
    usage: Usage | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def failed_keys(self) -> list[str]:
        return sorted(self.failures)


@pd.api.extensions.register_dataframe_accessor("s3aads")
class S3aadsAccessor:
    """``df.s3aads.write(table)``, ``.fetch(table)``, ``.delete(table)``, ``.keys(table)``.

    The key columns of the table must be columns of the DataFrame; ``table`` is a Table or a
    ``"database/table"`` string.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def keys(self, table: Table | str) -> pd.Series:
        """The S3 key of each row (table name included), aligned with the DataFrame's index."""
        codec = resolve_table(table).codec
        return pd.Series(self._keys(codec), index=self._frame.index, dtype="str", name="key")

    def write(
        self,
        table: Table | str,
        data: str = "data",
        *,
        overwrite: bool = True,
        encode: PayloadOption = None,
        partition_by: Sequence[str] | None = None,
        format: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        max_workers: int | None = None,
        progress: bool | None = None,
        errors: Errors = "raise",
    ) -> WriteResult:
        """Insert one object per row (bytes or str in column ``data``), in parallel.

        With ``partition_by`` (the table's key columns) and ``format`` ("parquet", "csv",
        "jsonl"), each group of rows becomes one object holding the other columns (dataset
        mode). Every row is checked before anything is written. Rows that fail are all named: in
        the raised error, or with ``errors="skip"`` in the result's ``failures``.
        """
        check_errors(errors)
        dataset: str | None = None  # the format of a dataset table's objects, for its record
        if partition_by is not None:
            dataset = format or "parquet"
            target, items = self._dataset_items(table, list(partition_by), dataset)
        elif format is not None:
            raise InvalidArgumentError("format= needs partition_by=[the table's key columns]")
        else:
            target = resolve_table(table)
            items = self._row_items(target.codec, data, encoder(encode))
        _refuse_duplicate_keys([key for key, _ in items])
        with usage() as used:
            target.database.ensure_recorded(target.name, target.codec.columns, dataset)
            result = put_objects(target.database, items, params=metadata, overwrite=overwrite,
                                 max_workers=max_workers, progress=progress)
        report_failures("write", result.failures, len(items), errors)
        return WriteResult(len(items) - len(result.failures), result.failures, used)

    def fetch(
        self,
        table: Table | str,
        *,
        decode: PayloadOption = "bytes",
        data: str = "data",
        max_workers: int | None = None,
        progress: bool | None = None,
        errors: Errors = "raise",
        etags: Sequence[str | None] | None = None,
    ) -> pd.DataFrame:
        """A copy of the DataFrame with each row's payload in column ``data`` (None if missing).

        ``etags``, one per row, are the versions a listing named (``Row.etag``): those the
        payload cache holds are read from it with no request; the others are fetched.
        """
        check_errors(errors)
        source = resolve_table(table)
        keys = self._keys(source.codec)
        if etags is not None and len(etags) != len(keys):
            raise InvalidArgumentError(f"etags gives {len(etags)} ETags for {len(keys)} rows: give one per row")
        result = get_objects(source.database, keys, decoder(decode), missing_ok=True, etags=etags,
                             max_workers=max_workers, progress=progress)
        report_failures("fetch", result.failures, len(keys), errors)
        frame = self._frame.copy()
        frame[data] = pd.Series(result.results, index=frame.index, dtype=object)
        frame.attrs["s3aads_failures"] = dict(result.failures)
        return frame

    def delete(self, table: Table | str) -> int:
        """Delete the rows named by the key columns (DeleteObjects, 1,000 keys a request)."""
        source = resolve_table(table)
        keys = self._keys(source.codec)
        return source.database.store.delete_many(source.database.name, keys)

    # -- helpers ----------------------------------------------------------------------------------

    def _keys(self, codec: KeyCodec) -> list[str]:
        self._check_key_columns(codec)
        keys = []
        for position, values in enumerate(self._frame[list(codec.columns)].itertuples(index=False)):
            try:
                keys.append(codec.to_key(dict(zip(codec.columns, values, strict=True))))
            except S3aadsError as error:
                raise type(error)(f"{self._row_name(self._frame.index[position])}: {error}") from None
        return keys

    def _group_positions(self, codec: KeyCodec) -> dict[str, np.ndarray]:
        """The positions of the rows of each key, a key built once per group of equal values
        (not once per row: a dataset write of millions of rows has a few keys)."""
        self._check_key_columns(codec)
        try:
            grouped = self._frame.groupby(list(codec.columns), sort=False, dropna=False).indices
        except TypeError:  # unhashable key values (lists...): the check of each row names the row
            self._keys(codec)
            raise
        by_key: dict[str, list[np.ndarray]] = {}
        for values, positions in grouped.items():
            row = values if isinstance(values, tuple) else (values,)
            try:
                key = codec.to_key(dict(zip(codec.columns, row, strict=True)))
            except S3aadsError as error:
                raise type(error)(f"{self._row_name(self._frame.index[positions[0]])}: {error}") from None
            by_key.setdefault(key, []).append(positions)  # 1 and "1" are one key
        return {key: np.sort(np.concatenate(parts)) for key, parts in by_key.items()}

    def _row_name(self, label: Any) -> str:
        """A row as errors name it: by its index label, under the index's name if it has one
        ("line 7" for a file read by the command line), else "row 7"."""
        kind = self._frame.index.name if isinstance(self._frame.index.name, str) else "row"
        return f"{kind} {label.item() if isinstance(label, np.generic) else label!r}"

    def _check_key_columns(self, codec: KeyCodec) -> None:
        repeated = sorted({str(c) for c in self._frame.columns[self._frame.columns.duplicated()]})
        if repeated:
            raise InvalidNameError(
                f"the DataFrame has more than one column named {', '.join(map(repr, repeated))}: "
                "a row's key would take one of them silently; rename or drop the copies"
            )
        missing = [c for c in codec.columns if c not in self._frame.columns]
        if missing:
            raise ColumnError(
                f"the DataFrame lacks key column(s) {', '.join(missing)} of table {codec.table!r} "
                f"(its key columns are {', '.join(codec.columns)})"
            )

    def _row_items(self, codec: KeyCodec, data: str, encode: Any) -> list[tuple[str, bytes]]:
        if data not in self._frame.columns:
            raise ColumnError(f"the DataFrame has no payload column {data!r}; name it with data=")
        extra = sorted(set(map(str, self._frame.columns)) - set(codec.columns) - {data})
        if extra:
            raise ColumnError(
                f"column(s) {', '.join(extra)} are neither key columns of table {codec.table!r} "
                f"nor the payload column {data!r}, and would be lost: drop them, or write them "
                "as a dataset with partition_by=[key columns]"
            )
        keys = self._keys(codec)
        bodies = []
        for label, value in zip(self._frame.index, self._frame[data], strict=True):
            try:
                bodies.append(encode(value))
            except (TypeError, ValueError) as error:
                raise type(error)(f"{self._row_name(label)}, column {data!r}: {error}") from None
        return list(zip(keys, bodies, strict=True))

    def _dataset_items(
        self, table: Table | str, partition_by: list[str], format: str
    ) -> tuple[Table, list[tuple[str, bytes]]]:
        check_format(format)
        target = _dataset_table(table, partition_by)
        if list(target.codec.columns) != partition_by:
            raise InvalidArgumentError(
                f"partition_by must be the key columns of table {target.name!r} in order: "
                f"{list(target.codec.columns)}, got {partition_by}"
            )
        groups = self._group_positions(target.codec)  # checks every group's key values first
        payload_columns = [c for c in self._frame.columns if c not in partition_by]
        return target, [
            (key, frame_to_bytes(self._frame.iloc[positions][payload_columns].reset_index(drop=True), format))
            for key, positions in groups.items()
        ]


def _dataset_table(table: Table | str, partition_by: list[str]) -> Table:
    """The target of a dataset write; a new table takes ``partition_by`` as its columns."""
    named = table if isinstance(table, Table) else Table(*split_table_name(table))
    return named if named.columns else Table(named.name, named.database, partition_by)


def _refuse_duplicate_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    duplicates = sorted({key for key in keys if key in seen or seen.add(key)})  # type: ignore[func-returns-value]
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else "")
        raise InvalidValueError(
            f"{len(duplicates)} key(s) are given by more than one row, so one row would silently "
            f"replace another: {shown}; remove the duplicates or write as a dataset"
        )
