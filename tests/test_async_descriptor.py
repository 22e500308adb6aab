"""AsyncMessageQueue and the queue's descriptor: nothing of the object stays
on the descriptor between its waits, or after it is closed or dropped.

Something left in the event loop (a reader or writer callback, a
registration) would outlive the descriptor on a number that the next open
file reuses: waiting on that file through the same loop would then hang or
fail.  And a user who waits on ``fileno()`` between the object's waits would
replace or remove it.  These tests wait in both directions, let the
descriptor go (by ``aclose()`` or by dropping the object), put a socket on
the freed number and wait on it through the same loop; and they wait on
``fileno()`` themselves between the object's waits.
"""

from __future__ import annotations

import os
import socket

import anyio
import pytest
from _helpers import MakeAsyncQueue, descriptors_on, unique_name

import anyposixmq

pytestmark = pytest.mark.anyio


async def _wait_both_ways(q: anyposixmq.AsyncMessageQueue) -> None:
    """Make one receive and one send wait (and succeed), in the object's own way."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.receive)
        await anyio.sleep(0.05)  # the receive waits on the empty queue
        q.send_nowait(b"wake")
    while True:
        try:
            q.send_nowait(b"fill")
        except anyio.WouldBlock:
            break
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.send, b"more")
        await anyio.sleep(0.05)  # the send waits on the full queue
        await q.receive()
    while True:
        try:
            q.receive_nowait()
        except anyio.WouldBlock:
            break


async def _socket_on(fd: int) -> None:
    """Put a socket on the free descriptor number *fd* and wait on it both ways."""
    with pytest.raises(OSError):
        os.fstat(fd)  # free, so dup2 below replaces nothing of anybody's
    a, b = socket.socketpair()  # the lowest free numbers: likely fd itself
    try:
        if b.fileno() == fd:
            a, b = b, a
        dup = a.fileno() != fd
        if dup:
            os.dup2(a.fileno(), fd)
        try:
            b.send(b"x")
            with anyio.fail_after(5):
                await anyio.wait_readable(fd)
                await anyio.wait_writable(fd)
        finally:
            if dup:
                os.close(fd)
    finally:
        a.close()
        b.close()


async def test_descriptor_number_reused_after_aclose(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue(capacity=2)
    await _wait_both_ways(q)
    fd = q.fileno()
    await q.aclose()
    await _socket_on(fd)


async def test_descriptor_number_reused_after_the_object_is_dropped(strategy: str) -> None:
    name = unique_name("w")
    try:
        q = anyposixmq.AsyncMessageQueue(
            name,
            create=True,
            capacity=2,
            max_message_size=64,
            strategy=strategy,  # type: ignore[arg-type]
        )
        await _wait_both_ways(q)
        fd = q.fileno()
        with pytest.warns(ResourceWarning, match="unclosed <AsyncMessageQueue") as caught:
            del q
        assert len(caught) == 1  # the object's, not also its core's
        with anyio.fail_after(5):
            while descriptors_on(name):  # a thread-strategy worker ends its slice
                await anyio.sleep(0.01)
        await _socket_on(fd)
    finally:
        anyposixmq.unlink(name, missing_ok=True)


async def test_waiting_on_fileno_yourself_between_our_waits(
    make_async_queue: MakeAsyncQueue,
) -> None:
    """A registration of ours that stayed between waits would be replaced (and
    then removed) by the user's own wait: our next wait would never wake."""
    q = make_async_queue(capacity=1)
    fd = q.fileno()
    with anyio.fail_after(10):
        for _ in range(2):
            await _wait_both_ways(q)
            await anyio.wait_writable(fd)  # empty: writable
            q.send_nowait(b"x")
            await anyio.wait_readable(fd)  # one message: readable
            assert q.receive_nowait() == (b"x", 0)
        await _wait_both_ways(q)


@pytest.mark.parametrize("strategy", ["poll"])
async def test_waiting_on_fileno_while_we_wait_is_busy(make_async_queue: MakeAsyncQueue) -> None:
    """One waiter per direction and descriptor: the user's wait is refused
    while ours runs, and ours is unharmed."""
    q = make_async_queue()
    got: list[anyposixmq.Message] = []

    async def receive() -> None:
        got.append(await q.receive())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await anyio.sleep(0.05)  # the receive waits on the empty queue
            with pytest.raises(anyio.BusyResourceError):
                await anyio.wait_readable(q.fileno())
            q.send_nowait(b"still ours")
    assert got == [(b"still ours", 0)]
