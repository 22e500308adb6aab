"""Leaks: many opens and closes, a million send/receive pairs, and the error
paths in between, with no growth in descriptors or memory.

Memory is the resident set size, measured after a warm-up run of the same
loop (so caches, free lists and the spare receive buffers are already
there); the tolerance is far below what a leak of a few bytes per call would
add over the counts used here.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from _helpers import unique_name

import anyposixmq
from anyposixmq import AsyncMessageQueue, MessageQueue

pytestmark = [pytest.mark.stress, pytest.mark.timeout(600)]

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def assert_no_growth(loop: Callable[[int], None], count: int, tolerance: int) -> None:
    """Run *loop* once to warm up, then *count* times: descriptors and RSS stay put."""
    loop(max(count // 10, 1))
    gc.collect()
    fds, mem = descriptors(), rss()
    loop(count)
    gc.collect()
    assert descriptors() == fds
    grown = rss() - mem
    assert grown < tolerance, f"RSS grew by {grown / MIB:.1f} MiB over {count:,} iterations"


@pytest.fixture
def name() -> Iterator[str]:
    n = unique_name("leak")
    yield n
    anyposixmq.unlink(n, missing_ok=True)


def test_open_close_10000_queues(name: str) -> None:
    def create_and_remove(count: int) -> None:
        for _ in range(count):
            mq = MessageQueue(name, create=True, exclusive=True, capacity=1, max_message_size=16)
            mq.close()
            anyposixmq.unlink(name)

    assert_no_growth(create_and_remove, 10_000, 2 * MIB)

    with MessageQueue(name, create=True, capacity=1, max_message_size=16) as keep:

        def reopen(count: int) -> None:
            for i in range(count):
                if i % 4 == 0:
                    MessageQueue(name).close()
                elif i % 4 == 1:
                    keep.dup().close()
                elif i % 4 == 2:
                    MessageQueue.from_fd(keep.dup().detach(), name=name).close()
                else:
                    with MessageQueue(name, read=False):
                        pass

        assert_no_growth(reopen, 10_000, 2 * MIB)


def test_failed_opens_leak_nothing(name: str) -> None:
    with MessageQueue(name, create=True, capacity=1, max_message_size=16) as mq:
        mq.send(b"x")

        def fail(count: int) -> None:
            for _ in range(count):
                for call in (
                    lambda: MessageQueue(name + "-missing"),
                    lambda: MessageQueue(name, create=True, exclusive=True),
                    lambda: MessageQueue(name + "-big", create=True, capacity=10**6),
                    lambda: mq.send_nowait(b"full"),
                    lambda: MessageQueue.from_fd(0),
                ):
                    try:
                        call()
                    except OSError:
                        pass
                    else:
                        raise AssertionError("did not fail")

        assert_no_growth(fail, 10_000, 2 * MIB)


def test_a_million_send_receive_pairs(name: str) -> None:
    with MessageQueue(name, create=True, capacity=4, max_message_size=128) as mq:
        data = b"0123456789abcdef"
        writable = bytearray(data)
        view = memoryview(bytearray(b"--" + data + b"--"))[2:-2]
        into = bytearray(128)

        def pairs(count: int) -> None:
            send, receive = mq.send, mq.receive
            for _ in range(count // 4):
                send(data, 3)
                receive()
                send(writable)
                mq.receive_into(into)
                mq.send_nowait(view, 1)
                mq.receive_nowait()
                send(data, timeout=1)
                receive(timeout=1)
            assert mq._try_receive() is None  # nothing stuck, nothing extra

        assert_no_growth(pairs, 1_000_000, 4 * MIB)


def test_empty_and_full_errors_leak_nothing(name: str) -> None:
    with MessageQueue(name, create=True, capacity=1, max_message_size=16) as mq:

        def errors(count: int) -> None:
            for _ in range(count // 4):
                calls: list[Callable[[], object]] = [
                    mq.receive_nowait,
                    lambda: mq.receive(timeout=0),
                    lambda: mq.send(b"x"),
                    lambda: mq.send_nowait(b"y"),
                    lambda: mq.send(b"y", timeout=0),
                    mq.receive,
                ]
                for call in calls:
                    try:
                        call()
                    except (BlockingIOError, TimeoutError):
                        pass

        assert_no_growth(errors, 200_000, 2 * MIB)


BACKENDS = [
    ("asyncio", {}),
    ("asyncio", {"use_uvloop": True}),
    ("trio", {}),
]


@pytest.mark.parametrize("strategy", ["poll", "thread"])
@pytest.mark.parametrize(("backend", "options"), BACKENDS, ids=["asyncio", "uvloop", "trio"])
def test_async_open_close_and_pairs(
    name: str, backend: str, options: dict[str, Any], strategy: Any
) -> None:
    async def opens(count: int) -> None:
        for _ in range(count):
            amq = AsyncMessageQueue(
                name, create=True, capacity=4, max_message_size=64, strategy=strategy
            )
            await amq.aclose()

    async def pairs(count: int) -> None:
        async with AsyncMessageQueue(name, strategy=strategy) as amq:
            for i in range(count // 2):
                await amq.send(b"ping", i & 7)
                await amq.receive()
                amq.send_nowait(b"pong")
                assert await amq.receive_many(8) == [(b"pong", 0)]

    def run(func: Callable[[int], Any]) -> Callable[[int], None]:
        return lambda count: anyio.run(func, count, backend=backend, backend_options=options)

    assert_no_growth(run(opens), 2_000, 2 * MIB)
    assert_no_growth(run(pairs), 100_000, 4 * MIB)


def test_the_measure_catches_a_leak() -> None:
    kept: list[bytes] = []

    def leaky(count: int) -> None:
        kept.extend(b"%64d" % i for i in range(count))

    with pytest.raises(AssertionError, match="RSS grew"):
        assert_no_growth(leaky, 100_000, 2 * MIB)
