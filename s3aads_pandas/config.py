"""Connection settings: how to reach the databases (:mod:`s3aads_pandas.storage.connect` connects).

By default everything comes from boto3's own credential chain and environment (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``...). Settings can be given
process-wide with :func:`configure` or per :class:`~s3aads_pandas.Database`. Clients are made on
first use, never at import, and one client is shared by all threads of a database.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import urllib.parse
from typing import Any

import boto3
from botocore.config import Config

from s3aads_pandas.errors import InvalidArgumentError
from s3aads_pandas.storage.adapter import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_THREADS
from s3aads_pandas.storage.cache import DEFAULT_MAX_BYTES
from s3aads_pandas.storage.connect import S3_SCHEME, check_root
from s3aads_pandas.storage.retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy
from s3aads_pandas.storage.transport import Transport

#: Threads that send requests in parallel (listings, and transfers on boto3), one request in
#: flight each; the client's connection pool is sized to match.
DEFAULT_MAX_WORKERS = DEFAULT_MAX_THREADS
#: Seconds to open a connection, and to wait for each read of an answer (botocore's: 60 and 60).
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 20.0
#: Seconds one request may take in all, retries and the reading of its body included.
DEFAULT_DEADLINE = 90.0

_DEFAULT_CONFIG = Config(connect_timeout=DEFAULT_CONNECT_TIMEOUT, read_timeout=DEFAULT_READ_TIMEOUT)
#: botocore makes one attempt: this project's retry layer is the only one (see retry.py), so that
#: attempts do not multiply and a conditional write knows which of its attempts lost an answer.
_ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
#: "auto" is obstore, except for a boto3 client handed over and under moto's in-process mock.
TRANSPORTS = ("auto", "obstore", "boto3")


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """How to reach S3. ``None`` everywhere means: do what boto3 does by default.

    ``session`` or ``client`` hand over a ready boto3 object; ``config`` is merged over the
    defaults (the timeouts below, a connection pool as large as ``max_workers``). Credentials
    given here never appear in the repr. ``public_keys`` says the keys given are no secret (a
    local endpoint's, which it prints for anyone), so that they may travel in a Dask task graph.

    Every request has a ``connect_timeout`` and a ``read_timeout`` (seconds, for each attempt;
    ``None`` takes ``config``'s, else 5 and 20) and a ``deadline`` for all its attempts and the
    reading of its body (90 s): no new attempt starts after it, and a body still arriving then
    is abandoned. A request gets ``max_attempts`` attempts (10; ``retries`` in ``config`` sets it
    too), with jittered backoff, from this project's retry layer only.

    ``transport`` chooses what sends object requests: ``"obstore"`` (Rust, a fraction of the
    CPU), ``"boto3"`` (for S3-compatible stores that obstore does not serve), or ``"auto"``:
    obstore, but boto3 for a ``client`` handed over (it is used as is) and inside
    ``moto.mock_aws`` (only botocore's requests stay in the process there). A ready transport
    (an object of the :class:`~s3aads_pandas.storage.transport.Transport` protocol) is used as is.

    ``root`` says where the databases named without a URL live: ``None`` (S3), ``"memory://"``
    (this process's memory) or ``"file:///path"`` (the folders of ``/path``). A database URL
    (``Database("file:///data/shop")``) sets it for that database.

    ``cache`` keeps the payloads read from S3 on this machine, each under the ETag S3 gave it:
    ``True`` (the user cache folder), a folder's path, or ``False`` (the default). A read that
    lists the table then fetches only what changed since; ``cache_max_bytes`` bounds the folder
    (1 GiB), the least recently used payloads going first.

    Bulk reads and writes on obstore's stores run on the package's event loop: they start with
    64 requests in flight and grow toward ``max_in_flight`` (512) while S3 keeps its pace,
    halving on SlowDown. ``max_workers`` (16) is the number of threads that send the other
    requests at once (listings, and every transfer on boto3), and a transfer's own
    ``max_workers=`` caps its requests in flight on either.
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    profile_name: str | None = None
    aws_access_key_id: str | None = dataclasses.field(default=None, repr=False)
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    aws_session_token: str | None = dataclasses.field(default=None, repr=False)
    public_keys: bool = False
    session: boto3.session.Session | None = dataclasses.field(default=None, repr=False)
    client: Any = dataclasses.field(default=None, repr=False)
    config: Config | None = dataclasses.field(default=None, repr=False)
    max_workers: int = DEFAULT_MAX_WORKERS
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    connect_timeout: float | None = None
    read_timeout: float | None = None
    deadline: float = DEFAULT_DEADLINE
    max_attempts: int | None = None
    transport: str | Transport = "auto"
    root: str | None = None
    cache: bool | str | os.PathLike[str] = False
    cache_max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        for name in ("max_workers", "max_in_flight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        if self.max_attempts is not None and (not isinstance(self.max_attempts, int) or self.max_attempts < 1):
            raise InvalidArgumentError(
                f"max_attempts must be a positive integer, got {self.max_attempts!r}"
            )
        if self.endpoint_url is not None:
            parsed = urllib.parse.urlsplit(str(self.endpoint_url))
            if parsed.scheme not in {"http", "https"} or not parsed.netloc:
                raise InvalidArgumentError(
                    f"endpoint_url must be an http:// or https:// URL such as http://127.0.0.1:9000, "
                    f"got {self.endpoint_url!r}"
                )
        for name in ("connect_timeout", "read_timeout", "deadline"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(self.cache, (bool, str, os.PathLike)) or self.cache == "":
            raise InvalidArgumentError(
                f"cache must be True (the user cache folder), a folder's path or False, got {self.cache!r}")
        bound = self.cache_max_bytes
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
            raise InvalidArgumentError(f"cache_max_bytes must be a positive number of bytes, got {bound!r}")
        if self.client is not None and self.session is not None:
            raise InvalidArgumentError("pass either a boto3 client or a boto3 session, not both")
        if self.root is not None:
            object.__setattr__(self, "root", None if self.root == S3_SCHEME else check_root(str(self.root)))
        if not isinstance(self.transport, str):
            if not callable(getattr(self.transport, "list_page", None)):
                raise InvalidArgumentError(
                    f"transport must be one of {', '.join(map(repr, TRANSPORTS))} or an object of the "
                    f"Transport protocol (s3aads_pandas.storage.transport), got {self.transport!r}")
        elif self.transport not in TRANSPORTS:
            raise InvalidArgumentError(
                f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, got {self.transport!r}"
            )
        if self.transport == "obstore" and self.client is not None:
            raise InvalidArgumentError(
                "a boto3 client handed over is used as it is, by the boto3 transport: pass "
                "transport='boto3', or a boto3 session instead of the client"
            )

    def replace(self, **changes: Any) -> ConnectionSettings:
        """A copy with ``changes`` applied; unknown names are refused with the valid ones."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise InvalidArgumentError(
                f"unknown connection setting(s) {', '.join(unknown)}; "
                f"valid settings are: {', '.join(sorted(valid))}"
            )
        return dataclasses.replace(self, **changes)

    def botocore_config(self) -> Config:
        """Timeouts and a pool sized to the workers, under what the caller configured; one attempt."""
        merged = _DEFAULT_CONFIG.merge(Config(max_pool_connections=self.max_workers))
        if self.config is not None:
            merged = merged.merge(self.config)
        timeouts = {name: getattr(self, name) for name in ("connect_timeout", "read_timeout")}
        explicit = {name: value for name, value in timeouts.items() if value is not None}
        if explicit:
            merged = merged.merge(Config(**explicit))
        return merged.merge(_ONE_ATTEMPT)

    def retry_policy(self) -> RetryPolicy:
        """The attempts and the deadline of every request made with these settings.

        Without ``max_attempts``, a ``retries`` setting in ``config`` (botocore's
        ``total_max_attempts``, or ``max_attempts`` retries) gives the number of attempts.
        """
        attempts = self.max_attempts
        retries = (self.config.retries if self.config is not None else None) or {}
        if attempts is None and "total_max_attempts" in retries:
            attempts = int(retries["total_max_attempts"])
        elif attempts is None and "max_attempts" in retries:
            attempts = int(retries["max_attempts"]) + 1
        return RetryPolicy(attempts=max(1, attempts or DEFAULT_MAX_ATTEMPTS), deadline=float(self.deadline))

_default_settings = ConnectionSettings()
_default_lock = threading.Lock()


def configure(settings: ConnectionSettings | None = None, **changes: Any) -> ConnectionSettings:
    """Set the process-wide connection defaults and return them.

    ``configure(endpoint_url="http://127.0.0.1:9000")`` changes one setting and keeps the rest;
    ``configure(ConnectionSettings())`` goes back to boto3's own defaults. Databases made
    afterwards use the new defaults; existing ones keep the client they have.
    """
    global _default_settings
    with _default_lock:
        base = settings if settings is not None else _default_settings
        _default_settings = base.replace(**changes) if changes else base
        return _default_settings


def default_settings() -> ConnectionSettings:
    """The process-wide defaults set by :func:`configure`."""
    return _default_settings
