"""The boto3 transport: one attempt per call on a boto3 S3 client, botocore's errors made ours.

It serves every S3-compatible store that boto3 does, the in-process ``moto.mock_aws``, a client
handed over by the caller, and what obstore cannot express (see
:mod:`s3aads_pandas.storage.s3_transport`). Thread-safe, as boto3 clients are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

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

from s3aads_pandas.errors import CredentialsNotFoundError, InvalidArgumentError, S3RequestError
from s3aads_pandas.storage.buckets import (
    REGION_HEADER,
    WRONG_REGION_CODES,
    is_directory_bucket,
    lists_in_key_order,
    wrong_region,
)
from s3aads_pandas.storage.failures import answered_error, unanswered_error, where
from s3aads_pandas.storage.integrity import CHECKSUMS, check_body
from s3aads_pandas.storage.redaction import install, redact, remember
from s3aads_pandas.storage.retry import request_deadline
from s3aads_pandas.storage.transport import (
    PAGE_SIZE,
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

#: Failures where the same request may succeed if sent again.
_TRANSIENT_ERRORS = (HTTPClientError, IncompleteReadError, ResponseStreamingError, FlexibleChecksumError)
#: Failures after the request was sent and before its answer came: it may have taken effect.
_ANSWER_LOST_ERRORS = (ReadTimeoutError, ConnectionClosedError)
#: How much of a body one read takes, between two checks of the request's deadline.
_READ_CHUNK = 1 << 20

#: The checksum S3 is asked to compute and keep for every object written (botocore needs awscrt).
CHECKSUM_ALGORITHM = "CRC64NVME"

NO_CREDENTIALS = ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, or pass a boto3 session")


class Boto3Transport:
    """Calls on one boto3 S3 client."""

    def __init__(self, client: Boto3Client) -> None:
        self.client: Any = client  # its methods are made at run time
        self.hooks: list[RequestHook] = []
        self._asking_region = threading.local()
        self._signed_with: object = None
        client.meta.events.register("before-call.s3.HeadBucket", self._no_redirect)
        client.meta.events.register("before-sign.s3", self._remember_credentials)
        client.meta.events.register("request-created.s3", self._remember_sent_token)  # after the signer
        client.meta.events.register("after-call.s3.CreateSession", self._remember_session)
        endpoint = getattr(client, "_endpoint", None)  # botocore keeps its HTTP session only here
        if endpoint is not None and not isinstance(endpoint.http_session, _DeadlineSession):
            endpoint.http_session = _DeadlineSession(endpoint.http_session)
        self._remember_credentials()
        install()

    def _remember_credentials(self, **kwargs: Any) -> None:
        """Register the credentials a request is signed with for redaction, before botocore
        logs the request: refreshed ones (SSO, assumed roles, credential_process) are new."""
        signer = getattr(self.client, "_request_signer", None)  # botocore keeps them only here
        credentials = getattr(signer, "_credentials", None)
        if credentials is None:
            return
        frozen = credentials.get_frozen_credentials()
        if frozen != self._signed_with:
            remember(frozen.access_key, frozen.secret_key, frozen.token)
            self._signed_with = frozen

    @staticmethod
    def _remember_sent_token(request: Any, **kwargs: Any) -> None:
        """Register the session token a signed request carries: credentials refreshed while it
        was signed are not those :meth:`_remember_credentials` saw."""
        remember(request.headers.get("X-Amz-Security-Token") or None)

    @staticmethod
    def _remember_session(parsed: Mapping[str, Any], **kwargs: Any) -> None:
        """Register the session credentials a directory bucket hands out (CreateSession)."""
        session = parsed.get("Credentials") or {}
        remember(session.get("AccessKeyId"), session.get("SecretAccessKey"), session.get("SessionToken"))

    def _no_redirect(self, context: dict[str, Any], **kwargs: Any) -> None:
        """Keep botocore from following a redirect while a HeadBucket asks for the region: the
        redirect's header is the answer, and following it would cost a second request."""
        if getattr(self._asking_region, "on", False) and "s3_redirect" in context:
            context["s3_redirect"]["redirected"] = True

    @property
    def region(self) -> str | None:
        """The region requests are signed for."""
        return self.client.meta.region_name  # type: ignore[no-any-return]

    @staticmethod
    def database_url(bucket: str) -> str:
        return where(bucket)

    @property
    def boto3_client(self) -> Boto3Client:
        return self.client  # type: ignore[no-any-return]

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def _call(self, operation: str, bucket: str | None = None, key: str | None = None, **params: Any) -> Any:
        """One API call, announced to the hooks, its errors translated."""
        if bucket is not None:
            params["Bucket"] = bucket
        if key is not None:
            params["Key"] = key
        self._announce(operation, params)
        method = getattr(self.client, _SNAKE[operation])
        return self.guarded(lambda: method(**params), bucket, key)

    def _announce(self, operation: str, params: Mapping[str, Any]) -> None:
        for hook in self.hooks:
            hook(operation, params)

    def guarded(self, call: Callable[[], T], bucket: str | None = None, key: str | None = None) -> T:
        """``call()``, botocore's exceptions made the project's, naming what was asked for.

        The new error is raised outside the ``except``, so botocore's (whose response may hold
        S3's body, which can echo a session token) is not kept as its ``__context__``.
        """
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            failure = self._translated(error, bucket, key)
        raise failure

    def _translated(self, error: Exception, bucket: str | None, key: str | None) -> Exception:
        about = where(bucket, key)
        if isinstance(error, ClientError):
            info = error.response.get("Error", {})
            code = str(info.get("Code", "Unknown"))
            metadata = error.response.get("ResponseMetadata", {})
            status = int(metadata.get("HTTPStatusCode") or 0)
            region = metadata.get("HTTPHeaders", {}).get(REGION_HEADER) or info.get("Region")
            if bucket and (code in WRONG_REGION_CODES or (region and region != self.region and status in {301, 400})):
                return wrong_region(bucket, region, self.region, code)
            return answered_error(code, status, info.get("Message") or code, bucket, about, self.endpoint)
        if isinstance(error, NoCredentialsError):
            return CredentialsNotFoundError(NO_CREDENTIALS)
        if isinstance(error, ParamValidationError):
            return InvalidArgumentError(f"invalid S3 parameters for {about}: {redact(str(error))}")
        if isinstance(error, CouldNotConnectError):  # the request never reached S3
            return unanswered_error(about, str(error), connected=False, sent=False, endpoint=self.endpoint)
        if isinstance(error, _ANSWER_LOST_ERRORS):
            return unanswered_error(about, str(error), connected=True, sent=True, endpoint=self.endpoint)
        if isinstance(error, _TRANSIENT_ERRORS):
            return unanswered_error(about, str(error), connected=True, sent=False, endpoint=self.endpoint)
        return S3RequestError(f"request to {about} failed: {redact(str(error))}")

    # -- listing -------------------------------------------------------------------------------

    def list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                  max_keys: int, delimiter: str | None) -> ListedPage:
        page = self._list(bucket, prefix, start_after, token, max_keys, delimiter)
        return ListedPage(
            [Listed(obj["Key"], obj.get("Size", 0), _utc(obj.get("LastModified")), obj.get("ETag"))
             for obj in page.get("Contents", ())],
            [entry["Prefix"] for entry in page.get("CommonPrefixes", ())],
            _next_token(page, bucket, prefix),
        )

    def list_details(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                     max_keys: int) -> ListedPage:
        page = self._list(bucket, prefix, start_after, token, max_keys, None)
        return ListedPage(
            [Listed(obj["Key"], obj.get("Size", 0), _utc(obj.get("LastModified")), obj.get("ETag"),
                    obj.get("StorageClass")) for obj in page.get("Contents", ())],
            [], _next_token(page, bucket, prefix),
        )

    def _list(self, bucket: str, prefix: str, start_after: str | None, token: str | None, max_keys: int,
              delimiter: str | None) -> dict[str, Any]:
        if not lists_in_key_order(bucket):
            return self._list_unordered(bucket, prefix, start_after, token, max_keys, delimiter)
        params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": min(max_keys, PAGE_SIZE)}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        elif start_after:
            params["StartAfter"] = start_after
        return self._call("ListObjectsV2", bucket, **params)  # type: ignore[no-any-return]

    def _list_unordered(self, bucket: str, prefix: str, start_after: str | None, token: str | None,
                        max_keys: int, delimiter: str | None) -> dict[str, Any]:
        """A page of a directory bucket, which takes no StartAfter and only prefixes ending in
        ``/``: the folder around ``prefix`` is listed, and what is outside the asked range dropped
        (the pages come in no key order, so each page is filtered, and none can end the listing)."""
        folder = prefix[: prefix.rfind("/") + 1]
        params: dict[str, Any] = {"Prefix": folder, "MaxKeys": min(max_keys, PAGE_SIZE)}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        page = dict(self._call("ListObjectsV2", bucket, **params))

        def wanted(name: str) -> bool:
            return name.startswith(prefix) and (start_after is None or name > start_after)

        page["Contents"] = [obj for obj in page.get("Contents", ()) if wanted(obj["Key"])]
        page["CommonPrefixes"] = [entry for entry in page.get("CommonPrefixes", ()) if wanted(entry["Prefix"])]
        return page

    # -- objects -------------------------------------------------------------------------------

    def get(self, bucket: str, key: str, deadline: float, byte_range: str | None = None,
            if_none_match: str | None = None) -> Fetched:
        about = where(bucket, key)
        response = self._call("GetObject", bucket, key, **get_parameters(byte_range, if_none_match))
        body = self.guarded(lambda: _read_body(response, about, deadline), bucket, key)
        etag = str(response.get("ETag") or "")
        if not etag:
            raise S3RequestError(f"S3 answered the GET of {about} without an ETag header", retryable=True)
        metadata = dict(response.get("Metadata") or {})
        content_range = response.get("ContentRange")
        if content_range and not byte_range:
            raise S3RequestError(f"S3 answered the GET of the whole of {about} with part of it "
                                 f"({content_range})", retryable=True)
        if content_range:
            size = str(content_range).rpartition("/")[2]
            return Fetched(body, etag, int(size) if size.isdigit() else len(body), metadata)
        etag_is_md5 = not (is_directory_bucket(bucket) or _encrypted(response))
        check_body(body, etag, about, {name: str(response.get(name) or "") for name in CHECKSUMS}, etag_is_md5)
        return Fetched(body, etag, len(body), metadata)

    def head(self, bucket: str, key: str) -> Head:
        response = self._call("HeadObject", bucket, key)
        return Head(str(response.get("ETag", "")), int(response.get("ContentLength", 0)),
                    dict(response.get("Metadata", {})))

    def put(self, bucket: str, key: str, body: bytes, params: Mapping[str, Any],
            condition: Mapping[str, str]) -> Written:
        checksum = {} if "ChecksumAlgorithm" in params else {"ChecksumAlgorithm": CHECKSUM_ALGORITHM}
        response = self._call("PutObject", bucket, key, Body=body, **checksum, **params, **condition)
        return _written(response)

    def delete(self, bucket: str, key: str) -> None:
        self._call("DeleteObject", bucket, key)

    def delete_batch(self, bucket: str, keys: Sequence[str]) -> dict[str, str]:
        request = {"Objects": [{"Key": key} for key in keys], "Quiet": True}
        response = self._call("DeleteObjects", bucket, Delete=request)
        return {
            error["Key"]: f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
            for error in response.get("Errors", [])
        }

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str,
             params: Mapping[str, Any]) -> Written:
        source = {"Bucket": source_bucket, "Key": source_key}
        response = self._call("CopyObject", bucket, key, CopySource=source, **params)
        return _written(response.get("CopyObjectResult", {}) | {"VersionId": response.get("VersionId")})

    # -- buckets -------------------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        return [bucket["Name"] for bucket in self._call("ListBuckets").get("Buckets", [])]

    def head_bucket(self, bucket: str) -> None:
        self._call("HeadBucket", bucket)

    def bucket_region(self, bucket: str) -> str | None:
        """The bucket's region from one HeadBucket (S3 names it on 200, 301, 400 and 403), or
        None when the store does not say or there is no such bucket (yet)."""
        self._asking_region.on = True
        try:
            self._announce("HeadBucket", {"Bucket": bucket})
            response = self.guarded(lambda: self._head_bucket_answer(bucket), bucket)
        finally:
            self._asking_region.on = False
        if response is None:
            return None
        return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(REGION_HEADER)  # type: ignore[no-any-return]

    def _head_bucket_answer(self, bucket: str) -> dict[str, Any] | None:
        """HeadBucket's answer, also when it is a redirect or a refusal; None when there is no bucket."""
        try:
            return self.client.head_bucket(Bucket=bucket)  # type: ignore[no-any-return]
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            if status not in {301, 400, 403}:
                raise
            return dict(error.response)

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` in the configured region; a directory bucket in the zone its name
        gives (``name--use1-az4--x-s3``)."""
        params: dict[str, Any] = {}
        region = self.client.meta.region_name
        if is_directory_bucket(bucket):
            zone = bucket.rsplit("--", 2)[-2]
            params["CreateBucketConfiguration"] = {
                "Location": {"Type": "AvailabilityZone", "Name": zone},
                "Bucket": {"Type": "Directory", "DataRedundancy": "SingleAvailabilityZone"},
            }
        elif region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call("CreateBucket", bucket, **params)

    def put_parameters(self) -> frozenset[str]:
        return frozenset(self.client.meta.service_model.operation_model("PutObject").input_shape.members)


_SNAKE = {
    "ListObjectsV2": "list_objects_v2", "GetObject": "get_object", "HeadObject": "head_object",
    "PutObject": "put_object", "DeleteObject": "delete_object", "DeleteObjects": "delete_objects",
    "CopyObject": "copy_object", "ListBuckets": "list_buckets", "HeadBucket": "head_bucket",
    "CreateBucket": "create_bucket",
}


class _DeadlineSession:
    """botocore's HTTP session, whose answers are read against the request's deadline.

    botocore reads a whole answer (a listing, a PUT's, a DeleteObjects') before parsing it, and
    its read timeout bounds each wait only: a server that answers 200 and then sends a byte now
    and then would keep a request for ever. Answers are read piece by piece here, and given up
    at the deadline (:data:`~s3aads_pandas.storage.retry.request_deadline`) as a lost answer.
    Streamed bodies (a GET's) are read by :func:`_read_body`, which checks the same deadline.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send(self, request: Any) -> Any:
        deadline = request_deadline.get()
        if deadline is None or request.stream_output:
            return self.inner.send(request)
        request.stream_output = True  # botocore would read the whole answer in send()
        try:
            response = self.inner.send(request)
        finally:
            request.stream_output = False
        response.raw = _DeadlineBody(response.raw, deadline, str(request.url))
        response.content  # noqa: B018 -- read now, as botocore would have, against the deadline
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _StillArriving(Exception):
    """An answer was still arriving at its request's deadline."""


def _pieces(read1: Callable[[int], bytes], size: int, deadline: float) -> Iterator[bytes]:
    """What has arrived of an answer, piece by piece, until it ends or ``deadline`` (monotonic)
    passes (:class:`_StillArriving`). A read timeout bounds only each wait, so an answer that
    trickles in could take forever; reading piece by piece lets the deadline be checked between."""
    while chunk := read1(size):
        yield chunk
        if time.monotonic() > deadline:
            raise _StillArriving


class _DeadlineBody:
    """urllib3's answer, read as it arrives until ``deadline`` (monotonic)."""

    def __init__(self, raw: Any, deadline: float, url: str) -> None:
        self._raw = raw
        self._deadline = deadline
        self._url = url

    def stream(self, amt: int = _READ_CHUNK, decode_content: bool | None = None) -> Iterator[bytes]:
        read1 = getattr(self._raw, "read1", None)
        if read1 is None:  # not urllib3 2's answer: nothing to read piece by piece
            yield from self._raw.stream(amt, decode_content=decode_content)
            return
        try:
            yield from _pieces(read1, amt, self._deadline)
        except _StillArriving:
            self._raw.close()
            about = f"{self._url} (the answer was still arriving at the deadline)"
            raise ReadTimeoutError(endpoint_url=about) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _encrypted(response: Mapping[str, Any]) -> bool:
    """Whether an object is encrypted with a KMS or customer key: its ETag is then no MD5."""
    return bool(response.get("SSECustomerAlgorithm")) or str(response.get("ServerSideEncryption")).startswith("aws:kms")


def _utc(moment: datetime | None) -> datetime | None:
    """botocore's time in the shared UTC zone: its own zone object per key would triple a
    listing's memory."""
    return moment.astimezone(timezone.utc) if moment is not None else None


def _next_token(page: Mapping[str, Any], bucket: str, prefix: str) -> str | None:
    """The token of the next page, None on the last; an answer that is no listing, or that says
    there is more without saying where, is an error (its rows would be lost in silence)."""
    about = where(bucket, prefix)
    if "IsTruncated" not in page:
        raise S3RequestError(f"S3 answered a listing of {about} with no listing in its body", retryable=True)
    if not page["IsTruncated"]:
        return None
    token = page.get("NextContinuationToken")
    if not token:
        raise S3RequestError(
            f"S3 answered a page of the listing of {about} as truncated but gave no continuation token: "
            "the store is at fault, and the listing stops here rather than lose the rest", code="InvalidListing",
        )
    return str(token)


def _written(response: Mapping[str, Any]) -> Written:
    """What a write returns on every transport: the new ETag, and the version when versioned."""
    return Written(str(response.get("ETag") or ""), response.get("VersionId") or None)


def _read_body(response: Mapping[str, Any], about: str, deadline: float) -> bytes:
    """The whole body of a GET, given up when it is still arriving at ``deadline`` (monotonic)."""
    stream = response["Body"]
    read1 = getattr(getattr(stream, "_raw_stream", None), "read1", None)
    if read1 is None:  # not urllib3's response: nothing to read piece by piece
        return bytes(stream.read())
    parts: list[bytes] = []
    try:
        for chunk in _pieces(read1, _READ_CHUNK, deadline):
            parts.append(chunk)
    except _StillArriving:
        stream.close()
        raise S3RequestError(
            f"the body of {about} was still arriving at the request's deadline "
            f"({sum(map(len, parts))} bytes read); raise the deadline setting for slow links",
            retryable=True,
        ) from None
    except Urllib3Error as error:
        raise S3RequestError(f"reading the body of {about} failed: {redact(str(error))}", retryable=True) from None
    body = b"".join(parts)
    expected = response.get("ContentLength")
    if expected is not None and len(body) != int(expected):
        raise S3RequestError(
            f"the body of {about} arrived incomplete ({len(body)} of {expected} bytes)", retryable=True
        )
    return body
