"""Payload codecs: how a row's bytes become a Python value and back, and how SQL sees them.

Every surface reads this one registry: ``decode=`` of ``read_s3aads``, ``fetch`` and Dask,
``encode=`` of ``df.s3aads.write``, the explorer's Decode toggle, and the ``--decode`` choices of
the ``%%s3aads`` magic and the CLI. A new codec is one entry of :data:`CODECS`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from s3aads_pandas.errors import InvalidArgumentError, PayloadTypeError
from s3aads_pandas.tables.datastore import bytes_like

Decoder = Callable[[bytes], Any]
Encoder = Callable[[Any], bytes]
#: What ``decode=`` and ``encode=`` take: the name of a codec, a callable, or None.
PayloadOption = str | Callable[..., Any] | None


@dataclasses.dataclass(frozen=True)
class PayloadCodec:
    """One way to read payloads, and to write them when ``encode`` is given.

    In SQL, payloads reach DuckDB as ``decode`` gives them; a codec with ``sql_type`` hands
    DuckDB their UTF-8 text instead and has DuckDB cast it (``data::JSON``), so that DuckDB, not
    Python, parses every listed payload.
    """

    name: str
    description: str
    decode: Decoder
    encode: Encoder | None = None
    sql_type: str | None = None


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


CODECS: dict[str, PayloadCodec] = {
    codec.name: codec
    for codec in (
        PayloadCodec("bytes", "as stored", lambda data: data, encode=_raw),
        PayloadCodec("str", "UTF-8 text", lambda data: data.decode("utf-8")),
        PayloadCodec("json", "JSON", json.loads, sql_type="JSON",
                     encode=lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8")),
    )
}


def decoder(decode: PayloadOption) -> Decoder:
    """A codec's name (``"bytes"``, as stored, by default), or a callable taking bytes."""
    if callable(decode):
        return decode
    if decode is None:
        return CODECS["bytes"].decode
    if decode in CODECS:
        return CODECS[decode].decode
    raise InvalidArgumentError(
        f"decode must be one of {', '.join(map(repr, CODECS))} or a callable, got {decode!r}"
    )


def encoder(encode: PayloadOption) -> Encoder:
    """None (bytes as they are, str as UTF-8, anything else refused), a codec's name, or a callable."""
    if encode is None:
        return _raw
    if callable(encode):
        return lambda value: _raw(encode(value))
    codec = CODECS.get(encode)
    if codec is not None and codec.encode is not None:
        return codec.encode
    writable = [name for name, codec in CODECS.items() if codec.encode is not None]
    raise InvalidArgumentError(
        f"encode must be one of {', '.join(map(repr, writable))}, a callable or None, got {encode!r}"
    )
