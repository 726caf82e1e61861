"""The listing engine: streamed, fanned out over key ranges, in key order, stopped early."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import itertools
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from s3aads_pandas import Database, SkippedKeysWarning, Table
from s3aads_pandas.storage.adapter import Listed, ListedPage, ObjectStore
from s3aads_pandas.storage.listing import Lister, ListingStopped, in_order, just_before, stop_listing
from s3aads_pandas.storage.retry import Interrupted, interrupted

DIRECTORY_BUCKETS = True  # also run against a directory bucket (see conftest)


class InFlight:
    """Wraps a store's LIST calls, on threads and on the event loop: counts them and the most
    that ran at once (each takes 20 ms more, as a round trip to S3 would, so that overlapping
    calls overlap)."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        real, real_async = db.store.list_page, db.store.list_page_async

        def list_page(*args: Any, **kwargs: Any) -> Any:
            with self._counted():
                time.sleep(0.02)
                return real(*args, **kwargs)

        async def list_page_async(*args: Any, **kwargs: Any) -> Any:
            if not db.store.sends_async:  # it calls list_page on a thread, which counts
                return await real_async(*args, **kwargs)
            with self._counted():
                await asyncio.sleep(0.02)
                return await real_async(*args, **kwargs)

        monkeypatch.setattr(db.store, "list_page", list_page)
        monkeypatch.setattr(db.store, "list_page_async", list_page_async)

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1


def grid_keys(ids: int, per_id: int) -> list[str]:
    return [f"t/{i}/{j}" for i in range(ids) for j in range(per_id)]


@pytest.mark.key_order
def test_a_listing_of_many_pages_fans_out_and_stays_in_key_order(db: Database, seed, monkeypatch) -> None:
    keys = grid_keys(60, 100)  # 6,000 keys: 6 pages, 100 keys per first-column value
    seed(db.name, keys)
    flight = InFlight(db, monkeypatch)
    listed = [obj.key for obj in Lister(db.store, db.name, workers=8).objects("t/")]
    assert listed == sorted(keys)
    assert flight.peak >= 4
    # the first page, one Delimiter listing of the ids, then about one LIST per page per range
    assert flight.calls <= 2 + 16 + len(keys) // 1000


@pytest.mark.any_keys
def test_fanned_out_listings_match_a_sequential_one_on_awkward_keys(db: Database, seed) -> None:
    values = ["2024", "2024-01", "2024.5", "a%2Fb", "%2E", "z", "Z", "é", "2024/x"]
    keys = [f"t/{v}/{j:03d}" for v in values for j in range(150)]  # 2 pages
    keys += ["t/leaf", "t/2024-01", "t/z/deep/er", "u/outside"]  # objects of other depths, another table
    seed(db.name, keys)
    sequential = [obj.key for obj in db.store.iter_objects(db.name, "t/")]
    for workers in (1, 3, 16):
        assert [o.key for o in Lister(db.store, db.name, workers).objects("t/")] == sequential
    table = Table("t", db, ["value", "n"])
    with pytest.warns(SkippedKeysWarning, match="skipped 153 object"):  # "2024/x" keys, 3 others
        assert table.count() == len(values) * 150 - 150


@pytest.mark.key_order
def test_a_table_of_few_first_values_splits_on_the_second_column(db: Database, seed, monkeypatch) -> None:
    keys = [f"t/{year}/{month:02d}/{n}" for year in (2020, 2021) for month in range(1, 13) for n in range(250)]
    seed(db.name, keys)
    flight = InFlight(db, monkeypatch)
    assert [o.key for o in Lister(db.store, db.name, workers=8).objects("t/")] == sorted(keys)
    assert flight.peak >= 4


@pytest.mark.key_order
def test_unique_first_values_list_sequentially_without_waste(db: Database, seed, monkeypatch) -> None:
    keys = [f"t/{i:05d}" for i in range(3500)]  # one key per value: a Delimiter listing would cost as much
    seed(db.name, keys)
    flight = InFlight(db, monkeypatch)
    assert [o.key for o in Lister(db.store, db.name, workers=8).objects("t/")] == keys
    assert flight.calls == 4


@pytest.mark.key_order
def test_stopping_early_stops_the_listing(db: Database, seed, monkeypatch, count_requests) -> None:
    seed(db.name, grid_keys(50, 100))
    table = Table("t", db, ["id", "n"])
    counter = count_requests(db)
    assert len(pd.read_s3aads(table, data=False, nrows=5)) == 5
    assert counter.operations["ListObjectsV2"] == 1
    flight = InFlight(db, monkeypatch)
    rows = table.iter_rows()
    first = [next(rows) for _ in range(1500)]  # into the fanned-out part
    rows.close()
    after_close = flight.calls
    time.sleep(0.2)
    assert flight.calls == after_close <= 10  # the first page, the ids, a few ranges' first pages
    assert not [t for t in threading.enumerate() if t.name.startswith("s3aads-list")]
    assert [row.key for row in first] == sorted(grid_keys(50, 100))[:1500]


def test_limit_without_order_by_costs_one_list(db: Database, seed, count_requests) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    seed(db.name, grid_keys(50, 100))  # 5 pages
    table = Table("t", db, ["id", "n"])
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "s3aads_pandas")
    shell.user_ns["t"] = table
    counter = count_requests(db)
    assert len(shell.run_cell_magic("s3aads", "", "SELECT id, n FROM t LIMIT 5")) == 5
    assert counter.operations["ListObjectsV2"] == 1
    counter.reset()
    assert len(shell.run_cell_magic("s3aads", "", "SELECT id FROM t WHERE n = '7' LIMIT 3")) == 3
    assert counter.operations["ListObjectsV2"] == 1  # ids 0..9 are in the first page
    counter.reset()
    assert shell.run_cell_magic("s3aads", "", "SELECT COUNT(*) AS n FROM t")["n"][0] == 5000


class KeysOnlyStore(ObjectStore):
    """Answers LIST requests from a sorted list of keys, as S3 would (Delimiter included), so that
    what the listing engine and its consumers hold is measured without S3's own parsing. The
    store's other listings are made of its LIST requests, so they are kept."""

    sends_async = False  # the engine's LISTs come to list_page, on the loop's executor

    def __init__(self, keys: list[str]) -> None:  # no client: nothing else is asked of it
        self.keys = sorted(keys)

    def list_page(self, bucket: str, prefix: str, *, start_after: str | None = None, token: str | None = None,
                  max_keys: int = 1000, delimiter: str | None = None) -> ListedPage:
        index = int(token) if token else bisect.bisect_right(self.keys, max(start_after or "", prefix))
        objects, prefixes = [], []
        while (index < len(self.keys) and self.keys[index].startswith(prefix)
               and len(objects) + len(prefixes) < max_keys):
            key = self.keys[index]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                prefixes.append(key[: cut + 1])
                index = bisect.bisect_left(self.keys, key[:cut] + chr(ord(delimiter) + 1))
            else:
                objects.append(Listed(key, 0))
                index += 1
        more = index < len(self.keys) and self.keys[index].startswith(prefix)
        return ListedPage(objects, prefixes, str(index) if more else None)


def peak_bytes(call: Any) -> tuple[Any, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def large_table(ids: int) -> Table:
    """``ids`` x 100 keys (id x year x month x day = ids x 5 x 4 x 5), listed by a keys-only store."""
    keys = [f"t/{i}/{y}/{m:02d}/{d:02d}" for i in range(ids) for y in range(2020, 2025)
            for m in range(1, 5) for d in range(1, 6)]
    database = Database("large-table", max_workers=4)
    database._store = KeysOnlyStore(keys)  # type: ignore[assignment]
    return Table("t", database, ["id", "year", "month", "day"])


def test_distinct_and_filters_hold_what_they_return_not_the_listing() -> None:
    large = large_table(500)  # 50,000 keys
    _, whole = peak_bytes(lambda: large.list_rows())  # every row held
    _, one_page = peak_bytes(lambda: list(itertools.islice(large.iter_rows(), 1000)))
    days, distinct = peak_bytes(lambda: large.distinct(["day"]))
    assert days == [(f"{d:02d}",) for d in range(1, 6)]
    matching, filtered = peak_bytes(lambda: large.query(year=2022, day="03"))
    assert len(matching) == 2000
    pages_in_flight = 4 * 4 * one_page  # 4 workers, each with two pages queued, one in hand, one parsed
    assert distinct < pages_in_flight < whole / 2  # about 1.6, 8.8 and 11.5 MB
    assert filtered < pages_in_flight + 2000 * 600  # the rows it returns, as dicts


def test_a_keys_only_read_peaks_near_its_result() -> None:
    large = large_table(1000)  # 100,000 keys: the frame outweighs the pages in flight
    frame, peak = peak_bytes(lambda: pd.read_s3aads(large, data=False))
    assert len(frame) == 100_000 and list(frame.columns) == ["id", "year", "month", "day"]
    _, one_page = peak_bytes(lambda: pd.read_s3aads(large, data=False, nrows=1000))
    result = frame.memory_usage(deep=True, index=False).sum()
    assert peak <= 2 * result + 4 * 4 * one_page


def test_just_before_sorts_just_before() -> None:
    for key in ["t/17/", "t/a", "t/é/", "t/\x01"]:
        assert just_before(key) < key and not key.startswith(just_before(key) + "/")


@pytest.mark.key_order
def test_a_callers_stop_event_ends_a_listing_that_waits_for_a_page(db: Database, seed, monkeypatch) -> None:
    seed(db.name, grid_keys(30, 100))  # 3 pages: the first, then ranges listed at the same time
    real, real_async = db.store.list_page, db.store.list_page_async
    calls, answer, stop = [], threading.Event(), threading.Event()

    def list_page(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("delimiter"))
        page = real(*args, **kwargs)
        if len(calls) > 2:  # past the first page and the Delimiter listing: the caller stops
            stop.set()  # while this LIST is in flight, and its answer does not come
            answer.wait(60)
        return page

    async def list_page_async(*args: Any, **kwargs: Any) -> Any:
        if not db.store.sends_async:  # it calls list_page on a thread
            return await real_async(*args, **kwargs)
        calls.append(None)
        page = await real_async(*args, **kwargs)
        if len(calls) > 2:
            stop.set()
            await asyncio.wait_for(asyncio.to_thread(answer.wait, 60), 60)
        return page

    monkeypatch.setattr(db.store, "list_page", list_page)
    monkeypatch.setattr(db.store, "list_page_async", list_page_async)
    token = stop_listing.set(stop)
    try:
        listing = Lister(db.store, db.name, workers=4).objects("t/")
        assert len(list(itertools.islice(listing, 1000))) == 1000  # the first page
        with pytest.raises(ListingStopped):  # at once, not when the LISTs in flight answer
            next(listing)
        assert not answer.is_set()
    finally:
        stop_listing.reset(token)
        answer.set()


def test_a_list_waiting_for_its_turn_is_not_sent_once_its_listing_stopped(db: Database) -> None:
    store, stop, sent, raised = db.store, threading.Event(), [], []
    store.hooks.append(lambda operation, params: sent.append(operation))

    def list_for_a_stopped_listing() -> None:
        interrupted.set(stop)  # as the listing engine's ranges run
        try:
            store.list_page(db.name, "t/")
        except Interrupted as error:
            raised.append(error)

    with contextlib.ExitStack() as held:
        for _ in range(store.list_pace.limit):  # every LIST slot is taken: the LIST waits its turn
            held.enter_context(store.list_pace.slot())
        waiting = threading.Thread(target=list_for_a_stopped_listing)
        waiting.start()
        stop.set()
    waiting.join(30)
    assert len(raised) == 1 and "ListObjectsV2" not in sent


def test_leaving_a_fanned_out_listing_starts_no_further_range() -> None:
    started: list[int] = []

    async def a_range(part: int) -> Any:
        started.append(part)
        yield [part]
        await asyncio.Event().wait()  # a range that would go on listing

    async def leave_after_the_first_page() -> list[int]:
        listing = in_order(a_range, list(range(6)), workers=2)
        assert await anext(listing) == [0]
        await listing.aclose()
        await asyncio.sleep(0.05)  # a range started while the others were cancelled would run now
        return started

    assert asyncio.run(leave_after_the_first_page()) == [0, 1]
