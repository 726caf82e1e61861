"""How a database's transport is made: settings only describe, this module connects.

A database lives in S3 (a bucket, ``s3://bucket``), in this process's memory (``memory://name``)
or in a folder of this machine (``file:///path/to/db``). Each backend is a transport; adding one
is its module plus a branch in :func:`make_transport`. A transport handed over in the settings
(``transport=`` an object of the :class:`~s3aads_pandas.storage.transport.Transport` protocol) is
used as it is.
"""

from __future__ import annotations

import functools
import os
import sys
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

from s3aads_pandas.errors import CredentialsNotFoundError, InvalidArgumentError
from s3aads_pandas.storage import folder, memory
from s3aads_pandas.storage.adapter import ObjectStore
from s3aads_pandas.storage.boto3_transport import CHECKSUM_ALGORITHM, NO_CREDENTIALS, Boto3Transport
from s3aads_pandas.storage.buckets import is_directory_bucket
from s3aads_pandas.storage.cache import PayloadCache, open_cache
from s3aads_pandas.storage.retry import RetryPolicy
from s3aads_pandas.storage.s3_transport import RememberedCredentials, S3Transport
from s3aads_pandas.storage.transport import Boto3Client, Transport

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config
    from obstore.store import ObjectStore as Store

S3_SCHEME = "s3://"


class ConnectionSettings(Protocol):
    """What connecting reads of :class:`s3aads_pandas.ConnectionSettings` (which describes; this
    module makes)."""

    @property
    def transport(self) -> str | Transport: ...
    @property
    def root(self) -> str | None: ...
    @property
    def client(self) -> Boto3Client | None: ...
    @property
    def session(self) -> boto3.session.Session | None: ...
    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def region_name(self) -> str | None: ...
    @property
    def profile_name(self) -> str | None: ...
    @property
    def aws_access_key_id(self) -> str | None: ...
    @property
    def aws_secret_access_key(self) -> str | None: ...
    @property
    def aws_session_token(self) -> str | None: ...
    @property
    def max_workers(self) -> int: ...
    @property
    def max_in_flight(self) -> int: ...
    @property
    def cache(self) -> bool | str | os.PathLike[str]: ...
    @property
    def cache_max_bytes(self) -> int: ...
    @property
    def deadline(self) -> float: ...
    def botocore_config(self) -> Config: ...
    def retry_policy(self) -> RetryPolicy: ...


class DatabaseUrl(NamedTuple):
    """Where a database URL says a database is: its root (None for S3) and its name there."""

    root: str | None
    name: str


def split_database_url(name: str) -> DatabaseUrl | None:
    """The root and name of ``s3://bucket``, ``memory://name`` or ``file:///path/to/db``; None
    for a plain name (a bucket, or a database of the configured root)."""
    if "://" not in name:
        return None
    trimmed = name.rstrip("/")
    if trimmed.startswith(S3_SCHEME):
        return DatabaseUrl(None, trimmed[len(S3_SCHEME):])
    if trimmed.startswith(memory.URL):
        return DatabaseUrl(memory.URL, trimmed[len(memory.URL):])
    if trimmed.startswith(folder.SCHEME):
        parent, _, database = trimmed.rpartition("/")
        return DatabaseUrl(check_root(parent + "/"), database)
    raise InvalidArgumentError(
        f"a database is named by a bucket, s3://bucket, memory://name or file:///path/to/folder, got {name!r}")


def check_root(root: str) -> str:
    """``root`` as settings keep it: ``memory://``, or ``file:///absolute/path/``."""
    if root == memory.URL:
        return root
    if root.startswith(folder.SCHEME):
        path = folder.folder_path(root)
        if not path.is_absolute():
            raise InvalidArgumentError(f"a folder URL names an absolute path, as file:///data/databases; got {root!r}")
        return f"{folder.SCHEME}{path.as_posix().rstrip('/')}/"
    raise InvalidArgumentError(
        f"root must be 'memory://' or a folder URL such as 'file:///data/databases', got {root!r}")


def open_store(settings: ConnectionSettings) -> ObjectStore:
    """The adapter for these settings: its transport, pool size, retry policy and payload cache."""
    transport = make_transport(settings)
    return ObjectStore(transport, settings.max_workers, settings.retry_policy(), cache_for(settings, transport),
                       settings.max_in_flight)


def cache_for(settings: ConnectionSettings, transport: Transport) -> PayloadCache | None:
    """The payload cache of S3 databases, if the settings ask for one. A database on this
    machine is read where it is: a cache would only copy it."""
    if settings.cache is False or transport.boto3_client is None:
        return None
    if settings.cache is True:
        import platformdirs

        return open_cache(Path(platformdirs.user_cache_dir("s3aads-pandas")) / "payloads", settings.cache_max_bytes)
    return open_cache(Path(settings.cache), settings.cache_max_bytes)


def make_transport(settings: ConnectionSettings) -> Transport:
    """The transport the settings describe (for S3 with a new boto3 client, or the one handed over)."""
    if not isinstance(settings.transport, str):
        return settings.transport
    if settings.root == memory.URL:
        return memory.MemoryTransport()
    if settings.root is not None and settings.root.startswith(folder.SCHEME):
        return folder.FolderTransport(folder.folder_path(settings.root))
    return _s3_transport(settings)


def transport_name(settings: ConnectionSettings) -> str:
    """What sends the object requests: ``"obstore"`` or ``"boto3"`` for S3 (``"auto"`` decided),
    the root for a database on this machine, the class name of a transport handed over."""
    if not isinstance(settings.transport, str):
        return type(settings.transport).__name__
    if settings.root is not None:
        return settings.root
    if settings.transport != "auto":
        return settings.transport
    return "boto3" if settings.client is not None or _moto_mock_active() else "obstore"


def _s3_transport(settings: ConnectionSettings) -> Transport:
    if settings.client is not None:  # used as it is
        session, client = None, settings.client
    else:
        session = _session(settings)
        client = _new_client(settings, session)
    boto3_transport = Boto3Transport(client)
    if transport_name(settings) == "boto3":
        return boto3_transport
    return S3Transport(boto3_transport,
                       lambda bucket, region: _obstore_store(settings, session, client, bucket, region),
                       serves_directory_buckets=_is_aws(str(client.meta.endpoint_url)))


def _obstore_store(settings: ConnectionSettings, session: boto3.session.Session, client: Boto3Client, bucket: str,
                   region: str | None) -> Store:
    """obstore's store for one bucket in ``region``: the endpoint boto3 resolved, its credential
    chain (profiles, SSO, roles, instance metadata), these timeouts, no retries of its own, and
    a CRC64NVME checksum on every PUT (S3 checks it, and keeps it)."""
    from obstore.store import S3Store

    try:
        credentials = RememberedCredentials(session)
    except ValueError:  # boto3 found no credentials
        raise CredentialsNotFoundError(NO_CREDENTIALS) from None
    endpoint = str(client.meta.endpoint_url)
    config: S3Config = {"region": region or client.meta.region_name or "us-east-1",
                        "checksum_algorithm": CHECKSUM_ALGORITHM.lower()}
    if is_directory_bucket(bucket):
        config["s3_express"] = True
    if not _is_aws(endpoint):
        config["endpoint"] = endpoint
    botocore_config = settings.botocore_config()
    options: ClientConfig = {
        "allow_http": endpoint.startswith("http://"),
        "connect_timeout": timedelta(seconds=botocore_config.connect_timeout),
        "read_timeout": timedelta(seconds=botocore_config.read_timeout),
        "timeout": timedelta(seconds=settings.deadline),
    }
    return S3Store(bucket, config=config, client_options=options, credential_provider=credentials,
                   retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=settings.deadline)})


def _session(settings: ConnectionSettings) -> boto3.session.Session:
    return settings.session or new_session(
        profile_name=settings.profile_name,
        region_name=settings.region_name,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
    )


def new_session(**options: str | None) -> boto3.session.Session:
    """A boto3 Session of its own (credentials, profile, region), loading AWS's service models
    through this process's one loader: a session's own would parse S3's model again, about
    160 ms of CPU for every Database made (``pd.read_s3aads("bucket/table")`` makes one)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader(core.get_config_variable("data_path")))
    return boto3.session.Session(botocore_session=core, **options)


class _PathsOnce(list[str]):
    """A loader's search paths, each kept once: every boto3 Session appends its own data folder."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(data_path: str | None) -> Loader:
    """botocore's loader for ``data_path`` (``AWS_DATA_PATH``), as botocore makes it, made once.
    What it loads it keeps, and no session changes what it keeps."""
    paths = [] if data_path is None else [os.path.expanduser(os.path.expandvars(path))
                                          for path in data_path.split(os.pathsep)]
    return Loader(extra_search_paths=_PathsOnce(paths))


def _new_client(settings: ConnectionSettings, session: boto3.session.Session) -> Boto3Client:
    client: Boto3Client = session.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region_name,
                                         config=settings.botocore_config())
    return client


def _is_aws(endpoint: str) -> bool:
    """Whether ``endpoint`` is AWS's own S3, rather than an endpoint URL of another store."""
    return urllib.parse.urlsplit(endpoint).netloc.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _moto_mock_active() -> bool:
    """Whether ``moto.mock_aws`` is on: its S3 answers botocore's requests only, in this process."""
    models = sys.modules.get("moto.core.models")
    stubber = getattr(models, "botocore_stubber", None)
    return bool(getattr(stubber, "enabled", False))
