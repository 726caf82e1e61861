"""Connection settings: boto3's own environment by default, explicit settings where given."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from s3aads_pandas import ConnectionSettings, Database, InvalidArgumentError, Table, configure
from s3aads_pandas.local_s3 import LocalS3


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
    assert db.store.client.meta.region_name == "eu-west-1"
    assert db.store.client._request_signer._credentials.access_key == "profile-key"
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
    assert db.store.client.meta.region_name == "eu-west-1"
    db.create()
    location = db.store.client.get_bucket_location(Bucket="with-session")["LocationConstraint"]
    assert location == "eu-west-1"
    client = boto3.client("s3", region_name="us-east-1")
    other = Database("with-client", client=client)
    assert other.store.client is client
    other.create()
    Table("t", other, ["id"]).insert(b"x", id=1)
    assert client.get_object(Bucket="with-client", Key="t/1")["Body"].read() == b"x"


def test_standard_retries_and_a_pool_as_large_as_the_workers() -> None:
    config = ConnectionSettings(max_workers=48).botocore_config()
    assert config.retries == {"mode": "standard"}
    assert config.max_pool_connections == 48
    merged = ConnectionSettings(config=Config(connect_timeout=7, retries={"mode": "adaptive"})).botocore_config()
    assert merged.connect_timeout == 7 and merged.retries == {"mode": "adaptive"}


@mock_aws
def test_client_uses_the_configured_botocore_config() -> None:
    db = Database("configured", config=Config(read_timeout=11), max_workers=24)
    client_config = db.store.client.meta.config
    assert client_config.read_timeout == 11
    assert client_config.max_pool_connections == 24
    assert client_config.retries["mode"] == "standard"


def test_configure_changes_and_resets_process_defaults() -> None:
    try:
        settings = configure(endpoint_url="http://127.0.0.1:1234", region_name="eu-west-2")
        assert Database("any-name").settings == settings
        assert configure(max_workers=4).endpoint_url == "http://127.0.0.1:1234"
    finally:
        assert configure(ConnectionSettings()) == ConnectionSettings()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown connection setting.*endpoint.*valid settings"):
        Database("any-name", endpoint="http://x")
    with pytest.raises(InvalidArgumentError, match="max_workers"):
        ConnectionSettings(max_workers=0)
    with pytest.raises(InvalidArgumentError, match="not both"):
        ConnectionSettings(client=object(), session=object())  # type: ignore[arg-type]
