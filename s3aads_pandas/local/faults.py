"""Fault injection for the local S3 endpoint: S3's ordinary failures, seeded and reproducible.

A WSGI layer in front of moto's server that, for a fraction of requests, adds latency, answers
503 SlowDown or 500 InternalError, drops the connection before or after the request reaches S3,
corrupts an object's body, or answers a GET of a whole object with half of it (206 and a
Content-Range, as a buggy proxy or store may). Used by the reliability tests and ``benchmarks/faults.py``.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

KINDS = ("latency", "slowdown", "internal", "drop-before", "drop-after", "corrupt", "partial")
_ERRORS = {
    "slowdown": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclasses.dataclass
class FaultPlan:
    """Which faults to inject: ``rate`` of requests get one of ``kinds``; keys in ``failing``
    (``"bucket/key"``) fail with 500 on every request; ``script`` gives the faults of the first
    requests in order (None for none), before the random ones."""

    rate: float = 0.1
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    latency: float = 0.2
    failing: frozenset[str] = frozenset()
    script: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        unknown = (set(self.kinds) | {k for k in self.script if k}) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; choose from {KINDS}")


class FaultInjector:
    """The WSGI layer; ``injected`` counts the faults by kind."""

    def __init__(self, app: WSGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(plan.seed)
        self._script = list(plan.script)
        self._lock = threading.Lock()

    def _choose(self, environ: dict[str, Any]) -> str | None:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return None
        if path.encode("latin-1").decode("utf-8", "replace").lstrip("/") in self.plan.failing:  # PEP 3333
            return "internal"
        with self._lock:
            if self._script:
                kind = self._script.pop(0)
            elif self._rng.random() < self.plan.rate:
                kind = self._rng.choice(self.plan.kinds)
            else:
                return None
        if kind is None:
            return None
        if kind in {"corrupt", "partial"} and not _is_object_get(environ):
            return None  # only object bodies are corrupted: a listing has no checksum to catch it
        return kind

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = self._choose(environ)
        if kind is None:
            return self.app(environ, start_response)
        with self._lock:
            self.injected[kind] += 1
        if kind == "latency":
            time.sleep(self.plan.latency)
            return self.app(environ, start_response)
        if kind in _ERRORS:
            status, code, message = _ERRORS[kind]
            body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><RequestId>fault</RequestId></Error>").encode()
            start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        if kind == "drop-before":
            return _drop(environ, start_response)
        status_headers: list[Any] = []
        body = b"".join(self.app(environ, lambda status, headers, *_: status_headers.extend([status, headers])))
        if kind == "drop-after":  # the request took effect; its answer is lost
            return _drop(environ, start_response)
        if not (status_headers and status_headers[0].startswith("200") and len(body) > 1):
            start_response(*status_headers)
            return [body]
        middle = len(body) // 2
        if kind == "partial":
            headers = [(name, value) for name, value in status_headers[1] if name.lower() != "content-length"]
            start_response("206 Partial Content", [*headers, ("Content-Range", f"bytes 0-{middle - 1}/{len(body)}"),
                                                   ("Content-Length", str(middle))])
            return [body[:middle]]
        start_response(*status_headers)
        return [body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]]


def _is_object_get(environ: dict[str, Any]) -> bool:
    parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
    return environ.get("REQUEST_METHOD") == "GET" and len(parts) >= 2 and not environ.get("QUERY_STRING")


def _drop(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        connection.shutdown(socket.SHUT_RDWR)
    start_response("500 Internal Server Error", [("Content-Length", "0")])
    return [b""]


class ConditionalWrites:
    """Makes conditional writes atomic, as S3 does: moto checks If-None-Match / If-Match and
    then writes as two steps, so racing conditional writers are serialised here."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        if not conditional or environ.get("REQUEST_METHOD") not in {"PUT", "POST", "DELETE"}:
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))
