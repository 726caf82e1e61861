"""moto's S3 server with a fixed latency added to every request, for the benchmark.

Run as ``python benchmarks/latency_server.py --port 5555 --latency 0.1``. Each request sleeps in
its server thread before moto handles it, so concurrent requests overlap as they would against a
distant region, and the client pays the round trip it would pay there. It is served by waitress,
which keeps connections alive as S3 does (werkzeug's server closes every connection, which
would add a TCP handshake per request that real clients do not pay).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import waitress
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)

#: GET this path for the number of S3 requests served so far (from any process).
COUNT_PATH = "/_requests"


class Tally:
    """A count that server threads add to."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def with_latency(app: Callable[..., Iterable[bytes]], seconds: float) -> Callable[..., Iterable[bytes]]:
    served = Tally()

    def delayed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNT_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(served.value).encode()]
        served.add()
        time.sleep(seconds)
        return app(environ, start_response)

    return delayed


def seed(bucket: str, keys_file: str, body_size: int = 1) -> None:
    """Store keys straight into moto's backend: 100,000 PUTs over the latency would take minutes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    for key in Path(keys_file).read_text().split("\n"):
        if key:
            backend.put_object(bucket, key, b"x" * body_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--threads", type=int, default=128, help="requests served at once")
    parser.add_argument("--seed", nargs=2, metavar=("BUCKET", "KEYS_FILE"),
                        help="create BUCKET holding the keys listed in KEYS_FILE (one a line)")
    parser.add_argument("--body-size", type=int, default=1, help="bytes of each seeded object")
    args = parser.parse_args()
    if args.seed:
        seed(*args.seed, body_size=args.body_size)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    app = with_latency(DomainDispatcherApplication(create_backend_app), args.latency)
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, connection_limit=1000,
                   channel_timeout=120, _quiet=True)


if __name__ == "__main__":
    main()
