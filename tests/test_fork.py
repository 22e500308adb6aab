"""fork(): what a process holds belongs to it.

A message that a receive took and never handed over (a signal handler's
exception stopped it) belongs to the process that took it: a forked child
neither returns nor puts back its parent's, so nothing is delivered twice.
The thread strategy's stash is the parent's too.  And a notification runs
only the callback registered for that queue in that process: a child whose
parent used a callable refuses one (glibc's notification thread would share
its socket with the parent), and signals work there.

Each test runs a small program that forks, so that pytest itself never does.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _helpers import CHILD_CWD, MakeQueue

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork()")

KEEP_ONE = """
import os, sys, anyposixmq
from anyposixmq import _attempts

mq = anyposixmq.MessageQueue(sys.argv[1])
mq.send(b"kept")
real = _attempts._receive_plain

def interrupted(*args):
    real(*args)
    raise KeyboardInterrupt  # as a signal handler's, right after the C call

_attempts._receive_plain = interrupted
try:
    mq.receive()
except KeyboardInterrupt:
    pass
_attempts._receive_plain = real
"""

CHILD_OF_A_KEEPER = (
    KEEP_ONE
    + """
how = sys.argv[2]
pid = os.fork()
if pid == 0:
    if how == "receive":
        try:
            print("child got", mq.receive(timeout=0.2).data)
        except TimeoutError:
            print("child got nothing")
    if how in ("close", "receive"):
        mq.close()
    sys.exit(0)  # "exit": the open queue is collected as the child ends
os.waitpid(pid, 0)
sys.stdout.flush()
print("in the queue", mq.attributes().current_messages)
print("parent got", mq.receive(timeout=1).data)
print("in the queue", mq.attributes().current_messages)
mq.close()
"""
)


def _run(program: str, *args: object) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", program, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("how", ["close", "exit", "receive"])
def test_a_child_never_delivers_its_parents_kept_message(how: str, make_queue: MakeQueue) -> None:
    mq = make_queue()
    lines = _run(CHILD_OF_A_KEEPER, mq.name, how)
    expected = ["in the queue 0", "parent got b'kept'", "in the queue 0"]
    if how == "receive":
        expected.insert(0, "child got nothing")
    assert lines == expected


THREAD_STASH = """
import os, sys, anyio, anyposixmq

async def main():
    async with anyposixmq.AsyncMessageQueue(sys.argv[1], strategy="thread") as q:
        await q.send(b"stashed")
        # A worker took it after its task gave up: it waits in the stash.
        q._waiter._stash.append(q._waiter.mq.receive())
        pid = os.fork()
        if pid == 0:
            print("child stash", len(q._waiter._stash))
            os._exit(0)  # the child's collected object would put back nothing either
        os.waitpid(pid, 0)
        print("parent got", (await q.receive()).data)

anyio.run(main)
"""


def test_a_child_has_an_empty_stash(make_queue: MakeQueue) -> None:
    mq = make_queue()
    assert _run(THREAD_STASH, mq.name) == ["child stash 0", "parent got b'stashed'"]
    assert mq.attributes().current_messages == 0


NOTIFY = """
import os, signal, sys, threading, anyposixmq

a = anyposixmq.MessageQueue(sys.argv[1])
b = anyposixmq.MessageQueue(sys.argv[2])
before = sys.argv[3] == "before"
rang = threading.Event()

def parent_b():
    print("parent's callback for b", flush=True)
    rang.set()

if not before:
    b.request_notification(parent_b)  # the parent has used a callable
pid = os.fork()
if pid == 0:
    try:
        a.request_notification(lambda: print("child's callback for a", flush=True))
        a.send(b"x")
        threading.Event().wait(0.5)
    except RuntimeError as exc:
        print("child refused:", "parent" in str(exc) and "signal" in str(exc))
        # A signal works.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        a.request_notification(signal.SIGUSR1)
        a.send(b"x")
        print("child signal:", signal.sigtimedwait({signal.SIGUSR1}, 5) is not None)
    a.receive(timeout=1)
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
if before:
    b.request_notification(parent_b)
b.send(b"y")
print("parent's b rang:", rang.wait(5))
"""


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_notification_runs_only_its_own_process_callback(
    when: str, make_queue: MakeQueue
) -> None:
    a, b = make_queue(), make_queue()
    lines = _run(NOTIFY, a.name, b.name, when)
    if when == "after":
        # The parent had used a callable before it forked: the child refuses one.
        assert lines == [
            "child refused: True",
            "child signal: True",
            "parent's callback for b",
            "parent's b rang: True",
        ]
    else:
        # Forked before any callable: the child has its own notification thread.
        assert lines == [
            "child's callback for a",
            "parent's callback for b",
            "parent's b rang: True",
        ]
