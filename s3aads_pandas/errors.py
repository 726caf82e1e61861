"""The project's exceptions.

Every error derives from :class:`S3aadsError`, and each specific one also derives from the builtin
that callers already catch (``ValueError``, ``KeyError``, ``TypeError``, ``LookupError``, ...), so
``except ValueError`` keeps working for code that does not know this package.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any


class S3aadsError(Exception):
    """Base class of every error raised by s3aads-pandas."""


class _PlainMessage(BaseException):
    """Mixin for ``KeyError`` subclasses: show the message, not its repr in quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidNameError(S3aadsError, ValueError):
    """A database, table or column name that the key layout cannot hold."""


class InvalidValueError(S3aadsError, ValueError):
    """A column value that cannot become a key segment (missing, empty, key too long)."""


class ColumnError(_PlainMessage, S3aadsError, KeyError):
    """A column that is missing, unknown to the table, or given twice."""


class ColumnsNotSetError(S3aadsError, ValueError):
    """The table's columns are neither given nor recorded in the bucket."""


class SchemaMismatchError(S3aadsError, ValueError):
    """The columns given for a table contradict the columns recorded in the bucket."""


class PayloadTypeError(S3aadsError, TypeError):
    """A payload of the wrong type (for example ``str`` where ``bytes`` is needed)."""


class InvalidArgumentError(S3aadsError, ValueError):
    """An argument outside what the call accepts (an unknown ``sort_by``, a bad S3 parameter)."""


class UnknownSortFieldError(_PlainMessage, InvalidArgumentError, KeyError):
    """A ``sort_by`` that names no listing field; a KeyError too, as s3aads 2.x raised."""


class DatabaseNotFoundError(_PlainMessage, S3aadsError, LookupError):
    """The S3 bucket behind a database does not exist; ``database`` is its name."""

    def __init__(self, message: str, database: str = "") -> None:
        super().__init__(message)
        self.database = database

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.database)


class DatabaseNameTakenError(S3aadsError, FileExistsError):
    """The bucket name is already taken by another AWS account."""


class TableNotFoundError(_PlainMessage, S3aadsError, LookupError):
    """A table named by a string that has neither rows nor a column record; ``table`` is its
    name and ``database`` its database's reference."""

    def __init__(self, message: str, table: str = "", database: str = "") -> None:
        super().__init__(message)
        self.table, self.database = table, database

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.table, self.database)


class RowExistsError(S3aadsError, FileExistsError):
    """A write with ``overwrite=False`` found the row already stored."""


class RowChangedError(S3aadsError, RuntimeError):
    """A conditional update found the row changed (or gone) since its ETag was read."""


class WriteOutcomeUnknownError(S3aadsError, RuntimeError):
    """A conditional write whose outcome cannot be known: an attempt's answer was lost, its retry
    was refused, and the row has changed since in a way that tells neither that the lost attempt
    landed nor that it did not. Not a conflict: read the row to decide. ``key`` is the S3 key,
    ``etag`` the ETag stored now (None when the row is gone)."""

    def __init__(self, message: str, key: str = "", etag: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.etag = etag

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.key, self.etag)


class TableEmptyError(_PlainMessage, S3aadsError, IndexError):
    """An operation needs at least one row and the table has none (an IndexError, as in s3aads 2.x)."""


class AccessDeniedError(S3aadsError, PermissionError):
    """S3 refused the request for lack of permission or valid credentials."""


class CredentialsNotFoundError(AccessDeniedError):
    """No AWS credentials were found for a request to S3."""


class S3RequestError(S3aadsError, OSError):
    """Any other failure of an S3 request, with the S3 error code when there is one.

    ``retryable`` says whether trying again may succeed (throttling, 5xx, a dropped connection,
    a corrupted body); ``throttled`` whether S3 asked the client to slow down; ``answer_lost``
    whether the request may have reached S3 and taken effect while its answer never arrived (a
    read timeout or a connection reset after sending).
    """

    def __init__(self, message: str, code: str | None = None, *, retryable: bool = False,
                 throttled: bool = False, answer_lost: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable or throttled
        self.throttled = throttled
        self.answer_lost = answer_lost

    def gave_up(self, how: str) -> S3RequestError:
        """This error, saying that the retry layer gave up on the request and ``how``."""
        return S3RequestError(f"{self} (gave up {how})", self.code, retryable=self.retryable,
                              throttled=self.throttled, answer_lost=self.answer_lost)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_request_error, (str(self), self.code, self.retryable, self.throttled, self.answer_lost)


def _rebuild_request_error(message: str, code: str | None, retryable: bool, throttled: bool,
                           answer_lost: bool = False) -> S3RequestError:
    return S3RequestError(message, code, retryable=retryable, throttled=throttled, answer_lost=answer_lost)


class WrongRegionError(S3RequestError):
    """S3 answered that the bucket is in another region than the requests were signed for, and
    learning its region again did not help. ``bucket_region`` is S3's word (None when it gave
    none), ``configured_region`` the one the requests used."""

    def __init__(self, message: str, code: str | None = None, *, bucket_region: str | None = None,
                 configured_region: str | None = None) -> None:
        super().__init__(message, code)
        self.bucket_region = bucket_region
        self.configured_region = configured_region

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_wrong_region, (str(self), self.code, self.bucket_region, self.configured_region)


def _rebuild_wrong_region(message: str, code: str | None, bucket_region: str | None,
                          configured_region: str | None) -> WrongRegionError:
    return WrongRegionError(message, code, bucket_region=bucket_region, configured_region=configured_region)


class BulkOperationError(S3aadsError, RuntimeError):
    """Some items of a bulk operation failed; ``failures`` maps each failed key to its reason
    (:func:`failure_reason`)."""

    def __init__(self, action: str, failures: dict[str, str], total: int) -> None:
        self.action = action
        self.failures = dict(failures)
        self.total = total
        listing = "\n".join(f"  {key}: {reason}" for key, reason in sorted(self.failures.items()))
        super().__init__(
            f"{action} failed for {len(self.failures)} of {total} keys "
            f"(the others succeeded):\n{listing}"
        )

    @property
    def failed_keys(self) -> Sequence[str]:
        return sorted(self.failures)

    def __reduce__(self) -> tuple[type, tuple[str, dict[str, str], int]]:
        """Pickle by the arguments, so the error crosses from Dask workers intact."""
        return type(self), (self.action, self.failures, self.total)


class TransferInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a bulk operation: ``done`` of its ``total`` items had succeeded (and
    ``failed`` had failed) when the requests in flight ended; the rest were not attempted."""

    def __init__(self, action: str, done: int, failed: int, total: int) -> None:
        self.action, self.done, self.failed, self.total = action, done, failed, total
        super().__init__(f"{action} interrupted: {done} of {total} items done, {failed} failed, "
                         f"{total - done - failed} not attempted")

    def __reduce__(self) -> tuple[type, tuple[str, int, int, int]]:
        return type(self), (self.action, self.done, self.failed, self.total)


class SqlError(S3aadsError, ValueError):
    """A statement of the ``%%s3aads`` magic that cannot run: bad syntax, unsupported SQL, an
    unknown table or column."""


class MagicError(S3aadsError, ValueError):
    """A user error in a magic: shown as one line, and still an error that fails the cell."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def failure_reason(error: BaseException) -> str:
    """Why an item of a bulk operation failed, on one line."""
    return f"{type(error).__name__}: {error}".replace("\n", " ")


class MissingExtraError(S3aadsError, ImportError):
    """A feature whose optional dependencies (a pip extra) are not installed."""


def install_hint(extra: str) -> str:
    """How to install an extra: from a clone of the project, which is not on PyPI yet."""
    return f'install the [{extra}] extra (in a clone of s3aads-pandas: python -m pip install ".[{extra}]")'


@contextlib.contextmanager
def extra_required(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing optional module, imported inside, into one line naming the pip extra."""
    try:
        yield
    except ModuleNotFoundError as error:
        missing = f"{feature} needs {error.name}, which is not installed"
        raise MissingExtraError(f"{missing}: {install_hint(extra)}") from None


def warn_caller(message: str, category: type[Warning]) -> None:
    """Warn at the first line outside this package: the user's call, however deep the warning
    is raised, so that the warning names the line to change (and filters by module work)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class FailedRowsWarning(UserWarning):
    """Some rows of a bulk operation with ``errors="skip"`` failed; the result says which."""


class FloatKeyWarning(UserWarning):
    """A key column holds whole floats (1.0): their keys ("1.0") do not match integer filters."""


class SkippedKeysWarning(UserWarning):
    """Objects under a table prefix whose key depth does not match the table's columns."""
