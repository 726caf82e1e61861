"""The listing engine: every object under a prefix, in key order, streamed page by page.

(In key order where the bucket lists so: a directory bucket lists in no order, see :class:`Lister`.)

A listing that fits in one page costs one LIST. When the first page says there is more, the
rest of the prefix is split into key ranges that are listed at the same time (up to the
store's workers) and handed over in key order. Each range lists page by page, at most
:data:`LOOKAHEAD_PAGES` pages ahead of the consumer, so a range that is itself many pages is
simply a longer sequential listing that overlaps the others; what is held at any time is the
pages in flight. A consumer that stops early (LIMIT, the first rows of a view) stops the
listing: no range starts or continues after that.

The engine is asynchronous: each range is a task on the package's event loop
(:mod:`s3aads_pandas.storage.loop`), whose LISTs go out through obstore's asynchronous API on S3
(and on the loop's executor for a database on this machine, or a LIST obstore cannot send).
A synchronous consumer (:meth:`Lister.objects`) takes its pages from the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import NamedTuple, TypeVar

from s3aads_pandas.storage import loop
from s3aads_pandas.storage.adapter import PAGE_SIZE, Listed, ObjectStore
from s3aads_pandas.storage.buckets import lists_in_key_order
from s3aads_pandas.storage.pages import PageSequence
from s3aads_pandas.storage.retry import interrupted

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)

#: Set by a caller that stops listings it consumes from another thread (the explorer's Cancel
#: and Refresh): a listing started in this context stops within :data:`loop.WAIT_SLICE` seconds
#: of the event being set, raising :class:`ListingStopped`, and sends no LIST after it.
stop_listing: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stop_listing", default=None)
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
        """Every object under ``prefix`` in key order, after ``start_after`` and before ``before``,
        for a synchronous consumer (see :meth:`pages`)."""
        return synchronous(self.pages(prefix, start_after=start_after, before=before, first_page=first_page))

    def many(self, prefixes: Sequence[str]) -> Iterator[Listed]:
        """The objects under several prefixes, listed at the same time, in the prefixes' order."""
        return synchronous(self.pages_of_many(prefixes))

    async def pages(self, prefix: str, *, start_after: str | None = None, before: str | None = None,
                    first_page: int = PAGE_SIZE) -> AsyncGenerator[list[Listed], None]:
        """The objects under ``prefix`` after ``start_after`` and before ``before``, in key order,
        a page at a time.

        Past one page the listing fans out. ``first_page`` asks for fewer keys first, for callers
        that expect to stop early.
        """
        if not self.ordered:
            async with contextlib.aclosing(self._pages(prefix)) as unordered:
                async for objects in unordered:
                    kept = [obj for obj in objects if (start_after is None or obj.key > start_after)
                            and (before is None or obj.key < before)]
                    if kept:
                        yield kept
            return
        whole = KeyRange(start_after, None, before)
        pages = PageSequence(self.bucket, prefix, start_after)
        page = await self.store.list_page_async(self.bucket, prefix, start_after=start_after, max_keys=first_page)
        pages.check([obj.key for obj in page.objects], page.token)
        first = [obj for obj in page.objects if before is None or obj.key < before]
        if first:
            yield first
        if page.token is None or (before is not None and page.objects and page.objects[-1].key >= before):
            return
        after = page.objects[-1].key if page.objects else start_after or prefix
        bounds = await self._boundaries(prefix, after, page.objects) if self.workers > 1 else []
        bounds = [bound for bound in bounds if before is None or bound < before]
        if not bounds:
            async with contextlib.aclosing(self._pages(prefix, whole, page.token, pages)) as rest:
                async for objects in rest:
                    yield objects
            return
        lows = [None, *bounds]
        ranges = [KeyRange(after if low is None else just_before(low), low, high)
                  for low, high in zip(lows, [*bounds, before], strict=True)]
        logger.debug("listing s3://%s/%s in %d key ranges", self.bucket, prefix, len(ranges))
        async with contextlib.aclosing(in_order(lambda part: self._pages(prefix, part), ranges,
                                                self.workers)) as fanned_out:
            async for objects in fanned_out:
                yield objects

    async def pages_of_many(self, prefixes: Sequence[str]) -> AsyncGenerator[list[Listed], None]:
        """:meth:`many`, a page at a time."""
        listing = self.pages(prefixes[0]) if len(prefixes) == 1 else in_order(self._pages, prefixes, self.workers)
        async with contextlib.aclosing(listing):
            async for objects in listing:
                yield objects

    async def _pages(self, prefix: str, part: KeyRange | None = None, token: str | None = None,
                     pages: PageSequence | None = None) -> AsyncGenerator[list[Listed], None]:
        """The pages of one sequential listing of ``prefix``, cut to ``part``; ``token`` and
        ``pages`` go on with a listing whose first page was read elsewhere."""
        start_after = part.start_after if part and not token else None
        pages = pages or PageSequence(self.bucket, prefix, start_after)
        while True:
            page = await self.store.list_page_async(self.bucket, prefix, start_after=start_after, token=token)
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

    async def _boundaries(self, prefix: str, after: str, first: list[Listed]) -> list[str]:
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
        bounds, depth = await self._children(prefix, after), 1
        if len(bounds) < self.workers * RANGES_PER_WORKER:
            rest = after[len(prefix):]
            parents = [*bounds, prefix + rest[: rest.index("/") + 1]] if "/" in rest else bounds
            async with contextlib.aclosing(in_order(self._children_page(after), parents, self.workers)) as children:
                deeper = [bound async for found in children for bound in found]
            if deeper:
                bounds, depth = deeper, 2
        bounds = sorted({bound for bound in bounds if bound > after})
        keys_per_bound = len(first) / len({_head(obj.key, prefix, depth) for obj in first})
        pages = int(len(bounds) * keys_per_bound / PAGE_SIZE) + 1
        ranges = min(self.workers * RANGES_PER_WORKER, pages, len(bounds) + 1)
        return [bounds[len(bounds) * i // ranges] for i in range(1, ranges)]

    async def _children(self, prefix: str, after: str) -> list[str]:
        """The next "folders" under ``prefix`` that come after ``after``: a Delimiter listing,
        on the loop's executor (S3's go through boto3)."""
        start_after = after if after > prefix else None
        return await asyncio.to_thread(lambda: list(self.store.iter_common_prefixes(self.bucket, prefix, start_after)))

    def _children_page(self, after: str) -> Callable[[str], AsyncGenerator[list[str], None]]:
        """:meth:`_children` of a parent as one page, for :func:`in_order`."""
        async def page(parent: str) -> AsyncGenerator[list[str], None]:
            yield await self._children(parent, after)
        return page


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


async def in_order(produce: Callable[[T], AsyncGenerator[list[R], None]], parts: Sequence[T],
                   workers: int) -> AsyncGenerator[list[R], None]:
    """The lists of items of ``produce(part)`` for every part, parts run at the same time, in order.

    Each part is a task (``workers`` at a time, started in order), handing over lists of items
    through a queue that holds :data:`LOOKAHEAD_PAGES`; the consumer takes the parts one after
    the other. A part starts when an earlier one has ended, and the consumer waits only for a
    part whose earlier ones it has taken whole, which has then started: this cannot deadlock.
    Leaving the consumer cancels every part, and their requests make no further attempt.
    """
    outer = stop_listing.get()
    stop = threading.Event()  # for the parts' requests on threads, which no cancellation reaches
    queues: list[asyncio.Queue[object]] = [asyncio.Queue(maxsize=LOOKAHEAD_PAGES) for _ in parts]
    tasks: list[asyncio.Task[None]] = []

    async def run(index: int) -> None:
        interrupted.set(stop)  # a LIST in flight makes no new attempt once the consumer stops
        try:
            async with contextlib.aclosing(produce(parts[index])) as listing:
                async for items in listing:
                    await queues[index].put(items)
                    if outer is not None and outer.is_set():  # no further LIST for a caller that stopped
                        return
            await queues[index].put(_DONE)
        except Exception as error:  # handed to the consumer, which raises it in order
            await queues[index].put(_Failed(error))
        finally:
            if len(tasks) < len(parts) and not stop.is_set():  # none starts once the consumer left
                tasks.append(asyncio.create_task(run(len(tasks))))

    try:
        tasks.extend(asyncio.create_task(run(index)) for index in range(min(max(1, workers), len(parts))))
        for channel in queues:
            while (item := await channel.get()) is not _DONE:
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def synchronous(pages: AsyncGenerator[list[R], None]) -> Iterator[R]:
    """The items of ``pages``, an asynchronous listing run on the package's loop, for a
    synchronous consumer; the caller's :data:`stop_listing` event raises :class:`ListingStopped`."""
    with contextlib.closing(loop.iterate(pages, stop=stop_listing.get())) as listed:
        try:
            for page in listed:
                yield from page
        except loop.Stopped:
            raise ListingStopped from None
