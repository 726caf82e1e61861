"""The retry layer: bounded attempts, only for transient failures, and a pool that slows down."""

from __future__ import annotations

import threading

import pytest

from s3aads_pandas import S3RequestError
from s3aads_pandas.retry import AdaptiveLimiter, Retrier, RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)


def flaky(failures: list[S3RequestError]):
    calls = []

    def request() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    return request, calls


def test_transient_failures_are_retried_until_success() -> None:
    retrier = Retrier(AdaptiveLimiter(4), FAST)
    request, calls = flaky([S3RequestError("x", "InternalError", retryable=True)] * 3)
    assert retrier(request) == "ok" and len(calls) == 4 and retrier.retries == 3


def test_attempts_are_bounded_and_permanent_errors_are_not_retried() -> None:
    retrier = Retrier(AdaptiveLimiter(4), FAST)
    request, calls = flaky([S3RequestError("x", "InternalError", retryable=True)] * 10)
    with pytest.raises(S3RequestError):
        retrier(request)
    assert len(calls) == 4
    request, calls = flaky([S3RequestError("denied", "InvalidRequest")])
    with pytest.raises(S3RequestError, match="denied"):
        retrier(request)
    assert len(calls) == 1


def test_slowdown_halves_the_requests_in_flight_then_they_grow_back() -> None:
    limiter = AdaptiveLimiter(16)
    retrier = Retrier(limiter, FAST)
    request, _ = flaky([S3RequestError("slow", "SlowDown", throttled=True)] * 2)
    retrier(request)
    assert limiter.limit == 4  # halved twice
    for _ in range(200):
        retrier(lambda: None)
    assert limiter.limit == 16


def test_the_limiter_bounds_concurrency() -> None:
    limiter = AdaptiveLimiter(3)
    active, peak, lock = [0], [0], threading.Lock()
    gate = threading.Barrier(10, timeout=0.2)

    def work() -> None:
        with limiter.slot():
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3
