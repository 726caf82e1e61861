"""Tables to and from files: the formats the command reads and writes, and bytes as base64 text."""

from __future__ import annotations

import base64
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from s3aads_pandas.errors import S3aadsError

FILE_FORMATS = ("table", "csv", "json", "parquet")
#: The header suffix of a column of bytes written as base64 text to a CSV or JSON lines file;
#: import decodes such a column back into bytes under its name without the suffix.
BASE64_SUFFIX = ":base64"
_READERS = {"csv": "CSV", "json": "JSON lines", "parquet": "Parquet"}
_SUFFIXES = {"csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "pq": "parquet"}


def format_of(path: str | None, given: str | None) -> str:
    """The format named by ``--format``, else by the file's suffix; "table" for the terminal."""
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    return _SUFFIXES.get(suffix, "table")


def file_format(path: str) -> str:
    """The format of a file to read or write, from its suffix; refused before any request."""
    fmt = format_of(path, None)
    if fmt == "table":
        raise S3aadsError(f"cannot tell the format of {path!r}: use a .csv, .parquet or .jsonl file")
    return fmt


def write_frames(frames: Iterator[pd.DataFrame], output: str | None, fmt: str) -> None:
    """Write frames one after the other as one file, so that the first rows show at once (a
    terminal table is aligned over all its rows, so it is written when they are all read)."""
    if fmt == "parquet":
        if not output:
            raise S3aadsError("--format parquet needs -o FILE: Parquet is binary")
        pd.concat(list(frames), ignore_index=True).to_parquet(output, index=False)
        return
    if fmt == "table":  # one alignment for every row: the table is printed once it is all read
        frames = iter([pd.concat(list(frames), ignore_index=True)])
    with open(output, "w", encoding="utf-8") if output else contextlib.nullcontext(sys.stdout) as stream:
        for number, frame in enumerate(frames):
            stream.write(_text(frame if fmt == "table" else bytes_as_base64(frame), fmt, first=number == 0))
            stream.flush()


def _text(frame: pd.DataFrame, fmt: str, first: bool) -> str:
    if fmt == "table":
        return frame.to_string(index=False) + "\n" if len(frame) else "  ".join(map(str, frame.columns)) + "\n"
    if fmt == "csv":
        return frame.to_csv(index=False, header=first)
    text = frame.to_json(orient="records", lines=True, force_ascii=False) if len(frame) else ""
    return text if not text or text.endswith("\n") else text + "\n"


def bytes_as_base64(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of bytes as base64 text under ``<name>:base64``: text files cannot hold raw bytes."""
    encoded = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object and values.map(lambda v: isinstance(v, bytes)).any():
            encoded[name] = values.map(lambda v: base64.b64encode(v).decode() if isinstance(v, bytes) else v)
    if not encoded:
        return frame
    return frame.assign(**encoded).rename(columns={name: f"{name}{BASE64_SUFFIX}" for name in encoded})


def _base64_as_bytes(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """The inverse of :func:`bytes_as_base64`."""
    for name in [c for c in frame.columns if str(c).endswith(BASE64_SUFFIX)]:
        try:
            decoded = frame[name].map(lambda v: base64.b64decode(v, validate=True))
        except (ValueError, TypeError):
            raise S3aadsError(f"column {name!r} of {path} is not base64 text") from None
        frame = frame.assign(**{name: decoded}).rename(columns={name: name[: -len(BASE64_SUFFIX)]})
    return frame


def read_file(path: str, text_only: bool = True) -> pd.DataFrame:
    """The rows of a CSV, JSON lines or Parquet file, indexed by where each is in the file (so
    that an error about a row names its line); a file that is not one says so in a line.

    ``text_only`` reads every CSV value as text, as keys and payloads are; without it, a CSV's
    columns take the types pandas infers (the columns of a dataset's objects).
    """
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "json":
            frame = pd.read_json(path, orient="records", lines=True, dtype=False)
        else:
            with warnings.catch_warnings():  # a row longer than the header would lose fields
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = (pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False) if text_only
                         else pd.read_csv(path, index_col=False))
    except (OSError, ImportError):
        raise
    except Exception as error:  # each reader has its own errors for a malformed file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise S3aadsError(f"cannot read {path} as {_READERS[fmt]}: {reason}") from None
    if frame.empty and not len(frame.columns):
        raise S3aadsError(f"{path} holds no rows and no columns")
    frame.index = _positions(path, fmt, len(frame))
    return _base64_as_bytes(frame, path)


def _positions(path: str, fmt: str, rows: int) -> pd.RangeIndex:
    """Each row's line in a text file (after a CSV's header), when every row is one line;
    else its number, from 1."""
    if fmt != "parquet":
        with open(path, "rb") as file:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
        header = 1 if fmt == "csv" else 0
        if lines - header in (rows, rows - 1):  # the last line may lack its newline
            return pd.RangeIndex(1 + header, rows + 1 + header, name="line")
    return pd.RangeIndex(1, rows + 1, name="row")
