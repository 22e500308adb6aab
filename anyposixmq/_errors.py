"""Turning errno values into exceptions: the one place that does it.

Each exception is the standard :class:`OSError` subclass for its errno
(``OSError(errno, text, filename)`` picks it), carrying the queue name as
``filename``.  ``str(exc)`` then ends with that name (``"[Errno 110] timed
out waiting to receive: '/jobs'"``), so no text here names the queue again.
Where the kernel's errno misleads, the text explains it with the live limits.

The callers say what they were doing (``operation``, whether a timeout was
given) and pass the errno; they never compose a text of their own.  "Would
block" is one condition here (``EAGAIN`` or ``ETIMEDOUT``, whichever the
system call reported): :class:`TimeoutError` when the caller gave a timeout,
:class:`BlockingIOError` when it did not.

Everything this module needs is imported up front: an error raised because
the process has no descriptor left (EMFILE) must not need one to import a
module.
"""

from __future__ import annotations

import errno
import os
import resource
import sys
from collections.abc import Sequence
from typing import Literal

from ._limits import KERNEL_MSG_MAX, KERNEL_MSGSIZE_MAX, default_sizes, limits, queue_cost
from ._types import Message

_CLOSED_TEXT = "I/O operation on closed queue"

#: What an operation on an open queue was doing, for :func:`operation_error`.
Operation = Literal["send", "receive", "query"]

_WOULD_BLOCK = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT})


def closed_error() -> ValueError:
    """The error for any operation on a closed :class:`MessageQueue`."""
    return ValueError(_CLOSED_TEXT)


def os_error(err: int, name: str | None, text: str | None = None) -> OSError:
    """An OSError subclass for *err*, with *text* or the system's description.

    *text* must not name the queue: *name* is the exception's ``filename``,
    which ``str()`` appends.
    """
    return OSError(err, text or os.strerror(err), name)


def pickle_error(obj: object) -> TypeError:
    """The error for pickling (or sending to another process) an open queue object."""
    kind = type(obj).__name__
    return TypeError(
        f"{kind} objects cannot be pickled: each holds a descriptor of this process. "
        f"Pass the queue's name instead and open it again on the other side ({kind}(name))"
    )


# -- operations on an open queue ------------------------------------------------


def operation_error(
    err: int,
    name: str | None,
    *,
    operation: Operation,
    timed: bool = False,
    size: int = 0,
    max_message_size: int = 0,
) -> OSError:
    """The exception for a failed ``send``, ``receive`` or other call on an open queue.

    :param operation: ``"send"``, ``"receive"``, or ``"query"`` (attributes,
        blocking mode, duplicating).
    :param timed: whether the caller gave a timeout: a "would block" errno
        then becomes :class:`TimeoutError`, otherwise :class:`BlockingIOError`.
    :param size: the length of the message a send was given (for EMSGSIZE).
    :param max_message_size: the queue's (for EMSGSIZE).
    """
    if operation != "query" and err in _WOULD_BLOCK:
        if timed:
            return os_error(errno.ETIMEDOUT, name, f"timed out waiting to {operation}")
        state = "full" if operation == "send" else "empty"
        return os_error(errno.EAGAIN, name, f"the queue is {state}")
    if err == errno.EMSGSIZE and operation == "send":
        return send_size_error(name, size, max_message_size)
    if err == errno.EBADF and operation != "query":
        return not_opened_for_error(name, writing=operation == "send")
    return os_error(err, name)


def send_size_error(name: str | None, size: int, max_message_size: int) -> OSError:
    """EMSGSIZE from a send: the message is longer than the queue takes."""
    return os_error(
        errno.EMSGSIZE,
        name,
        f"a message of {size} bytes is longer than the queue's max_message_size "
        f"of {max_message_size} bytes",
    )


def not_opened_for_error(name: str | None, *, writing: bool) -> OSError:
    """EBADF from a send (*writing*) or a receive: the descriptor's access mode."""
    if writing:
        text = "the queue was not opened for writing (write=False): it cannot send"
    else:
        text = "the queue was not opened for reading (read=False): it cannot receive"
    return os_error(errno.EBADF, name, text)


def is_not_opened_for(exc: BaseException) -> bool:
    """Whether *exc* is the error of :func:`not_opened_for_error`: the
    descriptor lacks the access (read or write) that the operation needed,
    so another descriptor of the same queue might do (the thread strategy
    puts messages back through one opened for writing)."""
    return isinstance(exc, OSError) and exc.errno == errno.EBADF


def not_pollable_error(name: str | None) -> OSError:
    """``fileno()`` on a platform whose queue descriptors cannot be polled."""
    return os_error(
        errno.ENOTSUP, name, "message queue descriptors cannot be polled on this platform"
    )


def adopt_error(err: int, fd: int, name: str | None) -> OSError:
    """The exception for a failed ``MessageQueue.from_fd(fd)``."""
    if err in (errno.EBADF, errno.EINVAL):
        return os_error(err, name, f"descriptor {fd} is not an open message queue")
    return os_error(err, name)


def unlink_error(err: int, name: str) -> OSError:
    """The exception for a failed ``mq_unlink``."""
    if err == errno.ENOENT:
        return os_error(err, name, "no such message queue")
    if err == errno.EACCES:
        return os_error(err, name, "permission denied: this user may not remove the queue")
    return os_error(err, name)


# -- opening --------------------------------------------------------------------


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


def _explain_emfile(create: bool, capacity: int | None, max_message_size: int | None) -> str:
    # Only creating a queue is charged to RLIMIT_MSGQUEUE: opening one that
    # exists fails with EMFILE only for lack of descriptors.
    if not create or _descriptors_exhausted():
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        allowed = "unlimited" if nofile == resource.RLIM_INFINITY else str(nofile)
        return (
            f"cannot open the message queue: this process has used all the "
            f"descriptors RLIMIT_NOFILE allows ({allowed}); close some or raise it (ulimit -n)"
        )
    lim = limits()
    defaults = default_sizes(lim)
    cap = capacity if capacity is not None or defaults is None else defaults[0]
    size = max_message_size if max_message_size is not None or defaults is None else defaults[1]
    cost = (
        f"this queue ({cap} messages x {size} bytes) needs about "
        f"{queue_cost(cap, size):,} bytes of it"
        if cap is not None and size is not None
        else "this queue's size counts against it"
    )
    rlimit = f"{lim.rlimit_msgqueue:,} bytes" if lim.rlimit_msgqueue is not None else "unknown"
    return (
        f"cannot create the message queue: EMFILE here almost always means the "
        f"per-user RLIMIT_MSGQUEUE is used up, not open files. The limit is {rlimit}; "
        f"{cost}, and every queue this user already has counts too. Unlink queues "
        f"that are no longer needed, create smaller ones (capacity, max_message_size), "
        f"or raise the limit (ulimit -q; past the hard limit needs CAP_SYS_RESOURCE)"
    )


def _too_large(what: str, value: int, setting: str, limit: int, ceiling: int | None) -> str:
    """Why *value* of *what* is refused, with only the advice that can work."""
    if ceiling is not None and value > ceiling:
        text = (
            f"{what} {value} exceeds the kernel's ceiling of {ceiling}, which no setting "
            f"or privilege raises; this system allows up to {limit} now"
        )
        if limit < ceiling:
            text += f" (up to {ceiling} as root: sysctl fs.mqueue.{setting}={ceiling})"
        return text
    return (
        f"{what} {value} exceeds the system's {setting} of {limit} (raise it as root: "
        f"sysctl fs.mqueue.{setting}={value}; a process with CAP_SYS_RESOURCE may also "
        f"go past it)"
    )


def _explain_einval_create(capacity: int | None, max_message_size: int | None) -> str | None:
    lim = limits()
    linux = sys.platform.startswith("linux")
    problems = []
    if capacity is not None and lim.msg_max is not None and capacity > lim.msg_max:
        ceiling = KERNEL_MSG_MAX if linux else None
        problems.append(_too_large("capacity", capacity, "msg_max", lim.msg_max, ceiling))
    if (
        max_message_size is not None
        and lim.msgsize_max is not None
        and max_message_size > lim.msgsize_max
    ):
        ceiling = KERNEL_MSGSIZE_MAX if linux else None
        problems.append(
            _too_large(
                "max_message_size", max_message_size, "msgsize_max", lim.msgsize_max, ceiling
            )
        )
    if not problems:
        return None
    return "cannot create the message queue: " + "; ".join(problems)


def open_error(
    err: int, name: str, *, create: bool, capacity: int | None, max_message_size: int | None
) -> OSError:
    """The exception for a failed ``mq_open``.

    *capacity* and *max_message_size* are the sizes asked of the kernel
    (``None``: its defaults).
    """
    text: str | None = None
    if err == errno.EMFILE:
        text = _explain_emfile(create, capacity, max_message_size)
    elif err == errno.EINVAL and create:
        text = _explain_einval_create(capacity, max_message_size)
    elif err == errno.ENOSPC:
        qmax = limits().queues_max
        text = (
            f"cannot create the message queue: the system-wide limit of "
            f"{qmax if qmax is not None else 'queues_max'} queues is reached; unlink queues "
            f"that are no longer needed or raise it as root (sysctl fs.mqueue.queues_max=N)"
        )
    elif err == errno.ENOENT:
        text = "no such message queue (pass create=True to create it)"
    elif err == errno.EEXIST:
        text = "the message queue already exists (exclusive=True was asked)"
    elif err == errno.EACCES:
        text = "permission denied: the queue's mode does not give this user that access"
    return os_error(err, name, text)


def notification_busy_error(name: str | None) -> OSError:
    """EBUSY from ``mq_notify``: the queue's one registration is someone else's."""
    return os_error(
        errno.EBUSY,
        name,
        "another process (or another open description of the queue) is already "
        "registered for notification: the kernel allows one registration per queue",
    )


# -- messages that could not be put back ---------------------------------------


class PutBackError(OSError):
    """Messages this process took from a queue could not be put back in it.

    Raised by :meth:`MessageQueue.close` (and :meth:`AsyncMessageQueue.aclose`)
    when messages that the process received but never handed to a caller (a
    receive that a signal handler's exception, such as
    :exc:`KeyboardInterrupt`, stopped right after the kernel handed over
    the message) found no room in the queue within the bounded wait
    (:data:`~anyposixmq.PUT_BACK_TIMEOUT`), or could not be written.  The
    queue is closed all the same; the messages are in :attr:`messages`,
    oldest first, for the caller to keep, log or send elsewhere.

    ``errno`` says why: ``EAGAIN`` (the queue stayed full), ``EBADF`` (the
    queue was opened without write access and its name could not be opened
    for writing), or another error of the send.

    .. versionadded:: 0.1
    """

    #: The messages, oldest first, each as a receive would have returned it.
    messages: list[Message]

    def __init__(self, *args: object, messages: Sequence[Message] = ()) -> None:
        super().__init__(*args)
        self.messages = list(messages)


def put_back_error(
    err: int, name: str | None, messages: Sequence[Message], wait: float
) -> PutBackError:
    """The :class:`PutBackError` for *messages* that a put-back could not send (errno *err*)."""
    if err in _WOULD_BLOCK:
        err, why = errno.EAGAIN, f"the queue stayed full for {wait:g} s"
    elif err == errno.EBADF:
        why = "it was opened without write access, and its name could not be opened for writing"
    else:
        why = os.strerror(err)
    count = len(messages)
    shown = repr(list(messages))
    if len(shown) > 300:
        shown = shown[:297] + "..."
    text = (
        f"{count} message{'s' if count != 1 else ''} taken from the queue could not be put "
        f"back ({why}); they are in this exception's .messages: {shown}"
    )
    return PutBackError(err, text, name, messages=messages)
