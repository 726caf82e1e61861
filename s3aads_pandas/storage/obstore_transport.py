"""The obstore transport: object requests through obstore (Rust's object_store), on any of its stores.

This module makes the requests (LIST, GET, HEAD, PUT, DELETE), announces each to the hooks
under the S3 operation it stands for (so that request counts read alike everywhere) and
raises the project's exceptions. A backend is a subclass that says where its databases are,
gives each one's store, and overrides the steps its store cannot take as they are written here:

- :mod:`~s3aads_pandas.storage.memory`, ``MemoryStore``: none; it keeps keys in key order and
  makes both conditional writes itself;
- :mod:`~s3aads_pandas.storage.folder`, ``LocalStore``: key order, If-Match and empty folders;
- :mod:`~s3aads_pandas.storage.s3_transport`, ``S3Store``: each bucket's region, and through
  boto3 what is S3's alone (buckets, DeleteObjects, CopyObject, Delimiter listings, the keys
  and parameters obstore cannot express).
"""

from __future__ import annotations

import abc
import asyncio
import functools
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    InvalidPathError,
    NotFoundError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import ObjectStore as Store

from s3aads_pandas.errors import AccessDeniedError, DatabaseNotFoundError, InvalidArgumentError, S3RequestError
from s3aads_pandas.storage.failures import BucketOwned, ConditionRefused, NotFound, NotModified
from s3aads_pandas.storage.redaction import redact
from s3aads_pandas.storage.transport import (
    Boto3Client,
    Fetched,
    Head,
    Listed,
    ListedPage,
    RequestHook,
    Written,
    get_parameters,
)

T = TypeVar("T")
S = TypeVar("S", bound=Store)  # the kind of obstore store a backend keeps its databases in

#: PutObject parameters that obstore sends, as the attribute names it takes.
ATTRIBUTES = {
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
}
#: Continuation tokens of obstore pages carry the last key or folder of the page before.
TOKEN = "obstore:"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]+)</Code>")


class Inexpressible(Exception):
    """obstore cannot make this request as asked (a key its paths refuse, a Range it has no words for)."""


class ObstoreTransport(abc.ABC, Generic[S]):
    """One obstore store per database; ``url`` names where the databases are (``memory://``)."""

    #: Whether the store keeps user metadata and content headers with each object.
    keeps_metadata: bool = True
    #: Whether each request waits on a network round trip: then GETs and PUTs go out on the
    #: package's event loop, many at once (see ``ObjectStore.sends_async``).
    waits_on_network: bool = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.hooks: list[RequestHook] = []
        self._lock = threading.Lock()

    @property
    def boto3_client(self) -> Boto3Client | None:
        """None: only S3 has requests that boto3 sends."""
        return None

    @property
    def endpoint(self) -> str:
        return self.url

    def database_url(self, bucket: str) -> str:
        return f"{self.url}{bucket}"

    def _about(self, bucket: str, key: str | None) -> str:
        return f"{self.database_url(bucket)}/{key or ''}"

    # -- what a backend provides ---------------------------------------------------------------

    @abc.abstractmethod
    def _store(self, bucket: str) -> S:
        """The database's store; :class:`DatabaseNotFoundError` when it does not exist."""

    def _keys(self, store: S, prefix: str, after: str | None) -> Iterator[Listed]:
        """The objects under ``prefix`` after the key ``after``, in key order (as the store lists them)."""
        folder = prefix[: max(prefix.rfind("/"), 0)] or None  # obstore lists whole path segments
        for chunk in obstore.list(store, folder, offset=after):
            for obj in chunk:
                key = obj["path"]
                if key.startswith(prefix):
                    yield Listed(key, obj["size"], obj["last_modified"], obj.get("e_tag"))
                elif key > prefix:
                    return

    def _folders(self, store: S, prefix: str) -> list[str]:
        """The next "folders" under ``prefix`` that hold an object, each ending in ``/``, sorted."""
        folder = prefix[: max(prefix.rfind("/"), 0)] or None
        listed = obstore.list_with_delimiter(store, folder)
        return sorted(f"{name}/" for name in listed["common_prefixes"] if f"{name}/".startswith(prefix))

    @abc.abstractmethod
    def list_buckets(self) -> list[str]: ...

    @abc.abstractmethod
    def create_bucket(self, bucket: str) -> None:
        """Create the database (see :meth:`_create`)."""

    def _write(self, store: S, key: str, body: bytes, attributes: dict[str, str] | None,
               condition: Mapping[str, str]) -> Written:
        """PUT ``body`` under ``condition``, with the store's own conditional modes: obstore's
        AlreadyExistsError or PreconditionError when it does not hold."""
        written = obstore.put(store, key, body, attributes=attributes, mode=write_mode(condition), use_multipart=False)
        return Written(str(written.get("e_tag") or ""), written.get("version") or None)

    async def _write_async(self, store: S, key: str, body: bytes, attributes: dict[str, str] | None,
                           condition: Mapping[str, str]) -> Written:
        """:meth:`_write` on the event loop."""
        written = await obstore.put_async(store, key, body, attributes=attributes, mode=write_mode(condition),
                                          use_multipart=False)
        return Written(str(written.get("e_tag") or ""), written.get("version") or None)

    def _remove(self, store: S, key: str) -> None:
        """Delete the key, if it exists."""
        obstore.delete(store, key)

    # -- requests ------------------------------------------------------------------------------

    def _call(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any],
              call: Callable[[S], T]) -> T:
        """One request on the database's store, announced to the hooks, errors made ours."""
        return self._send(operation, bucket, key, params, call, self._store(bucket))

    def _send(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any],
              call: Callable[[S], T], store: S) -> T:
        self._announce_request(operation, bucket, key, params)
        try:
            return call(store)
        except Exception as error:
            failure = self._translated(error, bucket, key)
        # raised here, outside the except: obstore's error (S3's body, which may echo a session
        # token) is not kept as the new error's __context__
        raise failure

    async def _send_async(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any],
                          call: Callable[[S], Awaitable[T]], store: S) -> T:
        """:meth:`_send` on the event loop."""
        self._announce_request(operation, bucket, key, params)
        try:
            return await call(store)
        except Exception as error:
            failure = self._translated(error, bucket, key)
        raise failure

    def _announce_request(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any]) -> None:
        announced = {"Bucket": bucket, **({"Key": key} if key is not None else {}), **params}
        for hook in self.hooks:
            hook(operation, announced)

    def _translated(self, error: Exception, bucket: str, key: str | None) -> Exception:
        """The project's exception for what the store raised."""
        about = self._about(bucket, key)
        if isinstance(error, (AlreadyExistsError, PreconditionError)):
            if http_status(error) == 404:  # S3 answers an If-Match of a deleted key with 404
                return NotFound(f"{about} does not exist: NoSuchKey", code="NoSuchKey")
            return ConditionRefused(f"the conditional write of {about} was refused: PreconditionFailed",
                                    code="PreconditionFailed")
        if isinstance(error, NotModifiedError):
            return NotModified(f"{about} is the version asked about: NotModified", code="NotModified")
        if isinstance(error, (PermissionDeniedError, UnauthenticatedError)):
            return AccessDeniedError(f"access to {about} was denied: {s3_code(error) or redact(first_line(error))}")
        if isinstance(error, (InvalidPathError, ValueError)):  # a path obstore refused before sending
            return self._unaddressable(key, error)
        if isinstance(error, (NotFoundError, FileNotFoundError)):
            return self._not_found(error, bucket, key)
        return self._failed(error, bucket, key)

    def _unaddressable(self, key: str | None, error: Exception) -> Exception:
        return InvalidArgumentError(f"{self.url} databases cannot hold the key {key!r}: {first_line(error)}")

    def _not_found(self, error: Exception, bucket: str, key: str | None) -> Exception:
        return NotFound(f"{self._about(bucket, key)} does not exist: NoSuchKey", code="NoSuchKey")

    def _failed(self, error: Exception, bucket: str, key: str | None) -> Exception:
        if not isinstance(error, (OSError, obstore.exceptions.BaseError)):
            return error
        reason = first_line(error)
        if "directory" in reason.lower():
            reason += ("; a folder cannot hold both a key and keys under it (t/1 and t/1/2020): "
                       "give the rows of a table one number of columns")
        return S3RequestError(f"the request for {self._about(bucket, key)} failed: {reason}")

    def _missing(self, bucket: str) -> DatabaseNotFoundError:
        url = self.database_url(bucket)
        return DatabaseNotFoundError(
            f"database {bucket!r} does not exist in {self.url}; create it with Database({url!r}).create()", url)

    # -- listing -------------------------------------------------------------------------------

    def list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                  max_keys: int, delimiter: str | None) -> ListedPage:
        after = token[len(TOKEN):] if token and token.startswith(TOKEN) else start_after
        params = {"Prefix": prefix, "MaxKeys": max_keys, **({"Delimiter": delimiter} if delimiter else {})}
        if delimiter not in (None, "/"):
            raise InvalidArgumentError(f"{self.url} databases list with the delimiter '/' only, not {delimiter!r}")
        if delimiter:
            folders = self._call("ListObjectsV2", bucket, None, params, lambda store: self._folders(store, prefix))
            chosen = [folder for folder in folders if after is None or folder > after][:max_keys]
            more = bool(chosen) and chosen[-1] != folders[-1]
            return ListedPage([], chosen, TOKEN + chosen[-1] if more else None)

        objects = self._call("ListObjectsV2", bucket, None, params,
                             lambda store: _limited(self._keys(store, prefix, after), max_keys + 1))
        more = len(objects) > max_keys
        objects = objects[:max_keys]
        return ListedPage(objects, [], TOKEN + objects[-1].key if more else None)

    async def list_page_async(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                              max_keys: int, delimiter: str | None) -> ListedPage:
        """:meth:`list_page` on the loop's executor: a page of a store on this machine is read
        from a directory or a dict, whose listing obstore runs synchronously."""
        return await asyncio.to_thread(self.list_page, bucket, prefix, start_after, token, max_keys, delimiter)

    def list_details(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                     max_keys: int) -> ListedPage:
        page = self.list_page(bucket, prefix, start_after, token, max_keys, None)
        return page._replace(objects=[obj._replace(storage_class="STANDARD") for obj in page.objects])

    # -- objects -------------------------------------------------------------------------------

    def get(self, bucket: str, key: str, deadline: float, byte_range: str | None = None,
            if_none_match: str | None = None) -> Fetched:
        try:
            options = get_options(byte_range, if_none_match)
        except Inexpressible:
            raise InvalidArgumentError(f"a byte range such as 'bytes=0-99', 'bytes=-100' or 'bytes=10-', "
                                       f"not {byte_range!r}") from None
        return self._get(bucket, key, byte_range, if_none_match, options)

    def _get(self, bucket: str, key: str, byte_range: str | None, if_none_match: str | None,
             options: Mapping[str, Any]) -> Fetched:
        """The GET, as it came: the size is the whole object's, a range's body part of it."""

        def fetch(store: S) -> Fetched:
            result = obstore.get(store, key, options=cast(Any, options) or None)
            return fetched(result, bytes(result.bytes()))

        return self._call("GetObject", bucket, key, get_parameters(byte_range, if_none_match), fetch)

    async def get_async(self, bucket: str, key: str, deadline: float) -> Fetched:
        """The whole object, on the event loop (obstore's asynchronous API)."""
        return await self._send_async("GetObject", bucket, key, {}, functools.partial(fetch_async, key),
                                      self._store(bucket))

    async def put_async(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
                        condition: Mapping[str, str]) -> Written:
        """:meth:`put` on the event loop."""
        attributes = put_attributes(params) if self.keeps_metadata else None
        return await self._send_async("PutObject", bucket, key, {**params, **condition, "ContentLength": len(body)},
                                      lambda store: self._write_async(store, key, body, attributes, condition),
                                      self._store(bucket))

    def head(self, bucket: str, key: str) -> Head:
        def head_of(store: S) -> Head:
            result = obstore.get(store, key, options={"head": True})
            return Head(str(result.meta.get("e_tag") or ""), int(result.meta["size"]),
                        user_metadata(result.attributes))

        return self._call("HeadObject", bucket, key, {}, head_of)

    def put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
            condition: Mapping[str, str]) -> Written:
        attributes = put_attributes(params) if self.keeps_metadata else None
        return self._call("PutObject", bucket, key, {**params, **condition, "ContentLength": len(body)},
                          lambda store: self._write(store, key, body, attributes, condition))

    def delete(self, bucket: str, key: str) -> None:
        self._call("DeleteObject", bucket, key, {}, lambda store: self._remove(store, key))

    def delete_batch(self, bucket: str, keys: Sequence[str]) -> dict[str, str]:
        """One DeleteObjects, as S3 would count it: the keys not deleted, with the reason."""

        def delete_each(store: S) -> dict[str, str]:
            failures = {}
            for key in keys:
                try:
                    self._remove(store, key)
                except (OSError, ValueError, obstore.exceptions.BaseError) as error:
                    failures[key] = first_line(error)
            return failures

        return self._call("DeleteObjects", bucket, None, {"Delete": {"Objects": [{"Key": key} for key in keys]}},
                          delete_each)

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str,
             params: Mapping[str, Any]) -> Written:
        fetched = self.get(source_bucket, source_key, float("inf"))
        metadata = fetched.metadata if params.get("MetadataDirective") != "REPLACE" else {}
        return self.put(bucket, key, fetched.body, {"Metadata": metadata, **params}, {})

    # -- databases -----------------------------------------------------------------------------

    def head_bucket(self, bucket: str) -> None:
        self._announce("HeadBucket", bucket)
        self._store(bucket)

    def _announce(self, operation: str, bucket: str) -> None:
        for hook in self.hooks:
            hook(operation, {"Bucket": bucket})

    def _create(self, bucket: str, make: Callable[[], bool]) -> None:
        """Announce a CreateBucket and ``make()`` the database; BucketOwned when it was there."""
        self._announce("CreateBucket", bucket)
        with self._lock:
            if not make():
                raise BucketOwned(f"{self.database_url(bucket)} exists", code="BucketAlreadyOwnedByYou")

    def put_parameters(self) -> frozenset[str]:
        return frozenset({*ATTRIBUTES, "Metadata"} if self.keeps_metadata else ())


def fetched(result: Any, body: bytes) -> Fetched:
    """A GET's answer, from obstore's result and its body."""
    meta = result.meta
    return Fetched(body, str(meta.get("e_tag") or ""), int(meta["size"]), user_metadata(result.attributes))


async def fetch_async(key: str, store: Store) -> Fetched:
    """One GET of the whole object through obstore's asynchronous API."""
    result = await obstore.get_async(store, key)
    return fetched(result, bytes(await result.bytes_async()))


def put_attributes(params: Mapping[str, Any]) -> dict[str, str] | None:
    """A PutObject's content headers and user metadata, as obstore's attributes (None for none)."""
    attributes = {ATTRIBUTES[name]: str(value) for name, value in params.items() if name in ATTRIBUTES}
    attributes.update({str(name): str(value) for name, value in dict(params.get("Metadata") or {}).items()})
    return attributes or None


def write_mode(condition: Mapping[str, str]) -> Any:
    """obstore's put mode for a PUT's condition: create, an ETag to match, or overwrite."""
    if condition.get("IfNoneMatch") == "*":
        return "create"
    if "IfMatch" in condition:
        return {"e_tag": condition["IfMatch"]}
    return "overwrite"


def get_options(byte_range: str | None, if_none_match: str | None) -> dict[str, Any]:
    """obstore's options for a GET of part of an object, or one that only a new version answers."""
    options: dict[str, Any] = {"range": range_option(byte_range)} if byte_range else {}
    if if_none_match:
        options["if_none_match"] = if_none_match
    return options


def range_option(byte_range: str) -> Any:
    """obstore's range for an HTTP one: ``bytes=0-99``, ``bytes=-100`` or ``bytes=10-``."""
    match = _RANGE.fullmatch(byte_range.strip())
    if match is None or not any(match.groups()):  # S3 decides what such a header means
        raise Inexpressible(f"the Range header {byte_range!r}")
    first, last = match.groups()
    if not first:
        return {"suffix": int(last)}
    if not last:
        return {"offset": int(first)}
    return (int(first), int(last) + 1)


def user_metadata(attributes: Mapping[str, str]) -> dict[str, str]:
    """The user metadata among obstore's attributes (the others are content headers)."""
    return {name: value for name, value in attributes.items() if name not in ATTRIBUTES.values()
            and name != "Storage-Class"}


def _limited(items: Iterator[T], count: int) -> list[T]:
    """The first ``count`` items."""
    return [item for item, _ in zip(items, range(count), strict=False)]


def http_status(error: Exception) -> int:
    """The HTTP status of an obstore error from an HTTP store (0 for none)."""
    match = _STATUS.search(str(error))
    return int(match.group(1)) if match else 0


def s3_code(error: Exception) -> str:
    """S3's error code in an obstore error's body ("" for none)."""
    match = _CODE.search(str(error))
    return match.group(1) if match else ""


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
