"""``anyposixmq doctor``, against conditions made for real: an unmounted
``/dev/mqueue`` (``unshare -m``), a private IPC namespace (``unshare -i``), a
mount left from another namespace, a lowered ``RLIMIT_MSGQUEUE``, a full queue.
Where it says a queue cannot be created, the test tries to create it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _namespaces
import pytest

from anyposixmq import _doctor

#: Creates a queue of argv's size in the same conditions, and prints the outcome.
TRY_CREATE = (
    "$PY -c 'import sys, anyposixmq\n"
    "try:\n"
    '    q = anyposixmq.MessageQueue("/tried", create=True, capacity=int(sys.argv[1]),'
    " max_message_size=int(sys.argv[2]))\n"
    "except OSError as exc:\n"
    '    print("errno", exc.errno)\n'
    "else:\n"
    '    q.unlink(); q.close(); print("created")\n'
    "' "
)


def doctor(result_stdout: str) -> tuple[bool, dict[str, dict[str, Any]]]:
    record = json.loads(result_stdout.splitlines()[0])
    return record["ok"], {c["check"]: c for c in record["checks"]}


def test_unmounted() -> None:
    result = _namespaces.run(_namespaces.UNMOUNT + "exec $APMQ doctor --json", ipc=False)
    assert result.returncode == 1, result.stderr
    ok, checks = doctor(result.stdout)
    assert not ok
    assert checks["mount"]["status"] == "problem"
    assert "not mounted" in checks["mount"]["summary"]
    assert "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue" in checks["mount"]["fix"]
    assert checks["queues"]["status"] == "skipped"


def test_unmounted_text() -> None:
    result = _namespaces.run(_namespaces.UNMOUNT + "exec $APMQ doctor", ipc=False)
    assert result.returncode == 1
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("problem  mount      the mqueue filesystem is not mounted")
    assert lines[-1].endswith("found")
    assert any("Fix: as root: mkdir -p /dev/mqueue" in line for line in lines)


def test_private_ipc_namespace_is_a_note_and_all_is_well() -> None:
    result = _namespaces.run(_namespaces.MOUNT + "exec $APMQ doctor --json")
    assert result.returncode == 0, result.stdout
    ok, checks = doctor(result.stdout)
    assert ok
    assert checks["mount"]["status"] == "ok"
    assert checks["namespace"]["status"] == "note"
    assert "--ipc=container:" in checks["namespace"]["fix"]
    assert checks["limits"]["status"] == "ok"
    assert checks["queues"] == {
        "check": "queues",
        "status": "ok",
        "summary": "none of your 0 queues is nearly full",
        "details": [],
        "fix": None,
    }


def test_host_namespace_is_ok() -> None:
    result = _namespaces.run(_namespaces.MOUNT + "exec $APMQ doctor --json", ipc=False)
    _, checks = doctor(result.stdout)
    if Path("/proc/self/ns/ipc").stat().st_ino != _doctor.INITIAL_IPC_NAMESPACE:
        pytest.skip("the tests themselves run in a container's IPC namespace")
    assert checks["namespace"]["status"] == "ok"


def test_mount_of_another_namespace() -> None:
    # Mounted in the machine's IPC namespace, then unshare -i: /dev/mqueue
    # shows the other namespace's queues.
    _namespaces.require_unshare("-i")
    result = _namespaces.run(_namespaces.MOUNT + "exec unshare -i $APMQ doctor --json", ipc=False)
    assert result.returncode == 1
    _, checks = doctor(result.stdout)
    assert checks["mount"]["status"] == "problem"
    assert "another IPC namespace" in checks["mount"]["summary"]
    assert checks["namespace"]["status"] == "note"


def test_lowered_rlimit_msgqueue() -> None:
    # 4 x (1024 + 96) = 4,480 bytes; the limit is 4,000.
    script = (
        _namespaces.MOUNT
        + "prlimit --msgqueue=4000:4000 --pid $$ || exit 98\n"
        + "$APMQ doctor --capacity 4 --max-message-size 1024 --json\n"
        + "echo status $?\n"
        + TRY_CREATE
        + "4 1024\n"
    )
    result = _namespaces.run(script)
    if result.returncode == 98:
        pytest.skip("prlimit(1) cannot lower RLIMIT_MSGQUEUE here")
    lines = result.stdout.splitlines()
    ok, checks = doctor(lines[0])
    assert (ok, lines[1:]) == (False, ["status 1", "errno 24"])  # EMFILE, as it said
    limits = checks["limits"]
    assert limits["status"] == "problem"
    assert limits["summary"].startswith("a queue of 4 x 1,024 bytes cannot be created: ")
    assert "it needs about 4,480 bytes of RLIMIT_MSGQUEUE" in limits["summary"]
    assert "EMFILE" in limits["summary"]
    assert "RLIMIT_MSGQUEUE is 4,000 bytes" in " ".join(limits["details"])
    assert "ulimit -q 4480 or more" in limits["fix"]


def test_a_queue_that_fits() -> None:
    script = (
        _namespaces.MOUNT
        + "$APMQ doctor --capacity 1 --max-message-size 8 --json\n"
        + "echo status $?\n"
        + TRY_CREATE
        + "1 8\n"
    )
    lines = _namespaces.run(script).stdout.splitlines()
    ok, checks = doctor(lines[0])
    assert (ok, lines[1:]) == (True, ["status 0", "created"])
    assert checks["limits"]["summary"] == "a queue of 1 x 8 bytes fits within the limits"
    assert "1 x (8 + 96) = 104 bytes" in checks["limits"]["details"][0]


def test_too_many_messages_for_msg_max() -> None:
    # A new IPC namespace has msg_max 10.
    script = _namespaces.MOUNT + "$APMQ doctor --capacity 11 --json\n" + TRY_CREATE + "11 8\n"
    lines = _namespaces.run(script).stdout.splitlines()
    _, checks = doctor(lines[0])
    if lines[1] == "created":
        assert checks["limits"]["status"] == "ok"
        pytest.skip("this process may go past msg_max (CAP_SYS_RESOURCE)")
    assert lines[1] == "errno 22"  # EINVAL, as it said
    assert "11 is above msg_max 10" in checks["limits"]["summary"]
    assert "sysctl -w fs.mqueue.msg_max=11" in checks["limits"]["fix"]


def test_full_queue_of_this_user() -> None:
    script = (
        _namespaces.MOUNT
        + "$APMQ create /full --capacity 2 --max-message-size 8 >/dev/null\n"
        + "$APMQ send /full a b\n"
        + "$APMQ create /calm --capacity 10 --max-message-size 8 >/dev/null\n"
        + "$APMQ send /calm a\n"
        + "exec $APMQ doctor --json\n"
    )
    result = _namespaces.run(script)
    assert result.returncode == 1
    _, checks = doctor(result.stdout)
    assert checks["queues"]["status"] == "problem"
    assert checks["queues"]["summary"] == "1 of your 2 queues is nearly full"
    assert checks["queues"]["details"] == ["/full: 2 of 2 messages (full)"]
    assert "Your 2 queues here use about" in " ".join(checks["limits"]["details"])


# -- RemoveIPC= ------------------------------------------------------------------


def logind(root: Path, text: str, where: str = "etc/systemd/logind.conf") -> None:
    path = root / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_removeipc_default_is_yes(tmp_path: Path) -> None:
    assert _doctor.removeipc_setting(tmp_path) == (True, None)
    logind(tmp_path, "[Login]\n#RemoveIPC=no\n")
    assert _doctor.removeipc_setting(tmp_path) == (True, None)


def test_removeipc_main_file_and_drop_ins(tmp_path: Path) -> None:
    logind(tmp_path, "[Login]\nRemoveIPC=no\n")
    main = tmp_path / "etc/systemd/logind.conf"
    assert _doctor.removeipc_setting(tmp_path) == (False, main)
    logind(tmp_path, "[Login]\nRemoveIPC=yes\n", "usr/lib/systemd/logind.conf.d/10-vendor.conf")
    assert _doctor.removeipc_setting(tmp_path) == (
        True,
        tmp_path / "usr/lib/systemd/logind.conf.d/10-vendor.conf",
    )
    # /etc hides the vendor's drop-in of the same name; later names win.
    logind(tmp_path, "[Login]\nRemoveIPC=off\n", "etc/systemd/logind.conf.d/10-vendor.conf")
    assert _doctor.removeipc_setting(tmp_path)[0] is False
    logind(tmp_path, "[Other]\nRemoveIPC=yes\n", "run/systemd/logind.conf.d/20-x.conf")
    assert _doctor.removeipc_setting(tmp_path)[0] is False  # not in [Login]
    logind(tmp_path, "[Login]\n RemoveIPC = true\n", "run/systemd/logind.conf.d/30-y.conf")
    assert _doctor.removeipc_setting(tmp_path)[0] is True


def test_removeipc_check(tmp_path: Path) -> None:
    check = _doctor.check_removeipc(tmp_path, uid=1000)
    assert (check.status, check.summary) == (
        "ok",
        "systemd is not running here: RemoveIPC= removes nothing",
    )
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    check = _doctor.check_removeipc(tmp_path, uid=1000)
    assert check.status == "problem"
    assert check.summary.startswith("RemoveIPC=yes (the default): systemd-logind removes")
    assert check.fix is not None
    assert "RemoveIPC=no" in check.fix
    assert "useradd --system" in check.fix
    for uid in (0, 999):
        assert _doctor.check_removeipc(tmp_path, uid=uid).status == "ok"
    logind(tmp_path, "[Login]\nRemoveIPC=no\n")
    assert _doctor.check_removeipc(tmp_path, uid=1000).status == "ok"
