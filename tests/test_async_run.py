"""The same AsyncMessageQueue code under plain ``trio.run``, ``asyncio.run`` and
uvloop, without anyio's runner or pytest plugin in between; and one object
under all three in turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anyio
import pytest
import trio
import uvloop
from _helpers import unique_name

from anyposixmq import AsyncMessageQueue, unlink


@pytest.fixture(params=["poll", "thread"])
def strategy(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def name() -> Iterator[str]:
    name = unique_name("run")
    yield name
    unlink(name, missing_ok=True)


def _open(name: str, strategy: str) -> AsyncMessageQueue:
    return AsyncMessageQueue(
        name,
        create=True,
        capacity=2,
        max_message_size=64,
        strategy=strategy,  # type: ignore[arg-type]
    )


async def exercise(name: str, strategy: str) -> list[object]:
    """Producer and consumer tasks, a timeout, a close that wakes a waiter."""
    log: list[object] = []
    q = _open(name, strategy)
    async with q:

        async def produce() -> None:
            for i in range(20):
                await q.send(b"%d" % i, i % 3)

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            got = []
            async for msg in q:
                got.append(int(msg.data))
                if len(got) == 20:
                    break
        log.append(sorted(got) == list(range(20)))
        with anyio.move_on_after(0.02) as scope:
            await q.receive()
        log.append(scope.cancelled_caught)

        async def close_soon() -> None:
            await anyio.sleep(0.05)
            await q.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(close_soon)
            try:
                await q.receive()
            except anyio.ClosedResourceError:
                log.append("closed")
    return log


EXPECTED = [True, True, "closed"]


def test_plain_trio_run(name: str, strategy: str) -> None:
    assert trio.run(exercise, name, strategy) == EXPECTED


def test_plain_asyncio_run(name: str, strategy: str) -> None:
    assert asyncio.run(exercise(name, strategy)) == EXPECTED


def test_plain_uvloop(name: str, strategy: str) -> None:
    assert uvloop.run(exercise(name, strategy)) == EXPECTED


async def _waiters_both_ways(q: AsyncMessageQueue) -> list[bytes]:
    """Three receivers wait at once on the empty queue, then three senders on
    the full one (capacity 2): every message arrives once."""
    got: list[bytes] = []

    async def receive() -> None:
        got.append((await q.receive()).data)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(receive)
            await anyio.sleep(0.05)  # all three waiting
            for i in range(3):
                await q.send(b"r%d" % i)
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(q.send, b"s%d" % i)
            await anyio.sleep(0.05)  # two sent, three waiting for room
            for _ in range(5):
                await receive()
    return sorted(got)


def test_one_object_under_asyncio_then_trio_then_uvloop(name: str, strategy: str) -> None:
    """Locks and limiters belong to the loop that made them: each loop gets
    its own, and none of them outlives its loop in the object."""
    q = _open(name, strategy)
    expected = sorted([b"r0", b"r1", b"r2", b"s0", b"s1", b"s2", b"s3", b"s4"])
    try:
        for backend, options in [
            ("asyncio", {}),
            ("trio", {}),
            ("asyncio", {"loop_factory": uvloop.new_event_loop}),
            ("asyncio", {}),
        ]:
            got = anyio.run(_waiters_both_ways, q, backend=backend, backend_options=options)
            assert got == expected, backend
    finally:
        anyio.run(q.aclose)
