"""What a user's type checker sees: checked, never run.

``mypy --strict`` (the ``typecheck`` session checks all of ``tests/``) and
pyright in strict mode (``pyright -p tests/typing``) both check this file.
``assert_type`` pins what calls return; each ``# type: ignore[arg-type]``
marks a call that must be rejected: both checkers report an ignore that is
not needed (mypy's ``warn_unused_ignores``, pyright's
``reportUnnecessaryTypeIgnoreComment``), so a signature that accepted it
again would fail the session.
"""

from __future__ import annotations

import array
import mmap

from typing_extensions import assert_type

import anyposixmq
from anyposixmq import AsyncMessageQueue, Message, MessageQueue, QueueAttributes


def sync_user(q: MessageQueue, scratch: mmap.mmap) -> None:
    # Any bytes-like object is a message; so is a Message.
    q.send(b"bytes")
    q.send(bytearray(b"bytearray"), 3)
    q.send(memoryview(b"view"), timeout=1.0)
    q.send(array.array("B", b"array"))
    q.send(scratch)
    q.send(Message(b"with its priority", 7))
    q.send_nowait(b"now")
    # Text and numbers are not.
    q.send("oops")  # type: ignore[arg-type]
    q.send(12)  # type: ignore[arg-type]
    q.send_nowait("oops")  # type: ignore[arg-type]
    q.receive_into("text")  # type: ignore[arg-type]

    assert_type(q.receive(), Message)
    assert_type(q.receive(timeout=0.5).data, bytes)
    assert_type(q.receive_nowait().priority, int)
    assert_type(q.receive_into(bytearray(q.max_message_size)), tuple[int, int])
    assert_type(q.attributes(), QueueAttributes)
    assert_type(q.name, str | None)
    for message in q.drain():
        assert_type(message, Message)
    assert_type(anyposixmq.limits(), anyposixmq.SystemLimits)
    assert_type(anyposixmq.list_queues(), list[str])
    assert_type(anyposixmq.PRIORITY_MAX, int)


async def async_user(q: AsyncMessageQueue) -> None:
    await q.send(b"bytes")
    await q.send(bytearray(b"bytearray"), 3)
    await q.send(Message(b"with its priority", 7))
    q.send_nowait(memoryview(b"now"))
    await q.send(12)  # type: ignore[arg-type]
    await q.send("oops")  # type: ignore[arg-type]
    q.send_nowait("oops")  # type: ignore[arg-type]

    assert_type(await q.receive(), Message)
    assert_type(await q.receive_into(bytearray(q.max_message_size)), tuple[int, int])
    assert_type(await q.receive_many(8), list[Message])
    assert_type(q.receive_nowait(), Message)
    async for message in q:
        assert_type(message, Message)
