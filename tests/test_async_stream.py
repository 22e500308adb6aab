"""The anyio conventions of a stream: typed attributes and statistics()."""

from __future__ import annotations

import anyio
import pytest
from _helpers import MakeAsyncQueue

from anyposixmq import QueueAttribute, QueueStatistics


@pytest.mark.anyio
async def test_typed_attributes(make_async_queue: MakeAsyncQueue, strategy: str) -> None:
    q = make_async_queue(capacity=3, max_message_size=64)
    assert q.extra(QueueAttribute.name) == q.name
    assert q.extra(QueueAttribute.capacity) == 3
    assert q.extra(QueueAttribute.max_message_size) == 64
    assert q.extra(QueueAttribute.strategy) == strategy
    assert q.extra(QueueAttribute.fileno) == q.fileno()
    await q.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        q.extra(QueueAttribute.fileno)


@pytest.mark.anyio
async def test_statistics_count_messages_and_waiting_tasks(
    make_async_queue: MakeAsyncQueue,
) -> None:
    q = make_async_queue(capacity=2)

    async def until(stats: QueueStatistics) -> None:
        with anyio.fail_after(10):
            while q.statistics() != stats:
                await anyio.sleep(0.001)

    assert q.statistics() == QueueStatistics(
        current_messages=0, capacity=2, tasks_waiting_send=0, tasks_waiting_receive=0
    )
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(q.receive)
        await until(QueueStatistics(0, 2, 0, 3))
        for i in range(3):
            await q.send(b"%d" % i)
    await until(QueueStatistics(0, 2, 0, 0))
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(q.send, b"%d" % i)
        await until(QueueStatistics(2, 2, 2, 0))
        for _ in range(4):
            await q.receive()
    assert q.statistics() == QueueStatistics(0, 2, 0, 0)
    await q.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        q.statistics()
