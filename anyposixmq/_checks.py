"""Argument checks: what the public methods take, each rule written once.

Every check raises :class:`TypeError` or :class:`ValueError` before any
system call, and returns the value in the form the binding takes.  Integers
are taken the way Python's own APIs take them: an ``int`` or any type with
``__index__`` (numpy's integers, say), never a ``bool``.  The sync core, the
async layer and the command line all call these.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import TYPE_CHECKING, Any, Final

from ._binding import ffi
from ._limits import PRIORITY_MAX
from ._types import Buffer, Message

if TYPE_CHECKING:
    from typing_extensions import Self

_LONG_MAX: Final = 2 ** (8 * ffi.sizeof("long") - 1) - 1
INT_MAX: Final = 2 ** (8 * ffi.sizeof("int") - 1) - 1

# A view from ffi.from_buffer keeps the caller's object exported until it is
# freed, and one left in the traceback of an error we raise can live long:
# meanwhile a bytearray cannot be resized, and a memoryview that the cycle
# collector clears while exported crashes CPython when it is freed.  So every
# view is released as soon as its call returns or raises.
release: Final = ffi.release


def check_int(what: str, value: object, kind: str = "an int") -> int:
    """*value* as an int: an ``int`` or an integer-like (``__index__``), not a bool."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{what} must be {kind}, not {type(value).__name__}")
    return operator.index(value)  # type: ignore[arg-type]


def check_priority(priority: object) -> int:
    """*priority* as an int in ``0..PRIORITY_MAX``; TypeError or ValueError otherwise."""
    if type(priority) is int and 0 <= priority <= PRIORITY_MAX:
        return priority
    value = check_int("priority", priority)
    if not 0 <= value <= PRIORITY_MAX:
        raise ValueError(f"priority {value} is outside 0..{PRIORITY_MAX} (PRIORITY_MAX)")
    return value


def check_max_messages(max_messages: object) -> int:
    """*max_messages* for ``receive_many``: an int of at least 1."""
    value = check_int("max_messages", max_messages)
    if value < 1:
        raise ValueError(f"max_messages must be at least 1, not {value}")
    return value


def check_timeout(timeout: object) -> float:
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


def check_size(what: str, value: object) -> int | None:
    """*capacity* or *max_message_size*: None, or an int of at least 1."""
    if value is None:
        return None
    size = check_int(what, value, "an int or None")
    if size <= 0:
        raise ValueError(f"{what} must be at least 1, not {size}")
    if size > _LONG_MAX:
        # Past C long, cffi would raise OverflowError; no system takes it anyway.
        raise ValueError(f"{what} {size} is larger than any system allows")
    return size


def check_mode(mode: object) -> int:
    """Permission bits for a created queue."""
    value = check_int("mode", mode, "an int (permission bits)")
    if not 0 <= value <= 0o7777:
        raise ValueError(f"mode must be permission bits between 0 and 0o7777, not {value:#o}")
    return value


def check_fd(fd: object) -> int:
    """A descriptor number for ``MessageQueue.from_fd``."""
    value = check_int("fd", fd)
    if not 0 <= value <= INT_MAX:
        raise ValueError(f"fd must be a descriptor number >= 0, not {fd!r}")
    return value


def open_flags(*, create: bool, exclusive: bool, read: bool, write: bool, nonblocking: bool) -> int:
    """The ``oflag`` of ``mq_open`` for the constructor's flags."""
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


class SendArgs:
    """A message checked for sending: ``buf`` (the bytes, or a cffi view of the
    caller's buffer), ``size`` and ``priority``.

    Made before any system call: bad data or priority raise here.  Use it as
    a context manager: leaving the block releases the view, on return or on
    raise.  While the view lives the caller's buffer cannot be resized (a
    ``bytearray`` raises :class:`BufferError`), so ``size`` stays true for
    as long as a send may use ``buf``, across waits included.
    """

    __slots__ = ("buf", "priority", "size")

    def __init__(self, data: object, priority: object = None) -> None:
        if isinstance(data, Message):
            if priority is None:
                priority = data.priority
            data = data.data
        self.priority = 0 if priority is None else check_priority(priority)
        if isinstance(data, bytes):
            self.buf: Any = data
            self.size = len(data)
            return
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
        self.buf = view
        self.size = len(view)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if type(self.buf) is not bytes:
            release(self.buf)


class Borrowed:
    """A writable cffi view of a caller's buffer, released when the block ends."""

    __slots__ = ("view",)

    def __init__(self, view: Any) -> None:
        self.view = view

    def __enter__(self) -> Any:
        return self.view

    def __exit__(self, *exc_info: object) -> None:
        release(self.view)


def borrow(buffer: Buffer, max_message_size: int, name: str | None) -> Borrowed:
    """A view of *buffer* to receive into, released when the ``with`` block ends.

    Checked here, every time a receive is about to write: the kernel only
    receives into a buffer that can hold the largest message the queue
    accepts.  While the view lives, the caller cannot resize the buffer.
    """
    try:
        view = ffi.from_buffer("char[]", buffer, require_writable=True)
    except (TypeError, BufferError, ValueError) as exc:
        raise TypeError(
            f"receive_into() needs a writable contiguous buffer (bytearray, "
            f"memoryview, array...), not {type(buffer).__name__}: {exc}"
        ) from None
    if len(view) < max_message_size:
        size = len(view)
        release(view)
        raise ValueError(
            f"buffer of {size} bytes is smaller than the max_message_size of "
            f"{max_message_size} bytes of queue {name}: the kernel only "
            f"receives into a buffer that can hold the largest message the queue "
            f"accepts, whatever the size of the next one"
        )
    return Borrowed(view)
