"""Keeping secrets out of logs and messages.

botocore's DEBUG log prints request headers and parameters by design: the access key id (in the
Authorization header), the session token, SSE-C keys. Every client this project makes registers
its credentials here, and a filter on the botocore, urllib3 and s3aads_pandas loggers rewrites
records so that neither those values nor anything shaped like them is ever emitted.
"""

from __future__ import annotations

import base64
import logging
import re
import threading

_MASK = "****"
_VALUE = r"['\"]?\s*[:=]\s*b?['\"]?)[^'\",\s}]+"  # after a name: separator, quotes, b'' and the value
_PATTERNS = [
    re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b"),  # access key ids
    re.compile(r"(?i)(x-amz-security-token" + _VALUE),
    re.compile(r"(?i)(x-amz-(?:copy-source-)?server-side-encryption-customer-key(?:-md5)?" + _VALUE),
    re.compile(r"(?i)((?:SSECustomerKey(?:MD5)?|SessionToken|SecretAccessKey|aws_secret_access_key|"
               r"aws_session_token|CopySourceSSECustomerKey)" + _VALUE),
    re.compile(r"(?i)(Credential=)[^/,\s]+"),
    re.compile(r"(?i)(Signature=)[0-9a-f]+"),
]
_known: set[str] = set()
_lock = threading.Lock()
_LOGGER_PREFIXES = ("botocore", "boto3", "urllib3", "s3aads_pandas")


def remember(*secrets: str | None) -> None:
    """Redact these exact values too, and their hex and base64 forms.

    Credentials that do not look like AWS ones are caught this way, and so are encoded copies:
    S3's SignatureDoesNotMatch error carries the request it received as hex bytes
    (``CanonicalRequestBytes``), which botocore logs at DEBUG.
    """
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= 8:  # shorter ones are words, not keys
                _known.update(encoded_forms(secret))


def encoded_forms(secret: str) -> set[str]:
    """The secret as text, as hex (packed or byte by byte, either case) and as base64.

    In a longer base64 text the secret's bytes may start at any of three offsets within a group
    of three bytes; for each, the characters that depend on its bytes alone are its signature.
    """
    raw = secret.encode("utf-8")
    forms = {secret, raw.hex(), raw.hex(" ")}
    forms |= {form.upper() for form in forms - {secret}}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        whole_groups = (offset + len(raw)) // 3 * 4
        core = encoded[4 if offset else 0:whole_groups]
        if len(core) >= 8:
            forms.add(core)
    return forms


def redact(text: str) -> str:
    """``text`` with every known secret and everything shaped like one masked."""
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + _MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders each record's message, traceback and stack and masks secrets in them before any
    handler sees them (a traceback shows the arguments of the calls that failed)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's problem, not ours
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = record.exc_text or self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Put the filter on every existing logger of botocore, boto3, urllib3 and this package.

    Logger filters are not inherited, so each logger gets its own; botocore and urllib3 make
    their loggers at import, before any client exists, so they are all there by now.
    """
    names = [name for name in list(logging.root.manager.loggerDict) if name.startswith(_LOGGER_PREFIXES)]
    for name in [*names, *_LOGGER_PREFIXES]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
