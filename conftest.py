"""Notebook kernels inherit this process's environment when they start, so the S3 endpoint the
notebooks use is started here, before collection: a `s3aads serve` process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_server: subprocess.Popen[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    if not config.getoption("--nbval", default=False):
        return
    _server = subprocess.Popen([sys.executable, "-m", "s3aads_pandas", "serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    line = _server.stdout.readline() if _server.stdout else ""
    if not line.startswith("export "):
        raise RuntimeError("the notebooks' local S3 endpoint did not start")
    os.environ.update(pair.split("=", 1) for pair in line.split()[1:])
    os.environ.pop("S3AADS_DEMO_BUCKET", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.terminate()
        _server.wait(10)
