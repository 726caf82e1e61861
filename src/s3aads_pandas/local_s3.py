"""A local S3 endpoint for demos and tests: moto's server over HTTP on 127.0.0.1.

Its data lives in memory and is gone when it stops. It needs the ``local`` extra
(``pip install "s3aads-pandas[local]"``).
"""

from __future__ import annotations

import logging
import urllib.request
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

#: Credentials the local endpoint accepts (it accepts any); real ones are never needed or sent.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class LocalS3:
    """Start with ``with LocalS3() as s3:``; ``s3.endpoint_url`` is then the address to use."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Any = None

    def start(self) -> LocalS3:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise ImportError(
                "the local S3 endpoint needs moto's server: pip install \"s3aads-pandas[local]\""
            ) from None
        # werkzeug logs every request line to stderr, which floods notebooks and test output
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        logger.info("local S3 endpoint listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
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
