"""The small value types users meet: Message and QueueAttributes, and Buffer."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

# Buffer: anything that gives its bytes through the buffer protocol (bytes,
# bytearray, memoryview, array, mmap...), so that type checkers reject a str
# or an int where a message is expected.  Contiguity is checked at run time.
if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    from typing_extensions import Buffer

__all__ = ["Buffer", "Message", "QueueAttributes", "QueueStatistics"]


class Message(NamedTuple):
    """A message taken from (or to be put on) a queue.

    A plain named tuple, so ``data, priority = queue.receive()`` works.  Pass
    one to :meth:`MessageQueue.send` to send it with its own priority.
    """

    #: The message's bytes.
    data: bytes
    #: Its priority: higher priorities are received first, FIFO within one.
    priority: int


@dataclass(frozen=True, slots=True)
class QueueAttributes:
    """A queue's attributes, as ``mq_getattr(3)`` reports them at one moment."""

    #: How many messages the queue holds at most (``mq_maxmsg``).
    capacity: int
    #: The largest message it takes, in bytes (``mq_msgsize``).
    max_message_size: int
    #: How many messages it holds now (``mq_curmsgs``).
    current_messages: int
    #: Whether this open queue description has ``O_NONBLOCK`` set.
    nonblocking: bool


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """What :meth:`AsyncMessageQueue.statistics` reports at one moment.

    .. versionadded:: 0.1
    """

    #: How many messages the queue holds now (``mq_curmsgs``).
    current_messages: int
    #: How many it holds at most.
    capacity: int
    #: Tasks of this object waiting for room to send.
    tasks_waiting_send: int
    #: Tasks of this object waiting for a message.
    tasks_waiting_receive: int
