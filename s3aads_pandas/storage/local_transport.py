"""Databases on this machine: object requests on obstore's in-process and local-folder stores.

A backend (:mod:`~s3aads_pandas.storage.memory`, :mod:`~s3aads_pandas.storage.folder`) says
where its databases live, how it lists keys in key order and how it makes a conditional write;
this module makes the requests, announces each to the hooks under the S3 operation it stands
for (so that request counts read alike on every backend), and raises the project's exceptions.
Nothing here is sent over a network: no failure is transient, and no answer is ever lost.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

import obstore
from obstore.exceptions import AlreadyExistsError, InvalidPathError, NotFoundError, NotModifiedError, PreconditionError
from obstore.store import ObjectStore as Store

from s3aads_pandas.errors import DatabaseNotFoundError, InvalidArgumentError, S3RequestError
from s3aads_pandas.storage.failures import BucketOwned, ConditionRefused, NotFound, NotModified
from s3aads_pandas.storage.obstore_transport import get_options
from s3aads_pandas.storage.transport import Fetched, Head, Listed, ListedPage, RequestHook, Written, get_parameters

T = TypeVar("T")
S = TypeVar("S", bound=Store)  # the kind of obstore store a backend keeps its databases in

#: Continuation tokens carry the last key or folder of the page before.
_TOKEN = "local:"


class LocalTransport(abc.ABC, Generic[S]):
    """One obstore store per database; ``url`` names where the databases are (``memory://``)."""

    #: Whether the store keeps user metadata and content headers with each object.
    keeps_metadata: bool = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.hooks: list[RequestHook] = []
        self._lock = threading.Lock()

    @property
    def boto3_client(self) -> None:
        """None: a database on this machine is not in S3."""
        return None

    @property
    def endpoint(self) -> str:
        return self.url

    def database_url(self, bucket: str) -> str:
        return f"{self.url}{bucket}"

    # -- what a backend provides ---------------------------------------------------------------

    @abc.abstractmethod
    def _store(self, bucket: str) -> S:
        """The database's store; :class:`DatabaseNotFoundError` when it does not exist."""

    @abc.abstractmethod
    def _keys(self, store: S, prefix: str, after: str | None) -> Iterator[Listed]:
        """The objects under ``prefix`` after the key ``after``, in key order."""

    @abc.abstractmethod
    def _folders(self, store: S, prefix: str) -> list[str]:
        """The next "folders" under ``prefix`` that hold an object, each ending in ``/``, sorted."""

    @abc.abstractmethod
    def _write(self, store: S, key: str, body: bytes, attributes: dict[str, str] | None,
               condition: Mapping[str, str]) -> Written:
        """PUT ``body`` under ``condition``; raise obstore's AlreadyExistsError or PreconditionError
        when it does not hold, NotFoundError for an If-Match of a missing key."""

    @abc.abstractmethod
    def _remove(self, store: S, key: str) -> None:
        """Delete the key, if it exists."""

    @abc.abstractmethod
    def list_buckets(self) -> list[str]: ...

    @abc.abstractmethod
    def _create(self, bucket: str) -> bool:
        """Create the database; False when it exists."""

    # -- requests ------------------------------------------------------------------------------

    def _call(self, operation: str, bucket: str, key: str | None, params: Mapping[str, Any],
              call: Callable[[S], T]) -> T:
        """One request, announced to the hooks as the S3 operation it stands for, errors made ours."""
        for hook in self.hooks:
            hook(operation, {"Bucket": bucket, **({"Key": key} if key is not None else {}), **params})
        store = self._store(bucket)
        about = f"{self.database_url(bucket)}/{key or ''}"
        try:
            return call(store)
        except (AlreadyExistsError, PreconditionError):
            failure: Exception = ConditionRefused(f"the conditional write of {about} was refused: PreconditionFailed",
                                                  code="PreconditionFailed")
        except NotModifiedError:
            failure = NotModified(f"{about} is the version asked about: NotModified", code="NotModified")
        except (NotFoundError, FileNotFoundError):
            failure = NotFound(f"{about} does not exist: NoSuchKey", code="NoSuchKey")
        except (InvalidPathError, ValueError) as error:
            failure = InvalidArgumentError(f"{self.url} databases cannot hold the key {key!r}: {_first_line(error)}")
        except (OSError, obstore.exceptions.BaseError) as error:
            reason = _first_line(error)
            if "directory" in reason.lower():
                reason += ("; a folder cannot hold both a key and keys under it (t/1 and t/1/2020): "
                           "give the rows of a table one number of columns")
            failure = S3RequestError(f"{operation} of {about} failed: {reason}")
        raise failure

    def _missing(self, bucket: str) -> DatabaseNotFoundError:
        url = self.database_url(bucket)
        return DatabaseNotFoundError(
            f"database {bucket!r} does not exist in {self.url}; create it with Database({url!r}).create()", url)

    def list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                  max_keys: int, delimiter: str | None) -> ListedPage:
        after = token[len(_TOKEN):] if token and token.startswith(_TOKEN) else start_after
        params = {"Prefix": prefix, "MaxKeys": max_keys, **({"Delimiter": delimiter} if delimiter else {})}
        if delimiter not in (None, "/"):
            raise InvalidArgumentError(f"{self.url} databases list with the delimiter '/' only, not {delimiter!r}")
        if delimiter:
            folders = self._call("ListObjectsV2", bucket, None, params, lambda store: self._folders(store, prefix))
            chosen = [folder for folder in folders if after is None or folder > after][:max_keys]
            more = bool(chosen) and chosen[-1] != folders[-1]
            return ListedPage([], chosen, _TOKEN + chosen[-1] if more else None)

        objects = self._call("ListObjectsV2", bucket, None, params,
                             lambda store: _limited(self._keys(store, prefix, after), max_keys + 1))
        more = len(objects) > max_keys
        objects = objects[:max_keys]
        return ListedPage(objects, [], _TOKEN + objects[-1].key if more else None)

    def list_details(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                     max_keys: int) -> ListedPage:
        page = self.list_page(bucket, prefix, start_after, token, max_keys, None)
        return page._replace(objects=[obj._replace(storage_class="STANDARD") for obj in page.objects])

    def get(self, bucket: str, key: str, deadline: float, byte_range: str | None = None,
            if_none_match: str | None = None) -> Fetched:
        try:
            options = get_options(byte_range, if_none_match)
        except Exception:
            raise InvalidArgumentError(f"a byte range such as 'bytes=0-99', 'bytes=-100' or 'bytes=10-', "
                                       f"not {byte_range!r}") from None

        def fetch(store: S) -> Fetched:
            result = obstore.get(store, key, options=cast(Any, options) or None)
            body, meta = bytes(result.bytes()), result.meta
            return Fetched(body, str(meta["e_tag"]), int(meta["size"]), dict(result.attributes))

        return self._call("GetObject", bucket, key, get_parameters(byte_range, if_none_match), fetch)

    def head(self, bucket: str, key: str) -> Head:
        def head_of(store: S) -> Head:
            result = obstore.get(store, key, options={"head": True})
            return Head(str(result.meta["e_tag"]), int(result.meta["size"]), dict(result.attributes))

        return self._call("HeadObject", bucket, key, {}, head_of)

    def put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
            condition: Mapping[str, str]) -> Written:
        attributes = None
        if self.keeps_metadata:
            attributes = {str(name): str(value) for name, value in dict(params.get("Metadata") or {}).items()}
            if "ContentType" in params:
                attributes["Content-Type"] = str(params["ContentType"])
        return self._call("PutObject", bucket, key, {**params, **condition, "ContentLength": len(body)},
                          lambda store: self._write(store, key, body, attributes or None, condition))

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
                    failures[key] = _first_line(error)
            return failures

        return self._call("DeleteObjects", bucket, None, {"Delete": {"Objects": [{"Key": key} for key in keys]}},
                          delete_each)

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str,
             params: Mapping[str, Any]) -> Written:
        fetched = self.get(source_bucket, source_key, float("inf"))
        metadata = fetched.metadata if params.get("MetadataDirective") != "REPLACE" else {}
        return self.put(bucket, key, fetched.body, {"Metadata": metadata, **params}, {})

    def head_bucket(self, bucket: str) -> None:
        self._announce("HeadBucket", bucket)
        self._store(bucket)

    def _announce(self, operation: str, bucket: str) -> None:
        for hook in self.hooks:
            hook(operation, {"Bucket": bucket})

    def create_bucket(self, bucket: str) -> None:
        self._announce("CreateBucket", bucket)
        with self._lock:
            if not self._create(bucket):
                raise BucketOwned(f"{self.database_url(bucket)} exists", code="BucketAlreadyOwnedByYou")

    def put_parameters(self) -> frozenset[str]:
        return frozenset({"ContentType", "Metadata"} if self.keeps_metadata else ())


def _limited(items: Iterator[T], count: int) -> list[T]:
    """The first ``count`` items."""
    return [item for item, _ in zip(items, range(count), strict=False)]


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
