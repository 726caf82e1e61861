"""Nothing waits forever: read timeouts, a deadline per request, one retry layer."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from s3aads_pandas import ConnectionSettings, Database, S3aadsError, S3RequestError, Table
from s3aads_pandas.local import LOCAL_CREDENTIALS

Respond = Callable[[socket.socket, threading.Event, bytes], None]


class StallingServer:
    """A TCP server on 127.0.0.1 that reads each request's head and answers it with ``respond``.

    ``connections`` counts the connections made: one per attempt, since each failed attempt
    leaves its connection unusable.
    """

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.connections = 0
        self.stop = threading.Event()
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                head += chunk
            with contextlib.suppress(OSError):  # the client gave up and closed the connection
                self.respond(connection, self.stop, head)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self._socket.close()


def serve(respond: Respond) -> Iterator[StallingServer]:
    server = StallingServer(respond)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def silent() -> Iterator[StallingServer]:
    """Accepts every request and never answers."""
    yield from serve(lambda connection, stop, head: stop.wait())


@pytest.fixture
def trickling() -> Iterator[StallingServer]:
    """Answers 200 at once, then sends the body one byte every 0.2 s."""

    def respond(connection: socket.socket, stop: threading.Event, head: bytes) -> None:
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: "x"\r\n\r\n')
        while not stop.wait(0.2):
            connection.sendall(b"x")

    yield from serve(respond)


@pytest.fixture
def no_etag() -> Iterator[StallingServer]:
    """Answers every GET with a body and no ETag header."""

    def respond(connection: socket.socket, stop: threading.Event, head: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

    yield from serve(respond)


@pytest.fixture(params=["boto3", "obstore"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def select_from(server: StallingServer, transport: str, **settings: float) -> S3RequestError:
    database = Database("stalled", endpoint_url=server.url, transport=transport, **settings)
    table = Table("t", database, ["id"])
    with pytest.raises(S3RequestError) as info:
        table.select(id=1)
    return info.value


def test_a_silent_server_fails_after_the_attempts_naming_the_key(silent: StallingServer, transport: str) -> None:
    error = select_from(silent, transport, read_timeout=0.25)
    assert silent.connections == 10  # one retry layer: botocore's attempts do not multiply ours
    assert "s3://stalled/t/1" in str(error) and "gave up after 10 attempts" in str(error)
    # obstore first learns the bucket's region (a HeadBucket): that is what stalls, and the GET never left
    assert error.answer_lost == (transport == "boto3")


def test_the_deadline_bounds_every_attempt_together(silent: StallingServer, transport: str) -> None:
    error = select_from(silent, transport, read_timeout=1, deadline=2.5)
    assert silent.connections < 10  # the deadline, not the attempts, ended it
    assert "at its deadline of 2.5 s" in str(error) and "s3://stalled/t/1" in str(error)


def test_a_trickling_body_is_given_up_at_the_deadline(trickling: StallingServer, transport: str) -> None:
    # each byte arrives within the read timeout: only the deadline (2 s) stops it, not the 200 s the body takes
    error = select_from(trickling, transport, read_timeout=1, deadline=2)
    assert "still arriving at the request's deadline" in str(error) and "s3://stalled/t/1" in str(error)


def test_an_answer_without_etag_is_a_retried_request_error(no_etag: StallingServer, transport: str) -> None:
    error = select_from(no_etag, transport, max_attempts=3)
    assert "without an ETag header" in str(error) and "s3://stalled/t/1" in str(error)
    assert no_etag.connections == 3 + (transport == "obstore")  # obstore's HeadBucket learns the region first


def test_default_timeouts_bound_a_silent_server_under_two_minutes() -> None:
    config = ConnectionSettings().botocore_config()
    policy = ConnectionSettings().retry_policy()
    # no attempt starts after the deadline, and the one running then ends within a read timeout
    worst = policy.deadline + config.connect_timeout + config.read_timeout
    assert worst < 120


@pytest.fixture
def slow_reader() -> Iterator[StallingServer]:
    """Takes a request's body at 4 MiB/s, then answers it (a slow link that keeps moving)."""

    def respond(connection: socket.socket, stop: threading.Event, head: bytes) -> None:
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower().splitlines()
        length = next((int(line.split(":", 1)[1]) for line in lines if line.startswith("content-length:")), 0)
        left = length - len(head.split(b"\r\n\r\n", 1)[1])
        while left > 0 and not stop.wait(1 / 16):
            left -= len(connection.recv(min(left, 256 * 1024)))
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "x"\r\nConnection: close\r\n\r\n')

    yield from serve(respond)


def test_a_large_body_that_keeps_moving_outlasts_the_deadline(slow_reader: StallingServer, transport: str) -> None:
    database = Database("slow", endpoint_url=slow_reader.url, transport=transport, read_timeout=2, deadline=2)
    database.create()  # a HeadBucket that finds it: its region is then known
    written = database.store.put("slow", "big", b"x" * (12 * 1024 * 1024))  # 3 s at 4 MiB/s: past the deadline
    assert written.etag == '"x"'
    assert slow_reader.connections == 2  # the HeadBucket and one PUT: never sent again


def test_every_answer_that_trickles_is_given_up_at_the_deadline(trickling: StallingServer, transport: str) -> None:
    database = Database("stalled", endpoint_url=trickling.url, transport=transport, read_timeout=1, deadline=2,
                        max_attempts=2)
    requests = {
        "DeleteObjects": lambda: database.store.delete_many("stalled", ["t/1", "t/2"]),  # boto3 on both transports
        "PutObject": lambda: database.store.put("stalled", "t/1", b"x", {"ContentType": "text/plain",
                                                                         "StorageClass": "STANDARD"}),
    }
    if transport == "boto3":
        requests["ListObjectsV2"] = lambda: database.store.list_page("stalled", "t/")
    for operation, send in requests.items():  # a byte every 0.2 s: 200 s for the answer, without a deadline
        with pytest.raises(S3aadsError) as raised:  # DeleteObjects names its keys in a BulkOperationError
            send()
        assert "deadline" in str(raised.value), operation


_FETCH_UNTIL_INTERRUPTED = """
import logging
import os
import sys
import pandas as pd
from s3aads_pandas import Database, Table
logging.basicConfig(level=logging.WARNING)
database = Database("stalled", endpoint_url=sys.argv[1], transport="boto3", read_timeout=float(sys.argv[2]),
                    max_workers=4)
print("ready", flush=True)
try:
    pd.DataFrame({"id": range(100)}).s3aads.fetch(Table("t", database, ["id"]), progress=False)
except KeyboardInterrupt:
    print("interrupted", flush=True)
os._exit(0)  # as a notebook's kernel goes on: not waiting for the abandoned attempts at exit
"""


def fetch_until_interrupted(url: str, read_timeout: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _FETCH_UNTIL_INTERRUPTED, url, str(read_timeout)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **LOCAL_CREDENTIALS})
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_ctrl_c_stops_retries_and_returns_once_the_attempts_in_flight_end(silent: StallingServer) -> None:
    child = fetch_until_interrupted(silent.url, read_timeout=1)
    try:
        while silent.connections < 8:  # every worker is on its second attempt at least
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        at_interrupt = silent.connections
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out == "interrupted\n", err
    # each worker's attempt in flight ends (a read timeout); without the stop each would go on
    # to its tenth attempt
    assert silent.connections - at_interrupt <= 4


def test_a_second_ctrl_c_stops_waiting_for_the_attempts_in_flight(silent: StallingServer) -> None:
    child = fetch_until_interrupted(silent.url, read_timeout=600)  # each attempt in flight waits 10 minutes
    try:
        while silent.connections < 4:  # every worker's first attempt is out
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert out == "interrupted\n", err
    assert "abandoned" in err


@pytest.fixture
def heads_only() -> Iterator[StallingServer]:
    """Answers every HEAD (the bucket's region, an object's version) and never a GET."""

    def respond(connection: socket.socket, stop: threading.Event, head: bytes) -> None:
        if not head.startswith(b"HEAD "):
            stop.wait()
            return
        connection.sendall(b'HTTP/1.1 200 OK\r\nx-amz-bucket-region: us-east-1\r\nContent-Length: 1\r\nETag: "x"\r\n'
                           b"Last-Modified: Tue, 08 Dec 2026 00:00:00 GMT\r\n\r\n")

    yield from serve(respond)


_EXIT_WITH_A_GET_IN_FLIGHT = """
import asyncio
import sys
from s3aads_pandas import Database
from s3aads_pandas.storage import loop
store = Database("stalled", endpoint_url=sys.argv[1], read_timeout=600).store
store.head("stalled", "t/0")  # the bucket's region is learned: the GET goes out on the loop


async def get():
    try:
        await store.get_async("stalled", "t/1")
    finally:
        print("unwound", flush=True)


loop.spawn(get())
print("ready", flush=True)
sys.stdin.readline()  # the GET is out: exit with it in flight
"""


def test_a_process_exits_with_its_requests_in_flight_cancelled(heads_only: StallingServer) -> None:
    child = subprocess.Popen([sys.executable, "-c", _EXIT_WITH_A_GET_IN_FLIGHT, heads_only.url],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **LOCAL_CREDENTIALS})
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n", child.stderr
        waited = time.monotonic() + 60
        while heads_only.connections < 3 and time.monotonic() < waited:  # HeadBucket, HeadObject, the GET
            time.sleep(0.05)
        out, err = child.communicate("\n", timeout=60)
    finally:
        child.kill()
    # the request was cancelled before the interpreter shut down: obstore's runtime drops it, and
    # never answers into a finalizing interpreter (which aborted a process now and then)
    assert (child.returncode, out) == (0, "unwound\n"), err
