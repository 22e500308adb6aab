"""AsyncMessageQueue on asyncio keeps its reader and writer callbacks on the
queue's descriptor between waits: they must never outlive the descriptor.

A callback left in the event loop after the descriptor is closed would sit on
a number that the next open file reuses: waiting on that file through the
same loop would then hang or fail.  These tests wait in both directions, let
the descriptor go (by ``aclose()`` or by dropping the object), put a socket
on the freed number, and wait on it through the same loop.
"""

from __future__ import annotations

import gc
import os
import socket
import warnings

import anyio
import pytest
from _helpers import ASYNCIO_BACKENDS, MakeAsyncQueue, unique_name

import anyposixmq

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)]


async def _wait_both_ways(q: anyposixmq.AsyncMessageQueue) -> None:
    """Make one receive and one send wait, so that both callbacks are in place."""
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


@pytest.mark.parametrize("strategy", ["poll"])
async def test_descriptor_number_reused_after_aclose(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue(capacity=2)
    await _wait_both_ways(q)
    fd = q.fileno()
    await q.aclose()
    await _socket_on(fd)


async def test_descriptor_number_reused_after_the_object_is_dropped() -> None:
    name = unique_name("w")
    try:
        q = anyposixmq.AsyncMessageQueue(name, create=True, capacity=2, max_message_size=64)
        await _wait_both_ways(q)
        fd = q.fileno()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the core's "unclosed"
            del q
            gc.collect()
        await _socket_on(fd)
    finally:
        anyposixmq.unlink(name, missing_ok=True)
