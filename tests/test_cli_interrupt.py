"""Ctrl-C ends ``demo``, ``receive --follow`` and ``metrics --listen`` with status 130.

Python raises KeyboardInterrupt wherever the main thread is, a finalizer
included, where CPython prints "Exception ignored" and goes on.  The tests
below send SIGINT from inside a ``weakref.finalize`` callback, the place
where a clean-clone CI run once lost it, and the stress test sends it at 50
different moments of the demo.  Others let the kernel hand SIGINT to
another thread, so that only the C-level handler runs while the main thread
sleeps in its poll.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import _namespaces
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


#: Runs *body* with SIGINT blocked in the main thread and open in a helper
#: thread, so the kernel hands Ctrl-C to the helper.  The main thread then
#: sleeps on in its event loop's poll, as a loop does when the signal comes
#: just before it goes to sleep: only the C-level handler ran, and nothing
#: but a wakeup descriptor tells the loop.
SIGINT_TO_ANOTHER_THREAD = """
import signal, sys, threading
threading.Thread(target=threading.Event().wait, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})
{body}
"""

INTERRUPT_RUN = """
import anyio
from anyposixmq._interrupt import Interrupt

async def forever():
    print("waiting", flush=True)
    await anyio.sleep_forever()

try:
    with Interrupt() as interrupt:
        interrupt.run(forever, backend={backend!r}, backend_options={options!r})
except KeyboardInterrupt:
    sys.exit(130)
"""


def start_code(body: str, *, mounted: bool = False) -> subprocess.Popen[bytes]:
    """Run *body* as above; *mounted*: in private namespaces with mqueuefs mounted."""
    # -W error: trio's warning about a wakeup descriptor already set fails it.
    code = SIGINT_TO_ANOTHER_THREAD.format(body=body)
    argv = [sys.executable, "-W", "error", "-c", code]
    if mounted:
        _namespaces.require_unshare("-i")
        script = _namespaces.MOUNT + 'exec "$PY" -W error -c "$1"\n'
        argv = [*_namespaces.command(script), "sh", code]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=CHILD_CWD,
        env=_namespaces.environment(),
    )


def interrupt_and_wait(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("Ctrl-C did not wake the event loop: it slept on")


@pytest.mark.parametrize(
    ("backend", "options"),
    [("asyncio", {}), ("asyncio", {"use_uvloop": True}), ("trio", {})],
    ids=["asyncio", "uvloop", "trio"],
)
def test_ctrl_c_wakes_a_loop_that_slept_through_the_handler(
    backend: str, options: dict[str, bool]
) -> None:
    if options:
        pytest.importorskip("uvloop")
    if backend == "trio":
        pytest.importorskip("trio")
    proc = start_code(INTERRUPT_RUN.format(backend=backend, options=options))
    assert readline(proc) == b"waiting\n"
    out, err = interrupt_and_wait(proc)
    assert (proc.returncode, out, err) == (130, b"", b"")


def test_other_signals_wake_the_loop_but_do_not_stop_it() -> None:
    # The wakeup descriptor is written for every signal with a Python handler.
    usr1 = "signal.signal(signal.SIGUSR1, lambda *_: print('usr1', flush=True))\n"
    proc = start_code(usr1 + INTERRUPT_RUN.format(backend="asyncio", options={}))
    assert readline(proc) == b"waiting\n"
    for _ in range(3):
        proc.send_signal(signal.SIGUSR1)
        assert readline(proc) == b"usr1\n"
    time.sleep(0.2)
    assert proc.poll() is None
    out, err = interrupt_and_wait(proc)
    assert (proc.returncode, out, err) == (130, b"", b"")


@pytest.mark.parametrize("command", ["receive --follow", "metrics --listen"])
def test_ctrl_c_taken_by_another_thread_exits_130(
    command: str, mq: anyposixmq.MessageQueue
) -> None:
    pytest.importorskip("anyposixmq._async")
    mq.send(b"first")
    if command == "receive --follow":
        argv, first = ["receive", str(mq.name), "--follow"], b"first\n"
    else:
        argv, first = ["metrics", "--listen", "127.0.0.1:0"], b"serving metrics at "
    code = f"from anyposixmq._cli import main\nsys.exit(main({argv!r}))"
    proc = start_code(code, mounted=command.startswith("metrics"))
    assert readline(proc).startswith(first)
    out, err = interrupt_and_wait(proc)
    assert (proc.returncode, out, err) == (130, b"", b"")


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


def test_metrics_sees_a_ctrl_c_whose_handler_runs_as_the_pipe_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another signal wakes ``metrics --listen``; Ctrl-C's handler runs just
    as the loop reads the wakeup away.  The loop still sees it at once (it
    reads first and looks at ``caught`` after), instead of sleeping on."""
    from anyposixmq import _interrupt, _metrics

    original = _interrupt.Interrupt.discard

    def discard(self: _interrupt.Interrupt) -> None:
        if not self.caught:
            self._handle(signal.SIGINT, None)  # the worst moment for Ctrl-C
        original(self)

    monkeypatch.setattr(_interrupt.Interrupt, "discard", discard)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    other = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    # Without the order, only a later Ctrl-C would end it.
    late = threading.Timer(10, os.kill, (os.getpid(), signal.SIGINT))
    try:
        other.start()
        late.start()
        begun = time.monotonic()
        assert _metrics.serve("127.0.0.1", 0) == 130
        assert time.monotonic() - begun < 5
    finally:
        other.cancel()
        late.cancel()
        signal.signal(signal.SIGUSR1, previous)
