"""AsyncMessageQueue: the API, checkpoints, closing and concurrency.

Every test runs on asyncio, asyncio+uvloop and trio (the ``anyio_backend``
fixture) and, where it takes ``make_async_queue``, under both strategies.
"""

from __future__ import annotations

import array
import os
import sys
import textwrap
from typing import Any

import anyio
import anyio.abc
import pytest
from _helpers import (
    ASYNCIO_BACKENDS,
    TRIO_BACKENDS,
    MakeAsyncQueue,
    MakeQueue,
    descriptors_on,
    unique_name,
)

import anyposixmq
from anyposixmq import AsyncMessageQueue, Message, MessageQueue

pytestmark = pytest.mark.anyio


# -- basics -------------------------------------------------------------------


async def test_send_receive_in_priority_order(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    await q.send(b"low")
    await q.send(bytearray(b"high"), 5)
    await q.send(Message(b"mid", 3))
    await q.send(memoryview(b"mid2"), priority=3)
    got = [await q.receive() for _ in range(4)]
    assert got == [(b"high", 5), (b"mid", 3), (b"mid2", 3), (b"low", 0)]
    assert all(type(m) is Message for m in got)


async def test_async_for_yields_messages_in_order(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    for i in range(4):
        q.send_nowait(b"%d" % i)
    got = []
    async for msg in q:
        got.append(msg.data)
        if len(got) == 4:
            break
    assert got == [b"0", b"1", b"2", b"3"]


async def test_receive_into(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    await q.send(b"hello", 2)
    buf = bytearray(128)
    assert await q.receive_into(buf) == (5, 2)
    assert buf[:5] == b"hello"
    arr = array.array("B", bytes(200))
    await q.send(b"xyz")
    assert await q.receive_into(arr) == (3, 0)
    assert arr[:3].tobytes() == b"xyz"


async def test_receive_into_checks_buffer_before_taking(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    await q.send(b"keep")
    with pytest.raises(ValueError, match="smaller than the max_message_size"):
        await q.receive_into(bytearray(10))
    with pytest.raises(TypeError):
        await q.receive_into(b"x" * 128)
    assert q.receive_nowait() == (b"keep", 0)


async def test_receive_many_takes_what_is_there(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    for i in range(4):
        await q.send(b"%d" % i)
    assert [m.data for m in await q.receive_many(3)] == [b"0", b"1", b"2"]
    # Fewer than asked for: returns what is there without waiting for more.
    with anyio.fail_after(5):
        assert await q.receive_many(64) == [Message(b"3", 0)]


async def test_receive_many_waits_for_one(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()

    async def later() -> None:
        await anyio.sleep(0.05)
        await q.send(b"a")

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        with anyio.fail_after(5):
            assert await q.receive_many(8) == [Message(b"a", 0)]


async def test_receive_many_sets_aside_no_more_than_capacity(
    make_async_queue: MakeAsyncQueue,
) -> None:
    """receive_many(n) once allocated n x max_message_size bytes up front:
    here 80 GB, a MemoryError."""
    q = make_async_queue(capacity=2, max_message_size=8192)
    for i in range(2):
        await q.send(b"%d" % i)
    with anyio.fail_after(5):
        assert await q.receive_many(10**7) == [(b"0", 0), (b"1", 0)]


async def test_receive_many_arguments(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    with pytest.raises(ValueError, match="at least 1"):
        await q.receive_many(0)
    with pytest.raises(TypeError):
        await q.receive_many(2.0)  # type: ignore[arg-type]


async def test_nowait(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    with pytest.raises(anyio.WouldBlock):
        q.receive_nowait()
    for i in range(4):
        q.send_nowait(b"%d" % i, 1)
    with pytest.raises(anyio.WouldBlock):
        q.send_nowait(b"full")
    assert q.receive_nowait() == (b"0", 1)


async def test_send_argument_errors_come_first(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    with pytest.raises(TypeError, match="encode"):
        await q.send("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PRIORITY_MAX"):
        await q.send(b"x", anyposixmq.PRIORITY_MAX + 1)
    with pytest.raises(OSError, match="128") as info:
        await q.send(b"x" * 129)
    assert info.value.errno == 90  # EMSGSIZE
    assert q.attributes().current_messages == 0


async def test_properties(make_async_queue: MakeAsyncQueue, strategy: str) -> None:
    name = unique_name("props")
    q = make_async_queue(name, capacity=3, max_message_size=64)
    assert q.name == name
    assert q.capacity == 3
    assert q.max_message_size == 64
    assert q.strategy == strategy
    attrs = q.attributes()
    assert (attrs.capacity, attrs.max_message_size, attrs.nonblocking) == (3, 64, True)
    assert q.fileno() >= 0
    assert strategy in repr(q)
    q.unlink()
    with pytest.raises(FileNotFoundError):
        MessageQueue(name)


async def test_is_an_anyio_object_stream(make_async_queue: MakeAsyncQueue) -> None:
    from anyio.streams.stapled import StapledObjectStream

    q = make_async_queue()
    assert isinstance(q, anyio.abc.ObjectReceiveStream)
    assert isinstance(q, anyio.abc.ObjectSendStream)
    stream: StapledObjectStream[Any] = StapledObjectStream(q, q)
    await stream.send(b"via anyio")
    assert await stream.receive() == (b"via anyio", 0)


def test_bad_strategy(queue_name: str) -> None:
    with pytest.raises(ValueError, match="strategy"):
        AsyncMessageQueue(queue_name, create=True, strategy="epoll")  # type: ignore[arg-type]
    # Nothing was created: the strategy is checked before opening.
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)


async def test_open_errors_are_the_cores(queue_name: str) -> None:
    with pytest.raises(FileNotFoundError):
        AsyncMessageQueue(queue_name)
    with pytest.raises(ValueError, match="exclusive"):
        AsyncMessageQueue(queue_name, exclusive=True)


async def test_write_only_and_read_only(make_async_queue: MakeAsyncQueue) -> None:
    name = unique_name("rw")
    writer = make_async_queue(name, read=False)
    reader = make_async_queue(name, create=False, write=False)
    await writer.send(b"one way")
    assert await reader.receive() == (b"one way", 0)
    with pytest.raises(OSError, match="not opened for reading"):
        await writer.receive()
    with pytest.raises(OSError, match="not opened for writing"):
        await reader.send(b"x")


# -- descriptors ----------------------------------------------------------------


async def test_own_nonblocking_descriptor(
    make_queue: MakeQueue, make_async_queue: MakeAsyncQueue
) -> None:
    """uvloop sets O_NONBLOCK on what it watches: the async object must never
    share a descriptor with a blocking queue."""
    mq = make_queue()
    q = make_async_queue(mq.name, create=False)
    assert q.fileno() != mq.fileno()

    async def later() -> None:
        await anyio.sleep(0.05)
        mq.send(b"wake")

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        with anyio.fail_after(5):
            assert await q.receive() == (b"wake", 0)  # waited on its descriptor
    assert q.attributes().nonblocking
    assert not mq.nonblocking


async def test_from_sync_takes_over(make_queue: MakeQueue, strategy: Any) -> None:
    mq = make_queue()
    assert not mq.nonblocking
    q = AsyncMessageQueue.from_sync(mq, strategy=strategy)
    assert mq.attributes().nonblocking
    assert q.name == mq.name
    await q.send(b"x")
    assert await q.receive() == (b"x", 0)
    await q.aclose()
    assert mq.closed


async def test_from_sync_twice_is_refused(make_queue: MakeQueue, strategy: Any) -> None:
    """Two objects on one descriptor: on asyncio a receiver then hung with a
    message in the queue, and trio raised BusyResourceError."""
    mq = make_queue()
    q = AsyncMessageQueue.from_sync(mq, strategy=strategy)
    try:
        with pytest.raises(ValueError, match="already took over"):
            AsyncMessageQueue.from_sync(mq, strategy=strategy)
        await q.send(b"still mine")
        with anyio.fail_after(5):
            assert await q.receive() == (b"still mine", 0)
    finally:
        await q.aclose()


async def test_from_sync_of_a_dup_makes_the_original_nonblocking(
    make_queue: MakeQueue, strategy: Any
) -> None:
    """As documented: O_NONBLOCK belongs to the open queue description, which
    dup() shares."""
    mq = make_queue()
    async with AsyncMessageQueue.from_sync(mq.dup(), strategy=strategy) as q:
        assert q.attributes().nonblocking
        assert mq.nonblocking
        with pytest.raises(BlockingIOError):
            mq.receive()


def test_from_sync_errors(make_queue: MakeQueue) -> None:
    with pytest.raises(TypeError, match="MessageQueue"):
        AsyncMessageQueue.from_sync(3)  # type: ignore[arg-type]
    mq = make_queue()
    mq.close()
    with pytest.raises(ValueError, match="closed"):
        AsyncMessageQueue.from_sync(mq)
    with pytest.raises(ValueError, match="strategy"):
        AsyncMessageQueue.from_sync(make_queue(), strategy="nope")  # type: ignore[arg-type]


# -- checkpoints ----------------------------------------------------------------


async def test_operations_check_cancellation(make_async_queue: MakeAsyncQueue) -> None:
    """In an already cancelled scope, send and receive raise the cancellation
    even when they could complete at once, and do nothing."""
    q = make_async_queue()
    await q.send(b"there")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.receive()
    assert scope.cancelled_caught
    for op in (q.receive_many(4), q.receive_into(bytearray(128)), q.send(b"not sent")):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await op
        assert scope.cancelled_caught
    assert q.attributes().current_messages == 1
    assert await q.receive() == (b"there", 0)


@pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)
async def test_operations_let_other_tasks_run(make_async_queue: MakeAsyncQueue) -> None:
    """Each send/receive yields to the scheduler even when it need not wait.

    asyncio only: trio may run the yielding task again first (its promise is
    tested by test_trio_assert_checkpoints).
    """
    q = make_async_queue()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.01)
        for op in (q.send(b"a"), q.receive(), q.send(b"b"), q.receive_many(2)):
            before = ticks
            await op
            assert ticks > before
        before = ticks
        await q.send(b"c")
        await q.receive_into(bytearray(128))
        assert ticks >= before + 2
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", TRIO_BACKENDS)
async def test_trio_assert_checkpoints(make_async_queue: MakeAsyncQueue) -> None:
    from trio.testing import assert_checkpoints

    q = make_async_queue()
    with assert_checkpoints():
        await q.send(b"1")
    with assert_checkpoints():
        await q.send(Message(b"2", 1))
    with assert_checkpoints():
        await q.receive()
    with assert_checkpoints():
        await q.receive_into(bytearray(128))
    await q.send(b"3")
    with assert_checkpoints():
        await q.receive_many(5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.send, b"4")
        with assert_checkpoints():
            await q.receive()  # after a wait


# -- timeouts are cancel scopes -------------------------------------------------


async def test_fail_after_and_move_on_after(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue(capacity=1)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):
            await q.receive()
    with anyio.move_on_after(0.05) as scope:
        await q.receive()
    assert scope.cancelled_caught
    assert q.attributes().current_messages == 0
    # A fresh queue: under the thread strategy, a worker of a receive that
    # timed out above may still take a message for the next receive.
    full = make_async_queue(capacity=1)
    await full.send(b"fills it")
    with anyio.move_on_after(0.05) as scope:
        await full.send(b"no room")
    assert scope.cancelled_caught
    assert full.receive_nowait() == (b"fills it", 0)
    with pytest.raises(anyio.WouldBlock):
        full.receive_nowait()  # the timed-out send did not send


@pytest.mark.parametrize("anyio_backend", TRIO_BACKENDS)
async def test_trio_fail_after(make_async_queue: MakeAsyncQueue) -> None:
    import trio

    q = make_async_queue()
    with pytest.raises(trio.TooSlowError):
        with trio.fail_after(0.05):
            await q.receive()
    await q.send(b"x")
    with trio.fail_after(5):
        assert await q.receive() == (b"x", 0)


# -- closing --------------------------------------------------------------------


async def test_closed_object_raises_closed_resource_error(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue()
    await q.send(b"left behind")
    async with q:
        pass
    await q.aclose()  # again: nothing happens
    with pytest.raises(anyio.ClosedResourceError):
        await q.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await q.receive_many(2)
    with pytest.raises(anyio.ClosedResourceError):
        await q.receive_into(bytearray(128))
    with pytest.raises(anyio.ClosedResourceError):
        await q.send(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        q.send_nowait(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        q.receive_nowait()
    with pytest.raises(anyio.ClosedResourceError):
        q.attributes()
    with pytest.raises(anyio.ClosedResourceError):
        q.fileno()
    assert "closed" in repr(q)
    assert q.name is not None
    assert descriptors_on(q.name) == 0


async def test_aclose_wakes_every_waiter(make_async_queue: MakeAsyncQueue) -> None:
    """Receivers on an empty queue and senders on a full one, several in each
    direction on one object, all get ClosedResourceError when another task
    closes it."""
    empty = make_async_queue()
    full = make_async_queue(capacity=1)
    await full.send(b"full")
    outcomes: list[str] = []

    async def wait(op: Any) -> None:
        try:
            await op
        except anyio.ClosedResourceError:
            outcomes.append("closed")
        else:
            outcomes.append("returned")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(wait, empty.receive())
                tg.start_soon(wait, full.send(b"more"))
            tg.start_soon(wait, empty.receive_many(3))
            tg.start_soon(wait, empty.receive_into(bytearray(128)))
            await anyio.sleep(0.2)  # all of them waiting
            assert outcomes == []
            await empty.aclose()
            await full.aclose()
    assert outcomes == ["closed"] * 8


async def test_aclose_is_prompt(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    woke_after: list[float] = []

    async def waiter() -> None:
        with pytest.raises(anyio.ClosedResourceError):
            await q.receive()
        woke_after.append(anyio.current_time() - closed_at)

    closed_at = 0.0
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.1)
        closed_at = anyio.current_time()
        await q.aclose()
    assert woke_after[0] < 0.5


# -- many tasks on one object -----------------------------------------------------


async def test_many_senders_and_receivers_on_one_object(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue()
    senders, receivers, per_sender = 6, 5, 40
    total = senders * per_sender
    got: list[list[bytes]] = [[] for _ in range(receivers)]
    left = total

    async def send(s: int) -> None:
        for i in range(per_sender):
            await q.send(b"%d:%d" % (s, i))

    async def receive(r: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            got[r].append((await q.receive()).data)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for r in range(receivers):
                tg.start_soon(receive, r)
            for s in range(senders):
                tg.start_soon(send, s)
    everything = sorted(m for part in got for m in part)
    assert everything == sorted(
        b"%d:%d" % (s, i) for s in range(senders) for i in range(per_sender)
    )
    # One sender's messages reach each receiver in the order they were sent.
    for part in got:
        for s in range(senders):
            mine = [int(m.split(b":")[1]) for m in part if m.startswith(b"%d:" % s)]
            assert mine == sorted(mine)


async def test_many_receive_many_callers(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    got: list[bytes] = []

    async def drain() -> None:
        while len(got) < 100:
            with anyio.move_on_after(0.2):
                got.extend(m.data for m in await q.receive_many(3))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(drain)
            for i in range(100):
                await q.send(b"%03d" % i)
    assert sorted(got) == [b"%03d" % i for i in range(100)]


# -- another process --------------------------------------------------------------


async def test_cross_process_async_for(make_async_queue: MakeAsyncQueue) -> None:
    name = unique_name("xproc")
    q = make_async_queue(name, capacity=4, max_message_size=64)
    count = 300
    producer = textwrap.dedent(
        f"""
        import anyposixmq
        with anyposixmq.MessageQueue({name!r}) as q:
            for i in range({count}):
                q.send(b"%d" % i, timeout=30)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = await anyio.open_process([sys.executable, "-c", producer], env=env)
    try:
        got = []
        with anyio.fail_after(30):
            async for msg in q:
                got.append(int(msg.data))
                if len(got) == count:
                    break
        assert got == list(range(count))
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.aclose()
