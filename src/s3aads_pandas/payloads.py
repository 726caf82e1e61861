"""Payload codecs: how a row's bytes become a Python value and back, and how a group of rows
becomes one object in dataset mode (Parquet, CSV, JSON lines)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, Union

import pandas as pd

from .errors import InvalidArgumentError, PayloadTypeError

Decoder = Callable[[bytes], Any]
Encoder = Callable[[Any], bytes]
Codec = Union[str, Callable[..., Any], None]

DECODERS: dict[str, Decoder] = {
    "bytes": lambda data: data,
    "str": lambda data: data.decode("utf-8"),
    "json": json.loads,
}


def decoder(decode: Codec) -> Decoder:
    """``"bytes"`` (as stored), ``"str"`` (UTF-8), ``"json"``, or a callable taking bytes."""
    if callable(decode):
        return decode
    if decode is None:
        return DECODERS["bytes"]
    if decode in DECODERS:
        return DECODERS[decode]
    raise InvalidArgumentError(
        f"decode must be one of {', '.join(map(repr, DECODERS))} or a callable, got {decode!r}"
    )


def bytes_like(value: Any) -> bytes | None:
    """``value`` as bytes when it is bytes, bytearray or memoryview; else None."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return None


def _raw(value: Any) -> bytes:
    raw = bytes_like(value)
    if raw is not None:
        return raw
    if isinstance(value, str):
        return value.encode("utf-8")
    raise PayloadTypeError(
        f"payload must be bytes or str, got {type(value).__name__}: pass encode='json' or a "
        "callable that returns bytes"
    )


ENCODERS: dict[str, Encoder] = {
    "bytes": _raw,
    "json": lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8"),
}


def encoder(encode: Codec) -> Encoder:
    """None (bytes as they are, str as UTF-8, anything else refused), ``"json"``, or a callable."""
    if encode is None:
        return _raw
    if callable(encode):
        return lambda value: _raw(encode(value))
    if encode in ENCODERS:
        return ENCODERS[encode]
    raise InvalidArgumentError(
        f"encode must be one of {', '.join(map(repr, ENCODERS))}, a callable or None, got {encode!r}"
    )


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
