"""POSIX message queues for Python: blocking, nonblocking, and async on anyio.

``MessageQueue`` is the blocking/nonblocking core; ``AsyncMessageQueue`` the
cancel-safe async layer for trio, asyncio and asyncio+uvloop.
"""

from __future__ import annotations

from ._async import AsyncMessageQueue, QueueAttribute
from ._errors import PutBackError
from ._handover import PUT_BACK_TIMEOUT
from ._limits import PRIORITY_MAX, SystemLimits, limits, list_queues
from ._open import unlink
from ._sync import MessageQueue
from ._types import Message, QueueAttributes, QueueStatistics

__version__ = "0.1.0"

__all__ = [
    "PRIORITY_MAX",
    "PUT_BACK_TIMEOUT",
    "AsyncMessageQueue",
    "Message",
    "MessageQueue",
    "PutBackError",
    "QueueAttribute",
    "QueueAttributes",
    "QueueStatistics",
    "SystemLimits",
    "limits",
    "list_queues",
    "unlink",
]
