"""The check of a GET's body against what S3 says it is: its checksums, or its MD5 ETag."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Mapping

from awscrt import checksums

from s3aads_pandas.errors import S3RequestError

#: The whole-object checksums S3 may return, and how to compute them (base64 of the digest).
CHECKSUMS: dict[str, Callable[[bytes], bytes]] = {
    "ChecksumCRC32": lambda body: zlib.crc32(body).to_bytes(4, "big"),
    "ChecksumCRC32C": lambda body: checksums.crc32c(body).to_bytes(4, "big"),
    "ChecksumCRC64NVME": lambda body: checksums.crc64nvme(body).to_bytes(8, "big"),
    "ChecksumSHA1": lambda body: hashlib.sha1(body, usedforsecurity=False).digest(),
    "ChecksumSHA256": lambda body: hashlib.sha256(body).digest(),
}


def check_body(body: bytes, etag: str, where: str, sent: Mapping[str, str] | None = None,
               etag_is_md5: bool = True) -> None:
    """Refuse a whole body that differs from a checksum S3 ``sent``, or from its ETag.

    A single-part object in a general-purpose bucket, not KMS- or customer-key-encrypted, has
    its MD5 as ETag (``etag_is_md5``), which catches what the checksums (when S3 sends any) do
    not; the ETags of the others are opaque. Multipart checksums (``...-3``) are of the parts.
    """
    for field, expected in (sent or {}).items():
        if expected and "-" not in expected and base64.b64encode(CHECKSUMS[field](body)).decode() != expected:
            raise _corrupted(where)
    plain = etag.strip('"')
    if len(plain) != 32 or "-" in plain or not etag_is_md5:
        return
    if hashlib.md5(body, usedforsecurity=False).hexdigest() != plain:
        raise _corrupted(where)


def _corrupted(where: str) -> S3RequestError:
    return S3RequestError(f"the body of {where} arrived corrupted (it differs from the checksum S3 sent)",
                          retryable=True)
