"""Dataset formats: how a group of rows becomes one object in dataset mode (Parquet, CSV, JSON
lines), and how its columns are learned from part of it. Payloads of single rows: ``codecs``."""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd

from s3aads_pandas.errors import InvalidArgumentError, PayloadTypeError


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def _to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def _to_jsonl(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")


FORMATS: dict[str, tuple[Callable[[pd.DataFrame], bytes], Callable[[bytes], pd.DataFrame]]] = {
    "parquet": (_to_parquet, lambda data: pd.read_parquet(io.BytesIO(data), engine="pyarrow")),
    "csv": (_to_csv, lambda data: pd.read_csv(io.BytesIO(data))),
    "jsonl": (_to_jsonl, lambda data: pd.read_json(io.BytesIO(data), orient="records", lines=True)),
}


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return format


def frame_to_bytes(frame: pd.DataFrame, format: str) -> bytes:
    return FORMATS[check_format(format)][0](frame)


def bytes_to_frame(data: bytes, format: str) -> pd.DataFrame:
    return FORMATS[check_format(format)][1](data)


#: Bytes read from a dataset object to learn its columns and types, rather than all of it.
SAMPLE_BYTES = 64 * 1024

#: ``read_range("bytes=...")``: that part of one object, and the object's full size.
RangeReader = Callable[[str], tuple[bytes, int]]


def empty_frame_like(read_range: RangeReader, format: str, where: str) -> pd.DataFrame:
    """No rows, but the columns and types of the dataset object ``where``, from a part of it.

    Parquet keeps its schema in a footer at the end: one ranged GET, two for a footer larger
    than :data:`SAMPLE_BYTES`. CSV and JSON Lines are typed from their first complete lines, as
    pandas would type a file that short; the whole object is read only if those do not parse.
    """
    if check_format(format) == "parquet":
        return _parquet_columns(read_range, where)
    head, size = read_range(f"bytes=0-{SAMPLE_BYTES - 1}")
    if len(head) < size:
        head = head[: head.rfind(b"\n") + 1]
    try:
        sample = bytes_to_frame(head, format) if head else None
    except ValueError:  # pandas' parser errors: a quoted field cut by the sample, say
        sample = None
    if sample is None and size:
        sample = bytes_to_frame(read_range(f"bytes=0-{size - 1}")[0], format)
    return pd.DataFrame() if sample is None else sample.iloc[0:0]


def _parquet_columns(read_range: RangeReader, where: str) -> pd.DataFrame:
    tail, size = read_range(f"bytes=-{SAMPLE_BYTES}")
    if not size:
        return pd.DataFrame()
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise PayloadTypeError(
            f"{where} is not a parquet file (it does not end with PAR1): read the table with the "
            "format it was written in"
        )
    footer = int.from_bytes(tail[-8:-4], "little") + 8  # the metadata, its length, and PAR1
    if footer > len(tail):
        tail, _ = read_range(f"bytes=-{footer}")
    import pyarrow as pa  # imported on first use: pyarrow.parquet takes a while to load
    import pyarrow.parquet as pq

    schema = pq.read_schema(pa.BufferReader(b"PAR1" + tail[-footer:]))
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)  # typed by the same path as the data will be
    return bytes_to_frame(buffer.getvalue(), "parquet")
