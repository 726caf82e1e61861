"""S3 on the obstore transport: object requests on one obstore ``S3Store`` per bucket.

obstore releases the GIL and spends a fraction of botocore's CPU per request. What is S3's
alone, and what obstore cannot express, goes through the boto3 transport it holds, so every key
and parameter keeps working:

- keys that obstore's paths refuse or rewrite: an empty segment (``t//1``), a ``.`` or ``..``
  segment, a control character, a leading or trailing ``/``;
- a listing page that holds such a key (obstore fails the whole page): that page is listed
  again with boto3, and the listing goes on there;
- listings obstore has no words for: a Delimiter, fewer than 1,000 keys a page, a prefix that
  ends inside a segment, and the full S3 fields of :meth:`list_details`;
- PutObject parameters other than the content headers and user metadata (SSE, storage class,
  tagging, ACL...), DeleteObjects (which names each key not deleted), CopyObject and buckets;
- the DELETE of one key (obstore sends a DeleteObjects, a POST, for it);
- the listings of directory buckets (obstore resumes a listing with StartAfter, which they
  refuse), and every request of a directory bucket behind an endpoint URL (obstore's S3 Express
  sessions reach AWS's own zonal endpoints only).

Each bucket's store is made for the bucket's region, learned with one HeadBucket the first time
the process uses the bucket at that endpoint; a redirect or a refusal of the signing region met
later learns it again once and resends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import obstore
from obstore.auth.boto3 import Boto3CredentialProvider
from obstore.store import ObjectStore as Store

from s3aads_pandas.errors import AccessDeniedError, S3RequestError
from s3aads_pandas.storage.boto3_transport import Boto3Transport
from s3aads_pandas.storage.buckets import is_directory_bucket, lists_in_key_order, wrong_region
from s3aads_pandas.storage.failures import answered_error, unanswered_error, where
from s3aads_pandas.storage.integrity import check_body
from s3aads_pandas.storage.obstore_transport import (
    ATTRIBUTES,
    TOKEN,
    Inexpressible,
    ObstoreTransport,
    fetch_async,
    get_options,
    http_status,
    s3_code,
)
from s3aads_pandas.storage.redaction import remember
from s3aads_pandas.storage.transport import PAGE_SIZE, Boto3Client, Fetched, Head, Listed, ListedPage, Written

T = TypeVar("T")
logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_REGION = re.compile(r"<Region>([^<]+)</Region>")
#: Bodies larger than this are PUT through boto3. obstore's timeout (the request's deadline)
#: bounds the whole request, so a large body moving slowly would fail at the deadline, each
#: attempt sending it again; boto3's read timeout bounds each wait, a stall, not a body that moves.
LARGE_BODY = 8 * 1024 * 1024
#: How early before the deadline a lost answer counts as obstore's timeout at the deadline.
_DEADLINE_SLACK = 0.1


class RememberedCredentials(Boto3CredentialProvider):
    """boto3's credential chain for obstore, each credential it hands out registered for
    redaction: a refreshed session token (SSO, an assumed role, credential_process) is new."""

    def __call__(self) -> Any:
        credential = super().__call__()
        remember(credential["access_key_id"], credential["secret_access_key"], credential.get("token"))
        return credential


class _WrongRegion(Exception):
    """S3 answered that the store signs for another region than the bucket's (``region``, when
    it said). ``error`` is the project's error for the answer, raised as it is when the region
    proves right and the answer was not ``certain`` to be about it (a HEAD's 400 has no body)."""

    def __init__(self, error: Exception, region: str | None, *, certain: bool = True) -> None:
        super().__init__(str(error))
        self.error = error
        self.region = region
        self.certain = certain


def expressible(key: str) -> bool:
    """Whether obstore addresses exactly ``key``: its paths refuse or rewrite the others."""
    if not key or key.startswith("/") or key.endswith("/") or _CONTROL.search(key):
        return False
    return all(segment not in {"", ".", ".."} for segment in key.split("/"))


#: The region of each bucket, by endpoint, as this process last learned it: a Database made later
#: (``pd.read_s3aads("bucket/table")`` makes one a call) signs for it with no HeadBucket first. A
#: region out of date is learned again, as when a bucket moves.
_named_regions: dict[tuple[str, str], str] = {}


def forget_regions() -> None:
    """Forget the buckets' regions learned so far: the next use of each asks S3 again."""
    _named_regions.clear()


class S3Transport(ObstoreTransport[Store]):
    """S3's buckets, each through one obstore ``S3Store`` made on first use for its region.

    ``make_store(bucket, region)`` makes the store; ``serves_directory_buckets`` says whether
    obstore can reach this endpoint's directory buckets (it cannot behind an endpoint URL).
    """

    waits_on_network = True

    def __init__(self, fallback: Boto3Transport, make_store: Callable[[str, str | None], Store], *,
                 serves_directory_buckets: bool = True) -> None:
        super().__init__("s3://")
        self.fallback = fallback
        self.hooks = fallback.hooks  # one list: what boto3 sends is announced alike
        self._make_store = make_store
        self._serves_directory_buckets = serves_directory_buckets
        self._stores: dict[str, tuple[Store, str | None]] = {}  # bucket -> (store, the region it signs for)
        self._opaque_etags: set[str] = set()  # buckets whose ETags are not MD5s (SSE-KMS, SSE-C)
        self._warned = False

    @property
    def boto3_client(self) -> Boto3Client:
        """The fallback's client: buckets, DeleteObjects, CopyObject and the keys obstore cannot express."""
        return self.fallback.boto3_client

    @property
    def endpoint(self) -> str:
        return self.fallback.endpoint

    def _about(self, bucket: str, key: str | None) -> str:
        return where(bucket, key)

    def _serves(self, bucket: str) -> bool:
        """Whether obstore sends this bucket's object requests."""
        return self._serves_directory_buckets or not is_directory_bucket(bucket)

    def _store(self, bucket: str, key: str | None = None) -> Store:
        """The bucket's store, for the region S3 named for it in this process, or asked now (one
        HeadBucket)."""
        with self._lock:
            if bucket not in self._stores:
                named = _named_regions.get((self.endpoint, bucket)) or self._asked_region(bucket, key)
                self._remember(bucket, named or self.fallback.region, named=named is not None)
            return self._stores[bucket][0]

    def _asked_region(self, bucket: str, key: str | None) -> str | None:
        """The region S3 names for the bucket (one HeadBucket), or None when it does not say."""
        try:
            return self.fallback.bucket_region(bucket)
        except S3RequestError as error:  # the request itself was not sent
            raise S3RequestError(f"{error}, learning the region of the bucket of {where(bucket, key)}",
                                 error.code, retryable=error.retryable, throttled=error.throttled) from None

    def _remember(self, bucket: str, region: str | None, *, named: bool) -> None:
        """Make the bucket's store for ``region`` (under the lock); a region S3 ``named`` is kept
        for the process's other databases of this endpoint."""
        self._stores[bucket] = (self._make_store(bucket, region), region)
        if named and region is not None:
            _named_regions[(self.endpoint, bucket)] = region

    def _relearned(self, bucket: str, wrong: _WrongRegion) -> Store:
        """A store for the region S3 now gives the bucket; raise when it is the one in use."""
        region = self.fallback.bucket_region(bucket) or wrong.region
        with self._lock:
            used = self._stores[bucket][1]
            if region is None or region == used:
                raise wrong_region(bucket, region, used) if wrong.certain else wrong.error
            logger.info("s3://%s is in region %s, not %s: its requests are now signed for it", bucket, region, used)
            self._remember(bucket, region, named=True)
            return self._stores[bucket][0]

    def _call(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any],
              call: Callable[[Store], T]) -> T:
        """One obstore call; an answer that the bucket is in another region learns the region
        again and resends once."""
        store = self._store(bucket, key)
        try:
            return self._send(operation, bucket, key, params, call, store)
        except _WrongRegion as wrong:
            store = self._relearned(bucket, wrong)
        try:
            return self._send(operation, bucket, key, params, call, store)
        except _WrongRegion as wrong:
            if not wrong.certain:
                raise wrong.error from None
            raise wrong_region(bucket, wrong.region, self._stores[bucket][1]) from None

    def _unaddressable(self, key: str | None, error: Exception) -> Exception:
        return Inexpressible(str(error))

    def _not_found(self, error: Exception, bucket: str, key: str | None) -> Exception:
        return answered_error(s3_code(error) or "NoSuchKey", 404, _message(error), bucket, where(bucket, key),
                              self.endpoint)

    def _failed(self, error: Exception, bucket: str, key: str | None) -> Exception:
        """S3's answer in obstore's GenericError and the like, or the failure to get one."""
        about = where(bucket, key)
        status = http_status(error)
        text = str(error)
        lowered = text.lower()
        if "received redirect" in lowered or status in {301, 307}:
            return _WrongRegion(S3RequestError(f"S3 redirected the request for {about}", code="301"), None)
        if status:
            code = s3_code(error) or str(status)
            answered = answered_error(code, status, _message(error), bucket, about, self.endpoint)
            region = _REGION.search(text)
            if code == "AuthorizationHeaderMalformed" or (status == 400 and code == "400"):  # a HEAD has no body
                return _WrongRegion(answered, region.group(1) if region else None,
                                    certain=code == "AuthorizationHeaderMalformed")
            return answered
        if "non-partial response" in lowered:  # the store ignored the Range (moto does, for an empty object)
            return Inexpressible("a ranged GET answered in full")
        if "credential" in lowered and ("missing" in lowered or "not found" in lowered or "none" in lowered):
            return AccessDeniedError(f"no usable AWS credentials for {about}: {text.splitlines()[0]}")
        connected = not any(word in lowered for word in ("connect", "dns error", "refused"))
        return unanswered_error(about, text.splitlines()[0], connected=connected, sent=connected,
                                endpoint=self.endpoint)

    def _fell_back(self, what: str, reason: str) -> None:
        """Say once, at INFO, that a request went through boto3 because obstore could not make it."""
        with self._lock:
            level = logging.DEBUG if self._warned else logging.INFO
            self._warned = True
        logger.log(level, "%s went through boto3: obstore cannot express it (%s)", what, reason.splitlines()[0])

    # -- listing -------------------------------------------------------------------------------

    def list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                  max_keys: int, delimiter: str | None) -> ListedPage:
        start = self._native_start(bucket, prefix, start_after, token, max_keys, delimiter)
        if start is None:
            return self.fallback.list_page(bucket, prefix, start_after, token, max_keys, delimiter)
        if start.past_prefix:
            return ListedPage([], [], None)
        offset = start.offset
        try:
            return self._page(prefix, self._call("ListObjectsV2", bucket, None, _list_params(prefix, offset),
                                                 functools.partial(_first_chunk, prefix, offset)))
        except Inexpressible as error:
            self._fell_back(f"a listing page of s3://{bucket}/{prefix}", str(error))
        page = self.fallback.list_page(bucket, prefix, offset, None, max_keys, None)
        if page.token is None or not page.objects:
            return page
        return ListedPage(page.objects, page.prefixes, TOKEN + page.objects[-1].key)  # the next page on obstore

    async def list_page_async(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                              max_keys: int, delimiter: str | None) -> ListedPage:
        """:meth:`list_page` on the event loop through obstore's asynchronous API; a listing
        obstore cannot send, or of a bucket whose region is not known yet, goes the synchronous
        way on the loop's executor."""
        start = self._native_start(bucket, prefix, start_after, token, max_keys, delimiter)
        known = self._stores.get(bucket)
        if start is not None and start.past_prefix:
            return ListedPage([], [], None)
        if start is not None and known is not None:
            try:
                return self._page(prefix, await self._send_async(
                    "ListObjectsV2", bucket, None, _list_params(prefix, start.offset),
                    functools.partial(_first_chunk_async, prefix, start.offset), known[0]))
            except (_WrongRegion, Inexpressible):  # learned again, or listed through boto3
                pass
        return await asyncio.to_thread(self.list_page, bucket, prefix, start_after, token, max_keys, delimiter)

    @staticmethod
    def _native_start(bucket: str, prefix: str, start_after: str | None, token: str | None, max_keys: int,
                      delimiter: str | None) -> _Start | None:
        """Where obstore's listing of this page starts; None when obstore cannot list it."""
        native = (delimiter is None and max_keys >= PAGE_SIZE and (not prefix or prefix.endswith("/"))
                  and (token is None or token.startswith(TOKEN)) and lists_in_key_order(bucket))
        if not native:
            return None
        offset = token[len(TOKEN):] if token else start_after
        if offset is not None and not offset.startswith(prefix):  # before every key of the prefix, or after
            return _Start(None, past_prefix=offset > prefix)
        return _Start(offset, past_prefix=False)

    @staticmethod
    def _page(prefix: str, objects: Sequence[Any]) -> ListedPage:
        """One LIST's page from obstore's first chunk, which is S3's first page."""
        listed = [Listed(obj["path"], obj["size"], obj["last_modified"], obj.get("e_tag")) for obj in objects]
        if listed and not (listed[0].key.startswith(prefix) and listed[-1].key.startswith(prefix)):
            raise Inexpressible("a key that ends with '/' lists without it")
        if any(obj.size == 0 for obj in listed):  # a folder marker `t/a/` lists as an empty `t/a`
            raise Inexpressible("an empty object, which lists alike with a folder marker (a key ending in '/')")
        token = TOKEN + listed[-1].key if len(listed) >= PAGE_SIZE else None
        return ListedPage(listed, [], token)

    def list_details(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                     max_keys: int) -> ListedPage:
        return self.fallback.list_details(bucket, prefix, start_after, token, max_keys)

    # -- objects -------------------------------------------------------------------------------

    def _native(self, bucket: str, key: str, native: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``native()`` through obstore, or ``fallback()`` through boto3 for a key obstore cannot express."""
        if not self._serves(bucket):
            return fallback()
        if expressible(key):
            try:
                return native()
            except Inexpressible as error:
                reason = str(error)
        else:
            reason = f"the key {key!r}"
        self._fell_back("a request", reason)
        return fallback()

    def get(self, bucket: str, key: str, deadline: float, byte_range: str | None = None,
            if_none_match: str | None = None) -> Fetched:
        return self._native(bucket, key, lambda: self._checked_get(bucket, key, deadline, byte_range, if_none_match),
                            lambda: self.fallback.get(bucket, key, deadline, byte_range, if_none_match))

    def _checked_get(self, bucket: str, key: str, deadline: float, byte_range: str | None,
                     if_none_match: str | None) -> Fetched:
        """The GET through obstore, its body checked against its ETag (an MD5) when whole."""
        options = get_options(byte_range, if_none_match)
        try:
            fetched = self._get(bucket, key, byte_range, if_none_match, options)
        except S3RequestError as error:
            raise _at_deadline(error, bucket, key, deadline) from None
        if byte_range:
            return _with_etag(fetched, bucket, key)
        checked = self._checked(bucket, key, fetched)
        return checked if checked is not None else self._checked_again(bucket, key, fetched.body, deadline)

    async def get_async(self, bucket: str, key: str, deadline: float) -> Fetched:
        """The GET on the event loop through obstore's asynchronous API, checked as
        :meth:`_checked_get` checks it; what obstore cannot send, or a bucket whose region is not
        known yet, goes the synchronous way on the loop's executor."""
        known = self._stores.get(bucket)
        if known is None or not self._serves(bucket) or not expressible(key):
            return await asyncio.to_thread(self.get, bucket, key, deadline)
        try:
            fetched = await self._send_async("GetObject", bucket, key, {}, functools.partial(fetch_async, key),
                                             known[0])
        except (_WrongRegion, Inexpressible):  # learned again, or sent through boto3
            return await asyncio.to_thread(self.get, bucket, key, deadline)
        except S3RequestError as error:
            raise _at_deadline(error, bucket, key, deadline) from None
        checked = self._checked(bucket, key, fetched)
        if checked is not None:
            return checked
        return await asyncio.to_thread(self._checked_again, bucket, key, fetched.body, deadline)

    def _checked(self, bucket: str, key: str, fetched: Fetched) -> Fetched | None:
        """A whole object's answer, its body checked against its ETag; None when the body does
        not match it (:meth:`_checked_again` then tells why)."""
        fetched = _with_etag(fetched, bucket, key)._replace(size=len(fetched.body))
        if bucket in self._opaque_etags or is_directory_bucket(bucket):
            return fetched
        try:
            check_body(fetched.body, fetched.etag, where(bucket, key))
        except S3RequestError:
            return None
        return fetched

    def _checked_again(self, bucket: str, key: str, body: bytes, deadline: float) -> Fetched:
        """The object through boto3, whose answer's headers obstore does not show: they say
        whether the object is encrypted (its ETag then no MD5) and carry its checksums, by which
        that body is checked. The same body again means an opaque ETag, not a corrupted body."""
        fetched = self.fallback.get(bucket, key, deadline)
        if fetched.body == body:
            logger.debug("s3://%s holds objects whose ETags are not MD5s (encrypted)", bucket)
            with self._lock:
                self._opaque_etags.add(bucket)
        return fetched

    def head(self, bucket: str, key: str) -> Head:
        return self._native(bucket, key, functools.partial(super().head, bucket, key),
                            functools.partial(self.fallback.head, bucket, key))

    def put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
            condition: Mapping[str, str]) -> Written:
        through_boto3 = functools.partial(self.fallback.put, bucket, key, body, params, condition)
        if not self._puts_natively(body, params):
            return through_boto3()
        return self._native(bucket, key, functools.partial(super().put, bucket, key, body, params, condition),
                            through_boto3)

    async def put_async(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
                        condition: Mapping[str, str]) -> Written:
        """A PUT on the event loop; what obstore cannot send goes the synchronous way on the
        loop's executor (a refusal for the region sent nothing, so the condition still holds)."""
        if bucket not in self._stores or not self._serves(bucket) or not expressible(key) \
                or not self._puts_natively(body, params):
            return await asyncio.to_thread(self.put, bucket, key, body, params, condition)
        try:
            return await super().put_async(bucket, key, body, params, condition)
        except (_WrongRegion, Inexpressible):
            return await asyncio.to_thread(self.put, bucket, key, body, params, condition)

    @staticmethod
    def _puts_natively(body: bytes, params: Mapping[str, Any]) -> bool:
        """Whether obstore sends this PUT: parameters it has words for, and a body of at most
        :data:`LARGE_BODY` (obstore's timeout bounds the whole upload, boto3's each wait)."""
        unmapped = sorted(set(params) - set(ATTRIBUTES) - {"Metadata"})
        if unmapped:
            logger.debug("PutObject with %s goes through boto3", ", ".join(unmapped))
            return False
        if len(body) > LARGE_BODY:
            logger.debug("a PutObject of %d bytes goes through boto3", len(body))
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        """A DeleteObject, through boto3: obstore deletes one key with a DeleteObjects, a POST,
        where S3's DELETE is free and is what a request count should say was sent."""
        self.fallback.delete(bucket, key)

    def delete_batch(self, bucket: str, keys: Sequence[str]) -> dict[str, str]:
        return self.fallback.delete_batch(bucket, keys)

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str,
             params: Mapping[str, Any]) -> Written:
        return self.fallback.copy(source_bucket, source_key, bucket, key, params)

    # -- buckets -------------------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        return self.fallback.list_buckets()

    def head_bucket(self, bucket: str) -> None:
        self.fallback.head_bucket(bucket)

    def create_bucket(self, bucket: str) -> None:
        """Create the bucket (boto3), which is then in the configured region: nothing to learn."""
        self.fallback.create_bucket(bucket)
        with self._lock:
            self._remember(bucket, self.fallback.region, named=True)

    def put_parameters(self) -> frozenset[str]:
        return self.fallback.put_parameters()


class _Start(NamedTuple):
    """Where obstore's listing of a page starts: after ``offset`` (None: at the prefix's first
    key); ``past_prefix``: after every key of the prefix, so the page is empty."""

    offset: str | None
    past_prefix: bool


def _list_params(prefix: str, offset: str | None) -> dict[str, Any]:
    """What a LIST of obstore's sends, for the request hooks; a key obstore cannot send is refused."""
    if offset is not None and not expressible(offset):
        raise Inexpressible(f"the key {offset!r}")
    return {"Prefix": prefix, "MaxKeys": PAGE_SIZE, **({"StartAfter": offset} if offset else {})}


def _first_chunk(prefix: str, offset: str | None, store: Store) -> Sequence[Any]:
    """obstore's first chunk of a listing: S3's first page."""
    return next(iter(obstore.list(store, prefix or None, offset=offset, chunk_size=PAGE_SIZE)), [])


async def _first_chunk_async(prefix: str, offset: str | None, store: Store) -> Sequence[Any]:
    """:func:`_first_chunk` on the event loop."""
    try:
        return await obstore.list(store, prefix or None, offset=offset, chunk_size=PAGE_SIZE).__anext__()
    except StopAsyncIteration:
        return []


def _at_deadline(error: S3RequestError, bucket: str, key: str, deadline: float) -> S3RequestError:
    """A GET's failure; an answer lost at the request's deadline is obstore's own timeout: said so."""
    if error.answer_lost and time.monotonic() >= deadline - _DEADLINE_SLACK:
        return S3RequestError(f"the body of {where(bucket, key)} was still arriving at the request's deadline; "
                              "raise the deadline setting for slow links", retryable=True)
    return error


def _with_etag(fetched: Fetched, bucket: str, key: str) -> Fetched:
    if not fetched.etag:
        raise S3RequestError(f"S3 answered the GET of {where(bucket, key)} without an ETag header", retryable=True)
    return fetched


def _message(error: Exception) -> str:
    match = _MESSAGE.search(str(error))
    return match.group(1) if match else str(error).splitlines()[0]
