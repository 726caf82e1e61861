"""Databases on this machine: how they are named, and what a folder does that S3 does not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from obstore.store import MemoryStore

from s3aads_pandas import (
    ConnectionSettings,
    Database,
    DatabaseNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    RowChangedError,
    RowExistsError,
    S3RequestError,
    Table,
    configure,
)
from s3aads_pandas import cli as cli_module
from s3aads_pandas.frames.read import split_table_name
from s3aads_pandas.notebook.browsing import Browsing
from s3aads_pandas.storage import folder, memory
from s3aads_pandas.storage.obstore_transport import ObstoreTransport

pytestmark = pytest.mark.usefixtures("empty_memory")


def test_a_database_url_names_its_root_and_name(tmp_path: Path) -> None:
    db = Database(f"file://{tmp_path}/shop")
    assert (db.name, db.settings.root, db.url) == ("shop", f"file://{tmp_path}/", f"file://{tmp_path}/shop")
    assert repr(db) == f"Database('file://{tmp_path}/shop')"
    assert Database("memory://shop").url == "memory://shop"
    assert Database("s3://shop").settings.root is None and Database("s3://shop").name == "shop"
    configure(root="memory://")
    assert Database("shop").url == "memory://shop"
    assert Database("s3://shop").url == "s3://shop"  # a URL wins over the configured root


@pytest.mark.parametrize(("text", "database", "table"), [
    ("bucket/events", "bucket", "events"),
    ("s3://bucket/events", "bucket", "events"),
    ("memory://shop/events", "memory://shop", "events"),
    ("file:///data/shop/events", "file:///data/shop", "events"),
])
def test_table_strings_take_every_form(text: str, database: str, table: str) -> None:
    name, db = split_table_name(text)
    assert (name, db.reference) == (table, database)


@pytest.mark.parametrize("text", ["a/b/c", "memory://events", "file:///events", "nothing"])
def test_table_strings_without_a_database_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="'database/table' string"):
        split_table_name(text)


@pytest.mark.parametrize("name", ["ftp://x/y", "file://host/x", "file://~x/y"])
def test_unknown_or_remote_urls_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Database(name)


@pytest.mark.parametrize("name", [".hidden", "a\tb", ""])
def test_local_database_names_are_one_visible_folder(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError, match="one folder"):
        Database(name, root=f"file://{tmp_path}")


def test_a_folder_name_need_not_follow_s3_rules(tmp_path: Path) -> None:
    db = Database(f"file://{tmp_path}/My Data")
    assert db.create() and not db.create() and db.exists()
    assert Database.list_databases(root=f"file://{tmp_path}") == ["My Data"]


def test_memory_databases_are_shared_by_the_process() -> None:
    Database("memory://shared").create()
    Table("t", "memory://shared", ["id"]).insert(b"x", id=1)
    assert Table("t", Database("memory://shared"), ["id"]).select(id=1) == b"x"
    assert Database.list_databases(root="memory://") == ["shared"]


def test_a_missing_database_says_how_to_create_it(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/nowhere"
    with pytest.raises(DatabaseNotFoundError, match=f"create it with Database\\('{url}'\\).create\\(\\)") as info:
        Table("t", url, ["id"]).select(id=1)
    assert info.value.database == url


def test_folder_listings_come_in_s3_key_order(tmp_path: Path) -> None:
    """A directory lists in no order, and a folder 'a' sorts as 'a/' among its siblings."""
    db = Database(f"file://{tmp_path}/order")
    db.create()
    table = Table("t", db, ["k", "n"])
    values = ["a", "a-b", "a!", "a b", "b", "a.c", "0"]
    for value in values:
        table.insert(b"-", k=value, n=1)
    keys = [obj.key for obj in db.store.list_page(db.name, "t/").objects]
    assert keys == sorted(keys) and len(keys) == len(values)
    assert [row["k"] for row in table.query()] == sorted(values, key=lambda v: f"{v}/")
    assert db.store.list_page(db.name, "t/", start_after="t/a-b/1").objects[0].key == "t/a.c/1"


def test_a_deleted_tables_folders_go_and_it_is_no_longer_listed(tmp_path: Path) -> None:
    db = Database(f"file://{tmp_path}/tidy")
    db.create()
    table = Table("t", db, ["a", "b"])
    table.insert(b"1", a=1, b=2)
    Table("other", db, ["a"]).insert(b"1", a=1)
    assert db.tables == ["other", "t"]
    table.delete(a=1, b=2)
    assert not (tmp_path / "tidy" / "t").exists()
    assert db.tables == ["other"]
    (tmp_path / "tidy" / "left-empty").mkdir()  # by another tool: holds no object, so no table
    assert db.tables == ["other"]
    assert (tmp_path / "tidy" / ".s3aads-locks").is_dir()  # the write locks, never a table or a key
    assert [obj.key for obj in db.store.list_page(db.name, "").objects] == [".s3aads-table.other.json",
                                                                           ".s3aads-table.t.json", "other/1"]


def test_files_being_written_are_not_listed(tmp_path: Path) -> None:
    db = Database(f"file://{tmp_path}/staged")
    db.create()
    Table("t", db, ["id"]).insert(b"1", id=1)
    (tmp_path / "staged" / "t" / "2#1").write_bytes(b"half")  # LocalStore's name while it writes
    assert [row["id"] for row in Table("t", db, ["id"]).query()] == ["1"]


def test_a_folder_keeps_only_payloads_and_says_so(tmp_path: Path) -> None:
    table = Table("t", _created(f"file://{tmp_path}/plain"), ["id"])
    with pytest.raises(InvalidArgumentError, match="keep only the payload: they cannot store ContentType"):
        table.insert(b"x", {"ContentType": "text/plain"}, id=1)
    assert table.query() == []


def test_memory_keeps_metadata() -> None:
    table = Table("t", _created("memory://meta"), ["id"])
    table.insert(b"x", {"ContentType": "text/plain", "Metadata": {"colour": "red"}}, id=1)
    assert table.database.store.head(table.database.name, "t/1").metadata["colour"] == "red"


def test_without_file_locks_conditional_writes_are_refused_never_unconditional(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = Table("t", _created(f"file://{tmp_path}/nolock"), ["id"])
    table.insert(b"first", id=1)
    monkeypatch.setattr(folder, "fcntl", None)
    with pytest.raises(S3RequestError, match="fcntl file locks, which this system lacks"):
        table.insert(b"second", overwrite=False, id=1)
    with pytest.raises(S3RequestError, match="fcntl"):
        table.update(b"second", table.select_with_etag(id=1).etag, id=1)
    assert table.select(id=1) == b"first"
    table.insert(b"third", id=1)  # an unconditional write needs no lock
    assert table.select(id=1) == b"third"


def test_a_key_that_is_also_a_folder_is_refused_clearly(tmp_path: Path) -> None:
    db = _created(f"file://{tmp_path}/depth")
    db.store.put(db.name, "t/1/2020", b"deep")
    with pytest.raises(S3RequestError, match="a folder cannot hold both a key and keys under it"):
        db.store.put(db.name, "t/1", b"shallow")


def test_a_key_with_control_characters_is_refused_clearly() -> None:
    db = _created("memory://control")
    with pytest.raises(InvalidArgumentError, match="memory:// databases cannot hold the key 't/a\\\\tb/1'"):
        Table("t", db, ["k", "n"]).insert(b"x", k="a\tb", n=1)


def test_the_explorer_lists_the_databases_of_a_root(tmp_path: Path) -> None:
    for name in ("one", "two"):
        Table("t", _created(f"file://{tmp_path}/{name}"), ["id"]).insert(b"x", id=1)
    browsing = Browsing(root=f"file://{tmp_path}")
    assert browsing.database_names() == ["one", "two"]
    browsing.open_database("two")
    assert browsing.database is not None and browsing.database.url == f"file://{tmp_path}/two"
    assert [name for _, name in browsing.table_choices()] == ["t"]


def test_the_cli_takes_database_urls_and_a_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"file://{tmp_path}/cli"
    assert cli_module.main(["create", url]) == 0
    source = tmp_path / "rows.csv"
    pd.DataFrame({"id": [1, 2], "data": ["a", "b"]}).to_csv(source, index=False)
    assert cli_module.main(["import", f"{url}/t", str(source), "--columns", "id"]) == 0
    capsys.readouterr()
    assert cli_module.main(["--root", f"file://{tmp_path}", "query", "cli/t", "id=2"]) == 0
    assert capsys.readouterr().out.split() == ["id", "data", "2", "b"]
    assert cli_module.main(["tables", f"file://{tmp_path}/missing"]) == 1
    assert f"s3aads create file://{tmp_path}/missing" in capsys.readouterr().err


def test_a_transport_handed_over_is_used_as_it_is() -> None:
    transport = memory.MemoryTransport()
    db = Database("handed", root="memory://", transport=transport)
    assert db.store.transport is transport
    with pytest.raises(InvalidArgumentError, match="Transport protocol"):
        ConnectionSettings(transport=object())  # type: ignore[arg-type]


class ScratchTransport(ObstoreTransport[MemoryStore]):
    """A backend as a user would add one: where its databases are, and nothing more."""

    def __init__(self) -> None:
        super().__init__("scratch://")
        self.databases: dict[str, MemoryStore] = {}

    def _store(self, bucket: str) -> MemoryStore:
        if bucket not in self.databases:
            raise self._missing(bucket)
        return self.databases[bucket]

    def list_buckets(self) -> list[str]:
        return sorted(self.databases)

    def create_bucket(self, bucket: str) -> None:
        self._create(bucket, lambda: self._made(bucket))

    def _made(self, bucket: str) -> bool:
        made = bucket not in self.databases
        self.databases.setdefault(bucket, MemoryStore())
        return made


def test_a_new_backend_is_one_subclass_of_the_obstore_transport() -> None:
    transport = ScratchTransport()
    db = Database("shop", root="memory://", transport=transport)
    with pytest.raises(DatabaseNotFoundError, match="scratch://shop"):
        db.tables
    assert db.create() and not db.create() and transport.list_buckets() == ["shop"]
    table = Table("events", db, columns=["year", "id"])
    frame = pd.DataFrame({"year": ["2020", "2020", "2021"], "id": ["1", "10", "1"], "data": [b"a", b"b", b"c"]})
    frame.s3aads.write(table)
    assert table.query(year="2020", id="1") == [{"year": "2020", "id": "1"}]
    assert pd.read_s3aads(table, year="2021")["data"].tolist() == [b"c"]
    assert table.distinct("year") == [("2020",), ("2021",)]
    first = table.select_with_etag(year="2020", id="1")
    assert first is not None
    table.update(b"new", first.etag, year="2020", id="1")
    with pytest.raises(RowChangedError):
        table.update(b"stale", first.etag, year="2020", id="1")
    with pytest.raises(RowExistsError):
        table.insert(b"again", overwrite=False, year="2021", id="1")
    assert table.select(year="2020", id="1") == b"new"
    table.delete(year="2020", id="10")
    assert table.count() == 2


def test_a_folder_lists_values_that_end_in_a_hash_and_digits(tmp_path: Path) -> None:
    db = Database(f"file://{tmp_path}/shop")
    db.create()
    table = Table("t", db, ["first", "second"])
    table.insert(b"x", first="1c#13", second="..")  # a folder named like a partial write
    assert table.query(second="..") == [{"first": "1c#13", "second": ".."}] == table.query()
    with pytest.raises(InvalidArgumentError, match="ends in '#' and digits"):
        Table("one", db, ["id"]).insert(b"x", id="a#1")  # a file named so is one
    assert Table("one", db, ["id"]).count() == 0


def test_a_local_database_has_no_boto3_client() -> None:
    with pytest.raises(InvalidArgumentError, match="not in S3: they have no boto3 client"):
        _created("memory://nob").bucket


def _created(url: str) -> Database:
    db = Database(url)
    db.create()
    return db
