"""What the command prints when something fails: one line, in the command's own terms (its
flags and commands, never Python), and a summary rather than a flood for a bulk failure."""

from __future__ import annotations

from s3aads_pandas.errors import (
    BulkOperationError,
    CredentialsNotFoundError,
    DatabaseNotFoundError,
    TableNotFoundError,
    TransferInterrupted,
    WrongRegionError,
)
from s3aads_pandas.storage.usage import Usage
from s3aads_pandas.tables.rows import BY_KEY_HINT

PREFIX = "s3aads: error: "

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
    "without an AWS account, keep databases in a folder (s3aads --root file:///path/to/folder ...) "
    "or run a local S3 endpoint (s3aads serve)"
)


def error_lines(error: BaseException, command: str) -> list[str]:
    """The lines that tell ``error``, raised by ``command``, to someone at a shell."""
    if isinstance(error, BulkOperationError):
        return bulk_failure(error)
    if isinstance(error, TransferInterrupted):
        return interrupted(error, command)
    if isinstance(error, DatabaseNotFoundError):
        return [f"{PREFIX}database {error.database!r} does not exist: create it with "
                f"`s3aads create {error.database}`, or import with --create"]
    if isinstance(error, TableNotFoundError):
        return [f"{PREFIX}table {error.table!r} of database {error.database!r} has no rows and no column "
                f"record: `s3aads tables {error.database}` lists its tables"]
    if isinstance(error, CredentialsNotFoundError):
        return [PREFIX + NO_CREDENTIALS]
    if isinstance(error, WrongRegionError):
        where = f"in region {error.bucket_region}" if error.bucket_region else "in another region"
        fix = f"--region {error.bucket_region}" if error.bucket_region else "--region with the bucket's region"
        return [f"{PREFIX}the bucket is {where}, and requests for it were signed for "
                f"{error.configured_region or 'no region'}: add {fix}"]
    text = str(error) or type(error).__name__
    first, *rest = text.splitlines()
    return [PREFIX + first, *rest]


def warning_line(message: Warning | str) -> str:
    """A warning on one line, without the advice that only Python code can follow."""
    return f"s3aads: warning: {str(message).replace(f'; {BY_KEY_HINT}', '')}"


def usage_line(used: Usage) -> str:
    """What the command sent: requests by operation, bytes, and their price on S3."""
    operations = ", ".join(f"{count:,} {name}" for name, count in sorted(used.requests.items()))
    cached = f", {used.cache_hits:,} payloads from the cache" if used.cache_hits else ""
    return (f"s3aads: {used.total:,} requests ({operations or 'none'}), {used.bytes_sent:,} bytes sent, "
            f"{used.bytes_received:,} received{cached}, ${used.cost:.6f} at S3 Standard prices")


def bulk_failure(error: BulkOperationError, examples: int = 3) -> list[str]:
    """The failed rows in a few lines: how many failed of each kind, with a few example keys."""
    kinds: dict[str, list[str]] = {}
    for key, reason in sorted(error.failures.items()):
        kinds.setdefault(reason.split(":", 1)[0], []).append(key)
    lines = [f"{PREFIX}{error.action} failed for {len(error.failures)} of {error.total} rows "
             "(the others succeeded)"]
    for keys in kinds.values():
        more = f" and {len(keys) - examples} more" if len(keys) > examples else ""
        lines.append(f"  {len(keys)} x {error.failures[keys[0]]} ({', '.join(keys[:examples])}{more})")
    if any(kind.endswith("DecodeError") for kind in kinds):
        lines.append("  those payloads are not in the --decode format: --decode str or --decode bytes reads them; "
                     "a table of Parquet, CSV or JSON lines objects reads with --dataset FORMAT")
    return lines


def interrupted(stop: TransferInterrupted, command: str) -> list[str]:
    """How far a transfer got before Ctrl-C."""
    verb = "written" if command == "import" else "done"
    left = stop.total - stop.done - stop.failed
    failed = f", {stop.failed} failed" if stop.failed else ""
    lines = [f"s3aads: interrupted: {stop.done} of {stop.total} rows {verb}{failed}, {left} not attempted"]
    if command == "import":
        lines.append("  every row written is whole; importing the file again writes them all")
    return lines
