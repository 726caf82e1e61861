"""Rows out of S3 listings: which listed objects are rows of a table, and which match filters.

Rows are consumed as they are listed: a caller keeps only what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from s3aads_pandas.errors import SkippedKeysWarning, warn_caller
from s3aads_pandas.storage.adapter import Listed
from s3aads_pandas.storage.listing import Lister
from s3aads_pandas.tables.keys import KeyCodec, decode_segment, is_canonical

logger = logging.getLogger(__name__)


class Row(NamedTuple):
    """One listed row: its raw (still escaped) key segments, its S3 key, size, last change and
    the ETag of the version listed."""

    segments: list[str]
    key: str
    size: int
    last_modified: datetime | None
    etag: str | None = None


def objects_under(lister: Lister, prefixes: Sequence[str]) -> Iterator[Listed]:
    """Objects under the listing prefixes of a filter, in order.

    The prefixes of one filter are all folders (ending in '/') or all whole keys (every column
    given); a whole key yields that key only, once, not the longer keys it is a prefix of (the
    listing of ``t/7`` holds ``t/70``, which ``t/70``'s listing holds too).
    """
    objects = lister.many(prefixes)
    if prefixes[0].endswith("/"):
        return objects
    whole = set(prefixes)
    return _each_once(obj for obj in objects if obj.key in whole)


def _each_once(objects: Iterator[Listed]) -> Iterator[Listed]:
    yielded: set[str] = set()
    for obj in objects:
        if obj.key not in yielded:
            yielded.add(obj.key)
            yield obj


def matching_rows(
    codec: KeyCodec,
    filters: Mapping[str, Any],
    objects: Iterable[Listed],
    bucket: str,
) -> Iterator[Row]:
    """The objects that are rows and match the filters; one warning for those that are not rows."""
    positions = codec.positions(codec.encode_filters(filters))
    skipped = Skipped(f"s3://{bucket}/{codec.prefix}", codec.columns)
    for obj in objects:
        segments = codec.split(obj.key)
        if segments is None:
            skipped.other_depth += 1
        elif not all(map(is_canonical, segments)):
            skipped.foreign(obj.key)
        elif KeyCodec.matches(segments, positions):
            yield Row(segments, obj.key, obj.size, obj.last_modified, obj.etag)
    skipped.warn()


def folder_values(folders: Iterable[str], prefix: str, bucket: str) -> set[str]:
    """The values of the folders under ``prefix`` of a Delimiter listing (``<prefix><segment>/``);
    folders in another escaping are skipped, with one warning."""
    skipped = Skipped(f"s3://{bucket}/{prefix}", (), "folder")
    values = set()
    for folder in folders:
        segment = folder[len(prefix):-1]
        if not segment:
            continue
        if is_canonical(segment):
            values.add(decode_segment(segment))
        else:
            skipped.foreign(folder)
    skipped.warn()
    return values


#: How Python code reaches the rows that a listing skips for their escaping.
BY_KEY_HINT = "reach them by key with query_by_key() and select_by_key()"


class Skipped:
    """Objects under a table that are not its rows, counted as they are listed, told once."""

    def __init__(self, where: str, columns: Sequence[str], noun: str = "object") -> None:
        self.where = where
        self.columns = columns
        self.noun = noun
        self.other_depth = 0
        self.in_another_escaping = 0
        self.example = ""

    def foreign(self, key: str) -> None:
        self.in_another_escaping += 1
        self.example = self.example or key

    def warn(self) -> None:
        if not self.other_depth and not self.in_another_escaping:
            return
        reasons = []
        if self.other_depth:
            reasons.append(
                f"{self.other_depth} whose key does not have the table's {len(self.columns)} "
                f"column(s) {', '.join(self.columns)}"
            )
        if self.in_another_escaping:
            reasons.append(
                f"{self.in_another_escaping} whose key segments are not escaped as this library "
                f"writes them (such as {self.example!r}, written by another tool: here a value's '%' "
                f"is '%25' and a whole '.' is '%2E'), so no value names them; {BY_KEY_HINT}"
            )
        message = (
            f"skipped {self.other_depth + self.in_another_escaping} {self.noun}(s) under {self.where}: "
            f"{'; '.join(reasons)}"
        )
        logger.warning(message)
        warn_caller(message, SkippedKeysWarning)
