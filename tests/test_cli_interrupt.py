"""Ctrl-C ends ``demo`` and ``receive --follow`` with status 130, however it is timed.

Python raises KeyboardInterrupt wherever the main thread is, a finalizer
included, where CPython prints "Exception ignored" and goes on.  The tests
below send SIGINT from inside a ``weakref.finalize`` callback, the place
where a clean-clone CI run once lost it, and the stress test sends it at 50
different moments of the demo.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from _helpers import CHILD_CWD, unique_name
from test_cli import _processes_mentioning, exists, readline, start

import anyposixmq

#: Makes the next call of ``_demo._say`` (or of ``_cli_queues._write_message``)
#: deliver SIGINT to the process while a finalizer runs.
SIGINT_IN_A_FINALIZER = """
import os, signal, sys, weakref
from anyposixmq import {module} as target
from anyposixmq._cli import main

original = target.{function}

def patched(*args):
    original(*args)
    class Garbage:
        pass
    garbage = Garbage()
    weakref.finalize(garbage, os.kill, os.getpid(), signal.SIGINT)
    del garbage  # the callback runs now, and the signal's handler right after it

target.{function} = patched
sys.exit(main({argv!r}))
"""


def run_patched(
    module: str, function: str, argv: list[str], timeout: float = 60
) -> tuple[int, bytes, bytes]:
    """Run the command line in a child whose *function* sends SIGINT from a finalizer."""
    code = SIGINT_IN_A_FINALIZER.format(module=module, function=function, argv=argv)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
        cwd=CHILD_CWD,
    )
    return result.returncode, result.stdout, result.stderr


def test_demo_ctrl_c_in_a_finalizer_exits_130() -> None:
    name = unique_name("demo")
    try:
        status, out, err = run_patched(
            "_demo", "_say", ["demo", "--name", name, "--messages", "2000"], timeout=120
        )
        assert status == 130, (out, err)
        assert b"Exception ignored" not in err
        assert err.endswith(f"demo interrupted; its queue {name} is removed\n".encode())
        assert b"all checks passed" not in out
        assert not exists(name)
    finally:
        anyposixmq.unlink(name, missing_ok=True)


def test_follow_ctrl_c_in_a_finalizer_exits_130(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"first")
    mq.send(b"second")
    status, out, err = run_patched(
        "_cli_queues", "_write_message", ["receive", str(mq.name), "--follow"]
    )
    assert (status, err) == (130, b"")
    # Each message printed or still in the queue: none lost, none twice.
    assert out.splitlines() + [m.data for m in mq.drain()] == [b"first", b"second"]


def _interrupt_demo_once(delay: float) -> None:
    name = unique_name("demo")
    proc = start("demo", "--name", name, "--messages", "200000")
    try:
        assert readline(proc, timeout=60).startswith(f"queue {name}: ".encode())
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (delay, err)
        assert b"Traceback" not in err
        assert b"Exception ignored" not in err
        assert f"its queue {name} is removed".encode() in err
        assert not exists(name)
        assert _processes_mentioning(name) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        anyposixmq.unlink(name, missing_ok=True)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_demo_ctrl_c_50_times_at_different_moments() -> None:
    # From right after its first line to well into the stream: while the
    # event loop starts, while producers start, during the priority check.
    for run in range(50):
        _interrupt_demo_once(delay=run * 0.02)
