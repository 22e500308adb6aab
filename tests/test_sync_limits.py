"""limits() read live, PRIORITY_MAX, and list_queues()."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _helpers import CHILD_CWD, run_in_private_mqueuefs, unique_name

import anyposixmq
from anyposixmq import _limits

PROC = Path("/proc/sys/fs/mqueue")


def _proc(name: str) -> int:
    return int((PROC / name).read_text())


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc/sys/fs/mqueue (not Linux)")
def test_limits_match_the_system() -> None:
    lim = anyposixmq.limits()
    assert isinstance(lim, anyposixmq.SystemLimits)
    assert lim.msg_max == _proc("msg_max")
    assert lim.msgsize_max == _proc("msgsize_max")
    assert lim.msg_default == _proc("msg_default")
    assert lim.msgsize_default == _proc("msgsize_default")
    assert lim.queues_max == _proc("queues_max")
    assert lim.priority_max == anyposixmq.PRIORITY_MAX
    soft = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[0]
    assert lim.rlimit_msgqueue == (None if soft == resource.RLIM_INFINITY else soft)
    with pytest.raises(AttributeError):
        lim.msg_max = 1  # type: ignore[misc]


def test_limits_are_read_live_from_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in [
        ("msg_max", 77),
        ("msgsize_max", 7777),
        ("msg_default", 7),
        ("msgsize_default", 777),
        ("queues_max", 17),
    ]:
        (tmp_path / name).write_text(f"{value}\n")
    monkeypatch.setattr(_limits, "_PROC", tmp_path)
    lim = anyposixmq.limits()
    assert (lim.msg_max, lim.msgsize_max, lim.msg_default, lim.msgsize_default) == (
        77,
        7777,
        7,
        777,
    )
    assert lim.queues_max == 17
    (tmp_path / "queues_max").write_text("18\n")
    assert anyposixmq.limits().queues_max == 18
    (tmp_path / "msg_max").unlink()
    assert anyposixmq.limits().msg_max is None  # not reported


def test_rlimit_is_read_live() -> None:
    script = textwrap.dedent(
        """
        import resource, anyposixmq
        before = anyposixmq.limits().rlimit_msgqueue
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (12345, 12345))
        print(before, anyposixmq.limits().rlimit_msgqueue)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=CHILD_CWD,
    )
    before, after = result.stdout.split()
    assert after == "12345"
    assert before != after


def test_priority_max_is_sysconf_minus_one() -> None:
    assert os.sysconf("SC_MQ_PRIO_MAX") - 1 == anyposixmq.PRIORITY_MAX
    assert anyposixmq.limits().priority_max == anyposixmq.PRIORITY_MAX


def test_priority_max_matches_the_c_library() -> None:
    # Independently of Python's os module: ask libc's sysconf directly.
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    sc_mq_prio_max = os.sysconf_names["SC_MQ_PRIO_MAX"]
    assert libc.sysconf(sc_mq_prio_max) - 1 == anyposixmq.PRIORITY_MAX


# -- list_queues --------------------------------------------------------------------


def test_list_queues_explains_how_to_mount(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "not-a-queue").write_text("")
    monkeypatch.setattr(_limits, "MQUEUE_MOUNT", tmp_path)
    with pytest.raises(OSError, match="mount -t mqueue") as info:
        anyposixmq.list_queues()
    assert str(tmp_path) in str(info.value)
    assert info.value.filename == str(tmp_path)


def _mqueue_mounted_here() -> bool:
    return any(
        line.split()[1:3] == ["/dev/mqueue", "mqueue"]
        for line in Path("/proc/self/mounts").read_text().splitlines()
    )


def test_list_queues_without_mqueuefs_on_this_machine() -> None:
    if _mqueue_mounted_here():
        assert isinstance(anyposixmq.list_queues(), list)
    else:
        with pytest.raises(OSError, match="mount -t mqueue none /dev/mqueue"):
            anyposixmq.list_queues()


def test_list_queues_in_a_private_mount_namespace() -> None:
    name = unique_name("list")
    script = textwrap.dedent(
        f"""
        import json, anyposixmq
        before = anyposixmq.list_queues()
        with anyposixmq.MessageQueue({name!r}, create=True, capacity=1, max_message_size=8):
            during = anyposixmq.list_queues()
        anyposixmq.unlink({name!r})
        after = anyposixmq.list_queues()
        print(json.dumps([before, during, after]))
        """
    )
    try:
        result = run_in_private_mqueuefs(script)
    finally:
        anyposixmq.unlink(name, missing_ok=True)
    assert result.returncode == 0, result.stderr
    before, during, after = json.loads(result.stdout)
    assert name not in before
    assert name in during
    assert during == sorted(during)
    assert all(entry.startswith("/") for entry in during)
    assert name not in after
    # The private mount did not leak into this namespace.
    assert not _mqueue_mounted_here() or name not in anyposixmq.list_queues()
