"""The one retry layer: bounded, jittered, within a deadline, and slowing the pool on throttling.

botocore makes a single attempt per call (see :mod:`s3aads_pandas.config`); every request of the
S3 adapter goes through a :class:`Retrier` instead: a bounded number of attempts with full-jitter
backoff on retryable failures, all within the request's deadline, and an :class:`AdaptiveLimiter`
that halves the requests in flight when S3 says SlowDown and grows them back as requests succeed.
Owning every attempt is also what lets a conditional write tell a conflict from its own earlier
attempt (see ``ObjectStore.put``). Backoff sleeps hold no slot of the limiter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from s3aads_pandas.errors import S3RequestError

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: The monotonic time by which the request running in this thread (or task) must be done, for a
#: transport that reads an answer piece by piece (see ``boto3_transport``); None outside one.
request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_deadline", default=None)
#: Set when the bulk operation running this request was interrupted (Ctrl-C): the request makes
#: no further attempt, so that the interrupt returns once the attempts in flight end.
interrupted: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("interrupted", default=None)


class Interrupted(Exception):
    """A request not sent: the operation it belonged to was interrupted while it waited for a slot."""


def check_interrupted() -> None:
    """Raise :class:`Interrupted` when the operation running this request was interrupted."""
    stop = interrupted.get()
    if stop is not None and stop.is_set():
        raise Interrupted


#: Attempts one request gets (the first one and its retries).
DEFAULT_MAX_ATTEMPTS = 10


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets, the backoff between them and the deadline (seconds)."""

    attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))


class AdaptiveLimiter:
    """At most ``limit`` requests in flight; halved on throttling, then regrown on success."""

    def __init__(self, limit: int) -> None:
        self.ceiling = max(1, limit)
        self.limit = self.ceiling
        self._active = 0
        self._successes = 0
        self._epoch = 0  # bumped at each halving
        self._condition = threading.Condition()
        #: Tasks waiting for a slot, each woken on its own loop (no task can wait on the condition).
        self._tasks_waiting: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = \
            collections.deque()

    @property
    def epoch(self) -> int:
        """How many times the limit was halved: a request started in an earlier epoch does not halve it."""
        return self._epoch

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one of the slots; yields the epoch the request started in, for :meth:`throttled`."""
        with self._condition:
            while (epoch := self._taken()) is None:
                self._condition.wait()
        try:
            yield epoch
        finally:
            self._freed()

    @contextlib.asynccontextmanager
    async def slot_async(self) -> AsyncIterator[int]:
        """:meth:`slot` for a task on an event loop, which waits for a slot without blocking it
        (the slots are shared with threads)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._condition:
                if (epoch := self._taken()) is not None:
                    break
                woken = loop.create_future()
                self._tasks_waiting.append((loop, woken))
            try:
                await woken
            except asyncio.CancelledError:
                with self._condition:
                    if woken.done() and not woken.cancelled():  # the wake-up was this task's: pass it on
                        self._notify()
                raise
        try:
            yield epoch
        finally:
            self._freed()

    def _taken(self) -> int | None:
        """Take a slot if one is free (under the lock): the epoch it is taken in, else None."""
        if self._active >= self.limit:
            return None
        self._active += 1
        return self._epoch

    def _freed(self) -> None:
        with self._condition:
            self._active -= 1
            self._notify()

    def _notify(self) -> None:
        """A slot may be free (under the lock): wake a thread and a task that wait for one, the
        first of them to look takes it."""
        self._condition.notify()
        while self._tasks_waiting:
            loop, woken = self._tasks_waiting.popleft()
            if not woken.done() and not loop.is_closed():
                loop.call_soon_threadsafe(self._wake, woken)
                return

    def _wake(self, woken: asyncio.Future[None]) -> None:
        """On the waiting task's loop; a task cancelled meanwhile passes the wake-up on."""
        if not woken.done():
            woken.set_result(None)
            return
        with self._condition:
            self._notify()

    def throttled(self, epoch: int | None = None, reason: str = "S3 asked to slow down") -> None:
        """Halve the limit, once for all the requests that were in flight together.

        A burst of SlowDown answers to requests sent at the same limit is one signal, not many:
        halving for each of them would drive the pool to one request at a time (as TCP halves
        its window once per round trip). Requests started before the last halving do not halve.
        """
        with self._condition:
            if epoch is not None and epoch != self._epoch:
                return
            if self.limit > 1:
                self.limit = max(1, self.limit // 2)
                logger.info("%s: at most %d requests in flight", reason, self.limit)
            self._epoch += 1
            self._successes = 0

    def answered(self, seconds: float) -> None:
        """A request succeeded in ``seconds``."""
        self.succeeded()

    def succeeded(self) -> None:
        with self._condition:
            if self.limit >= self.ceiling:
                return
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
                self._notify()


class RampingLimiter(AdaptiveLimiter):
    """Requests in flight from ``start`` toward ``ceiling``, as TCP finds a link's rate. It
    grows by one for every request that succeeds (doubling each round trip) until the first
    sign of load, then by one a round; it grows only while latency holds (a request no slower
    than :attr:`SLOW` times the fastest of the last :attr:`WINDOW`), and halves on SlowDown or a
    503 (:meth:`throttled`). Bulk transfers keep at most :attr:`limit` requests in flight."""

    SLOW = 2.0
    WINDOW = 64

    def __init__(self, ceiling: int, start: int) -> None:
        super().__init__(ceiling)
        self.limit = max(1, min(start, self.ceiling))
        self._ramping = True
        self._recent: collections.deque[float] = collections.deque(maxlen=self.WINDOW)

    def throttled(self, epoch: int | None = None, reason: str = "S3 asked to slow down") -> None:
        self._ramping = False
        super().throttled(epoch, reason)

    def answered(self, seconds: float) -> None:
        """A request succeeded in ``seconds``: grow, while latency holds."""
        if self._slow(seconds):
            self._ramping = False
        else:
            self._grow()

    def _slow(self, seconds: float) -> bool:
        """Whether ``seconds`` is :attr:`SLOW` times the fastest recent request or more (noted)."""
        with self._condition:
            fastest = min(self._recent, default=seconds)
            self._recent.append(seconds)
        return seconds > self.SLOW * fastest

    def _grow(self) -> None:
        with self._condition:
            if self._ramping and self.limit < self.ceiling:
                self.limit += 1
                self._notify()
                return
        self.succeeded()


class LatencyPace(RampingLimiter):
    """A :class:`RampingLimiter` that also halves when a call takes :attr:`SLOW` times as long
    as the fastest of the last :attr:`WINDOW` calls: a server that slows down as more requests
    arrive at once (moto rescans a bucket for each LIST) gets fewer, before its answers come too
    late; while calls stay fast, the limit grows. ``start`` below ``limit`` ramps up from there
    (a listing then begins with few LISTs, and a loaded server never sees many at once)."""

    SLOW = 3.0
    WINDOW = 32

    def __init__(self, limit: int, start: int | None = None) -> None:
        super().__init__(limit, start or limit)

    @contextlib.contextmanager
    def timed(self, *, observed: bool = True) -> Iterator[None]:
        """Hold a slot for one call; an ``observed`` call that returns counts its time (a call
        of another size, or one that failed, says nothing of the server's pace)."""
        with self.slot() as epoch:
            started = time.monotonic()
            yield
            seconds = time.monotonic() - started
        if observed:
            self.observe(seconds, epoch)

    @contextlib.asynccontextmanager
    async def timed_async(self, *, observed: bool = True) -> AsyncIterator[None]:
        """:meth:`timed` for a task on the event loop."""
        async with self.slot_async() as epoch:
            started = time.monotonic()
            yield
            seconds = time.monotonic() - started
        if observed:
            self.observe(seconds, epoch)

    def observe(self, seconds: float, epoch: int | None = None) -> None:
        """One call took ``seconds``, started in ``epoch`` (as :meth:`slot` yields it)."""
        if self._slow(seconds):
            fastest = min(self._recent)
            self.throttled(epoch, f"LISTs take {seconds / fastest:.0f}x as long as the fastest")
        else:
            self._grow()


class Retrier:
    """Runs requests with the policy and the limiter, and counts the retries it made.

    ``history``, when given, receives the error of every failed attempt in order, so that the
    caller can tell what happened to the attempts before the last one.
    """

    def __init__(self, limiter: AdaptiveLimiter, policy: RetryPolicy | None = None) -> None:
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.retries = 0
        self._rng = random.Random()
        self._lock = threading.Lock()

    def __call__(self, request: Callable[[], T], history: list[S3RequestError] | None = None) -> T:
        started = time.monotonic()
        deadline = self.policy.deadline
        bound = request_deadline.set(None if deadline is None else started + deadline)
        try:
            return self._attempts(request, history, started, deadline)
        finally:
            request_deadline.reset(bound)

    def _attempts(self, request: Callable[[], T], history: list[S3RequestError] | None, started: float,
                  deadline: float | None) -> T:
        for attempt in range(1, self.policy.attempts + 1):
            try:
                with self.limiter.slot() as epoch:
                    result = request()
            except S3RequestError as error:
                delay = self._after_failure(error, attempt, started, epoch, self.limiter, history)
                stop = interrupted.get()
                if stop is not None and stop.wait(delay):  # outside the slot: a backoff holds none
                    raise error.gave_up(f"after {attempt} attempt(s): interrupted") from None
                if stop is None:
                    time.sleep(delay)
                self._retrying(error, attempt)
            else:
                self.limiter.succeeded()
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def run_async(self, request: Callable[[], Awaitable[T]], limiter: AdaptiveLimiter,
                        history: list[S3RequestError] | None = None) -> T:
        """One request on the event loop, with the policy: what ``__call__`` does, its pace set by
        ``limiter`` (the caller keeps no more than its limit in flight), and its backoff a sleep
        of the task, not of the loop."""
        started = time.monotonic()
        deadline = self.policy.deadline
        bound = request_deadline.set(None if deadline is None else started + deadline)
        try:
            for attempt in range(1, self.policy.attempts + 1):
                epoch, sent = limiter.epoch, time.monotonic()
                try:
                    result = await request()
                except S3RequestError as error:
                    delay = self._after_failure(error, attempt, started, epoch, limiter, history)
                    await asyncio.sleep(delay)
                    stop = interrupted.get()
                    if stop is not None and stop.is_set():
                        raise error.gave_up(f"after {attempt} attempt(s): interrupted") from None
                    self._retrying(error, attempt)
                else:
                    limiter.answered(time.monotonic() - sent)
                    return result
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            request_deadline.reset(bound)

    def _after_failure(self, error: S3RequestError, attempt: int, started: float, epoch: int,
                       limiter: AdaptiveLimiter, history: list[S3RequestError] | None) -> float:
        """Note a failed attempt, and return how long to wait before the next one; raise when
        there is none (the failure is not transient, or the attempts or the deadline are spent)."""
        if history is not None:
            history.append(error)
        if error.throttled:
            limiter.throttled(epoch)
        elapsed = time.monotonic() - started
        with self._lock:
            delay = self.policy.delay(attempt - 1, self._rng)
        if not error.retryable:
            raise error
        if attempt == self.policy.attempts:
            raise error.gave_up(f"after {attempt} attempts in {elapsed:.1f} s") from None
        deadline = self.policy.deadline
        if deadline is not None and elapsed + delay >= deadline:
            raise error.gave_up(
                f"after {attempt} attempt(s) in {elapsed:.1f} s, at its deadline of {deadline:g} s"
            ) from None
        return delay

    def _retrying(self, error: S3RequestError, attempt: int) -> None:
        with self._lock:
            self.retries += 1
        logger.debug("retrying after %s (attempt %d)", error.code or "a transient failure", attempt)
