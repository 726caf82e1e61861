"""Answers as AWS gives them, where moto's server does not: bucket regions and directory buckets.

A WSGI layer in front of moto's server (see :class:`~s3aads_pandas.local.LocalS3`), so that a
client's handling of real S3's answers can be tested on this machine:

- **Regions.** Every bucket is in the region it was created in. A request signed for another
  region is answered as AWS answers it: ``301 PermanentRedirect`` (or, when asked,
  ``400 AuthorizationHeaderMalformed`` naming the region), with the ``x-amz-bucket-region``
  header; a HeadBucket gets the status and the header with no body.
- **Encrypted objects.** An object stored with SSE-KMS or SSE-C shows an ETag that is not the
  MD5 of its body (in the answers to its PUT, GET and HEAD; moto's listings still show the MD5).
- **Directory buckets** (S3 Express One Zone, names ending ``--x-s3``): CreateSession
  (``GET /<bucket>?session``) hands out session credentials, and every object request and
  listing must carry an issued ``x-amz-s3session-token``; listings come in no particular order
  (the same order every time, that of a hash of the key), StartAfter and prefixes that do not
  end in ``/`` are refused with ``400 InvalidArgument``, and ETags are not MD5s of the body.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

from s3aads_pandas.local.faults import WSGIApp

#: The S3 error codes a request signed for the wrong region can get, as AWS's endpoints answer.
WRONG_REGION_ANSWERS = ("PermanentRedirect", "AuthorizationHeaderMalformed")
DIRECTORY_BUCKET_SUFFIX = "--x-s3"

_SIGNING_REGION = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/")
_SESSION_HEADER = "HTTP_X_AMZ_S3SESSION_TOKEN"
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DEFAULT_MAX_KEYS = 1000


def _bucket_and_key(environ: dict[str, Any]) -> tuple[str, str]:
    """The bucket and key of a path-style request (PEP 3333 paths are latin-1 of the bytes)."""
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _query(environ: dict[str, Any]) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)


def _signing_region(environ: dict[str, Any]) -> str | None:
    """The region a SigV4 request was signed for (its Authorization header or presigned URL)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = _SIGNING_REGION.search(authorization)
    if match:
        return match.group(1)
    credential = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    return parts[2] if len(parts) >= 4 else None


def _answer(start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]],
            body: bytes = b"") -> list[bytes]:
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _error(start_response: Callable[..., Any], status: str, code: str, message: str, method: str,
           headers: list[tuple[str, str]] | None = None, extra: str = "") -> list[bytes]:
    """S3's error answer; a HEAD gets the status and headers only, as from S3."""
    headers = [("Content-Type", "application/xml"), *(headers or [])]
    if method == "HEAD":
        return _answer(start_response, status, headers)
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{escape(message)}'
            f"</Message>{extra}<RequestId>local</RequestId></Error>").encode()
    return _answer(start_response, status, headers, body)


class AwsAnswers:
    """The WSGI layer. ``wrong_region`` is the error code a wrongly signed request gets."""

    def __init__(self, app: WSGIApp, wrong_region: str = "PermanentRedirect") -> None:
        if wrong_region not in WRONG_REGION_ANSWERS:
            raise ValueError(f"wrong_region must be one of {WRONG_REGION_ANSWERS}, got {wrong_region!r}")
        self.app = app
        self.wrong_region = wrong_region
        self._sessions: set[str] = set()
        self._real_etags: dict[str, str] = {}  # the opaque ETags shown -> moto's
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        bucket, key = _bucket_and_key(environ)
        if not bucket or bucket == "moto-api":
            return self.app(environ, start_response)
        directory = bucket.endswith(DIRECTORY_BUCKET_SUFFIX)
        method = environ.get("REQUEST_METHOD", "GET")
        if directory and not key and method == "GET" and "session" in _query(environ):
            return self._create_session(start_response)  # botocore asks before CreateBucket too
        stored = _moto_bucket(bucket)
        signed_for = _signing_region(environ)
        if stored is not None and signed_for and signed_for != stored.region_name:
            return self._wrong_region(start_response, method, bucket, stored.region_name, signed_for)
        if stored is None:
            return self.app(environ, start_response)
        if directory:
            return self._directory(environ, start_response, bucket, key, stored)
        return self._opaque_etags(environ, start_response, directory=False)

    def _opaque_etags(self, environ: dict[str, Any], start_response: Callable[..., Any], *,
                      directory: bool) -> Iterable[bytes]:
        """Show ETags that are not MD5s, as S3 does for a directory bucket's objects and for the
        objects encrypted with a KMS or customer key; conditional writes take the ETags shown."""
        for header in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH"):
            if header in environ:
                with self._lock:
                    environ[header] = self._real_etags.get(environ[header], environ[header])

        def shown(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            named = {name.lower(): value for name, value in headers}
            opaque = (directory or named.get("x-amz-server-side-encryption", "").startswith("aws:kms")
                      or "x-amz-server-side-encryption-customer-algorithm" in named)
            if opaque:
                headers = [(name, self._shown(value) if name.lower() == "etag" else value) for name, value in headers]
            return start_response(status, headers, *rest)

        return self.app(environ, shown)

    def _wrong_region(self, start_response: Callable[..., Any], method: str, bucket: str, region: str,
                      signed_for: str) -> list[bytes]:
        headers = [("x-amz-bucket-region", region)]
        if self.wrong_region == "AuthorizationHeaderMalformed":
            return _error(start_response, "400 Bad Request", "AuthorizationHeaderMalformed",
                          f"The authorization header is malformed; the region '{signed_for}' is wrong; "
                          f"expecting '{region}'", method, headers, f"<Region>{region}</Region>")
        return _error(start_response, "301 Moved Permanently", "PermanentRedirect",
                      "The bucket you are attempting to access must be addressed using the specified "
                      "endpoint. Please send all future requests to this endpoint.", method, headers,
                      f"<Bucket>{escape(bucket)}</Bucket><Endpoint>s3.{region}.amazonaws.com</Endpoint>")

    # -- directory buckets ---------------------------------------------------------------------

    def _directory(self, environ: dict[str, Any], start_response: Callable[..., Any], bucket: str, key: str,
                   stored: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = _query(environ)
        listing = not key and method == "GET" and query.get("list-type") == ["2"]
        if (key or listing) and environ.get(_SESSION_HEADER) not in self._sessions:
            return _error(start_response, "403 Forbidden", "AccessDenied",
                          "directory buckets take session credentials: call CreateSession first", method)
        if listing:
            return self._list(start_response, bucket, stored, query)
        return self._opaque_etags(environ, start_response, directory=True)

    def _create_session(self, start_response: Callable[..., Any]) -> list[bytes]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions.add(token)
        expires = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = (f'<?xml version="1.0" encoding="UTF-8"?><CreateSessionResult xmlns="{_XMLNS}"><Credentials>'
                f"<SessionToken>{token}</SessionToken><SecretAccessKey>local-session</SecretAccessKey>"
                f"<AccessKeyId>local-session</AccessKeyId><Expiration>{expires}</Expiration>"
                "</Credentials></CreateSessionResult>").encode()
        return _answer(start_response, "200 OK", [("Content-Type", "application/xml")], body)

    def _shown(self, etag: str) -> str:
        """The ETag a directory bucket shows for moto's (an MD5): another 32 hex digits."""
        shown = '"' + hashlib.sha256(b"express:" + etag.encode()).hexdigest()[:32] + '"'
        with self._lock:
            self._real_etags[shown] = etag
        return shown

    def _list(self, start_response: Callable[..., Any], bucket: str, stored: Any,
              query: dict[str, list[str]]) -> list[bytes]:
        """ListObjectsV2 as a directory bucket answers it: in no key order, no StartAfter."""
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        if "start-after" in query:
            return _error(start_response, "400 Bad Request", "InvalidArgument",
                          "StartAfter is not supported for directory buckets", "GET")
        if prefix and not prefix.endswith("/"):
            return _error(start_response, "400 Bad Request", "InvalidArgument",
                          "directory buckets support only prefixes that end in a delimiter (/)", "GET")
        if delimiter not in {"", "/"}:
            return _error(start_response, "400 Bad Request", "InvalidArgument",
                          "directory buckets support only / as the delimiter", "GET")
        max_keys = int(query.get("max-keys", [str(_DEFAULT_MAX_KEYS)])[0] or _DEFAULT_MAX_KEYS)
        after = query.get("continuation-token", [""])[0]
        entries = sorted((_shuffled(name), name, obj) for name, obj in _moto_listing(stored, prefix, delimiter))
        entries = [entry for entry in entries if entry[0] > after]
        page, truncated = entries[:max_keys], len(entries) > max_keys
        encode = _url_encoder(query.get("encoding-type", [""])[0] == "url")
        parts = [f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_XMLNS}">',
                 f"<Name>{escape(bucket)}</Name><Prefix>{encode(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>",
                 f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"]
        if delimiter:
            parts.append(f"<Delimiter>{encode(delimiter)}</Delimiter>")
        if query.get("encoding-type", [""])[0] == "url":
            parts.append("<EncodingType>url</EncodingType>")
        for _, name, obj in page:
            if obj is None:
                parts.append(f"<CommonPrefixes><Prefix>{encode(name)}</Prefix></CommonPrefixes>")
            else:
                parts.append(f"<Contents><Key>{encode(name)}</Key><LastModified>{obj.last_modified_ISO8601}"
                             f"</LastModified><ETag>{escape(self._shown(obj.etag))}</ETag><Size>{obj.size}"
                             "</Size><StorageClass>EXPRESS_ONEZONE</StorageClass></Contents>")
        if truncated:
            parts.append(f"<NextContinuationToken>{page[-1][0]}</NextContinuationToken>")
        parts.append("</ListBucketResult>")
        return _answer(start_response, "200 OK", [("Content-Type", "application/xml")], "".join(parts).encode())


def _shuffled(name: str) -> str:
    """Where a directory bucket lists ``name``: the same place every time, unrelated to key order."""
    return hashlib.sha256(b"listing:" + name.encode()).hexdigest()


def _url_encoder(url: bool) -> Callable[[str], str]:
    """How names appear in a listing: URL-encoded when the client asked (botocore does), else XML text."""
    if url:
        return lambda name: urllib.parse.quote(name, safe="/~")
    return lambda name: escape(name)


def _moto_bucket(name: str) -> Any:
    """moto's bucket of that name (it runs in this process), or None."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(name)


def _moto_listing(stored: Any, prefix: str, delimiter: str) -> list[tuple[str, Any]]:
    """Every (name, object) under ``prefix``, with common prefixes as (prefix, None)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    objects, folders, _, _ = backend.list_objects(stored, prefix or None, delimiter or None, None, None)
    return [(obj.name, obj) for obj in objects] + [(folder, None) for folder in folders]
