"""Rows out of S3 listings: which listed objects are rows of a table, and which match filters.

Rows are consumed as they are listed: a caller keeps only what it returns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from s3aads_pandas.errors import SkippedKeysWarning, warn_caller
from s3aads_pandas.storage.adapter import Listed
from s3aads_pandas.storage.listing import Lister, synchronous
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
    """Objects under the listing prefixes of a filter, in order (:func:`pages_under`)."""
    return synchronous(pages_under(lister, prefixes))


async def pages_under(lister: Lister, prefixes: Sequence[str]) -> AsyncGenerator[list[Listed], None]:
    """Objects under the listing prefixes of a filter, in order, a page at a time.

    The prefixes of one filter are all folders (ending in '/') or all whole keys (every column
    given); a whole key yields that key only, once, not the longer keys it is a prefix of (the
    listing of ``t/7`` holds ``t/70``, which ``t/70``'s listing holds too).
    """
    unseen = None if prefixes[0].endswith("/") else set(prefixes)
    async with contextlib.aclosing(lister.pages_of_many(prefixes)) as listing:
        async for objects in listing:
            if unseen is not None:
                objects = [obj for obj in objects if obj.key in unseen]
                unseen.difference_update(obj.key for obj in objects)
            if objects:
                yield objects


class Matching:
    """Which listed objects are rows of a table and match filters; those that are not rows are
    counted as they pass, and told once by :meth:`done`."""

    def __init__(self, codec: KeyCodec, filters: Mapping[str, Any], bucket: str) -> None:
        self.positions = codec.positions(codec.encode_filters(filters))
        self.codec = codec
        self.skipped = Skipped(f"s3://{bucket}/{codec.prefix}", codec.columns)

    def rows(self, objects: Iterable[Listed]) -> Iterator[Row]:
        for obj in objects:
            segments = self.codec.split(obj.key)
            if segments is None:
                self.skipped.other_depth += 1
            elif not all(map(is_canonical, segments)):
                self.skipped.foreign(obj.key)
            elif KeyCodec.matches(segments, self.positions):
                yield Row(segments, obj.key, obj.size, obj.last_modified, obj.etag)

    def done(self) -> None:
        self.skipped.warn()


def matching_rows(
    codec: KeyCodec,
    filters: Mapping[str, Any],
    objects: Iterable[Listed],
    bucket: str,
) -> Iterator[Row]:
    """The objects that are rows and match the filters; one warning for those that are not rows."""
    matching = Matching(codec, filters, bucket)
    yield from matching.rows(objects)
    matching.done()


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
