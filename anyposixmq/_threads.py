"""The ``thread`` waiter: waiting in worker threads, for queues that cannot be polled.

Facts that shape it:

- A worker that is abandoned (its task cancelled by anyio, or by plain
  asyncio, which anyio's shields do not stop) while it holds a received
  message would lose it.  So a receiving worker waits in the kernel in short
  timed slices (``_RECEIVE_SLICE``) and puts what it receives into the
  waiter's locked stash; the task takes from the stash after the ``await``,
  with no ``await`` in between, and every attempt takes from the stash first.
  Attempts and workers receive from the kernel under one lock: an attempt
  that finds a worker there gives way, rather than overtake the message the
  worker is receiving.
- A sending worker sends in slices too (``_SEND_SLICE``).  A cancelled send
  waits for the current slice to end, to know whether it sent: if it did,
  the send happened, and no cancellation may say otherwise.
- Closing cancels the waits and lets the workers finish their slice, then
  puts what the stash still holds back in the queue (behind the messages of
  its priority) and closes the descriptor.  The queue may be full: the
  put-back waits at most ``PUT_BACK_TIMEOUT`` for room, and what finds none
  is not dropped but raised in :class:`~anyposixmq.PutBackError`.
  ``aclose()`` waits for it (shielded, in a worker thread); a close that
  nobody awaits (a collected object, or the last worker after an
  ``aclose()`` that could not wait) runs it in a thread of its own that is
  not a daemon, so that the interpreter's exit waits for it, and an error
  reaches :func:`threading.excepthook`.
- The stash belongs to the process: a forked child starts with an empty one
  (its parent still has those messages), and with new locks.
- The workers run under capacity limiters of their own (one worker per
  direction), not anyio's default one shared with the whole program.  Like
  every anyio primitive they belong to one event loop: one pair per loop.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from anyio import ClosedResourceError

from ._checks import SendArgs, borrow
from ._errors import PutBackError, is_not_opened_for, put_back_error
from ._handover import PUT_BACK_TIMEOUT, copy_into
from ._sync import MessageQueue
from ._types import Buffer, Message
from ._waiting import LoopState, Waits, per_loop

T = TypeVar("T")

#: How long a receiving worker waits in the kernel before it looks whether its
#: task still wants the message (the window in which an abandoned worker can
#: still take one into the stash).
_RECEIVE_SLICE: Final = 0.02
#: The same for a sending worker.  A cancelled send waits for the current
#: slice to end (to know whether it sent), so this bounds that wait.
_SEND_SLICE: Final = 0.005

#: Every waiter of this process, for resetting them in a forked child.
_waiters: weakref.WeakSet[ThreadWaiter] = weakref.WeakSet()


def _limiters() -> LoopState[anyio.CapacityLimiter]:
    """(receiving, sending): one worker at a time in each direction."""
    return LoopState(anyio.CapacityLimiter(1), anyio.CapacityLimiter(1))


class _ReceiveOp:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


class _SendOp:
    """What a sending worker and its task share about one send."""

    __slots__ = ("cancelled", "cond", "in_slice", "sent")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.cancelled = False
        self.in_slice = False
        self.sent = False

    def settle(self) -> bool:
        """Stop the worker; return whether it sent (waits for its current slice)."""
        with self.cond:
            self.cancelled = True
            while self.in_slice:
                self.cond.wait()
            return self.sent


def put_back(mq: MessageQueue, messages: list[Message]) -> None:
    """Send *messages* (taken by abandoned workers) back to the queue.

    Waits at most ``PUT_BACK_TIMEOUT`` in all for room, through a write-only
    descriptor of the queue's name when *mq* was opened without write access;
    :class:`~anyposixmq.PutBackError` holds those that could not go back.
    Run in threads that no signal handler interrupts (never the main thread).
    """
    writer = mq
    deadline = time.monotonic() + PUT_BACK_TIMEOUT
    left = deque(messages)
    try:
        while left:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                if writer._timed_send(SendArgs(left[0]), remaining):
                    left.popleft()
                    continue
                err = errno.EAGAIN
            except OSError as exc:
                err = exc.errno or errno.EIO
                if is_not_opened_for(exc) and writer is mq and mq.name is not None:
                    try:
                        writer = MessageQueue(mq.name, read=False, write=True)
                        continue
                    except OSError as failed:
                        err = failed.errno or errno.EIO
            if remaining == 0 or err != errno.EAGAIN:
                raise put_back_error(err, mq.name, list(left), PUT_BACK_TIMEOUT)
    finally:
        if writer is not mq:
            writer.close()


class ThreadWaiter:
    """Attempts on *mq* (nonblocking, stash first) and waits in worker threads."""

    __slots__ = (
        "__weakref__",
        "_finalized",
        "_kernel",
        "_lock",
        "_scopes",
        "_stash",
        "_workers",
        "closed",
        "mq",
        "waits",
    )

    strategy: Final = "thread"

    def __init__(self, mq: MessageQueue) -> None:
        self.mq = mq
        self.closed = False
        self.waits = Waits()
        self._stash: list[Message] = []  # workers append, attempts take
        self._lock = threading.Lock()  # guards _workers, _finalized
        self._kernel = threading.Lock()  # held by whoever receives from the kernel
        self._workers = 0
        self._finalized = False
        self._scopes: set[anyio.CancelScope] = set()  # the waits aclose() cancels
        _waiters.add(self)

    def _forked(self) -> None:
        """In a forked child: the stash is the parent's, and no worker runs here."""
        self._stash.clear()
        self._lock = threading.Lock()
        self._kernel = threading.Lock()
        self._workers = 0
        self._scopes.clear()
        self.waits = Waits()

    # -- attempts -----------------------------------------------------------
    #
    # Taking from the stash ends with a removal that is no call (``del
    # stash[...]``), and a kernel attempt's hand-over (its clear) comes after
    # the kernel lock is released: no signal handler, and no other thread,
    # can run between the last change and the return (see _handover.py).

    def send(self, args: SendArgs) -> bool:
        if self.closed:
            raise ClosedResourceError
        return self.mq._try_send(args)

    def receive(self) -> Message | None:
        stash = self._stash
        if stash and not self.closed:
            msg = stash[0]
            del stash[0]
            return msg
        mq = self.mq
        if (got := self._attempt(mq._receive_try)) is None:
            return None
        msg = mq._hand_over(*got)
        got[1][0].taken = 0
        return msg

    def receive_into(self, buffer: Buffer) -> tuple[int, int] | None:
        mq = self.mq
        stash = self._stash
        if stash and not self.closed:
            # Checked again here: the buffer may have shrunk while we waited.
            # A buffer that no longer fits raises, and the message stays.
            result = copy_into(buffer, stash[0], mq.max_message_size, mq.name)
            del stash[0]
            return result
        with borrow(buffer, mq.max_message_size, mq.name) as view:
            got = self._attempt(partial(mq._receive_once, 0.0, view))
        if got is None:
            return None
        result = mq._hand_over_into(*got)
        got[1][0].taken = 0
        return result

    def receive_many(self, max_messages: int) -> list[Message]:
        stash = self._stash
        if stash and not self.closed:
            msgs = stash[:max_messages]
            del stash[:max_messages]
            return msgs
        mq = self.mq
        if (got := self._attempt(partial(mq._receive_many_try, max_messages))) is None:
            return []
        msgs = mq._hand_over_many(*got)
        got[1][0].taken = 0
        return msgs

    def _attempt(self, attempt: Callable[[], T | None]) -> T | None:
        """*attempt* (one try at the kernel, the message not yet handed over),
        unless a worker receives from the kernel: what it gets is older than
        anything the attempt could take, so the attempt gives way (None)."""
        if self.closed:
            raise ClosedResourceError
        if not self._kernel.acquire(blocking=False):
            return None
        try:
            if self._stash:  # a worker stashed one meanwhile: take that first
                return None
            return attempt()
        finally:
            self._kernel.release()

    # -- waits --------------------------------------------------------------

    async def wait_readable(self) -> None:
        op = _ReceiveOp()
        try:
            await self._in_worker(0, partial(self._receive_worker, op))
        finally:
            # The worker, if abandoned, stops at the end of its slice; what it
            # receives until then goes to the stash for the next receive.
            op.cancelled = True

    async def wait_writable(self, args: SendArgs) -> bool:
        op = _SendOp()
        try:
            await self._in_worker(1, partial(self._send_worker, op, args))
        except BaseException as exc:
            # The worker may be in the middle of a slice: wait for it (at most
            # _SEND_SLICE) to know whether the message went.  If it did, the
            # send happened, and a cancellation must not say otherwise.
            if op.settle() and isinstance(
                exc, (anyio.get_cancelled_exc_class(), ClosedResourceError)
            ):
                return True
            raise
        return op.settle()

    async def _in_worker(self, direction: int, work: Callable[[], object]) -> None:
        """Run *work* in a worker; aclose() cancels the wait with ClosedResourceError."""
        limiters = per_loop(self, _limiters)
        sending = bool(direction)
        self.waits.enter(limiters, sending)
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                await anyio.to_thread.run_sync(
                    work, abandon_on_cancel=True, limiter=limiters.by_direction[direction]
                )
                return
        finally:
            self._scopes.discard(scope)
            self.waits.leave(sending)
        raise ClosedResourceError

    # -- in the worker threads ----------------------------------------------

    def _receive_worker(self, op: _ReceiveOp) -> None:
        """Wait until the stash has a message, or we are told to stop."""
        if not self._enter_worker():
            return
        try:
            while not (op.cancelled or self.closed):
                if not self._kernel.acquire(timeout=_RECEIVE_SLICE):
                    continue
                try:
                    if self._stash:
                        return
                    msg = self.mq._timed_receive(_RECEIVE_SLICE)
                    if msg is not None:
                        # Whoever takes it next gets it: the task that sent us
                        # or, if that one gave up, the next receive.
                        self._stash.append(msg)
                        return
                finally:
                    self._kernel.release()
        finally:
            self._leave_worker()

    def _send_worker(self, op: _SendOp, args: SendArgs) -> None:
        """Send in slices until sent, or we are told to stop."""
        if not self._enter_worker():
            return
        try:
            while True:
                with op.cond:
                    if op.cancelled or self.closed:
                        return
                    op.in_slice = True
                sent = False
                try:
                    sent = self.mq._timed_send(args, _SEND_SLICE)
                finally:
                    with op.cond:
                        op.in_slice = False
                        op.sent = sent
                        op.cond.notify_all()
                if sent:
                    return
        finally:
            self._leave_worker()

    def _enter_worker(self) -> bool:
        with self._lock:
            if self.closed:
                return False
            self._workers += 1
            return True

    def _leave_worker(self) -> None:
        with self._lock:
            self._workers -= 1
            last = self.closed and self._workers == 0
        if last:
            self._finalize_unwatched()

    # -- closing ------------------------------------------------------------

    async def aclose(self) -> None:
        self.waits.check_closer(per_loop(self, _limiters))
        self.closed = True
        for scope in list(self._scopes):
            scope.cancel()
        # Shielded: it closes even when cancelled (and a cancelled aclose()
        # must not leave a put-back unfinished behind it).
        with anyio.CancelScope(shield=True):
            # Workers finish their slice (at most _RECEIVE_SLICE): wait for
            # them, so that the descriptor is closed when aclose() returns.
            for _ in range(math.ceil(10 * _RECEIVE_SLICE / 0.002)):
                if not self._busy():
                    break
                await anyio.sleep(0.002)
            else:
                return  # the last worker finalizes
            leftovers = self._leftovers()
            if leftovers is None:
                return
            if leftovers:
                await anyio.to_thread.run_sync(self._finalize, leftovers)
            else:
                self._finalize(leftovers)

    def close_unwatched(self) -> None:
        self.closed = True
        if not self._busy():  # else the last worker finalizes
            self._finalize_unwatched()

    def _busy(self) -> bool:
        with self._lock:
            return self._workers > 0

    def _leftovers(self) -> list[Message] | None:
        """What the stash still holds, taken out once (None: finalized already)."""
        with self._lock:
            if self._finalized:
                return None
            self._finalized = True
            leftovers = self._stash[:]
            del self._stash[:]
            return leftovers

    def _finalize_unwatched(self) -> None:
        """Finalize with nobody to await it: a put-back may wait for room, so it
        runs in a thread of its own that the interpreter's exit waits for."""
        leftovers = self._leftovers()
        if leftovers is None:
            return
        if not leftovers:
            self._finalize(leftovers)
            return
        name = f"anyposixmq put-back to {self.mq.name}"
        threading.Thread(target=self._finalize, args=(leftovers,), name=name).start()

    def _finalize(self, leftovers: list[Message]) -> None:
        """Put back *leftovers*, then close the descriptor (which puts back what
        the core kept); one PutBackError with whatever could not go back."""
        unsent: PutBackError | None = None
        try:
            if leftovers:
                put_back(self.mq, leftovers)
        except PutBackError as exc:
            unsent = exc
        try:
            self.mq.close()
        except PutBackError as exc:
            if unsent is None:
                raise
            unsent.messages += exc.messages
        if unsent is not None:
            raise unsent


def _forked() -> None:
    for waiter in list(_waiters):
        waiter._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
