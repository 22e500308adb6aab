"""Helpers shared by the test modules (imported as ``from _helpers import ...``).

Fixtures live in ``conftest.py``; plain names, constants and functions live
here, so that test modules never import ``conftest`` itself.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

import anyposixmq
from anyposixmq import _attempts, _handover, _notify, _open, _sync
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


MakeQueue = Callable[..., anyposixmq.MessageQueue]


def descriptors_on(name: str) -> int:
    """How many descriptors of this process are open on the queue *name* (Linux)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == name
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return count


#: For a test of asyncio's own APIs:
#: ``@pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)``.
ASYNCIO_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
]
#: For a test of trio's own APIs.
TRIO_BACKENDS = [pytest.param(("trio", {}), id="trio")]

MakeAsyncQueue = Callable[..., anyposixmq.AsyncMessageQueue]


#: The modules of the package that call the C binding, each through its own ``lib``.
BINDING_USERS = [_attempts, _handover, _notify, _open, _sync]


def replace_binding(monkeypatch: pytest.MonkeyPatch, replacement: object) -> None:
    """Make every module of :data:`BINDING_USERS` call *replacement* instead of ``lib``."""
    for module in BINDING_USERS:
        monkeypatch.setattr(module, "lib", replacement)


class Index:
    """An integer-like that is no int, as numpy's integers are."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class NoSystemCalls:
    """Stands in for the C binding: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a system call ({name}) was made before the arguments were checked")


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
