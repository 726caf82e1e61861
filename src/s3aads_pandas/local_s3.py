"""A local S3 endpoint for demos and tests: moto's server over HTTP on 127.0.0.1.

Its data lives in memory and is gone when it stops. It needs the ``local`` extra
(``pip install "s3aads-pandas[local]"``).
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from types import TracebackType
from typing import Any

from .faults import ConditionalWrites, FaultInjector, FaultPlan

logger = logging.getLogger(__name__)

#: Credentials the local endpoint accepts (it accepts any); real ones are never needed or sent.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class LocalS3:
    """Start with ``with LocalS3() as s3:``; ``s3.endpoint_url`` is then the address to use.

    Conditional writes are atomic, as on S3. ``faults=FaultPlan(...)`` injects S3's ordinary
    failures into a share of requests (see :mod:`s3aads_pandas.faults`); ``self.faults`` then
    counts them.
    """

    def __init__(self, port: int = 0, faults: FaultPlan | None = None) -> None:
        self.port = port
        self.plan = faults
        self.faults: FaultInjector | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalS3:
        try:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        except ImportError:
            raise ImportError(
                "the local S3 endpoint needs moto's server: pip install \"s3aads-pandas[local]\""
            ) from None
        from werkzeug.serving import make_server

        # werkzeug logs every request line to stderr, which floods notebooks and test output
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app: Any = ConditionalWrites(DomainDispatcherApplication(create_backend_app))
        if self.plan is not None:
            app = self.faults = FaultInjector(app, self.plan)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
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

    def environ(self) -> dict[str, str]:
        """Environment variables that point boto3 (and so this project) at this endpoint."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **LOCAL_CREDENTIALS}

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
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
