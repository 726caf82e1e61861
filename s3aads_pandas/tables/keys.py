"""The key codec: rows to S3 keys and back, name validation, and listing prefixes for filters.

A row of table ``t`` with columns ``(c1, ..., cn)`` is the key ``t/seg(v1)/.../seg(vn)``.
``seg(v)`` is ``str(v)`` with ``%`` written ``%25`` and ``/`` written ``%2F``, and a whole segment
``.`` or ``..`` written ``%2E`` / ``%2E%2E``; nothing else changes, so keys of plain values are
byte-identical to those of s3aads 2.x. This is a storage format: keep it stable.
"""

from __future__ import annotations

import fractions
import itertools
import keyword
import math
import numbers
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from s3aads_pandas.errors import (
    ColumnError,
    FloatKeyWarning,
    InvalidNameError,
    InvalidValueError,
    warn_caller,
)
from s3aads_pandas.tables.column_record import record_key

#: S3 refuses keys longer than this many UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Names a column may not take: they are the keyword arguments of ``insert``.
RESERVED_COLUMNS = frozenset({"data", "metadata"})
#: At most this many listing prefixes come out of one filter; past it the prefix stops narrowing.
MAX_PREFIXES = 256

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"[%/]")
_ESCAPES = {"%": "%25", "/": "%2F"}
_UNESCAPE = re.compile(r"%(25|2F|2E)")
_UNESCAPES = {"25": "%", "2F": "/", "2E": "."}


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT: values that have no key segment."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(value != value)  # NaN-likes (numpy.nan, pandas.NA/NaT) are not equal to themselves
    except (TypeError, ValueError):  # pandas.NA refuses bool(); arrays refuse ambiguity
        return type(value).__name__ in {"NAType", "NaTType"}


def encode_segment(value: Any, column: str) -> str:
    """``seg(value)``: the key segment of one column value."""
    if is_missing(value):
        raise InvalidValueError(
            f"column {column!r} has a missing value ({value!r}); every key column needs a value"
        )
    if isinstance(value, (bytes, bytearray)):
        raise InvalidValueError(
            f"column {column!r} got bytes {bytes(value)[:20]!r}; key values must be str or "
            "numbers (decode the bytes first)"
        )
    if is_value_list(value) or isinstance(value, Mapping) or getattr(value, "ndim", False):
        raise InvalidValueError(
            f"column {column!r} got a {type(value).__name__} as its value; a key value is one str "
            "or number (a list of values means 'any of them' only in a filter)"
        )
    text = str(value)
    if text == "":
        raise InvalidValueError(
            f"column {column!r} has an empty value; key segments cannot be empty strings"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidValueError(
            f"column {column!r} has a value that is not valid Unicode text ({text[error.start]!r}, a "
            f"lone surrogate, at position {error.start}); S3 keys are UTF-8: fix or drop that value"
        ) from None
    return _escape(text)


def _escape(text: str) -> str:
    if text == ".":
        return "%2E"
    if text == "..":
        return "%2E%2E"
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def _is_whole_float(value: Any) -> bool:
    """A float such as 1.0, whose key segment "1.0" the integer 1 does not find."""
    if not isinstance(value, numbers.Real) or isinstance(value, (numbers.Integral, fractions.Fraction)):
        return False
    return math.isfinite(value) and float(value).is_integer()


def decode_segment(segment: str) -> str:
    """The value a key segment stands for (inverse of :func:`encode_segment`)."""
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], segment)


def is_canonical(segment: str) -> bool:
    """Whether ``segment`` is exactly what :func:`encode_segment` writes for the value it decodes
    to. Segments other tools write (``%``, ``a%20b``, ``.``) are not: read as values they would
    alias another row (``t/%`` and ``t/%25`` both read as ``%``) or name no key at all."""
    if "%" not in segment:
        return segment not in {".", ".."}
    return _escape(decode_segment(segment)) == segment


def validate_database_name(name: Any) -> str:
    """Database names are S3 bucket names; say what the bucket rules are when one breaks them."""
    if not isinstance(name, str):
        raise InvalidNameError(f"database name must be a str, got {type(name).__name__}")
    problem = None
    if not 3 <= len(name) <= 63:
        problem = f"it is {len(name)} characters long (3 to 63 allowed)"
    elif not _BUCKET_NAME.match(name):
        problem = (
            "only lowercase letters, digits, '.' and '-' are allowed, "
            "and it must begin and end with a letter or digit"
        )
    elif ".." in name:
        problem = "it contains '..'"
    elif _IP_ADDRESS.match(name):
        problem = "it looks like an IP address"
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(
            ("-s3alias", "--ol-s3", ".mrap", "--table-s3")):
        problem = "it uses a prefix or suffix that S3 reserves"
    if problem:
        raise InvalidNameError(
            f"invalid database name {name!r}: a database is an S3 bucket and follows S3 bucket "
            f"naming rules; {problem}"
        )
    return name


def validate_folder_name(name: Any) -> str:
    """The names of databases on this machine are one folder name, not hidden."""
    if not isinstance(name, str):
        raise InvalidNameError(f"database name must be a str, got {type(name).__name__}")
    if not name or name.startswith(".") or "/" in name or "\\" in name or _CONTROL.search(name):
        raise InvalidNameError(
            f"invalid database name {name!r}: a database on this machine is one folder, named without "
            "'/' or control characters and not starting with '.'"
        )
    return name


def validate_table_name(name: Any) -> str:
    """Table names are the first key segment: non-empty, without '/', not '.' or '..'."""
    if not isinstance(name, str):
        raise InvalidNameError(f"table name must be a str, got {type(name).__name__}")
    if name in {"", ".", ".."}:
        raise InvalidNameError(f"invalid table name {name!r}: give a non-empty name other than '.' and '..'")
    if "/" in name:
        raise InvalidNameError(
            f"invalid table name {name!r}: it contains '/', which separates columns in the key; "
            "use another character such as '-' or '_'"
        )
    longest = MAX_KEY_BYTES - len(record_key("").encode())
    if len(name.encode("utf-8", "surrogatepass")) > longest:
        raise InvalidNameError(
            f"invalid table name {name[:40]!r}...: it is {len(name.encode('utf-8', 'surrogatepass'))} bytes "
            f"long, and S3 keys hold at most {MAX_KEY_BYTES} bytes, the table's column record "
            f"{record_key('...')!r} among them: give a name of at most {longest} bytes"
        )
    return name


def validate_columns(columns: Iterable[Any]) -> tuple[str, ...]:
    """Columns are distinct non-empty names other than 'data' and 'metadata', without control
    characters. Names that are not identifiers (``user-id``, ``class``) are fine: they are passed
    as ``insert(**{"user-id": 7})``; only the generated methods need identifiers."""
    if isinstance(columns, str):
        raise InvalidNameError(
            f"columns must be a list of names, got the string {columns!r}; write [{columns!r}]"
        )
    result = tuple(columns)
    for column in result:
        if not isinstance(column, str) or not column.strip() or not column.isprintable():
            raise InvalidNameError(
                f"invalid column name {column!r}: column names must be non-empty strings of "
                "printable characters"
            )
        if column in RESERVED_COLUMNS:
            raise InvalidNameError(
                f"invalid column name {column!r}: 'data' and 'metadata' are reserved for the "
                "payload and the S3 parameters; rename the column"
            )
    duplicates = sorted({c for c in result if result.count(c) > 1})
    if duplicates:
        raise InvalidNameError(f"column(s) {', '.join(duplicates)} given more than once")
    return result


def has_methods(column: str) -> bool:
    """Whether ``column`` gets the generated ``<column>s()`` and ``filter_objects_by_<column>``."""
    return column.isidentifier() and not keyword.iskeyword(column)


class KeyCodec:
    """Maps rows of one table to keys and back, and filters to listing prefixes."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = validate_table_name(table)
        self.columns = validate_columns(columns)
        self.prefix = f"{self.table}/"
        self._warned_floats: set[str] = set()

    def encode(self, value: Any, column: str) -> str:
        """``seg(value)``, with a warning (once per column) for whole floats such as 1.0."""
        if column not in self._warned_floats and _is_whole_float(value):
            self._warned_floats.add(column)
            warn_caller(
                f"column {column!r} holds whole floats such as 1.0, whose keys say '1.0': the filter "
                f"{column}=1 will not find them. Convert the column to integers first, for example "
                f'df["{column}"] = df["{column}"].astype("Int64")',
                FloatKeyWarning,
            )
        return encode_segment(value, column)

    def segments(self, values: Mapping[str, Any]) -> list[str]:
        """The key segments of a full row, refusing missing and unknown columns."""
        self.check_known(values)
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise ColumnError(
                f"missing value for column(s) {', '.join(missing)} of table {self.table!r}; "
                f"a row needs all of {', '.join(self.columns)}"
            )
        return [self.encode(values[c], c) for c in self.columns]

    def to_key(self, values: Mapping[str, Any]) -> str:
        """The full S3 key (table prefix included) of a row, checked against S3's size limit."""
        return self.key_of_segments(self.segments(values))

    def key_of_segments(self, segments: Sequence[str]) -> str:
        key = self.prefix + "/".join(segments)
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise InvalidValueError(
                f"the key of this row is {size} bytes long; S3 allows at most {MAX_KEY_BYTES} "
                "bytes, so shorten the column values"
            )
        return key

    def check_known(self, names: Iterable[str]) -> None:
        unknown = [name for name in names if name not in self.columns]
        if unknown:
            raise ColumnError(
                f"unknown column(s) {', '.join(map(repr, unknown))} for table {self.table!r}; "
                f"its columns are: {', '.join(self.columns)}"
            )

    def split(self, key: str) -> list[str] | None:
        """The raw segments of a key of this table, or None when the key is not a row."""
        if not key.startswith(self.prefix):
            return None
        segments = key[len(self.prefix):].split("/")
        if len(segments) != len(self.columns) or "" in segments:
            return None
        return segments

    def decode(self, segments: Sequence[str]) -> dict[str, str]:
        return {c: decode_segment(s) for c, s in zip(self.columns, segments, strict=True)}

    def encode_filters(self, filters: Mapping[str, Any]) -> dict[str, frozenset[str]]:
        """Filters as sets of accepted segments; a list, tuple or set of values means IN."""
        self.check_known(filters)
        encoded = {}
        for column, value in filters.items():
            values = value if is_value_list(value) else [value]
            encoded[column] = frozenset(self.encode(v, column) for v in values)
        return encoded

    def narrowed_columns(self, encoded: Mapping[str, Collection[str]]) -> list[str]:
        """The leading columns whose filters become part of the listing's prefixes: those with
        filters, up to the first without, while their combinations stay within MAX_PREFIXES.
        The filters of the other columns are applied to the listing."""
        narrowed: list[str] = []
        combinations = 1
        for column in self.columns:
            values = encoded.get(column)
            if values is None or combinations * len(values) > MAX_PREFIXES:
                break
            narrowed.append(column)
            combinations *= len(values)
        return narrowed

    def listing_prefixes(self, encoded: Mapping[str, Collection[str]]) -> list[str]:
        """The narrowest prefixes that hold every row matching the filters.

        The narrowed columns (:meth:`narrowed_columns`) become part of the prefix, one prefix per
        combination of their values. A prefix ends with '/' unless it covers every column, so
        that id=1 never lists id=10.
        """
        narrowed = self.narrowed_columns(encoded)
        if not narrowed:
            return [self.prefix]
        complete = len(narrowed) == len(self.columns)
        return [
            self.prefix + "/".join(combo) + ("" if complete else "/")
            for combo in itertools.product(*(sorted(encoded[column]) for column in narrowed))
        ]

    @staticmethod
    def matches(segments: Sequence[str], positions: Mapping[int, Collection[str]]) -> bool:
        return all(segments[i] in accepted for i, accepted in positions.items())

    def first_column_start(self, value: Any) -> str:
        """How the keys of rows with this first-column value start; it sorts as S3 lists them.

        S3 lists keys by their bytes and a segment is followed by '/', so "2024-01" (with '-'
        before '/') is listed before "2024": sorting values by this string gives listing order.
        """
        separator = "/" if len(self.columns) > 1 else ""
        return self.prefix + encode_segment(value, self.columns[0]) + separator

    def positions(self, encoded: Mapping[str, Collection[str]]) -> dict[int, Collection[str]]:
        """Filters keyed by column position, for :meth:`matches`."""
        return {self.columns.index(c): values for c, values in encoded.items()}


def is_value_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) or (
        hasattr(value, "__array__") and getattr(value, "ndim", 0) == 1
    )
