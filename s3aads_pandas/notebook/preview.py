"""Payload previews as HTML: text, pretty JSON, images, or a hex dump; everything escaped."""

from __future__ import annotations

import base64
import html
import json

#: Text longer than this many characters is cut, with a note saying so.
MAX_TEXT_CHARS = 20_000
#: Images larger than this are not inlined.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: How many leading bytes a hex dump shows.
HEX_BYTES = 256

_IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


#: How each kind of image ends: a payload cut short, or damaged at its end, is shown as bytes
#: (a browser would draw a broken-image icon).
_IMAGE_ENDINGS = {"image/png": b"IEND\xaeB`\x82", "image/jpeg": b"\xff\xd9", "image/gif": b";"}
#: Bytes after an image's ending that still count as the image's (padding some writers add).
_TRAILING_BYTES = 32


def image_type(payload: bytes) -> str | None:
    return next((kind for magic, kind in _IMAGE_SIGNATURES.items() if payload.startswith(magic)), None)


def whole_image(payload: bytes, kind: str) -> bool:
    """Whether the image ends as one of its kind ends."""
    return _IMAGE_ENDINGS[kind] in payload[-_TRAILING_BYTES:]


def _size(count: int) -> str:
    return f"{count:,} bytes"


def hex_dump(payload: bytes, limit: int = HEX_BYTES) -> str:
    lines = []
    for offset in range(0, min(len(payload), limit), 16):
        chunk = payload[offset:offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


def render(title: str, payload: bytes | None) -> str:
    """The HTML preview of one row's payload under a heading naming the row (its column values)."""
    head = f"<div class='s3aads-preview-key'><b>{html.escape(title)}</b>"
    if payload is None:
        return f"{head}: <i>no such object (deleted since it was listed?)</i></div>"
    kind = image_type(payload)
    damaged = kind is not None and not whole_image(payload, kind)
    if kind and len(payload) <= MAX_IMAGE_BYTES and not damaged:
        data = base64.b64encode(payload).decode("ascii")
        return (f"{head} ({kind}, {_size(len(payload))})</div>"
                f"<img class='s3aads-preview-image' src='data:{kind};base64,{data}' style='max-width:100%'/>")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or kind:
        cut = f"{str(kind).partition('/')[2].upper()} that is cut short or damaged, " if damaged else ""
        note = f"{cut}binary, {_size(len(payload))}; the first {min(len(payload), HEX_BYTES)} bytes"
        return f"{head} ({note})</div><pre class='s3aads-preview-hex'>{html.escape(hex_dump(payload))}</pre>"
    label = "text"
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        label = "JSON"
    except ValueError:
        pass
    note = ""
    if len(text) > MAX_TEXT_CHARS:
        note = (f"<div class='s3aads-preview-note'><i>showing the first {MAX_TEXT_CHARS:,} of "
                f"{len(text):,} characters</i></div>")
        text = text[:MAX_TEXT_CHARS]
    return (f"{head} ({label}, {_size(len(payload))})</div>{note}"
            f"<pre class='s3aads-preview-text'>{html.escape(text)}</pre>")
