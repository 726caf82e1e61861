"""Retries that hold under load: bounded, jittered, and slowing the whole pool on throttling.

botocore's standard mode shares one retry quota per client, which many threads drain in a burst
of 5xx, and it does not retry a corrupted body. So every request of the S3 adapter also goes
through :func:`retrying`: a bounded number of attempts with full-jitter backoff on retryable
failures, and an :class:`AdaptiveLimiter` that halves the requests in flight when S3 says
SlowDown and grows them back one at a time as requests succeed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from .errors import S3RequestError

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets, and the backoff between them (seconds)."""

    attempts: int = 6
    base_delay: float = 0.05
    max_delay: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))


class AdaptiveLimiter:
    """At most ``limit`` requests in flight; halved on throttling, then regrown on success."""

    def __init__(self, limit: int) -> None:
        self.ceiling = max(1, limit)
        self.limit = self.ceiling
        self._active = 0
        self._successes = 0
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._condition:
            while self._active >= self.limit:
                self._condition.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify()

    def throttled(self) -> None:
        with self._condition:
            if self.limit > 1:
                self.limit = max(1, self.limit // 2)
                logger.info("S3 asked to slow down: at most %d requests in flight", self.limit)
            self._successes = 0

    def succeeded(self) -> None:
        with self._condition:
            if self.limit >= self.ceiling:
                return
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
                self._condition.notify()


class Retrier:
    """Runs requests with the policy and the limiter, and counts the retries it made."""

    def __init__(self, limiter: AdaptiveLimiter, policy: RetryPolicy | None = None) -> None:
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.retries = 0
        self._rng = random.Random()
        self._lock = threading.Lock()

    def __call__(self, request: Callable[[], T]) -> T:
        for attempt in range(self.policy.attempts):
            try:
                with self.limiter.slot():
                    result = request()
            except S3RequestError as error:
                if not error.retryable or attempt == self.policy.attempts - 1:
                    raise
                if error.throttled:
                    self.limiter.throttled()
                with self._lock:
                    self.retries += 1
                    delay = self.policy.delay(attempt, self._rng)
                logger.debug("retrying after %s (attempt %d)", error.code or "a transient failure", attempt + 1)
                time.sleep(delay)
            else:
                self.limiter.succeeded()
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")
