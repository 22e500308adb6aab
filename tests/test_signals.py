"""A signal handler's exception never loses a message, nor hides a send that happened.

CPython runs a pending signal handler as soon as a C call returns, so its
exception can come after the kernel handed over (or took) a message.  These
tests raise one from a SIGALRM handler every few dozen microseconds during
a loop of sends and receives, and check that every message is received
exactly once in the end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from _helpers import unique_name

import anyposixmq
from anyposixmq import MessageQueue, _attempts

PACKAGE = os.path.dirname(os.path.abspath(anyposixmq.__file__))
SIZE = 16


class Alarm(Exception):
    """What the handler raises."""


@contextmanager
def storm(interval: float) -> Iterator[dict[str, int]]:
    """SIGALRM every *interval* seconds; its handler raises Alarm inside the library.

    Only there: once a call has returned its message to the test's own
    frame, what the test does with it is the test's business (CPython 3.10
    even runs handlers between a call's return and the assignment of its
    result, which no library can guard).
    """
    counts = {"raised": 0, "skipped": 0, "paused": 0}

    def handler(signum: int, frame: Any) -> None:
        if (
            not counts["paused"]
            and frame is not None
            and frame.f_code.co_filename.startswith(PACKAGE)
            # CPython only prints what a finalizer raises (pytest fails on it).
            and frame.f_code.co_name != "__del__"
        ):
            counts["raised"] += 1
            raise Alarm
        counts["skipped"] += 1

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        yield counts
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def was_sent(exc: BaseException | None) -> bool:
    """Whether *exc*, or one it interrupted (a handler may raise again while
    the first exception is handled), says that the message was sent."""
    while exc is not None:
        if any("was sent" in note for note in getattr(exc, "__notes__", ())):
            return True
        exc = exc.__context__
    return False


#: CPython 3.10 may run a handler after the try block around a send's C call
#: has ended, where nothing can note that the message went: there the storm
#: spares sends (receives are guarded on every version).
SENDS_NOTED = sys.version_info >= (3, 11)


def send_next(mq: MessageQueue, i: int, counts: dict[str, int]) -> int:
    """Send number *i*; the next number to send (*i* again if it did not go)."""
    counts["paused"] = not SENDS_NOTED
    try:
        mq.send(b"%d" % i)
    except Alarm as exc:
        return i + 1 if was_sent(exc) else i
    finally:
        counts["paused"] = 0
    return i + 1


def close(mq: MessageQueue) -> None:
    """Close, again if a handler interrupted close() itself (closing twice is harmless)."""
    while True:
        try:
            mq.close()
            return
        except Alarm:
            pass


def reopen(name: str, counts: dict[str, int]) -> MessageQueue:
    """Open *name* again, the handler quiet: an interrupted open is not what we test."""
    counts["paused"] = 1
    try:
        return MessageQueue(name)
    finally:
        counts["paused"] = 0


# Each kind of receive puts what it got into *out* as soon as it has it: a
# message returned to the test and then dropped by the test's own code (as
# ``list(mq.drain())`` drops what the generator yielded before it raised)
# would be the test's loss, not the library's.


def _receive(mq: MessageQueue, out: list[bytes]) -> None:
    out.append(mq.receive().data)


def _receive_timeout(mq: MessageQueue, out: list[bytes]) -> None:
    out.append(mq.receive(timeout=5).data)


def _receive_nowait(mq: MessageQueue, out: list[bytes]) -> None:
    out.append(mq.receive_nowait().data)


def _receive_into(mq: MessageQueue, out: list[bytes]) -> None:
    buffer = bytearray(SIZE)
    n, _ = mq.receive_into(buffer)
    out.append(bytes(buffer[:n]))


def _receive_many(mq: MessageQueue, out: list[bytes]) -> None:
    for msg in mq.receive_many(3):
        out.append(msg.data)


def _iterate(mq: MessageQueue, out: list[bytes]) -> None:
    for msg in mq:
        out.append(msg.data)
        return


def _drain(mq: MessageQueue, out: list[bytes]) -> None:
    for msg in mq.drain():
        out.append(msg.data)


def _try_receive(mq: MessageQueue, out: list[bytes]) -> None:
    msg = mq._try_receive()  # the async layer's seam
    if msg is not None:
        out.append(msg.data)


RECEIVES: dict[str, Callable[[MessageQueue, list[bytes]], None]] = {
    "receive": _receive,
    "receive timeout": _receive_timeout,
    "receive_nowait": _receive_nowait,
    "receive_into": _receive_into,
    "receive_many": _receive_many,
    "iteration": _iterate,
    "drain": _drain,
    "_try_receive": _try_receive,
}


def send_receive_loop(
    name: str,
    count: int,
    interval: float,
    receive: Callable[[MessageQueue, list[bytes]], None],
    *,
    close_after_interrupt: bool,
    interrupts: int = 0,
) -> tuple[list[bytes], dict[str, int], int]:
    """Send 0, 1, 2... and receive them under a storm: at least *count* messages,
    and on (up to 50 times as many) until more than *interrupts* were raised, so
    that a fast machine is interrupted as often as a slow one.  What was
    received, the counts, and how many were sent."""
    mq = MessageQueue(name, create=True, exclusive=True, capacity=4, max_message_size=SIZE)
    received: list[bytes] = []
    i = 0
    try:
        with storm(interval) as counts:
            while i < count or (counts["raised"] <= interrupts and i < 50 * count):
                i = send_next(mq, i, counts)
                while len(received) < i:  # until what was sent is back
                    try:
                        receive(mq, received)
                    except (Alarm, BlockingIOError):
                        if close_after_interrupt:
                            close(mq)
                            mq = reopen(name, counts)
        received += [msg.data for msg in mq.drain()]
    finally:
        close(mq)
    return received, counts, i


#: (messages, seconds between signals, interrupts at least)
SHORT = (1500, 100e-6, 20)
LONG = (20_000, 50e-6, 200)


@pytest.mark.parametrize(
    "size",
    [pytest.param(SHORT, id="short"), pytest.param(LONG, id="long", marks=pytest.mark.stress)],
)
@pytest.mark.parametrize("close_after_interrupt", [False, True], ids=["keep", "close"])
@pytest.mark.parametrize("kind", list(RECEIVES))
def test_signal_storm_loses_nothing(
    kind: str, close_after_interrupt: bool, size: tuple[int, float, int]
) -> None:
    count, interval, interrupts = size
    name = unique_name("sig")
    try:
        received, counts, sent = send_receive_loop(
            name,
            count,
            interval,
            RECEIVES[kind],
            close_after_interrupt=close_after_interrupt,
            interrupts=interrupts,
        )
    finally:
        anyposixmq.unlink(name, missing_ok=True)
    assert sorted(received, key=int) == [b"%d" % i for i in range(sent)]
    assert counts["raised"] > interrupts


def test_signal_storm_with_a_receiving_thread(make_queue: Any) -> None:
    """Another thread receiving on the same object never gets a message twice."""
    mq = make_queue(capacity=4, max_message_size=SIZE)
    other: list[bytes] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            msg = mq._timed_receive(0.01)
            if msg is not None:
                other.append(msg.data)

    thread = threading.Thread(target=worker)
    thread.start()
    mine: list[bytes] = []
    i = 0
    try:
        with storm(100e-6) as counts:
            while i < 3000 or (counts["raised"] <= 20 and i < 150_000):
                i = send_next(mq, i, counts)
                try:
                    msg = mq._try_receive()
                    if msg is not None:
                        mine.append(msg.data)
                except Alarm:
                    pass
    finally:
        stop.set()
        thread.join()
    # What the main thread's last interrupted receive kept, it returns first.
    mine += [msg.data for msg in mq.drain()]
    assert sorted(mine + other, key=int) == [b"%d" % n for n in range(i)]
    assert counts["raised"] > 20


# -- deterministic: the C call returns, then an exception comes -----------------


@pytest.fixture
def interrupted(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make the hot path's C call *attr* raise KeyboardInterrupt right after it returned."""

    def patch(attr: str) -> None:
        real = getattr(_attempts, attr)

        def call(*args: Any) -> Any:
            real(*args)
            raise KeyboardInterrupt

        monkeypatch.setattr(_attempts, attr, call)

    return patch


def test_next_receive_returns_the_interrupted_message_first(
    mq: MessageQueue, interrupted: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    mq.send(b"first", 1)
    mq.send(b"second", 9)
    interrupted("_receive_plain")
    with pytest.raises(KeyboardInterrupt):
        mq.receive()
    monkeypatch.undo()
    assert mq.attributes().current_messages == 1  # the object holds "second"
    mq.send(b"third", 9)
    assert mq.receive() == (b"second", 9)
    assert mq.receive() == (b"third", 9)
    assert mq.receive() == (b"first", 1)


@pytest.mark.parametrize("how", ["close", "garbage collection"])
def test_close_puts_the_interrupted_message_back(
    how: str, queue_name: str, interrupted: Callable[[str], None]
) -> None:
    mq = MessageQueue(queue_name, create=True, capacity=4, max_message_size=SIZE)
    mq.send(b"first", 1)
    mq.send(b"second", 9)
    interrupted("_receive_plain")
    try:
        mq.receive()
    except KeyboardInterrupt:
        pass
    mq.send(b"third", 9)
    if how == "close":
        mq.close()
    else:
        with pytest.warns(ResourceWarning):
            del mq  # the last reference: collected at once
    with MessageQueue(queue_name) as again:
        # Back in the queue behind those of its priority.
        assert list(again.drain()) == [(b"third", 9), (b"second", 9), (b"first", 1)]


def test_interrupted_receive_many_keeps_the_batch(
    mq: MessageQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        mq.send(b"%d" % i)
    real = _attempts.lib  # type: ignore[attr-defined]

    class Interrupting:
        def __getattr__(self, attr: str) -> Any:
            value = getattr(real, attr)
            if attr != "apmq_receive_many":
                return value

            def call(*args: Any) -> Any:
                value(*args)
                raise KeyboardInterrupt

            return call

    monkeypatch.setattr(_attempts, "lib", Interrupting())
    with pytest.raises(KeyboardInterrupt):
        mq.receive_many(3)
    monkeypatch.undo()
    assert mq.receive() == (b"0", 0)
    assert mq.receive_many(4) == [(b"1", 0), (b"2", 0)]
    assert mq.receive_many(4) == [(b"3", 0)]


def test_a_send_interrupted_after_the_kernel_took_it_says_so(
    mq: MessageQueue, interrupted: Callable[[str], None]
) -> None:
    interrupted("_send_plain")
    with pytest.raises(KeyboardInterrupt) as info:
        mq.send(b"gone")
    assert was_sent(info.value)
    assert mq.receive_nowait() == (b"gone", 0)


def test_a_send_interrupted_before_the_kernel_took_it_says_nothing(make_queue: Any) -> None:
    mq = make_queue(capacity=1, max_message_size=SIZE)
    mq.send(b"fills it")

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            mq.send(b"not sent")  # blocks on the full queue until the signal
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not was_sent(info.value)
    assert list(mq.drain()) == [(b"fills it", 0)]
