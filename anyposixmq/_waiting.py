"""What the two waiters share: the interface that AsyncMessageQueue sees, and
state kept per event loop.

A waiter (:class:`~anyposixmq._poll.PollWaiter`,
:class:`~anyposixmq._threads.ThreadWaiter`) makes the nonblocking attempts
and the waits of one queue; :class:`~anyposixmq.AsyncMessageQueue` writes
each operation once on top of it.

anyio's locks and capacity limiters belong to the event loop that first uses
them, and one object may serve several loops, one after another (a fixture
used under asyncio, then trio) or even at once in two threads.  So a waiter
keeps such state in :func:`per_loop`: one entry per waiter in each running
loop, held by an :class:`anyio.lowlevel.RunVar` (which goes with its loop)
through a weak dictionary (whose entry goes with its waiter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from weakref import WeakKeyDictionary

from anyio.lowlevel import RunVar

if TYPE_CHECKING:
    from ._sync import Buffer, MessageQueue, SendArgs
    from ._types import Message

T = TypeVar("T")

_LOOP_STATE: RunVar[WeakKeyDictionary[object, Any]] = RunVar("anyposixmq waiter state")


def per_loop(owner: object, make: Callable[[], T]) -> T:
    """*owner*'s state in the running event loop, made by *make* on first use there."""
    try:
        states = _LOOP_STATE.get()
    except LookupError:
        states = WeakKeyDictionary()
        _LOOP_STATE.set(states)
    try:
        state: T = states[owner]
    except KeyError:
        state = states[owner] = make()
    return state


class Waiter(Protocol):
    """One queue's attempts and waits, for one strategy.

    Each attempt raises :class:`anyio.ClosedResourceError` once
    :attr:`closed` is set, and otherwise tries once without blocking (None,
    False or ``[]`` when it would block).  A wait returns when an attempt may
    succeed; it raises ClosedResourceError when :meth:`aclose` runs meanwhile.
    """

    closed: bool
    mq: MessageQueue

    @property
    def strategy(self) -> Literal["poll", "thread"]: ...

    def send(self, args: SendArgs) -> bool: ...
    def receive(self) -> Message | None: ...
    def receive_into(self, buffer: Buffer) -> tuple[int, int] | None: ...
    def receive_many(self, max_messages: int) -> list[Message]: ...
    async def wait_readable(self) -> None: ...

    async def wait_writable(self, args: SendArgs) -> bool:
        """Wait for room to send *args*; True if the wait itself sent it."""
        ...

    async def aclose(self) -> None:
        """Wake every waiter with ClosedResourceError, then close the queue."""
        ...

    def close_unwatched(self) -> None:
        """Close outside an event loop, when no task can be waiting (collected)."""
        ...
