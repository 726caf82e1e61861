"""Real S3's answers, on the local endpoint that gives them: bucket regions, directory buckets,
checksums, and the folder markers other tools write."""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from s3aads_pandas import (
    ConnectionSettings,
    Database,
    S3RequestError,
    SkippedKeysWarning,
    Table,
    WrongRegionError,
    configure,
)
from s3aads_pandas.local import FaultPlan, LocalS3
from s3aads_pandas.local.aws import AwsAnswers
from s3aads_pandas.storage.boto3_transport import Boto3Transport
from s3aads_pandas.storage.integrity import CHECKSUMS
from s3aads_pandas.storage.s3_transport import forget_regions

DIRECTORY = "tests--use1-az4--x-s3"
COLUMNS = ["id", "year", "month"]


def signed_for(region: str) -> dict[str, str]:
    """Headers that the local endpoint reads as a request signed for ``region`` (it checks no signature)."""
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=local/20260101/{region}/s3/aws4_request, "
                             "SignedHeaders=host, Signature=0"}


def http(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def client(server: LocalS3, region: str = "us-east-1") -> Any:
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name=region,
                        aws_access_key_id="local", aws_secret_access_key="local")


def started(server: LocalS3) -> LocalS3:
    """``server`` started, and empty: moto's data is one per process, shared by every endpoint."""
    server.start().reset()
    return server


@pytest.fixture
def server() -> Iterator[LocalS3]:
    """An endpoint of this test's own, so that what it answered is this test's alone."""
    with started(LocalS3()) as local:
        yield local


# -- the local endpoint answers as AWS does -----------------------------------------------------

@pytest.mark.parametrize("answer", ["PermanentRedirect", "AuthorizationHeaderMalformed"])
def test_a_request_signed_for_another_region_is_answered_as_aws_answers_it(answer: str) -> None:
    with started(LocalS3(wrong_region=answer)) as server:
        Database("eub", endpoint_url=server.endpoint_url, region_name="eu-west-1").create()
        status, headers, body = http("GET", f"{server.endpoint_url}/eub/k", signed_for("us-east-1"))
        assert status == (301 if answer == "PermanentRedirect" else 400)
        assert headers["x-amz-bucket-region"] == "eu-west-1"
        assert f"<Code>{answer}</Code>".encode() in body
        assert answer == "PermanentRedirect" or b"<Region>eu-west-1</Region>" in body
        head = http("HEAD", f"{server.endpoint_url}/eub", signed_for("us-east-1"))
        assert head[0] in {301, 400} and head[1]["x-amz-bucket-region"] == "eu-west-1" and head[2] == b""
        assert http("HEAD", f"{server.endpoint_url}/eub", signed_for("eu-west-1"))[0] == 200


def test_a_directory_bucket_answers_as_s3_express_does(server: LocalS3) -> None:
    s3 = client(server)
    Database(DIRECTORY, endpoint_url=server.endpoint_url).create()
    keys = [f"t/{i}" for i in range(25)]
    for key in keys:
        s3.put_object(Bucket=DIRECTORY, Key=key, Body=key.encode())
    url = f"{server.endpoint_url}/{DIRECTORY}"
    # without a session from CreateSession, nothing is listed or read
    assert http("GET", f"{url}?list-type=2", signed_for("us-east-1"))[0] == 403
    assert http("GET", f"{url}/t/1", signed_for("us-east-1"))[0] == 403
    pages, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket=DIRECTORY, Prefix="t/", MaxKeys=10,
                                  **({"ContinuationToken": token} if token else {}))
        pages.append([obj["Key"] for obj in page["Contents"]])
        token = page.get("NextContinuationToken")
        if not token:
            break
    listed = [key for page in pages for key in page]
    assert [len(page) for page in pages] == [10, 10, 5] and sorted(listed) == sorted(keys)
    assert listed != sorted(listed)  # in no key order
    for refused in ({"StartAfter": "t/1"}, {"Prefix": "t"}, {"Delimiter": "-"}):
        with pytest.raises(ClientError, match="InvalidArgument"):
            s3.list_objects_v2(Bucket=DIRECTORY, **refused)
    etag = s3.get_object(Bucket=DIRECTORY, Key="t/1")["ETag"].strip('"')
    assert re.fullmatch("[0-9a-f]{32}", etag) and etag != hashlib.md5(b"t/1").hexdigest()
    # the ETag shown is the one conditional writes take
    s3.put_object(Bucket=DIRECTORY, Key="t/1", Body=b"new", IfMatch=f'"{etag}"')
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=DIRECTORY, Key="t/1", Body=b"newer", IfMatch=f'"{etag}"')


# -- regions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["boto3", "obstore"])
@pytest.mark.parametrize("answer", ["PermanentRedirect", "AuthorizationHeaderMalformed"])
def test_a_bucket_in_another_region_costs_one_request_more(transport: str, answer: str, count_requests) -> None:
    with started(LocalS3(wrong_region=answer)) as server:
        Database("eub", endpoint_url=server.endpoint_url, region_name="eu-west-1").create()
        forget_regions()  # as in a process that did not make the bucket
        server.answered.clear()
        db = Database("eub", endpoint_url=server.endpoint_url, region_name="us-east-1", transport=transport)
        counter = count_requests(db)
        table = Table("t", db, ["id"])
        table.insert(b"one", id=1)
        assert table.select(id=1) == b"one" and table.query() == [{"id": "1"}]
        sent = sum(n for operation, n in counter.operations.items() if operation != "HeadBucket")
        assert sum(server.answered.values()) == sent + 1  # one request learns the region, once
        wrong = sum(n for answer_, n in server.answered.items() if answer_.split()[1] in {"301", "400"})
        assert wrong == 1


def test_a_process_learns_a_buckets_region_once() -> None:
    with started(LocalS3(wrong_region="PermanentRedirect")) as server:
        client(server, "eu-west-1").create_bucket(Bucket="eub", CreateBucketConfiguration={
            "LocationConstraint": "eu-west-1"})  # made by another tool
        for made in range(3):  # as pd.read_s3aads("eub/t") makes a Database each call
            server.answered.clear()
            table = Table("t", Database("eub", endpoint_url=server.endpoint_url, region_name="us-east-1"), ["id"])
            table.insert(b"one", id=made)
            assert table.select(id=made) == b"one"
            # the first learns the region from HeadBucket's redirect; the others send no HeadBucket
            heads = {answer: n for answer, n in server.answered.items() if answer.startswith("HEAD")}
            assert heads == ({"HEAD 301": 1} if made == 0 else {})
            assert not [answer for answer in server.answered if answer != "HEAD 301" and " 301" in answer]


def test_a_bucket_that_moves_region_is_learned_again_once(server: LocalS3, count_requests) -> None:
    Database("moving", endpoint_url=server.endpoint_url, region_name="eu-west-1").create()
    db = Database("moving", endpoint_url=server.endpoint_url, region_name="us-east-1", transport="obstore")
    table = Table("t", db, ["id"])
    table.insert(b"before", id=1)
    other = client(server, "eu-west-1")
    other.delete_objects(Bucket="moving", Delete={"Objects": [{"Key": o["Key"]} for o in
                                                             other.list_objects_v2(Bucket="moving")["Contents"]]})
    other.delete_bucket(Bucket="moving")
    Database("moving", endpoint_url=server.endpoint_url, region_name="us-west-2").create()
    client(server, "us-west-2").put_object(Bucket="moving", Key="t/1", Body=b"after")
    counter = count_requests(db)
    assert table.select(id=1) == b"after"
    assert counter.operations == {"GetObject": 2, "HeadBucket": 1}  # refused, the region learned, resent


def test_a_region_that_cannot_be_learned_is_a_clear_error_sent_once(server: LocalS3, count_requests,
                                                                    monkeypatch) -> None:
    Database("eub", endpoint_url=server.endpoint_url, region_name="eu-west-1").create()
    forget_regions()  # as in a process that did not make the bucket
    db = Database("eub", endpoint_url=server.endpoint_url, region_name="us-east-1", transport="obstore")
    monkeypatch.setattr(Boto3Transport, "bucket_region", lambda self, bucket: None)  # a store that does not say
    counter = count_requests(db)
    with pytest.raises(WrongRegionError, match=r"signed for us-east-1.*region_name=") as raised:
        db.store.get("eub", "k")
    assert raised.value.configured_region == "us-east-1" and not raised.value.retryable
    assert counter.operations["GetObject"] == 1  # a redirect is never retried as "no answer"


def test_boto3s_wrong_region_answer_names_both_regions() -> None:
    transport = Boto3Transport(boto3.client("s3", region_name="us-east-1", aws_access_key_id="x",
                                            aws_secret_access_key="x"))
    answer = {"Error": {"Code": "PermanentRedirect", "Message": "redirect"},
              "ResponseMetadata": {"HTTPStatusCode": 301, "HTTPHeaders": {"x-amz-bucket-region": "ap-south-1"}}}
    with pytest.raises(WrongRegionError, match=r"is in region ap-south-1.*signed for us-east-1") as raised:
        transport.guarded(lambda: (_ for _ in ()).throw(ClientError(answer, "GetObject")), "far")
    assert raised.value.bucket_region == "ap-south-1"


# -- directory buckets ----------------------------------------------------------------------------

@pytest.fixture
def twins(server: LocalS3, seed, count_requests) -> Iterator[tuple[Table, Table, Any]]:
    """The same 1,050 rows (two listing pages) in a general-purpose bucket and in a directory bucket."""
    configure(ConnectionSettings(endpoint_url=server.endpoint_url))
    try:
        tables = []
        for name in ("general-bucket", DIRECTORY):
            Database(name).create()
            table = Table("t", name, COLUMNS)
            table.insert(b"row 0", id=0, year=2000, month="01")  # records the columns
            seed(name, [table.to_key(id=i % 70, year=2000 + i // 70, month="01") for i in range(1, 1050)], b"row")
            tables.append(table)
        yield tables[0], tables[1], count_requests(tables[1].database)
    finally:
        configure(ConnectionSettings())


def test_a_directory_bucket_reads_the_rows_a_general_bucket_reads(twins: tuple[Table, Table, Any]) -> None:
    general, directory, counter = twins
    for read in (lambda t: t.keys, lambda t: t.query(year=2010), lambda t: t.query(id=[3, 40]),
                 lambda t: t.count(month="01"), lambda t: t.distinct(["year"], id=5), lambda t: t.distinct("id"),
                 lambda t: t.list_rows_between("10", "12"), lambda t: t.database.tables,
                 lambda t: pd.read_s3aads(t, id=[1, 2], progress=False),
                 lambda t: pd.read_s3aads(t, data=False, year=2001), lambda t: t.query_by_key("1")):
        assert _comparable(read(directory)) == _comparable(read(general))
    listings = counter.params("ListObjectsV2")
    assert listings and not [p for p in listings if "StartAfter" in p or p["Prefix"][-1:] not in {"", "/"}]
    counter.reset()
    first = pd.read_s3aads(directory, nrows=10, progress=False)  # a listing in no order still stops early
    assert len(first) == 10 and counter.operations["ListObjectsV2"] == 1
    assert first["data"].map(bytes.decode).str.startswith("row").all()


def _comparable(result: Any) -> Any:
    if isinstance(result, pd.DataFrame):
        return result.to_dict("list")
    if isinstance(result, list) and result and hasattr(result[0], "segments"):
        return [row.key for row in result]
    return result


def test_a_corrupted_body_with_an_opaque_etag_is_caught_by_its_checksum() -> None:
    with started(LocalS3(faults=FaultPlan(rate=0.0, kinds=("corrupt",)))) as server:
        db = Database(DIRECTORY, endpoint_url=server.endpoint_url, max_attempts=2)
        db.create()
        table = Table("t", db, ["id"])
        table.insert(b"payload of some length", id=1)
        server.faults.plan.rate = 1.0  # every body arrives with a byte flipped
        with pytest.raises(S3RequestError, match="corrupted"):
            table.select(id=1)
        assert server.faults.injected["corrupt"] == 2
        server.faults.plan.rate = 0.0
        assert table.select(id=1) == b"payload of some length"


# -- checksums ------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_every_put_asks_s3_for_a_crc64nvme_checksum(server: LocalS3, transport: str, monkeypatch) -> None:
    sent: list[str] = []
    real = AwsAnswers.__call__

    def spy(self: AwsAnswers, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].count("/") > 1:
            sent.append(environ.get("HTTP_X_AMZ_CHECKSUM_CRC64NVME", ""))
        return real(self, environ, start_response)

    monkeypatch.setattr(AwsAnswers, "__call__", spy)
    db = Database("sums", endpoint_url=server.endpoint_url, transport=transport)
    db.create()
    Table("t", db, ["id"]).insert(b"checked", id=1)
    expected = base64.b64encode(CHECKSUMS["ChecksumCRC64NVME"](b"checked")).decode()
    assert expected in sent  # the row (the column record is the other PUT)


# -- folder markers ---------------------------------------------------------------------------------

@pytest.mark.s3_only
def test_folder_markers_are_never_rows(s3: str | None, db: Database) -> None:
    table = Table("t", db, COLUMNS)
    table.insert(b"real", id=1, year=2020, month="01")
    table.insert(b"", id=2, year=2020, month="01")  # an empty payload is a row
    db.store.put(db.name, "t/1/2020/", b"")  # what the S3 console's "Create folder" writes
    db.store.boto3_client.put_object(Bucket=db.name, Key="t/3/2021/", Body=b"")
    with pytest.warns(SkippedKeysWarning, match="skipped 2 object"):
        rows = table.query()
    assert rows == [{"id": "1", "year": "2020", "month": "01"}, {"id": "2", "year": "2020", "month": "01"}]
    with pytest.warns(SkippedKeysWarning):
        assert pd.read_s3aads(table, progress=False)["data"].tolist() == [b"real", b""]


# -- encrypted objects ------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_encrypted_objects_read_without_a_false_corruption(server: LocalS3, transport: str, count_requests) -> None:
    db = Database("sealed", endpoint_url=server.endpoint_url, transport=transport)
    db.create()
    table = Table("t", db, ["id"])
    for i in range(3):
        table.insert(f"secret {i}".encode(), id=i, metadata={"ServerSideEncryption": "aws:kms"})
    etag = db.store.head("sealed", "t/1").etag.strip('"')
    assert etag != hashlib.md5(b"secret 1").hexdigest()  # as S3 shows an SSE-KMS object's ETag
    counter = count_requests(db)
    assert [table.select(id=i) for i in range(3)] == [b"secret 0", b"secret 1", b"secret 2"]
    # obstore does not show the encryption headers: its first body that differs from the ETag is
    # fetched again through boto3, whose answer says why; the bucket's later bodies are not
    expected = 3 + (1 if transport == "obstore" else 0)
    assert counter.operations["GetObject"] == expected
