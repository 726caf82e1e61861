"""The retry layer: bounded attempts, only for transient failures, and a pool that slows down."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from s3aads_pandas import S3RequestError
from s3aads_pandas.storage.retry import AdaptiveLimiter, LatencyPace, Retrier, RetryPolicy

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
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait()
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3


def test_a_burst_of_slowdowns_sent_together_halves_once() -> None:
    limiter = AdaptiveLimiter(16)
    with limiter.slot() as first, limiter.slot() as second, limiter.slot() as third:
        pass
    for epoch in (first, second, third):  # three answers to requests sent at the same limit
        limiter.throttled(epoch)
    assert limiter.limit == 8
    with limiter.slot() as later:  # a request sent after the halving
        pass
    limiter.throttled(later)
    assert limiter.limit == 4


class FixedDelay(RetryPolicy):
    def delay(self, attempt: int, rng: object) -> float:
        return 0.3


def test_backoff_sleeps_hold_no_slot() -> None:
    backing_off, other_done = threading.Event(), threading.Event()

    class UntilTheOtherRequest(RetryPolicy):
        """A backoff that lasts until the other request has had the slot (at most 30 s)."""

        def delay(self, attempt: int, rng: object) -> float:
            backing_off.set()
            other_done.wait(30)
            return 0.0

    limiter = AdaptiveLimiter(1)
    retrier = Retrier(limiter, UntilTheOtherRequest(attempts=2))
    events: list[str] = []
    failures = [S3RequestError("x", "InternalError", retryable=True)]

    def request() -> None:
        events.append("attempt")
        if failures:
            raise failures.pop()

    worker = threading.Thread(target=retrier, args=(request,))
    worker.start()
    assert backing_off.wait(30)  # the first attempt has failed; its backoff has begun
    with limiter.slot():  # the only slot is free during the backoff
        events.append("other request")
    other_done.set()
    worker.join()
    assert events == ["attempt", "other request", "attempt"]


def test_the_deadline_ends_retries_early_and_history_keeps_each_attempt() -> None:
    retrier = Retrier(AdaptiveLimiter(4), RetryPolicy(attempts=50, base_delay=0.05, max_delay=0.05, deadline=0.3))
    request, calls = flaky([S3RequestError("x", "InternalError", retryable=True)] * 50)
    history: list[S3RequestError] = []
    with pytest.raises(S3RequestError, match=r"at its deadline of 0.3 s"):
        retrier(request, history)
    assert 2 <= len(calls) < 50 and len(history) == len(calls)


def test_lists_that_slow_down_halve_the_pace_once_a_round_and_fast_ones_regrow_it() -> None:
    pace = LatencyPace(16)
    for _ in range(3):
        pace.observe(0.1, epoch=0)
    assert pace.limit == 16
    pace.observe(0.5, epoch=0)  # five times the fastest: the server is loaded
    assert pace.limit == 8
    pace.observe(0.6, epoch=0)  # sent in the same round: the same signal
    assert pace.limit == 8
    pace.observe(0.6, epoch=1)
    assert pace.limit == 4
    for _ in range(4):
        pace.observe(0.12, epoch=2)  # fast again: one more a round
    assert pace.limit == 5
    with pace.timed(observed=False):
        assert pace._active == 1
    assert pace._active == 0 and pace.limit == 5


def test_tasks_and_threads_share_a_limiters_slots() -> None:
    limiter = AdaptiveLimiter(2)
    held, release = threading.Event(), threading.Event()

    def thread_holds_a_slot() -> None:
        with limiter.slot():
            held.set()
            release.wait(10)

    async def tasks() -> tuple[int, int]:
        inside, go = [0], asyncio.Event()

        async def task() -> None:
            async with limiter.slot_async():
                inside[0] += 1
                await go.wait()

        async def inside_reaches(count: int) -> int:
            for _ in range(1000):
                if inside[0] >= count:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # more polls of the slots, which find none free
            return inside[0]

        running = asyncio.gather(*(task() for _ in range(3)))
        while_the_thread_held_one = await inside_reaches(1)
        release.set()
        after = await inside_reaches(2)
        go.set()
        await running
        return while_the_thread_held_one, after

    holder = threading.Thread(target=thread_holds_a_slot)
    holder.start()
    held.wait(10)
    assert asyncio.run(tasks()) == (1, 2)
    holder.join()
    with limiter.slot(), limiter.slot():  # every slot was given back
        pass


def test_a_cancelled_task_waiting_for_a_slot_leaves_it_to_the_next() -> None:
    limiter = AdaptiveLimiter(1)

    async def scenario() -> str:
        release = asyncio.Event()

        async def holder() -> None:
            async with limiter.slot_async():
                await release.wait()

        async def waiter(name: str) -> str:
            async with limiter.slot_async():
                return name

        held = asyncio.create_task(holder())
        await asyncio.sleep(0)
        first, second = asyncio.create_task(waiter("first")), asyncio.create_task(waiter("second"))
        await asyncio.sleep(0.01)
        release.set()  # the slot's wake-up goes to the first waiter, cancelled before it runs
        first.cancel()
        await held
        return await asyncio.wait_for(second, 10)

    assert asyncio.run(scenario()) == "second"
