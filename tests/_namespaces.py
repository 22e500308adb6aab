"""Shell scripts in private namespaces, and tmux: for the tests of top, metrics and doctor.

``unshare -m`` gives a private mount namespace, where mqueuefs can be mounted
on (or unmounted from) ``/dev/mqueue`` without touching the machine's;
``unshare -i`` a private IPC namespace, which holds only the queues the test
makes there.  In a script, ``$APMQ`` runs ``python -m anyposixmq`` and
``$PY`` the Python under test.  A test skips, saying why, where this is not
allowed (no root, no user namespaces).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _helpers import CHILD_CWD

MOUNT = "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue || exit 99\n"
UNMOUNT = "umount /dev/mqueue 2>/dev/null; "
#: The kernel's limits in a new IPC namespace.
NEW_NAMESPACE_LIMITS = {"msg_max": 10, "msgsize_max": 8192, "queues_max": 256}


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PY"] = sys.executable
    env["APMQ"] = f"{shlex.quote(sys.executable)} -m anyposixmq"
    return env


def require_unshare(*flags: str) -> None:
    """Skip the test unless ``unshare FLAGS`` can mount mqueuefs here."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not available")
    probe = subprocess.run(
        ["unshare", *flags, "-m", "sh", "-c", MOUNT],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount mqueuefs in unshare {' '.join(flags)} -m: {probe.stderr}")


def command(script: str, *, ipc: bool = True) -> list[str]:
    """The command line that runs *script* in private namespaces (IPC too, unless not *ipc*)."""
    flags = ["-i", "-m"] if ipc else ["-m"]
    return ["unshare", *flags, "sh", "-c", script]


def run(script: str, *, ipc: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run *script* in a private mount (and IPC) namespace; skip where that is not allowed."""
    require_unshare(*(["-i"] if ipc else []))
    return subprocess.run(
        command(script, ipc=ipc),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=CHILD_CWD,
        env=environment(),
    )


class Tmux:
    """A tmux server of the test's own, with one pane."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def screen(self, escapes: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if escapes else []))

    def wait_for(self, what: str, ready: Callable[[str], bool], timeout: float = 30) -> str:
        """The screen once *ready* holds for it; the test fails after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the screen never showed {what}:\n{screen}")
            time.sleep(0.02)


def tmux_server(tmp_path: Path) -> Iterator[Tmux]:
    """For a fixture: a tmux server of the test's own (the test skips without tmux)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (Debian: apt-get install tmux)")
    require_unshare()
    server = Tmux(tmp_path / "tmux.socket")
    yield server
    subprocess.run(["tmux", "-S", server.socket, "kill-server"], capture_output=True, check=False)
