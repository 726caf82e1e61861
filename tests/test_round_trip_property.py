"""Any non-empty string survives insert -> query -> select -> delete, as a value of any column."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from s3aads_pandas import Database, Table

TRICKY = ["/", "%", ".", "..", " ", "+", "=", "a/b/../c", "%2F", "%25", "?x=1&y", "#", "~", "é/ü", "\\"]

WIRE = False  # behaviour, not the S3 wire: in process and on this machine's databases (see conftest)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=40), other=st.sampled_from(TRICKY))
@example(value="..", other=".")
@example(value="a b+c=d", other="%")
def test_any_value_round_trips(s3: str | None, db: Database, value: str, other: str) -> None:
    # moto's HTTP server cannot serve keys with control characters such as a newline (real S3
    # can): over HTTP they are left to the in-process run, which covers them.
    assume(s3 is None or not any(unicodedata.category(c) == "Cc" for c in value))
    table = Table("prop", db, ["first", "second"])
    table.insert(value.encode(), first=value, second=other)
    assert table.query(first=value) == [{"first": value, "second": other}]
    assert {"first": value, "second": other} in table.query(second=other)
    assert table.select(first=value, second=other) == value.encode()
    assert (value,) in table.distinct(["first"])
    table.delete(first=value, second=other)
    assert table.select(first=value, second=other) is None
