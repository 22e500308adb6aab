"""One look at every queue of this IPC namespace: what ``top``, ``metrics`` and ``doctor`` show.

Linux shows each queue as a file of the mqueue filesystem on ``/dev/mqueue``:
its owner and mode in ``stat(2)``, and one line of text such as
``QSIZE:129  NOTIFY:2  SIGNO:0  NOTIFY_PID:8260``.  ``QSIZE`` counts the
bytes of message data held, not messages; ``NOTIFY_PID`` is the process
registered with ``mq_notify`` (0: none).  The number of messages and the
capacity come from ``mq_getattr``, which needs the queue open: it is opened
for reading or, failing that, for writing (either serves, and neither takes a
message), then closed.  Reading the file needs the same permission as
opening the queue for reading, so a queue that may not be opened still shows
its owner and mode.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ._limits import MQUEUE_MOUNT, list_queues
from ._sync import MessageQueue

_FIELD = re.compile(rb"([A-Z_]+):(\d+)")


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue as seen now; ``None`` where it could not be read."""

    name: str
    uid: int
    mode: int
    #: Bytes of message data held (``QSIZE``).
    data_bytes: int | None
    #: The process registered with ``mq_notify``; 0 when none.
    notify_pid: int | None
    capacity: int | None
    max_message_size: int | None
    messages: int | None

    @property
    def owner(self) -> str:
        return owner_name(self.uid)

    @property
    def full(self) -> bool:
        return (
            self.capacity is not None
            and self.messages is not None
            and (self.messages >= self.capacity)
        )

    @property
    def fill(self) -> float | None:
        """``messages / capacity``, from 0 to 1."""
        if self.capacity is None or self.messages is None:
            return None
        return self.messages / self.capacity


@lru_cache(maxsize=256)
def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _attributes(name: str) -> tuple[int, int, int] | None:
    """(capacity, max_message_size, messages), or None when it may not be opened."""
    for access in ({"write": False}, {"read": False}):
        try:
            with MessageQueue(name, **access) as mq:
                attrs = mq.attributes()
        except PermissionError:
            continue
        return attrs.capacity, attrs.max_message_size, attrs.current_messages
    return None


def _status(path: bytes) -> dict[bytes, int]:
    try:
        with open(path, "rb") as file:
            return {key: int(value) for key, value in _FIELD.findall(file.read())}
    except PermissionError:
        return {}


def take(patterns: Sequence[str] = ()) -> list[QueueState]:
    """The queues whose names match one of *patterns* (shell patterns; all by
    default), sorted by name.

    :raises OSError: ``/dev/mqueue`` is not mounted (the message says how to mount it).
    """
    states = []
    for name in list_queues():
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        path = bytes(MQUEUE_MOUNT) + os.fsencode(name)
        try:
            info = os.stat(path)
            status = _status(path)
            attrs = _attributes(name)
        except FileNotFoundError:
            continue  # removed since the listing
        capacity, size, messages = attrs if attrs is not None else (None, None, None)
        states.append(
            QueueState(
                name=name,
                uid=info.st_uid,
                mode=info.st_mode & 0o7777,
                data_bytes=status.get(b"QSIZE"),
                notify_pid=status.get(b"NOTIFY_PID"),
                capacity=capacity,
                max_message_size=size,
                messages=messages,
            )
        )
    return states
