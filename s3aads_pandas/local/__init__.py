"""A local S3 endpoint for demos and tests, and its fault plan (``local`` extra)."""

from s3aads_pandas.local.faults import FaultPlan
from s3aads_pandas.local.server import LOCAL_CREDENTIALS, LocalS3

__all__ = ["LOCAL_CREDENTIALS", "FaultPlan", "LocalS3"]
