"""Ctrl-C stops a blocking call however it is timed, and a wait is never cut short.

A signal that comes after Python last ran its handlers and before the kernel
begins a wait interrupts nothing: it was delivered before the wait.  The
tests make that happen every time: the child blocks SIGINT in its main
thread and leaves it open in a helper thread, so the kernel hands it to the
helper, and only Python's C-level handler runs, while the main thread waits
on.  No wait in C lasts longer than ``APMQ_WAIT_SLICE_MS``; between two
calls Python runs the handler, and KeyboardInterrupt comes out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from _helpers import CHILD_CWD
from anyposixmq._binding import lib

import anyposixmq

SLICE = lib.APMQ_WAIT_SLICE_MS / 1000

CHILD = """
import signal, sys, threading
import anyposixmq

threading.Thread(target=threading.Event().wait, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})
mq = anyposixmq.MessageQueue({name!r})
buffer = bytearray(mq.max_message_size)
print("waiting", flush=True)
try:
    {call}
except KeyboardInterrupt:
    sys.exit(130)
print("returned", flush=True)
"""

#: Each blocking call, on an empty queue (a full one for the sends).
CALLS = {
    "receive": "mq.receive()",
    "receive timeout": "mq.receive(timeout=3600)",
    "receive_into": "mq.receive_into(buffer)",
    "receive_many": "mq.receive_many(4)",
    "iterate": "next(iter(mq))",
    "send": "mq.send(b'x')",
    "send timeout": "mq.send(b'x', timeout=3600)",
}


@pytest.mark.parametrize("call", list(CALLS))
def test_ctrl_c_stops_a_wait_that_began_after_it_came(
    call: str, mq: anyposixmq.MessageQueue
) -> None:
    if call.startswith("send"):
        while mq.attributes().current_messages < mq.capacity:
            mq.send(b"full")
    before = mq.attributes().current_messages
    code = CHILD.format(name=mq.name, call=CALLS[call])
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=CHILD_CWD,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"waiting\n"
        time.sleep(0.1)  # well into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, out, err) == (130, b"", b"")
    assert mq.attributes().current_messages == before  # nothing taken, nothing sent


def test_a_plain_receive_waits_across_slices(mq: anyposixmq.MessageQueue) -> None:
    timer = threading.Timer(3 * SLICE, mq.send, (b"late",))
    timer.start()
    try:
        started = time.monotonic()
        assert mq.receive().data == b"late"
        assert time.monotonic() - started >= 3 * SLICE
    finally:
        timer.cancel()


@pytest.mark.parametrize("timeout", [1.5 * SLICE, 3.2 * SLICE])
def test_a_timed_wait_longer_than_a_slice_lasts_its_timeout(
    timeout: float, mq: anyposixmq.MessageQueue
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.receive(timeout=timeout)
    assert time.monotonic() - started >= timeout
    while mq.attributes().current_messages < mq.capacity:
        mq.send(b"full")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mq.send(b"x", timeout=timeout)
    assert time.monotonic() - started >= timeout
