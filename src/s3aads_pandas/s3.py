"""The S3 adapter: the only code that calls boto3, and where botocore errors become ours.

Everything above this module speaks in buckets, keys and bytes, and sees only the exceptions of
:mod:`s3aads_pandas.errors`.
"""

from __future__ import annotations

import contextlib
import logging
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ResponseStreamingError,
)

from .errors import (
    AccessDeniedError,
    BulkOperationError,
    DatabaseNameTakenError,
    DatabaseNotFoundError,
    InvalidArgumentError,
    RowChangedError,
    RowExistsError,
    S3RequestError,
)
from .redact import redact
from .retry import AdaptiveLimiter, Retrier, RetryPolicy

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: S3 returns at most this many keys per listing page and deletes at most this many per request.
PAGE_SIZE = 1000
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_THROTTLING_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "RequestTimeout", "500", "502", "504"}
#: Failures where the same request may succeed if sent again.
_TRANSIENT_ERRORS = (HTTPClientError, IncompleteReadError, ResponseStreamingError, FlexibleChecksumError)
_DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


class ObjectStore:
    """Thin, typed calls on one boto3 S3 client (thread-safe: boto3 clients are).

    Every request goes through one :class:`Retrier`, so retries and the SlowDown backoff are
    shared by all the threads that use this store.
    """

    def __init__(self, client: Any, max_in_flight: int = 16, policy: RetryPolicy | None = None) -> None:
        self.client = client
        self.retrier = Retrier(AdaptiveLimiter(max_in_flight), policy)

    def _request(self, call: Callable[[], T], bucket: str | None = None, key: str | None = None) -> T:
        """One request, its errors translated, retried while the failure is transient."""

        def attempt() -> T:
            with self._errors(bucket, key):
                return call()

        return self.retrier(attempt)

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
        except EndpointConnectionError:
            raise S3RequestError(
                f"could not connect to S3 at {self.endpoint}: check the endpoint URL and network",
                retryable=True,
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
                f"{self.endpoint}); create it with Database({bucket!r}).create()"
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

    def iter_objects(self, bucket: str, prefix: str, start_after: str | None = None,
                     first_page: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix`` (after the key ``start_after``), page by page.

        Pages hold 1,000 keys; ``first_page`` asks for fewer first, when the caller expects to
        stop early and a full page would be mostly keys it does not want.
        """
        for page in self._pages(bucket, prefix, delimiter=None, start_after=start_after, first_page=first_page):
            yield from page.get("Contents", [])

    def iter_common_prefixes(self, bucket: str, prefix: str, delimiter: str = "/") -> Iterator[str]:
        """The distinct next "folders" under ``prefix`` (a Delimiter listing)."""
        for page in self._pages(bucket, prefix, delimiter=delimiter):
            for entry in page.get("CommonPrefixes", []):
                yield entry["Prefix"]

    def _pages(self, bucket: str, prefix: str, delimiter: str | None, start_after: str | None = None,
               first_page: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": min(first_page, PAGE_SIZE)}
        if delimiter:
            params["Delimiter"] = delimiter
        if start_after:
            params["StartAfter"] = start_after
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
        """One PUT; with ``overwrite=False`` a conditional one (If-None-Match: *)."""
        extra = dict(params or {})
        if not overwrite:
            extra["IfNoneMatch"] = "*"
        try:
            return self._request(lambda: self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra), bucket, key)
        except S3RequestError as error:
            if error.code != "PreconditionFailed" or overwrite:
                raise
        # A retry of this very write may have met the first attempt's object: compare first.
        if self.get(bucket, key) == body:
            return {}
        raise RowExistsError(f"s3://{bucket}/{key} exists and overwrite=False")

    def put_if_match(self, bucket: str, key: str, body: bytes, etag: str,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """PUT only over the object whose ETag is ``etag`` (If-Match): compare-and-swap."""
        extra = dict(params or {})
        try:
            return self._request(
                lambda: self.client.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=etag, **extra), bucket, key
            )
        except S3RequestError as error:
            if error.code not in {"PreconditionFailed", "NoSuchKey", "404"}:
                raise
        current = self.get(bucket, key)
        if current == body:  # our own earlier attempt landed before a retry was refused
            return {}
        state = "was deleted" if current is None else "changed"
        raise RowChangedError(
            f"s3://{bucket}/{key} {state} since ETag {etag} was read; read it again and retry"
        )

    def get_with_etag(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The body and ETag of an object (one GET), or None when missing."""
        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=bucket, Key=key)
            body = response["Body"].read()
            _check_body(response, body, f"s3://{bucket}/{key}")
            return body, response["ETag"]

        try:
            return self._request(fetch, bucket, key)
        except S3RequestError as error:
            if error.code in _MISSING_KEY_CODES:
                return None
            raise

    def get_range(self, bucket: str, key: str, byte_range: str) -> tuple[bytes, int]:
        """Part of an object (one ranged GET, ``bytes=0-99`` or ``bytes=-100``) and its full size."""
        def fetch() -> tuple[bytes, int]:
            response = self.client.get_object(Bucket=bucket, Key=key, Range=byte_range)
            body = response["Body"].read()
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
        """Delete keys with DeleteObjects, 1,000 a request; raise naming every key that failed."""
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
        request = {"Objects": [{"Key": key} for key in keys], "Quiet": True}
        response = self._request(lambda: self.client.delete_objects(Bucket=bucket, Delete=request), bucket)
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


def _check_body(response: Mapping[str, Any], body: bytes, where: str) -> None:
    """Refuse a body whose MD5 differs from a plain single-part ETag (a corrupted transfer).

    botocore checks CRC checksums only where S3 returns them; a single-part object that is not
    KMS- or customer-key-encrypted always has its MD5 as ETag, so this catches the rest.
    """
    etag = str(response.get("ETag", "")).strip('"')
    encrypted = response.get("SSECustomerAlgorithm") or response.get("ServerSideEncryption") == "aws:kms"
    if len(etag) != 32 or "-" in etag or encrypted or "ContentRange" in response:
        return
    if hashlib.md5(body, usedforsecurity=False).hexdigest() != etag:
        raise S3RequestError(f"the body of {where} arrived corrupted (its MD5 differs from its ETag)", retryable=True)
