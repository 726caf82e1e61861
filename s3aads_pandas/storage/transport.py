"""What a transport does: one attempt of one S3 request, with the project's exceptions.

The adapter (:mod:`s3aads_pandas.storage.adapter`) owns retries, conditional-write semantics
and batching; a transport only sends one request and says what came back. Two transports
send object requests: obstore's (:mod:`~s3aads_pandas.storage.obstore_transport`, on any of
its stores: S3, memory, a folder) and boto3's (S3's fallback, and a choice in the settings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

#: S3 returns at most this many keys per listing page and deletes at most this many per request.
PAGE_SIZE = 1000

#: Called with the S3 operation name and its parameters, before every attempt a transport sends.
RequestHook = Callable[[str, Mapping[str, Any]], None]


def get_parameters(byte_range: str | None, if_none_match: str | None) -> dict[str, str]:
    """A GetObject's optional parameters, as S3 names them (and the hooks see them)."""
    given = {"Range": byte_range, "IfNoneMatch": if_none_match}
    return {name: value for name, value in given.items() if value}


class Listed(NamedTuple):
    """A listed object, as little of it as listings need (the botocore dict is ten times larger);
    the ETag names the version listed. The storage class is known to detailed listings only."""

    key: str
    size: int
    last_modified: datetime | None = None
    etag: str | None = None
    storage_class: str | None = None


class ListedPage(NamedTuple):
    """One LIST answer: objects in key order, common prefixes, and the token of the next page."""

    objects: list[Listed]
    prefixes: list[str]
    token: str | None


class Fetched(NamedTuple):
    """A GET's answer: the body, the ETag, the size of the whole object (a range is part), and
    the user metadata."""

    body: bytes
    etag: str
    size: int
    metadata: dict[str, str]


class Written(NamedTuple):
    """A PUT's or a COPY's answer: the new version's ETag, and its version id in a versioned bucket."""

    etag: str
    version_id: str | None = None

    def as_response(self) -> dict[str, str]:
        """The fields of boto3's answer that the Table API returns."""
        return {"ETag": self.etag, **({"VersionId": self.version_id} if self.version_id else {})}


class Head(NamedTuple):
    """A HEAD's answer: the ETag, the size and the user metadata."""

    etag: str
    size: int
    metadata: dict[str, str]


class Boto3Client(Protocol):
    """A boto3 S3 client. botocore makes its methods at run time from S3's model, so what is
    typed is ``meta``, through which its events, region and endpoint are reached."""

    @property
    def meta(self) -> Any: ...


class Transport(Protocol):
    """One attempt per call. A missing key or bucket, a refused condition and every other
    failure raise :class:`~s3aads_pandas.errors.S3RequestError` (with S3's error code) or a more
    specific error of :mod:`s3aads_pandas.errors`."""

    hooks: list[RequestHook]

    @property
    def endpoint(self) -> str: ...

    @property
    def boto3_client(self) -> Boto3Client | None:
        """The boto3 client behind the requests that only boto3 sends; None off S3."""
        ...

    def database_url(self, bucket: str) -> str:
        """How messages name the database ``bucket``: ``s3://bucket``, ``memory://bucket``..."""
        ...

    def list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                  max_keys: int, delimiter: str | None) -> ListedPage: ...

    def list_details(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                     max_keys: int) -> ListedPage:
        """A page of objects with every field S3 lists, the storage class included."""
        ...

    def get(self, bucket: str, key: str, deadline: float, byte_range: str | None = None,
            if_none_match: str | None = None) -> Fetched:
        """The object, or :class:`~s3aads_pandas.storage.failures.NotModified` when its ETag is
        ``if_none_match`` (S3 answers 304 and sends no body)."""
        ...

    def head(self, bucket: str, key: str) -> Head: ...

    def put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
            condition: Mapping[str, str]) -> Written: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def delete_batch(self, bucket: str, keys: Sequence[str]) -> dict[str, str]: ...

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str,
             params: Mapping[str, Any]) -> Written: ...

    def list_buckets(self) -> list[str]: ...

    def head_bucket(self, bucket: str) -> None: ...

    def create_bucket(self, bucket: str) -> None: ...

    def put_parameters(self) -> frozenset[str]: ...


class AsyncObjects(Protocol):
    """A transport that also sends whole-object GETs, PUTs and LISTs on an event loop (obstore's:
    the data plane of transfers, listings and a row's calls), used where its requests wait on a
    network."""

    #: Whether each request waits on a network round trip, so that many in flight pay.
    waits_on_network: bool

    async def get_async(self, bucket: str, key: str, deadline: float) -> Fetched: ...

    async def put_async(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
                        condition: Mapping[str, str]) -> Written: ...

    async def list_page_async(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                              max_keys: int, delimiter: str | None) -> ListedPage: ...
