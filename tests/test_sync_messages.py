"""Sending and receiving: priorities, what send accepts, receive_into, iteration, attributes."""

from __future__ import annotations

import array
import ctypes
import threading
import time
from typing import Any

import pytest
from _helpers import Index, MakeQueue

import anyposixmq
from anyposixmq import Message, MessageQueue


def test_priority_order_and_fifo_within_a_priority(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=8)
    sent = [(b"a0", 0), (b"b5", 5), (b"c0", 0), (b"d9", 9), (b"e5", 5), (b"f9", 9), (b"g0", 0)]
    for data, prio in sent:
        mq.send(data, prio)
    received = [mq.receive(timeout=1) for _ in sent]
    assert received == [
        (b"d9", 9),
        (b"f9", 9),
        (b"b5", 5),
        (b"e5", 5),
        (b"a0", 0),
        (b"c0", 0),
        (b"g0", 0),
    ]
    assert all(type(msg) is Message for msg in received)
    assert all(type(msg.data) is bytes for msg in received)


def test_receive_returns_a_message(mq: MessageQueue) -> None:
    mq.send(b"payload", 7)
    msg = mq.receive()
    assert isinstance(msg, Message)
    assert msg.data == b"payload"
    assert msg.priority == 7
    data, priority = msg
    assert (data, priority) == (b"payload", 7)


def test_empty_and_full_size_messages(make_queue: MakeQueue) -> None:
    mq = make_queue(max_message_size=128)
    mq.send(b"")
    mq.send(bytes(range(128)))
    assert mq.receive() == (b"", 0)
    assert mq.receive() == (bytes(range(128)), 0)


BYTES_LIKE: list[tuple[Any, bytes]] = [
    (b"bytes", b"bytes"),
    (bytearray(b"bytearray"), b"bytearray"),
    (memoryview(b"memoryview"), b"memoryview"),
    (memoryview(b"0123456789")[2:7], b"23456"),
    (memoryview(bytearray(b"abcdef"))[1:], b"bcdef"),
    (array.array("i", [1, 2, 3]), array.array("i", [1, 2, 3]).tobytes()),
    (array.array("d", [0.5]), array.array("d", [0.5]).tobytes()),
    (memoryview(array.array("H", [1, 2, 3, 4]))[1:3], array.array("H", [2, 3]).tobytes()),
    ((ctypes.c_char * 3).from_buffer_copy(b"ctp"), b"ctp"),
]


@pytest.mark.parametrize(("data", "expected"), BYTES_LIKE)
@pytest.mark.parametrize("how", ["send", "send timeout", "send_nowait"])
def test_send_accepts_contiguous_bytes_like(
    mq: MessageQueue, data: Any, expected: bytes, how: str
) -> None:
    if how == "send":
        mq.send(data, 4)
    elif how == "send timeout":
        mq.send(data, 4, timeout=1)
    else:
        mq.send_nowait(data, 4)
    assert mq.receive(timeout=1) == (expected, 4)


def test_send_a_message_uses_its_priority(mq: MessageQueue) -> None:
    mq.send(Message(b"own", 6))
    assert mq.receive() == (b"own", 6)
    mq.send(Message(b"given", 6), 2)
    assert mq.receive() == (b"given", 2)
    mq.send(Message(b"zero wins", 6), 0)
    assert mq.receive() == (b"zero wins", 0)
    mq.send_nowait(Message(b"nowait", 3))
    assert mq.receive() == (b"nowait", 3)
    mq.send(Message(b"timed", 5), timeout=1)
    assert mq.receive() == (b"timed", 5)
    mq.send(Message(bytearray(b"buffer"), 1))  # type: ignore[arg-type]
    assert mq.receive() == (b"buffer", 1)


def test_received_message_sends_again(make_queue: MakeQueue) -> None:
    first, second = make_queue(), make_queue()
    first.send(b"relay", 11)
    second.send(first.receive())
    assert second.receive() == (b"relay", 11)


def test_priority_bounds(mq: MessageQueue) -> None:
    top = anyposixmq.PRIORITY_MAX
    mq.send(b"top", top)
    mq.send(b"low", 0)
    assert mq.receive() == (b"top", top)
    assert mq.receive() == (b"low", 0)


def test_priority_may_be_any_index(mq: MessageQueue) -> None:
    mq.send(b"idx", Index(3))  # type: ignore[arg-type]
    assert mq.receive() == (b"idx", 3)


BAD_SENDS: list[tuple[Any, Any, type[Exception], str]] = [
    ("text", 0, TypeError, "encode it first"),
    ("", None, TypeError, "encode"),
    (b"x", -1, ValueError, "outside 0..32767|outside 0..\\d+"),
    (b"x", anyposixmq.PRIORITY_MAX + 1, ValueError, "PRIORITY_MAX"),
    (b"x", 2**70, ValueError, "PRIORITY_MAX"),
    (b"x", True, TypeError, "priority must be an int"),
    (b"x", 1.0, TypeError, "priority must be an int"),
    (b"x", "1", TypeError, "priority must be an int"),
    (bytearray(b"x"), -1, ValueError, "PRIORITY_MAX"),
    (Message(b"x", -3), None, ValueError, "PRIORITY_MAX"),
    (Message(b"x", 1), True, TypeError, "priority must be an int"),
    (Message("text", 1), None, TypeError, "encode"),  # type: ignore[arg-type]
    (memoryview(b"abcdef")[::2], 0, TypeError, "contiguous"),
    (None, 0, TypeError, "bytes-like"),
    (12, 0, TypeError, "bytes-like"),
    ([1, 2], 0, TypeError, "bytes-like"),
]


@pytest.mark.parametrize(("data", "priority", "error", "match"), BAD_SENDS)
@pytest.mark.parametrize("how", ["send", "send timeout", "send_nowait"])
def test_bad_sends_send_nothing(
    mq: MessageQueue, data: Any, priority: Any, error: type[Exception], match: str, how: str
) -> None:
    calls = {
        "send": lambda: mq.send(data, priority),
        "send timeout": lambda: mq.send(data, priority, timeout=1),
        "send_nowait": lambda: mq.send_nowait(data, priority),
    }
    with pytest.raises(error, match=match):
        calls[how]()
    assert mq.attributes().current_messages == 0


# -- receive_into ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_buffer",
    [
        lambda n: bytearray(n),
        lambda n: memoryview(bytearray(n + 10)),
        lambda n: memoryview(bytearray(n + 10))[5:],
        lambda n: array.array("b", bytes(n)),
        lambda n: (ctypes.c_char * n)(),
    ],
)
def test_receive_into(make_queue: MakeQueue, make_buffer: Any) -> None:
    mq = make_queue(max_message_size=64)
    buffer = make_buffer(64)
    mq.send(b"into", 5)
    mq.send(b"second", 1)
    assert mq.receive_into(buffer) == (4, 5)
    assert bytes(memoryview(buffer).cast("B")[:4]) == b"into"
    assert mq.receive_into(buffer, timeout=1) == (6, 1)
    assert bytes(memoryview(buffer).cast("B")[:6]) == b"second"
    with pytest.raises(TimeoutError):
        mq.receive_into(buffer, timeout=0)


def test_receive_into_a_short_buffer_loses_nothing(make_queue: MakeQueue) -> None:
    mq = make_queue(max_message_size=64)
    mq.send(b"tiny", 3)
    for timeout in (None, 0, 1.0):
        with pytest.raises(ValueError, match=r"63 bytes .* max_message_size of 64") as info:
            mq.receive_into(bytearray(63), timeout=timeout)
        assert "largest message" in str(info.value)
        assert mq.attributes().current_messages == 1
    assert mq.receive(timeout=0) == (b"tiny", 3)


@pytest.mark.parametrize(
    "buffer",
    [bytes(128), memoryview(bytes(128)), memoryview(bytearray(256))[::2], "x" * 128, 128],
)
def test_receive_into_needs_a_writable_contiguous_buffer(mq: MessageQueue, buffer: Any) -> None:
    mq.send(b"stays")
    with pytest.raises(TypeError, match="writable contiguous buffer"):
        mq.receive_into(buffer)
    assert mq.receive(timeout=0) == (b"stays", 0)


# -- nowait, iteration, drain ------------------------------------------------------


def test_nowait_on_a_blocking_queue(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1)
    assert mq.nonblocking is False
    with pytest.raises(BlockingIOError):
        mq.receive_nowait()
    mq.send_nowait(b"1", 1)
    with pytest.raises(BlockingIOError):
        mq.send_nowait(b"2")
    assert mq.receive_nowait() == (b"1", 1)
    assert mq.nonblocking is False


def test_iteration_yields_in_order_and_waits(mq: MessageQueue) -> None:
    for i in range(3):
        mq.send(b"%d" % i, i)
    got: list[Message] = []
    for msg in mq:
        got.append(msg)
        if len(got) == 3:
            break
    assert got == [(b"2", 2), (b"1", 1), (b"0", 0)]

    # The next step waits for a message, even on a nonblocking queue.
    mq.nonblocking = True
    timer = threading.Timer(0.2, mq.send, (b"later", 4))
    timer.start()
    try:
        assert next(iter(mq)) == (b"later", 4)
    finally:
        timer.join()


def test_drain_takes_what_is_there_and_stops(mq: MessageQueue) -> None:
    assert list(mq.drain()) == []
    for i in range(4):
        mq.send(b"m%d" % i, i % 2)
    drained = mq.drain()
    assert next(drained) == (b"m1", 1)
    mq.send(b"late", 9)  # arrives while draining: taken too
    assert list(drained) == [(b"late", 9), (b"m3", 1), (b"m0", 0), (b"m2", 0)]
    assert mq.attributes().current_messages == 0
    assert mq.nonblocking is False


def test_drain_does_not_block(mq: MessageQueue) -> None:
    started = time.monotonic()
    assert list(mq.drain()) == []
    assert time.monotonic() - started < 5


# -- attributes and nonblocking ------------------------------------------------------


def test_attributes_are_live(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=3, max_message_size=32)
    attrs = mq.attributes()
    assert attrs == anyposixmq.QueueAttributes(
        capacity=3, max_message_size=32, current_messages=0, nonblocking=False
    )
    with MessageQueue(str(mq.name)) as other:
        other.send(b"a")
        other.send(b"b")
        assert mq.attributes().current_messages == 2
        mq.receive()
        assert other.attributes().current_messages == 1
    with pytest.raises(AttributeError):
        attrs.capacity = 5  # type: ignore[misc]


def test_nonblocking_setter(mq: MessageQueue) -> None:
    mq.nonblocking = True
    assert mq.nonblocking is True
    assert mq.attributes().nonblocking is True
    with pytest.raises(BlockingIOError):
        mq.receive()
    mq.nonblocking = False
    assert mq.nonblocking is False
    assert mq.attributes().nonblocking is False
    with pytest.raises(TypeError, match="bool"):
        mq.nonblocking = 1  # type: ignore[assignment]
    assert mq.nonblocking is False


def test_nonblocking_is_per_open_description(make_queue: MakeQueue, queue_name: str) -> None:
    first = make_queue(queue_name)
    with MessageQueue(queue_name) as second:
        first.nonblocking = True
        assert second.nonblocking is False


# -- receive_many --------------------------------------------------------------------


def test_receive_many_takes_what_is_there_in_receive_order(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=8)
    sent = [(b"a0", 0), (b"b5", 5), (b"c0", 0), (b"d9", 9), (b"e5", 5)]
    for data, prio in sent:
        mq.send(data, prio)
    assert mq.receive_many(3) == [(b"d9", 9), (b"b5", 5), (b"e5", 5)]
    got = mq.receive_many(64)
    assert got == [(b"a0", 0), (b"c0", 0)]
    assert all(type(msg) is Message and type(msg.data) is bytes for msg in got)
    assert mq.attributes().current_messages == 0


def test_receive_many_waits_for_the_first_message(mq: MessageQueue) -> None:
    timer = threading.Timer(0.2, mq.send, (b"late",))
    timer.start()
    try:
        assert mq.receive_many(4, timeout=30) == [(b"late", 0)]
    finally:
        timer.join()


def test_receive_many_of_more_than_the_queue_holds(mq: MessageQueue) -> None:
    for i in range(4):
        mq.send(b"%d" % i)
    # Allocates for the queue's capacity, not for 10**9 messages.
    assert [m.data for m in mq.receive_many(10**9)] == [b"0", b"1", b"2", b"3"]


@pytest.mark.parametrize(
    ("max_messages", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("3", TypeError), (True, TypeError)],
)
def test_receive_many_bad_max_messages_before_any_system_call(
    mq: MessageQueue, no_syscalls: None, max_messages: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_messages"):
        mq.receive_many(max_messages)


def test_receive_many_on_a_closed_queue(mq: MessageQueue) -> None:
    mq.close()
    with pytest.raises(ValueError, match="closed"):
        mq.receive_many(4)
