"""What the pages of one listing must be, so that a buggy server never loses, invents or repeats
a row, nor lists forever.

A general-purpose bucket lists keys in strictly increasing order, page after page; a directory
bucket (and a local folder) lists them in no order, but never one twice. Each page's token is
new: a token seen before would list the same pages again, forever. Anything else is the
server's fault, and an error naming the page, never a result.
"""

from __future__ import annotations

from collections.abc import Sequence

from s3aads_pandas.errors import S3RequestError
from s3aads_pandas.storage.buckets import lists_in_key_order


class PageSequence:
    """Checks the pages of one listing of ``prefix`` in ``bucket`` as they arrive.

    ``after`` is where the listing starts (its StartAfter): every name comes after it.
    """

    def __init__(self, bucket: str, prefix: str, after: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.ordered = lists_in_key_order(bucket)
        self.pages = 0
        self._last = after
        self._tokens: set[str] = set()
        self._seen: set[str] = set()  # the names of a listing in no order

    def check(self, names: Sequence[str], token: str | None) -> None:
        """One more page: its keys (or common prefixes) in the order listed, and its next token."""
        self.pages += 1
        if self.ordered:
            self._in_order(names)
        else:
            repeated = next((name for name in names if name in self._seen), None)
            if repeated is None and len(set(names)) < len(names):
                repeated = next(name for name in names if names.count(name) > 1)
            if repeated is not None:
                raise self._fault(f"lists {repeated!r} a second time")
            self._seen.update(names)
        if token is not None:
            if token in self._tokens:
                raise self._fault("gives a continuation token it gave before (the listing would never end)")
            self._tokens.add(token)

    def _in_order(self, names: Sequence[str]) -> None:
        for name in names:
            if self._last is not None and name <= self._last:
                happened = "a second time" if name == self._last else f"after {self._last!r}"
                raise self._fault(f"lists {name!r} {happened}, out of key order")
            self._last = name

    def _fault(self, what: str) -> S3RequestError:
        return S3RequestError(
            f"page {self.pages} of the listing of s3://{self.bucket}/{self.prefix} {what}: S3 never "
            "does; the store is at fault, and the listing stops here rather than lose or repeat rows",
            code="InvalidListing",
        )
