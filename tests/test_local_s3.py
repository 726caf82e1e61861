"""The local S3 endpoint helper used by demos and tests."""

from __future__ import annotations

import boto3
import pytest

from s3aads_pandas import Database, Table
from s3aads_pandas.local_s3 import LocalS3


def test_local_endpoint_serves_s3_over_http_and_resets() -> None:
    with LocalS3() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        assert server.environ()["AWS_ENDPOINT_URL"] == server.endpoint_url
        db = Database("local-demo", endpoint_url=server.endpoint_url)
        db.create()
        Table("t", db, ["id"]).insert(b"x", id=1)
        direct = boto3.client("s3", endpoint_url=server.endpoint_url)
        assert direct.get_object(Bucket="local-demo", Key="t/1")["Body"].read() == b"x"
        server.reset()
        assert Database.list_databases(endpoint_url=server.endpoint_url) == []
    with pytest.raises(RuntimeError, match="not running"):
        server.endpoint_url
