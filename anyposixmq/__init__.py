"""POSIX message queues for Python: blocking, nonblocking, and async on anyio.

``MessageQueue`` is the blocking/nonblocking core; ``AsyncMessageQueue`` the
cancel-safe async layer for trio, asyncio and asyncio+uvloop.
"""

from __future__ import annotations

from ._async import AsyncMessageQueue
from ._limits import PRIORITY_MAX, SystemLimits, limits, list_queues
from ._sync import MessageQueue, unlink
from ._types import Message, QueueAttributes

__version__ = "0.1.0"

__all__ = [
    "PRIORITY_MAX",
    "AsyncMessageQueue",
    "Message",
    "MessageQueue",
    "QueueAttributes",
    "SystemLimits",
    "limits",
    "list_queues",
    "unlink",
]
