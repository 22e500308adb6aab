"""Life cycle of a MessageQueue: close, with, garbage collection, descriptors, dup,
detach/from_fd, inheritance across exec, unlink."""

from __future__ import annotations

import errno
import gc
import os
import select
import subprocess
import sys
import textwrap
import warnings

import pytest
from _helpers import CHILD_CWD, MakeQueue, unique_name

import anyposixmq
from anyposixmq import MessageQueue, _sync


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _closed(mq: MessageQueue) -> bool:
    return mq.closed


# -- close, with, garbage collection -------------------------------------------------


def test_close_is_idempotent(mq: MessageQueue) -> None:
    fd = mq.fileno()
    assert not mq.closed
    mq.close()
    assert _closed(mq)
    assert not _is_open(fd)
    mq.close()
    assert _closed(mq)


def _fail_inside(mq: MessageQueue) -> None:
    with mq:
        raise KeyError


def test_context_manager(queue_name: str) -> None:
    with MessageQueue(queue_name, create=True, capacity=2, max_message_size=16) as mq:
        assert isinstance(mq, MessageQueue)
        fd = mq.fileno()
        mq.send(b"in")
    assert _closed(mq)
    assert not _is_open(fd)

    again = MessageQueue(queue_name)
    fd = again.fileno()
    with pytest.raises(KeyError):
        _fail_inside(again)
    assert _closed(again)
    assert not _is_open(fd)

    # The queue itself outlives the objects.
    with MessageQueue(queue_name) as last:
        assert last.receive(timeout=0) == (b"in", 0)


def test_resource_warning_when_collected_open(queue_name: str) -> None:
    mq = MessageQueue(queue_name, create=True, capacity=1, max_message_size=8)
    fd = mq.fileno()
    with pytest.warns(ResourceWarning, match="unclosed"):  # noqa: PT031
        del mq
        gc.collect()
    assert not _is_open(fd)


def test_resource_warning_in_a_reference_cycle(queue_name: str) -> None:
    class Holder:
        pass

    holder = Holder()
    holder.mq = MessageQueue(  # type: ignore[attr-defined]
        queue_name, create=True, capacity=1, max_message_size=8
    )
    holder.me = holder  # type: ignore[attr-defined]
    fd = holder.mq.fileno()  # type: ignore[attr-defined]
    with pytest.warns(ResourceWarning, match=queue_name):  # noqa: PT031
        del holder
        gc.collect()
    assert not _is_open(fd)


def test_no_warning_when_closed_detached_or_failed(make_queue: MakeQueue) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        closed = make_queue()
        closed.close()
        del closed
        detached = make_queue()
        fd = detached.detach()
        del detached
        with pytest.raises(FileNotFoundError):
            MessageQueue(unique_name())
        with pytest.raises(ValueError):
            MessageQueue("/a/b")
        gc.collect()
    assert _is_open(fd)
    os.close(fd)


# -- fileno, inheritance ----------------------------------------------------------------


def test_fileno_is_a_pollable_descriptor(mq: MessageQueue) -> None:
    fd = mq.fileno()
    assert isinstance(fd, int)
    assert fd >= 0
    assert _is_open(fd)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLOUT)
    assert dict(poller.poll(0)).get(fd, 0) & select.POLLIN == 0
    mq.send(b"ready")
    assert dict(poller.poll(1000))[fd] & select.POLLIN
    readable, _, _ = select.select([mq], [], [], 1)
    assert readable == [mq]


def test_not_inheritable_by_default(mq: MessageQueue) -> None:
    assert mq.get_inheritable() is False
    assert os.get_inheritable(mq.fileno()) is False
    mq.set_inheritable(True)
    assert mq.get_inheritable() is True
    assert os.get_inheritable(mq.fileno()) is True
    mq.set_inheritable(False)
    assert mq.get_inheritable() is False


def test_nonblocking_open_is_not_inheritable(make_queue: MakeQueue, queue_name: str) -> None:
    make_queue(queue_name)
    for kwargs in ({"nonblocking": True}, {"write": False}, {"read": False}):
        with MessageQueue(queue_name, **kwargs) as mq:
            assert mq.get_inheritable() is False


_CHILD = """
import os, sys, anyposixmq
fd = int(sys.argv[1])
try:
    q = anyposixmq.MessageQueue.from_fd(fd)
except OSError as exc:
    print("absent", exc.errno)
else:
    with q:
        print("inherited", q.receive(timeout=1).data.decode())
"""


@pytest.mark.parametrize("inheritable", [False, True])
def test_inheritance_across_exec(mq: MessageQueue, inheritable: bool) -> None:
    if inheritable:
        mq.set_inheritable(True)
    mq.send(b"to the child")
    fd = mq.fileno()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(fd)],
        close_fds=False,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 0, result.stderr
    if inheritable:
        assert result.stdout.split() == ["inherited", "to", "the", "child"]
        assert mq.attributes().current_messages == 0
    else:
        assert result.stdout.split() == ["absent", str(errno.EBADF)]
        assert mq.attributes().current_messages == 1


# -- dup ------------------------------------------------------------------------------


def test_dup_shares_the_open_description(mq: MessageQueue) -> None:
    twin = mq.dup()
    try:
        assert isinstance(twin, MessageQueue)
        assert twin.fileno() != mq.fileno()
        assert twin.name == mq.name
        assert (twin.capacity, twin.max_message_size) == (mq.capacity, mq.max_message_size)
        assert twin.get_inheritable() is False

        twin.nonblocking = True
        assert mq.nonblocking is True
        mq.nonblocking = False
        assert twin.nonblocking is False

        mq.send(b"via original", 2)
        assert twin.receive(timeout=1) == (b"via original", 2)
    finally:
        twin.close()
    # Closing one leaves the other working.
    assert not mq.closed
    mq.send(b"still", 1)
    assert mq.receive(timeout=1) == (b"still", 1)


def test_dup_outlives_the_original(mq: MessageQueue) -> None:
    twin = mq.dup()
    mq.close()
    with twin:
        twin.send(b"after")
        assert twin.receive(timeout=1) == (b"after", 0)


# -- detach and from_fd ------------------------------------------------------------------


def test_detach_then_from_fd(make_queue: MakeQueue, queue_name: str) -> None:
    mq = make_queue(queue_name, capacity=3, max_message_size=48)
    mq.send(b"kept", 4)
    fd = mq.detach()
    assert _closed(mq)
    assert _is_open(fd)
    mq.close()  # does not close the detached descriptor
    assert _is_open(fd)
    with pytest.raises(ValueError, match="closed"):
        mq.detach()

    adopted = MessageQueue.from_fd(fd)
    try:
        assert adopted.fileno() == fd
        assert adopted.name is None
        assert (adopted.capacity, adopted.max_message_size) == (3, 48)
        assert adopted.receive(timeout=1) == (b"kept", 4)
        with pytest.raises(ValueError, match="without a name"):
            adopted.unlink()
    finally:
        adopted.close()
    assert not _is_open(fd)


@pytest.mark.parametrize("inheritable", [True, False])
def test_from_fd_keeps_the_inheritable_flag(mq: MessageQueue, inheritable: bool) -> None:
    # Adopting a descriptor must not change it: only queues we open are made
    # close-on-exec.
    fd = mq.dup().detach()
    os.set_inheritable(fd, inheritable)
    with MessageQueue.from_fd(fd) as adopted:
        assert adopted.get_inheritable() is inheritable
        assert os.get_inheritable(fd) is inheritable


def test_from_fd_with_a_name(make_queue: MakeQueue, queue_name: str) -> None:
    fd = make_queue(queue_name).detach()
    with MessageQueue.from_fd(fd, name=queue_name.lstrip("/")) as adopted:
        assert adopted.name == queue_name
        with pytest.raises(OSError, match=queue_name) as info:
            adopted.send(b"x" * 1000)
        assert info.value.filename == queue_name
        adopted.unlink()
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)


def test_from_fd_of_a_descriptor_that_is_not_a_queue() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError, match=f"descriptor {read_end} is not an open message queue"):
            MessageQueue.from_fd(read_end)
        # The failed adoption did not take (or close) the descriptor.
        assert _is_open(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_from_fd_of_a_closed_descriptor() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(OSError) as info:
        MessageQueue.from_fd(read_end)
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize(("fd", "error"), [(-1, ValueError), (2**40, ValueError), ("3", TypeError)])
def test_from_fd_bad_numbers(fd: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="fd"):
        MessageQueue.from_fd(fd)  # type: ignore[arg-type]


def test_from_fd_shares_the_description_with_its_source(mq: MessageQueue) -> None:
    fd = os.dup(mq.fileno())
    with MessageQueue.from_fd(fd) as other:
        other.nonblocking = True
        assert mq.nonblocking is True


# -- unlink -------------------------------------------------------------------------------


def test_unlink_method_keeps_the_object_working(make_queue: MakeQueue, queue_name: str) -> None:
    mq = make_queue(queue_name)
    mq.unlink()
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)
    mq.send(b"still here")
    assert mq.receive(timeout=1) == (b"still here", 0)
    with pytest.raises(FileNotFoundError):
        mq.unlink()
    # The name is free again: a new, different queue can take it.
    with MessageQueue(
        queue_name, create=True, exclusive=True, capacity=1, max_message_size=8
    ) as new:
        assert new.capacity == 1
        mq.send(b"old")
        assert new.attributes().current_messages == 0


def test_unlink_function(make_queue: MakeQueue, queue_name: str) -> None:
    make_queue(queue_name).close()
    anyposixmq.unlink(queue_name.lstrip("/"))
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)
    with pytest.raises(FileNotFoundError) as info:
        anyposixmq.unlink(queue_name)
    assert info.value.filename == queue_name
    anyposixmq.unlink(queue_name, missing_ok=True)
    make_queue(queue_name).close()
    anyposixmq.unlink(queue_name.encode(), missing_ok=True)
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)


def test_unlink_of_a_closed_object(make_queue: MakeQueue, queue_name: str) -> None:
    mq = make_queue(queue_name)
    mq.close()
    mq.unlink()
    with pytest.raises(FileNotFoundError):
        MessageQueue(queue_name)


def test_open_queue_survives_unlink_and_the_name_goes(make_queue: MakeQueue) -> None:
    mq = make_queue()
    other = MessageQueue(str(mq.name))
    try:
        anyposixmq.unlink(str(mq.name))
        other.send(b"between")
        assert mq.receive(timeout=1) == (b"between", 0)
    finally:
        other.close()


def test_child_process_sees_the_queue_by_name(mq: MessageQueue) -> None:
    script = textwrap.dedent(
        f"""
        import anyposixmq
        with anyposixmq.MessageQueue({mq.name!r}) as q:
            q.send(b"from the child", 9)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30, cwd=CHILD_CWD)
    assert mq.receive(timeout=1) == (b"from the child", 9)


def test_repr_of_an_object_whose_open_failed(queue_name: str) -> None:
    # Tracebacks (pytest --showlocals, debuggers, loggers) show the half-made object.
    with pytest.raises(FileNotFoundError) as info:
        MessageQueue(queue_name)
    frame_locals = [entry.locals for entry in info.traceback if "self" in entry.locals]
    assert frame_locals
    half_made = frame_locals[0]["self"]
    assert "closed" in repr(half_made)
    assert half_made.closed
    half_made.close()


def test_fileno_where_queues_cannot_be_polled(
    mq: MessageQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NetBSD and illumos: there is no descriptor to poll, and fileno says so.
    monkeypatch.setattr(_sync, "POLLABLE", False)
    with pytest.raises(OSError, match="cannot be polled") as info:
        mq.fileno()
    assert info.value.errno == errno.ENOTSUP
    assert info.value.filename == mq.name
