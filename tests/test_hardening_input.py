"""Hostile and odd input: every bad argument gets the contract's error before
any system call, and the queue's contents are left as they were.

The ``no_system_calls`` guard replaces the C binding seen by the package with a
spy that fails the test on any call that reaches the kernel, so "before any
system call" is checked, not assumed.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _helpers import replace_binding, unique_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyposixmq
from anyposixmq import PRIORITY_MAX, Message, MessageQueue, _sync
from anyposixmq._checks import SendArgs
from anyposixmq._types import Buffer

CAPACITY = 4
SIZE = 128
SENTINELS = [Message(b"first", 3), Message(b"", 0), Message(b"third" * 5, PRIORITY_MAX)]

hypothesis_settings = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# The C functions that do not enter the kernel (a closed queue being collected
# meanwhile asks apmq_kept whether it still holds messages).
_HARMLESS = {"apmq_closed", "apmq_kept"}


class _Spy:
    """Stands in for the compiled ``lib``: any kernel-facing call is recorded."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: list[str] = []

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._real, attr)
        if attr.startswith("apmq_") and attr not in _HARMLESS:

            def record(*args: Any) -> Any:
                self.calls.append(attr)
                return value(*args)

            return record
        return value


@contextlib.contextmanager
def no_system_calls() -> Iterator[_Spy]:
    """Fail if the block reaches the kernel through the binding."""
    spy = _Spy(_sync.lib)  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as monkeypatch:
        replace_binding(monkeypatch, spy)
        yield spy
    assert spy.calls == [], f"system calls made before the error: {spy.calls}"


def _raises_before_syscall(exc: type[BaseException], call: Callable[[], object]) -> BaseException:
    with no_system_calls(), pytest.raises(exc) as info:
        call()
    return info.value


@contextlib.contextmanager
def loaded_queue() -> Iterator[MessageQueue]:
    """A small queue holding SENTINELS; on exit, check they are all still
    there, in order, and nothing else."""
    name = unique_name("input")
    mq = MessageQueue(name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=SIZE)
    try:
        for msg in SENTINELS:
            mq.send(msg)
        yield mq
        assert mq.attributes().current_messages == len(SENTINELS)
        got = list(mq.drain())
        expected = sorted(SENTINELS, key=lambda m: -m.priority)
        assert got == expected
    finally:
        mq.close()
        anyposixmq.unlink(name, missing_ok=True)


@pytest.fixture
def queue() -> Iterator[MessageQueue]:
    with loaded_queue() as mq:
        yield mq


# -- names ---------------------------------------------------------------------


def _valid_rest(rest: bytes) -> bool:
    return (
        0 < len(rest) <= 255
        and b"\0" not in rest
        and b"/" not in rest
        and rest not in (b".", b"..")
    )


def _expected_raw(name: str | bytes) -> bytes | None:
    """What the contract says *name* means, or None when it is invalid."""
    if isinstance(name, str):
        try:
            # As os.fsencode does on Linux: bytes that are not UTF-8 come as
            # surrogate escapes; any other lone surrogate stands for no byte.
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
    else:
        raw = name
    if not raw:
        return None
    if raw.startswith(b"/"):
        raw = raw[1:]
    return b"/" + raw if _valid_rest(raw) else None


name_chars = st.sampled_from(
    ["a", "é", "漢", "😀", "/", "\0", ".", " ", "\n", "\udcff", "\ud800", "-"]
)
text_names = st.one_of(
    st.text(name_chars, max_size=6),
    st.integers(min_value=250, max_value=260).flatmap(
        lambda n: st.sampled_from([n * "x", "/" + n * "x", (n // 2) * "é", "/" + (n // 4) * "😀"])
    ),
    st.text(max_size=20),
)
byte_names = st.one_of(
    st.binary(max_size=8),
    st.integers(min_value=250, max_value=260).map(lambda n: b"/" + n * b"\xff"),
)


@hypothesis_settings
@given(name=st.one_of(text_names, byte_names))
def test_names_follow_the_contract(name: str | bytes) -> None:
    raw = _expected_raw(name)
    if raw is None:
        # Rejected with ValueError, before mq_open, and before any other check.
        _raises_before_syscall(ValueError, lambda: MessageQueue(name, create=True))
        _raises_before_syscall(ValueError, lambda: anyposixmq.unlink(name))
        return
    # A valid name is one the kernel takes.  Made unique with the process id
    # where there is room; the longest ones may be shared with another run of
    # this test at the same moment, hence missing_ok.
    tagged = raw + f"-{os.getpid()}".encode() if len(raw) <= 240 else raw
    with MessageQueue(tagged, create=True, capacity=1, max_message_size=1) as mq:
        try:
            assert mq.name == os.fsdecode(tagged)
        finally:
            anyposixmq.unlink(tagged, missing_ok=True)


@pytest.mark.parametrize("length", [254, 255])
def test_longest_names_work(length: int) -> None:
    name = ("n" * length)[: length - 12] + f"{os.getpid():>12}".replace(" ", "0")
    assert len(name) == length
    with MessageQueue(name, create=True, exclusive=True, capacity=1, max_message_size=1) as mq:
        try:
            mq.send(b"x")
            anyposixmq.MessageQueue(name).close()
        finally:
            mq.unlink()
    _raises_before_syscall(ValueError, lambda: MessageQueue(name + "nn", create=True))


@pytest.mark.parametrize("name", [1, None, 1.5, bytearray(b"/x"), memoryview(b"/x"), ["/x"]])
def test_name_of_wrong_type(name: Any) -> None:
    _raises_before_syscall(TypeError, lambda: MessageQueue(name, create=True))
    _raises_before_syscall(TypeError, lambda: anyposixmq.unlink(name))


# -- priorities ----------------------------------------------------------------


@hypothesis_settings
@given(priority=st.integers(min_value=-(2**70), max_value=2**70))
def test_priority_bounds(queue: MessageQueue, mq: MessageQueue, priority: int) -> None:
    if 0 <= priority <= PRIORITY_MAX:
        mq.send(b"p", priority)
        assert mq.receive() == Message(b"p", priority)
        return
    for call in (
        lambda: queue.send(b"p", priority),
        lambda: queue.send(bytearray(b"p"), priority),
        lambda: queue.send_nowait(b"p", priority),
        lambda: queue.send(Message(b"p", priority)),
        lambda: queue.send(b"p", priority, timeout=0),
        lambda: queue._try_send(SendArgs(b"p", priority)),
    ):
        err = _raises_before_syscall(ValueError, call)
        assert str(PRIORITY_MAX) in str(err)


@pytest.mark.parametrize("priority", [PRIORITY_MAX, PRIORITY_MAX + 1, -1, 0])
def test_priority_at_the_edges(queue: MessageQueue, mq: MessageQueue, priority: int) -> None:
    if 0 <= priority <= PRIORITY_MAX:
        mq.send(b"edge", priority)
        assert mq.receive() == Message(b"edge", priority)
    else:
        _raises_before_syscall(ValueError, lambda: queue.send(b"edge", priority))


@pytest.mark.parametrize("priority", [1.0, "1", True, False, 1j, b"1"])
def test_priority_of_wrong_type(queue: MessageQueue, priority: Any) -> None:
    _raises_before_syscall(TypeError, lambda: queue.send(b"x", priority))
    _raises_before_syscall(TypeError, lambda: queue.send(Message(b"x", priority)))


# -- message sizes and buffers -------------------------------------------------


def _buffers_of(data: bytes) -> list[Buffer]:
    """The same bytes as every contiguous buffer type send() accepts."""
    out: list[Buffer] = [data, bytearray(data), memoryview(data), memoryview(bytearray(data))]
    padded = b"<<" + data + b">>"
    out.append(memoryview(padded)[2 : 2 + len(data)])
    out.append(array.array("B", data))
    if len(data) % 4 == 0 and data:
        out.append(array.array("i", data))  # multi-byte items: sent as raw bytes
        out.append(memoryview(bytearray(data)).cast("B", (4, len(data) // 4)))  # 2-D, contiguous
    return out


@hypothesis_settings
@given(data=st.binary(min_size=0, max_size=SIZE))
def test_every_buffer_type_round_trips(mq: MessageQueue, data: bytes) -> None:
    for buf in _buffers_of(data):
        mq.send(buf, 7)
        assert mq.receive() == Message(data, 7)


@pytest.mark.parametrize("size", [0, 1, SIZE - 1, SIZE])
def test_sizes_that_fit(mq: MessageQueue, size: int) -> None:
    data = bytes(range(256))[:size]
    mq.send(data, PRIORITY_MAX)
    assert mq.receive() == Message(data, PRIORITY_MAX)
    into = bytearray(SIZE)
    mq.send(data, 5)
    assert mq.receive_into(into) == (size, 5)
    assert into[:size] == data


@pytest.mark.parametrize("size", [SIZE + 1, SIZE * 4])
def test_one_past_max_message_size(queue: MessageQueue, size: int) -> None:
    for buf in _buffers_of(b"y" * size):
        with pytest.raises(OSError) as info:
            queue.send(buf, 9, timeout=0)
        assert info.value.errno == errno.EMSGSIZE
        assert str(size) in str(info.value)
        assert str(SIZE) in str(info.value)
        assert info.value.filename == queue.name


@pytest.mark.parametrize(
    "make",
    [
        lambda: memoryview(b"abcdef")[::2],
        lambda: memoryview(b"abcdefgh")[::-1],
        lambda: "text",
        lambda: None,
        lambda: 5,
        lambda: [1, 2],
        lambda: iter([b"a"]),
        lambda: Message("text", 1),  # type: ignore[arg-type]
        lambda: Message(None, 1),  # type: ignore[arg-type]
    ],
)
def test_send_rejects_non_buffers(queue: MessageQueue, make: Callable[[], Any]) -> None:
    data = make()
    err = _raises_before_syscall(TypeError, lambda: queue.send(data))
    data_field: object = data.data if isinstance(data, Message) else data
    if isinstance(data_field, str):
        assert "encode" in str(err)
    _raises_before_syscall(TypeError, lambda: queue.send_nowait(data))
    _raises_before_syscall(TypeError, lambda: queue._try_send(SendArgs(data)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: bytes(SIZE),  # read-only
        lambda: memoryview(bytes(SIZE)),  # read-only view
        lambda: memoryview(bytearray(SIZE)).toreadonly(),
        lambda: memoryview(bytearray(SIZE * 2))[::2],  # not contiguous
        lambda: "x" * SIZE,
        lambda: None,
        lambda: SIZE,
    ],
)
def test_receive_into_rejects_unusable_buffers(
    queue: MessageQueue, make: Callable[[], Any]
) -> None:
    buf = make()
    _raises_before_syscall(TypeError, lambda: queue.receive_into(buf))
    _raises_before_syscall(TypeError, lambda: queue.receive_into(buf, timeout=0))
    _raises_before_syscall(TypeError, lambda: queue._try_receive_into(buf))


@hypothesis_settings
@given(size=st.integers(min_value=0, max_value=SIZE - 1), offset=st.integers(0, 8))
def test_receive_into_too_small(queue: MessageQueue, size: int, offset: int) -> None:
    backing = bytearray(size + offset)
    buf = memoryview(backing)[offset:]
    err = _raises_before_syscall(ValueError, lambda: queue.receive_into(buf))
    assert str(SIZE) in str(err)
    assert str(size) in str(err)
    assert backing == bytearray(size + offset)


@hypothesis_settings
@given(
    kind=st.sampled_from(["bytearray", "slice", "array", "2d"]),
    extra=st.integers(0, 16),
    data=st.binary(max_size=SIZE),
)
def test_receive_into_writable_buffers(
    mq: MessageQueue, kind: str, extra: int, data: bytes
) -> None:
    n = SIZE + extra * 4
    backing = bytearray(b"\xee" * (n + 8))
    target: Any
    if kind == "bytearray":
        target = bytearray(n)
        view = memoryview(target)
    elif kind == "slice":
        view = target = memoryview(backing)[4 : 4 + n]
    elif kind == "array":
        target = array.array("i", bytes(n))
        view = memoryview(target).cast("B")
    else:
        target = memoryview(bytearray(n)).cast("B", (4, n // 4))
        view = target.cast("B")
    mq.send(data, 11)
    assert mq.receive_into(target) == (len(data), 11)
    assert bytes(view[: len(data)]) == data
    if kind == "slice":
        assert backing[:4] == b"\xee" * 4
        assert backing[4 + n :] == b"\xee" * 4


# -- timeouts and other arguments ------------------------------------------------


@pytest.mark.parametrize("timeout", [-1, -0.001, float("nan"), float("-inf")])
def test_bad_timeout_values(queue: MessageQueue, timeout: float) -> None:
    _raises_before_syscall(ValueError, lambda: queue.send(b"x", timeout=timeout))
    _raises_before_syscall(ValueError, lambda: queue.receive(timeout=timeout))
    _raises_before_syscall(ValueError, lambda: queue.receive_into(bytearray(SIZE), timeout=timeout))


@pytest.mark.parametrize("timeout", ["1", b"1", True, [1], 1j])
def test_bad_timeout_types(queue: MessageQueue, timeout: Any) -> None:
    _raises_before_syscall(TypeError, lambda: queue.send(b"x", timeout=timeout))
    _raises_before_syscall(TypeError, lambda: queue.receive(timeout=timeout))
    _raises_before_syscall(TypeError, lambda: queue.receive_into(bytearray(SIZE), timeout=timeout))


@pytest.mark.parametrize("timeout", [1e300, 1e10, 2.0**63, float("inf")])
def test_huge_timeouts_wait_instead_of_failing(mq: MessageQueue, timeout: float) -> None:
    # A timeout past time_t once reached the kernel as garbage (EINVAL).
    for _ in range(mq.capacity):
        mq.send(b"ready", 1, timeout=timeout)
    for _ in range(mq.capacity):
        assert mq.receive(timeout=timeout) == Message(b"ready", 1)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"capacity": 0}, ValueError),
        ({"capacity": -1}, ValueError),
        ({"capacity": 2**70}, ValueError),
        ({"max_message_size": 2**64}, ValueError),
        ({"max_message_size": 0}, ValueError),
        ({"capacity": 4.0}, TypeError),
        ({"capacity": True}, TypeError),
        ({"capacity": "4"}, TypeError),
        ({"mode": "0o600"}, TypeError),
        ({"mode": 0o10000}, ValueError),
        ({"mode": -1}, ValueError),
        ({"mode": True}, TypeError),
        ({"exclusive": True, "create": False}, ValueError),
        ({"read": False, "write": False}, ValueError),
    ],
)
def test_bad_open_arguments(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    name = unique_name("badopen")
    kwargs.setdefault("create", True)
    _raises_before_syscall(exc, lambda: MessageQueue(name, **kwargs))
    with pytest.raises(FileNotFoundError):
        MessageQueue(name)


@pytest.mark.parametrize(
    ("fd", "exc"), [(-1, ValueError), (2**40, ValueError), ("3", TypeError), (True, TypeError)]
)
def test_bad_from_fd(fd: Any, exc: type[Exception]) -> None:
    _raises_before_syscall(exc, lambda: MessageQueue.from_fd(fd))


def test_nonblocking_setter_rejects_non_bool(queue: MessageQueue) -> None:
    _raises_before_syscall(TypeError, lambda: setattr(queue, "nonblocking", 1))
    assert queue.nonblocking is False


def test_closed_queue_raises_value_error_everywhere() -> None:
    with loaded_queue() as mq:
        dup = mq.dup()
        dup.close()
        calls: list[Callable[[], object]] = [
            lambda: dup.send(b"x"),
            lambda: dup.send(b"x", timeout=1),
            lambda: dup.send_nowait(b"x"),
            lambda: dup.receive(),
            lambda: dup.receive(timeout=1),
            lambda: dup.receive_nowait(),
            lambda: dup.receive_into(bytearray(SIZE)),
            lambda: dup.attributes(),
            lambda: dup.fileno(),
            lambda: setattr(dup, "nonblocking", True),
            lambda: dup.dup(),
            lambda: dup.detach(),
            lambda: dup._try_receive(),
            lambda: dup._try_send(SendArgs(b"x")),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="closed"):
                call()
        dup.close()  # twice is fine
        assert mq.nonblocking is False  # the shared description was not touched


def test_wrong_direction_keeps_contents() -> None:
    with loaded_queue() as mq:
        assert mq.name is not None
        with (
            MessageQueue(mq.name, write=False) as reader,
            MessageQueue(mq.name, read=False) as writer,
        ):
            with pytest.raises(OSError, match="not opened for writing") as w:
                reader.send(b"x")
            assert w.value.errno == errno.EBADF
            with pytest.raises(OSError, match="not opened for reading") as r:
                writer.receive(timeout=0)
            assert r.value.errno == errno.EBADF


# -- buffers handed back at once ---------------------------------------------------

_CYCLE_SCRIPT = """
import gc, sys
import anyposixmq

name = sys.argv[1]
q = anyposixmq.MessageQueue(name, create=True, exclusive=True, capacity=1, max_message_size=8)
anyposixmq.unlink(name)

class Box:
    pass

def make(kind):
    if kind == 0:
        return memoryview(bytearray(8))
    if kind == 1:
        return memoryview(b"<<" + bytes(8) + b">>")[2:10]
    return memoryview(bytearray(8)).cast("B", (2, 4))

def scenario(call, kind, order):
    gc.collect()
    if order:
        box = Box()
        view = make(kind)
    else:
        view = make(kind)
        box = Box()
    box.view = view
    try:
        call(view)
    except (OSError, ValueError, TypeError) as exc:
        box.err = (exc,)  # a cycle through the traceback, as pytest.raises makes
    box.me = box
    del view, box
    gc.collect()

q.send(b"full")
for kind in range(3):
    for order in range(2):
        scenario(lambda v: q.send(v, timeout=0), kind, order)
        scenario(lambda v: q.send_nowait(v), kind, order)
        scenario(lambda v: q.receive_into(v.cast("B")[:7]), kind, order)
assert q.receive(timeout=5) == (b"full", 0)
for kind in range(3):
    for order in range(2):
        scenario(lambda v: q.receive_into(v, timeout=0), kind, order)
q.close()
print("survived")
"""


def test_failed_calls_do_not_keep_buffers_exported() -> None:
    # A view of the caller's buffer left in the traceback of the error once
    # kept the buffer exported; the cycle collector then crashed CPython
    # (segfault) freeing the memoryview.  Run in a subprocess to see a crash.
    import subprocess
    import sys

    name = unique_name("cycle")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CYCLE_SCRIPT, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        anyposixmq.unlink(name, missing_ok=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "survived"
    assert "BufferError" not in proc.stderr


def test_bytearray_resizable_after_failed_calls(mq: MessageQueue) -> None:
    data = bytearray(b"payload")
    for _ in range(mq.capacity):
        mq.send(b"x")
    with pytest.raises(BlockingIOError) as full:
        mq.send_nowait(data)
    with pytest.raises(TimeoutError) as timed:
        mq.send(data, timeout=0.001)
    data.extend(b"!")  # BufferError while the errors held a view of it
    target = bytearray(SIZE)
    drained = list(mq.drain())
    assert len(drained) == mq.capacity
    with pytest.raises(TimeoutError) as empty:
        mq.receive_into(target, timeout=0.001)
    target.extend(b"more")
    assert full.value.errno == errno.EAGAIN
    assert empty.value.errno == errno.ETIMEDOUT
    assert timed.value.errno == errno.ETIMEDOUT
