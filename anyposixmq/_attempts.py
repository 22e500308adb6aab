"""The attempts: every send and receive call into C, in each mode, and the seam.

The modes (``_shim.h``): *plain* (``mq_send``/``mq_receive``, honouring the
queue's ``O_NONBLOCK``), *try* (one attempt, whatever ``O_NONBLOCK`` says)
and *timed* (wait at most a timeout, on the monotonic clock).  EINTR is
retried with what is left of the timeout (PEP 475): the signal's handler has
run by then, and its exception, if any, would have propagated.

A receive attempt returns ``(size, entry)`` with the message held by the
entry's block, or raises; its caller hands the message over and clears the
block's ``taken`` flag last (the rule: :mod:`anyposixmq._handover`).  A send
attempt sends or raises; an exception raised just after the kernel took the
message (a signal handler's) carries :data:`SENT_NOTE`.

The seam.  The async layer (``_poll.py``, ``_threads.py``) uses only what is
listed here, and nothing else of the core or of the binding.  Each makes at
most one attempt (or, for ``_timed_*``, one wait in C of at most *timeout*
seconds), never changes the queue's ``O_NONBLOCK`` flag, may be called from
any thread, and raises the errors of the public methods (a closed queue:
``ValueError``):

- :class:`~anyposixmq._checks.SendArgs` ``(data, priority)``: the checked
  message, made before any system call; a context manager that releases the
  caller's buffer on leaving.
- ``_try_send(args) -> bool``: False when the queue is full.
- ``_timed_send(args, timeout) -> bool``: False when still full.
- ``_try_receive() -> Message | None``: None when the queue is empty.
- ``_timed_receive(timeout) -> Message | None``: None when none came.
- ``_try_receive_into(buffer) -> (nbytes, priority) | None``.
- ``_try_receive_many(max_messages) -> list[Message]``: empty when the
  queue is; memory for at most ``capacity`` messages.
- ``_check_receive_buffer(buffer)``: the checks of ``receive_into``.
- :func:`~anyposixmq._handover.copy_into`, and
  :func:`~anyposixmq._checks.check_max_messages`.
"""

from __future__ import annotations

import errno
import math
import time
from typing import Any, Final

from ._binding import ffi, lib
from ._checks import SendArgs, borrow
from ._handover import Blocks, Entry, ManyEntry
from ._types import Buffer, Message

_PLAIN: Final = int(lib.APMQ_PLAIN)
_TRY: Final = int(lib.APMQ_TRY)
_TIMED: Final = int(lib.APMQ_TIMED)
_CLOSED: Final = int(lib.APMQ_CLOSED)
_BUSY: Final = int(lib.APMQ_BUSY)
_EINTR: Final = errno.EINTR
_EAGAIN: Final = errno.EAGAIN

_monotonic = time.monotonic
_send_plain = lib.apmq_send_plain
_send_try = lib.apmq_send_try
_receive_plain = lib.apmq_receive_plain
_receive_try = lib.apmq_receive_try

#: The PEP 678 note of an exception raised just after a send's C call returned
#: (CPython runs a pending signal handler then) when the kernel took the message.
SENT_NOTE: Final = "the message was sent: the queue took it before this exception was raised"


def _add_note_310(exc: BaseException, note: str) -> None:
    exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined,unused-ignore]


# BaseException.add_note is C: the note is on before any handler can run again.
_add_note: Final = getattr(BaseException, "add_note", _add_note_310)


def wait_args(timeout: float | None) -> tuple[int, float, float | None]:
    """(mode, timeout argument, monotonic deadline) for a call with *timeout*."""
    if timeout is None:
        return _PLAIN, 0.0, None
    if timeout == 0:
        return _TRY, 0.0, None
    if math.isinf(timeout):
        return _TIMED, -1.0, None
    return _TIMED, timeout, _monotonic() + timeout


class Attempts(Blocks):
    """The sends and receives of :class:`~anyposixmq.MessageQueue`, one per mode."""

    __slots__ = ()

    # -- sending --------------------------------------------------------------

    def _send_bytes(self, data: bytes, prio: int) -> None:
        """Send *data* in plain mode: the common case, in the fewest steps."""
        try:
            rc = _send_plain(self._q, data, len(data), prio)
        except BaseException as exc:
            if lib.apmq_last_sent:
                _add_note(exc, SENT_NOTE)
            raise
        if rc:
            self._send_failed(rc, data, len(data), prio, None, timed=False)

    def _send(self, args: SendArgs, timeout: float | None, *, timed: bool) -> None:
        """Send, waiting as *timeout* says (None: plain mode); raise on failure."""
        self._send_failed(None, args.buf, args.size, args.priority, timeout, timed=timed)

    def _send_failed(
        self, rc: int | None, buf: Any, size: int, prio: int, timeout: float | None, *, timed: bool
    ) -> None:
        """Send (again, after a failed call's *rc*, or first when None) until
        sent; retry after EINTR with what is left of *timeout*; raise otherwise."""
        mode, arg, deadline = wait_args(timeout)
        q = self._q
        while True:
            if rc is None:
                try:
                    rc = lib.apmq_send(q, buf, size, prio, mode, arg)
                except BaseException as exc:
                    if lib.apmq_last_sent:
                        _add_note(exc, SENT_NOTE)
                    raise
                if rc == 0:
                    return
            err = ffi.errno
            if rc != _CLOSED and err == _EINTR:
                rc = None
                if deadline is not None:
                    arg = max(0.0, deadline - _monotonic())
                continue
            self._raise(rc, err, size, timed=timed)

    def _send_once(self, args: SendArgs, timeout: float) -> bool:
        """One attempt (*timeout* 0) or one wait in C: True when sent, False when full."""
        try:
            if not timeout:  # one attempt, the async layer's path: in fewer arguments
                rc = _send_try(self._q, args.buf, args.size, args.priority)
            else:
                rc = lib.apmq_send(self._q, args.buf, args.size, args.priority, _TIMED, timeout)
        except BaseException as exc:
            if lib.apmq_last_sent:
                _add_note(exc, SENT_NOTE)
            raise
        if rc == 0:
            return True
        err = ffi.errno
        if rc != _CLOSED and err in (_EAGAIN, _EINTR):
            return False
        return bool(self._raise(rc, err, args.size))

    # -- receiving: attempts that raise ------------------------------------------

    def _receive_plain(self) -> tuple[int, Entry]:
        """One message in plain mode (waits unless the queue is nonblocking)."""
        try:  # self._entry(), without the call
            entry = self._spare.pop()
        except IndexError:
            entry = self._new_entry()
        n = _receive_plain(entry[0])
        if n < 0:
            return self._receive_failed(n, entry, None, timed=False)
        return n, entry

    def _receive_timed(self, timeout: float, *, timed: bool = True) -> tuple[int, Entry]:
        """One message, waiting at most *timeout* s (0: one attempt)."""
        return self._receive_failed(None, self._entry(), timeout, timed=timed)

    def _receive_failed(
        self, n: int | None, entry: Entry, timeout: float | None, *, timed: bool, into: Any = None
    ) -> tuple[int, Entry]:
        """Receive (again, after a failed call's *n*, or first when None) until
        a message comes; raise otherwise.  *into*: a view to copy it to.

        Returns the size and the entry that holds the message: another one
        than *entry* when that one still held another thread's message.
        """
        mode, arg, deadline = wait_args(timeout)
        into_len = 0 if into is None else len(into)
        while True:
            if n is None or n == _BUSY:
                if n == _BUSY:
                    entry = self._new_entry()
                n = lib.apmq_receive(
                    entry[0], ffi.NULL if into is None else into, into_len, mode, arg
                )
                if n >= 0:
                    return n, entry
                if n == _BUSY:
                    continue
            err = ffi.errno
            if n != _CLOSED and err == _EINTR:
                n = None
                if deadline is not None:
                    arg = max(0.0, deadline - _monotonic())
                continue
            self._spare.append(entry)
            self._raise(n, err, receiving=True, timed=timed)

    def _receive_many(self, count: int, timeout: float | None) -> tuple[int, ManyEntry]:
        """Wait for one message as the single receives do, then take up to
        *count* that are there: how many, and the batch entry holding them."""
        mode, arg, deadline = wait_args(timeout)
        entry = self._many_entry(count)
        while True:
            taken = lib.apmq_receive_many(entry[0], min(count, entry[2]), mode, arg)
            if taken == _BUSY:
                entry = self._many_entry(count, fresh=True)
                continue
            if taken >= 0:
                return taken, entry
            err = ffi.errno
            if taken != _CLOSED and err == _EINTR:
                if deadline is not None:
                    arg = max(0.0, deadline - _monotonic())
                continue
            self._many.append(entry)
            self._raise(taken, err, receiving=True, timed=timeout is not None)

    # -- receiving: attempts that may find nothing -----------------------------

    def _receive_try(self) -> tuple[int, Entry] | None:
        """One attempt, with the one-argument C call: None when the queue is empty."""
        try:  # self._entry(), without the call
            entry = self._spare.pop()
        except IndexError:
            entry = self._new_entry()
        n = _receive_try(entry[0])
        if n < 0:
            if n == _BUSY:  # that block holds another thread's message: leave it
                return self._receive_try()
            self._nothing(n, entry)
            return None
        return n, entry

    def _receive_once(self, timeout: float, into: Any = None) -> tuple[int, Entry] | None:
        """One attempt (*timeout* 0) or one wait in C: None when no message came
        (a signal included).  *into*: a view to copy the message to."""
        entry = self._entry()
        into_len = 0 if into is None else len(into)
        mode = _TIMED if timeout else _TRY
        n = lib.apmq_receive(entry[0], ffi.NULL if into is None else into, into_len, mode, timeout)
        if n < 0:
            if n == _BUSY:
                return self._receive_once(timeout, into)
            self._nothing(n, entry)
            return None
        return n, entry

    def _receive_many_try(self, count: int) -> tuple[int, ManyEntry] | None:
        """Up to *count* messages that are there now, in one call; None when none."""
        entry = self._many_entry(count)
        taken = lib.apmq_receive_many(entry[0], min(count, entry[2]), _TRY, 0.0)
        if taken < 0:
            if taken == _BUSY:
                return self._receive_many_try(count)
            self._many.append(entry)
            self._nothing(taken, None)
            return None
        return taken, entry

    def _nothing(self, n: int, entry: Entry | None) -> None:
        """After a call that took nothing: give *entry* back; raise unless it would block."""
        err = ffi.errno
        if entry is not None:
            self._spare.append(entry)  # unused: a new one each empty try costs ~1 us
        if n != _CLOSED and err in (_EAGAIN, _EINTR):
            return
        self._raise(n, err, receiving=True)

    # -- the seam (see the module's docstring) ----------------------------------

    def _try_send(self, args: SendArgs) -> bool:
        return self._send_once(args, 0.0)

    def _timed_send(self, args: SendArgs, timeout: float) -> bool:
        return self._send_once(args, timeout)

    def _try_receive(self) -> Message | None:
        if (got := self._receive_try()) is None:
            return None
        msg = self._hand_over(*got)
        got[1][0].taken = 0
        return msg

    def _timed_receive(self, timeout: float) -> Message | None:
        if (got := self._receive_once(timeout)) is None:
            return None
        msg = self._hand_over(*got)
        got[1][0].taken = 0
        return msg

    def _try_receive_into(self, buffer: Buffer) -> tuple[int, int] | None:
        with borrow(buffer, self._max_message_size, self.name) as view:
            got = self._receive_once(0.0, view)
        if got is None:
            return None
        result = self._hand_over_into(*got)
        got[1][0].taken = 0
        return result

    def _try_receive_many(self, max_messages: int) -> list[Message]:
        if (got := self._receive_many_try(max_messages)) is None:
            return []
        msgs = self._hand_over_many(*got)
        got[1][0].taken = 0
        return msgs

    def _check_receive_buffer(self, buffer: Buffer) -> None:
        with borrow(buffer, self._max_message_size, self.name):
            pass
