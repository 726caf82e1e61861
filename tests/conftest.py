"""Fixtures: every S3 test runs twice, in-process (moto.mock_aws) and over HTTP (LocalS3)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from s3aads_pandas import ConnectionSettings, Database, configure
from s3aads_pandas.local import LOCAL_CREDENTIALS, LocalS3


def pytest_configure(config: pytest.Config) -> None:
    """Fake credentials and no AWS config files: no test may reach, or be steered by, real AWS."""
    os.environ.update(LOCAL_CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


@pytest.fixture(autouse=True)
def no_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebooks' endpoint is in the environment (for their kernels); tests choose their own."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="session")
def local_s3() -> Iterator[LocalS3]:
    with LocalS3() as server:
        yield server


@pytest.fixture(params=["memory", "http"])
def s3(request: pytest.FixtureRequest) -> Iterator[str]:
    """Point the process defaults at a fresh, empty S3; yields the endpoint URL (None in memory)."""
    if request.param == "memory":
        with mock_aws():
            configure(ConnectionSettings())
            yield None
    else:
        server = request.getfixturevalue("local_s3")
        server.reset()
        configure(ConnectionSettings(endpoint_url=server.endpoint_url))
        yield server.endpoint_url
    configure(ConnectionSettings())


@pytest.fixture
def seed() -> Any:
    """``seed(bucket, keys)`` stores empty objects straight into moto's backend.

    Both fixtures' S3 live in this process (the HTTP server is a thread), so large test tables
    are set up in milliseconds instead of a request per key; reads still go over the wire.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    def put(bucket: str, keys: list[str], body: bytes = b"") -> None:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, body)

    return put


@pytest.fixture
def db(s3: str | None) -> Database:
    database = Database("s3aads-test")
    database.create()
    return database


class RequestCounter:
    """Counts S3 requests by operation name, retries included (botocore's request-created event),
    and keeps the parameters of each API call (before-parameter-build)."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def on_request(self, operation_name: str | None = None, **kwargs: Any) -> None:
        self.operations[operation_name or "?"] += 1

    def on_call(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]

    @property
    def total(self) -> int:
        return sum(self.operations.values())

    def reset(self) -> None:
        self.operations.clear()
        self.calls.clear()


@pytest.fixture
def count_requests() -> Any:
    """``counter = count_requests(database)`` starts counting that database's requests."""

    def attach(database: Database) -> RequestCounter:
        counter = RequestCounter()
        events = database.store.client.meta.events
        events.register("request-created.s3", counter.on_request)
        events.register("before-parameter-build.s3", counter.on_call)
        return counter

    return attach


class _FailedHttp:
    status_code = 500


@pytest.fixture
def fail_keys() -> Any:
    """``fail_keys(database, "GetObject", {key, ...})``: those requests fail with a 500 InternalError.

    The failure is answered by a botocore before-call hook, so it works in memory and over HTTP
    alike and happens on every attempt (a persistent fault, as for a bad key or object).
    """

    def attach(database: Database, operation: str, keys: set[str]) -> None:
        def mark(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
            context["fail_injected"] = params.get("Key") in keys

        def fail(context: dict[str, Any], **kwargs: Any) -> Any:
            if context.get("fail_injected"):
                return _FailedHttp(), {
                    "Error": {"Code": "InternalError", "Message": "injected failure"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                }
            return None

        for store in [database.store, *database._wide_stores.values()]:
            store.client.meta.events.register(f"before-parameter-build.s3.{operation}", mark)
            store.client.meta.events.register(f"before-call.s3.{operation}", fail)

    return attach
