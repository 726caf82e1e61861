"""Database: buckets, tables, column records."""

from __future__ import annotations

import pytest

from s3aads_pandas import (
    Database,
    DatabaseNotFoundError,
    SchemaMismatchError,
    SkippedKeysWarning,
    Table,
)
from s3aads_pandas.tables.column_record import record_key

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)


def test_create_is_idempotent_and_listed(s3: str | None) -> None:
    db = Database("joeyism-test")
    assert not db.exists()
    db.create()
    db.create()
    assert db.exists()
    assert "joeyism-test" in Database.list_databases()


def test_tables_hide_the_column_records(db: Database) -> None:
    Table("daily-data", db, ["id", "year"]).insert(b"x", id=1, year=2020)
    Table("other", db, ["id"]).insert(b"y", id=1)
    keys = [o.key for o in db.store.iter_objects("s3aads-test", "")]
    assert record_key("daily-data") in keys and record_key("other") in keys
    assert db.tables == ["daily-data", "other"]


def test_get_table_knows_the_recorded_columns(db: Database) -> None:
    Table("daily-data", db, ["id", "year", "month", "day"]).insert(b"x", id=1, year=2020, month="01", day="01")
    fresh = Database("s3aads-test").get_table("daily-data")
    assert fresh is not None
    assert fresh.columns == ["id", "year", "month", "day"]
    assert fresh.query(year=2020) == [{"id": "1", "year": "2020", "month": "01", "day": "01"}]


def test_get_table_of_a_missing_table_is_none(db: Database) -> None:
    assert db.get_table("nothing-here") is None


def test_get_table_without_record_takes_or_infers_columns(db: Database) -> None:
    db.store.put("s3aads-test", "legacy/1/2020", b"x")
    assert db.get_table("legacy").columns == []
    assert db.get_table("legacy", ["id", "year"]).query(year="2020") == [{"id": "1", "year": "2020"}]
    inferred = db.get_table("legacy", infer_columns=True)
    assert inferred.columns == ["col1", "col2"]
    assert inferred.query(col1="1") == [{"col1": "1", "col2": "2020"}]


def test_columns_that_contradict_the_record_are_refused_before_writing(db: Database) -> None:
    Table("daily-data", db, ["id", "year"]).insert(b"x", id=1, year=2020)
    wrong = Table("daily-data", Database("s3aads-test"), ["year", "id"])
    with pytest.raises(SchemaMismatchError, match=r"recorded with columns \['id', 'year'\]"):
        wrong.insert(b"y", id=2, year=2021)
    assert Table("daily-data", db).count() == 1


def test_drop_table_deletes_rows_and_record(db: Database) -> None:
    table = Table("daily-data", db, ["id"])
    for i in range(5):
        table.insert(b"x", id=i)
    Table("kept", db, ["id"]).insert(b"x", id=1)
    assert db.drop_table("daily-data") == 5
    assert db.tables == ["kept"]
    assert db.get_table("daily-data") is None
    assert db.store.get("s3aads-test", record_key("daily-data")) is None
    assert db.drop_table("daily-data") == 0


def test_missing_bucket_is_our_own_error(s3: str | None) -> None:
    db = Database("no-such-bucket")
    table = Table("t", db, ["id"])
    with pytest.raises(DatabaseNotFoundError, match="database 'no-such-bucket' does not exist") as info:
        table.select(id=1)
    assert info.value.__cause__ is None and info.value.__context__ is None  # no botocore traceback behind it
    with pytest.raises(LookupError):
        table.query(id=1)
    with pytest.raises(DatabaseNotFoundError):
        db.tables


@pytest.mark.any_keys
def test_objects_of_the_wrong_depth_are_skipped_with_one_warning(db: Database) -> None:
    table = Table("daily-data", db, ["id", "year"])
    table.insert(b"x", id=1, year=2020)
    db.store.put("s3aads-test", "daily-data/1", b"too shallow")
    db.store.put("s3aads-test", "daily-data/1/2020/extra", b"too deep")
    with pytest.warns(SkippedKeysWarning, match="skipped 2 object") as caught:
        assert table.query() == [{"id": "1", "year": "2020"}]
    assert len(caught) == 1 and caught[0].filename == __file__


def test_a_ranged_get_gives_part_of_an_object_and_its_full_size(db: Database) -> None:
    db.store.put(db.name, "blob", b"0123456789")
    db.store.put(db.name, "empty", b"")
    assert db.store.get_range(db.name, "blob", "bytes=-4") == (b"6789", 10)
    assert db.store.get_range(db.name, "blob", "bytes=0-3") == (b"0123", 10)
    assert db.store.get_range(db.name, "blob", "bytes=-100") == (b"0123456789", 10)
    assert db.store.get_range(db.name, "empty", "bytes=-4") == (b"", 0)


@pytest.mark.s3_only
def test_a_range_header_obstore_cannot_parse_is_left_to_s3(db: Database) -> None:
    db.store.put(db.name, "blob", b"0123456789")
    assert db.store.get_range(db.name, "blob", "bytes=4-") == (b"456789", 10)
    direct = db.store.boto3_client.get_object(Bucket=db.name, Key="blob", Range="lines=1-2")["Body"].read()
    assert db.store.get_range(db.name, "blob", "lines=1-2")[0] == direct  # what S3 makes of it, never b""
