"""Conditional writes never lose an update: a refusal on a first attempt is always a conflict."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import pandas as pd
import pytest

from s3aads_pandas import (
    BulkOperationError,
    ConnectionSettings,
    Database,
    FailedRowsWarning,
    RowChangedError,
    RowExistsError,
    SchemaMismatchError,
    Table,
    WriteOutcomeUnknownError,
    aio,
)
from s3aads_pandas.local import LocalS3
from s3aads_pandas.local.faults import FaultPlan
from s3aads_pandas.storage import memory

#: Processes that race in the tests of processes: two race as surely as four, and each costs a spawn.
PROCESSES = 2


def run_together(count: int, work: Any) -> None:
    """``work(i)`` on ``count`` threads that start at the same moment."""
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


#: Where writers race: the HTTP endpoint, where conditional writes are atomic as on S3, through
#: each transport; memory:// (obstore's own conditional writes); file:// (under its lock file).
SHARED = ["boto3", "obstore", "memory", "file"]


def shared_database(where: str, request: pytest.FixtureRequest) -> Database:
    if where == "memory":
        memory.forget_all()
        db = Database("memory://race")
    elif where == "file":
        db = Database(f"file://{request.getfixturevalue('tmp_path')}/race")
    else:
        local_s3 = request.getfixturevalue("local_s3")
        local_s3.reset()
        db = Database("race", endpoint_url=local_s3.endpoint_url, transport=where)
    db.create()
    return db


@pytest.fixture(params=SHARED)
def shared(request: pytest.FixtureRequest) -> Database:
    """A database that writers share, in each of :data:`SHARED`."""
    return shared_database(request.param, request)


@pytest.fixture(params=[where for where in SHARED if where != "memory"])
def shared_by_processes(request: pytest.FixtureRequest) -> Database:
    """A database that processes share (a memory:// one lives in one process)."""
    return shared_database(request.param, request)


def add_one(table: Table) -> None:
    """Add one to the counter ``hits`` by compare-and-swap, reading again after each conflict."""
    while True:
        current = table.select_with_etag(name="hits")
        try:
            table.update(str(int(current.data) + 1).encode(), current.etag, name="hits")
            return
        except RowChangedError:
            pass


def update_from(table: Table, etag: str, payload: bytes) -> str:
    """Update ``hits`` if it is still the version ``etag``: "won", else "conflict"."""
    try:
        table.update(payload, etag, name="hits")
        return "won"
    except RowChangedError:
        return "conflict"


def test_compare_and_swap_increments_lose_no_update(shared: Database) -> None:
    table = Table("counters", shared, ["name"])
    table.insert(b"0", name="hits")

    def increment_ten_times(_: int) -> None:
        for _ in range(10):
            add_one(table)

    run_together(6, increment_ten_times)
    assert table.select(name="hits") == b"60"


def test_updates_of_one_version_have_exactly_one_winner(shared: Database) -> None:
    """Every writer read the same version before any wrote: one update lands, the rest conflict."""
    table = Table("counters", shared, ["name"])
    table.insert(b"0", name="hits")
    read = table.select_with_etag(name="hits")
    outcomes: dict[int, str] = {}

    def update(writer: int) -> None:
        outcomes[writer] = update_from(table, read.etag, f"writer {writer}".encode())

    run_together(16, update)
    assert sorted(outcomes.values()) == ["conflict"] * 15 + ["won"]
    winner = next(writer for writer, outcome in outcomes.items() if outcome == "won")
    assert table.select(name="hits") == f"writer {winner}".encode()


def test_writers_of_identical_bytes_have_exactly_one_winner(shared: Database) -> None:
    table = Table("slots", shared, ["id"])
    table.insert(b"other row", id=0)
    outcomes: dict[int, str] = {}

    def write(writer: int) -> None:
        try:
            table.insert(b"the same bytes", overwrite=False, id=1)
            outcomes[writer] = "won"
        except RowExistsError:
            outcomes[writer] = "exists"

    run_together(16, write)
    assert sorted(outcomes.values()) == ["exists"] * 15 + ["won"]


def _insert_all(settings: ConnectionSettings, database: str, ids: list[int]) -> list[int]:
    """In a process of its own: insert every id with overwrite=False; the ids this process won."""
    table = Table("shared", Database(database, settings), ["id"])
    won = []
    for id_ in ids:
        try:
            table.insert(b"equal payload", overwrite=False, id=id_)
            won.append(id_)
        except RowExistsError:
            pass
    return won


def test_processes_inserting_the_same_keys_win_each_key_once(shared_by_processes: Database) -> None:
    shared = shared_by_processes
    Table("shared", shared, ["id"]).insert(b"", id="recorded")
    ids = list(range(60))
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
        wins = list(pool.map(_insert_all, [shared.settings] * PROCESSES, [shared.name] * PROCESSES,
                             [ids] * PROCESSES))
    assert sorted(id_ for won in wins for id_ in won) == ids


def _count_up(settings: ConnectionSettings, database: str, times: int, start: Any) -> None:
    """In a process of its own, once all are ready: add one to the counter ``times`` times
    (compare-and-swap)."""
    table = Table("counters", Database(database, settings), ["name"])
    table.select_with_etag(name="hits")  # connected before the start
    start.wait()
    for _ in range(times):
        add_one(table)


def _update_once(settings: ConnectionSettings, database: str, etag: str, start: Any, writer: int) -> str:
    """In a process of its own, once all are ready: update ``hits`` from the version ``etag``."""
    table = Table("counters", Database(database, settings), ["name"])
    table.select_with_etag(name="hits")  # connected before the start
    start.wait()
    return update_from(table, etag, f"process {writer}".encode())


def test_processes_lose_no_update_and_one_version_has_one_winner(shared_by_processes: Database) -> None:
    """Processes add one to a counter twenty times each; then each, having read the same
    version, updates it once: one of them wins, the others conflict."""
    shared = shared_by_processes
    table = Table("counters", shared, ["name"])
    table.insert(b"0", name="hits")
    context = get_context("spawn")
    n = PROCESSES
    with context.Manager() as manager, ProcessPoolExecutor(n, mp_context=context) as pool:
        list(pool.map(_count_up, [shared.settings] * n, [shared.name] * n, [20] * n, [manager.Barrier(n)] * n))
        assert table.select(name="hits") == str(20 * n).encode()
        etag = table.select_with_etag(name="hits").etag
        outcomes = list(pool.map(_update_once, [shared.settings] * n, [shared.name] * n, [etag] * n,
                                 [manager.Barrier(n)] * n, range(n)))
    assert sorted(outcomes) == ["conflict"] * (n - 1) + ["won"]
    assert table.select(name="hits") == f"process {outcomes.index('won')}".encode()


def test_rewriting_with_overwrite_false_reports_every_row_and_reads_nothing(db: Database, count_requests) -> None:
    table = Table("t", db, ["id"])
    frame = pd.DataFrame({"id": range(25), "data": [b"x"] * 25})
    frame.s3aads.write(table, progress=False)
    counter = count_requests(db)
    with pytest.warns(FailedRowsWarning):
        result = frame.s3aads.write(table, overwrite=False, errors="skip", progress=False)
    assert result.written == 0
    assert result.failed_keys == sorted(f"t/{i}" for i in range(25))
    assert all("exists and overwrite=False" in reason for reason in result.failures.values())
    assert dict(counter.operations) == {"PutObject": 25}  # no GET nor HEAD per row
    with pytest.raises(BulkOperationError) as info:
        frame.s3aads.write(table, overwrite=False, progress=False)
    assert len(info.value.failures) == 25


def faulty(plan: FaultPlan) -> Iterator[LocalS3]:
    with LocalS3(faults=plan) as server:
        server.reset()  # moto's store is one per process: start from nothing
        yield server


def put_attempts(db: Database, key: str) -> list[int]:
    """A list that grows by one at each attempt of a PutObject request for ``key``."""
    attempts: list[int] = []

    def count(operation: str, params: Mapping[str, Any]) -> None:
        if operation == "PutObject" and params.get("Key") == key:
            attempts.append(1)

    db.store.hooks.append(count)
    return attempts


TRANSPORTS = pytest.mark.parametrize("transport", ["boto3", "obstore"])
#: The transports, and the asyncio API where its conditional PUTs are its own (obstore's
#: asynchronous API; through boto3 they are the synchronous ones, on a thread). It runs an
#: insert's and an update's lost answer: what follows the refusal is one decision, shared.
WAYS = pytest.mark.parametrize(("transport", "api"), [("boto3", "sync"), ("obstore", "sync"), ("obstore", "aio")])


class Blocking:
    """An :class:`aio.AsyncTable`'s coroutines, each run to its end on a loop of its own."""

    def __init__(self, table: Table) -> None:
        self.table = aio.AsyncTable.of(table)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: asyncio.run(getattr(self.table, name)(*args, **kwargs))


def writer(table: Table, api: str) -> Any:
    """``table``, or its asyncio face."""
    return table if api == "sync" else Blocking(table)


@WAYS
def test_a_retry_refused_because_its_own_first_attempt_landed_succeeds(transport: str, api: str) -> None:
    # request 6 (the conditional PUT of t/1) takes effect, then its answer is lost
    for server in faulty(FaultPlan(rate=0, script=(None, None, None, None, None, "drop-after"))):
        db = Database("ambiguous", endpoint_url=server.endpoint_url, transport=transport)
        db.create()  # requests 1 and 2: HeadBucket, CreateBucket
        table = Table("t", db, ["id"])
        table.insert(b"first", id=0)  # requests 3 to 5: the column record (GET, PUT) and the row
        attempts = put_attempts(db, "t/1")
        writer(table, api).insert(b"mine", overwrite=False, id=1)
        assert server.faults.injected["drop-after"] == 1 and len(attempts) == 2
        assert table.select(id=1) == b"mine"
        with pytest.raises(RowExistsError, match="overwrite=False"):
            table.insert(b"someone else", overwrite=False, id=1)


@TRANSPORTS
def test_a_lost_answer_never_makes_another_writers_equal_bytes_ours(transport: str) -> None:
    # request 6 (our conditional PUT of t/1) is dropped before S3 sees it; before our retry,
    # another writer stores the very same bytes: the retry's 412 is a conflict
    for server in faulty(FaultPlan(rate=0, script=(None, None, None, None, None, "drop-before"))):
        db = Database("ambiguous", endpoint_url=server.endpoint_url, transport=transport)
        db.create()
        table = Table("t", db, ["id"])
        table.insert(b"first", id=0)
        other = Table("t", Database("ambiguous", endpoint_url=server.endpoint_url), ["id"])
        attempts = put_attempts(db, "t/1")

        def other_writer_first(operation: str, params: Mapping[str, Any]) -> None:
            if operation == "PutObject" and params.get("Key") == "t/1" and len(attempts) == 2:
                other.insert(b"same", overwrite=False, id=1)

        db.store.hooks.append(other_writer_first)
        with pytest.raises(RowExistsError):
            table.insert(b"same", overwrite=False, id=1)
        assert server.faults.injected["drop-before"] == 1 and len(attempts) == 2


def test_first_writers_of_a_table_with_different_columns_one_is_refused(shared: Database) -> None:
    for round_ in range(5):
        name = f"new-{round_}"
        outcomes: dict[int, str] = {}

        def write(writer: int) -> None:
            columns = ["id"] if writer == 0 else ["id", "year"]
            values = {"id": writer} if writer == 0 else {"id": writer, "year": 2020}
            try:
                Table(name, Database("race", shared.settings), columns).insert(b"x", **values)
                outcomes[writer] = "written"
            except SchemaMismatchError:
                outcomes[writer] = "refused"

        run_together(2, write)
        assert sorted(outcomes.values()) == ["refused", "written"]
        winner = next(w for w, outcome in outcomes.items() if outcome == "written")
        table = shared.get_table(name)
        assert table is not None and table.keys == (["0"] if winner == 0 else ["1/2020"])


def other_writer(server: LocalS3, times: int = 1) -> Any:
    """``replace()`` reads the counter row and replaces it ``times`` times, as another process would."""
    table = Table("t", Database("ambiguous", endpoint_url=server.endpoint_url), ["id"])

    def replace() -> None:
        for _ in range(times):
            current = table.select_with_etag(id=1)
            table.update(current.data + b"+", current.etag, id=1)

    return replace


def before_the_retry(db: Database, attempts: list[int], action: Any) -> None:
    """Run ``action`` once, just before the second attempt of the watched PUT is sent."""
    def hook(operation: str, params: Mapping[str, Any]) -> None:
        if operation == "PutObject" and params.get("Key") == "t/1" and len(attempts) == 2:
            db.store.hooks.remove(hook)
            action()

    db.store.hooks.append(hook)


def a_read_row(transport: str, fault: str, *,
               conditional: bool = False) -> Iterator[tuple[LocalS3, Database, Table, Any, list[int]]]:
    """The row t/1 (``b"0"``) just read for an update whose PUT, request 7, meets ``fault``:
    the server, the database, the table, the row as read, and the PUT's attempts so far."""
    for server in faulty(FaultPlan(rate=0, script=(None, None, None, None, None, None, fault))):
        db = Database("ambiguous", endpoint_url=server.endpoint_url, transport=transport)
        db.create()  # requests 1 and 2: HeadBucket, CreateBucket
        table = Table("t", db, ["id"])
        table.insert(b"0", overwrite=not conditional, id=1)  # requests 3 to 5: the column record and the row
        current = table.select_with_etag(id=1)  # request 6
        yield server, db, table, current, put_attempts(db, "t/1")


@WAYS
def test_a_lost_answer_whose_write_was_replaced_since_is_still_ours(transport: str, api: str) -> None:
    # our update lands and its answer is lost; another writer reads what we wrote and replaces
    # it three times before our retry, which is refused: the history names our write
    for server, db, table, current, attempts in a_read_row(transport, "drop-after"):
        seen: list[str] = []

        def replace_ours() -> None:
            seen.append(table.select_with_etag(id=1).etag)  # the version our lost attempt made
            other_writer(server, times=3)()

        before_the_retry(db, attempts, replace_ours)
        written = writer(table, api).update(b"1", current.etag, id=1)
        assert server.faults.injected["drop-after"] == 1 and len(attempts) == 2
        assert written["ETag"] == seen[0]  # the ETag our write got, though the row has moved on
        assert table.select(id=1) == b"1+++"


@TRANSPORTS
def test_a_lost_answer_that_cannot_be_decided_is_reported_unknown_not_a_conflict(transport: str) -> None:
    for server, db, table, current, attempts in a_read_row(transport, "drop-after"):
        plain = Table("t", Database("ambiguous", endpoint_url=server.endpoint_url), ["id"])
        # a write that records no history: nothing tells whether ours came before it
        before_the_retry(db, attempts, lambda: plain.insert(b"overwritten", id=1))
        with pytest.raises(WriteOutcomeUnknownError, match="may or may not have landed") as raised:
            table.update(b"1", current.etag, id=1)
        assert not isinstance(raised.value, RowChangedError)
        assert raised.value.key == "t/1" and raised.value.etag == table.select_with_etag(id=1).etag


@TRANSPORTS
def test_a_lost_request_that_another_writer_beat_on_the_same_version_is_a_conflict(transport: str) -> None:
    # our update never reaches S3; another writer replaces the version we read first (written
    # conditionally, so its version has a write id)
    for server, db, table, current, attempts in a_read_row(transport, "drop-before", conditional=True):
        before_the_retry(db, attempts, other_writer(server))
        with pytest.raises(RowChangedError):
            table.update(b"1", current.etag, id=1)
        assert server.faults.injected["drop-before"] == 1 and table.select(id=1) == b"0+"


def _increment(settings: ConnectionSettings, times: int) -> tuple[int, int]:
    """In a process of its own: ``times`` compare-and-swap increments; (reported wins, unknowns)."""
    table = Table("counters", Database("lossy", settings), ["name"])
    wins = unknown = 0
    while wins + unknown < times:
        current = table.select_with_etag(name="hits")
        try:
            written = table.update(str(int(current.data) + 1).encode(), current.etag, name="hits")
            assert written["ETag"]  # a win always says which version it made
            wins += 1
        except RowChangedError:
            continue
        except WriteOutcomeUnknownError:
            unknown += 1
    return wins, unknown


@TRANSPORTS
def test_increments_with_lost_answers_never_count_twice(transport: str) -> None:
    for server in faulty(FaultPlan(rate=0.2, kinds=("drop-after",), seed=7)):
        db = Database("lossy", endpoint_url=server.endpoint_url, transport=transport)
        db.create()
        table = Table("counters", db, ["name"])
        table.insert(b"0", name="hits")
        with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
            outcomes = list(pool.map(_increment, [db.settings] * PROCESSES, [30] * PROCESSES))
        wins, unknown = (sum(column) for column in zip(*outcomes, strict=True))
        final = int(table.select(name="hits"))
        assert wins <= final <= wins + unknown
        assert server.faults.injected["drop-after"] > 10  # the answers were lost
