"""Many threads on one MessageQueue, and close() while another thread is blocked in it."""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Any

import pytest
from _helpers import MakeQueue

from anyposixmq import Message, MessageQueue

SENDERS = 4
RECEIVERS = 4
PER_SENDER = 300


@pytest.mark.parametrize("style", ["blocking", "timeout", "nowait", "into"])
def test_many_threads_every_message_exactly_once(make_queue: MakeQueue, style: str) -> None:
    mq = make_queue(capacity=4, max_message_size=32)
    received: list[list[tuple[bytes, int]]] = [[] for _ in range(RECEIVERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(SENDERS + RECEIVERS)

    def send(sender: int) -> None:
        try:
            start.wait()
            for i in range(PER_SENDER):
                data = b"%d:%d" % (sender, i)
                prio = i % 3
                if style == "blocking":
                    mq.send(data, prio)
                elif style == "nowait":
                    while True:
                        try:
                            mq.send_nowait(data, prio)
                            break
                        except BlockingIOError:
                            time.sleep(0)
                else:
                    mq.send(data, prio, timeout=30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def receive(index: int) -> None:
        mine = received[index]
        buffer = bytearray(32)
        try:
            start.wait()
            while True:
                if style == "blocking":
                    msg = mq.receive()
                elif style == "nowait":
                    try:
                        msg = mq.receive_nowait()
                    except BlockingIOError:
                        time.sleep(0)
                        continue
                elif style == "into":
                    n, prio = mq.receive_into(buffer, timeout=30)
                    msg = Message(bytes(buffer[:n]), prio)
                else:
                    msg = mq.receive(timeout=30)
                if msg.data == b"stop":
                    return
                mine.append((msg.data, msg.priority))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    senders = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
    receivers = [threading.Thread(target=receive, args=(i,)) for i in range(RECEIVERS)]
    for thread in senders + receivers:
        thread.start()
    for thread in senders:
        thread.join()
    for _ in receivers:
        mq.send(b"stop")  # priority 0: after everything of priority 0 already queued
    for thread in receivers:
        thread.join()
    assert errors == []

    everything = [item for mine in received for item in mine]
    counts = collections.Counter(everything)
    expected = {(b"%d:%d" % (s, i), i % 3) for s in range(SENDERS) for i in range(PER_SENDER)}
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert len(everything) == SENDERS * PER_SENDER
    assert mq.attributes().current_messages == 0
    # Each receiver saw each sender's messages of one priority in the order sent.
    for mine in received:
        for sender in range(SENDERS):
            for prio in range(3):
                seq = [
                    int(data.split(b":")[1])
                    for data, p in mine
                    if p == prio and data.startswith(b"%d:" % sender)
                ]
                assert seq == sorted(seq)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "blocking_call",
    [
        lambda q: q.receive(),
        lambda q: q.receive(timeout=30),
        lambda q: q.receive_into(bytearray(q.max_message_size), timeout=30),
        lambda q: next(iter(q)),
    ],
    ids=["receive", "receive timeout", "receive_into timeout", "iterate"],
)
def test_close_while_blocked_never_touches_a_reused_descriptor(
    make_queue: MakeQueue, blocking_call: Any
) -> None:
    original = make_queue()
    name = str(original.name)
    fd = original.fileno()
    outcome: list[object] = []

    def blocked() -> None:
        try:
            outcome.append(blocking_call(original))
        except (ValueError, OSError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.3)  # let it block in the kernel
    assert thread.is_alive()
    original.close()
    assert original.closed

    # Open new queues: were the number free, one of them would get it.  Each
    # holds one message that must stay where it is.
    newcomers = [make_queue() for _ in range(6)]
    for i, other in enumerate(newcomers):
        other.send(b"newcomer %d" % i, 30)

    with MessageQueue(name) as sender:
        sender.send(b"for the original", 1)
        thread.join(timeout=10)
        assert not thread.is_alive()
        leftover = sender.attributes().current_messages

    assert len(outcome) == 1
    result = outcome[0]
    if isinstance(result, BaseException):
        # A clean error is acceptable; the original's message is then still there.
        assert leftover == 1
    else:
        assert result in [(b"for the original", 1), (16, 1)]
        assert leftover == 0
    for i, other in enumerate(newcomers):
        assert other.attributes().current_messages == 1
        assert other.receive(timeout=0) == (b"newcomer %d" % i, 30)
        other.close()
    # The last call out closed the descriptor: it is not leaked.
    assert not _is_open(fd)


def test_close_while_blocked_in_send(make_queue: MakeQueue) -> None:
    original = make_queue(capacity=1)
    name = str(original.name)
    original.send(b"full")
    done = threading.Event()
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            original.send(b"waiting", 2, timeout=30)
        except (ValueError, OSError) as exc:
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.3)
    original.close()
    newcomers = [make_queue(capacity=1) for _ in range(4)]
    with MessageQueue(name) as taker:
        assert taker.receive(timeout=1) == (b"full", 0)
        thread.join(timeout=10)
        assert done.is_set()
        if not errors:
            assert taker.receive(timeout=1) == (b"waiting", 2)
    for other in newcomers:
        assert other.attributes().current_messages == 0


def test_close_returns_while_another_thread_is_blocked(make_queue: MakeQueue) -> None:
    original = make_queue()
    thread = threading.Thread(target=lambda: original.receive(timeout=30))
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    original.close()
    assert time.monotonic() - started < 5
    with MessageQueue(str(original.name)) as sender:
        sender.send(b"wake")
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_concurrent_close_and_calls_are_safe(make_queue: MakeQueue) -> None:
    # Many threads calling while one closes: each call either works or says
    # the queue is closed; nothing crashes or leaks.
    for _ in range(20):
        mq = make_queue(capacity=4)
        fd = mq.fileno()
        errors: list[BaseException] = []
        start = threading.Barrier(5)

        def work(
            q: MessageQueue = mq,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            start.wait()
            for _ in range(200):
                try:
                    q.send(b"x", timeout=0)
                    q.receive(timeout=0)
                    q.attributes()
                except (TimeoutError, BlockingIOError):
                    pass
                except ValueError:
                    return
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        start.wait()
        mq.close()
        for thread in threads:
            thread.join()
        assert errors == []
        assert not _is_open(fd)


def _take_without_handing_over(mq: MessageQueue, hold: float, then: Any) -> threading.Thread:
    """In another thread: take a message as receive() does, and once close()
    has begun, hold it *hold* seconds more before handing it over (clearing
    the block's taken flag, receive()'s last step); then call *then*.
    Returns once the message is taken."""
    from anyposixmq._binding import ffi, lib

    q, entry = mq._q, mq._entry()
    taken = threading.Event()

    def take() -> None:
        assert lib.apmq_receive(entry[0], ffi.NULL, 0, lib.APMQ_TRY, 0.0) == 1
        taken.set()
        while not lib.apmq_closed(q):  # the hand-over comes while close() waits
            time.sleep(0.001)
        time.sleep(hold)
        entry[0].taken = 0
        then()

    thread = threading.Thread(target=take)
    thread.start()
    assert taken.wait(5)
    return thread


def test_close_waits_for_another_threads_hand_over(make_queue: MakeQueue) -> None:
    # close() lets a receive of another thread that is handing its message
    # over finish, then closes the descriptor: none is left open.
    mq = make_queue()
    mq.send(b"x")
    fd = mq.fileno()
    thread = _take_without_handing_over(mq, 0.0, lambda: None)
    mq.close()
    assert not _is_open(fd)
    thread.join()
    with MessageQueue(mq.name or "", read=True, write=False) as again:
        assert again.attributes().current_messages == 0  # handed over, not put back


def test_a_hand_over_after_close_lets_the_descriptor_go(make_queue: MakeQueue) -> None:
    # A receive slower to hand over than close() waits for keeps the
    # descriptor open until its thread's next call finds the queue closed.
    mq = make_queue()
    mq.send(b"x")
    fd = mq.fileno()
    errors: list[BaseException] = []

    def call_again() -> None:
        try:
            mq.attributes()
        except ValueError as exc:
            errors.append(exc)

    thread = _take_without_handing_over(mq, 0.3, call_again)
    mq.close()
    assert _is_open(fd)  # the message may still be handed over
    thread.join()
    assert len(errors) == 1  # closed
    assert not _is_open(fd)
