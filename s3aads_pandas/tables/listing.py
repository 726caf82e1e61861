"""Rows out of S3 listings: which listed objects are rows of a table, and which match filters."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from s3aads_pandas.errors import SkippedKeysWarning
from s3aads_pandas.storage.adapter import ObjectStore
from s3aads_pandas.tables.keys import KeyCodec

logger = logging.getLogger(__name__)


class Row(NamedTuple):
    """One listed row: its S3 object entry and its raw (still escaped) key segments."""

    segments: list[str]
    obj: dict[str, Any]


def objects_under(store: ObjectStore, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Objects under a listing prefix; a prefix that is a whole key yields that key only."""
    objects = store.iter_objects(bucket, prefix)
    if prefix.endswith("/"):
        return objects
    return (obj for obj in objects if obj["Key"] == prefix)


def matching_rows(
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


def _warn_skipped(count: int, bucket: str, codec: KeyCodec) -> None:
    message = (
        f"skipped {count} object(s) under s3://{bucket}/{codec.prefix} whose key does not have "
        f"the table's {len(codec.columns)} column(s) {', '.join(codec.columns)}"
    )
    logger.warning(message)
    warnings.warn(message, SkippedKeysWarning, stacklevel=5)
