"""MessageQueue: the blocking and nonblocking core, the one place that talks to the kernel.

Every rule about arguments, names, buffers and errno lives here once;
:mod:`anyposixmq._async` adds only waiting and cancellation on top.

The seam: the async layer uses only these, and nothing else of this module
or of the binding.  Each makes at most one attempt (or, for ``_timed_*``,
one wait in C of at most *timeout* seconds), never changes the queue's
``O_NONBLOCK`` flag, may be called from any thread, and raises the errors
of the public methods (a closed queue: ``ValueError``):

- :class:`SendArgs` ``(data, priority)``: the checked message, made before
  any system call; a context manager that releases the caller's buffer on
  leaving, whether the block returns or raises.
- ``MessageQueue._try_send(args) -> bool``: False when the queue is full.
- ``MessageQueue._try_receive() -> Message | None``: None when empty.
- ``MessageQueue._try_receive_into(buffer) -> (nbytes, priority) | None``.
- ``MessageQueue._try_receive_many(max_messages) -> list[Message]``: empty
  when the queue is; memory for at most ``capacity`` messages.
- ``MessageQueue._check_receive_buffer(buffer)``: the checks of
  ``receive_into``, raised before anything is taken.
- ``MessageQueue._timed_send(args, timeout) -> bool`` and
  ``MessageQueue._timed_receive(timeout) -> Message | None``: wait at most
  *timeout* seconds in C (the thread strategy's slices); False/None when
  nothing happened (a signal included).
- :func:`copy_into` ``(buffer, message)``: a message (already received)
  written into a caller's buffer, as ``receive_into`` would have.
- :func:`check_max_messages` and :func:`check_priority`: argument checks
  shared with the async layer and the command line.
"""

from __future__ import annotations

import errno
import itertools
import math
import numbers
import operator
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._binding import ffi, lib
from ._errors import (
    Operation,
    adopt_error,
    closed_error,
    not_pollable_error,
    notification_busy_error,
    open_error,
    operation_error,
    os_error,
    pickle_error,
    unlink_error,
)
from ._limits import PRIORITY_MAX, default_sizes, limits
from ._names import QueueName, display_name, encode_name
from ._types import Buffer as Buffer  # the async layer takes it from here
from ._types import Message, QueueAttributes

if TYPE_CHECKING:
    from typing_extensions import Self

_PLAIN: Final = int(lib.APMQ_PLAIN)
_TRY: Final = int(lib.APMQ_TRY)
_TIMED: Final = int(lib.APMQ_TIMED)
_CLOSED: Final = int(lib.APMQ_CLOSED)
_BUSY: Final = int(lib.APMQ_BUSY)
#: Whether the queue descriptor can be waited on with poll/select/epoll.
POLLABLE: Final = bool(lib.apmq_pollable())

_EINTR: Final = errno.EINTR
_EAGAIN: Final = errno.EAGAIN

_LONG_MAX: Final = 2 ** (8 * ffi.sizeof("long") - 1) - 1
_INT_MAX: Final = 2 ** (8 * ffi.sizeof("int") - 1) - 1

_new_tuple = tuple.__new__
#: A receive entry: (receive block, view of its buffer).
_Entry = tuple[Any, Any]
# A view from ffi.from_buffer keeps the caller's object exported until it is
# freed, and one left in the traceback of an error we raise can live long:
# meanwhile a bytearray cannot be resized, and a memoryview that the cycle
# collector clears while exported crashes CPython when it is freed.  So every
# view is released as soon as its call returns or raises.
_release = ffi.release
_monotonic = time.monotonic
_unpack = ffi.unpack
_send_plain = lib.apmq_send_plain
_send_try = lib.apmq_send_try
_receive_plain = lib.apmq_receive_plain
_receive_try = lib.apmq_receive_try


def check_priority(priority: object) -> int:
    """*priority* as an int in ``0..PRIORITY_MAX``; TypeError or ValueError otherwise."""
    if type(priority) is int and 0 <= priority <= PRIORITY_MAX:
        return priority
    if isinstance(priority, bool) or not hasattr(priority, "__index__"):
        raise TypeError(f"priority must be an int, not {type(priority).__name__}")
    value = operator.index(priority)
    if not 0 <= value <= PRIORITY_MAX:
        raise ValueError(f"priority {value} is outside 0..{PRIORITY_MAX} (PRIORITY_MAX)")
    return value


def _send_args(data: object, priority: object) -> tuple[Any, int, int]:
    """Check what ``send`` was given; return (pointer or bytes, length, priority)."""
    if isinstance(data, Message):
        if priority is None:
            priority = data.priority
        data = data.data
    prio = 0 if priority is None else check_priority(priority)
    if isinstance(data, bytes):
        return data, len(data), prio
    if isinstance(data, str):
        raise TypeError(
            "a message is bytes, not str: encode it first, e.g. queue.send(text.encode())"
        )
    try:
        view = ffi.from_buffer("char[]", data)
    except (TypeError, BufferError, ValueError) as exc:
        raise TypeError(
            f"a message must be a contiguous bytes-like object (bytes, bytearray, "
            f"memoryview, array...), not {type(data).__name__}: {exc}"
        ) from None
    return view, len(view), prio


class SendArgs:
    """A message checked for sending: ``buf`` (the bytes, or a cffi view of the
    caller's buffer), ``size`` and ``priority``.

    Made before any system call: bad data or priority raise here.  Use it as
    a context manager: leaving the block releases the view, on return or on
    raise.  A view keeps the caller's object exported until it is freed, and
    one left in a traceback can live long: meanwhile a bytearray cannot be
    resized, and a memoryview that the cycle collector clears while exported
    crashes CPython when it is freed.
    """

    __slots__ = ("buf", "priority", "size")

    def __init__(self, data: object, priority: object = None) -> None:
        self.buf, self.size, self.priority = _send_args(data, priority)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if type(self.buf) is not bytes:
            _release(self.buf)


class _Borrowed:
    """A writable cffi view of a caller's buffer, released when the block ends."""

    __slots__ = ("view",)

    def __init__(self, view: Any) -> None:
        self.view = view

    def __enter__(self) -> Any:
        return self.view

    def __exit__(self, *exc_info: object) -> None:
        _release(self.view)


#: The PEP 678 note of an exception raised just after a send's C call returned
#: (CPython runs a pending signal handler then) when the kernel took the message.
SENT_NOTE: Final = "the message was sent: the queue took it before this exception was raised"


def _add_note_310(exc: BaseException, note: str) -> None:
    exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined,unused-ignore]


# BaseException.add_note is C: the note is on before any handler can run again.
_add_note: Final = getattr(BaseException, "add_note", _add_note_310)


#: What request_notification's registrations call, by key: a registration
#: that is cancelled, replaced or closed is dropped here, so that a late
#: notification thread finds nothing (and no freed object).
_notified: dict[int, Callable[[], object]] = {}
_notify_keys = itertools.count(1)


@ffi.def_extern()  # type: ignore[untyped-decorator]
def apmq_notified(key: int) -> None:
    """Run in mq_notify's new thread: the registration's callable, once."""
    notify = _notified.pop(key, None)
    if notify is not None:
        notify()


def check_max_messages(max_messages: object) -> int:
    """*max_messages* for ``receive_many``: an int of at least 1."""
    if isinstance(max_messages, bool) or not isinstance(max_messages, int):
        raise TypeError(f"max_messages must be an int, not {type(max_messages).__name__}")
    if max_messages < 1:
        raise ValueError(f"max_messages must be at least 1, not {max_messages}")
    return max_messages


def copy_into(buffer: Buffer, message: Message) -> tuple[int, int]:
    """Write *message* (already received) into *buffer*; return ``(nbytes, priority)``.

    *buffer* must have passed ``MessageQueue._check_receive_buffer``.
    """
    data = message.data
    with _Borrowed(ffi.from_buffer("char[]", buffer, require_writable=True)) as view:
        ffi.memmove(view, data, len(data))
    return len(data), message.priority


def _check_timeout(timeout: object) -> float:
    """A timeout in seconds: a real number >= 0 (``math.inf`` waits forever)."""
    if (type(timeout) is not float and type(timeout) is not int) and (
        isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
    ):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    seconds: Any = timeout
    try:
        value = float(seconds)
    except OverflowError:
        # An int past float's range: as good as forever (or hopelessly negative).
        value = -math.inf if seconds < 0 else math.inf
    if math.isnan(value) or value < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
    return value


def _check_size(what: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{what} must be at least 1, not {value}")
    if value > _LONG_MAX:
        # Past C long, cffi would raise OverflowError; no system takes it anyway.
        raise ValueError(f"{what} {value} is larger than any system allows")
    return value


def _default_sizes(name: str) -> tuple[int, int]:
    """The sizes a queue created without attributes gets on this system.

    *name* is the queue being created, for the error if the probe fails.
    """
    defaults = default_sizes(limits())
    if defaults is not None:
        return defaults
    # Not reported (not Linux): the system default is what the kernel gives
    # a queue created without attributes, so ask it with a scratch queue.
    raw = f"/anyposixmq-probe-{os.getpid()}-{time.monotonic_ns()}".encode()
    q = lib.apmq_open(raw, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600, 0, 0, 0)
    if q == ffi.NULL:
        # Also reached on Linux when /proc cannot be read for lack of
        # descriptors: explain it for the queue the caller named.
        raise open_error(ffi.errno, name, create=True, capacity=None, max_message_size=None)
    try:
        attr = ffi.new("long[4]")
        lib.apmq_getattr(q, attr)
        return int(attr[1]), int(attr[2])
    finally:
        lib.apmq_free(q)
        lib.apmq_unlink(raw)


def _open_flags(
    *, create: bool, exclusive: bool, read: bool, write: bool, nonblocking: bool
) -> int:
    if exclusive and not create:
        raise ValueError("exclusive=True needs create=True (O_EXCL only applies with O_CREAT)")
    if read and write:
        flags = os.O_RDWR
    elif read:
        flags = os.O_RDONLY
    elif write:
        flags = os.O_WRONLY
    else:
        raise ValueError("read and write cannot both be False: open for at least one")
    if create:
        flags |= os.O_CREAT
        if exclusive:
            flags |= os.O_EXCL
    if nonblocking:
        flags |= os.O_NONBLOCK
    return flags


def unlink(name: QueueName, *, missing_ok: bool = False) -> None:
    """Remove the queue *name*.

    Queues still open keep working; the name is free at once and the queue
    itself goes when its last descriptor is closed.

    :param missing_ok: do not raise when there is no such queue.
    :raises FileNotFoundError: there is no such queue (unless *missing_ok*).
    :raises ValueError: *name* is not a valid queue name.
    """
    raw = encode_name(name)
    if lib.apmq_unlink(raw) != 0:
        err = ffi.errno
        if err == errno.ENOENT and missing_ok:
            return
        raise unlink_error(err, display_name(raw))


class MessageQueue:
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
    when garbage collected (with a :class:`ResourceWarning`).  Any number of
    threads may use one object at once.  It cannot be pickled (nor passed to
    a spawned process): pass the name and open the queue again there.
    """

    __slots__ = (
        "__weakref__",
        "_capacity",
        "_many",
        "_max_message_size",
        "_name",
        "_notify_key",
        "_q",
        "_spare",
    )

    _q: Any
    _name: bytes | None
    _capacity: int
    _max_message_size: int
    _spare: list[_Entry]
    _many: list[tuple[Any, Any, int]]

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
        flags = _open_flags(
            create=create, exclusive=exclusive, read=read, write=write, nonblocking=nonblocking
        )
        if isinstance(mode, bool) or not isinstance(mode, int):
            raise TypeError(f"mode must be an int (permission bits), not {type(mode).__name__}")
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"mode must be permission bits between 0 and 0o7777, not {mode:#o}")
        cap = _check_size("capacity", capacity)
        size = _check_size("max_message_size", max_message_size)
        with_attr = create and (cap is not None or size is not None)
        if with_attr and (cap is None or size is None):
            default_cap, default_size = _default_sizes(display_name(raw))
            cap = default_cap if cap is None else cap
            size = default_size if size is None else size
        q = lib.apmq_open(raw, flags, mode, with_attr, cap or 0, size or 0)
        if q == ffi.NULL:
            raise open_error(
                ffi.errno,
                display_name(raw),
                create=create,
                capacity=cap if create else None,
                max_message_size=size if create else None,
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
        self._spare = []
        self._many = []
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
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        if not 0 <= fd <= _INT_MAX:
            raise ValueError(f"fd must be a descriptor number >= 0, not {fd!r}")
        q = lib.apmq_adopt(fd)
        if q == ffi.NULL:
            raise adopt_error(ffi.errno, fd, None if raw is None else display_name(raw))
        self = cls.__new__(cls)
        self._adopt(q, raw)
        return self

    # -- properties ---------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The queue's name with its leading slash (``None`` if adopted unnamed).

        Bytes that are not UTF-8 appear as surrogate escapes (``"/caf\\udce9"``),
        as :func:`os.fsdecode` shows them; the name opens the same queue again.
        """
        return None if self._name is None else display_name(self._name)

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
        """Close the queue; calling it again does nothing.

        A thread blocked in this queue at that moment is not woken: it
        finishes its call on the same queue (taking the next message, or
        sending when there is room), and the descriptor is closed when the
        last call returns, so no thread ever acts on a reused descriptor number.
        """
        _notified.pop(getattr(self, "_notify_key", 0), None)
        if self._q is not None and lib.apmq_close(self._q) != 0:
            raise os_error(ffi.errno, self.name)

    def detach(self) -> int:
        """Give up the descriptor and return it; the object is closed, the queue is not."""
        fd = lib.apmq_detach(self._q)
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
        if q is not None and not lib.apmq_closed(q):
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            lib.apmq_close(q)

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

    # -- errors -------------------------------------------------------------

    def _raise(
        self, rc: int, err: int, size: int = 0, receiving: bool = False, *, timed: bool = False
    ) -> Any:
        """Raise the exception for a failed call (rc < 0, errno *err*).

        *size* is a send's message length, *receiving* says a receive failed
        (neither: a send), and *timed* whether the caller gave a timeout
        (then "would block" is a TimeoutError, else a BlockingIOError).
        """
        if rc == _CLOSED:
            raise closed_error()
        operation: Operation = "receive" if receiving else "send"
        raise operation_error(
            err,
            self.name,
            operation=operation,
            timed=timed,
            size=size,
            max_message_size=self._max_message_size,
        )

    def _raise_query(self, rc: int, err: int) -> Any:
        """Raise the exception for a failed call that neither sends nor receives."""
        if rc == _CLOSED:
            raise closed_error()
        raise operation_error(err, self.name, operation="query")

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
            # The common cases in the fewest steps (see the benchmarks).
            prio = 0 if priority is None else check_priority(priority)
            size = len(data)
            try:
                rc = _send_plain(self._q, data, size, prio)
            except BaseException as exc:
                if lib.apmq_last_sent:
                    _add_note(exc, SENT_NOTE)
                raise
            if rc:
                self._send_slow(rc, data, size, prio, None, timeout_error=False)
            return
        wait = None if timeout is None else _check_timeout(timeout)
        with SendArgs(data, priority) as args:
            self._send_slow(
                None, args.buf, args.size, args.priority, wait, timeout_error=wait is not None
            )

    def send_nowait(self, data: Buffer | Message, priority: int | None = None) -> None:
        """Send one message if there is room now, whatever the blocking mode.

        :raises BlockingIOError: the queue is full.
        """
        with SendArgs(data, priority) as args:
            self._send_slow(None, args.buf, args.size, args.priority, 0.0, timeout_error=False)

    def _send_slow(
        self,
        rc: int | None,
        buf: Any,
        n: int,
        prio: int,
        timeout: float | None,
        *,
        timeout_error: bool,
    ) -> None:
        """Send (again) after EINTR or for a timed/one-try send; raise on failure."""
        mode, arg, deadline = _wait_args(timeout)
        q = self._q
        while True:
            if rc is None:
                try:
                    rc = lib.apmq_send(q, buf, n, prio, mode, arg)
                except BaseException as exc:
                    if lib.apmq_last_sent:
                        _add_note(exc, SENT_NOTE)
                    raise
                if rc == 0:
                    return
            err = ffi.errno
            if rc != _CLOSED and err == _EINTR:
                # PEP 475: the handler has run (its exception would have
                # propagated); try again with what is left of the timeout.
                rc = None
                if deadline is not None:
                    arg = max(0.0, deadline - _monotonic())
                continue
            self._raise(rc, err, n, timed=timeout_error)

    def _try_send(self, args: SendArgs) -> bool:
        """One attempt (the seam): True when sent, False when the queue is full."""
        return self._send_once(args, 0.0)

    def _timed_send(self, args: SendArgs, timeout: float) -> bool:
        """Send, waiting at most *timeout* s in C (the seam); False if still full."""
        return self._send_once(args, timeout)

    def _send_once(self, args: SendArgs, timeout: float) -> bool:
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

    # -- receiving ----------------------------------------------------------
    #
    # Every receive goes through a receive block (see _shim.h) that keeps
    # what the kernel handed over until the block's ``taken`` flag,
    # ``block.taken``, is cleared.  The clear is the last thing a receive does
    # before it returns, with no call after it: CPython runs signal handlers
    # only at calls and backward jumps, so an exception that one raises
    # either comes before the clear (the block still holds the message, and
    # the next receive of this thread returns it, or close() puts it back)
    # or not at all.

    def _buffers(self) -> _Entry:
        """(receive block, view of its buffer) for one call; give it back after."""
        try:
            return self._spare.pop()
        except IndexError:
            return self._new_buffers()

    def _new_buffers(self) -> _Entry:
        # Slicing the view, ``view[:n]``, is the cheapest way to the received bytes.
        block = self._new_block(1)
        return block, ffi.buffer(block.buf, block.stride)

    def _new_block(self, capacity: int) -> Any:
        size = self._max_message_size
        block = lib.apmq_block_new(self._q, size, capacity)
        if block == ffi.NULL:
            raise MemoryError(f"no memory for {capacity} messages of {size} bytes")
        return ffi.gc(block, lib.apmq_block_free)

    def receive(self, *, timeout: float | None = None) -> Message:
        """Take the oldest message of the highest priority.

        :param timeout: as for :meth:`send`.
        :raises TimeoutError: still empty when *timeout* ran out.
        :raises BlockingIOError: empty, on a nonblocking queue without timeout.

        A message that a receive took just before a signal handler's
        exception (:exc:`KeyboardInterrupt`) stopped it is not lost: the next
        receive in the same thread returns it first, and :meth:`close` puts
        it back in the queue.
        """
        if timeout is not None:
            timeout = _check_timeout(timeout)
        spare = self._spare
        try:
            entry = spare.pop()
        except IndexError:
            entry = self._new_buffers()
        block, view = entry
        if timeout is None:
            n = _receive_plain(block)
            if n < 0:
                n, entry = self._receive_slow(n, entry, None, timeout_error=False)
                block, view = entry
        else:
            n, entry = self._receive_slow(None, entry, timeout, timeout_error=True)
            block, view = entry
        msg = _new_tuple(Message, (view[:n], block.priority))
        spare.append(entry)
        block.taken = 0  # handed over: nothing after this may call
        return msg

    def receive_nowait(self) -> Message:
        """Take a message if there is one now, whatever the blocking mode.

        :raises BlockingIOError: the queue is empty.
        """
        n, entry = self._receive_slow(None, self._buffers(), 0.0, timeout_error=False)
        block, view = entry
        msg = _new_tuple(Message, (view[:n], block.priority))
        self._spare.append(entry)
        block.taken = 0
        return msg

    def _check_receive_buffer(self, buffer: Buffer) -> None:
        """Raise, before anything is taken, if *buffer* cannot take any message (the seam)."""
        with self._borrow(buffer):
            pass

    def _borrow(self, buffer: Buffer) -> _Borrowed:
        """A view of *buffer* for receiving, released when the block ends."""
        try:
            view = ffi.from_buffer("char[]", buffer, require_writable=True)
        except (TypeError, BufferError, ValueError) as exc:
            raise TypeError(
                f"receive_into() needs a writable contiguous buffer (bytearray, "
                f"memoryview, array...), not {type(buffer).__name__}: {exc}"
            ) from None
        if len(view) < self._max_message_size:
            size = len(view)
            _release(view)
            raise ValueError(
                f"buffer of {size} bytes is smaller than the max_message_size of "
                f"{self._max_message_size} bytes of queue {self.name}: the kernel only "
                f"receives into a buffer that can hold the largest message the queue "
                f"accepts, whatever the size of the next one"
            )
        return _Borrowed(view)

    def receive_into(self, buffer: Buffer, *, timeout: float | None = None) -> tuple[int, int]:
        """Take a message into *buffer*; return ``(nbytes, priority)``.

        :param buffer: a writable contiguous buffer of at least
            :attr:`max_message_size` bytes.
        :param timeout: as for :meth:`send`.
        :raises ValueError: *buffer* is too small (checked before receiving,
            so no message is lost).
        """
        wait = None if timeout is None else _check_timeout(timeout)
        with self._borrow(buffer) as view:
            n, entry = self._receive_slow(
                None, self._buffers(), wait, timeout_error=wait is not None, into=view
            )
        block = entry[0]
        result = (n, block.priority)
        self._spare.append(entry)
        block.taken = 0
        return result

    def _receive_slow(
        self,
        n: int | None,
        entry: _Entry,
        timeout: float | None,
        *,
        timeout_error: bool,
        into: Any = None,
    ) -> tuple[int, _Entry]:
        """Receive (again) after EINTR or for a timed/one-try receive; raise on failure.

        Returns the size and the entry that holds the message: another one
        than *entry* when that one still held another thread's message.
        """
        mode, arg, deadline = _wait_args(timeout)
        into_len = 0 if into is None else len(into)
        while True:
            if n is None or n == _BUSY:
                if n == _BUSY:
                    entry = self._new_buffers()
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
            self._raise(n, err, receiving=True, timed=timeout_error)

    def _receive_once(self, mode: int, timeout: float) -> tuple[int, _Entry] | None:
        """One receive call: (size, entry holding the message), None if none came.

        The caller hands the message over itself, as its last step: on
        Python 3.10 a handler can also run right after a Python call returns,
        in the caller, so the clear must be in the outermost frame.
        """
        entry = self._buffers()
        n = lib.apmq_receive(entry[0], ffi.NULL, 0, mode, timeout)
        if n == _BUSY:
            return self._receive_once(mode, timeout)
        if n < 0:
            self._spare.append(entry)  # unused: a new one each empty try cost ~1 us
            self._receive_none(n)
            return None
        return n, entry

    def _timed_receive(self, timeout: float) -> Message | None:
        """Wait at most *timeout* s in C for a message (the seam); None if none came."""
        if (got := self._receive_once(_TIMED, timeout)) is None:
            return None
        n, (block, view) = got
        msg = _new_tuple(Message, (view[:n], block.priority))
        self._spare.append(got[1])
        block.taken = 0
        return msg

    def _try_receive(self) -> Message | None:
        """One attempt (the seam): the message, or None when the queue is empty.

        The async layer's path, with the one-argument C call.
        """
        entry = self._buffers()
        block, view = entry
        n = _receive_try(block)
        if n < 0:
            if n == _BUSY:  # that block holds another thread's message: leave it
                return self._try_receive()
            self._spare.append(entry)
            self._receive_none(n)
            return None
        msg = _new_tuple(Message, (view[:n], block.priority))
        self._spare.append(entry)
        block.taken = 0
        return msg

    def _receive_none(self, n: int) -> None:
        err = ffi.errno
        if n != _CLOSED and err in (_EAGAIN, _EINTR):
            return
        self._raise(n, err, receiving=True)

    def _try_receive_into(self, buffer: Buffer) -> tuple[int, int] | None:
        """One attempt into *buffer*: ``(nbytes, priority)``, or None when empty."""
        with self._borrow(buffer) as view:
            entry = self._buffers()
            n = lib.apmq_receive(entry[0], view, len(view), _TRY, 0.0)
        if n == _BUSY:
            return self._try_receive_into(buffer)
        if n < 0:
            self._spare.append(entry)
            self._receive_none(n)
            return None
        block = entry[0]
        result = (n, block.priority)
        self._spare.append(entry)
        block.taken = 0
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
        wait = None if timeout is None else _check_timeout(timeout)
        mode, arg, deadline = _wait_args(wait)
        entry = self._many_entry(count)
        while True:
            taken = lib.apmq_receive_many(entry[0], min(count, entry[2]), mode, arg)
            if taken == _BUSY:
                entry = self._many_entry(count, fresh=True)
                continue
            if taken >= 0:
                break
            err = ffi.errno
            if taken != _CLOSED and err == _EINTR:
                if deadline is not None:
                    arg = max(0.0, deadline - _monotonic())
                continue
            self._many.append(entry)
            self._raise(taken, err, receiving=True, timed=wait is not None)
        block = entry[0]
        out = self._messages(entry, taken)
        self._many.append(entry)
        block.taken = 0
        return out

    def _try_receive_many(self, max_messages: int) -> list[Message]:
        """Take up to *max_messages* messages that are there now, in one call."""
        entry = self._many_entry(max_messages)
        taken = lib.apmq_receive_many(entry[0], min(max_messages, entry[2]), _TRY, 0.0)
        if taken == _BUSY:
            return self._try_receive_many(max_messages)
        if taken < 0:
            self._many.append(entry)
            self._receive_none(taken)
            return []
        block = entry[0]
        out = self._messages(entry, taken)
        self._many.append(entry)
        block.taken = 0
        return out

    def _many_entry(self, count: int, *, fresh: bool = False) -> tuple[Any, Any, int]:
        """(block, view of its buffer, capacity) for receive_many; give it back after."""
        # Never more than the queue holds: receive_many(10**6) needs no more.
        capacity = min(count, self._capacity)
        if not fresh and self._many:
            entry = self._many.pop()
            if entry[2] >= capacity:
                return entry
        block = self._new_block(capacity)
        return block, ffi.buffer(block.buf, block.stride * capacity), capacity

    def _messages(self, entry: tuple[Any, Any, int], taken: int) -> list[Message]:
        # Slices of one buffer view and two bulk unpacks: fewer cdata operations
        # per message than indexing the arrays and unpacking each message.
        block, view, _ = entry
        stride = block.stride
        return [
            _new_tuple(Message, (view[start : start + n], prio))
            for start, n, prio in zip(
                range(0, taken * stride, stride),
                _unpack(block.lengths, taken),
                _unpack(block.priorities, taken),
                strict=False,
            )
        ]

    # -- notification -------------------------------------------------------

    def request_notification(self, notify: Callable[[], object] | int | None) -> None:
        """Ask to be told when a message arrives in the empty queue (``mq_notify(3)``).

        :param notify: a callable, called without arguments in a new thread;
            a signal number, sent to this process (``SIGEV_SIGNAL``); or
            ``None`` to cancel this process's registration.
        :raises OSError: (``EBUSY``) another process (or another open queue
            description in this one) is registered for this queue.
        :raises TypeError, ValueError: bad *notify*, before any system call.

        The kernel's rules: one registration per queue; it is used up by the
        notification (ask again for the next one); it fires only when a
        message arrives in an *empty* queue, and not while another receive
        is blocked waiting (that one gets the message); closing the
        registering descriptor cancels it.
        """
        key = 0
        if notify is None:
            how, signo = lib.APMQ_NOTIFY_NONE, 0
        elif isinstance(notify, int) and not isinstance(notify, bool):
            if not 0 < notify < signal.NSIG:
                raise ValueError(f"{notify} is not a signal number (1..{signal.NSIG - 1})")
            how, signo = lib.APMQ_NOTIFY_SIGNAL, notify
        elif callable(notify):
            how, signo, key = lib.APMQ_NOTIFY_THREAD, 0, next(_notify_keys)
            _notified[key] = notify
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

    # -- iteration ----------------------------------------------------------

    def __iter__(self) -> Iterator[Message]:
        """Yield messages forever, waiting for each (whatever the blocking mode)."""
        while True:
            n, entry = self._receive_slow(None, self._buffers(), math.inf, timeout_error=True)
            block, view = entry
            msg = _new_tuple(Message, (view[:n], block.priority))
            self._spare.append(entry)
            block.taken = 0
            yield msg

    def drain(self) -> Iterator[Message]:
        """Yield the messages there now; stop when the queue is empty."""
        while (got := self._receive_once(_TRY, 0.0)) is not None:
            n, (block, view) = got
            msg = _new_tuple(Message, (view[:n], block.priority))
            self._spare.append(got[1])
            block.taken = 0
            yield msg


def _wait_args(timeout: float | None) -> tuple[int, float, float | None]:
    """(mode, timeout argument, monotonic deadline) for a call with *timeout*."""
    if timeout is None:
        return _PLAIN, 0.0, None
    if timeout == 0:
        return _TRY, 0.0, None
    if math.isinf(timeout):
        return _TIMED, -1.0, None
    return _TIMED, timeout, _monotonic() + timeout
