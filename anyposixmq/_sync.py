"""MessageQueue: the blocking and nonblocking queue object and its public methods.

The object is made of rooms, each one responsibility:

- :mod:`anyposixmq._checks`: the argument checks, before any system call;
- :mod:`anyposixmq._handover`: receive blocks and the hand-over, with the
  signal-safety rule that every receive follows;
- :mod:`anyposixmq._attempts`: the send and receive attempts of each mode,
  and the seam that the async layer uses;
- :mod:`anyposixmq._notify`: ``request_notification``.

Here each public receive is one attempt, the hand-over, and the clear of the
block's ``taken`` flag as its last statement.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._attempts import Attempts
from ._binding import ffi, lib
from ._checks import SendArgs, borrow, check_max_messages, check_priority, check_timeout
from ._errors import closed_error, not_pollable_error, operation_error, os_error, pickle_error
from ._names import QueueName, display_name, encode_name
from ._notify import Notifying
from ._open import adopt_descriptor, kept_on_detach_error, open_queue, unlink
from ._types import Buffer, Message, QueueAttributes

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["POLLABLE", "MessageQueue", "check_priority", "unlink"]

_CLOSED: Final = int(lib.APMQ_CLOSED)
_KEPT: Final = int(lib.APMQ_KEPT)
#: Whether the queue descriptor can be waited on with poll/select/epoll.
POLLABLE: Final = bool(lib.apmq_pollable())


class MessageQueue(Attempts, Notifying):
    """An open POSIX message queue, for blocking and nonblocking use.

    :param name: the queue's name, ``str`` or ``bytes``; ``"jobs"`` and
        ``"/jobs"`` are the same queue.  A ``str`` is encoded as
        :func:`os.fsencode` does (UTF-8, surrogate escapes for other bytes),
        so every name the library reports (:attr:`name`,
        :func:`list_queues`) can be given back.
    :param create: create the queue if it does not exist (``O_CREAT``).
    :param exclusive: fail with :class:`FileExistsError` if it exists
        (``O_EXCL``); needs *create*.  Queue names are shared by every user
        of the machine (of the IPC namespace), and ``create=True`` alone
        silently opens a queue that someone else created first, with that
        owner's permissions, capacity and message size: the owner can read
        what you send and feed you what you receive.  Create with
        ``exclusive=True`` and treat :class:`FileExistsError` as a name
        taken, so that the queue you use is the one you made with *mode*.
    :param read: open for receiving.
    :param write: open for sending.
    :param mode: permission bits of a created queue (``0o600``: only its owner).
    :param capacity: how many messages a created queue holds.
    :param max_message_size: the largest message a created queue takes.
        With only one of *capacity* and *max_message_size* given, the other
        is what the system gives a queue created without sizes (on Linux
        ``min(msg_default, msg_max)`` and ``min(msgsize_default,
        msgsize_max)``); with neither, the system defaults are used.
    :param nonblocking: open with ``O_NONBLOCK``: ``send``/``receive``
        without a timeout raise :class:`BlockingIOError` instead of waiting.
    :raises ValueError, TypeError: bad arguments, before any system call.
    :raises OSError: the queue cannot be opened; the message explains the
        limit behind EMFILE, EINVAL and ENOSPC.

    The queue is closed by :meth:`close`, at the end of a ``with`` block, or
    when garbage collected (with a :class:`ResourceWarning`).  A message
    that a receive took just before a signal handler's exception
    (:exc:`KeyboardInterrupt`) stopped it is never lost: the next receive of
    the same thread returns it, and closing puts it back in the queue or,
    when the queue stays full, raises :class:`PutBackError` holding it.  Any number of
    threads may use one object at once.  It cannot be pickled (nor passed to
    a spawned process): pass the name and open the queue again there.
    """

    __slots__ = (
        "__weakref__",
        "_capacity",
        "_many",
        "_max_message_size",
        "_name",
        "_q",
        "_spare",
    )

    def __init__(
        self,
        name: QueueName,
        *,
        create: bool = False,
        exclusive: bool = False,
        read: bool = True,
        write: bool = True,
        mode: int = 0o600,
        capacity: int | None = None,
        max_message_size: int | None = None,
        nonblocking: bool = False,
    ) -> None:
        # Set first: tracebacks and debuggers may repr a half-made object.
        self._q = None
        self._name = None
        raw = encode_name(name)
        q = open_queue(
            raw,
            create=create,
            exclusive=exclusive,
            read=read,
            write=write,
            mode=mode,
            capacity=capacity,
            max_message_size=max_message_size,
            nonblocking=nonblocking,
        )
        self._adopt(q, raw)

    def _adopt(self, q: Any, raw: bytes | None) -> None:
        self._q = ffi.gc(q, lib.apmq_free)
        self._name = raw
        attr = ffi.new("long[4]")
        if lib.apmq_getattr(q, attr) != 0:  # pragma: no cover - a fresh descriptor
            err = ffi.errno
            self.close()
            raise operation_error(err, self.name, operation="query")
        self._capacity = int(attr[1])
        self._max_message_size = int(attr[2])
        self._spare, self._many = deque(), deque()
        self._notify_key = 0

    @classmethod
    def from_fd(cls, fd: int, *, name: QueueName | None = None) -> MessageQueue:
        """Adopt the queue descriptor *fd*; the new object owns and closes it.

        The descriptor keeps its close-on-exec flag as it is.

        :param name: the queue's name, if known (for messages and :meth:`unlink`).
        :raises OSError: *fd* is not an open message queue, or this platform's
            queues are not descriptors (FreeBSD, illumos).
        """
        raw = None if name is None else encode_name(name)
        q = adopt_descriptor(fd, raw)
        self = cls.__new__(cls)
        self._adopt(q, raw)
        return self

    # -- properties ---------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many messages the queue holds at most."""
        return self._capacity

    @property
    def max_message_size(self) -> int:
        """The largest message, in bytes, the queue takes."""
        return self._max_message_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` (or :meth:`detach`) was called."""
        return self._q is None or bool(lib.apmq_closed(self._q))

    @property
    def nonblocking(self) -> bool:
        """Whether the open queue description has ``O_NONBLOCK`` set (live).

        Setting it calls ``mq_setattr(3)``; it is shared with :meth:`dup`'s copies.
        """
        return self.attributes().nonblocking

    @nonblocking.setter
    def nonblocking(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"nonblocking must be a bool, not {type(value).__name__}")
        rc = lib.apmq_set_nonblocking(self._q, value)
        if rc != 0:
            self._raise_query(rc, ffi.errno)

    def attributes(self) -> QueueAttributes:
        """The queue's attributes now (``mq_getattr(3)``)."""
        attr = ffi.new("long[4]")
        rc = lib.apmq_getattr(self._q, attr)
        if rc != 0:
            self._raise_query(rc, ffi.errno)
        return QueueAttributes(
            capacity=int(attr[1]),
            max_message_size=int(attr[2]),
            current_messages=int(attr[3]),
            nonblocking=bool(attr[0]),
        )

    def fileno(self) -> int:
        """The descriptor to poll for readiness.

        :raises OSError: (``ENOTSUP``) on a platform whose queues cannot be
            polled (NetBSD, illumos).
        """
        fd = lib.apmq_fileno(self._q)
        if fd < 0 or not POLLABLE:
            if fd == _CLOSED:
                raise closed_error()
            raise not_pollable_error(self.name)
        return int(fd)

    def get_inheritable(self) -> bool:
        """Whether the descriptor survives ``exec`` (it does not, unless set)."""
        return os.get_inheritable(self.fileno())

    def set_inheritable(self, inheritable: bool) -> None:
        """Let the descriptor survive ``exec`` in child processes, or not."""
        os.set_inheritable(self.fileno(), inheritable)

    # -- life cycle ---------------------------------------------------------

    def close(self) -> None:
        """Close the queue.

        Messages that receives of this thread took and never handed over (a
        signal handler's exception stopped them) go back in the queue,
        behind those of their priority.

        A thread blocked in this queue at that moment is not woken: it
        finishes its call on the same queue (taking the next message, or
        sending when there is room), and the descriptor is closed when the
        last call returns, so no thread ever acts on a reused descriptor number.

        :raises PutBackError: some of those messages found no room within
            :data:`~anyposixmq.PUT_BACK_TIMEOUT` seconds (or the queue cannot be
            written): they are in the exception, and the queue is closed
            all the same.  Calling ``close()`` again tries again.
        """
        self._forget_notification()
        if self._q is not None:
            self._close(False)

    def _close(self, all_threads: bool) -> None:
        rc = lib.apmq_close(self._q, all_threads)
        if rc == _KEPT:
            self._raise_kept(ffi.errno, all_threads)
        elif rc != 0:
            raise os_error(ffi.errno, self.name)

    def detach(self) -> int:
        """Give up the descriptor and return it; the object is closed, the queue is not.

        :raises BlockingIOError: messages that receives of this thread took
            and never handed over found no room to go back: nothing was
            detached, and the next receive returns them.
        """
        fd = lib.apmq_detach(self._q)
        if fd == _KEPT:
            raise kept_on_detach_error(self.name)
        if fd < 0:
            self._raise_query(fd, ffi.errno)
        return int(fd)

    def dup(self) -> MessageQueue:
        """A new, independently closed MessageQueue on the same open queue description."""
        fd = lib.apmq_dup(self._q)
        if fd < 0:
            self._raise_query(fd, ffi.errno)
        try:
            return MessageQueue.from_fd(fd, name=self._name)
        except BaseException:
            os.close(fd)
            raise

    def unlink(self) -> None:
        """Remove this queue's name (see :func:`unlink`); the object stays open."""
        if self._name is None:
            raise ValueError("this queue was adopted without a name: nothing to unlink")
        unlink(self._name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        q = getattr(self, "_q", None)
        if q is None:
            return
        if not lib.apmq_closed(q):
            self._forget_notification()
            try:
                warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            finally:  # even when warnings are errors
                self._close(True)
        elif lib.apmq_kept(q, True):
            # Closed, but messages are still held (for a thread that never
            # handed them over): nobody can now; put back or report them.
            self._close(True)

    def __reduce__(self) -> NoReturn:
        # Its state is a descriptor of this process: a copy elsewhere (pickle,
        # a spawned Process) could only be a lie.  dup() makes a real copy.
        raise pickle_error(self)

    def __repr__(self) -> str:
        # Any attribute may be missing: a KeyboardInterrupt can cut __init__ short.
        raw = getattr(self, "_name", None)
        name = None if raw is None else display_name(raw)
        state = "closed"
        if getattr(self, "_q", None) is not None and not self.closed:
            size = getattr(self, "_max_message_size", "?")
            state = f"capacity={getattr(self, '_capacity', '?')} max_message_size={size}"
        return f"<{type(self).__name__} name={name!r} {state}>"

    # -- sending ------------------------------------------------------------

    def send(
        self, data: Buffer | Message, priority: int | None = None, *, timeout: float | None = None
    ) -> None:
        """Send one message.

        :param data: the message: ``bytes`` or any contiguous bytes-like
            object, or a :class:`Message` (whose priority is used when
            *priority* is not given).
        :param priority: ``0`` (the default) to :data:`PRIORITY_MAX`; higher
            is received first.
        :param timeout: ``None`` waits as long as needed (or, on a
            nonblocking queue, raises :class:`BlockingIOError` when it is
            full); a number of seconds waits at most that long, on the
            monotonic clock, whatever the queue's blocking mode; ``0`` tries once.
        :raises TimeoutError: still full when *timeout* ran out.
        :raises BlockingIOError: full, on a nonblocking queue without timeout.
        :raises OSError: (``EMSGSIZE``) *data* is longer than :attr:`max_message_size`.
        :raises TypeError, ValueError: bad *data*, *priority* or *timeout*,
            before anything is sent.

        An exception that a signal handler raises just after the kernel took
        the message (:exc:`KeyboardInterrupt`) carries a note saying that the
        message was sent.
        """
        if timeout is None and type(data) is bytes:
            self._send_bytes(data, 0 if priority is None else check_priority(priority))
            return
        wait = None if timeout is None else check_timeout(timeout)
        with SendArgs(data, priority) as args:
            self._send(args, wait, timed=wait is not None)

    def send_nowait(self, data: Buffer | Message, priority: int | None = None) -> None:
        """Send one message if there is room now, whatever the blocking mode.

        :raises BlockingIOError: the queue is full.
        """
        with SendArgs(data, priority) as args:
            self._send(args, 0.0, timed=False)

    # -- receiving (each: one attempt, the hand-over, the clear last) --------

    def receive(self, *, timeout: float | None = None) -> Message:
        """Take the oldest message of the highest priority.

        :param timeout: as for :meth:`send`.
        :raises TimeoutError: still empty when *timeout* ran out.
        :raises BlockingIOError: empty, on a nonblocking queue without timeout.

        A message that a receive took just before a signal handler's
        exception (:exc:`KeyboardInterrupt`) stopped it is not lost: the next
        receive in the same thread returns it first, and :meth:`close` puts
        it back in the queue (or raises :class:`PutBackError` with it).
        """
        if timeout is None:
            n, entry = self._receive_plain()
        else:
            n, entry = self._receive_timed(check_timeout(timeout))
        msg = self._hand_over(n, entry)
        entry[0].taken = 0
        return msg

    def receive_nowait(self) -> Message:
        """Take a message if there is one now, whatever the blocking mode.

        :raises BlockingIOError: the queue is empty.
        """
        n, entry = self._receive_timed(0.0, timed=False)
        msg = self._hand_over(n, entry)
        entry[0].taken = 0
        return msg

    def receive_into(self, buffer: Buffer, *, timeout: float | None = None) -> tuple[int, int]:
        """Take a message into *buffer*; return ``(nbytes, priority)``.

        :param buffer: a writable contiguous buffer of at least
            :attr:`max_message_size` bytes.
        :param timeout: as for :meth:`send`.
        :raises ValueError: *buffer* is too small (checked before receiving,
            so no message is lost).
        """
        wait = None if timeout is None else check_timeout(timeout)
        with borrow(buffer, self._max_message_size, self.name) as view:
            n, entry = self._receive_failed(
                None, self._entry(), wait, timed=wait is not None, into=view
            )
        result = self._hand_over_into(n, entry)
        entry[0].taken = 0
        return result

    def receive_many(self, max_messages: int, *, timeout: float | None = None) -> list[Message]:
        """Wait for a message as :meth:`receive` does, then take all that are
        there, up to *max_messages*, in one call: the fast way to drain a busy queue.

        :param max_messages: how many messages at most (at least 1).
        :param timeout: as for :meth:`receive`.
        :returns: one to *max_messages* messages, in the order :meth:`receive`
            would have returned them.
        :raises TimeoutError: still empty when *timeout* ran out.
        :raises BlockingIOError: empty, on a nonblocking queue without timeout.
        :raises TypeError, ValueError: bad *max_messages* or *timeout*,
            before anything is taken.
        """
        count = check_max_messages(max_messages)
        wait = None if timeout is None else check_timeout(timeout)
        taken, entry = self._receive_many(count, wait)
        msgs = self._hand_over_many(taken, entry)
        entry[0].taken = 0
        return msgs

    def __iter__(self) -> Iterator[Message]:
        """Yield messages forever, waiting for each (whatever the blocking mode)."""
        while True:
            n, entry = self._receive_timed(math.inf)
            msg = self._hand_over(n, entry)
            entry[0].taken = 0
            yield msg

    def drain(self) -> Iterator[Message]:
        """Yield the messages there now; stop when the queue is empty."""
        while (got := self._receive_once(0.0)) is not None:
            msg = self._hand_over(*got)
            got[1][0].taken = 0
            yield msg
