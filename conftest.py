"""Notebook kernels inherit this process's environment when they start, so the S3 endpoint the
notebooks use is started here, before collection: a `s3aads serve` process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_server: subprocess.Popen[str] | None = None
#: The modules that take longest (45 to 150 s each on 2 cores), run first: xdist hands each of its
#: workers a module at a time in collection order, and a long module handed out last leaves the
#: other worker idle while it runs.
LONGEST_FIRST = ("test_listing", "test_conditional_writes", "test_pandas_write", "test_magic",
                 "test_explorer_browser", "test_pandas_read", "test_cli", "test_dask")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: the others keep their order


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
