"""The local S3 endpoint helper used by demos and tests."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import boto3
import pytest

from s3aads_pandas import Database, S3RequestError, Table
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


def http(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
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


def test_a_page_that_reaches_the_endpoint_through_a_dns_name_is_refused(local_s3: LocalS3) -> None:
    local_s3.reset()
    db = Database("guarded", endpoint_url=local_s3.endpoint_url)
    db.create()
    Table("t", db, ["id"]).insert(b"secret", id=1)
    presigned = boto3.client("s3", endpoint_url=local_s3.endpoint_url).generate_presigned_url(
        "get_object", Params={"Bucket": "guarded", "Key": "t/1"})
    # DNS rebinding: a page's own name, resolved to 127.0.0.1, with no Origin on a same-origin GET
    status, _, body = http("GET", presigned, {"Host": "localhost.rebind.evil.example"})
    assert status == 403 and b"secret" not in body
    for host in ("localhost", "127.0.0.1", f"localhost:{local_s3.port}"):
        assert http("GET", presigned, {"Host": host})[2] == b"secret"


def test_what_a_client_can_make_the_endpoint_spend_is_bounded() -> None:
    import socket
    import threading

    with LocalS3(max_body=1000, max_connections=8) as server:
        server.reset()
        db = Database("bounded", endpoint_url=server.endpoint_url, max_attempts=1)
        db.create()
        table = Table("t", db, ["id"])
        table.insert(b"x" * 1000, id=1)
        with pytest.raises(S3RequestError, match="EntityTooLarge"):
            table.insert(b"x" * 1001, id=2)
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
        try:
            time.sleep(0.5)  # let the server accept what it will
            assert threading.active_count() - before <= 8  # a thread per connection, at most 8
        finally:
            for connection in idle:
                connection.close()
        served = Table("t", Database("bounded", endpoint_url=server.endpoint_url), ["id"])  # retries a stale connection
        assert served.select(id=1) == b"x" * 1000  # the endpoint still serves once they are gone


def test_a_key_that_xml_cannot_carry_does_not_fail_its_delete_batch(local_s3: LocalS3) -> None:
    local_s3.reset()
    for transport in ("boto3", "obstore"):
        db = Database(f"deleting-{transport}", endpoint_url=local_s3.endpoint_url, transport=transport)
        db.create()
        table = Table("t", db, ["id"])
        for id_ in ("a", "x\x01y", "b"):
            table.insert(b"row", id=id_)
        assert db.drop_table("t") == 3
        assert table.count() == 0
