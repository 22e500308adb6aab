"""Turning errno values into exceptions: the one place that does it.

Each exception is the standard :class:`OSError` subclass for its errno
(``OSError(errno, text, filename)`` picks it), carrying the queue name as
``filename``.  Where the kernel's errno misleads, the text explains it with
the live limits.
"""

from __future__ import annotations

import errno
import os

from ._limits import limits, queue_cost

_CLOSED_TEXT = "I/O operation on closed queue"


def closed_error() -> ValueError:
    """The error for any operation on a closed :class:`MessageQueue`."""
    return ValueError(_CLOSED_TEXT)


def os_error(err: int, name: str | None, text: str | None = None) -> OSError:
    """An OSError subclass for *err*, with *text* or the system's description."""
    return OSError(err, text or os.strerror(err), name)


def _descriptors_exhausted() -> bool:
    """Whether this process cannot open one more descriptor (RLIMIT_NOFILE).

    Counting ``/proc/self/fd`` would itself need a descriptor, so try to
    open one instead.
    """
    try:
        fd = os.open("/", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return exc.errno == errno.EMFILE
    os.close(fd)
    return False


def _explain_emfile(
    name: str, create: bool, capacity: int | None, max_message_size: int | None
) -> str:
    import resource

    # Only creating a queue is charged to RLIMIT_MSGQUEUE: opening one that
    # exists fails with EMFILE only for lack of descriptors.
    if not create or _descriptors_exhausted():
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        allowed = "unlimited" if nofile == resource.RLIM_INFINITY else str(nofile)
        return (
            f"cannot open message queue {name}: this process has used all the "
            f"descriptors RLIMIT_NOFILE allows ({allowed}); close some or raise it (ulimit -n)"
        )
    lim = limits()
    cap = capacity if capacity is not None else lim.msg_default
    size = max_message_size if max_message_size is not None else lim.msgsize_default
    cost = (
        f"this queue ({cap} messages x {size} bytes) needs about "
        f"{queue_cost(cap, size):,} bytes of it"
        if cap is not None and size is not None
        else "this queue's size counts against it"
    )
    rlimit = f"{lim.rlimit_msgqueue:,} bytes" if lim.rlimit_msgqueue is not None else "unknown"
    return (
        f"cannot create message queue {name}: EMFILE here almost always means the "
        f"per-user RLIMIT_MSGQUEUE is used up, not open files. The limit is {rlimit}; "
        f"{cost}, and every queue this user already has counts too. Unlink queues "
        f"that are no longer needed, create smaller ones (capacity, max_message_size), "
        f"or raise the limit (ulimit -q; past the hard limit needs CAP_SYS_RESOURCE)"
    )


def _explain_einval_create(
    name: str, capacity: int | None, max_message_size: int | None
) -> str | None:
    lim = limits()
    problems = []
    if capacity is not None and lim.msg_max is not None and capacity > lim.msg_max:
        problems.append(
            f"capacity {capacity} exceeds the system's msg_max of {lim.msg_max} "
            f"(raise it as root: sysctl fs.mqueue.msg_max={capacity})"
        )
    if (
        max_message_size is not None
        and lim.msgsize_max is not None
        and max_message_size > lim.msgsize_max
    ):
        problems.append(
            f"max_message_size {max_message_size} exceeds the system's msgsize_max of "
            f"{lim.msgsize_max} (raise it as root: sysctl fs.mqueue.msgsize_max="
            f"{max_message_size})"
        )
    if not problems:
        return None
    return (
        f"cannot create message queue {name}: "
        + "; ".join(problems)
        + "; a process with CAP_SYS_RESOURCE may also go past these limits"
    )


def open_error(
    err: int, name: str, *, create: bool, capacity: int | None, max_message_size: int | None
) -> OSError:
    """The exception for a failed ``mq_open``."""
    text: str | None = None
    if err == errno.EMFILE:
        text = _explain_emfile(name, create, capacity, max_message_size)
    elif err == errno.EINVAL and create:
        text = _explain_einval_create(name, capacity, max_message_size)
    elif err == errno.ENOSPC:
        qmax = limits().queues_max
        text = (
            f"cannot create message queue {name}: the system-wide limit of "
            f"{qmax if qmax is not None else 'queues_max'} queues is reached; unlink queues "
            f"that are no longer needed or raise it as root (sysctl fs.mqueue.queues_max=N)"
        )
    elif err == errno.ENOENT:
        text = f"no message queue named {name} (pass create=True to create it)"
    elif err == errno.EEXIST:
        text = f"message queue {name} already exists (exclusive=True was asked)"
    elif err == errno.EACCES:
        text = f"permission denied opening message queue {name}"
    return os_error(err, name, text)


def send_size_error(name: str | None, size: int, max_message_size: int) -> OSError:
    """EMSGSIZE from a send: the message is longer than the queue takes."""
    return os_error(
        errno.EMSGSIZE,
        name,
        f"message of {size} bytes is longer than the max_message_size of "
        f"{max_message_size} bytes of queue {name}",
    )
