"""The package's event loop: the asynchronous data plane, run for synchronous callers.

One asyncio loop runs on a daemon thread of its own, started on first use. A process forked
after it started has neither that thread nor obstore's asynchronous runtime (whose threads were
the parent's too, so that its requests would never complete there): in such a child
:func:`available` is False, and the data plane sends on threads instead. Synchronous code hands it a coroutine
(:func:`start`) and waits for the result (:func:`wait`), so a notebook, whose own loop is already running in the
main thread, never has that loop touched. Blocking calls the loop needs (boto3's requests, file
locks) run on its executor, :data:`IO_THREADS` threads, so that they never block the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import contextvars
import functools
import os
import queue
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar, cast

T = TypeVar("T")

#: Threads for the blocking calls the loop hands off (each is one request in flight).
IO_THREADS = 64
#: Seconds a synchronous caller waits for the loop at a time, between looks for Ctrl-C.
WAIT_SLICE = 0.05
#: Seconds the process waits at exit for the loop to stop.
EXIT_WAIT = 5.0
#: What the package's long-lived threads are named by (the loop's and its executor's).
THREAD_PREFIX = "s3aads-loop"

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_forked_after_start = False


def event_loop() -> asyncio.AbstractEventLoop:
    """The package's loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            loop.set_default_executor(ThreadPoolExecutor(IO_THREADS, thread_name_prefix=f"{THREAD_PREFIX}-io"))
            thread = threading.Thread(target=loop.run_forever, name=THREAD_PREFIX, daemon=True)
            thread.start()
            atexit.register(_stop, loop, thread)
            _loop = loop
        return _loop


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """At exit, cancel the loop's tasks, then stop the loop and wait for its thread: no Python
    code of it may run while the interpreter shuts down. A request still in flight would
    answer into it from obstore's runtime, and abort the process (SIGABRT after a transfer
    left by a second Ctrl-C); a cancelled one is dropped there."""
    if thread.is_alive():
        with contextlib.suppress(futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(EXIT_WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(EXIT_WAIT)


async def _cancel_tasks() -> None:
    """Cancel every other task of the running loop, and wait for them to unwind."""
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


def available() -> bool:
    """Whether this process can run the asynchronous data plane (not a child forked after it ran)."""
    return not _forked_after_start


def _forget_loop() -> None:
    global _loop, _lock, _forked_after_start, _handoffs_lock
    _forked_after_start = _forked_after_start or _loop is not None
    _loop, _lock = None, threading.Lock()
    _handoffs.clear()
    _handoffs_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_loop)


def start(coroutine: Coroutine[Any, Any, T], future: Future[T]) -> None:
    """Run ``coroutine`` on the package's loop into ``future``, in the caller's context (its usage
    blocks count what it sends). The caller makes the future beforehand: a Ctrl-C that arrives
    while this call returns still finds it, and ``future.cancel()`` succeeds only while the
    coroutine has not begun (it then never runs)."""
    loop = _package_loop_for(coroutine)
    context = contextvars.copy_context()

    async def into_future() -> None:
        if not future.set_running_or_notify_cancel():
            coroutine.close()
            return
        try:
            future.set_result(await _in_context(context, coroutine))
        except BaseException as error:  # the caller's, to raise in its thread
            future.set_exception(error)

    loop.call_soon_threadsafe(loop.create_task, into_future())


def spawn(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """``coroutine`` as a task on the package's loop, in the caller's context. Cancelling the
    future cancels the task wherever it is (what :func:`start` runs goes on to its end once begun);
    the future is then done at once, before the task has unwound."""
    loop = _package_loop_for(coroutine)
    return asyncio.run_coroutine_threadsafe(_in_context(contextvars.copy_context(), coroutine), loop)


def _package_loop_for(coroutine: Coroutine[Any, Any, object]) -> asyncio.AbstractEventLoop:
    """The package's loop, for a coroutine handed to it from another thread: a synchronous
    caller on the loop itself would wait for itself for ever."""
    loop = event_loop()
    if _running_loop() is loop:
        coroutine.close()
        raise RuntimeError("a synchronous s3aads call was made on the package's own event loop; "
                           "use s3aads_pandas.aio there")
    return loop


async def awaited(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run on the package's loop, awaited from another event loop (an asyncio
    caller's): that loop goes on with its own tasks, and no thread waits for the result. A
    cancelled caller stops waiting; a coroutine already begun runs to its end."""
    package = event_loop()
    here = asyncio.get_running_loop()
    if here is package:
        return await coroutine
    waiter: asyncio.Future[T] = here.create_future()
    context = contextvars.copy_context()
    _handoff(package).send(lambda: package.create_task(_answer(context, coroutine, waiter, _handoff(here))))
    return await waiter


class _Handoff:
    """Calls for one event loop from other threads, which it makes in one wake-up for as many as
    have come: a wake-up is a write to the loop's socket and hands the GIL to the loop's thread,
    so that 1,000 selects started at once, and their 1,000 answers, would otherwise make the two
    threads wait for each other 2,000 times (a caller's loop then stalls for 100-200 ms)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # a caller's loop is forgotten once it is gone
        self.calls: collections.deque[Callable[[], object]] = collections.deque()
        self.lock = threading.Lock()
        self.woken = False

    def send(self, call: Callable[[], object]) -> None:
        self.calls.append(call)
        with self.lock:
            wake, self.woken = not self.woken, True
        loop = self.loop()
        if loop is not None and not loop.is_closed():
            if not wake:  # the loop is woken already, and takes this call too
                return
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(self._make_calls)
                return
        self.calls.clear()  # the caller's loop is gone: nobody waits for these answers, which would keep it

    def _make_calls(self) -> None:
        with self.lock:
            self.woken = False
        while self.calls:
            self.calls.popleft()()


_handoffs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Handoff] = weakref.WeakKeyDictionary()
_handoffs_lock = threading.Lock()


def _handoff(loop: asyncio.AbstractEventLoop) -> _Handoff:
    with _handoffs_lock:
        handoff = _handoffs.get(loop)
        if handoff is None:
            handoff = _handoffs[loop] = _Handoff(loop)
        return handoff


async def _answer(context: contextvars.Context, coroutine: Coroutine[Any, Any, T], waiter: asyncio.Future[T],
                  back: _Handoff) -> None:
    """On the package's loop: ``coroutine``, unless its caller stopped waiting, and its outcome
    handed back to the caller's loop."""
    if waiter.cancelled():
        coroutine.close()
        return
    try:
        result = await _in_context(context, coroutine)
    except BaseException as error:  # the caller's, to raise in its task
        back.send(functools.partial(_settle, waiter, None, error))
    else:
        back.send(functools.partial(_settle, waiter, result, None))


def _settle(waiter: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    """On the caller's loop: the outcome, unless the caller stopped waiting."""
    if waiter.done():
        return
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(cast(T, result))


def wait(future: Future[T]) -> T:
    """The future's result, waited for in slices: a Ctrl-C that arrives meanwhile is raised
    within one (a simulated one, ``_thread.interrupt_main``, wakes no blocked wait)."""
    while True:
        try:
            return future.result(timeout=WAIT_SLICE)
        except futures.TimeoutError:
            continue


async def _in_context(context: contextvars.Context, coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` with the context variables of ``context`` (a task starts with the loop's)."""
    for variable, value in context.items():
        variable.set(value)
    return await coroutine


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Stopped(Exception):
    """A consumer of :func:`iterate` stopped waiting: its stop event was set."""


class _Raised(NamedTuple):
    error: BaseException


_END = object()  # the iterator is exhausted
_UNWOUND = object()  # the task that ran it has ended


def iterate(items: AsyncGenerator[T, None], *,
            stop: threading.Event | None = None) -> Generator[T, None, None]:
    """The items of an asynchronous iterator run on the package's loop, for a synchronous
    consumer: each is asked for when the consumer wants it (an iterator that runs ahead does so
    itself). Leaving stops the iterator and waits for it to unwind; ``stop``, once set, raises
    :class:`Stopped` within :data:`WAIT_SLICE` seconds and leaves at once."""
    channel: queue.Queue[object] = queue.Queue()
    wanted = asyncio.Semaphore(0)
    running = spawn(_pump(items, channel.put, wanted))
    package = event_loop()
    unwind = True
    try:
        while True:
            package.call_soon_threadsafe(wanted.release)
            item = _taken(channel, stop)
            if _ends(item):
                return
            yield cast(T, item)
    except Stopped:
        unwind = False
        raise
    finally:
        running.cancel()
        while unwind and _taken(channel, None) is not _UNWOUND:
            continue


async def iterate_async(items: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """:func:`iterate` for a consumer on another event loop, which goes on with its own tasks
    while an item is on its way."""
    here = asyncio.get_running_loop()
    channel: asyncio.Queue[object] = asyncio.Queue()
    back = _handoff(here)
    wanted = asyncio.Semaphore(0)
    running = spawn(_pump(items, lambda item: back.send(functools.partial(channel.put_nowait, item)), wanted))
    package = event_loop()
    try:
        while True:
            package.call_soon_threadsafe(wanted.release)
            item = await channel.get()
            if _ends(item):
                return
            yield cast(T, item)
    finally:
        running.cancel()
        while await channel.get() is not _UNWOUND:
            continue


def _ends(delivered: object) -> bool:
    """Whether what :func:`_pump` delivered ends the iteration; raises what the iterator raised."""
    if isinstance(delivered, _Raised):
        raise delivered.error
    return delivered is _END


async def _pump(items: AsyncGenerator[T, None], deliver: Callable[[object], None],
                wanted: asyncio.Semaphore) -> None:
    """On the package's loop: each item of ``items`` that is ``wanted``, then the end (or the
    error), then word that the iterator has unwound."""
    try:
        while True:
            await wanted.acquire()
            try:
                item = await anext(items)
            except StopAsyncIteration:
                deliver(_END)
                return
            deliver(item)
    except Exception as error:  # the consumer's, to raise in its thread or task
        deliver(_Raised(error))
    finally:
        try:
            await items.aclose()
        finally:
            deliver(_UNWOUND)


def _taken(channel: queue.Queue[object], stop: threading.Event | None) -> object:
    """The next item from the loop, waited for in slices: a Ctrl-C arriving meanwhile is raised
    within one, and :class:`Stopped` once ``stop`` is set."""
    while True:
        try:
            return channel.get(timeout=WAIT_SLICE)
        except queue.Empty:
            if stop is not None and stop.is_set():
                raise Stopped from None
