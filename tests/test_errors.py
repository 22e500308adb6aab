"""Errors: the OSError subclass for each errno, errno and filename set, and the
explanations of the kernel limits behind EINVAL, EMFILE, ENOSPC and EMSGSIZE."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _helpers import CHILD_CWD, MakeAsyncQueue, MakeQueue, unique_name

import anyposixmq


def _run(script: str, *prefix: str, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )


def _has_cap_sys_resource() -> bool:
    """Whether this process may go past the mqueue sysctls (then no EINVAL/ENOSPC)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))  # CAP_SYS_RESOURCE
    return False


needs_no_cap_sys_resource = pytest.mark.skipif(
    _has_cap_sys_resource(),
    reason="CAP_SYS_RESOURCE lets this process go past msg_max, msgsize_max and queues_max",
)


# -- EINVAL: sizes over the system maximums ----------------------------------


@needs_no_cap_sys_resource
def test_capacity_over_msg_max(queue_name: str) -> None:
    msg_max = anyposixmq.limits().msg_max
    assert msg_max is not None
    with pytest.raises(OSError) as info:
        anyposixmq.MessageQueue(queue_name, create=True, capacity=msg_max + 1, max_message_size=16)
    exc = info.value
    assert type(exc) is OSError
    assert exc.errno == errno.EINVAL
    assert exc.filename == queue_name
    text = str(exc)
    assert f"capacity {msg_max + 1} exceeds the system's msg_max of {msg_max}" in text
    assert f"sysctl fs.mqueue.msg_max={msg_max + 1}" in text
    assert "max_message_size" not in text
    with pytest.raises(FileNotFoundError):
        anyposixmq.MessageQueue(queue_name)


@needs_no_cap_sys_resource
def test_max_message_size_over_msgsize_max(queue_name: str) -> None:
    msgsize_max = anyposixmq.limits().msgsize_max
    assert msgsize_max is not None
    with pytest.raises(OSError) as info:
        anyposixmq.MessageQueue(
            queue_name, create=True, capacity=1, max_message_size=msgsize_max + 1
        )
    exc = info.value
    assert exc.errno == errno.EINVAL
    assert exc.filename == queue_name
    text = str(exc)
    assert (
        f"max_message_size {msgsize_max + 1} exceeds the system's msgsize_max of {msgsize_max}"
        in text
    )
    assert f"sysctl fs.mqueue.msgsize_max={msgsize_max + 1}" in text
    assert "capacity" not in text


@needs_no_cap_sys_resource
def test_both_over_their_maximums(queue_name: str) -> None:
    lim = anyposixmq.limits()
    assert lim.msg_max is not None
    assert lim.msgsize_max is not None
    with pytest.raises(OSError, match=r"msg_max.*msgsize_max") as info:
        anyposixmq.MessageQueue(
            queue_name, create=True, capacity=lim.msg_max + 5, max_message_size=lim.msgsize_max + 5
        )
    assert info.value.errno == errno.EINVAL


@needs_no_cap_sys_resource
def test_capacity_only_over_msg_max_names_capacity(queue_name: str) -> None:
    # The message size then comes from the default, which is within limits.
    msg_max = anyposixmq.limits().msg_max
    assert msg_max is not None
    with pytest.raises(OSError, match=f"capacity {msg_max + 1} exceeds") as info:
        anyposixmq.MessageQueue(queue_name, create=True, capacity=msg_max + 1)
    assert info.value.errno == errno.EINVAL


# -- EMFILE: RLIMIT_MSGQUEUE used up -----------------------------------------


@pytest.mark.parametrize(
    ("capacity", "max_message_size"), [(4, 512), (2, None), (None, 64), (None, None)]
)
def test_emfile_explains_rlimit_msgqueue(
    capacity: int | None, max_message_size: int | None
) -> None:
    name = unique_name("emfile")
    result = _run(
        f"""
        import json, resource, anyposixmq
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1000, 1000))
        try:
            anyposixmq.MessageQueue({name!r}, create=True, capacity={capacity},
                                    max_message_size={max_message_size})
        except OSError as exc:
            print(json.dumps([type(exc).__name__, exc.errno, exc.filename, str(exc)]))
        else:
            anyposixmq.unlink({name!r})
            print("null")
        """
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found is not None, "creating a queue under a 1000-byte RLIMIT_MSGQUEUE worked"
    kind, err, filename, text = found
    assert (kind, err, filename) == ("OSError", errno.EMFILE, name)
    assert "RLIMIT_MSGQUEUE" in text
    assert "1,000 bytes" in text  # the limit
    lim = anyposixmq.limits()
    cap = capacity if capacity is not None else lim.msg_default
    size = max_message_size if max_message_size is not None else lim.msgsize_default
    assert cap is not None
    assert size is not None
    assert f"{cap} messages x {size} bytes" in text  # this queue
    cost = anyposixmq._limits.queue_cost(cap, size)
    assert f"{cost:,} bytes" in text  # and what it costs
    assert "not open files" in text


def test_emfile_from_open_files_says_so() -> None:
    # With the descriptor table full, EMFILE does mean open files.
    name = unique_name("nofile")
    result = _run(
        f"""
        import json, os, resource, anyposixmq
        keep = []
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        try:
            while True:
                keep.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        try:
            anyposixmq.MessageQueue({name!r}, create=True, capacity=1, max_message_size=8)
        except OSError as exc:
            print(json.dumps([exc.errno, str(exc)]))
        else:
            anyposixmq.unlink({name!r})
            print("null")
        """
    )
    assert result.returncode == 0, result.stderr
    err, text = json.loads(result.stdout)
    assert err == errno.EMFILE
    assert "RLIMIT_NOFILE" in text


# -- ENOSPC: queues_max, exhausted in a private IPC namespace -----------------


@needs_no_cap_sys_resource
def test_enospc_explains_queues_max() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not available for a private IPC namespace")
    probe = subprocess.run(["unshare", "-i", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private IPC namespace: {probe.stderr.decode().strip()}")
    result = _run(
        """
        import json, anyposixmq
        qmax = anyposixmq.limits().queues_max
        made = []
        try:
            for i in range(qmax + 1):
                name = f"/enospc-{i}"
                anyposixmq.MessageQueue(name, create=True, capacity=1, max_message_size=1,
                                        write=False).close()
                made.append(name)
        except OSError as exc:
            print(json.dumps([qmax, len(made), type(exc).__name__, exc.errno, exc.filename,
                              str(exc)]))
        else:
            print("null")
        finally:
            for name in made:
                anyposixmq.unlink(name)
        """,
        "unshare",
        "-i",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found is not None, "more than queues_max queues were created"
    qmax, made, kind, err, filename, text = found
    assert made == qmax
    assert (kind, err, filename) == ("OSError", errno.ENOSPC, f"/enospc-{qmax}")
    assert f"limit of {qmax} queues" in text
    assert "queues_max" in text


# -- EMSGSIZE ------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        lambda q, data: q.send(data),
        lambda q, data: q.send(data, 3, timeout=1),
        lambda q, data: q.send(data, timeout=0),
        lambda q, data: q.send_nowait(data),
        lambda q, data: q.send(bytearray(data)),
    ],
)
def test_message_too_long(make_queue: MakeQueue, send: Callable[[Any, bytes], None]) -> None:
    mq = make_queue(max_message_size=100)
    with pytest.raises(OSError) as info:
        send(mq, b"x" * 101)
    exc = info.value
    assert type(exc) is OSError
    assert exc.errno == errno.EMSGSIZE
    assert exc.filename == mq.name
    assert "101 bytes" in str(exc)
    assert "100 bytes" in str(exc)
    assert str(mq.name) in str(exc)
    assert mq.attributes().current_messages == 0
    mq.send(b"x" * 100)  # exactly the maximum fits


# -- the OSError subclasses ----------------------------------------------------


def test_subclasses_carry_errno_and_name(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1)
    cases: list[tuple[type[OSError], int, Callable[[], object]]] = [
        (TimeoutError, errno.ETIMEDOUT, lambda: mq.receive(timeout=0)),
        (TimeoutError, errno.ETIMEDOUT, lambda: mq.receive(timeout=0.01)),
        (BlockingIOError, errno.EAGAIN, mq.receive_nowait),
    ]
    for kind, err, call in cases:
        with pytest.raises(kind) as info:
            call()
        assert info.value.errno == err
        assert info.value.filename == mq.name
        assert str(mq.name) in str(info.value)
    mq.send(b"fill")
    full_cases: list[tuple[type[OSError], int, Callable[[], object]]] = [
        (TimeoutError, errno.ETIMEDOUT, lambda: mq.send(b"more", timeout=0)),
        (BlockingIOError, errno.EAGAIN, lambda: mq.send_nowait(b"more")),
    ]
    for kind, err, call in full_cases:
        with pytest.raises(kind) as info:
            call()
        assert info.value.errno == err
        assert info.value.filename == mq.name
    mq.nonblocking = True
    with pytest.raises(BlockingIOError, match="full") as full:
        mq.send(b"more")
    assert full.value.filename == mq.name
    mq.receive()
    with pytest.raises(BlockingIOError, match="empty"):
        mq.receive()


def test_unlink_missing(queue_name: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        anyposixmq.unlink(queue_name)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == queue_name
    anyposixmq.unlink(queue_name, missing_ok=True)


def test_permission_error_is_the_subclass(make_queue: MakeQueue, queue_name: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    make_queue(queue_name)
    result = _run(
        f"""
        import json, os, anyposixmq
        os.setgid(65534)
        os.setuid(65534)
        for call in (lambda: anyposixmq.MessageQueue({queue_name!r}),
                     lambda: anyposixmq.unlink({queue_name!r})):
            try:
                call()
            except OSError as exc:
                print(json.dumps([type(exc).__name__, exc.errno, exc.filename]))
        """
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [["PermissionError", errno.EACCES, queue_name]] * 2


# -- a closed queue --------------------------------------------------------------

CLOSED_OPERATIONS: dict[str, Callable[[anyposixmq.MessageQueue], object]] = {
    "send": lambda q: q.send(b"x"),
    "send timeout": lambda q: q.send(b"x", timeout=1),
    "send bytearray": lambda q: q.send(bytearray(b"x"), 1),
    "send_nowait": lambda q: q.send_nowait(b"x"),
    "receive": lambda q: q.receive(),
    "receive timeout": lambda q: q.receive(timeout=1),
    "receive_nowait": lambda q: q.receive_nowait(),
    "receive_into": lambda q: q.receive_into(bytearray(128)),
    "drain": lambda q: list(q.drain()),
    "iterate": lambda q: next(iter(q)),
    "attributes": lambda q: q.attributes(),
    "nonblocking": lambda q: q.nonblocking,
    "set nonblocking": lambda q: setattr(q, "nonblocking", True),
    "fileno": lambda q: q.fileno(),
    "get_inheritable": lambda q: q.get_inheritable(),
    "set_inheritable": lambda q: q.set_inheritable(True),
    "dup": lambda q: q.dup(),
    "detach": lambda q: q.detach(),
}


@pytest.mark.parametrize("operation", list(CLOSED_OPERATIONS))
def test_operations_on_a_closed_queue(make_queue: MakeQueue, operation: str) -> None:
    mq = make_queue()
    other = anyposixmq.MessageQueue(str(mq.name))
    other.send(b"waiting")
    mq.close()
    with pytest.raises(ValueError, match="closed queue"):
        CLOSED_OPERATIONS[operation](mq)
    # Nothing was taken from (or added to) the queue by the closed object.
    assert other.attributes().current_messages == 1
    other.close()


def test_operations_on_a_detached_queue(make_queue: MakeQueue) -> None:
    mq = make_queue()
    fd = mq.detach()
    try:
        with pytest.raises(ValueError, match="closed queue"):
            mq.send(b"x")
        with pytest.raises(ValueError, match="closed queue"):
            mq.receive(timeout=0)
    finally:
        os.close(fd)


# -- EMFILE at RLIMIT_NOFILE, in a fresh interpreter ----------------------------

# No import of resource here (pytest has it already): the library's own
# imports must all be done before the process runs out of descriptors.
_NOFILE_SCRIPT = """
import json, sys
import anyposixmq
name, kwargs = sys.argv[1], json.loads(sys.argv[2])
opened = []
try:
    while len(opened) < 10000:
        opened.append(anyposixmq.MessageQueue(name, **kwargs))
except OSError as exc:
    print(json.dumps([type(exc).__name__, exc.errno, exc.filename, str(exc), len(opened)]))
finally:
    for q in opened:
        q.close()
"""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"create": True, "capacity": 1, "max_message_size": 8},
        {"create": True, "max_message_size": 8},
        {"create": True, "capacity": 1},
        {"create": False},
    ],
    ids=["both sizes", "size only", "capacity only", "open"],
)
def test_emfile_at_rlimit_nofile_in_a_fresh_interpreter(
    make_queue: MakeQueue, kwargs: dict[str, Any]
) -> None:
    name = str(make_queue(capacity=1, max_message_size=8).name)
    ulimit = ("sh", "-c", 'ulimit -n 32 && exec "$@"', "sh")
    result = _run(_NOFILE_SCRIPT, *ulimit, args=(name, json.dumps(kwargs)))
    assert result.returncode == 0, result.stderr
    kind, err, filename, text, opened = json.loads(result.stdout)
    assert (kind, err, filename) == ("OSError", errno.EMFILE, name)
    assert "RLIMIT_NOFILE allows (32)" in text
    assert "ulimit -n" in text
    assert opened > 0


# -- texts name the queue once ----------------------------------------------------


def _other(stack: contextlib.ExitStack, name: str, **kwargs: Any) -> anyposixmq.MessageQueue:
    return stack.enter_context(anyposixmq.MessageQueue(name, **kwargs))


def _overfill(send: Callable[[], None]) -> None:
    for _ in range(3):  # one more than the capacity
        send()


Failure = Callable[[anyposixmq.MessageQueue, str, contextlib.ExitStack], object]
NAMED_FAILURES: dict[str, Failure] = {
    "receive timeout": lambda q, name, stack: q.receive(timeout=0.01),
    "receive empty": lambda q, name, stack: q.receive_nowait(),
    "send timeout": lambda q, name, stack: _overfill(lambda: q.send(b"x", timeout=0)),
    "send full": lambda q, name, stack: _overfill(lambda: q.send_nowait(b"x")),
    "send too long": lambda q, name, stack: q.send(b"x" * 17),
    "send read-only": lambda q, name, stack: _other(stack, name, write=False).send(b"x"),
    "receive write-only": lambda q, name, stack: _other(stack, name, read=False).receive(),
    "open missing": lambda q, name, stack: _other(stack, name + "-missing"),
    "create exclusive": lambda q, name, stack: _other(stack, name, create=True, exclusive=True),
    "unlink missing": lambda q, name, stack: anyposixmq.unlink(name + "-missing"),
}


@pytest.mark.parametrize("failure", list(NAMED_FAILURES))
def test_error_text_names_the_queue_once(make_queue: MakeQueue, failure: str) -> None:
    mq = make_queue(capacity=2, max_message_size=16)
    name = str(mq.name)
    with contextlib.ExitStack() as stack, pytest.raises(OSError) as info:
        NAMED_FAILURES[failure](mq, name, stack)
    exc = info.value
    assert exc.filename is not None
    assert str(exc.filename).startswith(name)
    assert str(exc).count(name) == 1, str(exc)
    assert exc.strerror is not None
    assert name not in exc.strerror


# -- pickling -----------------------------------------------------------------------


def test_pickling_a_queue_says_to_pass_its_name(make_queue: MakeQueue) -> None:
    mq = make_queue()
    for copy_it in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match=r"^MessageQueue objects cannot be pickled.*name"):
            copy_it(mq)
    mq.send(b"still usable")
    assert mq.receive(timeout=0).data == b"still usable"


@pytest.mark.anyio
async def test_pickling_an_async_queue_says_to_pass_its_name(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue()
    with pytest.raises(TypeError, match=r"^AsyncMessageQueue objects cannot be pickled"):
        pickle.dumps(q)


_SPAWN_SCRIPT = """
import multiprocessing, sys
import anyposixmq

def child(queue):
    raise AssertionError("the child ran")

if __name__ == "__main__":
    with anyposixmq.MessageQueue(sys.argv[1]) as mq:
        process = multiprocessing.get_context("spawn").Process(target=child, args=(mq,))
        try:
            process.start()
        except TypeError as exc:
            print(exc)
        else:
            process.join()
            print("started")
"""


def test_passing_a_queue_to_a_spawned_process(make_queue: MakeQueue) -> None:
    result = _run(_SPAWN_SCRIPT, args=(str(make_queue().name),))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MessageQueue objects cannot be pickled"), result.stdout
    assert "open it again on the other side" in result.stdout


@needs_no_cap_sys_resource
@pytest.mark.parametrize(
    ("capacity", "size", "ceiling"),
    [(100_000, 16, 65536), (2**31, 16, 65536), (1, 20_000_000, 16 * 1024 * 1024)],
)
def test_sizes_past_the_kernels_ceiling_get_only_advice_that_works(
    queue_name: str, capacity: int, size: int, ceiling: int
) -> None:
    """No sysctl raises msg_max past 65536 or msgsize_max past 16 MiB."""
    with pytest.raises(OSError) as info:
        anyposixmq.MessageQueue(queue_name, create=True, capacity=capacity, max_message_size=size)
    assert info.value.errno == errno.EINVAL
    text = str(info.value)
    assert f"exceeds the kernel's ceiling of {ceiling}" in text
    assert f"fs.mqueue.msg_max={capacity}" not in text
    assert f"fs.mqueue.msgsize_max={size}" not in text
    assert "CAP_SYS_RESOURCE" not in text
