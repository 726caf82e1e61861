"""What one local endpoint spends on its clients, bounded: request bodies, connections, idle time.

moto's server keeps a request's body in memory (twice, while it stores it) and werkzeug gives
each connection a thread of its own for as long as the client keeps it open. So a body larger
than ``max_body`` is refused before it is read (``400 EntityTooLarge``, as S3 refuses a PUT over
5 GB), at most ``max_connections`` connections are served at once (one more is closed at once,
and the client's retry finds room), and a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from s3aads_pandas.local.faults import WSGIApp

logger = logging.getLogger(__name__)

MAX_BODY = 256 * 1024 * 1024
MAX_CONNECTIONS = 128
IDLE_TIMEOUT = 15.0


class BoundedBodies:
    """Refuses a request whose body is larger than ``max_body`` bytes, before reading it."""

    def __init__(self, app: WSGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sizes = [environ.get(name, "") for name in ("CONTENT_LENGTH", "HTTP_X_AMZ_DECODED_CONTENT_LENGTH")]
        size = max((int(value) for value in sizes if str(value).isdigit()), default=0)
        if size <= self.max_body:
            return self.app(environ, start_response)
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>EntityTooLarge</Code><Message>the '
                f"local S3 endpoint takes bodies of at most {self.max_body} bytes, this one has {size}: "
                "start it with a larger max_body</Message></Error>").encode()
        start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                                           ("Connection", "close")])
        return [body]


def make_bounded_server(port: int, app: WSGIApp, fd: int, max_connections: int = MAX_CONNECTIONS,
                        idle_timeout: float = IDLE_TIMEOUT) -> ThreadedWSGIServer:
    """werkzeug's threaded server on 127.0.0.1, with at most ``max_connections`` connection
    threads and ``idle_timeout`` seconds for a connection to send its next request."""

    class Handler(WSGIRequestHandler):
        timeout = idle_timeout  # socketserver sets it on the connection: a read waits no longer

    class Server(ThreadedWSGIServer):
        def __init__(self) -> None:
            super().__init__("127.0.0.1", port, app, Handler, fd=fd)
            self._slots = threading.BoundedSemaphore(max_connections)

        def process_request(self, request: Any, client_address: Any) -> None:
            if not self._slots.acquire(blocking=False):
                logger.warning("local S3 endpoint: %d connections open, one more closed", max_connections)
                with contextlib.suppress(OSError):  # the client may be gone already
                    request.shutdown(socket.SHUT_RDWR)
                self.shutdown_request(request)
                return
            try:
                super().process_request(request, client_address)
            except BaseException:
                self._slots.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self._slots.release()

    return Server()
