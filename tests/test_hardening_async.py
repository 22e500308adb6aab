"""The async object under faults: closed by another task while messages are
flowing, the event loop shut down with waiters pending, objects dropped
unclosed or cut short by KeyboardInterrupt, and batches larger than memory.

The accounting is exact: a ``receive`` that raised took nothing, a ``send``
that raised sent nothing, and whatever a worker thread held goes back to the
queue, so what the tasks got plus what is left in the queue is exactly what
was sent.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import uvloop
from _helpers import MakeAsyncQueue, MakeQueue, descriptors_on, unique_name

from anyposixmq import (
    PRIORITY_MAX,
    AsyncMessageQueue,
    Message,
    MessageQueue,
    PutBackError,
    _async,
    _sync,
)
from anyposixmq import _binding as binding

#: Rounds of the close-mid-stream tests: a few in every run, many more (to
#: catch rare races) in ``nox -s stress``.
ROUNDS = [*range(3), *(pytest.param(i, marks=pytest.mark.stress) for i in range(3, 40))]


def _settle(mq: MessageQueue, expected: int, timeout: float = 3.0) -> list[Message]:
    """Drain *mq* until *expected* messages came or *timeout* passed (a closing
    thread-strategy worker may put one back a slice later)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got += mq.drain()
        time.sleep(0.01)
    got += mq.drain()
    return got


@pytest.mark.anyio
@pytest.mark.parametrize("round_", ROUNDS)
async def test_closed_mid_receive_loses_nothing(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue, round_: int
) -> None:
    amq = make_async_queue()
    assert amq.name is not None
    feeder = make_queue(amq.name, create=False)
    sent: list[bytes] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            data = b"%d" % i
            try:
                feeder.send(data, i % 3, timeout=0.01)
            except TimeoutError:
                continue
            sent.append(data)
            i += 1

    received: list[bytes] = []
    closed = 0

    async def consume(how: int) -> None:
        nonlocal closed
        buf = bytearray(amq.max_message_size)
        try:
            while True:
                if how == 0:
                    received.append((await amq.receive()).data)
                elif how == 1:
                    received.extend(m.data for m in await amq.receive_many(3))
                else:
                    n, _ = await amq.receive_into(buf)
                    received.append(bytes(buf[:n]))
        except anyio.ClosedResourceError:
            closed += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for how in (0, 1, 2, 0, 1, 2):
                    tg.start_soon(consume, how)
                while len(received) < 300 + 100 * round_:
                    await anyio.sleep(0.001)
                try:
                    await amq.aclose()
                except PutBackError as exc:
                    # A message a worker took after its task gave up, and the
                    # producer kept the queue full: handed to the caller.
                    received += [m.data for m in exc.messages]
    finally:
        stop.set()
        producer.join()
    assert closed == 6
    left = _settle(feeder, len(sent) - len(received))
    everything = received + [m.data for m in left]
    assert sorted(everything) == sorted(sent), "lost or duplicated across aclose()"


@pytest.mark.anyio
@pytest.mark.parametrize("round_", ROUNDS)
async def test_closed_mid_send_sends_nothing_it_denies(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue, round_: int
) -> None:
    amq = make_async_queue()
    assert amq.name is not None
    drain = make_queue(amq.name, create=False)
    taken: list[bytes] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            try:
                taken.append(drain.receive(timeout=0.01).data)
            except TimeoutError:
                pass

    confirmed: list[bytes] = []
    denied = 0

    async def produce(task: int) -> None:
        nonlocal denied
        i = 0
        try:
            while True:
                data = b"%d-%d" % (task, i)
                if i % 2:
                    await amq.send(data, i % 4)
                else:
                    await amq.send(Message(data, 1))
                confirmed.append(data)
                i += 1
        except anyio.ClosedResourceError:
            denied += 1

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for task in range(5):
                    tg.start_soon(produce, task)
                while len(confirmed) < 300 + 100 * round_:
                    await anyio.sleep(0.001)
                await amq.aclose()
    finally:
        stop.set()
        consumer.join()
    assert denied == 5
    left = [m.data for m in _settle(drain, len(confirmed) - len(taken))]
    # A send that raised ClosedResourceError must not have sent.
    assert sorted(taken + left) == sorted(confirmed)


# -- the event loop shut down with waiters pending --------------------------------

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.mark.parametrize("strategy", ["poll", "thread"])
@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_loop_shut_down_with_waiters_pending(
    make_queue: MakeQueue, loop: str, strategy: Any
) -> None:
    empty_name, full_name = unique_name("shut"), unique_name("shut")
    empty_sync = make_queue(empty_name)
    full_sync = make_queue(full_name, capacity=1)
    full_sync.send(b"already")
    empty = AsyncMessageQueue(empty_name, strategy=strategy)
    full = AsyncMessageQueue(full_name, strategy=strategy)

    async def main() -> None:
        tasks: list[asyncio.Task[Any]] = []
        for _ in range(3):
            tasks.append(asyncio.create_task(empty.receive()))
            tasks.append(asyncio.create_task(empty.receive_many(2)))
            tasks.append(asyncio.create_task(full.send(b"never")))
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in tasks)
        # Returning leaves the tasks pending: asyncio.run cancels them.

    started = time.monotonic()
    _run_with(LOOPS[loop], main)
    assert time.monotonic() - started < 10
    try:
        # No waiter lives on: a message sent now stays for whoever receives it...
        time.sleep(0.1)
        empty_sync.send(b"after", 2)
        time.sleep(0.2)
        assert empty_sync.attributes().current_messages == 1
        assert empty_sync.receive(timeout=0) == Message(b"after", 2)
        # ... and nothing that was pending got sent.
        assert list(full_sync.drain()) == [Message(b"already", 0)]
    finally:
        _run_with(LOOPS[loop], empty.aclose)
        _run_with(LOOPS[loop], full.aclose)
    # Only the sync objects' descriptors are left.
    assert descriptors_on(empty_name) == descriptors_on(full_name) == 1


def _run_with(factory: Callable[[], asyncio.AbstractEventLoop], main: Callable[[], Any]) -> None:
    """asyncio.run(main()) on a loop from *factory* (Python 3.10 has no loop_factory)."""
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        task = loop.create_task(main())
        loop.run_until_complete(task)
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.anyio
async def test_cancelled_calls_let_go_of_the_buffer(make_async_queue: MakeAsyncQueue) -> None:
    """A cancelled send or receive_into once kept a view of the caller's
    buffer (in the traceback of the cancellation): a bytearray could not be
    resized afterwards, and an exported memoryview in a reference cycle can
    crash the cycle collector."""
    q = make_async_queue(capacity=1)
    await q.send(b"full")
    data = bytearray(b"abc")
    with anyio.move_on_after(0.02):
        await q.send(data)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.02):
            await q.send(Message(data, 3))  # type: ignore[arg-type]
    with pytest.raises(anyio.WouldBlock):
        q.send_nowait(data)
    data.extend(b"d")  # BufferError while a view was kept
    assert q.attributes().current_messages == 1
    assert await q.receive() == Message(b"full", 0)
    into = bytearray(q.max_message_size)
    with anyio.move_on_after(0.02):
        await q.receive_into(into)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.02):
            await q.receive_into(into)
    into.extend(b"more")
    await q.send(data, 2)
    assert await q.receive_into(into) == (4, 2)
    assert into[:4] == b"abcd"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda q: q.send("text"), TypeError),
        (lambda q: q.send(None), TypeError),
        (lambda q: q.send(memoryview(b"abcdef")[::2]), TypeError),
        (lambda q: q.send(b"x", -1), ValueError),
        (lambda q: q.send(b"x", PRIORITY_MAX + 1), ValueError),
        (lambda q: q.send(b"x", 1.0), TypeError),
        (lambda q: q.send(Message(b"x", True)), TypeError),
        (lambda q: q.receive_many(0), ValueError),
        (lambda q: q.receive_many(True), TypeError),
        (lambda q: q.receive_many("3"), TypeError),
        (lambda q: q.receive_into(bytes(128)), TypeError),
        (lambda q: q.receive_into(bytearray(127)), ValueError),
        (lambda q: q.receive_into(memoryview(bytearray(256))[::2]), TypeError),
    ],
)
async def test_async_bad_arguments_change_nothing(
    make_async_queue: MakeAsyncQueue, call: Callable[[Any], Any], exc: type[Exception]
) -> None:
    from test_hardening_input import no_system_calls

    q = make_async_queue()
    await q.send(b"kept", 4)
    with no_system_calls(), pytest.raises(exc):
        await call(q)
    assert q.attributes().current_messages == 1
    assert q.receive_nowait() == Message(b"kept", 4)


# -- dropped unclosed, or cut short in __init__ ----------------------------------


@pytest.mark.parametrize("strategy", ["poll", "thread"])
def test_unclosed_object_warns_with_its_own_name(queue_name: str, strategy: Any) -> None:
    q = AsyncMessageQueue(
        queue_name, create=True, capacity=2, max_message_size=64, strategy=strategy
    )
    with pytest.warns(ResourceWarning) as caught:
        del q
    assert [str(w.message) for w in caught] == [
        f"unclosed <AsyncMessageQueue {queue_name} {strategy}>"
    ]
    assert descriptors_on(queue_name) == 0


def _interrupt(*args: object, **kwargs: object) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize("strategy", ["poll", "thread"])
def test_async_object_cut_short_in_init(
    queue_name: str, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """repr and __del__ of an object whose __init__ raised (Ctrl-C at any
    point) must not raise AttributeError; what was opened is closed."""
    unmade = AsyncMessageQueue.__new__(AsyncMessageQueue)
    assert "AsyncMessageQueue" in repr(unmade)
    unmade.__del__()
    monkeypatch.setattr(_async, "PollWaiter" if strategy == "poll" else "ThreadWaiter", _interrupt)
    q = AsyncMessageQueue.__new__(AsyncMessageQueue)
    with pytest.raises(KeyboardInterrupt):
        q.__init__(queue_name, create=True, capacity=2, strategy=strategy)  # type: ignore[misc]
    assert "AsyncMessageQueue" in repr(q)
    q.__del__()
    assert descriptors_on(queue_name) == 0


def test_sync_object_cut_short_in_init(queue_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    unmade = MessageQueue.__new__(MessageQueue)
    assert "MessageQueue" in repr(unmade)
    unmade.__del__()

    class InterruptedAfterOpen:
        """The binding, with Ctrl-C right after the descriptor was opened."""

        def __getattr__(self, name: str) -> Any:
            return _interrupt if name == "apmq_getattr" else getattr(binding.lib, name)

    monkeypatch.setattr(_sync, "lib", InterruptedAfterOpen())
    q = MessageQueue.__new__(MessageQueue)
    with pytest.raises(KeyboardInterrupt):
        q.__init__(queue_name, create=True, capacity=2, max_message_size=64)  # type: ignore[misc]
    monkeypatch.undo()
    assert repr(q).startswith(f"<MessageQueue name={queue_name!r}")
    with pytest.warns(ResourceWarning, match="unclosed <MessageQueue"):
        q.__del__()  # the descriptor was open: closed now, with a warning
    assert descriptors_on(queue_name) == 0


# -- receive_many sets aside memory for what the queue can hold ------------------


def _virtual_memory() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def test_try_receive_many_allocates_for_at_most_capacity(make_queue: MakeQueue) -> None:
    """It allocated max_messages x max_message_size bytes up front: 800 MB of
    address space for 10**5 here, and a MemoryError for 10**7."""
    mq = make_queue(capacity=2, max_message_size=8192)
    mq.send(b"a")
    before = _virtual_memory()
    assert mq._try_receive_many(10**5) == [(b"a", 0)]
    assert _virtual_memory() - before < 64 * 2**20
    mq.send(b"b")
    mq.send(b"c", 1)
    assert mq._try_receive_many(10**7) == [(b"c", 1), (b"b", 0)]
    assert mq._try_receive_many(10**7) == []
