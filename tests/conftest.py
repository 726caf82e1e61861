"""Fixtures: every S3 test runs three times: in-process (moto.mock_aws, where only boto3 reaches
moto), and over HTTP (LocalS3) on each transport, boto3 and obstore."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from s3aads_pandas import ConnectionSettings, Database, S3RequestError, configure
from s3aads_pandas.config import default_settings
from s3aads_pandas.local import LOCAL_CREDENTIALS, FaultPlan, LocalS3
from s3aads_pandas.storage import memory
from s3aads_pandas.storage.connect import make_transport
from s3aads_pandas.storage.s3_transport import forget_regions


def pytest_configure(config: pytest.Config) -> None:
    """Fake credentials and no AWS config files: no test may reach, or be steered by, real AWS."""
    os.environ.update(LOCAL_CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


#: This process's main module. IPython's shell (the magic's tests) replaces it with one that
#: processes started with "spawn" (multiprocessing's, Dask's nanny) cannot start from.
MAIN_MODULE = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def main_module_kept() -> Iterator[None]:
    """Put the real main module back after every test, whichever shell replaced it."""
    yield
    sys.modules["__main__"] = MAIN_MODULE


@pytest.fixture(autouse=True)
def no_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebooks' endpoint is in the environment (for their kernels); tests choose their own."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(autouse=True)
def regions_learned_afresh() -> None:
    """Every test's databases learn their buckets' regions, as a new process's do."""
    forget_regions()


@pytest.fixture
def empty_memory() -> Iterator[None]:
    """No memory:// database before or after the test, and the default settings after it."""
    memory.forget_all()
    yield
    memory.forget_all()
    configure(ConnectionSettings())


@pytest.fixture(scope="session")
def local_s3() -> Iterator[LocalS3]:
    """The HTTP endpoint, with a fault injector that injects nothing unless a test asks."""
    with LocalS3(faults=FaultPlan(rate=0.0)) as server:
        yield server


#: How a test of the S3 wire runs: over HTTP (LocalS3) on each transport, so that each meets S3's
#: answers, retries and faults as they come over the network (the in-process run, moto.mock_aws
#: where only boto3 reaches moto, is :data:`BEHAVIOUR_RUNS`'s). Modules that set
#: ``DIRECTORY_BUCKETS = True`` also run over HTTP against a directory bucket (S3 Express One
#: Zone, as the local endpoint answers it) on the default transport, which sends a directory
#: bucket's requests behind an endpoint URL through boto3 (see ``storage.s3_transport``):
#: one run covers both.
S3_RUNS = ("boto3", "obstore")
DIRECTORY_RUNS = ("obstore-directory",)
#: The databases of this machine: ``memory://`` and ``file://`` (a temporary folder). Tests of
#: what only S3 has (its wire, its buckets, boto3) are marked ``s3_only``; tests that write keys
#: a folder cannot hold (``t/1`` and ``t/1/2020``) are marked ``any_keys``.
LOCAL_RUNS = ("memory", "file")
#: Over HTTP the tests' bucket is in this region, while the client is configured for us-east-1
#: (the local endpoint answers as AWS does), so every test that uses ``db`` crosses regions.
BUCKET_REGION = "eu-west-1"


#: Modules that set ``WIRE = False`` test behaviour, not the S3 wire: their tests run in process
#: (moto) and on this machine's databases only; those marked ``s3_only`` run in process and over HTTP.
#: A module that sets ``WIRE`` to some of :data:`S3_RUNS` runs over HTTP on those transports only.
BEHAVIOUR_RUNS = ("moto",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "s3" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        directory = getattr(metafunc.module, "DIRECTORY_BUCKETS", False) and marked("key_order") is None
        s3_only = marked("s3_only") is not None
        local = () if s3_only else LOCAL_RUNS
        if marked("any_keys"):
            local = tuple(run for run in local if run != "file")
        wire = getattr(metafunc.module, "WIRE", True)
        behaviour = not wire
        s3_runs = (BEHAVIOUR_RUNS if behaviour else ()) + (S3_RUNS if s3_only or not behaviour else ())
        if isinstance(wire, tuple):
            s3_runs = wire
        metafunc.parametrize("s3", s3_runs + (DIRECTORY_RUNS if directory else ()) + local, indirect=True)


def is_local(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs on a database of this machine (``memory://`` or ``file://``)."""
    return getattr(request.node, "callspec", None) is not None and request.node.callspec.params.get("s3") in LOCAL_RUNS


@pytest.fixture
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Point the process defaults at a fresh, empty store; yields the endpoint URL (None in
    process, the root on this machine).

    ``moto`` is moto in-process (the boto3 transport); ``boto3`` and ``obstore`` are the local
    endpoint over HTTP, through that transport; ``memory`` and ``file`` are ``memory://`` and a
    new temporary folder.
    """
    if request.param == "moto":
        with mock_aws():
            configure(ConnectionSettings(transport="boto3"))  # said, not left to "auto" to notice the mock
            yield None
    elif request.param in LOCAL_RUNS:
        memory.forget_all()
        root = "memory://" if request.param == "memory" else f"file://{tmp_path_factory.mktemp('databases')}"
        configure(ConnectionSettings(root=root))
        yield default_settings().root
        memory.forget_all()
    else:
        server = request.getfixturevalue("local_s3")
        server.reset()
        transport = request.param.removesuffix("-directory")
        configure(ConnectionSettings(endpoint_url=server.endpoint_url, region_name="us-east-1", transport=transport))
        yield server.endpoint_url
    configure(ConnectionSettings())


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Any:
    """``seed(bucket, keys)`` stores one-byte objects straight into the store's backend.

    Moto's S3 lives in this process (the HTTP server is a thread), so large test tables are
    set up in milliseconds instead of a request per key; reads still go over the wire. (Not
    empty: through obstore an empty object lists alike with a folder marker, and its page is
    listed again through boto3.) On this machine's databases the keys are written through the
    transport, which sends nothing over a network either.
    """
    if is_local(request):
        def write(bucket: str, keys: list[str], body: bytes = b"-") -> None:
            transport = make_transport(default_settings())
            for key in keys:
                transport.put(bucket, key, body, {}, {})

        return write

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    def put(bucket: str, keys: list[str], body: bytes = b"-") -> None:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, body)

    return put


@pytest.fixture
def db(s3: str | None, request: pytest.FixtureRequest) -> Database:
    """The test database: over HTTP a bucket in :data:`BUCKET_REGION`, used through settings that
    name another region; in directory runs a directory bucket."""
    if s3 is None or is_local(request):
        database = Database("s3aads-test")
        database.create()
        return database
    if request.node.callspec.params["s3"].endswith("-directory"):  # moto makes those in us-east-1 only
        database = Database("s3aads-test--use1-az4--x-s3")
        database.create()
        return database
    Database("s3aads-test", region_name=BUCKET_REGION).create()
    return Database("s3aads-test")


class RequestCounter:
    """Counts S3 requests by operation name, retries included, and keeps the parameters of each
    (the store's request hooks, called before every attempt on either transport)."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, operation: str, params: Mapping[str, Any]) -> None:
        with self._lock:
            self.operations[operation] += 1
            self.calls.append((operation, dict(params)))

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
        database.store.hooks.append(counter)
        return counter

    return attach


class _FailedHttp:
    status_code = 500


#: Attempts a request gets against a persistent fault: what the tests check is that the failure
#: is reported, not how long it is retried (10 attempts back off for about 5 s a key).
PERSISTENT_FAULT_ATTEMPTS = 3


def retried_briefly(inject: Any) -> Any:
    """``inject`` after giving the database's stores :data:`PERSISTENT_FAULT_ATTEMPTS` attempts."""

    def fail(database: Database, operation: str, keys: set[str]) -> None:
        for store in [database.store, *database._wide_stores.values()]:
            store.retrier.policy = dataclasses.replace(store.retrier.policy, attempts=PERSISTENT_FAULT_ATTEMPTS)
        inject(database, operation, keys)

    return fail


@pytest.fixture
def fail_keys(s3: str | None, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``fail_keys(database, "GetObject", {key, ...})``: those requests fail with a 500 InternalError,
    on every attempt (a persistent fault, as for a bad key or object).

    Over HTTP the local endpoint answers the 500 to every request of those keys; in moto a
    botocore before-call hook answers it to the named operation; on this machine's databases a
    request hook raises it.
    """
    injectors = _fault_injectors(s3, request)
    yield retried_briefly(next(injectors))
    next(injectors, None)  # the injector's clean-up


def _fault_injectors(s3: str | None, request: pytest.FixtureRequest) -> Iterator[Any]:
    if is_local(request):
        def raise_on(database: Database, operation: str, keys: set[str]) -> None:
            def fail(name: str, params: Mapping[str, Any]) -> None:
                if name == operation and params.get("Key") in keys:
                    raise S3RequestError(f"injected failure of {params['Key']}: InternalError",
                                         code="InternalError", retryable=True)

            for store in [database.store, *database._wide_stores.values()]:
                store.hooks.append(fail)

        yield raise_on
        return
    if s3 is not None:
        plan = request.getfixturevalue("local_s3").faults.plan

        def fail_on_the_wire(database: Database, operation: str, keys: set[str]) -> None:
            plan.failing = frozenset(f"{database.name}/{key}" for key in keys)

        yield fail_on_the_wire
        plan.failing = frozenset()
        return

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
            store.boto3_client.meta.events.register(f"before-parameter-build.s3.{operation}", mark)
            store.boto3_client.meta.events.register(f"before-call.s3.{operation}", fail)

    yield attach


@pytest.fixture
def original(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """s3aads 2.x, whose clients (made at its import) point at the local endpoint."""
    local_s3.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_s3.endpoint_url)
    configure(ConnectionSettings(endpoint_url=local_s3.endpoint_url))
    module = sys.modules.get("s3aads") or importlib.import_module("s3aads")
    assert module.database.s3_client.meta.endpoint_url == local_s3.endpoint_url
    yield module
    configure(ConnectionSettings())
