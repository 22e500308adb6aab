"""The same AsyncMessageQueue code under plain ``trio.run``, ``asyncio.run`` and
uvloop, without anyio's runner or pytest plugin in between."""

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


async def exercise(name: str, strategy: str) -> list[object]:
    """Producer and consumer tasks, a timeout, a close that wakes a waiter."""
    log: list[object] = []
    q = AsyncMessageQueue(
        name,
        create=True,
        capacity=2,
        max_message_size=64,
        strategy=strategy,  # type: ignore[arg-type]
    )
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
