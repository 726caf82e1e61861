"""Bad input: a clear error that says what to do, and nothing written to S3."""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from s3aads_pandas import (
    ColumnError,
    Database,
    FloatKeyWarning,
    InvalidArgumentError,
    InvalidNameError,
    InvalidValueError,
    PayloadTypeError,
    S3aadsError,
    Table,
)

ROW = {"id": 1, "year": 2020}

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)


def _all_keys(db: Database) -> list[str]:
    return [obj.key for obj in db.store.iter_objects(db.name, "")]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.insert(b"x", id=1), ColumnError, "missing value for column.*year"),
        (lambda t: t.insert(b"x", id=1, year=2020, hour=3), ColumnError, "unknown column.*'hour'"),
        (lambda t: t.insert(b"x", id=None, year=2020), InvalidValueError, "column 'id' has a missing value"),
        (lambda t: t.insert(b"x", id=math.nan, year=2020), InvalidValueError, "column 'id' has a missing value"),
        (lambda t: t.insert(b"x", id="", year=2020), InvalidValueError, "column 'id' has an empty value"),
        (lambda t: t.insert("text", **ROW), PayloadTypeError, "use insert_string"),
        (lambda t: t.insert({"a": 1}, **ROW), PayloadTypeError, "data must be bytes, got dict"),
        (lambda t: t.insert(None, **ROW), PayloadTypeError, "data is missing"),
        (lambda t: t.insert_string(b"bytes", **ROW), PayloadTypeError, "use insert"),
        (lambda t: t.insert(b"x", metadata={"Colour": "red"}, **ROW), InvalidArgumentError,
         "unknown S3 PutObject|cannot store Colour"),
        (lambda t: t.insert(b"x", metadata={"Key": "elsewhere"}, **ROW), InvalidArgumentError, "cannot set Key"),
        (lambda t: t.insert(b"x", metadata="text/plain", **ROW), InvalidArgumentError, "must be a dict"),
        (lambda t: t.insert(b"x", id="x" * 1100, year=2020), InvalidValueError, "at most 1024 bytes"),
        (lambda t: t.insert_by_key("1/2020", "text"), PayloadTypeError, "use insert_string"),
        (lambda t: t.insert(b"x", id=[1, 2], year=2020), InvalidValueError, "column 'id' got a list"),
        (lambda t: t.insert(b"x", id={"a": 1}, year=2020), InvalidValueError, "column 'id' got a dict"),
        (lambda t: t.insert(b"x", id={1}, year=2020), InvalidValueError, "column 'id' got a set"),
        (lambda t: t.insert(b"x", id=pd.Series([1]), year=2020), InvalidValueError, "column 'id' got a Series"),
        (lambda t: t.insert(b"x", id="a\udcffb", year=2020), InvalidValueError, "lone surrogate, at position 1"),
        (lambda t: pd.DataFrame({"id": [[1], [2]], "year": [2020, 2021], "data": [b"x", b"y"]}).s3aads.write(t),
         InvalidValueError, "row 0: column 'id' got a list"),
        (lambda t: pd.DataFrame([[1, 2, 2020, b"x"]], columns=["id", "id", "year", "data"]).s3aads.write(t),
         InvalidNameError, "more than one column named 'id'"),
    ],
)
def test_bad_writes_raise_clearly_and_write_nothing(db: Database, call, error, message) -> None:
    table = Table("daily-data", db, ["id", "year"])
    with pytest.raises(error, match=message) as info:
        call(table)
    assert isinstance(info.value, S3aadsError)
    assert _all_keys(db) == []  # not even the column record


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda db: Table("a/b", db, ["id"]), "contains '/'"),
        (lambda db: Table("", db, ["id"]), "non-empty"),
        (lambda db: Table("t", db, ["data"]), "reserved"),
        (lambda db: Table("t", db, ["id", "metadata"]), "reserved"),
        (lambda db: Table("t", db, ["tab\there"]), "printable"),
        (lambda db: Table("t", "Not_A_Bucket", ["id"]), "bucket naming rules"),
        (lambda db: Database("x"), "3 to 63"),
    ],
)
@pytest.mark.s3_only
def test_bad_names_are_refused(db: Database, make, message) -> None:
    with pytest.raises(InvalidNameError, match=message):
        make(db)
    assert _all_keys(db) == []


def test_unknown_filter_columns_are_refused(db: Database) -> None:
    table = Table("daily-data", db, ["id", "year"])
    with pytest.raises(ColumnError, match="its columns are: id, year"):
        table.query(month=1)
    with pytest.raises(ColumnError):
        table.distinct(["month"])
    with pytest.raises(ColumnError, match="at least one column"):
        table.distinct([])


def test_errors_are_also_builtin_exceptions() -> None:
    assert issubclass(ColumnError, KeyError)
    assert issubclass(InvalidValueError, ValueError)
    assert issubclass(PayloadTypeError, TypeError)
    assert str(ColumnError("plain message")) == "plain message"


def test_credentials_never_appear_in_repr_logs_or_errors(s3: str | None, caplog: pytest.LogCaptureFixture) -> None:
    secret, key_id, token = "SeCrEt-value-123", "AKIAEXAMPLEKEYID", "session-token-xyz"
    db = Database(
        "no-such-bucket",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    caplog.set_level(logging.DEBUG, logger="s3aads_pandas")
    texts = [repr(db), repr(db.settings), repr(Table("t", db, ["id"]))]
    with pytest.raises(S3aadsError) as info:
        Table("t", db, ["id"]).insert(b"x", id=1)
    texts += [str(info.value), caplog.text]
    for text in texts:
        for credential in (secret, key_id, token):
            assert credential not in text


def test_whole_float_keys_warn_with_the_fix(db: Database) -> None:
    table = Table("floats", db, ["id"])
    frame = pd.DataFrame({"id": [1.0, 2.0], "data": [b"a", b"b"]})
    with pytest.warns(FloatKeyWarning, match=r'id=1 will not find them.*astype\("Int64"\)') as caught:
        frame.s3aads.write(table, progress=False)
    assert len(caught) == 1  # once for the column, not once per row
    assert caught[0].filename == __file__  # it points at the user's line, not into the package
    assert table.select(id=1) is None and table.select(id="1.0") == b"a"  # the trap it warns of
    frame["id"] = frame["id"].astype("Int64")
    frame.s3aads.write(table, progress=False)
    assert table.select(id=1) == b"a"


@pytest.mark.parametrize("name", ["amzn-s3-demo-bucket", "my-access-point.mrap", "tables--table-s3"])
def test_bucket_names_s3_reserves_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError, match="prefix or suffix that S3 reserves"):
        Database(name)


def test_a_table_name_too_long_for_its_record_key_is_refused_before_any_request() -> None:
    Table("t" * 1005, "any-bucket", ["id"])  # its record key is 1,024 bytes: the most S3 takes
    with pytest.raises(InvalidNameError, match="at most 1005 bytes"):
        Table("t" * 1006, "any-bucket", ["id"])
    with pytest.raises(InvalidNameError, match="at most 1005 bytes"):
        Table("é" * 503, "any-bucket", ["id"])  # 1,006 bytes in UTF-8
