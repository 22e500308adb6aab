"""One AsyncMessageQueue and several event loops.

An object serves event loops one after another (tests/test_async_run.py).
Waiting is for one loop at a time: a task can only be woken from its own
loop, so while tasks of one loop wait, a task of another loop that would
wait, and an aclose() from another loop, raise RuntimeError and change
nothing; attempts that do not wait work from any loop.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from _helpers import MakeAsyncQueue

from anyposixmq import AsyncMessageQueue, Message

OTHER_LOOP = "another event loop"


async def _until(q: AsyncMessageQueue, *, receiving: int = 0, sending: int = 0) -> None:
    with anyio.fail_after(10):
        while True:
            stats = q.statistics()
            if (stats.tasks_waiting_receive, stats.tasks_waiting_send) == (receiving, sending):
                return
            await anyio.sleep(0.001)


def _in_another_loop(
    anyio_backend: tuple[str, dict[str, Any]], func: Any, out: list[Any]
) -> threading.Thread:
    backend, options = anyio_backend

    def run() -> None:
        try:
            out.append(anyio.run(func, backend=backend, backend_options=options))
        except BaseException as exc:  # reported by the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.anyio
async def test_waiting_in_two_loops_at_once_is_refused(
    make_async_queue: MakeAsyncQueue, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    q = make_async_queue(capacity=1)
    out: list[Any] = []
    thread = _in_another_loop(anyio_backend, q.receive, out)
    try:
        await _until(q, receiving=1)
        with pytest.raises(RuntimeError, match=OTHER_LOOP):
            await q.aclose()  # could not wake the other loop's task: refused
        with pytest.raises(RuntimeError, match=OTHER_LOOP):
            await q.receive()  # empty: it would wait beside the other loop's task
        assert not q._waiter.closed
        q.send_nowait(b"x")  # no wait: fine from any loop
    finally:
        thread.join(10)
    assert out == [Message(b"x", 0)]
    # Nobody waits now: this loop may wait, and close.
    await q.send(b"y")
    assert await q.receive() == (b"y", 0)
    await q.aclose()


@pytest.mark.anyio
async def test_a_loop_whose_tasks_wait_closes_the_object_for_them(
    make_async_queue: MakeAsyncQueue, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    """The loop of the waiting tasks closes: they are woken, and the object
    is closed for every loop."""
    q = make_async_queue()
    out: list[Any] = []

    async def wait_then_close() -> str:
        async with anyio.create_task_group() as tg:
            result: list[str] = []

            async def receive() -> None:
                try:
                    await q.receive()
                except anyio.ClosedResourceError:
                    result.append("woken")

            tg.start_soon(receive)
            await _until(q, receiving=1)
            await q.aclose()
        return result[0]

    thread = _in_another_loop(anyio_backend, wait_then_close, out)
    thread.join(20)
    assert out == ["woken"]
    with pytest.raises(anyio.ClosedResourceError):
        await q.receive()
