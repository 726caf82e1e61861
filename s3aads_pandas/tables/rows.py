"""Rows out of S3 listings: which listed objects are rows of a table, and which match filters.

Rows are consumed as they are listed: a caller keeps only what it returns.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from s3aads_pandas.errors import SkippedKeysWarning
from s3aads_pandas.storage.adapter import Listed
from s3aads_pandas.storage.listing import Lister
from s3aads_pandas.tables.keys import KeyCodec

logger = logging.getLogger(__name__)


class Row(NamedTuple):
    """One listed row: its raw (still escaped) key segments, its S3 key, size and last change."""

    segments: list[str]
    key: str
    size: int
    last_modified: datetime | None


def objects_under(lister: Lister, prefixes: Sequence[str]) -> Iterator[Listed]:
    """Objects under the listing prefixes of a filter, in order.

    The prefixes of one filter are all folders (ending in '/') or all whole keys (every column
    given); a whole key yields that key only, not the longer keys it is a prefix of.
    """
    objects = lister.many(prefixes)
    if prefixes[0].endswith("/"):
        return objects
    whole = set(prefixes)
    return (obj for obj in objects if obj.key in whole)


def matching_rows(
    codec: KeyCodec,
    filters: Mapping[str, Any],
    objects: Iterable[Listed],
    bucket: str,
) -> Iterator[Row]:
    """The objects that are rows and match the filters; one warning for those that are not rows."""
    positions = codec.positions(codec.encode_filters(filters))
    skipped = 0
    for obj in objects:
        segments = codec.split(obj.key)
        if segments is None:
            skipped += 1
        elif KeyCodec.matches(segments, positions):
            yield Row(segments, obj.key, obj.size, obj.last_modified)
    if skipped:
        _warn_skipped(skipped, bucket, codec)


def _warn_skipped(count: int, bucket: str, codec: KeyCodec) -> None:
    message = (
        f"skipped {count} object(s) under s3://{bucket}/{codec.prefix} whose key does not have "
        f"the table's {len(codec.columns)} column(s) {', '.join(codec.columns)}"
    )
    logger.warning(message)
    warnings.warn(message, SkippedKeysWarning, stacklevel=5)
