"""Integers are taken the way Python's own APIs take them: an ``int`` or any
type with ``__index__`` (numpy's integers among them), never a ``bool``."""

from __future__ import annotations

import os
from typing import Any

import pytest
from _helpers import Index, MakeAsyncQueue

from anyposixmq import Message, MessageQueue


def test_integer_likes_are_taken_everywhere(queue_name: str) -> None:
    i: Any = Index
    with MessageQueue(
        queue_name, create=True, capacity=i(3), max_message_size=i(64), mode=i(0o600)
    ) as mq:
        assert (mq.capacity, mq.max_message_size) == (3, 64)
        mq.send(b"x", i(2))
        assert mq.receive_many(i(5)) == [Message(b"x", 2)]
        fd = os.dup(mq.fileno())
        MessageQueue.from_fd(i(fd)).close()


@pytest.mark.parametrize(
    "kwargs",
    [{"capacity": True}, {"max_message_size": False}, {"mode": True}],
)
def test_bools_are_not_integers_here(queue_name: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        MessageQueue(queue_name, create=True, **kwargs)


def test_numpy_integers(queue_name: str) -> None:
    np = pytest.importorskip("numpy")
    with MessageQueue(
        queue_name, create=True, capacity=np.int64(2), max_message_size=np.int32(32)
    ) as mq:
        mq.send(b"x", np.uint8(1))
        assert mq.receive_many(np.int64(2), timeout=np.float64(1)) == [(b"x", 1)]


@pytest.mark.anyio
async def test_async_receive_many_takes_integer_likes(make_async_queue: MakeAsyncQueue) -> None:
    q = make_async_queue()
    await q.send(b"x")
    assert await q.receive_many(Index(3)) == [Message(b"x", 0)]  # type: ignore[arg-type]
