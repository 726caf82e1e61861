"""The bulk data plane on the package's event loop: how many requests it keeps in flight, how
that number moves, what a stop leaves, and the loop itself (contexts, fork, misuse)."""

from __future__ import annotations

import _thread
import asyncio
import gc
import os
import threading
import tracemalloc
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

import pandas as pd
import pytest
from obstore.store import MemoryStore

from s3aads_pandas import ConnectionSettings, Database, Table, TransferInterrupted, usage
from s3aads_pandas.storage import loop
from s3aads_pandas.storage.adapter import BULK_START
from s3aads_pandas.storage.obstore_transport import ObstoreTransport
from s3aads_pandas.storage.retry import RampingLimiter
from s3aads_pandas.storage.transport import Written
from s3aads_pandas.tables.executor import run_each_async

T = TypeVar("T")

pytestmark = pytest.mark.usefixtures("empty_memory")


class HeldTransport(ObstoreTransport[MemoryStore]):
    """A memory store whose PUTs on the event loop each take ``seconds``, as if over a network,
    counting how many are in flight at once (every count is made on the one loop thread)."""

    waits_on_network = True

    def __init__(self, seconds: float = 0.005) -> None:
        super().__init__("held://")
        self.seconds = seconds
        self.databases: dict[str, MemoryStore] = {}
        self.in_flight = self.most = 0

    def _store(self, bucket: str) -> MemoryStore:
        return self.databases.setdefault(bucket, MemoryStore())

    def list_buckets(self) -> list[str]:
        return sorted(self.databases)

    def create_bucket(self, bucket: str) -> None:
        self._store(bucket)

    async def _write_async(self, store: MemoryStore, key: str, body: bytes, attributes: dict[str, str] | None,
                           condition: Mapping[str, str]) -> Written:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
            return await super()._write_async(store, key, body, attributes, condition)
        finally:
            self.in_flight -= 1


def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run on the package's loop, waited for here (as the executor does)."""
    future: Future[T] = Future()
    loop.start(coroutine, future)
    return loop.wait(future)


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(rows), "data": [b"x" * 16] * rows})


def test_a_bulk_write_starts_with_many_requests_in_flight_and_a_cap_bounds_them() -> None:
    transport = HeldTransport()
    table = Table("t", Database("held", root="memory://", transport=transport), ["id"])
    assert _frame(1000).s3aads.write(table, progress=False).written == 1000
    assert BULK_START <= transport.most <= ConnectionSettings().max_in_flight  # not the 16 threads of boto3's
    transport.most = 0
    assert _frame(300).s3aads.write(table, max_workers=8, progress=False).written == 300
    assert transport.most == 8
    assert table.count() == 1000


def test_the_ramp_doubles_each_round_until_latency_grows_then_adds_one_a_round() -> None:
    limiter = RampingLimiter(ceiling=512, start=64)
    assert limiter.limit == 64
    for _ in range(64):  # a round of fast answers
        limiter.answered(0.05)
    assert limiter.limit == 128
    limiter.answered(0.5)  # ten times the fastest: the link is loaded, the ramp ends
    assert limiter.limit == 128
    for _ in range(127):
        limiter.answered(0.05)
    assert limiter.limit == 128
    limiter.answered(0.05)
    assert limiter.limit == 129  # one a round from now on
    limiter.throttled(limiter.epoch)  # SlowDown
    assert limiter.limit == 64
    limiter.throttled(limiter.epoch - 1)  # an answer to a request sent before the halving
    assert limiter.limit == 64
    for _ in range(10_000):
        limiter.answered(0.05)
    assert limiter.limit <= 512


def test_slowdown_ends_the_ramp_too() -> None:
    limiter = RampingLimiter(ceiling=512, start=64)
    limiter.throttled(limiter.epoch)
    assert limiter.limit == 32
    limiter.answered(0.05)
    assert limiter.limit == 32  # no doubling after S3 said SlowDown


def test_ctrl_c_starts_nothing_more_and_says_how_many_rows_landed() -> None:
    transport = HeldTransport(seconds=0.02)
    db = Database("held", root="memory://", transport=transport)
    table = Table("t", db, ["id"])
    sent: list[str] = []

    def interrupt_at_the_200th(operation: str, params: Mapping[str, Any]) -> None:
        if operation != "PutObject" or not params["Key"].startswith("t/"):
            return  # the table's column record
        sent.append(params["Key"])
        if len(sent) == 200:
            _thread.interrupt_main()

    db.store.hooks.append(interrupt_at_the_200th)
    with pytest.raises(TransferInterrupted) as interrupt:
        _frame(5000).s3aads.write(table, progress=False)
    db.store.hooks.remove(interrupt_at_the_200th)
    landed = table.count()
    assert interrupt.value.done == landed and 200 <= landed < 5000  # what was in flight ended; nothing after
    assert len(sent) == landed and transport.in_flight == 0


def test_memory_follows_what_is_in_flight_not_the_number_of_items() -> None:
    async def echo(item: int) -> int:
        await asyncio.sleep(0)
        return item

    limiter = RampingLimiter(ceiling=512, start=64)
    items = list(range(20_000))
    run_each_async(echo, items[:10], label=str, limiter=limiter, max_in_flight=512)  # the loop is up
    tracemalloc.start()
    try:
        result = run_each_async(echo, items, label=str, limiter=limiter, max_in_flight=512, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.results == items and result.failures == {}
    assert peak < 4 * 1024 * 1024, peak  # a task per item made at once would hold about 30 MB


def test_a_usage_block_counts_what_the_loop_sends_for_it() -> None:
    table = Table("t", Database("held", root="memory://", transport=HeldTransport(0)), ["id"])
    _frame(1).s3aads.write(table, progress=False)  # the table's columns are recorded
    with usage() as spent:
        _frame(500).s3aads.write(table, progress=False)
        pd.read_s3aads(table, progress=False)
    assert spent.requests == {"PutObject": 500, "ListObjectsV2": 1, "GetObject": 500}
    assert spent.bytes_sent == spent.bytes_received == 500 * 16


def test_a_synchronous_call_on_the_package_loop_is_refused_not_a_deadlock() -> None:
    async def nested() -> None:
        on_loop(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match=r"use s3aads_pandas\.aio there"):
        on_loop(nested())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_child_forked_after_the_loop_ran_transfers_on_threads() -> None:
    table = Table("t", Database("held", root="memory://", transport=HeldTransport(0)), ["id"])
    _frame(50).s3aads.write(table, progress=False)  # the parent's loop runs
    assert table.database.store.sends_async
    child = os.fork()
    if child == 0:  # neither the parent's loop nor obstore's asynchronous runtime runs here
        try:
            written = _frame(80).s3aads.write(table, progress=False).written
            on_threads = not loop.available() and not table.database.store.sends_async
            os._exit(0 if written == 80 and table.count() == 80 and on_threads else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.count() == 50  # memory:// is the process's own


def test_a_database_in_memory_transfers_on_threads() -> None:
    """Its requests wait on no network: obstore's asynchronous API would cost more than it saves."""
    db = Database("memory://local")
    db.create()
    assert not db.store.sends_async
    assert Database("held", root="memory://", transport=HeldTransport(0)).store.sends_async


def test_coroutines_awaited_from_several_loops_at_once_each_get_their_own_outcome() -> None:
    """Calls and answers cross between the loops in batches: none may be lost or mixed up."""

    async def double(value: int) -> int:
        await asyncio.sleep(0)
        if value % 97 == 0:
            raise ValueError(value)
        return 2 * value

    async def many(base: int) -> list[int | str]:
        outcomes = await asyncio.gather(*(loop.awaited(double(base + i)) for i in range(500)), return_exceptions=True)
        return [f"failed {outcome}" if isinstance(outcome, ValueError) else outcome for outcome in outcomes]

    results: dict[int, list[int | str]] = {}
    threads = [threading.Thread(target=lambda base=base: results.__setitem__(base, asyncio.run(many(base))))
               for base in (1, 1000, 2000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for base in (1, 1000, 2000):
        assert results[base] == [f"failed {value}" if value % 97 == 0 else 2 * value
                                 for value in range(base, base + 500)]


def test_a_caller_that_stops_waiting_leaves_the_package_loop_working() -> None:
    started, release = threading.Event(), threading.Event()

    async def held() -> str:
        started.set()
        await asyncio.to_thread(release.wait, 60)
        return "done"

    async def caller() -> str:
        waiting = asyncio.ensure_future(loop.awaited(held()))
        await asyncio.to_thread(started.wait, 60)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        return await loop.awaited(asyncio.sleep(0, result="still answering"))

    assert asyncio.run(caller()) == "still answering"


def test_a_callers_loop_is_forgotten_once_it_is_gone_even_with_an_answer_on_its_way() -> None:
    release, began, answered = threading.Event(), threading.Semaphore(0), []

    async def slow() -> str:
        began.release()
        await asyncio.to_thread(release.wait, 60)
        answered.append(True)  # the answer is handed back in this same step of the task
        return "late"

    async def leave_early() -> None:
        left = asyncio.ensure_future(loop.awaited(slow()))
        await asyncio.to_thread(began.acquire, True, 60)  # slow() runs: the caller leaves before its answer
        assert not left.done()  # asyncio.run cancels it and closes the loop

    for _ in range(5):
        asyncio.run(leave_early())
    failures: list[dict[str, Any]] = []
    loop.event_loop().set_exception_handler(lambda _, context: failures.append(context))
    try:
        release.set()  # the answers go back to closed loops
        for _ in range(1200):
            if len(answered) == 5:
                break
            on_loop(asyncio.sleep(0.05))
        on_loop(asyncio.sleep(0))  # after the steps that handed the answers back
        gc.collect()
        assert len(answered) == 5 and not failures
        assert len(loop._handoffs) <= 1  # the package loop's own, at most
    finally:
        loop.event_loop().set_exception_handler(None)
