"""Connection settings: boto3's own environment by default, explicit settings where given."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from s3aads_pandas import (
    ConnectionSettings,
    Database,
    InvalidArgumentError,
    Table,
    configure,
)
from s3aads_pandas.local import LocalS3
from s3aads_pandas.storage.connect import _shared_loader
from s3aads_pandas.storage.retry import RetryPolicy


def test_importing_and_constructing_makes_no_client() -> None:
    code = textwrap.dedent(
        """
        import boto3.session, botocore.session
        def refuse(*args, **kwargs):
            raise AssertionError("a client was made")
        boto3.session.Session.client = refuse
        botocore.session.Session.create_client = refuse
        import s3aads_pandas
        from s3aads_pandas import Database, Table
        table = Table("t", Database("some-bucket"), ["id"])
        repr(table); table.to_key(id=1)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_aws_endpoint_url_from_the_environment(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> None:
    local_s3.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_s3.endpoint_url)
    configure(ConnectionSettings())
    Database("from-env").create()
    direct = boto3.client("s3", endpoint_url=local_s3.endpoint_url)
    assert [b["Name"] for b in direct.list_buckets()["Buckets"]] == ["from-env"]


def test_aws_profile_from_the_config_file(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    local_s3.reset()
    config_file = tmp_path / "config"
    config_file.write_text(
        "[profile local]\n"
        f"endpoint_url = {local_s3.endpoint_url}\n"
        "region = eu-west-1\n"
        "aws_access_key_id = profile-key\n"
        "aws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_PROFILE", "local")
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # the environment would win over the profile
    db = Database("from-profile")
    assert db.store.boto3_client.meta.region_name == "eu-west-1"
    assert db.store.boto3_client._request_signer._credentials.access_key == "profile-key"
    db.create()
    assert "from-profile" in Database.list_databases()


def test_explicit_settings_per_database_override_the_defaults(local_s3: LocalS3) -> None:
    local_s3.reset()
    configure(endpoint_url="http://127.0.0.1:9")  # nothing listens there
    try:
        db = Database("explicit", endpoint_url=local_s3.endpoint_url)
        db.create()
        assert db.store.endpoint == local_s3.endpoint_url
        assert Database.list_databases(endpoint_url=local_s3.endpoint_url) == ["explicit"]
    finally:
        configure(ConnectionSettings())


@mock_aws
def test_ready_session_and_client_are_used() -> None:
    session = boto3.session.Session(region_name="eu-west-1")
    db = Database("with-session", session=session)
    assert db.store.boto3_client.meta.region_name == "eu-west-1"
    db.create()
    location = db.store.boto3_client.get_bucket_location(Bucket="with-session")["LocationConstraint"]
    assert location == "eu-west-1"
    client = boto3.client("s3", region_name="us-east-1")
    other = Database("with-client", client=client)
    assert other.store.boto3_client is client
    other.create()
    Table("t", other, ["id"]).insert(b"x", id=1)
    assert client.get_object(Bucket="with-client", Key="t/1")["Body"].read() == b"x"


def test_databases_share_the_service_models_and_keep_their_own_settings(monkeypatch, tmp_path) -> None:
    from botocore.loaders import JSONFileLoader

    Database("first", endpoint_url="http://127.0.0.1:9", region_name="eu-west-1").store.boto3_client
    files: list[str] = []
    real_load = JSONFileLoader.load_file
    monkeypatch.setattr(JSONFileLoader, "load_file", lambda self, path: files.append(path) or real_load(self, path))
    second = Database("second", endpoint_url="http://127.0.0.1:9", region_name="ap-south-1",
                      aws_access_key_id="second-key", aws_secret_access_key="s")
    assert second.store.boto3_client.meta.region_name == "ap-south-1"
    assert files == []  # S3's model, its endpoints and its rules were parsed for the first Database
    paths = _shared_loader(None).search_paths
    assert len(paths) == len(set(paths))  # every boto3 Session adds its data folder: kept once
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))  # another data path: another loader, as botocore's
    Database("third", endpoint_url="http://127.0.0.1:9").store.boto3_client
    assert files and str(tmp_path) in _shared_loader(str(tmp_path)).search_paths


def test_one_retry_layer_timeouts_and_a_pool_as_large_as_the_workers() -> None:
    settings = ConnectionSettings(max_workers=48)
    config = settings.botocore_config()
    assert config.retries["total_max_attempts"] == 1  # botocore never retries: the project's layer does
    assert (config.connect_timeout, config.read_timeout) == (5, 20)
    assert config.max_pool_connections == 48
    assert settings.retry_policy() == RetryPolicy(attempts=10, deadline=90)
    given = ConnectionSettings(config=Config(connect_timeout=7, read_timeout=3, retries={"max_attempts": 2}))
    merged = given.botocore_config()
    assert (merged.connect_timeout, merged.read_timeout, merged.retries["total_max_attempts"]) == (7, 3, 1)
    assert given.retry_policy().attempts == 3  # botocore's max_attempts counts retries
    explicit = given.replace(read_timeout=1, deadline=4, max_attempts=2)
    assert explicit.botocore_config().read_timeout == 1
    assert explicit.retry_policy() == RetryPolicy(attempts=2, deadline=4)


@mock_aws
def test_client_uses_the_configured_botocore_config() -> None:
    db = Database("configured", config=Config(read_timeout=11), max_workers=24)
    client_config = db.store.boto3_client.meta.config
    assert client_config.read_timeout == 11
    assert client_config.max_pool_connections == 24
    assert client_config.retries["total_max_attempts"] == 1


def test_configure_changes_and_resets_process_defaults() -> None:
    try:
        settings = configure(endpoint_url="http://127.0.0.1:1234", region_name="eu-west-2")
        assert Database("any-name").settings == settings
        assert configure(max_workers=4).endpoint_url == "http://127.0.0.1:1234"
    finally:
        assert configure(ConnectionSettings()) == ConnectionSettings()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown connection setting.*endpoint.*valid settings"):
        Database("any-name", endpoint="http://x")
    with pytest.raises(InvalidArgumentError, match="max_workers"):
        ConnectionSettings(max_workers=0)
    with pytest.raises(InvalidArgumentError, match="deadline must be a positive number"):
        ConnectionSettings(deadline=0)
    with pytest.raises(InvalidArgumentError, match="read_timeout"):
        ConnectionSettings(read_timeout="fast")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="endpoint_url must be an http"):
        Database("any-name", endpoint_url="notaurl")
    with pytest.raises(InvalidArgumentError, match="not both"):
        ConnectionSettings(client=object(), session=object())  # type: ignore[arg-type]


def test_a_missing_extra_names_the_pip_command_in_one_line() -> None:
    script = textwrap.dedent("""
        import sys
        for name in ("ipywidgets", "itables", "dask", "sqlglot"):
            sys.modules[name] = None  # as if not installed
        import s3aads_pandas
        from IPython.core.interactiveshell import InteractiveShell
        attempts = [lambda: s3aads_pandas.explore("any-bucket"), lambda: __import__("s3aads_pandas.dask"),
                    lambda: __import__("s3aads_pandas.notebook.sql")]
        for attempt in attempts:
            try:
                attempt()
            except s3aads_pandas.MissingExtraError as error:
                print(error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == [
        'the explorer needs ipywidgets, which is not installed: install the [notebook] extra '
        '(in a clone of s3aads-pandas: python -m pip install ".[notebook]")',
        's3aads_pandas.dask needs dask, which is not installed: install the [dask] extra '
        '(in a clone of s3aads-pandas: python -m pip install ".[dask]")',
        's3aads SQL needs sqlglot, which is not installed: install the [notebook] extra '
        '(in a clone of s3aads-pandas: python -m pip install ".[notebook]")',
    ], done.stderr
