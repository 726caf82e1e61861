"""Hostile input: arbitrary names and values are either refused clearly or stored exactly."""

from __future__ import annotations

import base64
import logging
import sys

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from s3aads_pandas import (
    ColumnError,
    Database,
    InvalidNameError,
    InvalidValueError,
    S3aadsError,
    Table,
)
from s3aads_pandas.local import LocalS3
from s3aads_pandas.local.aws import AwsAnswers
from s3aads_pandas.storage.redaction import redact
from s3aads_pandas.tables.keys import (
    MAX_KEY_BYTES,
    KeyCodec,
    validate_columns,
    validate_database_name,
    validate_table_name,
)


@given(st.text())
def test_column_names_are_printable_or_refused(name: str) -> None:
    try:
        assert validate_columns([name]) == (name,)
    except InvalidNameError as error:
        assert repr(name) in str(error)
    else:
        assert name.strip() and name.isprintable() and name not in {"data", "metadata"}


@given(st.text())
def test_table_names_have_no_slash_or_are_refused(name: str) -> None:
    try:
        validate_table_name(name)
    except InvalidNameError:
        assert name in {"", ".", ".."} or "/" in name
    else:
        assert name and "/" not in name


@given(st.text(max_size=70))
def test_database_names_follow_the_bucket_rules_or_are_refused(name: str) -> None:
    try:
        validate_database_name(name)
    except InvalidNameError as error:
        assert "bucket naming rules" in str(error)
    else:
        assert 3 <= len(name) <= 63 and name == name.lower() and name.isascii()


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(st.text(), st.integers(), st.floats(), st.none())))
def test_any_row_values_give_a_valid_key_or_a_clear_error(values: dict) -> None:
    codec = KeyCodec("t", ["a", "b", "c"])
    try:
        key = codec.to_key(values)
    except (ColumnError, InvalidValueError) as error:
        assert isinstance(error, S3aadsError)
    else:
        assert len(key.encode()) <= MAX_KEY_BYTES
        assert codec.split(key) is not None


@mock_aws
def test_payloads_and_values_round_trip_exactly() -> None:
    db = Database("hostile", transport="boto3")  # one client for every example
    db.create()
    table = Table("t", db, ["v"])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=4096), st.text(min_size=1, max_size=30))
    def round_trips(data: bytes, value: str) -> None:
        table.insert(data, v=value)
        assert table.select(v=value) == data
        assert table.query(v=value) == [{"v": value}]

    round_trips()


def test_control_characters_are_stored_in_process() -> None:
    # S3 accepts them; moto's HTTP server cannot serve a key with a newline (README says so).
    with mock_aws():
        db = Database("control", transport="boto3")
        db.create()
        table = Table("t", db, ["v"])
        table.insert(b"x", v="line\nbreak\ttab\x01")
        assert table.query() == [{"v": "line\nbreak\ttab\x01"}]


SECRET_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENvalue0123456789"
SSE_C_KEY = "0123456789abcdef0123456789abcdef"


def test_no_secret_in_logs_reprs_or_errors(local_s3: LocalS3, caplog: pytest.LogCaptureFixture) -> None:
    local_s3.reset()
    caplog.set_level(logging.DEBUG)
    db = Database("secrets", endpoint_url=local_s3.endpoint_url, aws_access_key_id=SECRET_KEY_ID,
                  aws_secret_access_key=SECRET, aws_session_token=TOKEN)
    db.create()
    table = Table("t", db, ["id"])
    table.insert(b"x", id=1)
    table.select(id=1)
    with pytest.raises(S3aadsError) as info:
        Table("t", Database("missing-bucket", db.settings), ["id"]).select(id=1)
    texts = [caplog.text, repr(db), repr(db.settings), repr(table), str(info.value)]
    assert "Authorization" in caplog.text or "Making request" in caplog.text  # botocore did log
    for text in texts:
        for secret in (SECRET_KEY_ID, SECRET, TOKEN):
            assert secret not in text


def test_sse_c_key_is_masked_and_sse_parameters_pass_through(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        db = Database("sse-test", transport="boto3")
        db.create()
        table = Table("t", db, ["id"])
        table.insert(b"x", metadata={"ServerSideEncryption": "AES256"}, id=1)
        client = boto3.client("s3", region_name="us-east-1")
        assert client.head_object(Bucket="sse-test", Key="t/1")["ServerSideEncryption"] == "AES256"
        table.insert(b"y", metadata={"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY}, id=2)
    encoded = base64.b64encode(SSE_C_KEY.encode()).decode()  # botocore sends it base64-encoded
    assert "SSECustomerKey" in caplog.text or "customer-key" in caplog.text
    assert SSE_C_KEY not in caplog.text and encoded not in caplog.text


def test_secrets_are_masked_in_tracebacks_and_in_hex_and_base64(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        Database("masked", aws_access_key_id="AKIAMASKEDEXAMPLE12", aws_secret_access_key=SECRET,
                 aws_session_token=TOKEN, transport="boto3").store  # the client is made: its credentials are known
    request = f"PUT\n/masked/t/1\n\nx-amz-security-token:{TOKEN}\n".encode()
    body = f"<CanonicalRequestBytes>{request.hex(' ')}</CanonicalRequestBytes>"
    logging.getLogger("botocore.parsers").debug("Response body:\n%s", body)
    logging.getLogger("botocore.endpoint").debug("packed %s and %s", request.hex(), request.hex().upper())
    logging.getLogger("s3aads_pandas").debug("encoded %s", base64.b64encode(b"ab" + request).decode())
    try:
        raise RuntimeError(f"signing failed with token {TOKEN}")
    except RuntimeError:
        logging.getLogger("s3aads_pandas.storage.adapter").exception("request failed")
        logging.getLogger("botocore.hooks").debug("with stack", stack_info=True)
    text = caplog.text
    assert "CanonicalRequestBytes" in text and "request failed" in text and "Traceback" in text
    token_bytes = TOKEN.encode()
    for form in (TOKEN, token_bytes.hex(), token_bytes.hex(" "), token_bytes.hex().upper(), SECRET):
        assert form not in text
    for offset in range(3):  # any alignment of the token inside a base64 text
        assert base64.b64encode(b"a" * offset + token_bytes).decode()[4:-4] not in text


@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_refreshed_session_tokens_are_masked_too(local_s3: LocalS3, transport: str, tmp_path, monkeypatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # credential_process hands out a new token at each refresh; each expires within a minute,
    # so botocore refreshes before every request
    handed_out = tmp_path / "tokens"
    process = tmp_path / "credentials.py"
    process.write_text(
        "import datetime, json, secrets\n"
        "token = 'refreshed-' + secrets.token_hex(12)\n"
        f"open({str(handed_out)!r}, 'a').write(token + '\\n')\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'local-' + secrets.token_hex(4), 'SecretAccessKey':\n"
        "    'secret-' + secrets.token_hex(12), 'SessionToken': token, 'Expiration': expires.isoformat()}))\n")
    config = tmp_path / "config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {process}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    local_s3.reset()
    sent: set[str] = set()
    real = AwsAnswers.__call__

    def spy(self: AwsAnswers, environ: dict, start_response: object) -> object:
        sent.add(environ.get("HTTP_X_AMZ_SECURITY_TOKEN", ""))
        return real(self, environ, start_response)

    monkeypatch.setattr(AwsAnswers, "__call__", spy)
    caplog.set_level(logging.DEBUG)
    db = Database("rotating", endpoint_url=local_s3.endpoint_url, profile_name="rotating", transport=transport)
    db.create()
    table = Table("t", db, ["id"])
    for i in range(3):
        table.insert(b"x", id=i)
        table.select(id=i)
    tokens = handed_out.read_text().split()
    assert len(tokens) >= 3 and len(sent - {""}) >= 2  # refreshed as it went, and sent
    assert sent - {""} <= set(tokens)
    for token in tokens:
        assert token not in caplog.text
    for token in sent - {""}:  # as S3 echoes a token it refuses, in an error body botocore logs
        assert token not in redact(f"<Error><Token-0>{token}</Token-0></Error>")


@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_an_error_keeps_no_library_exception_that_could_hold_s3s_body(local_s3: LocalS3, transport: str) -> None:
    db = Database("no-such-bucket-here", endpoint_url=local_s3.endpoint_url, transport=transport, max_attempts=1)
    with pytest.raises(S3aadsError) as raised:
        db.store.get(db.name, "k")
    chain, error = [], raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(isinstance(link, S3aadsError) for link in chain), [type(link) for link in chain]
