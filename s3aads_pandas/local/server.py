"""A local S3 endpoint for demos and tests: moto's server over HTTP on 127.0.0.1.

Its data lives in memory and is gone when it stops. It needs the ``local`` extra
(the ``[local]`` extra). It has no authentication: any program of this machine
can use it. Web pages cannot: requests a browser sends for a page are refused (see
:class:`NoBrowsers`), and moto's control API answers only the :class:`LocalS3` that started it.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from s3aads_pandas.config import ConnectionSettings
from s3aads_pandas.errors import MissingExtraError, install_hint
from s3aads_pandas.local.aws import AwsAnswers
from s3aads_pandas.local.faults import (
    ConditionalWrites,
    FaultInjector,
    FaultPlan,
    WSGIApp,
)

logger = logging.getLogger(__name__)

#: Credentials the local endpoint accepts (it accepts any); real ones are never needed or sent.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


#: The header that carries the control token to moto's control API (``/moto-api/...``).
CONTROL_HEADER = "X-S3aads-Control"


class NoBrowsers:
    """Refuses what a web page could send: the local endpoint is for this machine's programs.

    Without this, any page open in a browser could drive moto's server on 127.0.0.1: moto grants
    every Origin through CORS, and accepts unsigned requests. So: a request that carries an
    ``Origin`` or a cross-site ``Sec-Fetch-Site`` header (browsers add them, programs do not), a
    CORS preflight, and a request signed neither in its headers nor in its URL are answered 403;
    moto's control API needs the token of the :class:`LocalS3` that started the server; a request
    whose Host is not a loopback name (a page that reached it through DNS rebinding) is refused;
    and no answer carries a CORS grant.
    """

    def __init__(self, app: WSGIApp, control_token: str) -> None:
        self.app = app
        self.control_token = control_token

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        problem = self._problem(environ)
        if problem:
            body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    f"<Message>{problem}</Message></Error>").encode()
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(body)))])
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, kept, *rest)

        return self.app(environ, without_cors)

    def _problem(self, environ: dict[str, Any]) -> str | None:
        if not _loopback(environ.get("HTTP_HOST", "")):
            return ("the local S3 endpoint answers only requests addressed to 127.0.0.1, [::1] or localhost "
                    "(a page reaching it through a DNS name of its own is refused)")
        if "HTTP_ORIGIN" in environ or environ.get("HTTP_SEC_FETCH_SITE", "none") not in {"none", "same-origin"}:
            return "the local S3 endpoint refuses requests from web pages"
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return "the local S3 endpoint grants no cross-origin access"
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            given = environ.get("HTTP_" + CONTROL_HEADER.upper().replace("-", "_"), "")
            return None if secrets.compare_digest(given, self.control_token) else "the control API is not open"
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if "HTTP_AUTHORIZATION" not in environ and "X-Amz-Signature" not in query and "Signature" not in query:
            return "unsigned requests are refused: sign them with any access key"
        return None


def _loopback(host: str) -> bool:
    """Whether a Host header names this machine: a DNS name that resolves here for a web page
    (DNS rebinding) names it too, but not by one of these names."""
    name = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.rpartition(":")[0] or host
    name = name.lower().rstrip(".")
    return name in {"127.0.0.1", "[::1]", "localhost"} or name.endswith(".localhost")


class AnswerCounter:
    """Counts what the endpoint answered, by method and status (``answered["HEAD 301"]``) and
    by S3 operation (``operations["ListObjectsV2"]``): what a client sent, redirects and
    refusals included, as S3 would bill it. moto's control API is not counted."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.answered: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)

        def counted(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            with self._lock:
                self.answered[f"{environ.get('REQUEST_METHOD')} {status.split()[0]}"] += 1
                self.operations[operation_of(environ)] += 1
            return start_response(status, headers, *rest)

        return self.app(environ, counted)


def operation_of(environ: dict[str, Any]) -> str:
    """The S3 operation of a path-style request, by the names S3 bills it under."""
    method = environ.get("REQUEST_METHOD", "")
    parts = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not parts[0]:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if len(parts) == 1 or not parts[1]:  # the bucket itself
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects" if not query else "GET bucket"
        named = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
        return "DeleteObjects" if method == "POST" and "delete" in query else named.get(method, f"{method} bucket")
    if method == "PUT":
        return "CopyObject" if "HTTP_X_AMZ_COPY_SOURCE" in environ else "PutObject"
    named = {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject", "POST": "POST object"}
    return named.get(method, f"{method} object")


class LocalS3:
    """Start with ``with LocalS3() as s3:``; ``s3.endpoint_url`` is then the address to use.

    Conditional writes are atomic, as on S3. Buckets live in the region they were created in and
    directory buckets (``--x-s3``) answer as S3 Express does (see :mod:`s3aads_pandas.local.aws`);
    ``wrong_region`` is the error a request signed for another region gets (``"PermanentRedirect"``
    or ``"AuthorizationHeaderMalformed"``, as AWS's endpoints answer). ``faults=FaultPlan(...)``
    injects S3's ordinary failures into a share of requests (see :mod:`s3aads_pandas.local.faults`);
    ``self.faults`` then counts them. ``self.answered`` counts every answer by method and status,
    ``self.operations`` by S3 operation.
    What a client can make it spend is bounded (see :mod:`s3aads_pandas.local.limits`): bodies of
    ``max_body`` bytes, ``max_connections`` connections at once, idle ones closed after 15 s.
    """

    def __init__(self, port: int = 0, faults: FaultPlan | None = None,
                 wrong_region: str = "PermanentRedirect", max_body: int = 256 * 1024 * 1024,
                 max_connections: int = 128) -> None:
        self.port = port
        self.plan = faults
        self.wrong_region = wrong_region
        self.max_body = max_body
        self.max_connections = max_connections
        self.faults: FaultInjector | None = None
        self.answered: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._control_token = secrets.token_urlsafe(24)

    def start(self) -> LocalS3:
        """Listen on 127.0.0.1 (once: a started endpoint stays as it is)."""
        if self._server is not None:
            return self
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                create_backend_app,
            )
        except ImportError:
            raise MissingExtraError(f"the local S3 endpoint needs moto's server: {install_hint('local')}") from None
        from s3aads_pandas.local.limits import BoundedBodies, make_bounded_server

        # werkzeug logs every request line to stderr, which floods notebooks and test output
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app: Any = AwsAnswers(ConditionalWrites(DomainDispatcherApplication(create_backend_app)), self.wrong_region)
        if self.plan is not None:
            app = self.faults = FaultInjector(app, self.plan)
        counter = AnswerCounter(NoBrowsers(BoundedBodies(app, self.max_body), self._control_token))
        self.answered = counter.answered
        self.operations = counter.operations
        app = counter
        try:  # bound here, as werkzeug would print and exit on a port in use
            listener = socket.create_server(("127.0.0.1", self.port))
        except OSError as error:
            raise OSError(
                error.errno, f"cannot listen on 127.0.0.1:{self.port}: {error.strerror or error}; "
                "choose another port, or 0 for any free one"
            ) from None
        with listener:  # werkzeug serves a duplicate of its descriptor
            self._server = make_bounded_server(listener.getsockname()[1], app, listener.fileno(),
                                               self.max_connections)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-s3", daemon=True)
        self._thread.start()
        logger.info("local S3 endpoint listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(10)
            self._server = None
            logger.info("local S3 endpoint on port %d stopped", self.port)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local S3 endpoint is not running: call start() first")
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> ConnectionSettings:
        """Settings that point at this endpoint, with the keys it accepts.

        ``configure(server.settings())`` makes this process use it, on a machine with no AWS
        credentials too; the keys belong to these settings, so they go to this endpoint only.
        """
        return ConnectionSettings(
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            public_keys=True,
        )

    def environ(self) -> dict[str, str]:
        """Environment variables that point boto3 (and so this project) at this endpoint."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **LOCAL_CREDENTIALS}

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST",
                                         headers={CONTROL_HEADER: self._control_token})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
