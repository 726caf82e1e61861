"""The parallel executor: order, per-item failures, bounded queue, and Ctrl-C."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from s3aads_pandas import TransferInterrupted
from s3aads_pandas.storage import loop
from s3aads_pandas.tables.executor import run_each


def _s3aads_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """The package's threads started since ``before`` and still alive, but for those that live as
    long as the process by design (the aio module's workers, the event loop and its executor)."""
    return [t for t in threading.enumerate() if t not in before and t.name.startswith("s3aads")
            and not t.name.startswith(loop.THREAD_PREFIX)]


def test_run_each_records_every_failure_and_finishes_the_rest() -> None:
    def work(x: int) -> int:
        if x % 7 == 0:
            raise OSError(f"bad {x}")
        return x + 1

    result = run_each(work, list(range(50)), label=lambda x: f"key{x}", max_workers=8)
    assert result.failures == {f"key{x}": f"OSError: bad {x}" for x in range(0, 50, 7)}
    assert [r for r in result.results if r is not None] == [x + 1 for x in range(50) if x % 7]


def test_run_each_keeps_few_items_queued() -> None:
    started: list[int] = []
    gate = threading.Event()

    def work(x: int) -> int:
        started.append(x)
        gate.wait(5)
        return x

    runner = threading.Thread(target=run_each, args=(work, list(range(1000))),
                              kwargs={"label": str, "max_workers": 4, "progress": False})
    runner.start()
    while len(started) < 4 and runner.is_alive():
        time.sleep(0.01)
    assert len(started) == 4  # only the workers' items run (no fifth can start before one ends)
    gate.set()
    runner.join(10)
    assert len(started) == 1000


def test_ctrl_c_stops_promptly_and_leaves_no_thread() -> None:
    done: list[int] = []

    def work(x: int) -> int:
        if x == 20:
            _thread.interrupt_main()
        time.sleep(0.01)
        done.append(x)
        return x

    before = set(threading.enumerate())
    with pytest.raises(TransferInterrupted) as interrupt:
        run_each(work, list(range(10_000)), label=str, max_workers=4, progress=False, desc="work")
    assert len(done) < 100  # of 10,000: the rest never started
    assert (interrupt.value.done, interrupt.value.failed, interrupt.value.total) == (len(done), 0, 10_000)
    assert isinstance(interrupt.value, KeyboardInterrupt)  # code that stops on Ctrl-C still does
    assert _s3aads_threads(before) == []
