"""The table record: a small JSON object that remembers a table's columns in its bucket.

It lives at ``.s3aads-table.<table>.json`` at the top of the bucket. Keys without '/' belong to
no table (a table is the prefix ``<table>/``), so the record is invisible to ``Database.tables``
here and in s3aads 2.x alike.
"""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

from s3aads_pandas.errors import RowExistsError, S3RequestError
from s3aads_pandas.storage.adapter import ObjectStore

logger = logging.getLogger(__name__)

RECORD_FORMAT = "s3aads-pandas/1"
_RECORD_PREFIX = ".s3aads-table."
_RECORD_SUFFIX = ".json"


def record_key(table: str) -> str:
    return f"{_RECORD_PREFIX}{table}{_RECORD_SUFFIX}"


class TableRecord(NamedTuple):
    """What a table's record says: its key columns, and for a table written in dataset mode
    (each object a table of rows) the format of its objects."""

    columns: tuple[str, ...]
    dataset: str | None = None


def read_record(store: ObjectStore, bucket: str, table: str) -> TableRecord | None:
    """The record of ``table``, or None for a table without one (one GET)."""
    body = store.get(bucket, record_key(table))
    if body is None:
        return None
    try:
        record = json.loads(body)
        columns = tuple(record["columns"])
        dataset = record.get("dataset")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise S3RequestError(
            f"the column record s3://{bucket}/{record_key(table)} is not valid JSON with a "
            "'columns' list; delete it, and the next write through a Table with columns records them again"
        ) from None
    return TableRecord(columns, dataset if isinstance(dataset, str) else None)


def write_record(store: ObjectStore, bucket: str, table: str, record: TableRecord) -> bool:
    """Write the record unless one exists (If-None-Match); False when one does.

    Of two first writers of a table only one records its columns; the other then reads them.
    """
    fields = {"format": RECORD_FORMAT, "table": table, "columns": list(record.columns)}
    if record.dataset:
        fields["dataset"] = record.dataset
    try:
        store.put(bucket, record_key(table), json.dumps(fields).encode("utf-8"),
                  {"ContentType": "application/json"}, overwrite=False)
    except RowExistsError:
        return False
    logger.info("recorded columns %s of table %s in bucket %s", list(record.columns), table, bucket)
    return True
