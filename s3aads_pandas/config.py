"""Connection settings: the only place that makes boto3 sessions and clients, and obstore stores.

By default everything comes from boto3's own credential chain and environment (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``...). Settings can be given
process-wide with :func:`configure` or per :class:`~s3aads_pandas.Database`. Clients are made on
first use, never at import, and one client is shared by all threads of a database.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import urllib.parse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from s3aads_pandas.errors import AccessDeniedError, InvalidArgumentError
from s3aads_pandas.storage.adapter import DEFAULT_MAX_IN_FLIGHT, ObjectStore
from s3aads_pandas.storage.boto3_transport import CHECKSUM_ALGORITHM, NO_CREDENTIALS, Boto3Transport
from s3aads_pandas.storage.buckets import is_directory_bucket
from s3aads_pandas.storage.obstore_transport import ObstoreTransport, RememberedCredentials
from s3aads_pandas.storage.retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy
from s3aads_pandas.storage.transport import Transport

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

#: Threads that transfer payloads in parallel, one request in flight each; the client's
#: connection pool is sized to match.
DEFAULT_MAX_WORKERS = DEFAULT_MAX_IN_FLIGHT
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
    ``moto.mock_aws`` (only botocore's requests stay in the process there).
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
    connect_timeout: float | None = None
    read_timeout: float | None = None
    deadline: float = DEFAULT_DEADLINE
    max_attempts: int | None = None
    transport: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise InvalidArgumentError(
                f"max_workers must be a positive integer, got {self.max_workers!r}"
            )
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
        if self.client is not None and self.session is not None:
            raise InvalidArgumentError("pass either a boto3 client or a boto3 session, not both")
        if self.transport not in TRANSPORTS:
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

    def open_store(self) -> ObjectStore:
        """An S3 adapter for these settings: its transport, pool size and retry policy."""
        return ObjectStore(self.make_transport(), self.max_workers, self.retry_policy())

    def chosen_transport(self) -> str:
        """The transport these settings use: ``transport``, with ``"auto"`` decided."""
        if self.transport != "auto":
            return self.transport
        return "boto3" if self.client is not None or _moto_mock_active() else "obstore"

    def make_transport(self) -> Transport:
        """The transport for these settings, with a new boto3 client (or the one handed over)."""
        session = None if self.client is not None else self._session()
        client = self.client if self.client is not None else self._new_client(session)
        boto3_transport = Boto3Transport(client)
        if self.chosen_transport() == "boto3":
            return boto3_transport
        return ObstoreTransport(boto3_transport,
                                lambda bucket, region: self._obstore_store(session, client, bucket, region),
                                serves_directory_buckets=_is_aws(str(client.meta.endpoint_url)))

    def _obstore_store(self, session: boto3.session.Session, client: Any, bucket: str, region: str | None) -> Any:
        """obstore's store for one bucket in ``region``: the endpoint boto3 resolved, its credential
        chain (profiles, SSO, roles, instance metadata), these timeouts, no retries of its own, and
        a CRC64NVME checksum on every PUT (S3 checks it, and keeps it)."""
        from obstore.store import S3Store

        try:
            credentials = RememberedCredentials(session)
        except ValueError:  # boto3 found no credentials
            raise AccessDeniedError(NO_CREDENTIALS) from None
        endpoint = str(client.meta.endpoint_url)
        config: S3Config = {"region": region or client.meta.region_name or "us-east-1",
                                  "checksum_algorithm": CHECKSUM_ALGORITHM.lower()}
        if is_directory_bucket(bucket):
            config["s3_express"] = True
        if not _is_aws(endpoint):
            config["endpoint"] = endpoint
        botocore_config = self.botocore_config()
        options: ClientConfig = {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=botocore_config.connect_timeout),
            "read_timeout": timedelta(seconds=botocore_config.read_timeout),
            "timeout": timedelta(seconds=self.deadline),
        }
        return S3Store(bucket, config=config, client_options=options, credential_provider=credentials,
                       retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=self.deadline)})

    def _session(self) -> boto3.session.Session:
        return self.session or boto3.session.Session(
            profile_name=self.profile_name,
            region_name=self.region_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )

    def _new_client(self, session: boto3.session.Session) -> Any:
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            config=self.botocore_config(),
        )


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


def _is_aws(endpoint: str) -> bool:
    """Whether ``endpoint`` is AWS's own S3, rather than an endpoint URL of another store."""
    return urllib.parse.urlsplit(endpoint).netloc.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _moto_mock_active() -> bool:
    """Whether ``moto.mock_aws`` is on: its S3 answers botocore's requests only, in this process."""
    models = sys.modules.get("moto.core.models")
    stubber = getattr(models, "botocore_stubber", None)
    return bool(getattr(stubber, "enabled", False))


def default_settings() -> ConnectionSettings:
    """The process-wide defaults set by :func:`configure`."""
    return _default_settings
