"""The key codec on its own: escaping, validation and listing prefixes (no S3 involved)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3aads_pandas import ColumnError, InvalidNameError, InvalidValueError
from s3aads_pandas.tables.keys import (
    MAX_PREFIXES,
    KeyCodec,
    decode_segment,
    encode_segment,
    validate_columns,
    validate_database_name,
    validate_table_name,
)

CODEC = KeyCodec("daily-data", ["id", "year", "month", "day"])


def test_plain_values_give_the_same_key_as_s3aads() -> None:
    assert CODEC.to_key({"id": 1, "year": 2020, "month": "01", "day": "01"}) == "daily-data/1/2020/01/01"
    assert encode_segment("hello world+=&é", "c") == "hello world+=&é"


@pytest.mark.parametrize(
    ("value", "segment"),
    [("a/b", "a%2Fb"), ("50%", "50%25"), (".", "%2E"), ("..", "%2E%2E"), ("...", "..."), ("%2F", "%252F"),
     ("a.b", "a.b")],
)
def test_escapes(value: str, segment: str) -> None:
    assert encode_segment(value, "c") == segment
    assert decode_segment(segment) == value


@given(st.text(min_size=1))
def test_every_non_empty_string_round_trips(value: str) -> None:
    segment = encode_segment(value, "c")
    assert "/" not in segment and segment not in {".", ".."}
    assert decode_segment(segment) == value


@pytest.mark.parametrize("missing", [None, math.nan, float("nan"), ""])
def test_missing_and_empty_values_are_refused_naming_the_column(missing: object) -> None:
    with pytest.raises(InvalidValueError, match="'year'"):
        CODEC.to_key({"id": 1, "year": missing, "month": "01", "day": "01"})


def test_missing_and_unknown_columns_are_refused() -> None:
    with pytest.raises(ColumnError, match=r"missing value for column.*day"):
        CODEC.to_key({"id": 1, "year": 2020, "month": "01"})
    with pytest.raises(ColumnError, match=r"unknown column.*'hour'"):
        CODEC.to_key({"id": 1, "year": 2020, "month": "01", "day": "01", "hour": 3})
    with pytest.raises(KeyError):  # still a KeyError for callers that catch builtins
        CODEC.to_key({})


def test_keys_over_the_s3_limit_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="1024"):
        CODEC.to_key({"id": "x" * 1100, "year": 2020, "month": "01", "day": "01"})


@pytest.mark.parametrize("name", ["My_Bucket", "ab", "-abc", "a" * 64, "a..b", "192.168.1.1", "xn--abc", "abc-"])
def test_database_names_follow_bucket_rules(name: str) -> None:
    with pytest.raises(InvalidNameError, match="bucket naming rules"):
        validate_database_name(name)


def test_valid_database_names() -> None:
    for name in ["joeyism-test", "abc", "my.bucket.1"]:
        assert validate_database_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", ".", ".."])
def test_invalid_table_names(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_table_name(name)


@pytest.mark.parametrize(
    ("columns", "message"),
    [(["data"], "reserved"), (["metadata"], "reserved"), ([""], "non-empty"), ([" "], "non-empty"),
     (["a\nb"], "printable"), ([7], "strings"), (["id", "id"], "more than once"), ("id", "list of names")],
)
def test_invalid_columns(columns: object, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message):
        validate_columns(columns)  # type: ignore[arg-type]


def test_names_that_are_not_identifiers_are_columns() -> None:
    assert validate_columns(["user-id", "class", "a b", "1a", "ünï"]) == ("user-id", "class", "a b", "1a", "ünï")


def test_listing_prefixes_narrow_on_leading_columns_only() -> None:
    encode = CODEC.encode_filters
    assert CODEC.listing_prefixes(encode({})) == ["daily-data/"]
    assert CODEC.listing_prefixes(encode({"id": 1})) == ["daily-data/1/"]
    assert CODEC.listing_prefixes(encode({"year": 2020})) == ["daily-data/"]
    assert CODEC.listing_prefixes(encode({"id": 1, "year": 2020, "day": "01"})) == ["daily-data/1/2020/"]
    assert CODEC.listing_prefixes(encode({"id": [1, 2], "year": 2020})) == ["daily-data/1/2020/", "daily-data/2/2020/"]
    full = encode({"id": 1, "year": 2020, "month": "01", "day": "01"})
    assert CODEC.listing_prefixes(full) == ["daily-data/1/2020/01/01"]


def test_listing_prefixes_stop_narrowing_before_too_many_combinations() -> None:
    many = list(range(MAX_PREFIXES))
    prefixes = CODEC.listing_prefixes(CODEC.encode_filters({"id": many, "year": [2020, 2021]}))
    assert len(prefixes) == MAX_PREFIXES
    assert all(p.count("/") == 2 for p in prefixes)


def test_split_rejects_keys_of_other_depths() -> None:
    assert CODEC.split("daily-data/1/2020/01/01") == ["1", "2020", "01", "01"]
    assert CODEC.split("daily-data/1/2020/01") is None
    assert CODEC.split("daily-data/1/2020/01/01/extra") is None
    assert CODEC.split("daily-data/1//01/01") is None
    assert CODEC.split("other/1/2020/01/01") is None
