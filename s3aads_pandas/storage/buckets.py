"""What a bucket's name and S3's answers say about it: its region, and whether it is a directory bucket.

A bucket lives in one region and answers requests signed for another with a redirect (``301
PermanentRedirect``) or ``400 AuthorizationHeaderMalformed``, both carrying the
``x-amz-bucket-region`` header, which HeadBucket also sends on 200 and 403. Directory buckets
(S3 Express One Zone, names ending ``--x-s3``) list their keys in no particular order and refuse
StartAfter and prefixes that do not end in ``/``; their ETags are not MD5s.
"""

from __future__ import annotations

from s3aads_pandas.errors import WrongRegionError

DIRECTORY_BUCKET_SUFFIX = "--x-s3"
REGION_HEADER = "x-amz-bucket-region"
#: The error codes of a request signed for another region than the bucket's.
WRONG_REGION_CODES = frozenset({"PermanentRedirect", "301", "AuthorizationHeaderMalformed"})


def is_directory_bucket(bucket: str) -> bool:
    """Whether ``bucket`` is a directory bucket (S3 Express One Zone), as its name says."""
    return bucket.endswith(DIRECTORY_BUCKET_SUFFIX)


def lists_in_key_order(bucket: str) -> bool:
    """Whether a listing of ``bucket`` comes in key order and takes StartAfter."""
    return not is_directory_bucket(bucket)


def wrong_region(bucket: str, bucket_region: str | None, configured_region: str | None,
                 code: str = "PermanentRedirect") -> WrongRegionError:
    """The error for a bucket whose requests S3 keeps refusing as signed for the wrong region."""
    where = f"is in region {bucket_region}" if bucket_region else "is in another region (S3 did not say which)"
    fix = f"region_name={bucket_region!r}" if bucket_region else "region_name= set to the bucket's region"
    return WrongRegionError(
        f"S3 bucket {bucket!r} {where}, and requests for it were signed for "
        f"{configured_region or 'no region'}; learning its region again did not help: set {fix} "
        "(or AWS_DEFAULT_REGION) for this database",
        code, bucket_region=bucket_region, configured_region=configured_region,
    )
