"""Every message the command prints speaks in its flags and commands, never in Python."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3aads_pandas import Database, Table
from s3aads_pandas.cli import parser

#: Python in a message: a keyword argument (``data=``, ``columns=[...]``, ``errors="skip"``), a
#: constructor or method call, or advice to pass Python objects. ``column=value`` is the
#: command's own filter syntax, and ``year=2021`` a filter: neither is flagged.
PYTHON = re.compile(
    r"\b[a-z_][a-z0-9_]*=(?:['\"\[{(]|True\b|False\b|None\b|\s|$)"
    r"|\b(?:Table|Database|ConnectionSettings|read_s3aads)\("
    r"|\.\w+\(\)?"
    r"|\bboto3 (?:session|client)\b|\bpass (?:a|the|encode|columns)\b"
)


def python_in(text: str) -> list[str]:
    return [match.group(0) for match in PYTHON.finditer(text)]


def test_the_pattern_finds_python_and_leaves_shell_alone() -> None:
    for python in ["name it with data=", "pass Table('t', 'db', columns=[...])", "use Database('db').get_table('t')",
                   "partition_by= the key columns", "or pass a boto3 session", "errors='skip'"]:
        assert python_in(python), python
    for shell in ["filters are column=value, got 'kind'", "s3aads query db/t year=2021", "--columns kind,id",
                  "give --partition-by kind,id", "read with --dataset parquet"]:
        assert not python_in(shell), shell


def typed(*words: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """The command run as a user types it at a shell: the installed ``s3aads`` script."""
    script = Path(sys.executable).with_name("s3aads")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "s3aads_pandas"]
    return subprocess.run([*command, *words], capture_output=True, text=True, timeout=120, **options)


@pytest.fixture
def shop(tmp_path: Path) -> tuple[str, Path]:
    """A file:// database with the table events (kind, id), and a folder for files."""
    db = Database(f"file://{tmp_path}/shop")
    db.create()
    table = Table("events", db, ["kind", "id"])
    for kind, id_ in [("click", 1), ("view", 2)]:
        table.insert_string(f'{{"kind": "{kind}"}}' if id_ == 1 else "not json", kind=kind, id=id_)
    return db.url, tmp_path


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


#: (what a user typed, with {db} and {dir} filled in, and files to make first; what the message must say)
MISTAKES = [
    ("import {db}/new {dir}/rows.csv", {"rows.csv": "kind,id,data\nclick,1,x\n"},
     "name its key columns with --columns"),
    ("import {db}/new {dir}/rows.csv --columns kind,idd", {"rows.csv": "kind,id,data\nclick,1,x\n"},
     "--columns names idd, which"),
    ("import {db}/events {dir}/rows.csv --columns id,kind", {"rows.csv": "kind,id,data\nclick,1,x\n"},
     "not id, kind: give --columns kind,id"),
    ("import {db}/events {dir}/rows.csv", {"rows.csv": "kind,id,payload\nclick,1,x\n"},
     "name it with --data COLUMN"),
    ("import {db}/events {dir}/rows.csv", {"rows.csv": "kind,id,data,price\nclick,1,x,3\n"},
     "column(s) price of"),
    ("import {db}/events {dir}/rows.csv --partition-by kind", {"rows.csv": "kind,id,price\nclick,1,3\n"},
     "give --partition-by kind,id"),
    ("import {db}/events {dir}/rows.csv", {"rows.csv": "kind,id,data\nclick,1,x\nview,,y\n"},
     "line 3: column 'id' has an empty value"),
    ("import {db}/events {dir}/rows.jsonl", {"rows.jsonl": '{"kind": "a", "id": 1, "data": "x"}\n'
                                                          '{"kind": "b", "id": null, "data": "y"}\n'},
     "line 2: column 'id'"),
    ("query {db}/nothing", {}, "`s3aads tables {db}` lists its tables"),
    ("query file://{dir}/elsewhere/events", {}, "create it with `s3aads create file://{dir}/elsewhere`"),
    ("query {db}/events colour=red", {}, "unknown column(s) 'colour'"),
    ("query {db}/events --decode json", {}, "--decode str"),
    ("distinct {db}/events colour", {}, "colour"),
    ("export {db}/events {dir}/missing/rows.csv", {}, "does not exist"),
    ("export {db}/events {dir}/rows.txt", {}, "use a .csv, .parquet or .jsonl file"),
    ("drop {db}/events", {}, "confirm with --yes"),
]


@pytest.mark.parametrize(("line", "files", "says"), MISTAKES, ids=[line for line, _, _ in MISTAKES])
def test_mistakes_are_told_in_the_commands_terms(shop: tuple[str, Path], line: str, files: dict[str, str],
                                                 says: str) -> None:
    db, folder = shop
    for name, text in files.items():
        write(folder, name, text)
    answer = typed(*line.format(db=db, dir=folder).split())
    assert answer.returncode == 1
    assert says.format(db=db, dir=folder) in answer.stderr, answer.stderr
    assert answer.stderr.startswith("s3aads: error: ") and python_in(answer.stderr) == [], answer.stderr


def test_a_dataset_table_refuses_decode_in_the_commands_terms(shop: tuple[str, Path]) -> None:
    db, folder = shop
    rows = write(folder, "sales.csv", "region,amount\neu,1.5\nus,2\n")
    assert typed("import", f"{db}/sales", rows, "--partition-by", "region", "-q").returncode == 0
    answer = typed("query", f"{db}/sales", "--decode", "str")
    assert answer.returncode == 1 and "leave out --decode" in answer.stderr and python_in(answer.stderr) == []


def test_no_credentials_names_the_ways_forward(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    answer = typed("tables", "some-bucket", env=env, cwd=tmp_path)
    assert answer.returncode == 1
    assert answer.stderr.startswith("s3aads: error: no AWS credentials found") and len(answer.stderr.splitlines()) == 1
    assert "--root file://" in answer.stderr and "s3aads serve" in answer.stderr
    assert python_in(answer.stderr) == []


def test_help_texts_speak_the_commands_terms() -> None:
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("s3aads", top), *commands.choices.items()]:
        text = sub.format_help()
        assert python_in(text) == [], f"{name}: {python_in(text)}"


def test_warnings_are_one_line_in_the_commands_terms(shop: tuple[str, Path]) -> None:
    db, _ = shop
    Database(db).store.put("shop", "events/click%ZZ/1", b"written by another tool")
    answer = typed("query", f"{db}/events", "--keys-only", "-q")
    assert answer.returncode == 0, answer.stderr
    assert answer.stderr.startswith("s3aads: warning: skipped 1 object(s) under")
    assert len(answer.stderr.splitlines()) == 1 and python_in(answer.stderr) == [], answer.stderr
