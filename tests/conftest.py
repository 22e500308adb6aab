"""Fixtures shared by the whole suite.

Queues cost RLIMIT_MSGQUEUE bytes per user (819,200 here, about nine queues
of the default 10 x 8192): tests use small queues, unique names, and these
fixtures unlink them even when the test fails.  The queue fixtures are those
of the package's pytest plugin (``anyposixmq.pytest_plugin``, loaded through
its entry point as in any project that installs the package), under the
names these tests have always used.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import (
    ASYNCIO_BACKENDS,
    TRIO_BACKENDS,
    MakeAsyncQueue,
    MakeQueue,
    NoSystemCalls,
    replace_binding,
)

import anyposixmq


@pytest.fixture
def queue_name(mq_name: str) -> str:
    """A unique queue name, unlinked after the test whatever happened."""
    return mq_name


@pytest.fixture
def make_queue(make_message_queue: MakeQueue) -> MakeQueue:
    """Create small queues (capacity 4, 128-byte messages unless given); all are
    closed and unlinked after the test."""
    return make_message_queue


@pytest.fixture
def mq(message_queue: anyposixmq.MessageQueue) -> anyposixmq.MessageQueue:
    """One small queue (capacity 4, 128-byte messages), open for reading and writing."""
    return message_queue


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
def make_async_queue(make_async_message_queue: MakeAsyncQueue, strategy: str) -> MakeAsyncQueue:
    """Create small AsyncMessageQueues (capacity 4, 128-byte messages unless given)
    with the test's strategy; all are closed (in the test's event loop) and
    unlinked after the test."""

    def make(name: str | None = None, **kwargs: Any) -> anyposixmq.AsyncMessageQueue:
        kwargs.setdefault("strategy", strategy)
        return make_async_message_queue(name, **kwargs)

    return make


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
