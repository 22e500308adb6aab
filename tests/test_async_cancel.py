"""Cancel safety of AsyncMessageQueue: a cancelled receive returned the message
or left it in the queue, a cancelled send did not send.

Under anyio cancel scopes on every backend and strategy, and under plain
asyncio cancellation (``asyncio.wait_for``, ``asyncio.timeout``,
``Task.cancel``), which anyio's shields do not stop.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import anyio
import pytest
from _helpers import ASYNCIO_BACKENDS, MakeAsyncQueue, MakeQueue

from anyposixmq import AsyncMessageQueue, Message

pytestmark = pytest.mark.anyio

T = TypeVar("T")
COUNT = 300


async def _pause(rng: random.Random) -> None:
    """Now and then let the other side get ahead, so that the next operation
    often has to wait (on a full or an empty queue) and is cancelled there."""
    if rng.random() < 0.3:
        await anyio.sleep(rng.random() * 0.001)


def _delay(rng: random.Random) -> float:
    """A cancellation delay: often at once or within a few loop turns, else later."""
    return 0.0 if rng.random() < 0.2 else rng.random() * 0.001


async def _receive_one(q: AsyncMessageQueue, how: int) -> list[Message]:
    """receive, receive_into or receive_many: each must be as safe as the others."""
    if how == 0:
        return [await q.receive()]
    if how == 1:
        buf = bytearray(q.max_message_size)
        n, prio = await q.receive_into(buf)
        return [Message(bytes(buf[:n]), prio)]
    return await q.receive_many(3)


async def test_cancelled_receive_leaves_the_message(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()

    async def later() -> None:
        await anyio.sleep(0.1)
        await q.send(b"after the timeout")

    with anyio.move_on_after(0.02) as scope:
        await q.receive()
    assert scope.cancelled_caught
    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        with anyio.fail_after(5):
            assert await q.receive() == (b"after the timeout", 0)


async def test_cancelled_send_did_not_send(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue(capacity=2)
    await q.send(b"1")
    await q.send(b"2")
    for _ in range(3):
        with anyio.move_on_after(0.02) as scope:
            await q.send(b"never")
        assert scope.cancelled_caught
    assert [q.receive_nowait().data, q.receive_nowait().data] == [b"1", b"2"]
    with pytest.raises(anyio.WouldBlock):
        q.receive_nowait()


async def test_random_cancellation_stress(make_async_queue: MakeAsyncQueue) -> None:
    """Hundreds of randomly timed cancel scopes on both ends: every message is
    received exactly once, in order."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    q = make_async_queue()
    got: list[int] = []
    cancelled = 0

    async def produce() -> None:
        nonlocal cancelled
        for i in range(COUNT):
            await _pause(rng)
            while True:
                with anyio.move_on_after(_delay(rng)) as scope:
                    await q.send(b"%d" % i)
                if not scope.cancelled_caught:
                    break
                cancelled += 1

    async def consume() -> None:
        nonlocal cancelled
        while len(got) < COUNT:
            await _pause(rng)
            with anyio.move_on_after(_delay(rng)) as scope:
                got.extend(int(m.data) for m in await _receive_one(q, rng.randrange(3)))
            cancelled += scope.cancelled_caught

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            tg.start_soon(produce)
    assert got == list(range(COUNT)), f"seed {seed}"
    assert q.attributes().current_messages == 0
    assert cancelled >= 100, f"only {cancelled} cancellations: the test did not test much"


# -- plain asyncio cancellation ---------------------------------------------------


async def _via_wait_for(make: Callable[[], Awaitable[T]], delay: float) -> tuple[bool, T | None]:
    try:
        return True, await asyncio.wait_for(make(), delay)
    except asyncio.TimeoutError:  # not yet TimeoutError itself on Python 3.10
        return False, None


async def _via_timeout(make: Callable[[], Awaitable[T]], delay: float) -> tuple[bool, T | None]:
    try:
        async with asyncio.timeout(delay):  # type: ignore[attr-defined,unused-ignore]
            return True, await make()
    except TimeoutError:
        return False, None


async def _via_task_cancel(make: Callable[[], Awaitable[T]], delay: float) -> tuple[bool, T | None]:
    async def run() -> T:
        return await make()

    task = asyncio.ensure_future(run())
    # Cancel before it starts, at one of its first awaits, or later.
    if delay < 0.0003:
        for _ in range(int(delay * 10_000)):
            await asyncio.sleep(0)
    else:
        await asyncio.sleep(delay)
    task.cancel()
    try:
        return True, await task
    except asyncio.CancelledError:
        return False, None


FLAVOURS = {"wait_for": _via_wait_for, "timeout": _via_timeout, "task_cancel": _via_task_cancel}


@pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)
@pytest.mark.parametrize(
    "flavour",
    [
        pytest.param(
            flavour,
            marks=pytest.mark.skipif(
                flavour == "timeout" and sys.version_info < (3, 11),
                reason="asyncio.timeout is new in Python 3.11",
            ),
        )
        for flavour in sorted(FLAVOURS)
    ],
)
async def test_plain_asyncio_cancellation_stress(
    make_async_queue: MakeAsyncQueue, flavour: str
) -> None:
    """The trio-style order (check, try, shielded checkpoint) loses messages
    here: asyncio's own cancellation goes through anyio's shields."""
    cancel = FLAVOURS[flavour]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    q = make_async_queue()
    got: list[int] = []
    cancelled = 0

    async def produce() -> None:
        nonlocal cancelled
        for i in range(COUNT):
            await _pause(rng)
            while True:
                done, _ = await cancel(partial(q.send, b"%d" % i), _delay(rng))
                if done:
                    break
                cancelled += 1

    async def consume() -> None:
        nonlocal cancelled
        while len(got) < COUNT:
            await _pause(rng)
            how = rng.randrange(3)
            done, msgs = await cancel(partial(_receive_one, q, how), _delay(rng))
            if done:
                assert msgs is not None
                got.extend(int(m.data) for m in msgs)
            else:
                cancelled += 1

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            tg.start_soon(produce)
    assert got == list(range(COUNT)), f"seed {seed}"
    assert q.attributes().current_messages == 0
    assert cancelled >= 100, f"only {cancelled} cancellations: the test did not test much"


# -- cancellation is prompt -------------------------------------------------------


async def test_cancelled_wait_returns_within_100ms(make_async_queue: MakeAsyncQueue) -> None:
    """Median over a few tries (the machine is shared), for a receive on an
    empty queue and a send on a full one."""
    empty = make_async_queue()
    full = make_async_queue(capacity=1)
    await full.send(b"x")
    delays: list[float] = []
    for op in [empty.receive, lambda: full.send(b"y")] * 3:
        async with anyio.create_task_group() as tg:
            tg.start_soon(op)
            await anyio.sleep(0.05)  # waiting by now (in a worker, for "thread")
            start = anyio.current_time()
            tg.cancel_scope.cancel()
        delays.append(anyio.current_time() - start)
    assert statistics.median(delays) < 0.1, delays
    assert full.attributes().current_messages == 1


# -- the thread strategy never strands a message ----------------------------------


@pytest.mark.parametrize("strategy", ["thread"])
async def test_thread_abandoned_worker_stashes_for_the_next_receive(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue
) -> None:
    """A receive is cancelled while its worker waits; a message arrives at
    once, before the worker's slice ends: the next receive still gets it."""
    q = make_async_queue()
    sender = make_queue(q.name, create=False)
    taken_by_a_worker = 0
    for trial in range(10):
        with anyio.move_on_after(0.03):
            await q.receive()
        sender.send(b"m%d" % trial)
        await anyio.sleep(0.005)
        # Gone from the kernel queue, yet nobody received it: a worker has it.
        taken_by_a_worker += sender.attributes().current_messages == 0
        with anyio.fail_after(5):
            assert await q.receive() == (b"m%d" % trial, 0)
    assert taken_by_a_worker >= 1  # the path under test was taken


@pytest.mark.parametrize("strategy", ["thread"])
@pytest.mark.parametrize("write", [True, False], ids=["read-write", "read-only"])
async def test_thread_stash_goes_back_to_the_queue_on_close(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue, write: bool
) -> None:
    """Opened read-only, the object puts back through a descriptor of its own."""
    other = make_queue()
    q = make_async_queue(other.name, create=False, write=write)
    for _ in range(10):  # until an abandoned worker takes the message
        with anyio.move_on_after(0.03):
            await q.receive()
        other.send(b"precious")
        await anyio.sleep(0.005)
        if other.attributes().current_messages == 0:
            break
        assert await q.receive() == (b"precious", 0)
    assert other.attributes().current_messages == 0  # the path under test was taken
    await q.aclose()
    assert other.receive(timeout=2) == (b"precious", 0)  # put back, maybe by a thread
    assert list(other.drain()) == []


@pytest.mark.parametrize("strategy", ["thread"])
async def test_thread_stash_keeps_order_for_one_consumer(
    make_async_queue: MakeAsyncQueue, make_queue: MakeQueue
) -> None:
    """Many short receives that time out while another process-like sender
    trickles messages in: stash and kernel together keep FIFO order."""
    q = make_async_queue()
    sender = make_queue(q.name, create=False)
    got: list[bytes] = []

    async def trickle() -> None:
        for i in range(40):
            await anyio.to_thread.run_sync(sender.send, b"%02d" % i)
            await anyio.sleep(0.003)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(trickle)
            while len(got) < 40:
                with anyio.move_on_after(0.004):
                    got.append((await q.receive()).data)
    assert got == [b"%02d" % i for i in range(40)]
