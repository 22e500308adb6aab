"""request_notification: mq_notify(3) with a callable, a signal, or None."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from _helpers import CHILD_CWD, MakeQueue

from anyposixmq import MessageQueue, _notify

QUIET = 0.3  # how long a notification that must not come is waited for


class Calls:
    """A callable that records the threads it ran in."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.event = threading.Event()

    def __call__(self) -> None:
        self.threads.append(threading.get_ident())
        self.event.set()


def test_a_callable_runs_in_a_new_thread_when_a_message_arrives(mq: MessageQueue) -> None:
    calls = Calls()
    mq.request_notification(calls)
    assert not calls.event.wait(QUIET)  # nothing yet
    mq.send(b"wake")
    assert calls.event.wait(10)
    assert calls.threads != [threading.get_ident()]
    assert mq.receive_nowait() == (b"wake", 0)


def test_a_registration_is_used_up_by_its_notification(mq: MessageQueue) -> None:
    calls = Calls()
    mq.request_notification(calls)
    mq.send(b"one")
    assert calls.event.wait(10)
    mq.receive_nowait()
    calls.event.clear()
    mq.send(b"two")
    assert not calls.event.wait(QUIET)
    assert len(calls.threads) == 1
    # Asked again, it comes again.
    mq.receive_nowait()
    mq.request_notification(calls)
    mq.send(b"three")
    assert calls.event.wait(10)


def test_none_cancels(mq: MessageQueue) -> None:
    calls = Calls()
    mq.request_notification(calls)
    mq.request_notification(None)
    mq.send(b"unheard")
    assert not calls.event.wait(QUIET)
    assert all(v[0] is not calls for v in _notify._notified.values())


def test_a_signal_number_sends_that_signal(mq: MessageQueue) -> None:
    got: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        mq.request_notification(signal.SIGUSR1)
        mq.send(b"ring")
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)  # the handler runs in the main thread, between these
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == [signal.SIGUSR1]


def test_closing_with_a_pending_registration(make_queue: MakeQueue) -> None:
    mq = make_queue()
    other = MessageQueue(mq.name or "")
    try:
        calls = Calls()
        mq.request_notification(calls)
        mq.close()  # the kernel drops the registration with the descriptor
        other.send(b"after close")
        assert not calls.event.wait(QUIET)
        assert all(v[0] is not calls for v in _notify._notified.values())
    finally:
        other.close()


CHILD = """
import sys, anyposixmq
q = anyposixmq.MessageQueue(sys.argv[1])
q.request_notification(lambda: None)
print("registered", flush=True)
sys.stdin.read()
q.close()
"""


def test_another_process_holding_the_registration_is_ebusy(mq: MessageQueue) -> None:
    pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mq.name or ""], **pipes, text=True, cwd=CHILD_CWD
    )
    try:
        ready = child.stdout.readline() if child.stdout else ""
        assert ready == "registered\n"
        with pytest.raises(OSError, match="another process") as info:
            mq.request_notification(Calls())
        assert info.value.errno == errno.EBUSY
        assert info.value.filename == mq.name
    finally:
        child.communicate("", timeout=30)
    assert child.returncode == 0
    mq.request_notification(None)  # free again once the child closed its queue


@pytest.mark.parametrize(
    ("notify", "error"),
    [
        ("callback", TypeError),
        (True, TypeError),
        (0, ValueError),
        (-1, ValueError),
        (10**6, ValueError),
    ],
)
def test_bad_notify_before_any_system_call(
    mq: MessageQueue, no_syscalls: None, notify: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        mq.request_notification(notify)


def test_a_raising_callback_is_reported_under_its_own_name(
    mq: MessageQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[Any] = []
    done = threading.Event()

    def hook(args: Any) -> None:
        reports.append(args)
        done.set()

    monkeypatch.setattr(threading, "excepthook", hook)

    def my_callback() -> None:
        raise RuntimeError("boom")

    mq.request_notification(my_callback)
    mq.send(b"x")
    assert done.wait(10)
    (args,) = reports
    assert isinstance(args.exc_value, RuntimeError)
    assert "my_callback" in args.thread.name
    assert str(mq.name) in args.thread.name
