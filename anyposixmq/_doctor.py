"""``anyposixmq doctor``: what makes queues fail on this system, and how to fix each.

Each check ends ``ok``, ``note`` (worth knowing, nothing to fix),
``problem`` (something to fix: the exit status is then 1) or ``skipped``:

- ``mount``: mqueuefs on ``/dev/mqueue``, and that it shows this IPC
  namespace's queues (a mount made before ``unshare -i`` shows another's;
  checked with a one-byte queue created and removed at once).
- ``namespace``: the initial IPC namespace has the fixed inode number
  ``0xEFFFFFFF`` (``PROC_IPC_INIT_INO``); any other is a container's or
  ``unshare -i``'s, with queues and limits of its own.
- ``limits``: a queue of the size asked for (the default size otherwise):
  the ``RLIMIT_MSGQUEUE`` arithmetic (its cost, what this user's queues here
  use), and the kernel's own answer: such a queue is created under a new name
  and removed at once.  The limit counts a user's queues in every IPC
  namespace, and only this one's can be seen.
- ``removeipc``: systemd-logind's ``RemoveIPC=`` (``yes`` unless
  configured), which removes a regular user's queues when their last session
  ends; root and system users (uid up to 999) are exempt.
- ``queues``: this user's queues that are at least 90 % full.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import _snapshot
from ._cli_common import EXIT_FAILURE, EXIT_OK, out
from ._limits import MQUEUE_MOUNT, _mqueue_mounted, default_sizes, limits, queue_cost
from ._limits import rlimit_msgqueue as _rlimit
from ._sync import MessageQueue, unlink

OK, NOTE, PROBLEM, SKIPPED = "ok", "note", "problem", "skipped"
#: The inode number of the initial IPC namespace (PROC_IPC_INIT_INO).
INITIAL_IPC_NAMESPACE = 0xEFFFFFFF
#: logind's RemoveIPC= spares uids up to this (systemd's SYSTEM_UID_MAX, as distributions build it).
SYSTEM_UID_MAX = 999
#: A queue this full is reported.
NEAR_FULL = 0.9
_MOUNT_COMMAND = f"mkdir -p {MQUEUE_MOUNT} && mount -t mqueue none {MQUEUE_MOUNT}"


@dataclass
class Check:
    """The outcome of one check."""

    check: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    fix: str | None = None


def _mounted() -> bool:
    return _mqueue_mounted(MQUEUE_MOUNT)


def check_mount() -> Check:
    if not _mounted():
        return Check(
            "mount",
            PROBLEM,
            f"the mqueue filesystem is not mounted at {MQUEUE_MOUNT}",
            [
                "Queues work without it, but nothing can list them: anyposixmq list, top "
                "and metrics fail, and doctor cannot look at your queues."
            ],
            f"as root: {_MOUNT_COMMAND}; at boot, the fstab line "
            f"'none {MQUEUE_MOUNT} mqueue defaults 0 0' (systemd mounts it by itself)",
        )
    probe = f"/anyposixmq-doctor-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with MessageQueue(probe, create=True, exclusive=True, capacity=1, max_message_size=1):
            try:
                seen = os.path.exists(bytes(MQUEUE_MOUNT) + os.fsencode(probe))
            finally:
                unlink(probe, missing_ok=True)
    except OSError as exc:
        summary = f"mounted at {MQUEUE_MOUNT} (whether it is this IPC namespace's is unknown)"
        return Check("mount", OK, summary, [f"A test queue could not be created: {exc}"])
    if not seen:
        return Check(
            "mount",
            PROBLEM,
            f"{MQUEUE_MOUNT} shows the queues of another IPC namespace",
            [
                "It was mounted before this process entered an IPC namespace of its own "
                "(unshare -i without -m, setns): list, top and metrics show the other "
                "namespace's queues, not the ones this process opens."
            ],
            f"mount it again inside this namespace, as root: mount -t mqueue none "
            f"{MQUEUE_MOUNT} (unshare -i -m, then the mount, does both at once)",
        )
    return Check("mount", OK, f"the mqueue filesystem is mounted at {MQUEUE_MOUNT}")


def check_namespace() -> Check:
    try:
        inode = os.stat("/proc/self/ns/ipc").st_ino
    except OSError:
        return Check("namespace", SKIPPED, "no /proc/self/ns/ipc: IPC namespace unknown")
    if inode == INITIAL_IPC_NAMESPACE:
        return Check(
            "namespace",
            OK,
            "in the host's IPC namespace: queues are shared with every process not in a container",
        )
    return Check(
        "namespace",
        NOTE,
        "in an IPC namespace of its own (a container, or unshare -i)",
        [
            "It shares queues only with processes of the same namespace: the host and other "
            "containers have queues of their own, even under the same names.",
            "Its limits (fs.mqueue.*) are its own: a new namespace starts from the kernel's "
            "defaults (msg_max 10, msgsize_max 8192, queues_max 256).",
        ],
        "to share queues, put the processes in one namespace: docker run --ipc=shareable for "
        "the first container and --ipc=container:NAME for the others (the containers of a "
        "Kubernetes pod share one), --ipc=host for the host's; raise its limits with "
        "docker run --sysctl fs.mqueue.msg_max=N and --ulimit msgqueue=BYTES",
    )


def _try_create(capacity: int, max_message_size: int) -> OSError | None:
    """Create a queue of this size under a new name and remove it: the kernel's own answer."""
    name = f"/anyposixmq-doctor-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        MessageQueue(
            name, create=True, exclusive=True, capacity=capacity, max_message_size=max_message_size
        ).close()
    except OSError as exc:
        return exc
    unlink(name, missing_ok=True)
    return None


def check_limits(capacity: int | None, max_message_size: int | None) -> Check:
    lim = limits()
    defaults = default_sizes(lim)
    if defaults is None and (capacity is None or max_message_size is None):
        return Check("limits", SKIPPED, "the system reports no default queue size")
    what = "a queue" if capacity or max_message_size else "a queue of the default size"
    if defaults is not None:
        capacity = capacity or defaults[0]
        max_message_size = max_message_size or defaults[1]
    assert capacity is not None
    assert max_message_size is not None
    queues = _snapshot.take() if _mounted() else None
    cost = queue_cost(capacity, max_message_size)
    details = [
        f"It costs about {capacity:,} x ({max_message_size:,} + {queue_cost(1, 0)}) = "
        f"{cost:,} bytes of RLIMIT_MSGQUEUE."
    ]
    used = 0
    if queues is None:
        details.append("How much your queues use is unknown: /dev/mqueue is not mounted.")
    else:
        mine = [q for q in queues if q.uid == os.geteuid() and q.capacity is not None]
        used = sum(queue_cost(q.capacity or 0, q.max_message_size or 0) for q in mine)
        queues_here = (
            f"{len(mine)} queue here uses" if len(mine) == 1 else f"{len(mine)} queues here use"
        )
        details.append(f"Your {queues_here} about {used:,} bytes of it.")
    rlimit = lim.rlimit_msgqueue
    left = None if rlimit is None else rlimit - used
    if rlimit is None:
        details.append("RLIMIT_MSGQUEUE is unlimited.")
    else:
        details.append(f"RLIMIT_MSGQUEUE is {rlimit:,} bytes, so about {left:,} are left.")
    size = f"{what} of {capacity:,} x {max_message_size:,} bytes"
    error = _try_create(capacity, max_message_size)
    if error is None:
        details.append("A queue of this size was created and removed at once to make sure.")
        return Check("limits", OK, f"{size} fits within the limits", details)
    problems, fixes = [], []
    if error.errno == errno.EINVAL:
        for value, limit, key in [
            (capacity, lim.msg_max, "msg_max"),
            (max_message_size, lim.msgsize_max, "msgsize_max"),
        ]:
            if limit is not None and value > limit:
                problems.append(f"{value:,} is above {key} {limit:,} (mq_open fails with EINVAL)")
                fixes.append(
                    f"as root: sysctl -w fs.mqueue.{key}={value} (in a container: "
                    f"docker run --sysctl fs.mqueue.{key}={value})"
                )
    elif error.errno == errno.EMFILE and rlimit is not None:
        problems.append(
            f"it needs about {cost:,} bytes of RLIMIT_MSGQUEUE, more than are left "
            "(mq_open fails with EMFILE, 'too many open files')"
        )
        if left is not None and cost <= left:
            details.append(
                "Queues of yours that cannot be seen from here (in other IPC namespaces: "
                "other containers, the host) use the rest: the limit is per user."
            )
        hard = _rlimit(hard=True)
        fixes.append(
            f"ulimit -q {used + cost} or more in the shell that starts it (the hard limit is "
            + ("unlimited" if hard is None else f"{hard:,}")
            + "); past the hard limit, as root: 'msgqueue' in /etc/security/limits.conf, "
            "LimitMSGQUEUE= in a systemd unit, docker run --ulimit msgqueue=BYTES"
        )
    elif error.errno == errno.ENOSPC:
        problems.append(f"queues_max ({lim.queues_max}) queues exist already")
        fixes.append("as root: sysctl -w fs.mqueue.queues_max=N")
    if not problems:
        problems.append(str(error))
    summary = f"{size} cannot be created: " + "; ".join(problems)
    return Check("limits", PROBLEM, summary, details, "; ".join(fixes) or None)


def _parse_bool(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("1", "yes", "y", "true", "t", "on"):
        return True
    if value in ("0", "no", "n", "false", "f", "off"):
        return False
    return None


_CONF_DIRS = ["etc/systemd", "run/systemd", "usr/local/lib/systemd", "usr/lib/systemd"]


def removeipc_setting(root: Path = Path("/")) -> tuple[bool, Path | None]:
    """logind's ``RemoveIPC=`` as systemd reads it, and the file that set it (None: the default).

    The first ``logind.conf`` of ``/etc``, ``/run``, ``/usr/local/lib`` and
    ``/usr/lib``, then the ``logind.conf.d/*.conf`` drop-ins in the order of
    their names (one of ``/etc`` hides one of the same name further down);
    the last assignment wins.
    """
    files = [p for d in _CONF_DIRS if (p := root / d / "logind.conf").is_file()][:1]
    drop_ins: dict[str, Path] = {}
    for d in reversed(_CONF_DIRS):
        folder = root / d / "logind.conf.d"
        if folder.is_dir():
            drop_ins.update({p.name: p for p in folder.glob("*.conf")})
    files += [drop_ins[name] for name in sorted(drop_ins)]
    enabled, source = True, None
    for path in files:
        section = ""
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in map(str.strip, lines):
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Login" and line.partition("=")[0].strip() == "RemoveIPC":
                value = _parse_bool(line.partition("=")[2])
                if value is not None:
                    enabled, source = value, path
    return enabled, source


def check_removeipc(root: Path = Path("/"), uid: int | None = None) -> Check:
    if not (root / "run/systemd/system").is_dir():
        return Check("removeipc", OK, "systemd is not running here: RemoveIPC= removes nothing")
    enabled, source = removeipc_setting(root)
    where = f"RemoveIPC={'yes' if enabled else 'no'} ({source or 'the default'})"
    uid = os.geteuid() if uid is None else uid
    user = _snapshot.owner_name(uid)
    if not enabled:
        return Check("removeipc", OK, f"{where}: logind leaves queues alone")
    if uid <= SYSTEM_UID_MAX:
        return Check(
            "removeipc",
            OK,
            f"{where}, but it spares root and system users, and {user} is uid {uid}",
        )
    return Check(
        "removeipc",
        PROBLEM,
        f"{where}: systemd-logind removes every queue of {user} when their last session ends",
        [
            "A program that runs on after they log out (a service run as them, a tmux "
            "session) finds its queues gone: processes that have one open keep it, but its "
            "name is free, and the next mq_open creates a new, empty queue."
        ],
        "run the service as a system user (useradd --system), or set RemoveIPC=no under "
        "[Login] in /etc/systemd/logind.conf and run systemctl restart systemd-logind",
    )


def check_queues() -> Check:
    if not _mounted():
        return Check("queues", SKIPPED, "cannot look at your queues: /dev/mqueue is not mounted")
    mine = [q for q in _snapshot.take() if q.uid == os.geteuid()]
    near = [q for q in mine if q.fill is not None and q.fill >= NEAR_FULL]
    if not near:
        return Check("queues", OK, f"none of your {len(mine)} queues is nearly full")
    return Check(
        "queues",
        PROBLEM,
        f"{len(near)} of your {len(mine)} queues {'is' if len(near) == 1 else 'are'} nearly full",
        [
            f"{q.name}: {q.messages} of {q.capacity} messages{' (full)' if q.full else ''}"
            for q in near
        ],
        "a full queue makes its senders wait, or fail when they gave a timeout: is its "
        "consumer running, and keeping up? anyposixmq top shows them live",
    )


def diagnose(capacity: int | None = None, max_message_size: int | None = None) -> list[Check]:
    """Run every check."""
    return [
        check_mount(),
        check_namespace(),
        check_limits(capacity, max_message_size),
        check_removeipc(),
        check_queues(),
    ]


def run(*, capacity: int | None, max_message_size: int | None, as_json: bool) -> int:
    """``anyposixmq doctor``: 0 when all is well, 1 when a check found a problem."""
    checks = diagnose(capacity, max_message_size)
    problems = sum(c.status == PROBLEM for c in checks)
    if as_json:
        out(json.dumps({"ok": not problems, "checks": [asdict(c) for c in checks]}))
        return EXIT_FAILURE if problems else EXIT_OK
    for c in checks:
        out(
            textwrap.fill(
                c.summary,
                100,
                initial_indent=f"{c.status:<8} {c.check:<10} ",
                subsequent_indent=" " * 20,
            )
        )
        for text in [*c.details, *([f"Fix: {c.fix}"] if c.fix else [])]:
            out(textwrap.fill(text, 100, initial_indent=" " * 20, subsequent_indent=" " * 20))
    out("all is well" if not problems else f"{problems} problem{'s' * (problems > 1)} found")
    return EXIT_FAILURE if problems else EXIT_OK
