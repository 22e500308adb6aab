"""``request_notification``: ``mq_notify(3)`` with a callable, a signal, or None.

A callable runs in a new thread that the C library starts (``SIGEV_THREAD``):
C calls :func:`apmq_notified` with the registration's key, and the key finds
the callable in ``_notified``.  A registration that is cancelled, replaced
or closed is dropped from there, so a late notification finds nothing (and
no freed object).

After ``fork()``: glibc serves ``SIGEV_THREAD`` notifications through one
netlink socket per process, made on first use, and a forked child inherits
its parent's.  Were the child to register a callable, both processes would
read that one socket, and either could run the other's callback for the
same key.  So a child refuses a callable once its parent (or an ancestor)
has used one, and forgets its parent's registrations; signals work there.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable

from ._binding import ffi, lib
from ._errors import notification_busy_error
from ._handover import Blocks

_CLOSED = int(lib.APMQ_CLOSED)

#: Registrations by key: (the callable, the queue's name).
_notified: dict[int, tuple[Callable[[], object], str | None]] = {}
_notify_keys = itertools.count(1)
#: Whether this process has registered a callable (and so has glibc's socket).
_thread_helper_used = False
#: Whether a parent of this process had, before it forked this one.
_thread_helper_inherited = False


def _forked() -> None:
    global _thread_helper_inherited
    _notified.clear()
    _thread_helper_inherited = _thread_helper_inherited or _thread_helper_used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


@ffi.def_extern()  # type: ignore[untyped-decorator]
def apmq_notified(key: int) -> None:
    """Run in mq_notify's new thread: the registration's callable, once."""
    registration = _notified.pop(key, None)
    if registration is None:
        return
    notify, name = registration
    try:
        notify()
    except BaseException:
        # Reported as any thread's uncaught exception, under a name that says
        # whose callable it was (not as an error of this function).
        thread = threading.current_thread()
        thread.name = f"notification of {name} ({notify!r})"
        exc_type, exc, tb = sys.exc_info()
        threading.excepthook(threading.ExceptHookArgs((exc_type, exc, tb, thread)))


def forked_child_error() -> RuntimeError:
    return RuntimeError(
        "request_notification() with a callable cannot be used in a process forked "
        "after its parent used one: the C library's notification thread would share "
        "its socket with the parent, and either process could run the other's "
        "callback. Pass a signal number instead, or wait for messages "
        "(AsyncMessageQueue, or receive() in a thread of your own)"
    )


class Notifying(Blocks):
    """:meth:`request_notification` of :class:`~anyposixmq.MessageQueue`."""

    __slots__ = ("_notify_key",)

    _notify_key: int

    def request_notification(self, notify: Callable[[], object] | int | None) -> None:
        """Ask to be told when a message arrives in the empty queue (``mq_notify(3)``).

        :param notify: a callable, called without arguments in a new thread;
            a signal number, sent to this process (``SIGEV_SIGNAL``); or
            ``None`` to cancel this process's registration.
        :raises OSError: (``EBUSY``) another process (or another open queue
            description in this one) is registered for this queue.
        :raises TypeError, ValueError: bad *notify*, before any system call.
        :raises RuntimeError: a callable, in a process forked after its
            parent had registered one (the C library's notification thread
            cannot be shared safely with the parent); a signal number works.

        The kernel's rules: one registration per queue; it is used up by the
        notification (ask again for the next one); it fires only when a
        message arrives in an *empty* queue, and not while another receive
        is blocked waiting (that one gets the message); closing the
        registering descriptor cancels it.  A callable that raises is
        reported through :func:`threading.excepthook`, like any thread's
        uncaught exception, in a thread named after the queue and the callable.
        """
        global _thread_helper_used
        key = 0
        if notify is None:
            how, signo = lib.APMQ_NOTIFY_NONE, 0
        elif isinstance(notify, int) and not isinstance(notify, bool):
            if not 0 < notify < signal.NSIG:
                raise ValueError(f"{notify} is not a signal number (1..{signal.NSIG - 1})")
            how, signo = lib.APMQ_NOTIFY_SIGNAL, notify
        elif callable(notify):
            if _thread_helper_inherited:
                raise forked_child_error()
            how, signo, key = lib.APMQ_NOTIFY_THREAD, 0, next(_notify_keys)
            _notified[key] = (notify, self.name)
            _thread_helper_used = True
        else:
            raise TypeError(
                f"notify must be a callable, a signal number or None, not {type(notify).__name__}"
            )
        rc = lib.apmq_notify(self._q, how, signo, lib.apmq_notified, key)
        if rc != 0:
            _notified.pop(key, None)
            err = ffi.errno
            if rc != _CLOSED and err == errno.EBUSY:
                raise notification_busy_error(self.name)
            self._raise(rc, err)
        _notified.pop(self._notify_key, None)
        self._notify_key = key

    def _forget_notification(self) -> None:
        """Drop this queue's callable (closing cancels the registration)."""
        _notified.pop(getattr(self, "_notify_key", 0), None)
