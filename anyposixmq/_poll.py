"""The ``poll`` waiter: readiness of the queue's descriptor, in the event loop.

Facts that shape it (anyio 4.16, trio 0.35, uvloop 0.23):

- :func:`anyio.wait_readable` and :func:`anyio.wait_writable` take the raw
  descriptor on every backend, and register it only for the one wait: no
  callback stays on the descriptor between waits, so nothing can outlive it
  on a number that the next open file reuses, and a user who waits on
  ``fileno()`` between our waits breaks nothing.
- Only one task may wait on a descriptor in each direction (a second one gets
  :class:`anyio.BusyResourceError`): the waiters of one direction take turns
  through an :class:`anyio.Lock`, one per direction and per event loop.
- :func:`anyio.notify_closing` wakes the waiters with
  :class:`anyio.ClosedResourceError`; closing without it leaves them hanging.
  So closing is: mark closed, notify, close, with no checkpoint in between.
  A task still queued for the lock sees the mark once it has the lock.
  ``notify_closing`` reaches the tasks of the loop that calls it: waiting
  is for one loop at a time (:class:`~anyposixmq._waiting.Waits`).
- Linux: an empty queue polls writable only, a full one readable only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import anyio
from anyio import ClosedResourceError

from ._checks import SendArgs
from ._sync import MessageQueue
from ._types import Buffer, Message
from ._waiting import LoopState, Waits, per_loop


def _turns() -> LoopState[anyio.Lock]:
    """(readers, writers): the locks the waiters of one direction take turns with."""
    return LoopState(anyio.Lock(fast_acquire=True), anyio.Lock(fast_acquire=True))


class PollWaiter:
    """Attempts on *mq* (nonblocking) and waits on its descriptor."""

    __slots__ = ("__weakref__", "closed", "fd", "mq", "waits")

    strategy: Final = "poll"

    def __init__(self, mq: MessageQueue) -> None:
        self.mq = mq
        self.fd = mq.fileno()
        self.closed = False
        self.waits = Waits()

    def send(self, args: SendArgs) -> bool:
        if self.closed:
            raise ClosedResourceError
        return self.mq._try_send(args)

    def receive(self) -> Message | None:
        if self.closed:
            raise ClosedResourceError
        return self.mq._try_receive()

    def receive_into(self, buffer: Buffer) -> tuple[int, int] | None:
        if self.closed:
            raise ClosedResourceError
        return self.mq._try_receive_into(buffer)

    def receive_many(self, max_messages: int) -> list[Message]:
        if self.closed:
            raise ClosedResourceError
        return self.mq._try_receive_many(max_messages)

    async def wait_readable(self) -> None:
        await self._wait(0, anyio.wait_readable)

    async def wait_writable(self, args: SendArgs) -> bool:
        await self._wait(1, anyio.wait_writable)
        return False

    async def _wait(self, direction: int, wait: Callable[[int], Awaitable[None]]) -> None:
        turns = per_loop(self, _turns)
        self.waits.enter(turns, bool(direction))
        try:
            turn = turns.by_direction[direction]
            try:
                # Our callers made a checkpoint already: the lock need not.
                turn.acquire_nowait()
            except anyio.WouldBlock:
                await turn.acquire()
            try:
                if self.closed:  # aclose() ran while we queued for our turn
                    raise ClosedResourceError
                await wait(self.fd)
            finally:
                turn.release()
        finally:
            self.waits.leave(bool(direction))

    async def aclose(self) -> None:
        # No checkpoint: it closes even when cancelled.
        self.waits.check_closer(per_loop(self, _turns))
        self.closed = True
        anyio.notify_closing(self.fd)
        self.mq.close()

    def close_unwatched(self) -> None:
        self.closed = True
        self.mq.close()
