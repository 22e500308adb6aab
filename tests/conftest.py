"""Fixtures shared by the whole suite.

Queues cost RLIMIT_MSGQUEUE bytes per user (819,200 here, about nine queues
of the default 10 x 8192): tests use small queues, unique names, and these
fixtures unlink them even when the test fails.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _helpers import (
    ASYNCIO_BACKENDS,
    TRIO_BACKENDS,
    MakeAsyncQueue,
    MakeQueue,
    NoSystemCalls,
    replace_binding,
    unique_name,
)

import anyposixmq


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A unique queue name, unlinked after the test whatever happened."""
    name = unique_name()
    yield name
    anyposixmq.unlink(name, missing_ok=True)


@pytest.fixture
def make_queue() -> Iterator[MakeQueue]:
    """Create small queues (capacity 4, 128-byte messages unless given); all are
    closed and unlinked after the test."""
    opened: list[anyposixmq.MessageQueue] = []
    names: list[str] = []

    def make(name: str | None = None, **kwargs: Any) -> anyposixmq.MessageQueue:
        if name is None:
            name = unique_name()
        kwargs.setdefault("create", True)
        if kwargs["create"]:
            kwargs.setdefault("capacity", 4)
            kwargs.setdefault("max_message_size", 128)
        names.append(name)
        mq = anyposixmq.MessageQueue(name, **kwargs)
        opened.append(mq)
        return mq

    yield make
    for mq in opened:
        mq.close()
    for name in names:
        anyposixmq.unlink(name, missing_ok=True)


@pytest.fixture
def mq(make_queue: MakeQueue) -> anyposixmq.MessageQueue:
    """One small queue (capacity 4, 128-byte messages), open for reading and writing."""
    return make_queue()


# -- the async matrix: every async test runs on each backend (and strategy) --


@pytest.fixture(params=[*ASYNCIO_BACKENDS, *TRIO_BACKENDS])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """anyio's pytest plugin runs each async test on asyncio, asyncio+uvloop and trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["poll", "thread"])
def strategy(request: pytest.FixtureRequest) -> str:
    """The AsyncMessageQueue waiting strategies; both are tested on Linux."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def make_async_queue(strategy: str) -> AsyncIterator[MakeAsyncQueue]:
    """Create small AsyncMessageQueues (capacity 4, 128-byte messages unless given)
    with the test's strategy; all are closed (in the test's event loop) and
    unlinked after the test."""
    opened: list[anyposixmq.AsyncMessageQueue] = []
    names: list[str] = []

    def make(name: str | None = None, **kwargs: Any) -> anyposixmq.AsyncMessageQueue:
        if name is None:
            name = unique_name("a")
        kwargs.setdefault("create", True)
        kwargs.setdefault("strategy", strategy)
        if kwargs["create"]:
            kwargs.setdefault("capacity", 4)
            kwargs.setdefault("max_message_size", 128)
        names.append(name)
        q = anyposixmq.AsyncMessageQueue(name, **kwargs)
        opened.append(q)
        return q

    try:
        yield make
    finally:
        for q in opened:
            await q.aclose()
        for name in names:
            anyposixmq.unlink(name, missing_ok=True)


@pytest.fixture
def no_syscalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if MessageQueue makes any system call meanwhile."""
    # Queues of earlier tests must not be finalised (a real call) meanwhile.
    gc.collect()
    gc.disable()
    replace_binding(monkeypatch, NoSystemCalls())
    try:
        yield
    finally:
        monkeypatch.undo()
        gc.enable()
