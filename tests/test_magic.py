"""The %%s3aads and %s3aads magics in a real IPython shell."""

from __future__ import annotations

import atexit
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from s3aads_pandas import ConnectionSettings, Database, MagicError, Table, configure

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)


@pytest.fixture
def table(db: Database) -> Table:
    table = Table("daily-data", db, ["id", "year", "month"])
    rows = [(1, 2019, "01"), (1, 2020, "02"), (2, 2020, "03"), (10, 2021, "01"), (3, 2021, "12")]
    pd.DataFrame(
        {"id": [r[0] for r in rows], "year": [r[1] for r in rows], "month": [r[2] for r in rows],
         "data": [f"{r[0]}-{r[1]}" for r in rows]}
    ).s3aads.write(table)
    return table


@pytest.fixture(scope="module")
def ipython() -> Iterator[InteractiveShell]:
    """One shell for the module: every shell left behind runs a full garbage collection at exit."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "s3aads_pandas")
    yield shell
    shell.atexit_operations()  # now, on this module's heap, rather than at interpreter exit
    atexit.unregister(shell.atexit_operations)
    InteractiveShell.clear_instance()


@pytest.fixture
def shell(ipython: InteractiveShell, table: Table) -> Iterator[InteractiveShell]:
    ipython.user_ns["daily"] = table
    yield ipython
    ipython.user_ns.pop("daily", None)


def run(shell: InteractiveShell, code: str) -> Any:
    result = shell.run_cell(code, store_history=False)
    if result.error_before_exec or result.error_in_exec:
        raise result.error_before_exec or result.error_in_exec
    return result.result


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["id"].tolist()


def test_select_star_gives_key_columns_and_data(shell: InteractiveShell) -> None:
    frame = run(shell, "%%s3aads\nSELECT * FROM daily WHERE id = 2")
    assert frame.to_dict("records") == [{"id": "2", "year": "2020", "month": "03", "data": b"2-2020"}]


def test_key_columns_only_fetch_no_payloads_and_filters_narrow_the_prefix(shell, table, count_requests) -> None:
    counter = count_requests(table.database)
    frame = run(shell, "%%s3aads\nSELECT id, month FROM daily WHERE id = 1 AND year IN (2019, 2020)")
    assert frame.to_dict("list") == {"id": ["1", "1"], "month": ["01", "02"]}
    assert dict(counter.operations) == {"ListObjectsV2": 2}
    assert sorted(p["Prefix"] for p in counter.params("ListObjectsV2")) == ["daily-data/1/2019/", "daily-data/1/2020/"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("year > 2020", ["10", "3"]),
        ("year >= 2020 AND month <> '01'", ["1", "2", "3"]),
        ("year BETWEEN 2019 AND 2020", ["1", "1", "2"]),
        ("id < 3", ["1", "1", "2"]),  # numeric: '10' is not < 3
        ("id < '3'", ["1", "1", "10", "2"]),  # text comparison
        ("month LIKE '0%'", ["1", "1", "10", "2"]),
        ("NOT month LIKE '0_'", ["3"]),
        ("id = 1 OR month = '12'", ["1", "1", "3"]),
        ("(id = 2 OR id = 3) AND year = 2021", ["3"]),
        ("id IN (2, 3) OR year = 2019", ["1", "2", "3"]),
        ("2020 < year", ["10", "3"]),
    ],
)
def test_where_conditions(shell: InteractiveShell, where: str, expected: list[str]) -> None:
    assert ids(run(shell, f"%%s3aads\nSELECT id FROM daily WHERE {where}")) == expected


def test_order_by_limit_distinct_count(shell: InteractiveShell) -> None:
    assert ids(run(shell, "%%s3aads\nSELECT id FROM daily ORDER BY id::INT DESC")) == ["10", "3", "2", "1", "1"]
    assert ids(run(shell, "%%s3aads\nSELECT id FROM daily ORDER BY id DESC")) == ["3", "2", "10", "1", "1"]  # text
    assert ids(run(shell, "%%s3aads\nSELECT id FROM daily ORDER BY year DESC, id LIMIT 2")) == ["10", "3"]
    assert len(run(shell, "%%s3aads --limit 3\nSELECT id, data FROM daily")) == 3
    assert len(run(shell, "%%s3aads --limit 3\nSELECT id FROM daily LIMIT 2")) == 2
    years = run(shell, "%%s3aads\nSELECT DISTINCT year FROM daily ORDER BY year")["year"]
    assert years.tolist() == ["2019", "2020", "2021"]
    assert run(shell, "%%s3aads\nSELECT COUNT(*) AS n FROM daily WHERE year = 2020").to_dict("list") == {"n": [2]}


def test_payloads_fetched_only_after_limit(shell, table, count_requests) -> None:
    counter = count_requests(table.database)
    frame = run(shell, "%%s3aads\nSELECT data FROM daily ORDER BY id LIMIT 2")
    assert frame["data"].tolist() == [b"1-2019", b"1-2020"]
    assert counter.operations["GetObject"] == 2


def test_qualified_names_and_database_option(shell: InteractiveShell, db: Database) -> None:
    quoted = run(shell, f'%%s3aads\nSELECT id FROM "{db.name}"."daily-data" WHERE year = 2021')
    assert ids(quoted) == ["10", "3"]
    assert ids(run(shell, f'%%s3aads --database {db.name}\nSELECT id FROM "daily-data" WHERE id = 3')) == ["3"]


def test_show_tables_and_describe(shell: InteractiveShell, db: Database) -> None:
    tables = run(shell, f'%%s3aads\nSHOW TABLES FROM "{db.name}"')
    assert tables.to_dict("list") == {"table": ["daily-data"], "columns": ["id, year, month"]}
    assert run(shell, f"%s3aads --database {db.name} SHOW TABLES")["table"].tolist() == ["daily-data"]
    described = run(shell, "%%s3aads\nDESCRIBE daily")
    assert described.to_dict("list") == {"column": ["id", "year", "month"], "position": [1, 2, 3], "rows": [5, 5, 5]}


def test_delete_reports_how_many_and_needs_force_without_where(shell: InteractiveShell, table: Table) -> None:
    assert run(shell, "%%s3aads\nDELETE FROM daily WHERE year = 2021").to_dict("list") == {"deleted": [2]}
    assert table.count() == 3
    with pytest.raises(MagicError, match="--force"):
        run(shell, "%%s3aads\nDELETE FROM daily")
    assert table.count() == 3
    assert run(shell, "%%s3aads --force\nDELETE FROM daily").to_dict("list") == {"deleted": [3]}
    assert table.count() == 0


def test_parameters_are_bound_as_values_never_as_sql(shell: InteractiveShell) -> None:
    shell.user_ns["wanted"] = 2020
    assert ids(run(shell, "%%s3aads\nSELECT id FROM daily WHERE year = :wanted")) == ["1", "2"]
    shell.user_ns["sneaky"] = "1' OR '1'='1"
    assert run(shell, "%%s3aads\nSELECT id FROM daily WHERE id = :sneaky").empty
    with pytest.raises(MagicError, match=":missing is not defined"):
        run(shell, "%%s3aads\nSELECT id FROM daily WHERE id = :missing")


def test_results_can_be_stored_and_assigned(shell: InteractiveShell) -> None:
    run(shell, "%%s3aads -o recent --no-progress\nSELECT id FROM daily WHERE year = 2021")
    assert ids(shell.user_ns["recent"]) == ["10", "3"]
    run(shell, "df = %s3aads SELECT id FROM daily WHERE id = 10")
    assert ids(shell.user_ns["df"]) == ["10"]


def test_endpoint_url_option(local_s3) -> None:
    local_s3.reset()
    remote = Database("elsewhere", endpoint_url=local_s3.endpoint_url)
    remote.create()
    Table("t", remote, ["id"]).insert(b"x", id=2)
    configure(endpoint_url="http://127.0.0.1:9")  # the default points where nothing listens
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "s3aads_pandas")
        frame = run(shell, f"%%s3aads --endpoint-url {local_s3.endpoint_url}\nSELECT id FROM elsewhere.t")
        assert ids(frame) == ["2"]
    finally:
        InteractiveShell.clear_instance()
        configure(ConnectionSettings())


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("SELECT * FROM nowhere", "unknown table 'nowhere'"),
        ('SELECT * FROM "{db}"."nowhere"', "unknown table 'nowhere' in database '{db}'"),
        ("SELECT colour FROM daily", "unknown column 'colour'"),
        ("SELECT id FROM daily WHERE colour = 1", "unknown column 'colour'"),
        ("SELECT id FROM daily JOIN other ON daily.id = other.id", "unknown table 'other'"),
        ("SELECT id, count(*) FROM daily", 'column "id" must appear in the GROUP BY clause'),
        ("SELECT id FROM daily WHERE id + 1 = 2", "key columns are text, so cast them, such as SUM(id::INT)"),
        ("SELECT SUM(id) FROM daily", "sum(VARCHAR) does not exist: key columns are text"),
        ("SELECT * FROM daily, a.b.c", "FROM needs a table name or database.table"),
        ("SELEC * FROM daily", "not 'SELEC': did you mean SELECT?"),
        ("SELECT * FROM daily WHERE (", "syntax error"),
        ("SELECT * FROM daily WHERE id = 'unclosed", "a quote (' or \") that is not closed"),
        ("SELECT * FROM daily WHERE id =", "= is incomplete: it needs a value after it"),
        ("SELECT * FROM WHERE", "Expected table name but got 'WHERE'"),
        ('SELECT * FROM "no-such-db"."t"', "database 'no-such-db' does not exist"),
        ("INSERT INTO daily VALUES (1)", "unsupported statement"),
    ],
)
def test_user_errors_are_one_line_and_fail_the_cell(shell: InteractiveShell, db: Database, capsys, cell: str,
                                                     message: str) -> None:
    cell, message = cell.replace("{db}", db.name), message.replace("{db}", db.name)
    result = shell.run_cell(f"%%s3aads\n{cell}", store_history=False)
    assert isinstance(result.error_in_exec, MagicError)
    assert message in str(result.error_in_exec)
    shown = capsys.readouterr().out.strip()
    assert "Traceback" not in shown and len(shown.splitlines()) == 1
    assert shown.startswith("MagicError: ") and message in shown


def test_the_magic_says_its_options_in_its_help(ipython: InteractiveShell) -> None:
    help_text = ipython.find_cell_magic("s3aads").__doc__  # what %%s3aads? shows
    assert help_text.startswith("::\n\n  %s3aads [-o NAME] [--database DB] [--limit N] [--decode CODEC]")
    assert re.search(r"--decode CODEC +how the payload column reads: bytes, str, json", help_text)
    assert "let a DELETE without WHERE delete every row" in help_text


def test_bad_options_are_one_line_errors(shell: InteractiveShell) -> None:
    with pytest.raises(MagicError, match="no statement given"):
        run(shell, "%s3aads --limit 3")
    with pytest.raises(MagicError, match="unknown option '--colour'"):
        run(shell, "%%s3aads --colour red\nSELECT id FROM daily")
    with pytest.raises(MagicError, match="--limit takes a whole number"):
        run(shell, "%%s3aads --limit many\nSELECT id FROM daily")
    with pytest.raises(MagicError, match="put the SQL in the cell"):
        run(shell, "%%s3aads SELECT 1\nSELECT id FROM daily")
    with pytest.raises(MagicError, match="option --database needs a value"):
        run(shell, "%%s3aads --explain --database\nSELECT id FROM daily")


def test_columns_that_are_not_identifiers_are_quoted(shell: InteractiveShell, table: Table) -> None:
    odd = Table("odd", table.database, ["user-id", "class"])
    odd.insert(b"a", **{"user-id": 7, "class": "x"})
    odd.insert(b"b", **{"user-id": 8, "class": "y"})
    shell.user_ns["odd"] = odd
    frame = run(shell, '%%s3aads\nSELECT "user-id", "class" FROM odd WHERE "user-id" = \'8\'')
    assert frame.to_dict("records") == [{"user-id": "8", "class": "y"}]
    frame = pd.read_s3aads(odd, **{"class": "x"})
    assert frame.to_dict("records") == [{"user-id": "7", "class": "x", "data": b"a"}]


# -- DuckDB: the whole of SQL on listed rows ------------------------------------------------------


@pytest.fixture
def orders(db: Database, shell: InteractiveShell) -> Iterator[Table]:
    """A second table, with JSON payloads, and a DataFrame of the namespace to join with."""
    orders = Table("orders", db, ["customer", "order_id"])
    frame = pd.DataFrame({"customer": ["1", "1", "2", "10"], "order_id": ["a", "b", "c", "d"],
                          "data": [{"price": p, "item": i}
                                   for p, i in [(5, "pen"), (7, "ink"), (3, "pen"), (9, "cap")]]})
    frame.s3aads.write(orders, encode="json")
    shell.user_ns["orders"] = orders
    shell.user_ns["names"] = pd.DataFrame({"customer": ["1", "2"], "name": ["Ada", "Bo"]})
    yield orders
    shell.user_ns.pop("orders", None)
    shell.user_ns.pop("names", None)


def test_group_by_and_aggregates(shell: InteractiveShell) -> None:
    frame = run(shell, "%%s3aads\nSELECT year, COUNT(*) AS n, MIN(month) AS first, MAX(id::INT) AS top "
                       "FROM daily GROUP BY year HAVING COUNT(*) > 1 ORDER BY year")
    assert frame.to_dict("records") == [{"year": "2020", "n": 2, "first": "02", "top": 2},
                                        {"year": "2021", "n": 2, "first": "01", "top": 10}]


def test_join_across_tables_and_with_a_dataframe(shell, orders, table, count_requests) -> None:
    counter = count_requests(table.database)
    frame = run(shell, "%%s3aads\nSELECT d.id, d.year, o.order_id, n.name FROM daily d "
                       "JOIN orders o ON o.customer = d.id JOIN names n ON n.customer = d.id "
                       "WHERE d.year = 2020 ORDER BY o.order_id")
    assert frame.to_dict("records") == [{"id": "1", "year": "2020", "order_id": "a", "name": "Ada"},
                                        {"id": "1", "year": "2020", "order_id": "b", "name": "Ada"},
                                        {"id": "2", "year": "2020", "order_id": "c", "name": "Bo"}]
    assert "GetObject" not in counter.operations  # no payload referenced, none fetched
    assert sorted(p["Prefix"] for p in counter.params("ListObjectsV2")) == ["daily-data/", "orders/"]


def test_decode_json_fields_usable_in_sql(shell: InteractiveShell, orders: Table) -> None:
    frame = run(shell, "%%s3aads --decode json\nSELECT data->>'item' AS item, SUM((data->>'price')::INT) AS total "
                       "FROM orders WHERE (data->>'price')::INT > 3 GROUP BY item ORDER BY item")
    assert frame.to_dict("records") == [
        {"item": "cap", "total": 9}, {"item": "ink", "total": 7}, {"item": "pen", "total": 5}
    ]
    whole = run(shell, "%%s3aads --decode json\nSELECT order_id, data FROM orders WHERE customer = '2'")
    assert whole.to_dict("records") == [{"order_id": "c", "data": {"price": 3, "item": "pen"}}]
    text = run(shell, "%%s3aads --decode str\nSELECT data FROM orders WHERE order_id = 'd'")
    assert text["data"].tolist() == ['{"price": 9, "item": "cap"}']


def test_json_payloads_joined_in_duckdb(shell: InteractiveShell, orders: Table) -> None:
    frame = run(shell, "%%s3aads --decode json\nSELECT o.customer, n.name, o.data.price AS price FROM orders o "
                       "LEFT JOIN names n USING (customer) ORDER BY o.order_id")
    assert frame["customer"].tolist() == ["1", "1", "2", "10"] and frame["price"].tolist() == [5, 7, 3, 9]
    assert frame["name"].tolist()[:3] == ["Ada", "Ada", "Bo"] and pd.isna(frame["name"].iloc[3])


def test_payloads_only_for_rows_that_survive_where_and_limit(shell, table, count_requests) -> None:
    counter = count_requests(table.database)
    frame = run(shell,
                "%%s3aads\nSELECT id, data AS payload FROM daily WHERE month LIKE '0%' ORDER BY id::INT DESC LIMIT 2")
    assert frame.to_dict("records") == [{"id": "10", "payload": b"10-2021"}, {"id": "2", "payload": b"2-2020"}]
    assert counter.operations["GetObject"] == 2


def test_data_used_in_where_fetches_the_listed_rows(shell, table, count_requests) -> None:
    counter = count_requests(table.database)
    frame = run(shell, "%%s3aads\nSELECT id FROM daily WHERE year = 2020 AND data = '2-2020'::BLOB")
    assert frame["id"].tolist() == ["2"]
    assert counter.operations["GetObject"] == 2  # the two rows of 2020, listed under nothing narrower


def test_limit_stops_the_listing_early(shell, db, count_requests, seed) -> None:
    big = Table("big", db, ["n"])
    big.insert(b"x", n=0)  # records the columns
    seed(db.name, [f"big/{n}" for n in range(1, 2500)], b"x")
    shell.user_ns["big"] = big
    counter = count_requests(db)
    frame = run(shell, "%%s3aads\nSELECT n FROM big WHERE n LIKE '1%' LIMIT 3")
    assert len(frame) == 3 and all(n.startswith("1") for n in frame["n"])
    assert counter.operations["ListObjectsV2"] == 1  # the first page held enough
    assert len(run(shell, "%%s3aads\nSELECT n FROM big WHERE n LIKE '1%'")) == 1111


def test_explain_shows_the_plan_and_runs_nothing(shell, table, orders, count_requests) -> None:
    counter = count_requests(table.database)
    plan = run(shell, "%%s3aads --explain\nSELECT d.id, d.data, n.name FROM daily d JOIN names n ON n.customer = d.id "
                      "WHERE d.id IN (1, 2) AND d.month = '02'")
    text = str(plan)
    assert "LIST 2 prefixes: daily-data/1/, daily-data/2/" in text
    assert "applied to the listing: month IN ('02')" in text
    assert "payloads of every listed row" in text
    assert "DataFrame: names (2 rows, from the notebook)" in text
    assert "DuckDB runs:" in text and 'FROM s3aads_0 AS "d" JOIN frame_0 AS "n"' in text
    assert counter.operations == {}
    assert "payloads of the result's rows only" in str(run(shell, "%%s3aads --explain\nSELECT data FROM daily LIMIT 1"))
    assert "stops once 1 rows match" in str(run(shell, "%%s3aads --explain\nSELECT id FROM daily LIMIT 1"))
    deleting = str(run(shell, "%%s3aads --explain\nDELETE FROM daily WHERE id = 1"))
    assert "DeleteObjects" in deleting
    assert counter.operations == {}
    assert table.count() == 5


def test_a_statement_says_what_it_sent_and_cost(shell: InteractiveShell, capsys) -> None:
    shell.run_cell("%%s3aads\nSELECT id, data FROM daily WHERE id = 2", store_history=False)
    shown = capsys.readouterr().out
    assert "2 requests · 6 B · $0.000005" in shown.splitlines()  # one LIST, one GET of a 6-byte payload
    shell.run_cell("%%s3aads --quiet\nSELECT id, data FROM daily WHERE id = 2", store_history=False)
    assert "requests" not in capsys.readouterr().out


@pytest.mark.s3_only
def test_a_statement_run_again_reads_unchanged_payloads_from_the_cache(shell: InteractiveShell, table: Table,
                                                                       count_requests, tmp_path) -> None:
    cached = Database(table.database.name, table.database.settings.replace(cache=str(tmp_path)))
    shell.user_ns["cached"] = Table(table.name, cached, table.columns)
    statements = ["%%s3aads --quiet\nSELECT id, data FROM cached",  # payloads of the result's rows, then of every row:
                  "%%s3aads --quiet --decode str\nSELECT count(*) AS n FROM cached WHERE data LIKE '%2020%'"]
    first = [run(shell, statement) for statement in statements]
    counter = count_requests(cached)
    again = [run(shell, statement) for statement in statements]
    assert dict(counter.operations) == {"ListObjectsV2": 2}  # each statement's listing, and no GET
    for before, after in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(before, after)
    assert again[1]["n"].tolist() == [2]


def test_explain_estimates_the_cost(shell: InteractiveShell) -> None:
    text = str(run(shell, "%%s3aads --explain\nSELECT data FROM daily WHERE id IN (1, 2, 3)"))
    assert "LIST: at least 3 requests ($0.000015), one more per further 1,000 keys listed" in text
    assert "GET: one per row fetched, $0.0004 per 1,000 rows" in text
    assert "GET: none" in str(run(shell, "%%s3aads --explain\nSELECT id FROM daily"))


def test_explain_is_shown_as_text(shell: InteractiveShell, capsys) -> None:
    shell.run_cell("%%s3aads --explain\nSELECT id FROM daily WHERE id = 3", store_history=False)
    shown = capsys.readouterr().out
    assert "Plan (nothing has run)" in shown and "LIST 1 prefix: daily-data/3/" in shown
    assert "'" not in shown.split("\n")[0]


def test_bad_decode_is_refused(shell: InteractiveShell) -> None:
    with pytest.raises(MagicError, match="--decode takes one of bytes, str, json, got 'yaml'"):
        run(shell, "%%s3aads --decode yaml\nSELECT * FROM daily")


def test_a_payload_that_is_not_json_is_named(shell: InteractiveShell, orders: Table) -> None:
    orders.insert(b"<not json>", customer=7, order_id="z")
    with pytest.raises(MagicError, match=r"the payload of orders row customer='7', order_id='z' is not JSON"):
        run(shell, "%%s3aads --decode json\nSELECT data->>'item' AS item FROM orders")


def test_an_offset_known_only_to_duckdb_does_not_stop_the_listing_early(shell: InteractiveShell) -> None:
    frame = run(shell, "%%s3aads\nSELECT id FROM daily LIMIT 2 OFFSET (1 + 2)")
    assert len(frame) == 2


def test_a_delete_of_database_table_resolves_it_once(shell: InteractiveShell, table: Table, monkeypatch) -> None:
    looked_up: list[str] = []
    real = Database.get_table

    def counted(self, name, *args, **kwargs):
        looked_up.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(Database, "get_table", counted)
    deleted = run(shell, f'%%s3aads\nDELETE FROM "{table.database.name}"."daily-data" WHERE year = 2019')
    assert deleted.to_dict("list") == {"deleted": [1]} and looked_up == ["daily-data"]
    assert table.count() == 4


def test_a_database_url_names_the_database(shell: InteractiveShell, table: Table) -> None:
    url = table.database.url  # s3://..., memory://... or file:///...
    by_option = shell.run_cell_magic("s3aads", f"--database {url}", 'SELECT count(*) AS n FROM "daily-data"')
    by_name = shell.run_cell_magic("s3aads", "", f'SELECT count(*) AS n FROM "{url}"."daily-data"')
    assert by_option["n"].tolist() == by_name["n"].tolist() == [5]


@pytest.mark.parametrize("cell", ["SELECT colour FROM daily", "SELECT SUM(id) FROM daily",
                                  "SELECT d.id FROM daily d JOIN orders o ON o.customr = d.id"])
def test_a_mistake_in_a_column_is_told_before_any_listing(shell, orders, table, count_requests, cell: str) -> None:
    counter = count_requests(table.database)
    result = shell.run_cell(f"%%s3aads\n{cell}", store_history=False)
    assert isinstance(result.error_in_exec, MagicError)
    assert "ListObjectsV2" not in counter.operations and "GetObject" not in counter.operations


def test_a_json_operator_on_payloads_read_as_bytes_names_the_decode_it_needs(shell, orders) -> None:
    result = shell.run_cell("%%s3aads\nSELECT order_id, data->>'price' AS price FROM orders", store_history=False)
    assert isinstance(result.error_in_exec, MagicError)
    assert "reads JSON, and the payloads are read as bytes (as stored): give --decode json" in str(
        result.error_in_exec)
    frame = run(shell, "%%s3aads --decode json\nSELECT order_id, data->>'price' AS price FROM orders ORDER BY 1")
    assert frame["price"].tolist() == ["5", "7", "3", "9"]
