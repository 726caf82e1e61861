"""The payload codec registry: every surface offers and applies what it holds, so a new codec is
one entry of ``CODECS``."""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from s3aads_pandas import Database, InvalidArgumentError, MagicError, Table, cli
from s3aads_pandas.frames.codecs import CODECS, PayloadCodec, decoder, encoder
from s3aads_pandas.notebook.explorer import Explorer
from s3aads_pandas.storage import memory

#: A codec this project does not ship: numbers as their text, summed by DuckDB as DOUBLE.
NUMBER = PayloadCodec("number", "a decimal number", lambda data: float(data), sql_type="DOUBLE",
                      encode=lambda value: repr(float(value)).encode())


@pytest.fixture
def numbers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    monkeypatch.setitem(CODECS, "number", NUMBER)
    database = Database("memory://codecs")
    database.create()
    table = Table("prices", database, ["item"])
    pd.DataFrame({"item": ["pen", "ink", "cap"], "data": [1.5, 2, 4]}).s3aads.write(table, encode="number")
    yield table
    memory.forget_all()


@pytest.fixture
def shell(numbers: Table) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "s3aads_pandas")
    shell.user_ns["prices"] = numbers
    yield shell
    shell.atexit_operations()
    atexit.unregister(shell.atexit_operations)
    InteractiveShell.clear_instance()


def test_the_shipped_codecs_round_trip() -> None:
    assert decoder("str")(b"h\xc3\xa9") == "hé" and decoder(None)(b"x") == b"x"
    assert decoder("json")(encoder("json")({"a": [1, "é"]})) == {"a": [1, "é"]}
    with pytest.raises(InvalidArgumentError, match="decode must be one of 'bytes', 'str', 'json'"):
        decoder("yaml")
    with pytest.raises(InvalidArgumentError, match="encode must be one of 'bytes', 'json'"):
        encoder("str")  # str writes as it is, with encode=None


def test_a_new_codec_reads_and_writes_frames(numbers: Table) -> None:
    assert numbers.select(item="pen") == b"1.5"
    frame = pd.read_s3aads(numbers, decode="number")
    assert dict(zip(frame["item"], frame["data"], strict=True)) == {"cap": 4.0, "ink": 2.0, "pen": 1.5}
    fetched = pd.DataFrame({"item": ["ink"]}).s3aads.fetch(numbers, decode="number")
    assert fetched["data"].tolist() == [2.0]


def test_a_new_codec_is_offered_by_the_explorer_and_the_cli(numbers: Table, capsys) -> None:
    explorer = Explorer(numbers)
    explorer.wait()
    assert "number" in explorer.decode.options
    assert cli.main(["query", "memory://codecs/prices", "item=cap", "--decode", "number", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["item,data", "cap,4.0"]


def test_the_magic_has_duckdb_cast_a_codec_with_an_sql_type(shell: InteractiveShell, numbers: Table) -> None:
    result = shell.run_cell("%%s3aads --decode number\nSELECT sum(data) AS total FROM prices", store_history=False)
    assert result.error_in_exec is None and result.result["total"].tolist() == [7.5]
    numbers.insert(b"free", item="gift")  # not a number: DuckDB cannot cast it, and the codec says which row
    failed = shell.run_cell("%%s3aads --decode number\nSELECT sum(data) AS total FROM prices", store_history=False)
    assert isinstance(failed.error_in_exec, MagicError)
    assert "the payload of prices row item='gift' is not a decimal number" in str(failed.error_in_exec)
