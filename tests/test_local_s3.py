"""The local S3 endpoint helper used by demos and tests."""

from __future__ import annotations

import urllib.error
import urllib.request

import boto3
import pytest

from s3aads_pandas import Database, Table
from s3aads_pandas.local import LocalS3


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


def http(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_web_pages_cannot_drive_the_local_endpoint(local_s3: LocalS3) -> None:
    local_s3.reset()
    db = Database("guarded", endpoint_url=local_s3.endpoint_url)
    db.create()
    table = Table("t", db, ["id"])
    table.insert(b"kept", id=1)
    page = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    url = local_s3.endpoint_url
    # a page's cross-origin POST to moto's control API, and the same without the token
    assert http("POST", f"{url}/moto-api/reset", page)[0] == 403
    assert http("POST", f"{url}/moto-api/reset")[0] == 403
    # an unsigned "simple" PUT and a signed-looking one from a page
    assert http("PUT", f"{url}/guarded/t/2", {"Content-Type": "text/plain"}, b"planted")[0] == 403
    assert http("PUT", f"{url}/guarded/t/3", {**page, "Authorization": "AWS4-HMAC-SHA256 x"}, b"planted")[0] == 403
    # a preflight gets no grant
    status, headers, _ = http("OPTIONS", f"{url}/guarded/t/1", {**page, "Access-Control-Request-Method": "PUT"})
    assert status == 403 and not any(name.lower().startswith("access-control-") for name in headers)
    assert table.query() == [{"id": "1"}] and table.select(id=1) == b"kept"
    # the project's own calls still work, and answers carry no CORS grant
    direct = boto3.client("s3", endpoint_url=url)
    answer = direct.get_object(Bucket="guarded", Key="t/1")
    assert not any(name.lower().startswith("access-control-") for name in answer["ResponseMetadata"]["HTTPHeaders"])
    presigned = direct.generate_presigned_url("get_object", Params={"Bucket": "guarded", "Key": "t/1"})
    assert http("GET", presigned)[2] == b"kept"
    local_s3.reset()
    assert Database.list_databases(endpoint_url=url) == []
