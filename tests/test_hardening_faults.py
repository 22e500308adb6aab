"""Faults and the kernel's edges: unlink while in use, persistence, exhausted
limits (RLIMIT_NOFILE, RLIMIT_MSGQUEUE, queues_max), permissions, fork and
close-on-exec.

Whatever changes a process-wide setting (a resource limit, the user id, an
IPC namespace) runs in a subprocess, so neither this test run nor anybody
else's is affected.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from _helpers import MakeQueue, unique_name

import anyposixmq
from anyposixmq import Message, MessageQueue

NOBODY = 65534


def run_python(
    script: str,
    *args: str,
    prefix: tuple[str, ...] = (),
    timeout: float = 60,
    close_fds: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run *script* in a fresh interpreter; fail the test if it fails."""
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        close_fds=close_fds,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _can(*command: str) -> bool:
    if shutil.which(command[0]) is None:
        return False
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture
def shared_name() -> Iterator[str]:
    """A queue name for a queue made by a subprocess; unlinked afterwards."""
    name = unique_name("fault")
    yield name
    anyposixmq.unlink(name, missing_ok=True)


# -- unlink and persistence ------------------------------------------------------


def test_unlink_while_in_use(make_queue: MakeQueue) -> None:
    a = make_queue()
    name = a.name
    assert name is not None
    b = make_queue(name, create=False)
    a.send(b"before", 2)
    a.unlink()
    # Open descriptors keep working, in both directions, on the same queue.
    b.send(b"after", 1)
    assert a.attributes().current_messages == 2
    assert a.receive() == Message(b"before", 2)
    assert b.receive() == Message(b"after", 1)
    # The name is gone: a new open fails clearly; so does a second unlink.
    with pytest.raises(FileNotFoundError, match="create=True") as info:
        MessageQueue(name)
    assert info.value.filename == name
    with pytest.raises(FileNotFoundError, match="no such message queue"):
        anyposixmq.unlink(name)
    anyposixmq.unlink(name, missing_ok=True)
    # Creating the name again makes a new, separate queue.
    c = make_queue(name, capacity=2, max_message_size=8)
    a.send(b"old")
    assert c.attributes().current_messages == 0
    assert c.capacity == 2
    assert b.receive(timeout=0) == Message(b"old", 0)


def test_messages_outlive_the_last_descriptor(queue_name: str) -> None:
    with MessageQueue(queue_name, create=True, capacity=4, max_message_size=16) as mq:
        mq.send(b"kept", 5)
        mq.send(b"also", 0)
    # No descriptor is open now: the queue and its messages stay until unlink.
    with MessageQueue(queue_name, create=True, exclusive=False) as again:
        assert again.attributes().current_messages == 2
        assert list(again.drain()) == [Message(b"kept", 5), Message(b"also", 0)]


def test_messages_outlive_the_process(shared_name: str) -> None:
    run_python(
        """
        import sys, anyposixmq
        q = anyposixmq.MessageQueue(sys.argv[1], create=True, capacity=2, max_message_size=8)
        q.send(b"orphan", 3)
        q.close()
        """,
        shared_name,
    )
    with MessageQueue(shared_name) as mq:
        assert mq.receive(timeout=0) == Message(b"orphan", 3)


# -- RLIMIT_NOFILE -----------------------------------------------------------------

_NOFILE_SCRIPT = """
import errno, os, resource, sys
import anyposixmq

name = sys.argv[1]
q = anyposixmq.MessageQueue(name, create=True, capacity=2, max_message_size=16)
q.send(b"still here")
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
before = sorted(os.listdir("/proc/self/fd"))
fillers = []
try:
    while True:
        fillers.append(os.open("/dev/null", os.O_RDONLY))
except OSError as exc:
    assert exc.errno == errno.EMFILE
attempts = [
    dict(),
    dict(create=True),
    dict(create=True, capacity=2),
    dict(create=True, capacity=2, max_message_size=16),
    dict(create=True, exclusive=True, capacity=1, max_message_size=1),
]
for i, kwargs in enumerate(attempts):
    target = name if i < 4 else name + "-new"
    try:
        anyposixmq.MessageQueue(target, **kwargs).close()
    except OSError as exc:
        assert exc.errno == errno.EMFILE, exc
        assert exc.filename == target, exc
        assert "RLIMIT_NOFILE" in str(exc) and "(64)" in str(exc), exc
        assert "RLIMIT_MSGQUEUE" not in str(exc), exc
    else:
        raise AssertionError(f"opened {kwargs} past RLIMIT_NOFILE")
try:
    q.dup()
except OSError as exc:
    assert exc.errno == errno.EMFILE, exc
else:
    raise AssertionError("dup past RLIMIT_NOFILE")
# The queue we had still works at the limit.
assert q.receive(timeout=0) == (b"still here", 0)
for fd in fillers:
    os.close(fd)
after = sorted(os.listdir("/proc/self/fd"))
assert before == after, (before, after)
# Nothing half-made was left behind.
try:
    anyposixmq.unlink(name + "-new")
except FileNotFoundError:
    pass
else:
    raise AssertionError("a queue was created although the open failed")
q.close()
print("ok")
"""


def test_rlimit_nofile_exhausted(shared_name: str) -> None:
    proc = run_python(_NOFILE_SCRIPT, shared_name)
    assert proc.stdout.strip() == "ok"


# -- RLIMIT_MSGQUEUE ---------------------------------------------------------------

_MSGQUEUE_SCRIPT = """
import errno, resource, sys
import anyposixmq

name, existing = sys.argv[1], sys.argv[2]
hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]
resource.setrlimit(resource.RLIMIT_MSGQUEUE, (4096, hard))
assert anyposixmq.limits().rlimit_msgqueue == 4096
try:
    anyposixmq.MessageQueue(name, create=True, capacity=8, max_message_size=1024)
except OSError as exc:
    text = str(exc)
    assert exc.errno == errno.EMFILE, exc
    assert exc.filename == name
    assert "RLIMIT_MSGQUEUE" in text and "4,096 bytes" in text, text
    assert "8 messages x 1024 bytes" in text, text
    assert "RLIMIT_NOFILE" not in text, text
else:
    raise AssertionError("created a queue past RLIMIT_MSGQUEUE")
# Opening an existing queue is not charged: it still works.
with anyposixmq.MessageQueue(existing) as q:
    q.send(b"fine")
print("ok")
"""


def test_rlimit_msgqueue_exhausted(shared_name: str, make_queue: MakeQueue) -> None:
    existing = make_queue()
    assert existing.name is not None
    proc = run_python(_MSGQUEUE_SCRIPT, shared_name, existing.name)
    assert proc.stdout.strip() == "ok"
    assert existing.receive(timeout=0) == Message(b"fine", 0)
    with pytest.raises(FileNotFoundError):
        MessageQueue(shared_name)


# -- queues_max, in a private IPC namespace ----------------------------------------

_QUEUES_MAX_SCRIPT = """
import errno, sys
import anyposixmq

lim = anyposixmq.limits()
assert lim.queues_max is not None
made = []
try:
    for i in range(lim.queues_max + 1):
        name = f"/full-{i}"
        anyposixmq.MessageQueue(name, create=True, capacity=1, max_message_size=1).close()
        made.append(name)
except OSError as exc:
    text = str(exc)
    assert exc.errno == errno.ENOSPC, exc
    assert f"{lim.queues_max} queues" in text and "queues_max" in text, text
    assert exc.filename == f"/full-{len(made)}"
else:
    raise AssertionError("created more than queues_max queues")
finally:
    for name in made:
        anyposixmq.unlink(name)
assert len(made) == lim.queues_max, (len(made), lim.queues_max)
# Once one is gone there is room again.
anyposixmq.MessageQueue("/after", create=True, capacity=1, max_message_size=1).close()
anyposixmq.unlink("/after")
print(len(made))
"""


@pytest.mark.skipif(not _can("unshare", "-i"), reason="unshare -i is not available")
def test_queues_max_exhausted_in_private_ipc_namespace() -> None:
    proc = run_python(_QUEUES_MAX_SCRIPT, prefix=("unshare", "-i"))
    assert int(proc.stdout) > 0


_LOWERED_MAXIMUMS = """
import json, subprocess, sys
from pathlib import Path
import anyposixmq
# A private IPC namespace: these limits are this namespace's alone.
Path("/proc/sys/fs/mqueue/msg_max").write_text("5")
Path("/proc/sys/fs/mqueue/msgsize_max").write_text("1000")
lim = anyposixmq.limits()
assert (lim.msg_max, lim.msgsize_max) == (5, 1000), lim
assert lim.msg_default > 5 and lim.msgsize_default > 1000, lim
made = []
for kwargs in ({"max_message_size": 100}, {"capacity": 3}, {}):
    with anyposixmq.MessageQueue("/sized", create=True, exclusive=True, **kwargs) as q:
        made.append([q.capacity, q.max_message_size])
    anyposixmq.unlink("/sized")
cli = subprocess.run(
    [sys.executable, "-m", "anyposixmq", "create", "/cli", "--max-message-size", "100"],
    capture_output=True, text=True, check=False,
)
with anyposixmq.MessageQueue("/cli") as q:
    made.append([q.capacity, q.max_message_size])
limits_out = subprocess.run(
    [sys.executable, "-m", "anyposixmq", "limits"], capture_output=True, text=True, check=True
).stdout
print(json.dumps({"made": made, "cli": [cli.returncode, cli.stdout, cli.stderr],
                  "limits": limits_out}))
"""


@pytest.mark.skipif(not _can("unshare", "-i"), reason="unshare -i is not available")
def test_one_sided_sizes_under_lowered_maximums() -> None:
    # The sizes not given are the capped defaults (5 x 1000), not msg_default
    # x msgsize_default (10 x 8192), which the lowered maximums refuse.
    proc = run_python(_LOWERED_MAXIMUMS, prefix=("unshare", "-i"))
    found = json.loads(proc.stdout)
    # Only the size asked for is the user's; the other is the capped default.
    assert found["made"] == [[5, 100], [3, 1000], [5, 1000], [5, 100]]
    assert found["cli"] == [0, "/cli created: capacity 5, max message size 100 bytes\n", ""]
    assert "default size (5 x 1,000 bytes)" in found["limits"]
    assert "capped at msg_max" in found["limits"]


# -- permissions -------------------------------------------------------------------

_STAT_SCRIPT = 'mount -t mqueue none /dev/mqueue && stat -c "%a %u" "/dev/mqueue/$1"'


def _mode_of(name: str) -> str:
    """The permission bits of queue *name*, read through a private mqueuefs mount."""
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", _STAT_SCRIPT, "sh", name.lstrip("/")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[0]


@pytest.mark.skipif(not _can("unshare", "-m"), reason="unshare -m is not available")
def test_created_mode_is_0600_unless_asked(make_queue: MakeQueue) -> None:
    old = os.umask(0)  # so the bits seen are the library's, not the umask's
    try:
        default = make_queue()
        asked = make_queue(mode=0o640)
    finally:
        os.umask(old)
    assert default.name is not None
    assert asked.name is not None
    assert _mode_of(default.name) == "600"
    assert _mode_of(asked.name) == "640"


# The interpreter lives under /root (0o700), so the script imports everything
# it needs first and only then drops to nobody.
_AS_NOBODY = """
import errno, os, sys
import anyposixmq

name, how = sys.argv[1], sys.argv[2]
os.setgroups([])
os.setgid({nobody})
os.setuid({nobody})
try:
    if how == "read":
        q = anyposixmq.MessageQueue(name, write=False)
    elif how == "write":
        q = anyposixmq.MessageQueue(name, read=False)
    elif how == "squat":
        q = anyposixmq.MessageQueue(name, create=True, mode=0o666, capacity=1, max_message_size=8)
    q.close()
except PermissionError as exc:
    assert exc.errno == errno.EACCES and exc.filename == name, exc
    print("denied")
else:
    print("opened")
""".replace("{nobody}", str(NOBODY))


def _as_nobody(name: str, how: str) -> str:
    return run_python(_AS_NOBODY, name, how).stdout.strip()


def test_other_user_cannot_open_a_0600_queue(make_queue: MakeQueue) -> None:
    private = make_queue()
    assert private.name is not None
    assert _as_nobody(private.name, "read") == "denied"
    assert _as_nobody(private.name, "write") == "denied"
    # The same subprocess can open a queue whose mode lets it: the test can fail.
    old = os.umask(0)
    try:
        public = make_queue(mode=0o644)
    finally:
        os.umask(old)
    assert public.name is not None
    assert _as_nobody(public.name, "read") == "opened"
    assert _as_nobody(public.name, "write") == "denied"


def test_exclusive_defeats_a_squatted_name(shared_name: str) -> None:
    # Another user creates the name first, world-writable...
    old = os.umask(0)
    try:
        assert _as_nobody(shared_name, "squat") == "opened"
    finally:
        os.umask(old)
    # ... create=True alone silently opens the squatter's queue ...
    with MessageQueue(shared_name, create=True, capacity=4, max_message_size=128) as mq:
        assert mq.capacity == 1  # the squatter's attributes, not ours
    # ... while exclusive=True refuses it.
    with pytest.raises(FileExistsError, match="already exists") as info:
        MessageQueue(shared_name, create=True, exclusive=True, capacity=4, max_message_size=128)
    assert info.value.errno == errno.EEXIST
    assert "exclusive" in (MessageQueue.__doc__ or "")


# -- fork and exec -----------------------------------------------------------------

_FORK_SCRIPT = """
import os, sys
import anyposixmq

name = sys.argv[1]
q = anyposixmq.MessageQueue(name, create=True, exclusive=True, capacity=4, max_message_size=32)
anyposixmq.unlink(name)
N = 500
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        # The child sends N numbered messages, then takes the parent's N.
        for i in range(N):
            q.send(b"c%d" % i, i % 3)
        assert os.read(ready_r, 1) == b"!"
        got = [q.receive(timeout=30) for _ in range(N)]
        assert got == [(b"p%d" % i, 7) for i in range(N)], got[:5]
        q.close()
        code = 0
    finally:
        os._exit(code)
seen = [q.receive(timeout=30) for _ in range(N)]
os.write(ready_w, b"!")
for i in range(N):
    q.send(b"p%d" % i, 7)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
for prio in range(3):
    mine = [m.data for m in seen if m.priority == prio]
    assert mine == [b"c%d" % i for i in range(N) if i % 3 == prio], mine[:5]
assert q.attributes().current_messages == 0
q.close()
print("ok")
"""


def test_fork_after_open(shared_name: str) -> None:
    assert run_python(_FORK_SCRIPT, shared_name).stdout.strip() == "ok"


_EXEC_CHILD = """
import sys
import anyposixmq

fd = int(sys.argv[1])
try:
    q = anyposixmq.MessageQueue.from_fd(fd)
except OSError as exc:
    print("closed", exc.errno)
else:
    print(q.receive(timeout=5).data.decode())
    q.close()
"""


def test_descriptor_is_close_on_exec(mq: MessageQueue) -> None:
    assert mq.get_inheritable() is False
    fd = mq.fileno()
    mq.send(b"inherited")
    # close_fds=False: only close-on-exec can keep the descriptor from the child.
    proc = run_python(_EXEC_CHILD, str(fd), close_fds=False)
    assert proc.stdout.split() == ["closed", str(errno.EBADF)]
    # Asked for, it is inherited: so the check above can fail.
    mq.set_inheritable(True)
    assert mq.get_inheritable() is True
    child = run_python(_EXEC_CHILD, str(fd), close_fds=False)
    assert child.stdout.strip() == "inherited"
    dup = mq.dup()
    try:
        assert dup.get_inheritable() is False
    finally:
        dup.close()


# -- the suite itself leaks nothing --------------------------------------------------

_LEAKY_TEST = """
import gc, os, sys
import anyio
import anyposixmq

def test_leaks_a_queue():
    name = "/anyposixmq-leaky-%d" % os.getpid()
    q = anyposixmq.{cls}(name, create=True, capacity=1, max_message_size=8)
    anyposixmq.unlink(name)
    {close}
    del q
    gc.collect()
"""


@pytest.mark.parametrize("cls", ["MessageQueue", "AsyncMessageQueue"])
def test_an_unclosed_queue_fails_the_suite(tmp_path: Path, cls: str) -> None:
    """The suite runs with warnings as errors: a queue a test forgets to close
    (its ResourceWarning, raised in ``__del__``) fails that test."""
    closing = "q.close()" if cls == "MessageQueue" else "anyio.run(q.aclose)"
    for close, expected in (("pass", 1), (closing, 0)):
        test = tmp_path / "test_leaky.py"
        test.write_text(_LEAKY_TEST.format(cls=cls, close=close))
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider", test],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode == expected, proc.stdout
        if expected:
            assert "ResourceWarning" in proc.stdout
