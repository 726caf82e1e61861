"""S3's error codes, and the project's exception for each: the same on every transport."""

from __future__ import annotations

from s3aads_pandas.errors import (
    AccessDeniedError,
    DatabaseNotFoundError,
    S3RequestError,
)
from s3aads_pandas.storage.redaction import redact

#: The codes of a GET or HEAD of a key that does not exist.
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"})
#: ConditionalRequestConflict: another conditional write of the key was in progress; S3 asks to retry.
TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout",
                             "ConditionalRequestConflict", "500", "502", "504"})
#: The answers of S3 to a conditional write whose condition does not hold (If-Match on a missing
#: key is a 404).
REFUSED_CODES = frozenset({"PreconditionFailed", "412", "NoSuchKey", "404"})
DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                          "ExpiredToken", "InvalidToken"})


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
    return S3RequestError(
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
