"""Code written for s3aads 2.x runs unchanged here: the same calls on s3aads 2.13.6 (the oracle)
and on this project, over one S3 endpoint, give the same answers and the same exceptions."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import s3aads_pandas
from s3aads_pandas import Database, InvalidArgumentError, Table

COLUMNS = ["id", "year"]
ROWS = [(1, 2020), (1, 2021), (2, 2020), (10, 2020)]


def outcome(call: Any) -> Any:
    """What a call gave: its value, or the builtin exception classes it raised (s3aads raises
    builtins, so an ``except`` written for it catches exactly those)."""
    try:
        return ("value", call())
    except Exception as error:  # the exception is the outcome compared
        builtins = {cls for cls in type(error).__mro__ if cls.__module__ == "builtins"}
        return ("raised", builtins & {KeyError, IndexError, ValueError, TypeError, LookupError})


def both(original: ModuleType, name: str, columns: list[str] | None) -> tuple[Any, Any]:
    """The table ``name`` of the bucket "drop-in", made by s3aads 2.x and by this project alike."""
    theirs = original.Table(name, database="drop-in", columns=columns or [])
    ours = Table(name, "drop-in", columns)
    return theirs, ours


@pytest.fixture
def filled(original: ModuleType) -> ModuleType:
    """Table "t" (id, year) of bucket "drop-in", written by s3aads 2.x, and an empty bucket "other"."""
    original.Database("drop-in").create()
    original.Database("other-db").create()
    theirs = original.Table("t", database="drop-in", columns=COLUMNS)
    for id_, year in ROWS:
        theirs.insert(data=f"{id_}-{year}".encode(), id=id_, year=year)
    return original


def test_names_s3aads_code_uses_exist_and_agree(filled: ModuleType) -> None:
    theirs, ours = both(filled, "t", COLUMNS)
    assert sorted(ours.first_column_values()) == sorted(theirs.first_column_values())
    summaries = [(o.key, o.size, o.e_tag) for o in theirs.select_all_by_filter(key="1")]
    assert [(o.key, o.size, o.e_tag) for o in ours.select_all_by_filter(key="1")] == summaries
    assert [o.key for o in ours.select_all_by_filter()] == [o.key for o in theirs.select_all_by_filter()]
    assert ours.database.bucket.name == theirs.database.bucket.name == "drop-in"
    assert ours.filter_objects_by_id(val="1") == [tuple(o) for o in theirs.filter_objects_by_id(val="1")]
    assert ours.filter_objects_by_year("2020") == [tuple(o) for o in theirs.filter_objects_by_year("2020")]


def test_the_s3aads_pattern_get_table_then_set_columns(filled: ModuleType) -> None:
    theirs = filled.Database("drop-in").get_table(table_name="t")
    ours = Database("drop-in").get_table(table_name="t")
    theirs.columns = ours.columns = COLUMNS
    assert ours.query(year=2021) == [{"id": "1", "year": "2021"}]
    assert sorted(ours.keys) == sorted(theirs.keys)
    assert ours.ids() == ["1", "10", "2"]
    with pytest.raises(InvalidArgumentError, match="once"):
        Database("drop-in").get_table("t", table_name="t")


def test_key_level_methods_need_no_columns(filled: ModuleType) -> None:
    for columns in (None, []):
        theirs, ours = both(filled, "t", columns)
        assert sorted(ours.keys) == sorted(theirs.keys)
        assert ours.count() == theirs.count() == len(ROWS)
        assert ours.query_by_key("1") == theirs.query_by_key("1")
        assert ours.query_by_key("", sort_by="Size") == theirs.query_by_key("", sort_by="Size")
        assert ours.random_key() in theirs.keys
        assert set(ours.random()) == set(theirs.random()) == {"data"}
        assert len(ours.objects) == len(theirs.objects)
        assert ours.select_by_key("2/2020") == theirs.select_by_key("2/2020") == b"2-2020"
    assert Database("drop-in").get_table("t").keys == sorted(theirs.keys)


@pytest.mark.parametrize(("table", "call"), [
    ("t", lambda t: t.query_by_key(sort_by="Bogus")),
    ("empty", lambda t: t.random()),
    ("empty", lambda t: t.random_key()),
    ("t", lambda t: t.filter_objects_by_nosuch("x")),
], ids=["unknown sort_by", "random of empty", "random_key of empty", "no such column method"])
def test_exceptions_an_except_written_for_s3aads_catches(filled: ModuleType, table: str, call: Any) -> None:
    theirs, ours = both(filled, table, COLUMNS)
    expected = outcome(lambda: call(theirs))
    assert expected[0] == "raised"
    got = outcome(lambda: call(ours))
    assert got[0] == "raised" and expected[1] <= got[1] | {AttributeError}


def test_renamed_keywords_of_drop_table(filled: ModuleType) -> None:
    assert Database("drop-in").drop_table(table_name="t") == len(ROWS)
    assert filled.Database("drop-in").tables == []


def test_a_record_left_without_rows_is_no_table(filled: ModuleType) -> None:
    ours = Table("mine", "drop-in", COLUMNS)
    ours.insert(b"x", id=1, year=2020)
    filled.Database("drop-in").drop_table("mine")  # s3aads deletes the rows, not our record
    db = Database("drop-in")
    assert db.get_table("mine") is None and "mine" not in db.tables
    Table("mine", db, COLUMNS).insert(b"y", id=2, year=2020)  # the record's columns still hold
    assert db.get_table("mine").query() == [{"id": "2", "year": "2020"}]


def test_columns_that_are_not_identifiers_interoperate(filled: ModuleType) -> None:
    theirs, ours = both(filled, "odd", ["user-id", "class"])
    ours.insert(b"ours", **{"user-id": 7, "class": "a"})
    theirs.insert(data=b"theirs", **{"user-id": 8, "class": "b"})
    assert sorted(ours.query(), key=str) == sorted(theirs.query(), key=str)
    assert ours.query(**{"user-id": 8}) == [{"user-id": "8", "class": "b"}]
    assert ours.select(**{"user-id": 8, "class": "b"}) == b"theirs"
    assert "filter_objects_by_class" not in dir(ours)  # a keyword: no generated method to list
    assert [tuple(o) for o in ours.objects] == [("7", "a"), ("8", "b")]


# -- the s3aads README, run with only the import changed -------------------------------------


def readme_blocks(original: ModuleType) -> list[str]:
    """The Python examples of the README of the installed s3aads 2.x (its wheel's METADATA)."""
    (metadata,) = Path(original.__file__).parent.parent.glob("s3aads-2.*.dist-info/METADATA")
    return re.findall(r"```python3?\n(.*?)```", metadata.read_text(encoding="utf-8"), flags=re.S)


def run_example(source: str, module: str) -> list[Any]:
    """Each statement of ``source``, importing from ``module``: whether it raised, and the value
    of each line whose comment shows a value (``table.select(...) # b'...'``). Other return
    values differ on purpose (``create`` says whether it created, ``insert`` gives the ETag)."""
    outcomes: list[Any] = []
    namespace: dict[str, Any] = {}
    lines = source.splitlines()
    for statement in ast.parse(source.replace("from s3aads import", f"from {module} import")).body:
        code = ast.unparse(statement)
        if isinstance(statement, ast.Expr):
            result = outcome(lambda: eval(code, namespace))  # the README's own code
        else:
            result = outcome(lambda: exec(code, namespace))  # the README's own code
        shown = "#" in lines[statement.lineno - 1]
        as_written = code.replace(f"from {module} import", "from s3aads import")
        outcomes.append((as_written, result if shown or result[0] == "raised" else ("value", "not shown")))
    return outcomes


def test_the_s3aads_readme_examples_give_what_s3aads_gives(original: ModuleType, local_s3: Any) -> None:
    blocks = readme_blocks(original)
    assert len(blocks) >= 3 and any("table.select(id=1" in block for block in blocks)
    usage = [block for block in blocks if "db.create()" in block]  # the one that creates its data first
    ordered = usage + [block for block in blocks if block not in usage]
    results = {}
    for module in ("s3aads", "s3aads_pandas"):
        local_s3.reset()
        for bucket in ("db1", "db2"):  # the buckets and the row that the copy example assumes
            s3aads_pandas.Database(bucket).create()
        s3aads_pandas.Table("table1", "db1", ["a"]).insert(b"copied", a=1)
        results[module] = [run_example(block, module) for block in ordered]
        results[module].append(s3aads_pandas.Table("table2", "db2", ["a"]).keys)
    assert results["s3aads_pandas"] == results["s3aads"]
    assert results["s3aads"][-1] == ["1"]  # the copy example copied
    selects = [value for block in results["s3aads_pandas"][:-1] for code, value in block if "select(id=1" in code]
    assert ("value", b'["a", "b"]') in selects
