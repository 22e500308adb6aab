"""System limits on message queues, read live, and the list of existing queues."""

from __future__ import annotations

import errno
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from ._binding import lib
from ._names import display_name

#: The largest priority a message may have: ``sysconf(_SC_MQ_PRIO_MAX) - 1``.
PRIORITY_MAX: int = int(lib.apmq_priority_max())

_PROC = Path("/proc/sys/fs/mqueue")
MQUEUE_MOUNT = Path("/dev/mqueue")

#: Linux's ceilings on ``fs.mqueue.msg_max`` and ``fs.mqueue.msgsize_max``
#: (``HARD_MSGMAX`` and ``HARD_MSGSIZEMAX`` since Linux 3.5): no setting,
#: and no privilege, lets a queue go past them.
KERNEL_MSG_MAX = 65536
KERNEL_MSGSIZE_MAX = 16 * 1024 * 1024

#: Bytes the kernel charges per message slot beyond its data (Linux: one
#: ``struct msg_msg`` and at most one priority tree node, 48 bytes each on
#: 64-bit).  Used only to explain RLIMIT_MSGQUEUE errors.
_OVERHEAD_PER_MESSAGE = 96


@dataclass(frozen=True, slots=True)
class SystemLimits:
    """The system's limits on POSIX message queues, as read by :func:`limits`.

    A field is ``None`` where the platform does not report it.
    """

    #: Largest ``capacity`` an unprivileged process may create (``fs.mqueue.msg_max``).
    msg_max: int | None
    #: Largest ``max_message_size`` (``fs.mqueue.msgsize_max``).
    msgsize_max: int | None
    #: The default ``capacity`` (``fs.mqueue.msg_default``).  Linux gives a
    #: new queue created without one ``min(msg_default, msg_max)`` (see
    #: :func:`default_sizes`), since a new ``msg_max`` may be lower.
    msg_default: int | None
    #: The default ``max_message_size`` (``fs.mqueue.msgsize_default``); a
    #: new queue created without one gets ``min(msgsize_default, msgsize_max)``.
    msgsize_default: int | None
    #: How many queues may exist at once, system-wide (``fs.mqueue.queues_max``).
    queues_max: int | None
    #: The largest priority a message may have (:data:`PRIORITY_MAX`).
    priority_max: int
    #: Bytes of queue storage one user may hold (soft ``RLIMIT_MSGQUEUE``);
    #: ``None`` where unlimited or not reported.
    rlimit_msgqueue: int | None


def _read_proc(name: str) -> int | None:
    try:
        return int((_PROC / name).read_text())
    except (OSError, ValueError):
        return None


def rlimit_msgqueue(*, hard: bool = False) -> int | None:
    """The soft (or *hard*) RLIMIT_MSGQUEUE in bytes; None where unlimited or unknown."""
    which = getattr(resource, "RLIMIT_MSGQUEUE", None)
    if which is None:
        return None
    value = resource.getrlimit(which)[1 if hard else 0]
    return None if value == resource.RLIM_INFINITY else value


def limits() -> SystemLimits:
    """Read the system's message queue limits now (never cached).

    On Linux they come from ``/proc/sys/fs/mqueue`` and ``getrlimit(2)``.
    """
    return SystemLimits(
        msg_max=_read_proc("msg_max"),
        msgsize_max=_read_proc("msgsize_max"),
        msg_default=_read_proc("msg_default"),
        msgsize_default=_read_proc("msgsize_default"),
        queues_max=_read_proc("queues_max"),
        priority_max=PRIORITY_MAX,
        rlimit_msgqueue=rlimit_msgqueue(),
    )


def default_sizes(lim: SystemLimits) -> tuple[int, int] | None:
    """``(capacity, max_message_size)`` that a queue created without them gets.

    Linux (mq_overview(7)) gives ``min(msg_default, msg_max)`` messages of
    ``min(msgsize_default, msgsize_max)`` bytes, never fewer than 1.  None
    where the platform does not report its defaults.
    """
    if lim.msg_default is None or lim.msgsize_default is None:
        return None
    capacity = lim.msg_default if lim.msg_max is None else min(lim.msg_default, lim.msg_max)
    size = (
        lim.msgsize_default
        if lim.msgsize_max is None
        else min(lim.msgsize_default, lim.msgsize_max)
    )
    return max(1, capacity), max(1, size)


def queue_cost(capacity: int, max_message_size: int) -> int:
    """About how many bytes of RLIMIT_MSGQUEUE a queue of this size is charged."""
    return capacity * (max_message_size + _OVERHEAD_PER_MESSAGE)


def _mqueue_mounted(mountpoint: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return mountpoint.is_dir() and any(True for _ in os.scandir(mountpoint))
    target = str(mountpoint)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == target and fields[2] == "mqueue":
            return True
    return False


def list_queues() -> list[str]:
    """Name the queues that exist now, sorted, each with its leading slash.

    Reads ``/dev/mqueue``, where Linux shows its queues when the mqueue
    filesystem is mounted there.  Raises :class:`OSError` (``ENOENT``) saying
    how to mount it when it is not.
    """
    if not _mqueue_mounted(MQUEUE_MOUNT):
        raise OSError(
            errno.ENOENT,
            f"the mqueue filesystem is not mounted at {MQUEUE_MOUNT}, so the queues "
            f"cannot be listed; mount it as root with: "
            f"mkdir -p {MQUEUE_MOUNT} && mount -t mqueue none {MQUEUE_MOUNT}",
            str(MQUEUE_MOUNT),
        )
    # Listed as bytes and decoded as every reported name is, so a name that
    # is not UTF-8 comes back in a form MessageQueue and unlink accept.
    return sorted(display_name(b"/" + entry.name) for entry in os.scandir(bytes(MQUEUE_MOUNT)))
