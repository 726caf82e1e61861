"""The two transports: how one is chosen, and that obstore's gaps never show.

obstore cannot address some keys (an empty, ``.`` or ``..`` segment, a control character) and
fails a whole listing page that holds one; s3aads 2.x writes such keys for values like ``.``.
Those requests go through boto3, and every answer is the same on both transports.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from s3aads_pandas import ConnectionSettings, Database, InvalidArgumentError, Table
from s3aads_pandas.local import LocalS3
from s3aads_pandas.storage.boto3_transport import Boto3Transport
from s3aads_pandas.storage.connect import make_transport, transport_name
from s3aads_pandas.storage.s3_transport import S3Transport, expressible

COLUMNS = ["id", "n"]


def test_auto_is_obstore_but_boto3_for_a_client_handed_over_and_inside_mock_aws() -> None:
    assert transport_name(ConnectionSettings()) == "obstore"
    assert transport_name(ConnectionSettings(transport="boto3")) == "boto3"
    client = boto3.client("s3", region_name="us-east-1")
    assert transport_name(ConnectionSettings(client=client)) == "boto3"
    with mock_aws():
        assert transport_name(ConnectionSettings()) == "boto3"
        assert isinstance(make_transport(ConnectionSettings()), Boto3Transport)
    assert isinstance(make_transport(ConnectionSettings(endpoint_url="http://127.0.0.1:9")), S3Transport)


def test_impossible_transport_choices_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="transport must be one of 'auto', 'obstore', 'boto3'"):
        ConnectionSettings(transport="rust")
    with pytest.raises(InvalidArgumentError, match="transport='boto3'"):
        ConnectionSettings(client=boto3.client("s3", region_name="us-east-1"), transport="obstore")


@pytest.mark.parametrize(("key", "ok"), [
    ("t/1/2020", True), ("t/a%2Fb/%25", True), ("t/ü +~*/x", True), ("t/a.b/..c", True),
    ("t//1", False), ("t/./1", False), ("t/../1", False), ("t/x\x01y", False), ("t/x\x7fy", False),
    ("/t/1", False), ("t/1/", False), ("", False),
])
def test_which_keys_obstore_addresses_exactly(key: str, ok: bool) -> None:
    assert expressible(key) is ok


@pytest.fixture
def foreign(original: ModuleType, local_s3: LocalS3) -> str:
    """A bucket with rows that s3aads 2.x wrote for the values ``.`` and ``..`` (keys obstore
    cannot address), one with a control character, and plain ones."""
    original.Database("foreign").create()
    theirs = original.Table("t", database="foreign", columns=COLUMNS)
    for id_ in [".", "..", "plain", "x\x01y"]:
        theirs.insert(data=f"payload of {id_}".encode(), id=id_, n=1)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]  # the endpoint's, in this process: no request per key
    for n in range(1500):  # past one listing page: the page with the foreign keys is one of two
        backend.put_object("foreign", f"t/bulk/{n:04d}", b"bulk")
    return local_s3.endpoint_url


def observe(database: Database) -> dict[str, Any]:
    """What a user sees of the table through ``database``."""
    table = database.get_table("t", COLUMNS)
    return {
        "query": table.query(),
        "count": table.count(),
        "dot": table.select(id=".", n=1),
        "dot_by_key": (table.select_by_key("./1"), table.select_by_key("../1")),
        "control": table.select(id="x\x01y", n=1),
        "keys": table.query_by_key("x"),
    }


def test_foreign_keys_read_the_same_on_both_transports(foreign: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "s3aads_pandas.storage.s3_transport")
    through_boto3 = observe(Database("foreign", endpoint_url=foreign, transport="boto3"))
    through_obstore = observe(Database("foreign", endpoint_url=foreign, transport="obstore"))
    assert through_obstore == through_boto3
    # the keys s3aads 2.x wrote for "." and ".." are in another escaping: skipped as rows (the
    # value "." is the key t/%2E/1 here, which does not exist), and reachable by key
    assert through_obstore["count"] == 1502 and through_obstore["dot"] is None
    assert through_obstore["dot_by_key"] == (b"payload of .", b"payload of ..")
    assert through_obstore["control"] == b"payload of x\x01y"
    said = [r.getMessage() for r in caplog.records if "went through boto3" in r.getMessage()]
    assert len(said) == 1  # said once, at INFO; the rest at DEBUG


@pytest.mark.s3_only
def test_rows_with_control_characters_write_read_and_delete_on_obstore(s3: str | None) -> None:
    db = Database("control")
    db.create()
    table = Table("t", db, COLUMNS)
    table.insert(b"tab", id="a\tb", n=1)
    table.insert(b"plain", id="a", n=1)
    assert table.select(id="a\tb", n=1) == b"tab"
    assert sorted(row["id"] for row in table.query()) == ["a", "a\tb"]
    table.delete(id="a\tb", n=1)
    assert table.query() == [{"id": "a", "n": "1"}]


@pytest.mark.s3_only
def test_put_parameters_arrive_on_both_transports(s3: str | None) -> None:
    db = Database("params")
    db.create()
    table = Table("t", db, ["id"])
    table.insert(b"{}", {"ContentType": "application/json", "CacheControl": "no-cache",
                         "Metadata": {"owner": "ana"}}, id=1)
    table.insert(b"secret", {"ServerSideEncryption": "AES256", "ContentLanguage": "de"}, id=2)
    head = db.store.boto3_client.head_object(Bucket="params", Key="t/1")
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == ("application/json", "no-cache",
                                                                            {"owner": "ana"})
    head = db.store.boto3_client.head_object(Bucket="params", Key="t/2")
    assert (head["ServerSideEncryption"], head["ContentLanguage"]) == ("AES256", "de")
    assert table.select(id=2) == b"secret"
