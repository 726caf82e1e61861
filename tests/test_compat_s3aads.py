"""Interop with s3aads 2.x on the same S3 endpoint (over HTTP): each reads what the other wrote."""

from __future__ import annotations

from types import ModuleType

from s3aads_pandas import Database, Table

COLUMNS = ["id", "year", "month", "day"]
ROWS = [
    ({"id": 1, "year": 2020, "month": "01", "day": "01"}, b'["a", "b"]'),
    ({"id": 10, "year": 2020, "month": "01", "day": "02"}, b'["c", "d"]'),
    ({"id": "user 7", "year": 2021, "month": "12", "day": "31"}, b"\x00\xffbinary"),
    ({"id": "ünïcødé+=&", "year": "v1.2", "month": "a b", "day": "..."}, "text ✓".encode()),
]


def as_strings(row: dict) -> dict:
    return {k: str(v) for k, v in row.items()}


def test_keys_of_plain_values_are_identical(original: ModuleType) -> None:
    theirs = original.Table("daily-data", database="compat-db", columns=COLUMNS)
    ours = Table("daily-data", "compat-db", COLUMNS)
    for row, _ in ROWS:
        assert ours.to_key(**row) == theirs.to_key(**row)


def test_we_read_what_s3aads_wrote(original: ModuleType) -> None:
    their_db = original.Database("compat-db")
    their_db.create()
    theirs = original.Table("daily-data", database=their_db, columns=COLUMNS)
    for row, payload in ROWS:
        theirs.insert(data=payload, **row)

    db = Database("compat-db")
    assert db.tables == ["daily-data"]
    ours = db.get_table("daily-data", COLUMNS)
    assert sorted(ours.query(), key=str) == sorted((as_strings(r) for r, _ in ROWS), key=str)
    for row, payload in ROWS:
        assert ours.select(**row) == payload
    assert ours.query(id=1) == [as_strings(ROWS[0][0])]
    assert ours.query(year=2021) == [as_strings(ROWS[2][0])]
    assert db.get_table("daily-data", infer_columns=True).columns == ["col1", "col2", "col3", "col4"]


def test_s3aads_reads_what_we_wrote(original: ModuleType) -> None:
    db = Database("compat-db")
    db.create()
    ours = Table("daily-data", db, COLUMNS)
    for row, payload in ROWS:
        ours.insert(payload, **row)

    theirs = original.Table("daily-data", database="compat-db", columns=COLUMNS)
    assert original.Database("compat-db").tables == ["daily-data"]  # our column record stays hidden
    assert sorted(theirs.query(), key=str) == sorted((as_strings(r) for r, _ in ROWS), key=str)
    for row, payload in ROWS:
        assert theirs.select(**row) == payload
    assert sorted(theirs.keys) == sorted(ours.keys)
    assert theirs.count() == ours.count() == len(ROWS)
