"""S3's error codes, and the project's exception for each: the same on every transport.

Every transport raises from :data:`ANSWERED` and :func:`answered_error`, so the adapter tells
a missing key from a refused condition by the exception's class, never by comparing codes.
"""

from __future__ import annotations

from s3aads_pandas.errors import (
    AccessDeniedError,
    DatabaseNotFoundError,
    S3RequestError,
)
from s3aads_pandas.storage.redaction import redact

THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"})
#: ConditionalRequestConflict: another conditional write of the key was in progress; S3 asks to retry.
TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout",
                             "ConditionalRequestConflict", "500", "502", "504"})
DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                          "ExpiredToken", "InvalidToken"})


class NotFound(S3RequestError):
    """S3 has no such key (NoSuchKey), or answered 404: an If-Match write of a deleted key, a
    HeadBucket of a missing bucket."""


class ConditionRefused(S3RequestError):
    """A conditional write whose condition does not hold (PreconditionFailed, a 412)."""


class BucketOwned(S3RequestError):
    """A CreateBucket of a bucket that the caller already owns."""


class BucketTaken(S3RequestError):
    """A CreateBucket of a bucket that another account owns."""


class RangeNotSatisfiable(S3RequestError):
    """A ranged GET that asks for bytes the object does not have (any, for an empty object)."""


class NotModified(S3RequestError):
    """A conditional GET (If-None-Match) of the version the caller holds: a 304, no body."""


#: The S3 error codes that have an exception of their own.
ANSWERED: dict[str, type[S3RequestError]] = {
    "NoSuchKey": NotFound, "NotFound": NotFound, "404": NotFound,
    "PreconditionFailed": ConditionRefused, "412": ConditionRefused,
    "BucketAlreadyOwnedByYou": BucketOwned, "BucketAlreadyExists": BucketTaken,
    "InvalidRange": RangeNotSatisfiable, "416": RangeNotSatisfiable,
    "NotModified": NotModified, "304": NotModified,
}


def where(bucket: str | None, key: str | None = None) -> str:
    """What a request was about, as messages name it."""
    return f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}" if bucket else "S3"


def answered_error(code: str, status: int, message: str, bucket: str | None, about: str,
                   endpoint: str) -> Exception:
    """The exception for an error S3 answered: ``code`` (or the HTTP status), its message."""
    if code == "NoSuchBucket" and bucket:
        return DatabaseNotFoundError(
            f"database {bucket!r} does not exist (no S3 bucket of that name at "
            f"{endpoint}); create it with Database({bucket!r}).create()",
            bucket,
        )
    if code in DENIED_CODES:
        return AccessDeniedError(f"S3 denied access to {about}: {code}: {redact(message or code)}")
    return ANSWERED.get(code, S3RequestError)(
        f"S3 request for {about} failed: {code}: {redact(message or code)}",
        code=code,
        throttled=code in THROTTLING_CODES,
        retryable=code in TRANSIENT_CODES or status >= 500,
    )


def unanswered_error(about: str, detail: str, *, connected: bool, sent: bool,
                     endpoint: str) -> S3RequestError:
    """The exception for a request that got no answer: never connected, or sent and then lost."""
    if not connected:
        return S3RequestError(
            f"could not connect to S3 at {endpoint} for {about}: check the endpoint URL "
            f"and network ({redact(detail)})",
            retryable=True,
        )
    if sent:
        return S3RequestError(f"no answer from S3 for {about}: {redact(detail)}", retryable=True, answer_lost=True)
    return S3RequestError(f"request to {about} failed: {redact(detail)}", retryable=True)
