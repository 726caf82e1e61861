"""The s3aads command."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from s3aads_pandas import ConnectionSettings, Database, Table, configure
from s3aads_pandas.cli import commands, main, parser
from s3aads_pandas.cli.commands import _progress
from s3aads_pandas.local import LocalS3
from s3aads_pandas.local.faults import FaultPlan


@pytest.fixture
def endpoint(local_s3: LocalS3) -> str:
    local_s3.reset()
    db = Database("cli-db", endpoint_url=local_s3.endpoint_url)
    db.create()
    table = Table("events", db, ["kind", "id"])
    for kind, id_ in [("click", 1), ("click", 2), ("view", 3)]:
        table.insert_string(f"{kind}-{id_}", kind=kind, id=id_)
    yield local_s3.endpoint_url
    configure(ConnectionSettings())


def run(endpoint: str, *args: str) -> int:
    return main(["--endpoint-url", endpoint, *args])


def test_tables(endpoint: str, capsys) -> None:
    assert run(endpoint, "tables", "cli-db") == 0
    assert capsys.readouterr().out.split() == ["table", "columns", "events", "kind,", "id"]


def test_query_formats(endpoint: str, capsys, tmp_path: Path) -> None:
    assert run(endpoint, "query", "cli-db/events", "kind=click", "--format", "csv", "-q") == 0
    assert capsys.readouterr().out == "kind,id,data\nclick,1,click-1\nclick,2,click-2\n"
    assert run(endpoint, "query", "cli-db/events", "id=1,3", "--format", "json", "--keys-only") == 0
    assert capsys.readouterr().out.splitlines() == ['{"kind":"click","id":"1"}', '{"kind":"view","id":"3"}']
    assert run(endpoint, "query", "cli-db/events", "kind=view") == 0
    assert "view  3 view-3" in capsys.readouterr().out
    out = tmp_path / "view.parquet"
    assert run(endpoint, "query", "cli-db/events", "kind=view", "-o", str(out)) == 0
    assert pd.read_parquet(out).to_dict("list") == {"kind": ["view"], "id": ["3"], "data": ["view-3"]}


def test_export_then_import_round_trip(endpoint: str, tmp_path: Path) -> None:
    exported = tmp_path / "events.csv"
    assert run(endpoint, "export", "cli-db/events", str(exported)) == 0
    assert run(endpoint, "import", "cli-db/copy", str(exported), "--columns", "kind,id") == 0
    copy = Table("copy", Database("cli-db", endpoint_url=endpoint))
    assert copy.columns == ["kind", "id"] and copy.select_string(kind="view", id=3) == "view-3"
    sales = tmp_path / "sales.parquet"
    pd.DataFrame({"region": ["eu", "eu", "us"], "amount": [1.5, 2.5, 3.0]}).to_parquet(sales)
    assert run(endpoint, "import", "cli-db/sales", str(sales), "--partition-by", "region") == 0
    back = pd.read_s3aads("cli-db/sales", format="parquet")
    assert back.to_dict("list") == {"region": ["eu", "eu", "us"], "amount": [1.5, 2.5, 3.0]}


def test_errors_are_one_line_and_non_zero(endpoint: str, capsys) -> None:
    assert run(endpoint, "query", "cli-db/nothing") == 1
    err = capsys.readouterr().err
    assert err.startswith("s3aads: error: table 'nothing'") and len(err.splitlines()) == 1
    assert run(endpoint, "query", "cli-db/events", "kind") == 1
    assert "filters are column=value" in capsys.readouterr().err
    assert run(endpoint, "query", "cli-db/events", "colour=red") == 1
    assert "unknown column(s) 'colour'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["query"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "see --help" in err


def test_help_and_demo_as_a_command() -> None:
    helped = subprocess.run([sys.executable, "-m", "s3aads_pandas", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "serve" in helped.stdout and "import" in helped.stdout
    demo = subprocess.run([sys.executable, "-m", "s3aads_pandas", "demo", "--rows", "30"],
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "read the 10 rows of 2021 with pd.read_s3aads" in demo.stdout
    assert demo.stdout.splitlines()[0].split() == ["id", "year", "month", "day", "data"]
    assert "'value':" in demo.stdout  # payloads decoded from JSON


def test_serve_prints_the_environment_line() -> None:
    server = subprocess.Popen([sys.executable, "-m", "s3aads_pandas", "serve"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().strip()
        assert line.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:")
        url = line.split()[1].split("=", 1)[1]
        Database("served", endpoint_url=url).create()
        assert Database.list_databases(endpoint_url=url) == ["served"]
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"kind,id,data\nclick,1,x,extra\n", "ragged.csv", "cannot read"),
        (b"", "empty.csv", "No columns to parse"),
        (b"kind,id,data\n\xff\xfe,1,x\n", "latin.csv", "can't decode byte 0xff"),
        (b'kind,id,data\nclick,1,"never closed\n', "quote.csv", "EOF inside string"),
        (b'{"kind": "click", "id": \n', "bad.jsonl", "as JSON lines"),
        (b"not parquet at all", "fake.parquet", "as Parquet"),
    ],
)
def test_malformed_files_are_one_line_errors(endpoint: str, capsys, tmp_path: Path, content: bytes,
                                             name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert run(endpoint, "import", "cli-db/events", str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("s3aads: error: ") and len(err.splitlines()) == 1 and message in err
    assert Table("events", Database("cli-db", endpoint_url=endpoint)).count() == 3  # nothing written


def test_bad_endpoints_and_ports_are_one_line_errors(capsys, local_s3: LocalS3) -> None:
    assert main(["--endpoint-url", "notaurl", "tables", "cli-db"]) == 1
    err = capsys.readouterr().err
    assert "endpoint_url must be an http:// or https:// URL" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "80000"])
    assert exit_info.value.code == 2 and "a port is a number from 0 to 65535" in capsys.readouterr().err
    busy = local_s3.endpoint_url.rsplit(":", 1)[1]
    assert main(["serve", "--port", busy]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{busy}" in err and len(err.splitlines()) == 1


def test_serve_without_the_local_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "moto.moto_server.werkzeug_app", None)  # as if moto were absent
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err == ('s3aads: error: the local S3 endpoint needs moto\'s server: install the [local] extra '
                   '(in a clone of s3aads-pandas: python -m pip install ".[local]")\n')


def test_bytes_export_as_base64_and_import_back_identical(endpoint: str, tmp_path: Path) -> None:
    db = Database("cli-db", endpoint_url=endpoint)
    blobs = {i: bytes(range(256)) * i + b"\x00\n,\"'" for i in range(4)}
    Table("blobs", db, ["id"]).insert(b"", id="empty")
    for i, blob in blobs.items():
        Table("blobs", db, ["id"]).insert(blob, id=i)
    for name in ("blobs.csv", "blobs.jsonl"):
        exported = tmp_path / name
        assert run(endpoint, "export", "cli-db/blobs", str(exported), "--decode", "bytes") == 0
        assert "data:base64" in exported.read_text()
        copy = f"copy-{name.split('.')[1]}"
        assert run(endpoint, "import", f"cli-db/{copy}", str(exported), "--columns", "id") == 0
        back = Table(copy, db)
        assert {i: back.select(id=i) for i in blobs} == blobs and back.select(id="empty") == b""


def test_a_fresh_endpoint_can_be_filled_and_emptied_from_the_command_line(local_s3: LocalS3, capsys,
                                                                          tmp_path: Path) -> None:
    local_s3.reset()
    rows = tmp_path / "rows.csv"
    rows.write_text("id,data\n1,a\n2,b\n")
    url = local_s3.endpoint_url
    assert main(["--endpoint-url", url, "import", "fresh-db/daily", str(rows), "--columns", "id"]) == 1
    assert "create it with `s3aads create fresh-db`, or import with --create" in capsys.readouterr().err
    assert main(["--endpoint-url", url, "create", "fresh-db"]) == 0
    assert capsys.readouterr().err == "created database fresh-db\n"
    assert main(["--endpoint-url", url, "create", "fresh-db"]) == 0  # us-east-1 answers 200 again
    assert capsys.readouterr().err == "database fresh-db exists already\n"
    assert main(["--endpoint-url", url, "create", "fresh-db", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["--endpoint-url", url, "import", "fresh-db/daily", str(rows), "--columns", "id"]) == 0
    assert main(["--endpoint-url", url, "import", "other-db/t", str(rows), "--columns", "id", "--create", "-q"]) == 0
    assert capsys.readouterr().err == "imported 2 objects into fresh-db/daily\n"
    assert main(["--endpoint-url", url, "drop", "fresh-db/daily"]) == 1  # no terminal to confirm on
    assert "confirm with --yes" in capsys.readouterr().err
    assert Table("daily", Database("fresh-db", endpoint_url=url)).count() == 2
    assert main(["--endpoint-url", url, "drop", "fresh-db/daily", "--yes"]) == 0
    assert "2 rows deleted" in capsys.readouterr().err
    assert Database("fresh-db", endpoint_url=url).tables == []
    assert Table("t", Database("other-db", endpoint_url=url)).count() == 2


def test_bad_arguments_are_refused_before_any_request(endpoint: str, capsys, tmp_path: Path) -> None:
    unreachable = "http://127.0.0.1:9"  # a request there would fail with "could not connect"
    assert main(["--endpoint-url", unreachable, "query", "cli-db/events", "--format", "parquet"]) == 1
    assert capsys.readouterr().err == "s3aads: error: --format parquet needs -o FILE: Parquet is binary\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--rows", "-5"])
    assert exit_info.value.code == 2 and "at least 1, got '-5'" in capsys.readouterr().err
    rows = tmp_path / "rows.csv"
    rows.write_text("kind,id,data\nclick,9,x\n")
    assert run(endpoint, "import", "cli-db/events", str(rows), "--partition-by", "nosuch") == 1
    err = capsys.readouterr().err
    assert "--partition-by names nosuch, which" in err and "its columns are: kind, id, data" in err


def test_every_command_and_option_has_help() -> None:
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"serve", "demo", "create", "drop", "tables", "count", "distinct", "query",
                                     "export", "import"}
    for name, sub in [("s3aads", top), *commands.choices.items()]:
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help text"
        if sub is not top:
            assert any("--quiet" in a.option_strings for a in sub._actions), f"{name} has no -q"


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet, loud = argparse.Namespace(quiet=True), argparse.Namespace(quiet=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _progress(loud) is None and _progress(quiet) is False  # None: a bar for long transfers
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert _progress(loud) is False


def test_query_prints_as_it_lists(endpoint: str, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real = commands.write_frames

    def watch(frames, output, fmt):  # what has been printed when each next frame is asked for
        def watched():
            for frame in frames:
                written.append(capsys.readouterr().out)
                yield frame
        real(watched(), output, fmt)

    monkeypatch.setattr(commands, "QUERY_CHUNK", 2)
    monkeypatch.setattr(commands, "write_frames", watch)
    assert run(endpoint, "query", "cli-db/events", "--format", "csv", "-q") == 0
    rest = capsys.readouterr().out
    assert written[:2] == ["", "kind,id,data\nclick,1,click-1\nclick,2,click-2\n"]  # chunk 1 out before chunk 2 read
    assert "".join(written) + rest == "kind,id,data\nclick,1,click-1\nclick,2,click-2\nview,3,view-3\n"
    assert run(endpoint, "query", "cli-db/events", "kind=none", "--format", "csv") == 0
    assert capsys.readouterr().out == "kind,id,data\n"


def test_an_empty_result_prints_the_header_only(endpoint: str, capsys) -> None:
    assert run(endpoint, "query", "cli-db/events", "kind=none") == 0
    assert capsys.readouterr().out == "kind  id  data\n"


def test_a_table_of_many_chunks_is_aligned_as_one(endpoint: str, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    Table("events", Database("cli-db", endpoint_url=endpoint), ["kind", "id"]).insert_string(
        "a much longer payload than the others", kind="view", id=40)
    monkeypatch.setattr(commands, "QUERY_CHUNK", 1)  # each row its own chunk: the widest comes last
    assert run(endpoint, "query", "cli-db/events", "-q") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and len({len(line) for line in lines}) == 1


def test_a_closed_pipe_ends_the_command_quietly(endpoint: str) -> None:
    command = [sys.executable, "-m", "s3aads_pandas", "--endpoint-url", endpoint, "query", "cli-db/events",
               "--format", "csv", "-q"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # as `| head` does once it has what it wants
    assert child.wait(timeout=120) == 141
    assert child.stderr.read() == ""


def test_count_and_distinct_read_only_the_listing(endpoint: str, capsys) -> None:
    assert run(endpoint, "count", "cli-db/events", "kind=click") == 0
    assert capsys.readouterr().out == "2\n"
    assert run(endpoint, "distinct", "cli-db/events", "kind") == 0
    assert capsys.readouterr().out.split() == ["kind", "click", "view"]
    assert run(endpoint, "distinct", "cli-db/events", "kind,id", "kind=view") == 0
    assert capsys.readouterr().out.split() == ["kind", "id", "view", "3"]
    assert run(endpoint, "distinct", "cli-db/events", "colour") == 1
    assert "colour" in capsys.readouterr().err


def test_export_to_a_missing_folder_fails_before_any_request(endpoint: str, capsys, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "resolve_table", lambda table: pytest.fail("the table was read"))
    assert run(endpoint, "export", "cli-db/events", str(tmp_path / "missing" / "rows.csv")) == 1
    assert f"the folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err


def test_many_failed_rows_are_told_in_a_few_lines(endpoint: str, capsys) -> None:
    table = Table("notes", Database("cli-db", endpoint_url=endpoint), ["id"])
    for id_ in range(8):
        table.insert_string("not JSON", id=id_)
    assert run(endpoint, "query", "cli-db/notes", "--decode", "json", "-q") == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "s3aads: error: read failed for 8 of 8 rows (the others succeeded)"
    assert len(lines) == 3 and "8 x JSONDecodeError" in lines[1] and "notes/2 and 5 more" in lines[1]
    assert "--decode str" in lines[2]


def test_quiet_works_before_the_command_too(endpoint: str, capsys) -> None:
    assert main(["-q", "--endpoint-url", endpoint, "create", "cli-db"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["--endpoint-url", endpoint, "create", "cli-db"]) == 0
    assert capsys.readouterr().err == "database cli-db exists already\n"


def test_a_dataset_import_reads_back_as_rows(endpoint: str, capsys, tmp_path: Path) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("region,day,amount\neu,1,1.5\neu,1,2.5\nus,2,3\n")
    assert run(endpoint, "import", "cli-db/sales", str(sales), "--partition-by", "region,day", "-q") == 0
    assert run(endpoint, "query", "cli-db/sales", "region=eu", "--format", "csv") == 0  # as the record says
    assert capsys.readouterr().out == "region,day,amount\neu,1,1.5\neu,1,2.5\n"
    exported = tmp_path / "back.parquet"
    assert run(endpoint, "export", "cli-db/sales", str(exported)) == 0
    assert "exported 3 rows" in capsys.readouterr().err
    assert pd.read_parquet(exported).to_dict("list") == {
        "region": ["eu", "eu", "us"], "day": ["1", "1", "2"], "amount": [1.5, 2.5, 3.0]}


def test_dataset_names_the_format_of_a_table_without_a_record_of_it(endpoint: str, capsys) -> None:
    db = Database("cli-db", endpoint_url=endpoint)
    Table("older", db, ["region"]).insert(pd.DataFrame({"amount": [1, 2]}).to_parquet(), region="eu")
    assert run(endpoint, "query", "cli-db/older", "--dataset", "parquet", "--format", "csv") == 0
    assert capsys.readouterr().out == "region,amount\neu,1\neu,2\n"


def test_query_to_a_file_says_how_many_rows_it_wrote(endpoint: str, capsys, tmp_path: Path) -> None:
    out = tmp_path / "clicks.csv"
    assert run(endpoint, "query", "cli-db/events", "kind=click", "-o", str(out)) == 0
    assert capsys.readouterr().err == f"wrote 2 rows to {out}\n"
    assert out.read_text().splitlines()[0] == "kind,id,data"


def test_connection_options_work_after_the_command_too(endpoint: str, capsys, tmp_path: Path) -> None:
    assert main(["count", "cli-db/events", "--endpoint-url", endpoint]) == 0
    assert capsys.readouterr().out == "3\n"
    assert main(["--root", "memory://", "create", "here", "--root", f"file://{tmp_path}", "-q"]) == 0  # last wins
    assert (tmp_path / "here").is_dir()


def test_import_checks_the_file_against_the_columns_before_any_request(capsys, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("user_id,date,kind,data\n1,2024-01-01,click,x\n")
    unreachable = "http://127.0.0.1:9"  # a request there would fail with "could not connect"
    assert main(["--endpoint-url", unreachable, "import", "cli-db/t", str(rows), "--columns",
                 "user_id,date,kindd"]) == 1
    err = capsys.readouterr().err
    assert "--columns names kindd, which" in err and "user_id, date, kind, data" in err


def test_ctrl_c_mid_import_says_how_many_rows_landed(tmp_path: Path) -> None:
    with LocalS3(faults=FaultPlan(rate=1.0, kinds=("latency",), latency=0.05)) as slow:  # 50 ms a request
        Database("slow-db", endpoint_url=slow.endpoint_url).create()
        rows = tmp_path / "rows.csv"
        rows.write_text("id,data\n" + "".join(f"{i},row {i}\n" for i in range(3000)))
        child = subprocess.Popen([sys.executable, "-m", "s3aads_pandas", "--endpoint-url", slow.endpoint_url,
                                  "import", "slow-db/t", str(rows), "--columns", "id"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        table = Table("t", Database("slow-db", endpoint_url=slow.endpoint_url), ["id"])
        while child.poll() is None and table.count() < 20:  # some rows have landed
            time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
        landed = table.count()
    assert child.returncode == 130
    assert err.splitlines()[0] == f"s3aads: interrupted: {landed} of 3000 rows written, {3000 - landed} not attempted"
    assert "importing the file again writes them all" in err and "Traceback" not in err


def test_ctrl_c_while_the_command_starts_ends_it_without_a_traceback() -> None:
    starting = textwrap.dedent("""
        import sys

        class CtrlCWhileImporting:  # as if Ctrl-C came while pandas loads
            def find_spec(self, name, path=None, target=None):
                if name == "pandas":
                    raise KeyboardInterrupt

        sys.modules.pop("pandas", None)
        sys.meta_path.insert(0, CtrlCWhileImporting())
        import s3aads_command
        s3aads_command.main()
    """)
    typed = subprocess.run([sys.executable, "-c", starting], capture_output=True, text=True, timeout=120)
    assert (typed.returncode, typed.stderr) == (130, "s3aads: interrupted\n")


def test_export_with_a_cache_fetches_only_what_changed(endpoint: str, capsys, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "events.csv"
    assert run(endpoint, "export", "cli-db/events", str(out), "--cache-dir", str(cache), "-q") == 0
    assert run(endpoint, "export", "cli-db/events", str(out), "--cache-dir", str(cache), "-q", "--usage") == 0
    said = capsys.readouterr().err
    assert "(1 GetObject, " in said  # the record's, answered 304: its row payloads came from the cache
    assert "0 bytes sent, 0 received, 4 payloads from the cache" in said
    assert pd.read_csv(out)["data"].tolist() == ["click-1", "click-2", "view-3"]


def test_usage_says_what_the_command_sent(capsys) -> None:
    assert main(["--root", "memory://", "create", "billed", "-q", "--usage"]) == 0
    assert capsys.readouterr().err == ("s3aads: 2 requests (1 CreateBucket, 1 HeadBucket), 0 bytes sent, "
                                       "0 received, $0.000005 at S3 Standard prices\n")
