"""s3aads-pandas: S3 as a cheap datastore for pandas and Jupyter.

A database is an S3 bucket, a table its top-level "folder", each further key segment a column
and the object body the row's payload. Importing this package talks to nothing.
"""

from __future__ import annotations

import logging

import pandas as _pd

from s3aads_pandas.config import ConnectionSettings, configure, default_settings
from s3aads_pandas.errors import (
    AccessDeniedError,
    BulkOperationError,
    ColumnError,
    ColumnsNotSetError,
    CredentialsNotFoundError,
    DatabaseNameTakenError,
    DatabaseNotFoundError,
    FailedRowsWarning,
    FloatKeyWarning,
    InvalidArgumentError,
    InvalidNameError,
    InvalidValueError,
    MagicError,
    MissingExtraError,
    PayloadTypeError,
    RowChangedError,
    RowExistsError,
    S3aadsError,
    S3RequestError,
    SchemaMismatchError,
    SkippedKeysWarning,
    SqlError,
    TableEmptyError,
    TableNotFoundError,
    TransferInterrupted,
    UnknownSortFieldError,
    WriteOutcomeUnknownError,
    WrongRegionError,
)
from s3aads_pandas.frames.accessor import S3aadsAccessor, WriteResult
from s3aads_pandas.frames.read import read_s3aads
from s3aads_pandas.storage.usage import Pricing, Usage, usage
from s3aads_pandas.tables.compat import Copy
from s3aads_pandas.tables.datastore import Database, Table

_pd.read_s3aads = read_s3aads  # pd.read_s3aads(...), like pandas' own read_* functions

__version__ = "0.1.0"


def explore(source: Table | Database | str | None = None, *, root: str | None = None,
            page_size: int = 20) -> object:
    """An ipywidgets explorer of a Table, a Database or a database name or URL; with none, of
    the databases the credentials can list, or of ``root`` (``"file:///data"``: its folders)
    (``notebook`` extra)."""
    from s3aads_pandas.notebook.explorer import Explorer

    return Explorer(source, root=root, page_size=page_size)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext s3aads_pandas``: registers the ``%%s3aads`` and ``%s3aads`` magics."""
    from s3aads_pandas.notebook.magic import load_ipython_extension as load

    load(ipython)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AccessDeniedError",
    "BulkOperationError",
    "ColumnError",
    "ColumnsNotSetError",
    "ConnectionSettings",
    "Copy",
    "CredentialsNotFoundError",
    "Database",
    "DatabaseNameTakenError",
    "DatabaseNotFoundError",
    "FailedRowsWarning",
    "FloatKeyWarning",
    "InvalidArgumentError",
    "InvalidNameError",
    "InvalidValueError",
    "MagicError",
    "MissingExtraError",
    "PayloadTypeError",
    "Pricing",
    "RowChangedError",
    "RowExistsError",
    "S3RequestError",
    "S3aadsAccessor",
    "S3aadsError",
    "SchemaMismatchError",
    "SkippedKeysWarning",
    "SqlError",
    "Table",
    "TableEmptyError",
    "TableNotFoundError",
    "TransferInterrupted",
    "UnknownSortFieldError",
    "Usage",
    "WriteOutcomeUnknownError",
    "WriteResult",
    "WrongRegionError",
    "configure",
    "default_settings",
    "explore",
    "read_s3aads",
    "usage",
]
