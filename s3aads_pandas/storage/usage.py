"""What calls cost: ``with usage() as u:`` counts every request sent inside the block.

Every attempt a transport sends is announced to its hooks; :func:`count` is one of them on every
store, and adds the request to each block open in the calling context. The threads that bulk
operations and listings start run in a copy of the caller's context (:func:`submit`), so a
block counts what they send too. Retries count: S3 bills them.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

#: How S3 bills each operation: "get" (GET, HEAD), "put" (PUT, COPY, POST, LIST) or "free".
TIERS = {
    "GetObject": "get", "HeadObject": "get", "HeadBucket": "get",
    "PutObject": "put", "CopyObject": "put", "DeleteObjects": "put", "ListObjectsV2": "put",
    "ListBuckets": "put", "CreateBucket": "put", "CreateSession": "free", "DeleteObject": "free",
}


@dataclasses.dataclass(frozen=True)
class Pricing:
    """US dollars per 1,000 requests of each tier; the default is S3 Standard's us-east-1 list price."""

    get: float = 0.0004
    put: float = 0.005
    free: float = 0.0

    def cost(self, requests: Mapping[str, int]) -> float:
        """The price of these requests (operation name -> count); an operation not in
        :data:`TIERS` is billed as a PUT, the dearer tier."""
        rates = {"get": self.get, "put": self.put, "free": self.free}
        return sum(rates[TIERS.get(name, "put")] * count for name, count in requests.items()) / 1000


class Usage:
    """The requests sent while a :func:`usage` block was open: ``requests`` by S3 operation,
    ``bytes_sent`` (the bodies of PUTs), ``bytes_received`` (the bodies of GETs),
    ``cache_hits`` (payloads the cache served: no transfer, and no request when a listing named
    the version) and their ``cost`` at ``pricing``."""

    def __init__(self, pricing: Pricing) -> None:
        self.pricing = pricing
        self.requests: Counter[str] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.cache_hits = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def cost(self) -> float:
        """US dollars, at :attr:`pricing`."""
        with self._lock:
            return self.pricing.cost(self.requests)

    def _add(self, operation: str, sent: int) -> None:
        with self._lock:
            self.requests[operation] += 1
            self.bytes_sent += sent

    def _receive(self, size: int, *, cached: bool) -> None:
        with self._lock:
            if cached:
                self.cache_hits += 1
            else:
                self.bytes_received += size

    def as_dict(self) -> dict[str, Any]:
        """Plain values (``requests``, ``bytes_sent``, ``bytes_received``, ``cache_hits``,
        ``cost``), as a DataFrame's ``attrs`` may hold them: pandas copies attrs and writes them
        into Parquet files as JSON."""
        with self._lock:
            requests = dict(self.requests)
            values = {"bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                      "cache_hits": self.cache_hits}
        return {"requests": requests, **values, "cost": self.pricing.cost(requests)}

    def summary(self) -> str:
        """One line for people: ``1,002 requests · 1.0 MB · $0.0004 · 998 from cache``."""
        parts = [f"{self.total:,} request{'' if self.total == 1 else 's'}",
                 _readable(self.bytes_sent + self.bytes_received), _dollars(self.cost)]
        if self.cache_hits:
            parts.append(f"{self.cache_hits:,} from cache")
        return " · ".join(parts)

    def __repr__(self) -> str:
        return (f"Usage({self.total:,} requests, {self.bytes_sent:,} bytes sent, {self.bytes_received:,} received, "
                f"{self.cache_hits:,} from cache, ${self.cost:.6f})")


def _dollars(cost: float) -> str:
    """Four decimals, or six for less than a hundredth of a cent: a few requests are not $0.0000."""
    return f"${cost:.4f}" if cost >= 0.0001 or not cost else f"${cost:.6f}"


def _readable(size: int) -> str:
    """Bytes as people read them: ``512 B``, ``3.4 kB``, ``1.0 MB``."""
    if size < 1000:
        return f"{size} B"
    return f"{size / 1e3:.1f} kB" if size < 100_000 else f"{size / 1e6:.1f} MB"


_open: contextvars.ContextVar[tuple[Usage, ...]] = contextvars.ContextVar("s3aads_usage", default=())


def usage(pricing: Pricing | None = None) -> contextlib.AbstractContextManager[Usage]:
    """Count the requests sent inside the block, from this thread and the threads the package
    starts for it; blocks nest, and each counts what is sent inside it."""
    return counting(Usage(pricing or Pricing()))


@contextlib.contextmanager
def counting(into: Usage) -> Iterator[Usage]:
    """Add what is sent inside the block to ``into``, which may go on counting over several
    blocks (the explorer's total for its session)."""
    token = _open.set((*_open.get(), into))
    try:
        yield into
    finally:
        _open.reset(token)


def count(operation: str, params: Mapping[str, Any]) -> None:
    """The hook every store's transport calls before each attempt."""
    blocks = _open.get()
    if not blocks:
        return
    body = params.get("Body")
    sent = len(body) if isinstance(body, (bytes, bytearray, memoryview)) else int(params.get("ContentLength") or 0)
    for block in blocks:
        block._add(operation, sent)


def received(size: int, *, cached: bool = False) -> None:
    """Count a payload that arrived: ``size`` bytes over the wire, or one served by the cache."""
    for block in _open.get():
        block._receive(size, cached=cached)


def submit(pool: Executor, call: Callable[..., T], *args: Any) -> Future[T]:
    """``pool.submit(call, *args)``, the task running in a copy of the calling context: the
    blocks open here count what it sends (a context can be entered by one thread at a time,
    so each task gets its own copy)."""
    return pool.submit(contextvars.copy_context().run, call, *args)
