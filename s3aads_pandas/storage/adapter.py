"""The S3 adapter: the only code that calls boto3, and where botocore errors become ours.

Everything above this module speaks in buckets, keys and bytes, and sees only the exceptions of
:mod:`s3aads_pandas.errors`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as CouldNotConnectError
from urllib3.exceptions import HTTPError as Urllib3Error

from s3aads_pandas.errors import (
    AccessDeniedError,
    BulkOperationError,
    DatabaseNameTakenError,
    DatabaseNotFoundError,
    InvalidArgumentError,
    RowChangedError,
    RowExistsError,
    S3aadsError,
    S3RequestError,
)
from s3aads_pandas.storage.redaction import redact
from s3aads_pandas.storage.retry import AdaptiveLimiter, Retrier, RetryPolicy

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: S3 returns at most this many keys per listing page and deletes at most this many per request.
PAGE_SIZE = 1000
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_THROTTLING_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
#: ConditionalRequestConflict: another conditional write of the key was in progress; S3 asks to retry.
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "RequestTimeout", "ConditionalRequestConflict",
                    "500", "502", "504"}
#: Failures where the same request may succeed if sent again.
_TRANSIENT_ERRORS = (HTTPClientError, IncompleteReadError, ResponseStreamingError, FlexibleChecksumError)
#: Failures after the request was sent and before its answer came: it may have taken effect.
_ANSWER_LOST_ERRORS = (ReadTimeoutError, ConnectionClosedError)
#: The answers of S3 to a conditional write whose condition does not hold (If-Match on a missing
#: key is a 404).
_REFUSED_CODES = {"PreconditionFailed", "412", "NoSuchKey", "404"}
#: User metadata that a conditional write carries, so that a retry can recognise its own object.
WRITE_ID = "s3aads-write-id"
#: How much of a body one read takes, between two checks of the request's deadline.
_READ_CHUNK = 1 << 20
_DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


class Listed(NamedTuple):
    """A listed object, as little of it as listings need (the botocore dict is ten times larger)."""

    key: str
    size: int


class ListedPage(NamedTuple):
    """One LIST answer: objects in key order, common prefixes, and the token of the next page."""

    objects: list[Listed]
    prefixes: list[str]
    token: str | None


class ObjectStore:
    """Thin, typed calls on one boto3 S3 client (thread-safe: boto3 clients are).

    Every request goes through one :class:`Retrier`, so retries and the SlowDown backoff are
    shared by all the threads that use this store.
    """

    def __init__(self, client: Any, max_in_flight: int = 16, policy: RetryPolicy | None = None) -> None:
        self.client = client
        self.retrier = Retrier(AdaptiveLimiter(max_in_flight), policy)

    def _request(self, call: Callable[[], T], bucket: str | None = None, key: str | None = None,
                 history: list[S3RequestError] | None = None) -> T:
        """One request, its errors translated, retried while the failure is transient."""

        def attempt() -> T:
            with self._errors(bucket, key):
                return call()

        return self.retrier(attempt, history)

    def _deadline(self) -> float:
        """The monotonic time by which a request starting now must be done."""
        return time.monotonic() + (self.retrier.policy.deadline or float("inf"))

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    @contextlib.contextmanager
    def _errors(self, bucket: str | None = None, key: str | None = None) -> Iterator[None]:
        """Translate botocore's exceptions into the project's, naming what was asked for."""
        where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}" if bucket else "S3"
        try:
            yield
        except ClientError as error:
            raise self._client_error(error, bucket, where) from None
        except NoCredentialsError:
            raise AccessDeniedError(
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or pass a boto3 session"
            ) from None
        except ParamValidationError as error:
            raise InvalidArgumentError(f"invalid S3 parameters for {where}: {redact(str(error))}") from None
        except CouldNotConnectError as error:  # the request never reached S3
            raise S3RequestError(
                f"could not connect to S3 at {self.endpoint} for {where}: check the endpoint URL "
                f"and network ({redact(str(error))})",
                retryable=True,
            ) from None
        except _ANSWER_LOST_ERRORS as error:
            raise S3RequestError(
                f"no answer from S3 for {where}: {redact(str(error))}", retryable=True, answer_lost=True
            ) from None
        except _TRANSIENT_ERRORS as error:
            raise S3RequestError(f"request to {where} failed: {redact(str(error))}", retryable=True) from None
        except BotoCoreError as error:
            raise S3RequestError(f"request to {where} failed: {redact(str(error))}") from None

    def _client_error(self, error: ClientError, bucket: str | None, where: str) -> Exception:
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = info.get("Message") or code
        if code == "NoSuchBucket" and bucket:
            return DatabaseNotFoundError(
                f"database {bucket!r} does not exist (no S3 bucket of that name at "
                f"{self.endpoint}); create it with Database({bucket!r}).create()",
                bucket,
            )
        if code in _DENIED_CODES:
            return AccessDeniedError(f"S3 denied access to {where}: {code}: {redact(message)}")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return S3RequestError(
            f"S3 request for {where} failed: {code}: {redact(message)}",
            code=code,
            throttled=code in _THROTTLING_CODES,
            retryable=code in _TRANSIENT_CODES or status >= 500,
        )

    # -- buckets -------------------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        response = self._request(self.client.list_buckets)
        return [bucket["Name"] for bucket in response.get("Buckets", [])]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._request(lambda: self.client.head_bucket(Bucket=bucket), bucket)
        except S3RequestError as error:
            if error.code in {"404", "NoSuchBucket", "NotFound"}:
                return False
            raise
        except DatabaseNotFoundError:
            return False
        return True

    def create_bucket(self, bucket: str) -> bool:
        """Create the bucket; False when this account already has it."""
        params: dict[str, Any] = {"Bucket": bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._request(lambda: self.client.create_bucket(**params), bucket)
        except S3RequestError as error:
            if error.code == "BucketAlreadyOwnedByYou":
                return False
            if error.code == "BucketAlreadyExists":
                with contextlib.suppress(AccessDeniedError):
                    if self.bucket_exists(bucket):
                        return False
                raise DatabaseNameTakenError(
                    f"database name {bucket!r} is taken: S3 bucket names are global and another "
                    "account owns this one; choose another name"
                ) from None
            raise
        logger.info("created bucket %s", bucket)
        return True

    # -- listing -------------------------------------------------------------------------------

    def list_page(self, bucket: str, prefix: str, *, start_after: str | None = None, token: str | None = None,
                  max_keys: int = PAGE_SIZE, delimiter: str | None = None) -> ListedPage:
        """One LIST request: its objects (key and size only), common prefixes and next token."""
        params = _list_params(bucket, prefix, start_after, max_keys, delimiter)
        if token:
            params.pop("StartAfter", None)
            params["ContinuationToken"] = token
        page = self._request(lambda: self.client.list_objects_v2(**params), bucket, prefix)
        return ListedPage(
            [Listed(obj["Key"], obj.get("Size", 0)) for obj in page.get("Contents", ())],
            [entry["Prefix"] for entry in page.get("CommonPrefixes", ())],
            page.get("NextContinuationToken") if page.get("IsTruncated") else None,
        )

    def iter_objects(self, bucket: str, prefix: str, start_after: str | None = None,
                     first_page: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix`` (after the key ``start_after``), page by page.

        Pages hold 1,000 keys; ``first_page`` asks for fewer first, when the caller expects to
        stop early and a full page would be mostly keys it does not want.
        """
        for page in self._pages(bucket, prefix, start_after=start_after, first_page=first_page):
            yield from page.get("Contents", [])

    def iter_common_prefixes(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """The distinct next "folders" under ``prefix`` (after ``start_after``): a Delimiter listing."""
        token = None
        while True:
            page = self.list_page(bucket, prefix, start_after=start_after, token=token, delimiter="/")
            yield from page.prefixes
            if page.token is None:
                return
            token = page.token

    def _pages(self, bucket: str, prefix: str, start_after: str | None = None,
               first_page: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        params = _list_params(bucket, prefix, start_after, first_page, None)
        while True:
            page = self._request(lambda: self.client.list_objects_v2(**params), bucket, prefix)
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token
            params["MaxKeys"] = PAGE_SIZE

    # -- objects -------------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's body, or None when there is no such key (one GET, no HEAD)."""
        found = self.get_with_etag(bucket, key)
        return None if found is None else found[0]

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        params: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = True,
    ) -> dict[str, Any]:
        """One PUT; with ``overwrite=False`` a conditional one (If-None-Match: *) that raises
        :class:`RowExistsError` when the key exists."""
        if overwrite:
            extra = dict(params or {})
            return self._request(lambda: self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra), bucket, key)
        written = self._conditional_put(bucket, key, body, params, IfNoneMatch="*")
        if written is None:
            raise RowExistsError(f"s3://{bucket}/{key} exists and overwrite=False")
        return written

    def put_if_match(self, bucket: str, key: str, body: bytes, etag: str,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """PUT only over the object whose ETag is ``etag`` (If-Match): compare-and-swap."""
        written = self._conditional_put(bucket, key, body, params, IfMatch=etag)
        if written is None:
            state = "changed" if self.exists(bucket, key) else "was deleted"
            raise RowChangedError(
                f"s3://{bucket}/{key} {state} since ETag {etag} was read; read it again and retry"
            )
        return written

    def _conditional_put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any] | None,
                         **condition: str) -> dict[str, Any] | None:
        """A PUT under ``condition``; None when S3 refuses it because the condition does not hold.

        A refusal answered to the first attempt is a conflict, always, whatever is stored: another
        writer got there first, even if it wrote the same bytes. Only a retry of an attempt whose
        answer was lost (a read timeout or a reset after the request went out) can be refused
        because that very attempt landed. Then, and only then, the stored object decides: each
        write carries a random write id in its user metadata, and one HEAD tells whether the
        stored object is ours. Bytes are never compared: equal bytes from another writer are
        still another writer's update.
        """
        write_id = uuid.uuid4().hex
        extra = dict(params or {})
        extra["Metadata"] = {**extra.get("Metadata", {}), WRITE_ID: write_id}
        history: list[S3RequestError] = []
        try:
            return self._request(
                lambda: self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra, **condition),
                bucket, key, history,
            )
        except S3RequestError as error:
            if error.code not in _REFUSED_CODES:
                raise
        if any(attempt.answer_lost for attempt in history[:-1]) and self._written_by(bucket, key, write_id):
            logger.info("a retry of the write of s3://%s/%s was refused because its first attempt landed", bucket, key)
            return {}
        return None

    def _written_by(self, bucket: str, key: str, write_id: str) -> bool:
        """Whether the stored object is the one written with ``write_id`` (one HEAD)."""
        head = self.head(bucket, key)
        return head is not None and head.get("Metadata", {}).get(WRITE_ID) == write_id

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object's headers (one HEAD), or None when there is no such key."""
        try:
            return self._request(lambda: self.client.head_object(Bucket=bucket, Key=key), bucket, key)
        except S3RequestError as error:
            if error.code in _MISSING_KEY_CODES:
                return None
            raise

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def get_with_etag(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The body and ETag of an object (one GET), or None when missing."""
        where = f"s3://{bucket}/{key}"
        deadline = self._deadline()

        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=bucket, Key=key)
            body = _read_body(response, where, deadline)
            etag = response.get("ETag")
            if not etag:
                raise S3RequestError(f"S3 answered the GET of {where} without an ETag header", retryable=True)
            _check_body(response, body, where)
            return body, etag

        try:
            return self._request(fetch, bucket, key)
        except S3RequestError as error:
            if error.code in _MISSING_KEY_CODES:
                return None
            raise

    def get_range(self, bucket: str, key: str, byte_range: str) -> tuple[bytes, int]:
        """Part of an object (one ranged GET, ``bytes=0-99`` or ``bytes=-100``) and its full size."""
        deadline = self._deadline()

        def fetch() -> tuple[bytes, int]:
            response = self.client.get_object(Bucket=bucket, Key=key, Range=byte_range)
            body = _read_body(response, f"s3://{bucket}/{key}", deadline)
            size = str(response.get("ContentRange", "")).rpartition("/")[2]
            return body, int(size) if size.isdigit() else len(body)

        try:
            return self._request(fetch, bucket, key)
        except S3RequestError as error:
            if error.code == "InvalidRange":  # an empty object has no byte to give
                return b"", 0
            raise

    def delete(self, bucket: str, key: str) -> dict[str, Any]:
        return self._request(lambda: self.client.delete_object(Bucket=bucket, Key=key), bucket, key)

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
        """The keys of one DeleteObjects request that were not deleted, with the reason."""
        request = {"Objects": [{"Key": key} for key in keys], "Quiet": True}
        try:
            response = self._request(lambda: self.client.delete_objects(Bucket=bucket, Delete=request), bucket)
        except S3aadsError as error:  # denied, throttled past the retries, ...: the next batch may work
            reason = f"{type(error).__name__}: {error}".replace("\n", " ")
            return dict.fromkeys(keys, reason)
        return {
            error["Key"]: f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
            for error in response.get("Errors", [])
        }

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str, **params: Any) -> dict[str, Any]:
        source = {"Bucket": source_bucket, "Key": source_key}
        return self._request(
            lambda: self.client.copy_object(CopySource=source, Bucket=bucket, Key=key, **params), bucket, key
        )

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
        members = self.client.meta.service_model.operation_model("PutObject").input_shape.members
        unknown = sorted(set(params) - set(members))
        if unknown:
            raise InvalidArgumentError(
                f"unknown S3 PutObject parameter(s) {', '.join(unknown)} in metadata; use names "
                "such as ContentType, Metadata, ServerSideEncryption, StorageClass"
            )


def _list_params(bucket: str, prefix: str, start_after: str | None, max_keys: int,
                 delimiter: str | None) -> dict[str, Any]:
    """The parameters of a ListObjectsV2 request."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": min(max_keys, PAGE_SIZE)}
    if delimiter:
        params["Delimiter"] = delimiter
    if start_after:
        params["StartAfter"] = start_after
    return params


def _read_body(response: Mapping[str, Any], where: str, deadline: float) -> bytes:
    """The whole body of a GET, given up when it is still arriving at ``deadline`` (monotonic).

    A read timeout only bounds the wait for each piece, so a body that trickles in could take
    forever; reading what has arrived, piece by piece, lets the deadline be checked in between.
    """
    stream = response["Body"]
    read1 = getattr(getattr(stream, "_raw_stream", None), "read1", None)
    if read1 is None:  # not urllib3's response: nothing to read piece by piece
        return bytes(stream.read())
    parts = []
    try:
        while chunk := read1(_READ_CHUNK):
            parts.append(chunk)
            if time.monotonic() > deadline:
                stream.close()
                raise S3RequestError(
                    f"the body of {where} was still arriving at the request's deadline "
                    f"({sum(map(len, parts))} bytes read); raise the deadline setting for slow links",
                    retryable=True,
                )
    except Urllib3Error as error:
        raise S3RequestError(f"reading the body of {where} failed: {redact(str(error))}", retryable=True) from None
    body = b"".join(parts)
    expected = response.get("ContentLength")
    if expected is not None and len(body) != int(expected):
        raise S3RequestError(
            f"the body of {where} arrived incomplete ({len(body)} of {expected} bytes)", retryable=True
        )
    return body


#: The whole-object checksums S3 may return, and how to compute them (base64 of the digest).
_CHECKSUMS: dict[str, Callable[[bytes], bytes]] = {
    "ChecksumCRC32": lambda body: zlib.crc32(body).to_bytes(4, "big"),
    "ChecksumSHA1": lambda body: hashlib.sha1(body, usedforsecurity=False).digest(),
    "ChecksumSHA256": lambda body: hashlib.sha256(body).digest(),
}


def _check_body(response: Mapping[str, Any], body: bytes, where: str) -> None:
    """Refuse a body that differs from the checksum S3 returned, or from a plain single-part ETag.

    The body is read piece by piece (see :func:`_read_body`), past botocore's own checksum
    check, so the whole-object checksums S3 returns are checked here; a single-part object that
    is not KMS- or customer-key-encrypted also has its MD5 as ETag, which catches the rest.
    """
    corrupted = S3RequestError(
        f"the body of {where} arrived corrupted (it differs from the checksum S3 sent)", retryable=True
    )
    if "ContentRange" in response:
        return
    for field, digest in _CHECKSUMS.items():
        expected = str(response.get(field) or "")
        if expected and "-" not in expected and base64.b64encode(digest(body)).decode() != expected:
            raise corrupted
    etag = str(response.get("ETag", "")).strip('"')
    encrypted = response.get("SSECustomerAlgorithm") or response.get("ServerSideEncryption") == "aws:kms"
    if len(etag) != 32 or "-" in etag or encrypted:
        return
    if hashlib.md5(body, usedforsecurity=False).hexdigest() != etag:
        raise corrupted
