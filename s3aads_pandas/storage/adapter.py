"""The S3 adapter: every request of the project, over one transport, with one retry layer.

Everything above this module speaks in buckets, keys and bytes, and sees only the exceptions of
:mod:`s3aads_pandas.errors`. The transport (obstore or boto3, see
:mod:`s3aads_pandas.storage.transport`) sends one attempt; this module retries, decides what a
refused conditional write means, and batches bulk deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

from s3aads_pandas.errors import (
    BulkOperationError,
    DatabaseNameTakenError,
    DatabaseNotFoundError,
    InvalidArgumentError,
    RowChangedError,
    RowExistsError,
    S3aadsError,
    S3RequestError,
    WriteOutcomeUnknownError,
    failure_reason,
)
from s3aads_pandas.storage import loop, usage
from s3aads_pandas.storage.cache import PayloadCache
from s3aads_pandas.storage.failures import (
    BucketOwned,
    BucketTaken,
    ConditionRefused,
    NotFound,
    NotModified,
    RangeNotSatisfiable,
)
from s3aads_pandas.storage.pages import PageSequence
from s3aads_pandas.storage.retry import (
    AdaptiveLimiter,
    LatencyPace,
    RampingLimiter,
    Retrier,
    RetryPolicy,
    check_interrupted,
)
from s3aads_pandas.storage.transport import (
    PAGE_SIZE,
    AsyncObjects,
    Boto3Client,
    Fetched,
    Head,
    Listed,
    ListedPage,
    RequestHook,
    Transport,
    Written,
)

__all__ = ["PAGE_SIZE", "WRITE_ID", "Listed", "ListedPage", "ObjectStore", "Written"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Requests one store's threads send at once, at most (before throttling lowers it).
DEFAULT_MAX_THREADS = 16
#: Requests a bulk transfer on the event loop keeps in flight: it starts at the first and grows
#: toward the second while S3 keeps pace (see :class:`RampingLimiter`).
BULK_START = 64
DEFAULT_MAX_IN_FLIGHT = 512
#: LISTs in flight when a store begins to list; fast answers ramp them up to its threads.
LIST_START = 4
#: User metadata that a conditional write carries, so that a retry can recognise its own object
#: (its write id) and the versions it replaced (their write ids and ETags, newest first, at most
#: HISTORY_LENGTH): a retry refused after a lost answer reads them to tell what became of its
#: attempt, even after other writers replaced it.
WRITE_ID = "s3aads-write-id"
HISTORY = "s3aads-replaced"
HISTORY_LENGTH = 8
#: What an insert (If-None-Match) replaces, in a history.
NOTHING = "none"
#: Versions this store read or wrote lately, by (bucket, key, ETag): their write id and history.
KNOWN_VERSIONS = 4096


#: Characters XML 1.0 cannot carry, so neither can a DeleteObjects request.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Version(NamedTuple):
    write_id: str
    history: tuple[tuple[str, str], ...]  # (write id, ETag) of the versions it replaced, newest first


def _version(metadata: Mapping[str, str]) -> _Version | None:
    """The write id and history a stored object's metadata records, if a conditional write made it."""
    write_id = metadata.get(WRITE_ID)
    if not write_id:
        return None
    pairs = (entry.partition("=") for entry in metadata.get(HISTORY, "").split())
    return _Version(write_id, tuple((name, etag) for name, _, etag in pairs))


def _versioned(params: Mapping[str, Any] | None, replaced: tuple[str, str] | None,
               base: _Version | None) -> tuple[_Version, dict[str, Any]]:
    """A conditional PUT's new version (a write id, and the history it records: the version it
    replaces, then that one's history) and its parameters, which carry both as metadata."""
    write_id = uuid.uuid4().hex
    history = ((replaced,) + (base.history if base else ()))[:HISTORY_LENGTH] if replaced else ()
    extra = dict(params or {})
    recorded = {HISTORY: " ".join(f"{name}={etag.strip(chr(34))}" for name, etag in history)} if history else {}
    extra["Metadata"] = {**extra.get("Metadata", {}), WRITE_ID: write_id, **recorded}
    return _Version(write_id, history), extra


def _answer_lost(attempts: Sequence[S3RequestError]) -> bool:
    """Whether an attempt before the last (refused) one went out and lost its answer: only then
    can the refusal be that attempt's own doing."""
    return any(attempt.answer_lost for attempt in attempts[:-1])


class ObjectStore:
    """Typed calls on one transport (thread-safe, as both transports are).

    Every request goes through one :class:`Retrier`, so retries and the SlowDown backoff are
    shared by all the threads that use this store. ``hooks`` are called with the S3 operation
    and its parameters before every attempt, on either transport. With a ``cache``, every
    payload read or written is kept under its ETag, and reads ask for what it does not hold.
    """

    def __init__(
        self, transport: Transport, max_threads: int = DEFAULT_MAX_THREADS, policy: RetryPolicy | None = None,
        cache: PayloadCache | None = None, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.transport = transport
        self.cache = cache
        if usage.count not in transport.hooks:  # a transport handed to several stores counts once
            transport.hooks.append(usage.count)
        self.retrier = Retrier(AdaptiveLimiter(max_threads), policy)
        self.list_pace = LatencyPace(max_threads, start=LIST_START)
        #: The pace of bulk transfers on the event loop (:meth:`get_async`, :meth:`put_async`).
        self.bulk_limiter = RampingLimiter(max_in_flight, BULK_START)
        self._versions: OrderedDict[tuple[str, str, str], _Version] = OrderedDict()
        self._versions_lock = threading.Lock()

    def _know(self, bucket: str, key: str, etag: str | None, version: _Version | None) -> None:
        """Remember which write made the version ``etag`` of a key, for a later If-Match write."""
        if not etag or version is None:
            return
        with self._versions_lock:
            self._versions[(bucket, key, etag)] = version
            self._versions.move_to_end((bucket, key, etag))
            while len(self._versions) > KNOWN_VERSIONS:
                self._versions.popitem(last=False)

    def _known(self, bucket: str, key: str, etag: str) -> _Version | None:
        with self._versions_lock:
            return self._versions.get((bucket, key, etag))

    @property
    def hooks(self) -> list[RequestHook]:
        return self.transport.hooks

    @property
    def boto3_client(self) -> Boto3Client:
        """The boto3 client behind the buckets' requests (and every request on that transport)."""
        client = self.transport.boto3_client
        if client is None:
            raise InvalidArgumentError(f"{self.endpoint} databases are not in S3: they have no boto3 client")
        return client

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint

    def object_url(self, bucket: str, key: str) -> str:
        """How messages name an object: ``s3://bucket/key``, ``file:///path/db/key``..."""
        return f"{self.transport.database_url(bucket)}/{key}"

    def _request(self, call: Callable[[], T], history: list[S3RequestError] | None = None) -> T:
        """One request, retried while the failure is transient."""
        return self.retrier(call, history)

    def _deadline(self) -> float:
        """The monotonic time by which a request starting now must be done."""
        return time.monotonic() + (self.retrier.policy.deadline or float("inf"))

    # -- buckets -------------------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        return self._request(self.transport.list_buckets)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._request(lambda: self.transport.head_bucket(bucket))
        except (NotFound, DatabaseNotFoundError):
            return False
        return True

    def create_bucket(self, bucket: str) -> bool:
        """Create the bucket; False when this account already has it.

        A HeadBucket comes first: in us-east-1 S3 answers a CreateBucket of a bucket its caller
        owns with success, so the create alone cannot tell a new bucket from an existing one.
        """
        with contextlib.suppress(S3RequestError):  # 403: not ours, or no right to ask; CreateBucket tells
            if self.bucket_exists(bucket):
                return False
        try:
            self._request(lambda: self.transport.create_bucket(bucket))
        except BucketOwned:
            return False
        except BucketTaken:
            with contextlib.suppress(S3aadsError):
                if self.bucket_exists(bucket):
                    return False
            raise DatabaseNameTakenError(
                f"database name {bucket!r} is taken: S3 bucket names are global and another "
                "account owns this one; choose another name"
            ) from None
        logger.info("created bucket %s", bucket)
        return True

    # -- listing -------------------------------------------------------------------------------

    def list_page(self, bucket: str, prefix: str, *, start_after: str | None = None, token: str | None = None,
                  max_keys: int = PAGE_SIZE, delimiter: str | None = None) -> ListedPage:
        """One LIST request: its objects (key and size only), common prefixes and next token.

        LISTs are paced by their latency (:class:`LatencyPace`), which full pages of keys say:
        a server that slows down under many LISTs at once gets fewer. A LIST of a listing
        stopped while it waited for its turn is not sent (:class:`Interrupted`).
        """
        with self.list_pace.timed(observed=max_keys >= PAGE_SIZE and delimiter is None):
            check_interrupted()  # a listing stopped while this LIST waited for its slot sends nothing
            return self._request(lambda: self.transport.list_page(bucket, prefix, start_after, token,
                                                                  min(max_keys, PAGE_SIZE), delimiter))

    async def list_page_async(self, bucket: str, prefix: str, *, start_after: str | None = None,
                              token: str | None = None, max_keys: int = PAGE_SIZE) -> ListedPage:
        """:meth:`list_page` (of objects) on the event loop, paced alike; on the loop's executor
        where the transport does not send on the loop (see :attr:`sends_async`)."""
        if not self.sends_async:
            return await asyncio.to_thread(functools.partial(self.list_page, bucket, prefix, start_after=start_after,
                                                             token=token, max_keys=max_keys))
        transport = cast(AsyncObjects, self.transport)
        async with self.list_pace.timed_async(observed=max_keys >= PAGE_SIZE):
            check_interrupted()
            return await self.retrier.run_async(
                lambda: transport.list_page_async(bucket, prefix, start_after, token, min(max_keys, PAGE_SIZE), None),
                self.retrier.limiter)

    def iter_objects(self, bucket: str, prefix: str, start_after: str | None = None,
                     first_page: int = PAGE_SIZE) -> Iterator[Listed]:
        """Every object under ``prefix`` (after the key ``start_after``) with all its listed
        fields (the storage class too), page by page.

        ``first_page`` asks for fewer keys first, when the caller expects to stop early.
        """
        token, max_keys = None, first_page
        pages = PageSequence(bucket, prefix, start_after)
        while True:
            page = self._request(
                functools.partial(self.transport.list_details, bucket, prefix, start_after, token, max_keys))
            token = page.token
            pages.check([obj.key for obj in page.objects], token)
            yield from page.objects
            if token is None:
                return
            max_keys = PAGE_SIZE

    def iter_common_prefixes(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """The distinct next "folders" under ``prefix`` (after ``start_after``): a Delimiter listing."""
        token = None
        pages = PageSequence(bucket, prefix, start_after)
        while True:
            page = self.list_page(bucket, prefix, start_after=start_after, token=token, delimiter="/")
            pages.check(page.prefixes, page.token)
            yield from page.prefixes
            if page.token is None:
                return
            token = page.token

    # -- objects -------------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's body, or None when there is no such key (one GET, no HEAD).

        When the cache holds a version of the key, the GET asks for the body only if the object
        is another version now (If-None-Match): S3 answers 304, with no body, when it is not.
        """
        held = self.cache.latest(self.endpoint, bucket, key) if self.cache is not None else None
        try:
            fetched = self._fetch(bucket, key, held.etag if held is not None else None)
        except NotModified:
            if held is None:  # only a conditional GET is answered 304
                raise
            usage.received(len(held.body), cached=True)
            return held.body
        return None if fetched is None else fetched.body

    @property
    def sends_async(self) -> bool:
        """Whether GETs and PUTs go out on the event loop: the transport sends them there and
        its requests wait on a network (S3 through obstore), in a process that can run the loop
        (see :func:`loop.available`). A database in memory or on disk answers sooner than
        obstore's asynchronous API hands an answer over (about 0.3 ms a request on 2 cores,
        against 0.09 ms for a whole synchronous select), so its requests stay on threads."""
        return getattr(self.transport, "waits_on_network", False) and loop.available()

    @property
    def _sends_on_loop(self) -> bool:
        """Whether GETs and unconditional PUTs go out on the event loop itself: through a
        transport that sends them there, with no cache (whose files are read and written)."""
        return self.sends_async and self.cache is None

    async def get_async(self, bucket: str, key: str) -> bytes | None:
        """:meth:`get` on the event loop, paced by :attr:`bulk_limiter`; on the loop's executor
        where the GET does not go out on the loop (see :attr:`_sends_on_loop`)."""
        if not self._sends_on_loop:
            return await asyncio.to_thread(self.get, bucket, key)
        fetched = await self._fetch_async(bucket, key)
        return None if fetched is None else fetched.body

    async def get_with_etag_async(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """:meth:`get_with_etag` on the event loop, as :meth:`get_async` sends it."""
        if not self._sends_on_loop:
            return await asyncio.to_thread(self.get_with_etag, bucket, key)
        fetched = await self._fetch_async(bucket, key)
        return None if fetched is None else (fetched.body, fetched.etag)

    async def _fetch_async(self, bucket: str, key: str) -> Fetched | None:
        """:meth:`_fetch` (with no condition) on the event loop."""
        deadline = self._deadline()
        transport = cast(AsyncObjects, self.transport)
        try:
            fetched = await self.retrier.run_async(lambda: transport.get_async(bucket, key, deadline),
                                                   self.bulk_limiter)
        except NotFound:
            return None
        self._noted(bucket, key, fetched)
        return fetched

    async def put_async(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any] | None = None, *,
                        overwrite: bool = True) -> Written:
        """:meth:`put` on the event loop, paced by :attr:`bulk_limiter`; on the loop's executor
        where the PUT does not go out on the loop (see :attr:`_sends_on_loop`)."""
        if not self._sends_on_loop:
            return await asyncio.to_thread(functools.partial(self.put, bucket, key, body, params, overwrite=overwrite))
        if overwrite:
            extra = dict(params or {})
            transport = cast(AsyncObjects, self.transport)
            return await self.retrier.run_async(lambda: transport.put_async(bucket, key, body, extra, {}),
                                                self.bulk_limiter)
        inserted = await self._conditional_put_async(bucket, key, body, params, (NOTHING, ""), None, IfNoneMatch="*")
        if inserted is None:
            raise self._exists(bucket, key)
        return inserted

    async def put_if_match_async(self, bucket: str, key: str, body: bytes, etag: str,
                                 params: Mapping[str, Any] | None = None) -> Written:
        """:meth:`put_if_match` on the event loop, as :meth:`put_async` sends it."""
        if not self._sends_on_loop:
            return await asyncio.to_thread(self.put_if_match, bucket, key, body, etag, params)
        base = self._known(bucket, key, etag)
        replaced = None if base is None else (base.write_id, etag)
        written = await self._conditional_put_async(bucket, key, body, params, replaced, base, IfMatch=etag)
        if written is None:
            raise await asyncio.to_thread(self._changed, bucket, key, etag)
        return written

    async def delete_async(self, bucket: str, key: str) -> dict[str, Any]:
        """:meth:`delete` on the loop's executor (S3's DeleteObject goes through boto3)."""
        return await asyncio.to_thread(self.delete, bucket, key)

    def get_listed(self, bucket: str, key: str, etag: str | None) -> bytes | None:
        """The body of the version of the key that a listing named by its ``etag``: from the
        cache when it holds that version, with no request; else one GET."""
        body = self.cached(bucket, key, etag)
        if body is not None:
            return body
        found = self.get_with_etag(bucket, key)
        return None if found is None else found[0]

    def cached(self, bucket: str, key: str, etag: str | None) -> bytes | None:
        """The body of that version of the key, if the cache holds it (no request is sent)."""
        body = self.cache.get(self.endpoint, bucket, key, etag) if self.cache is not None and etag else None
        if body is not None:
            usage.received(len(body), cached=True)
        return body

    def get_with_etag(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The body and ETag of an object (one GET), or None when missing."""
        fetched = self._fetch(bucket, key)
        return None if fetched is None else (fetched.body, fetched.etag)

    def _fetch(self, bucket: str, key: str, if_none_match: str | None = None) -> Fetched | None:
        """One GET (conditional with ``if_none_match``: :class:`NotModified` when S3 answers 304),
        None when missing. What arrives is noted: who wrote that version, its size for usage,
        and its payload in the cache."""
        deadline = self._deadline()
        try:
            fetched = self._request(lambda: self.transport.get(bucket, key, deadline, if_none_match=if_none_match))
        except NotFound:
            return None
        self._noted(bucket, key, fetched)
        return fetched

    def _noted(self, bucket: str, key: str, fetched: Fetched) -> None:
        """Note what a GET brought: who wrote that version, its size for usage, and its payload
        in the cache."""
        self._know(bucket, key, fetched.etag, _version(fetched.metadata))
        usage.received(len(fetched.body))
        if self.cache is not None:
            self.cache.put(self.endpoint, bucket, key, fetched.etag, fetched.body)

    def _stored(self, bucket: str, key: str, body: bytes, written: Written) -> Written:
        """A written payload goes into the cache under the ETag S3 gave it: a read after a
        write sends only its listing."""
        if self.cache is not None:
            self.cache.put(self.endpoint, bucket, key, written.etag, body)
        return written

    def get_range(self, bucket: str, key: str, byte_range: str) -> tuple[bytes, int]:
        """Part of an object (one ranged GET, ``bytes=0-99`` or ``bytes=-100``) and its full size."""
        deadline = self._deadline()
        try:
            fetched = self._request(lambda: self.transport.get(bucket, key, deadline, byte_range))
        except RangeNotSatisfiable:  # an empty object has no byte to give
            return b"", 0
        return fetched.body, fetched.size

    def head(self, bucket: str, key: str) -> Head | None:
        """The object's ETag, size and user metadata (one HEAD), or None when there is no such key."""
        try:
            return self._request(lambda: self.transport.head(bucket, key))
        except NotFound:
            return None

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        params: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = True,
    ) -> Written:
        """One PUT; with ``overwrite=False`` a conditional one (If-None-Match: *) that raises
        :class:`RowExistsError` when the key exists. Returns the new ETag (and version id)."""
        if overwrite:
            extra = dict(params or {})
            written = self._request(lambda: self.transport.put(bucket, key, body, extra, {}))
            return self._stored(bucket, key, body, written)
        inserted = self._conditional_put(bucket, key, body, params, (NOTHING, ""), None, IfNoneMatch="*")
        if inserted is None:
            raise self._exists(bucket, key)
        return self._stored(bucket, key, body, inserted)

    def _exists(self, bucket: str, key: str) -> RowExistsError:
        return RowExistsError(f"{self.object_url(bucket, key)} exists and overwrite=False")

    def put_if_match(self, bucket: str, key: str, body: bytes, etag: str,
                     params: Mapping[str, Any] | None = None) -> Written:
        """PUT only over the object whose ETag is ``etag`` (If-Match): compare-and-swap."""
        base = self._known(bucket, key, etag)
        replaced = None if base is None else (base.write_id, etag)
        written = self._conditional_put(bucket, key, body, params, replaced, base, IfMatch=etag)
        if written is None:
            raise self._changed(bucket, key, etag)
        return self._stored(bucket, key, body, written)

    def _changed(self, bucket: str, key: str, etag: str) -> RowChangedError:
        """The error of a refused compare-and-swap, which says whether the row changed or went (one HEAD)."""
        state = "changed" if self.exists(bucket, key) else "was deleted"
        return RowChangedError(
            f"{self.object_url(bucket, key)} {state} since ETag {etag} was read; read it again and retry"
        )

    def _conditional_put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any] | None,
                         replaced: tuple[str, str] | None, base: _Version | None,
                         **condition: str) -> Written | None:
        """A PUT under ``condition``; None when S3 refuses it because the condition does not hold.

        ``replaced`` is the (write id, ETag) of the version the condition names (``NOTHING`` for
        an insert), None when unknown; ``base`` that version's own history. A refusal answered
        to the first attempt is a conflict, always, whatever is stored: another writer got there
        first, even if it wrote the same bytes. Only a retry of an attempt whose answer was lost
        (a read timeout or a reset after the request went out) can be refused because that very
        attempt landed: then the stored object decides (:meth:`_lost_outcome`). Bytes are never
        compared.
        """
        version, extra = _versioned(params, replaced, base)
        attempts: list[S3RequestError] = []
        try:
            written = self._request(lambda: self.transport.put(bucket, key, body, extra, condition), attempts)
        except (ConditionRefused, NotFound):  # If-Match of a deleted key: a 404
            if not _answer_lost(attempts):
                return None
            return self._lost_outcome(bucket, key, self.head(bucket, key), version.write_id, replaced)
        self._know(bucket, key, written.etag, version)
        return written

    async def _conditional_put_async(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any] | None,
                                     replaced: tuple[str, str] | None, base: _Version | None,
                                     **condition: str) -> Written | None:
        """:meth:`_conditional_put` on the event loop (the rare HEAD after a lost answer on the
        loop's executor)."""
        version, extra = _versioned(params, replaced, base)
        attempts: list[S3RequestError] = []
        transport = cast(AsyncObjects, self.transport)
        try:
            written = await self.retrier.run_async(lambda: transport.put_async(bucket, key, body, extra, condition),
                                                   self.bulk_limiter, attempts)
        except (ConditionRefused, NotFound):
            if not _answer_lost(attempts):
                return None
            head = await asyncio.to_thread(self.head, bucket, key)
            return self._lost_outcome(bucket, key, head, version.write_id, replaced)
        self._know(bucket, key, written.etag, version)
        return written

    @staticmethod
    def _lost_outcome(bucket: str, key: str, head: Head | None, write_id: str,
                      replaced: tuple[str, str] | None) -> Written | None:
        """What became of a write whose answer was lost and whose retry was refused, from
        ``head``, the object stored now.

        The stored object is ours, or replaced ours (its history names our write id): ours
        landed, with the ETag the history gives. Its history names the version ours was to
        replace, and not ours: another writer replaced that version first, a conflict (None).
        Anything else (more writers since than a history holds, a delete, an object written
        without a write id) cannot tell: :class:`WriteOutcomeUnknownError`.
        """
        stored = _version(head.metadata) if head else None
        if head is not None and stored is not None and stored.write_id == write_id:
            logger.info("a retry of the write of s3://%s/%s was refused because its first attempt landed", bucket, key)
            return Written(head.etag)
        earlier = dict(stored.history) if stored else {}
        if write_id in earlier:
            logger.info("the lost write of s3://%s/%s landed and was replaced since", bucket, key)
            return Written(f'"{earlier[write_id]}"')
        if replaced is not None and replaced[0] in earlier:
            return None
        raise WriteOutcomeUnknownError(
            f"the write of s3://{bucket}/{key} may or may not have landed: an attempt's answer was lost, its "
            f"retry was refused, and the row has {'changed' if head else 'been deleted'} since; read it to decide",
            key, head.etag if head else None,
        )

    def delete(self, bucket: str, key: str) -> dict[str, Any]:
        """Delete one key (one DeleteObject; no error when it does not exist, as in S3)."""
        self._request(lambda: self.transport.delete(bucket, key))
        return {}

    def delete_many(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete keys with DeleteObjects, 1,000 a request; raise naming every key not deleted.

        Every batch is tried, also after one failed: the keys S3 reports in ``Errors`` and all
        the keys of a batch whose request failed end in one :class:`BulkOperationError`.
        """
        failures: dict[str, str] = {}
        total = 0
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == PAGE_SIZE:
                failures.update(self._delete_batch(bucket, batch))
                total += len(batch)
                batch = []
        if batch:
            failures.update(self._delete_batch(bucket, batch))
            total += len(batch)
        if failures:
            raise BulkOperationError("delete", failures, total)
        return total

    def _delete_batch(self, bucket: str, keys: list[str]) -> dict[str, str]:
        """The keys of one DeleteObjects request that were not deleted, with the reason.

        A key that XML 1.0 cannot carry (most control characters) would fail the whole request:
        such keys are deleted one by one (DeleteObject takes them in its URL).
        """
        failures: dict[str, str] = {}
        plain = []
        for key in keys:
            if not _NOT_XML.search(key):
                plain.append(key)
                continue
            try:
                self.delete(bucket, key)
            except S3aadsError as error:
                failures[key] = failure_reason(error)
        if not plain:
            return failures
        try:
            return failures | self._request(lambda: self.transport.delete_batch(bucket, plain))
        except S3aadsError as error:  # denied, throttled past the retries, ...: the next batch may work
            return failures | dict.fromkeys(plain, failure_reason(error))

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str, **params: Any) -> Written:
        return self._request(lambda: self.transport.copy(source_bucket, source_key, bucket, key, params))

    def check_put_params(self, params: Mapping[str, Any]) -> None:
        """Refuse extra PutObject parameters that S3 does not know, before anything is sent."""
        if not isinstance(params, Mapping):
            raise InvalidArgumentError(
                f"metadata must be a dict of S3 PutObject parameters, got {type(params).__name__}"
            )
        reserved = sorted({"Bucket", "Key", "Body"} & set(params))
        if reserved:
            raise InvalidArgumentError(
                f"metadata cannot set {', '.join(reserved)}: the table decides them"
            )
        known = self.transport.put_parameters()
        unknown = sorted(set(params) - known)
        if unknown and not known:
            raise InvalidArgumentError(
                f"{self.transport.endpoint} databases keep only the payload: they cannot store "
                f"{', '.join(unknown)}; write without metadata, or use an S3 or memory:// database"
            )
        if unknown:
            raise InvalidArgumentError(
                f"unknown S3 PutObject parameter(s) {', '.join(unknown)} in metadata; use names "
                "such as ContentType, Metadata, ServerSideEncryption, StorageClass"
            )
