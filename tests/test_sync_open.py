"""Opening and creating queues: flags, access, mode bits and sizes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from _helpers import CHILD_CWD, MakeQueue, run_in_private_mqueuefs, unique_name

import anyposixmq
from anyposixmq import _open


def test_create_then_open_existing(make_queue: MakeQueue, queue_name: str) -> None:
    created = make_queue(queue_name, capacity=3, max_message_size=64)
    with anyposixmq.MessageQueue(queue_name) as opened:
        assert (opened.capacity, opened.max_message_size) == (3, 64)
        created.send(b"hi", 2)
        assert opened.receive(timeout=1) == anyposixmq.Message(b"hi", 2)


def test_create_opens_an_existing_queue_without_changing_it(
    make_queue: MakeQueue, queue_name: str
) -> None:
    first = make_queue(queue_name, capacity=3, max_message_size=64)
    first.send(b"kept")
    with anyposixmq.MessageQueue(
        queue_name, create=True, capacity=2, max_message_size=32
    ) as second:
        # Sizes only matter when creating: the existing queue keeps its own.
        assert (second.capacity, second.max_message_size) == (3, 64)
        assert second.receive(timeout=1).data == b"kept"


def test_missing_queue(queue_name: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        anyposixmq.MessageQueue(queue_name)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == queue_name
    assert "create=True" in str(info.value)


def test_exclusive_create(make_queue: MakeQueue, queue_name: str) -> None:
    make_queue(queue_name, exclusive=True)
    with pytest.raises(FileExistsError) as info:
        anyposixmq.MessageQueue(
            queue_name, create=True, exclusive=True, capacity=1, max_message_size=8
        )
    assert info.value.errno == errno.EEXIST
    assert info.value.filename == queue_name


def test_exclusive_on_a_fresh_name_creates(make_queue: MakeQueue, queue_name: str) -> None:
    mq = make_queue(queue_name, exclusive=True, capacity=2, max_message_size=16)
    assert (mq.capacity, mq.max_message_size) == (2, 16)


@pytest.mark.usefixtures("no_syscalls")
def test_exclusive_without_create() -> None:
    with pytest.raises(ValueError, match="exclusive=True needs create=True"):
        anyposixmq.MessageQueue(unique_name(), exclusive=True)


@pytest.mark.usefixtures("no_syscalls")
def test_read_and_write_both_false() -> None:
    with pytest.raises(ValueError, match="read and write cannot both be False"):
        anyposixmq.MessageQueue(unique_name(), create=True, read=False, write=False)


def test_read_only_and_write_only(make_queue: MakeQueue, queue_name: str) -> None:
    make_queue(queue_name)
    with (
        anyposixmq.MessageQueue(queue_name, write=False) as reader,
        anyposixmq.MessageQueue(queue_name, read=False) as writer,
    ):
        writer.send(b"w", 1)
        assert reader.receive(timeout=1) == (b"w", 1)
        with pytest.raises(OSError, match="not opened for writing") as sending:
            reader.send(b"no")
        assert sending.value.errno == errno.EBADF
        assert sending.value.filename == queue_name
        with pytest.raises(OSError, match="not opened for reading") as receiving:
            writer.receive(timeout=0)
        assert receiving.value.errno == errno.EBADF
        with pytest.raises(OSError, match="not opened for reading"):
            writer.receive_nowait()
        with pytest.raises(OSError, match="not opened for writing"):
            reader.send_nowait(b"no")
        assert reader.attributes().current_messages == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"capacity": 0}, ValueError, "capacity must be at least 1"),
        ({"capacity": -1}, ValueError, "capacity must be at least 1"),
        ({"max_message_size": 0}, ValueError, "max_message_size must be at least 1"),
        ({"capacity": 2.0}, TypeError, "capacity must be an int"),
        ({"capacity": True}, TypeError, "capacity must be an int"),
        ({"max_message_size": "8"}, TypeError, "max_message_size must be an int"),
        ({"mode": -1}, ValueError, "mode must be permission bits .* not -0o1$"),
        ({"mode": 0o10000}, ValueError, "between 0 and 0o7777, not 0o10000$"),
        ({"mode": "0600"}, TypeError, "mode must be an int"),
        ({"capacity": 2**80}, ValueError, "larger than any system allows"),
    ],
)
@pytest.mark.usefixtures("no_syscalls")
def test_bad_arguments_before_any_system_call(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        anyposixmq.MessageQueue(unique_name(), create=True, **kwargs)


def test_capacity_only_uses_the_default_message_size(make_queue: MakeQueue) -> None:
    default = anyposixmq.limits().msgsize_default
    assert default
    mq = make_queue(capacity=2, max_message_size=None)
    assert mq.capacity == 2
    assert mq.max_message_size == default
    assert mq.attributes().max_message_size == default


def test_max_message_size_only_uses_the_default_capacity(make_queue: MakeQueue) -> None:
    default = anyposixmq.limits().msg_default
    assert default
    mq = make_queue(capacity=None, max_message_size=24)
    assert mq.max_message_size == 24
    assert mq.capacity == default
    assert mq.attributes().capacity == default


def test_no_sizes_gives_the_os_defaults(make_queue: MakeQueue) -> None:
    # A default queue costs ~82 KB of RLIMIT_MSGQUEUE: only one at a time here.
    lim = anyposixmq.limits()
    mq = make_queue(capacity=None, max_message_size=None)
    assert (mq.capacity, mq.max_message_size) == (lim.msg_default, lim.msgsize_default)


def test_default_sizes_when_the_system_does_not_report_them(
    make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where msg_default/msgsize_default are not reported, the defaults are
    # asked from the kernel with a scratch queue, which must not be left over.
    real = anyposixmq.limits()
    unreported = type(real)(**{**_fields(real), "msg_default": None, "msgsize_default": None})
    monkeypatch.setattr(_open, "limits", lambda: unreported)
    mq = make_queue(capacity=2, max_message_size=None)
    assert mq.max_message_size == real.msgsize_default


@pytest.mark.parametrize(
    ("given", "expected"),
    [({"capacity": 2}, (2, 40)), ({"max_message_size": 24}, (3, 24))],
)
def test_one_sided_size_defaults_are_capped_by_the_maximums(
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    given: dict[str, int],
    expected: tuple[int, int],
) -> None:
    # Linux gives a new queue min(msg_default, msg_max) x min(msgsize_default,
    # msgsize_max): a lowered maximum caps the default the user never asked for.
    real = anyposixmq.limits()
    lowered = type(real)(**{**_fields(real), "msg_max": 3, "msgsize_max": 40})
    monkeypatch.setattr(_open, "limits", lambda: lowered)
    mq = make_queue(**{"capacity": None, "max_message_size": None, **given})
    assert (mq.capacity, mq.max_message_size) == expected


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def test_nonblocking_open(make_queue: MakeQueue) -> None:
    mq = make_queue(nonblocking=True)
    assert mq.attributes().nonblocking is True
    assert mq.nonblocking is True
    with pytest.raises(BlockingIOError):
        mq.receive()
    blocking = make_queue()
    assert blocking.nonblocking is False


def _is_closed(mq: anyposixmq.MessageQueue) -> bool:
    return mq.closed


def test_properties_and_repr(make_queue: MakeQueue, queue_name: str) -> None:
    mq = make_queue(queue_name, capacity=3, max_message_size=40)
    assert mq.name == queue_name
    assert mq.capacity == 3
    assert mq.max_message_size == 40
    assert mq.closed is False
    assert queue_name in repr(mq)
    assert "capacity=3" in repr(mq)
    mq.close()
    assert _is_closed(mq)
    assert "closed" in repr(mq)
    # Known after close, like a file's name.
    assert mq.name == queue_name
    assert mq.capacity == 3


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o666])
def test_mode_bits_of_a_created_queue(mode: int) -> None:
    name = unique_name("mode")
    script = textwrap.dedent(
        f"""
        import os, stat, anyposixmq
        os.umask(0)
        with anyposixmq.MessageQueue({name!r}, create=True, capacity=1,
                                     max_message_size=8, mode={mode}):
            pass
        try:
            st = os.stat("/dev/mqueue" + {name!r})
            print(oct(stat.S_IMODE(st.st_mode)))
        finally:
            anyposixmq.unlink({name!r})
        """
    )
    result = run_in_private_mqueuefs(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == oct(mode)


def test_default_mode_keeps_other_users_out(make_queue: MakeQueue, queue_name: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    make_queue(queue_name)
    # The umask may take others' write bit: nobody opens it read-only.
    other = make_queue(capacity=1, max_message_size=8, mode=0o606)
    script = textwrap.dedent(
        f"""
        import os, anyposixmq
        os.setgid(65534)
        os.setuid(65534)
        try:
            anyposixmq.MessageQueue({queue_name!r}, write=False)
        except PermissionError as exc:
            print("denied", exc.errno, exc.filename)
        with anyposixmq.MessageQueue({other.name!r}, write=False) as q:
            print("opened", q.capacity)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"denied {errno.EACCES} {queue_name}", "opened 1"]
