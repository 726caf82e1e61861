"""The listing engine: every object under a prefix, in key order, streamed page by page.

(In key order where the bucket lists so: a directory bucket lists in no order, see :class:`Lister`.)

A listing that fits in one page costs one LIST. When the first page says there is more, the
rest of the prefix is split into key ranges that are listed at the same time (up to the
store's workers) and handed over in key order. Each range lists page by page in a thread of its
own, at most :data:`LOOKAHEAD_PAGES` pages ahead of the consumer, so a range that is itself many
pages is simply a longer sequential listing that overlaps the others; what is held at any time
is the pages in flight. A consumer that stops early (LIMIT, the first rows of a view) stops the
listing: no range starts or continues after that.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

from s3aads_pandas.storage.adapter import PAGE_SIZE, Listed, ObjectStore
from s3aads_pandas.storage.buckets import lists_in_key_order
from s3aads_pandas.storage.pages import PageSequence
from s3aads_pandas.storage.retry import interrupted
from s3aads_pandas.storage.usage import submit

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)

#: Set by a caller that stops listings it consumes from another thread (the explorer's Cancel
#: and Refresh): a listing started in this context stops within :data:`STOP_CHECK` seconds of
#: the event being set, raising :class:`ListingStopped`, and sends no LIST after it.
stop_listing: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stop_listing", default=None)
#: Seconds between looks at the caller's stop event while a listing waits for a page.
STOP_CHECK = 0.05
#: Pages a range may list ahead of its consumer.
LOOKAHEAD_PAGES = 2
#: Ranges per worker: more ranges than workers even out ranges of unequal size.
RANGES_PER_WORKER = 2
#: Below this many keys per next-segment value in the first page, the values are too many to
#: list with a Delimiter (that listing would cost nearly as much as the keys').
DENSE_KEYS_PER_VALUE = 10


class KeyRange(NamedTuple):
    """Keys from ``low`` (inclusive; after ``start_after`` for S3) up to ``high`` (exclusive)."""

    start_after: str | None
    low: str | None
    high: str | None


class Lister:
    """Lists the objects of one bucket with up to ``workers`` LIST requests in flight.

    ``ordered`` says whether the bucket lists in key order and takes StartAfter (a directory
    bucket does neither): without it, a prefix is listed page after page, what is outside the
    asked range is dropped, and nothing is in key order.
    """

    def __init__(self, store: ObjectStore, bucket: str, workers: int) -> None:
        self.store = store
        self.bucket = bucket
        self.workers = max(1, workers)
        self.ordered = lists_in_key_order(bucket)

    def objects(self, prefix: str, *, start_after: str | None = None, before: str | None = None,
                first_page: int = PAGE_SIZE) -> Iterator[Listed]:
        """Every object under ``prefix`` in key order, after ``start_after`` and before ``before``.

        Past one page the listing fans out. ``first_page`` asks for fewer keys first, for callers
        that expect to stop early.
        """
        if not self.ordered:
            yield from (obj for objects in self._pages(prefix) for obj in objects
                        if (start_after is None or obj.key > start_after) and (before is None or obj.key < before))
            return
        whole = KeyRange(start_after, None, before)
        pages = PageSequence(self.bucket, prefix, start_after)
        page = self.store.list_page(self.bucket, prefix, start_after=start_after, max_keys=first_page)
        pages.check([obj.key for obj in page.objects], page.token)
        yield from (obj for obj in page.objects if before is None or obj.key < before)
        if page.token is None or (before is not None and page.objects and page.objects[-1].key >= before):
            return
        after = page.objects[-1].key if page.objects else start_after or prefix
        bounds = self._boundaries(prefix, after, page.objects) if self.workers > 1 else []
        bounds = [bound for bound in bounds if before is None or bound < before]
        if not bounds:
            yield from (obj for objects in self._pages(prefix, whole, page.token, pages) for obj in objects)
            return
        lows = [None, *bounds]
        ranges = [KeyRange(after if low is None else just_before(low), low, high)
                  for low, high in zip(lows, [*bounds, before], strict=True)]
        logger.debug("listing s3://%s/%s in %d key ranges", self.bucket, prefix, len(ranges))
        yield from in_order(lambda part: self._pages(prefix, part), ranges, self.workers)

    def many(self, prefixes: Sequence[str]) -> Iterator[Listed]:
        """The objects under several prefixes, listed at the same time, in the prefixes' order."""
        if len(prefixes) == 1:
            yield from self.objects(prefixes[0])
            return
        yield from in_order(lambda prefix: self._pages(prefix), prefixes, self.workers)

    def _pages(self, prefix: str, part: KeyRange | None = None, token: str | None = None,
               pages: PageSequence | None = None) -> Iterator[list[Listed]]:
        """The pages of one sequential listing of ``prefix``, cut to ``part``; ``token`` and
        ``pages`` go on with a listing whose first page was read elsewhere."""
        start_after = part.start_after if part and not token else None
        pages = pages or PageSequence(self.bucket, prefix, start_after)
        while True:
            page = self.store.list_page(self.bucket, prefix, start_after=start_after, token=token)
            pages.check([obj.key for obj in page.objects], page.token)
            objects = page.objects
            if part is not None:
                objects = [o for o in objects if (part.low is None or o.key >= part.low)
                           and (part.high is None or o.key < part.high)]
            if objects:
                yield objects
            past_end = part is not None and part.high is not None and page.objects and page.objects[-1].key >= part.high
            if page.token is None or past_end:
                return
            token = page.token

    def _boundaries(self, prefix: str, after: str, first: list[Listed]) -> list[str]:
        """Keys after ``after`` that split the rest of ``prefix`` into ranges of about a page or more.

        The values of the next key segment (a Delimiter listing) are natural split points; where
        they are few, the values of the segment after it too. Where the first page shows fewer
        than :data:`DENSE_KEYS_PER_VALUE` keys per value (a table keyed by unique ids), listing
        the values would cost as much as the keys: then there are none, and the listing goes on
        sequentially. Each range costs at least one LIST, so there are no more ranges than the
        pages the first page's density predicts for the rest (and at most two per worker).
        """
        values = {_head(obj.key, prefix, 1) for obj in first}
        if len(first) < DENSE_KEYS_PER_VALUE * len(values):
            return []
        bounds, depth = self._children(prefix, after), 1
        if len(bounds) < self.workers * RANGES_PER_WORKER:
            rest = after[len(prefix):]
            parents = [*bounds, prefix + rest[: rest.index("/") + 1]] if "/" in rest else bounds
            deeper = list(in_order(lambda parent: iter([self._children(parent, after)]), parents, self.workers))
            if deeper:
                bounds, depth = deeper, 2
        bounds = sorted({bound for bound in bounds if bound > after})
        keys_per_bound = len(first) / len({_head(obj.key, prefix, depth) for obj in first})
        pages = int(len(bounds) * keys_per_bound / PAGE_SIZE) + 1
        ranges = min(self.workers * RANGES_PER_WORKER, pages, len(bounds) + 1)
        return [bounds[len(bounds) * i // ranges] for i in range(1, ranges)]

    def _children(self, prefix: str, after: str) -> list[str]:
        """The next "folders" under ``prefix`` that come after ``after`` (a Delimiter listing)."""
        return list(self.store.iter_common_prefixes(self.bucket, prefix, after if after > prefix else None))


def _head(key: str, prefix: str, depth: int) -> str:
    """The first ``depth`` segments of ``key`` after ``prefix``."""
    return "/".join(key[len(prefix):].split("/")[:depth])


def just_before(key: str) -> str:
    """A string that S3 lists just before ``key``, for a StartAfter that includes ``key``."""
    return key[:-1] + chr(ord(key[-1]) - 1) if key and key[-1] > "\x00" else key[:-1]


_DONE = object()


class ListingStopped(Exception):
    """The listing stopped because its caller set its :data:`stop_listing` event."""


class _Failed(NamedTuple):
    error: BaseException


def in_order(produce: Callable[[T], Iterator[list[R]]], parts: Sequence[T], workers: int) -> Iterator[R]:
    """The items of ``produce(part)`` for every part, parts run at the same time, yielded in order.

    Each part runs in its own thread (``workers`` at a time, started in order), handing over
    lists of items through a queue that holds :data:`LOOKAHEAD_PAGES`; the consumer takes the
    parts one after the other. Parts wait only for the consumer, which always waits for a part
    that has started, so this cannot deadlock. Stopping the consumer stops every part.
    """
    stop = threading.Event()
    outer = stop_listing.get()
    queues: list[queue.Queue[object]] = [queue.Queue(maxsize=LOOKAHEAD_PAGES) for _ in parts]

    def stopped() -> bool:
        return stop.is_set() or (outer is not None and outer.is_set())

    def hand_over(channel: queue.Queue[object], item: object) -> bool:
        while not stopped():
            try:
                channel.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run(index: int) -> None:
        interrupted.set(stop)  # a LIST in flight makes no new attempt once the consumer stops
        if stopped():
            return
        try:
            for items in produce(parts[index]):
                if not hand_over(queues[index], items):
                    return
        except BaseException as error:  # handed to the consumer, which raises it in order
            hand_over(queues[index], _Failed(error))
            return
        hand_over(queues[index], _DONE)

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(parts))), thread_name_prefix="s3aads-list")
    try:
        for index in range(len(parts)):
            submit(pool, run, index)  # in the caller's context: its usage blocks count the LISTs
        for channel in queues:
            while (item := _take(channel, outer)) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                yield from item  # type: ignore[misc]
    finally:
        stop.set()
        pool.shutdown(wait=outer is None or not outer.is_set(), cancel_futures=True)


def _take(channel: queue.Queue[object], outer: threading.Event | None) -> object:
    """The next item of a part; :class:`ListingStopped` once ``outer`` is set."""
    while True:
        try:
            return channel.get(timeout=None if outer is None else STOP_CHECK)
        except queue.Empty:
            if outer is not None and outer.is_set():
                raise ListingStopped from None
