"""Fixtures shared by the whole suite.

Queues cost RLIMIT_MSGQUEUE bytes per user (819,200 here, about nine queues
of the default 10 x 8192): tests use small queues, unique names, and these
fixtures unlink them even when the test fails.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop

import anyposixmq
from anyposixmq import _sync
from anyposixmq._children import PACKAGE_HOME

_counter = itertools.count()

#: Where child interpreters run: where the package under test was imported
#: from.  ``python -m``/``-c`` put the working directory first on sys.path,
#: and a source checkout there (without its compiled binding, as in a fresh
#: clone tested against an installed package) must not shadow the package.
CHILD_CWD = PACKAGE_HOME


def unique_name(tag: str = "t") -> str:
    """A queue name no other test, run or process is using."""
    return f"/anyposixmq-test-{tag}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A unique queue name, unlinked after the test whatever happened."""
    name = unique_name()
    yield name
    anyposixmq.unlink(name, missing_ok=True)


MakeQueue = Callable[..., anyposixmq.MessageQueue]


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


#: For a test of asyncio's own APIs:
#: ``@pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)``.
ASYNCIO_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
]
#: For a test of trio's own APIs.
TRIO_BACKENDS = [pytest.param(("trio", {}), id="trio")]


@pytest.fixture(params=[*ASYNCIO_BACKENDS, *TRIO_BACKENDS])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """anyio's pytest plugin runs each async test on asyncio, asyncio+uvloop and trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["poll", "thread"])
def strategy(request: pytest.FixtureRequest) -> str:
    """The AsyncMessageQueue waiting strategies; both are tested on Linux."""
    return request.param  # type: ignore[no-any-return]


MakeAsyncQueue = Callable[..., anyposixmq.AsyncMessageQueue]


@pytest.fixture
def make_async_queue(strategy: str) -> Iterator[MakeAsyncQueue]:
    """Create small AsyncMessageQueues (capacity 4, 128-byte messages unless given)
    with the test's strategy; all are closed and unlinked after the test."""
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

    yield make
    for q in opened:
        q._mq.close()  # the event loop is gone: close the core directly
    for name in names:
        anyposixmq.unlink(name, missing_ok=True)


class _NoSystemCalls:
    """Stands in for the C binding: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a system call ({name}) was made before the arguments were checked")


@pytest.fixture
def no_syscalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if MessageQueue makes any system call meanwhile."""
    # Queues of earlier tests must not be finalised (a real call) meanwhile.
    gc.collect()
    gc.disable()
    monkeypatch.setattr(_sync, "lib", _NoSystemCalls())
    try:
        yield
    finally:
        monkeypatch.undo()
        gc.enable()


def run_in_private_mqueuefs(script: str) -> subprocess.CompletedProcess[str]:
    """Run Python *script* in a child with mqueuefs mounted on /dev/mqueue in a
    private mount namespace (``unshare -m``); skip the test where that cannot be."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not available to mount a private mqueuefs")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t mqueue none /dev/mqueue"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private mqueuefs: {probe.stderr.strip()}")
    shell = 'mount -t mqueue none /dev/mqueue && exec "$0" -c "$1"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", shell, sys.executable, script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=CHILD_CWD,
    )
