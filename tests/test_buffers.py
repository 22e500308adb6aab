"""Caller's buffers that change size while an operation waits.

A length checked before a wait is checked again where it is used: no input
corrupts memory.  While an operation uses a buffer it holds a view of it, so
that a ``bytearray`` cannot be resized meanwhile (``BufferError``); the async
``receive_into`` keeps no view across its awaits, so it checks the buffer
again at the copy, and a buffer that no longer fits gets the same ValueError
as before the wait, with the message kept for the next receive.
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from _helpers import MakeAsyncQueue, MakeQueue

from anyposixmq import PRIORITY_MAX, AsyncMessageQueue

TOO_SMALL = "smaller than the max_message_size"


async def _until_waiting(q: AsyncMessageQueue, *, sending: bool = False) -> None:
    with anyio.fail_after(10):
        while True:
            stats = q.statistics()
            if (stats.tasks_waiting_send if sending else stats.tasks_waiting_receive) == 1:
                return
            await anyio.sleep(0.001)


@pytest.mark.anyio
async def test_a_buffer_that_shrinks_while_receive_into_waits(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue()
    buffer = bytearray(q.max_message_size)
    outcome: list[str] = []

    async def receive() -> None:
        with pytest.raises(ValueError, match=TOO_SMALL):
            await q.receive_into(buffer)
        outcome.append("refused")

    async with anyio.create_task_group() as tg:
        tg.start_soon(receive)
        await _until_waiting(q)
        del buffer[8:]  # no view is held across the wait: this works
        await q.send(b"a message longer than eight bytes")
    assert outcome == ["refused"]
    assert bytes(buffer) == bytes(8)  # nothing written
    # Kept for the next receive, which a buffer that fits gets.
    buffer.extend(bytes(q.max_message_size))
    assert await q.receive_into(buffer) == (33, 0)
    assert buffer[:33] == b"a message longer than eight bytes"


@pytest.mark.anyio
async def test_a_message_buffer_cannot_be_resized_while_send_waits(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue(capacity=1)
    await q.send(b"fills it")
    data = bytearray(b"waiting")

    async with anyio.create_task_group() as tg:
        tg.start_soon(q.send, data, 3)
        await _until_waiting(q, sending=True)
        with pytest.raises(BufferError):
            data.extend(b" and more")
        with pytest.raises(BufferError):
            del data[2:]
        assert await q.receive() == (b"fills it", 0)
    assert await q.receive() == (b"waiting", 3)
    data.extend(b"!")  # released once the send is done


def test_sync_buffers_cannot_be_resized_while_a_call_uses_them(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1)
    buffer = bytearray(mq.max_message_size)
    got: list[tuple[int, int]] = []
    receiver = threading.Thread(target=lambda: got.append(mq.receive_into(buffer, timeout=10)))
    receiver.start()
    deadline = time.monotonic() + 10
    while True:  # until the receive holds its view
        try:
            buffer.append(0)
            del buffer[-1]
        except BufferError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.001)
    with pytest.raises(BufferError):
        del buffer[4:]
    mq.send(b"intact")
    receiver.join()
    assert got == [(6, 0)]
    assert buffer[:6] == b"intact"

    mq.send(b"fills it")
    data = bytearray(b"waiting")
    sender = threading.Thread(target=mq.send, args=(data,), kwargs={"timeout": 10})
    sender.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            data.append(0)
            del data[-1]
        except BufferError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert mq.receive() == (b"fills it", 0)
    sender.join()
    assert mq.receive() == (b"waiting", 0)


@pytest.mark.stress
@pytest.mark.timeout(300)
@pytest.mark.anyio
async def test_buffers_resized_all_along_lose_nothing(make_async_queue: MakeAsyncQueue) -> None:
    """10,000 sends and receives while a task and a thread resize their buffers
    again and again: every number arrives exactly once, and memory stays whole."""
    count = 10_000
    assert count <= PRIORITY_MAX + 1
    q = make_async_queue(capacity=4, max_message_size=16)
    receive_buffer = bytearray(16)
    payload = bytearray(8)
    stop = threading.Event()
    refused = {"resize": 0, "receive": 0}

    def resize(buffer: bytearray, small: int, large: int) -> None:
        try:
            if len(buffer) > small:
                del buffer[small:]
            else:
                buffer.extend(bytes(large - len(buffer)))
        except BufferError:
            refused["resize"] += 1

    def thread_resizer() -> None:
        while not stop.is_set():
            resize(receive_buffer, 8, 16)
            resize(payload, 8, 9)
            time.sleep(0.0002)

    async def task_resizer() -> None:
        while not stop.is_set():
            resize(receive_buffer, 4, 16)
            resize(payload, 8, 10)
            await anyio.sleep(0.0005)

    # Each message's number is its priority: the bytes are in a buffer that
    # the resizers may shrink as soon as a receive has returned.
    async def produce() -> None:
        for i in range(count):
            payload[:8] = b"%08d" % i  # the length may change around it
            await q.send(payload, i)

    got: list[int] = []

    async def consume() -> None:
        while len(got) < count:
            try:
                _, number = await q.receive_into(receive_buffer)
            except ValueError:  # resized below max_message_size meanwhile
                refused["receive"] += 1
                await anyio.sleep(0)
                continue
            got.append(number)

    thread = threading.Thread(target=thread_resizer)
    thread.start()
    try:
        with anyio.fail_after(300):
            async with anyio.create_task_group() as tg:
                tg.start_soon(task_resizer)
                tg.start_soon(produce)
                await consume()
                stop.set()
    finally:
        stop.set()
        thread.join()
    assert sorted(got) == list(range(count))
    assert refused["receive"] > 0
    assert refused["resize"] > 0
    assert q.statistics().current_messages == 0
