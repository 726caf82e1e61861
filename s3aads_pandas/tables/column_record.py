"""The table record: a small JSON object that remembers a table's columns in its bucket.

It lives at ``.s3aads-table.<table>.json`` at the top of the bucket. Keys without '/' belong to
no table (a table is the prefix ``<table>/``), so the record is invisible to ``Database.tables``
here and in s3aads 2.x alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from s3aads_pandas.errors import RowExistsError, S3RequestError
from s3aads_pandas.storage.adapter import ObjectStore

logger = logging.getLogger(__name__)

RECORD_FORMAT = "s3aads-pandas/1"
_RECORD_PREFIX = ".s3aads-table."
_RECORD_SUFFIX = ".json"


def record_key(table: str) -> str:
    return f"{_RECORD_PREFIX}{table}{_RECORD_SUFFIX}"


def read_columns(store: ObjectStore, bucket: str, table: str) -> tuple[str, ...] | None:
    """The recorded columns of ``table``, or None for a table without a record (one GET)."""
    body = store.get(bucket, record_key(table))
    if body is None:
        return None
    try:
        record = json.loads(body)
        columns = tuple(record["columns"])
    except (ValueError, KeyError, TypeError):
        raise S3RequestError(
            f"the column record s3://{bucket}/{record_key(table)} is not valid JSON with a "
            "'columns' list; delete it, and the next write through a Table with columns records them again"
        ) from None
    return columns


def write_columns(store: ObjectStore, bucket: str, table: str, columns: Sequence[str]) -> bool:
    """Record the columns unless a record exists (If-None-Match); False when one does.

    Of two first writers of a table only one records its columns; the other then reads them.
    """
    body = json.dumps({"format": RECORD_FORMAT, "table": table, "columns": list(columns)})
    try:
        store.put(bucket, record_key(table), body.encode("utf-8"), {"ContentType": "application/json"},
                  overwrite=False)
    except RowExistsError:
        return False
    logger.info("recorded columns %s of table %s in bucket %s", list(columns), table, bucket)
    return True

