"""What the two waiters share: the interface that AsyncMessageQueue sees, state
kept per event loop, and the count of the tasks that wait.

A waiter (:class:`~anyposixmq._poll.PollWaiter`,
:class:`~anyposixmq._threads.ThreadWaiter`) makes the nonblocking attempts
and the waits of one queue; :class:`~anyposixmq.AsyncMessageQueue` writes
each operation once on top of it.

anyio's locks and capacity limiters belong to the event loop that first uses
them, and one object may serve several loops one after another (a fixture
used under asyncio, then trio).  So a waiter keeps such state in
:func:`per_loop`: one entry per waiter in each running loop, held by an
:class:`anyio.lowlevel.RunVar` (which goes with its loop) through a weak
dictionary (whose entry goes with its waiter).

Waiting, though, happens in one loop at a time (:class:`Waits`).  Closing
must wake every waiting task before the descriptor goes, and a task can only
be woken from its own loop: :func:`anyio.notify_closing` reaches the loop
that calls it, and a cancel scope can only be cancelled from its own.  So a
task that would wait while tasks of another loop wait on the same object,
and an ``aclose()`` from another loop than theirs, raise RuntimeError
instead: one object per event loop at a time (open the queue again for
another loop).  Attempts that do not wait are not limited.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar
from weakref import WeakKeyDictionary

from anyio.lowlevel import RunVar

if TYPE_CHECKING:
    from ._checks import SendArgs
    from ._sync import MessageQueue
    from ._types import Buffer, Message

T = TypeVar("T")

_LOOP_STATE: RunVar[WeakKeyDictionary[object, Any]] = RunVar("anyposixmq waiter state")

_OTHER_LOOP = (
    "tasks of another event loop are waiting on this AsyncMessageQueue: an object "
    "serves one event loop at a time, since a waiting task can only be woken from its "
    "own loop. Open the queue again for each loop (or close it from the loop that waits)"
)


class LoopState(Generic[T]):
    """A waiter's primitives in one event loop: ``by_direction[0]`` for
    receiving, ``[1]`` for sending.  It lives as long as its loop does."""

    __slots__ = ("__weakref__", "by_direction")

    def __init__(self, receiving: T, sending: T) -> None:
        self.by_direction = (receiving, sending)


def per_loop(owner: object, make: Callable[[], LoopState[T]]) -> LoopState[T]:
    """*owner*'s state in the running event loop, made by *make* on first use there."""
    try:
        states = _LOOP_STATE.get()
    except LookupError:
        states = WeakKeyDictionary()
        _LOOP_STATE.set(states)
    try:
        state: LoopState[T] = states[owner]
    except KeyError:
        state = states[owner] = make()
    return state


class Waits:
    """The tasks waiting in one waiter now, by direction, and the loop they run in.

    A loop is known by the waiter's :class:`LoopState` in it, held weakly: the
    counts of a loop that has ended (whose tasks can wait no more, even if a
    KeyboardInterrupt kept one from counting itself out) are void.
    """

    __slots__ = ("_lock", "_loop", "receiving", "sending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: weakref.ref[LoopState[Any]] | None = None
        self.receiving = 0
        self.sending = 0

    def _other_loop_waits(self, loop: LoopState[Any]) -> bool:  # locked
        if not (self.receiving or self.sending) or self._loop is None:
            return False
        waiting = self._loop()
        if waiting is None:  # that loop has ended
            self.receiving = self.sending = 0
            return False
        return waiting is not loop

    def enter(self, loop: LoopState[Any], sending: bool) -> None:
        """A task of *loop* starts to wait; RuntimeError if another loop's tasks wait."""
        with self._lock:
            if self._other_loop_waits(loop):
                raise RuntimeError(_OTHER_LOOP)
            if self._loop is None or self._loop() is not loop:
                self._loop = weakref.ref(loop)
            if sending:
                self.sending += 1
            else:
                self.receiving += 1

    def leave(self, sending: bool) -> None:
        with self._lock:
            if sending:
                self.sending -= 1
            else:
                self.receiving -= 1

    def check_closer(self, loop: LoopState[Any]) -> None:
        """RuntimeError if tasks of another loop than *loop* wait (before closing)."""
        with self._lock:
            if self._other_loop_waits(loop):
                raise RuntimeError(_OTHER_LOOP)


class Waiter(Protocol):
    """One queue's attempts and waits, for one strategy.

    Each attempt raises :class:`anyio.ClosedResourceError` once
    :attr:`closed` is set, and otherwise tries once without blocking (None,
    False or ``[]`` when it would block).  A wait returns when an attempt may
    succeed; it raises ClosedResourceError when :meth:`aclose` runs meanwhile,
    and RuntimeError when tasks of another event loop wait (:class:`Waits`).
    """

    closed: bool
    mq: MessageQueue
    waits: Waits

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
        """Wake every waiter with ClosedResourceError, then close the queue.

        It closes even when cancelled.  :class:`~anyposixmq.PutBackError`
        when messages taken but never handed over could not go back.
        """
        ...

    def close_unwatched(self) -> None:
        """Close outside an event loop, when no task can be waiting (collected)."""
        ...
