"""Opening a queue by name or descriptor, and removing a name.

The constructor's arguments are checked here (with :mod:`anyposixmq._checks`)
before ``mq_open`` is called; a failure is explained by
:func:`anyposixmq._errors.open_error`.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

from ._binding import ffi, lib
from ._checks import check_fd, check_mode, check_size, open_flags
from ._errors import adopt_error, open_error, os_error, unlink_error
from ._limits import default_sizes, limits
from ._names import QueueName, display_name, encode_name


def open_queue(
    raw: bytes,
    *,
    create: bool,
    exclusive: bool,
    read: bool,
    write: bool,
    mode: object,
    capacity: object,
    max_message_size: object,
    nonblocking: bool,
) -> Any:
    """``mq_open`` the queue *raw* (an encoded name) as the constructor asks: the
    binding's queue, or an exception that explains the failure."""
    flags = open_flags(
        create=create, exclusive=exclusive, read=read, write=write, nonblocking=nonblocking
    )
    bits = check_mode(mode)
    cap = check_size("capacity", capacity)
    size = check_size("max_message_size", max_message_size)
    with_attr = create and (cap is not None or size is not None)
    if with_attr and (cap is None or size is None):
        default_cap, default_size = _default_sizes(display_name(raw))
        cap = default_cap if cap is None else cap
        size = default_size if size is None else size
    q = lib.apmq_open(raw, flags, bits, with_attr, cap or 0, size or 0)
    if q == ffi.NULL:
        raise open_error(
            ffi.errno,
            display_name(raw),
            create=create,
            capacity=cap if create else None,
            max_message_size=size if create else None,
        )
    return q


def adopt_descriptor(fd: object, raw: bytes | None) -> Any:
    """The binding's queue for the open queue descriptor *fd*."""
    number = check_fd(fd)
    q = lib.apmq_adopt(number)
    if q == ffi.NULL:
        raise adopt_error(ffi.errno, number, None if raw is None else display_name(raw))
    return q


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


def kept_on_detach_error(name: str | None) -> OSError:
    """``detach()`` refused: held messages of this thread found no room to go back."""
    return os_error(
        errno.EAGAIN,
        name,
        "cannot detach: messages this thread took and never handed over could not "
        "be put back (the queue stayed full); receive them first",
    )


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
