"""AsyncMessageQueue: the cancel-safe anyio layer (trio, asyncio, asyncio+uvloop).

Everything about the kernel (arguments, buffers, errno) stays in
:mod:`anyposixmq._sync`; this module only adds waiting and cancellation on top
of the core's one-attempt ``_try_*`` calls.

The order of every operation is anyio's own (``UNIXDatagramSocket.receive``,
``MemoryObjectReceiveStream``): a checkpoint first, then the nonblocking
attempt, waiting only when it would block, and never an ``await`` between a
successful attempt and the return.  Cancellation is therefore only ever
delivered while nothing has happened yet, under anyio cancel scopes and plain
asyncio cancellation alike.

Two ways to wait:

``poll``
    Readiness of the queue's descriptor: ``trio.lowlevel.wait_readable``/
    ``wait_writable`` on trio; on asyncio, a reader/writer callback that stays
    registered between waits (:class:`_Watch`).  Only one task may wait on a
    descriptor in each direction, so waiters of one direction take turns
    through an :class:`anyio.Lock`.
``thread``
    For platforms whose descriptor cannot be polled.  A worker thread waits in
    short C-level timed slices.  A receiving worker puts what it got into a
    locked per-queue stash that the task takes from after the ``await``
    (later receives take from the stash first), so a worker whose task was
    cancelled never loses a message.  A sending worker that is told to stop
    finishes its current slice first, and the task learns whether it sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import math
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, TypeVar

import anyio
import anyio.lowlevel
from anyio import ClosedResourceError, WouldBlock
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ._errors import pickle_error
from ._names import QueueName
from ._sync import POLLABLE, Buffer, MessageQueue, SendArgs, check_max_messages, copy_into
from ._types import Message, QueueAttributes

__all__ = ["AsyncMessageQueue"]

T = TypeVar("T")
Strategy = Literal["auto", "poll", "thread"]

#: How long a receiving worker waits in the kernel before it looks whether its
#: task still wants the message (the window in which an abandoned worker can
#: still take one into the stash).
_RECEIVE_SLICE: Final = 0.02
#: The same for a sending worker.  A cancelled send waits for the current
#: slice to end (to know whether it sent), so this bounds that wait.
_SEND_SLICE: Final = 0.005
#: How long closing waits for room in a full queue to put back a message that
#: a worker received after its task gave up (see ``_finalize``).
_PUT_BACK_TIMEOUT: Final = 5.0


try:
    # Trio depends on sniffio and names itself there while its tasks run: in
    # sniffio's thread-local (recent trio, guest mode included) or in its
    # context variable (older trio).
    from sniffio import current_async_library_cvar as _sniffio_cvar
    from sniffio import thread_local as _sniffio_local
except ImportError:  # pragma: no cover - no sniffio, so no trio: asyncio it is
    _sniffio_local = types.SimpleNamespace(name=None)  # type: ignore[assignment]
    _sniffio_cvar = contextvars.ContextVar("no_sniffio", default=None)

_trio_checkpoint: Callable[[], Awaitable[None]] | None = None


@types.coroutine
def _asyncio_checkpoint() -> Any:
    """``asyncio.sleep(0)`` without its coroutine: the bare yield it awaits.

    The task is rescheduled behind every other ready callback, and a pending
    cancellation is thrown in when it resumes: the same checkpoint.
    """
    yield


def _load_trio_checkpoint() -> Callable[[], Awaitable[None]]:
    global _trio_checkpoint
    _trio_checkpoint = sys.modules["trio"].lowlevel.checkpoint
    return _trio_checkpoint


def _on_trio() -> bool:
    """Whether the running task is trio's (anyio's only other backend is asyncio)."""
    return _sniffio_local.name == "trio" or _sniffio_cvar.get() == "trio"


def checkpoint() -> Awaitable[None]:
    """:func:`anyio.lowlevel.checkpoint`, without its per-call backend lookup.

    The same checkpoint anyio uses (``trio.lowlevel.checkpoint`` on trio,
    ``asyncio.sleep(0)`` on asyncio), picked with one cheap test: on a queue
    consumer it is most of the cost of a message.  Trio names itself in
    sniffio while its tasks run; anyio has only one other backend, asyncio,
    so there is no need to ask asyncio for its running loop (a ``getpid()``
    system call each time on 3.11).
    """
    if _on_trio():
        return (_trio_checkpoint or _load_trio_checkpoint())()
    return _asyncio_checkpoint()


class _Watch:
    """An asyncio reader or writer callback on the queue's descriptor that
    outlives one wait.

    Adding and removing a callback costs two ``epoll_ctl`` calls and the
    loop's bookkeeping, and a queue that runs empty after each message
    (request and reply) waits once a message: so the callback stays between
    waits.  Readiness is level-triggered, so a callback left while messages
    are taken without waiting would run on every loop iteration: it removes
    itself when it fires twice in a row with nobody waiting (once may be a
    readiness already consumed by the task it just woke).  aclose() removes it.
    """

    __slots__ = ("active", "fd", "idle", "loop", "remove", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, writing: bool) -> None:
        self.loop = loop
        self.fd = fd
        self.waiter: asyncio.Future[bool] | None = None
        self.idle = False
        if writing:
            add, self.remove = loop.add_writer, loop.remove_writer
        else:
            add, self.remove = loop.add_reader, loop.remove_reader
        add(fd, self._fire)  # NotImplementedError where the loop cannot
        self.active = True

    def _fire(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.idle = False
            if not waiter.done():
                waiter.set_result(True)
        elif self.idle:
            self.stop()
        else:
            self.idle = True

    def stop(self) -> None:
        if self.active:
            self.active = False
            if not self.loop.is_closed():
                self.remove(self.fd)


def _stop_watches(watches: list[_Watch | None]) -> None:
    """Remove the callbacks of an object collected without aclose()."""
    for watch in watches:
        if watch is None or not watch.active:
            continue
        loop = watch.loop
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here or not loop.is_running():
            watch.stop()
        else:  # collected in another thread: best effort
            loop.call_soon_threadsafe(watch.stop)


def _pick_strategy(strategy: object) -> bool:
    """True for ``poll``, False for ``thread``."""
    if strategy == "auto":
        return POLLABLE
    if strategy == "poll":
        if not POLLABLE:
            raise ValueError(
                'strategy="poll" needs a pollable queue descriptor, which this platform '
                'does not have: use strategy="thread" or "auto"'
            )
        return True
    if strategy == "thread":
        return False
    raise ValueError(f'strategy must be "auto", "poll" or "thread", not {strategy!r}')


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


class _ReceiveOp:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


def _put_back(mq: MessageQueue, messages: list[Message], timeout: float) -> None:
    """Send *messages* (taken by abandoned workers) back to the queue, best effort."""
    writer = mq
    try:
        for msg in messages:
            try:
                writer._timed_send(SendArgs(msg), timeout)
            except OSError as exc:
                if exc.errno != errno.EBADF or writer is not mq or mq.name is None:
                    raise
                # Opened read-only: a write-only descriptor of our own, if allowed.
                writer = MessageQueue(mq.name, read=False, write=True)
                writer._timed_send(SendArgs(msg), timeout)
    except OSError:
        pass  # still full, unlinked, or forbidden: nothing better can be done
    finally:
        if writer is not mq:
            writer.close()


class AsyncMessageQueue(ObjectReceiveStream[Message], ObjectSendStream[Any]):
    """An open POSIX message queue for trio, asyncio and asyncio+uvloop (through anyio).

    The arguments are those of :class:`~anyposixmq.MessageQueue` (without
    *nonblocking*: this object always opens its own ``O_NONBLOCK``
    descriptor), plus:

    :param strategy: how to wait: ``"poll"`` watches the descriptor in the
        event loop (Linux, FreeBSD, DragonFly); ``"thread"`` waits in worker threads (any
        platform); ``"auto"`` picks ``"poll"`` where the platform can.
    :raises ValueError: an unknown *strategy*, or ``"poll"`` where the
        descriptor cannot be polled; the errors of :class:`MessageQueue`.

    It is an :class:`anyio.abc.ObjectReceiveStream` of :class:`Message` and an
    :class:`anyio.abc.ObjectSendStream` of bytes-like objects or messages.
    Any number of tasks may send and receive on one object at once.  There
    are no timeout arguments: use cancel scopes (:func:`anyio.fail_after`,
    :func:`anyio.move_on_after`, :func:`trio.fail_after`, :func:`asyncio.timeout`).

    Every :meth:`send` and :meth:`receive` is a checkpoint, and cancelling one
    means it did not happen: a cancelled receive left the message in the
    queue, a cancelled send did not send.  This holds for anyio and trio
    cancel scopes and for plain asyncio cancellation (``Task.cancel``,
    :func:`asyncio.wait_for`, :func:`asyncio.timeout`).

    Under the ``thread`` strategy, the worker of a cancelled receive may
    still take a message during its last wait slice (20 ms): it keeps it for
    the next receive of this object, and :meth:`aclose` puts such a message
    back in the queue (behind the others of its priority) rather than lose it.

    .. versionadded:: 0.1
    """

    _mq: MessageQueue
    _poll: bool
    _closed: bool
    _fd: int

    def __init__(
        self,
        name: QueueName,
        *,
        create: bool = False,
        exclusive: bool = False,
        read: bool = True,
        write: bool = True,
        mode: int = 0o600,
        capacity: int | None = None,
        max_message_size: int | None = None,
        strategy: Strategy = "auto",
    ) -> None:
        poll = _pick_strategy(strategy)
        mq = MessageQueue(
            name,
            create=create,
            exclusive=exclusive,
            read=read,
            write=write,
            mode=mode,
            capacity=capacity,
            max_message_size=max_message_size,
            nonblocking=True,
        )
        self._setup(mq, poll)

    @classmethod
    def from_sync(cls, queue: MessageQueue, *, strategy: Strategy = "auto") -> AsyncMessageQueue:
        """Take over the open *queue*.

        The queue becomes nonblocking (its open queue description is set
        ``O_NONBLOCK``, as the event loop may do anyway) and is closed when the
        new object is; do not use it directly afterwards.

        :raises TypeError: *queue* is not a :class:`MessageQueue`.
        :raises ValueError: *queue* is closed, or *strategy* is not usable.
        """
        if not isinstance(queue, MessageQueue):
            raise TypeError(f"from_sync() takes a MessageQueue, not {type(queue).__name__}")
        poll = _pick_strategy(strategy)
        if queue.closed:
            raise ValueError("from_sync() was given a closed MessageQueue")
        queue.nonblocking = True
        self = cls.__new__(cls)
        self._setup(queue, poll)
        return self

    def _setup(self, mq: MessageQueue, poll: bool) -> None:
        self._mq = mq
        self._poll = poll
        self._closed = False
        self._fd = mq.fileno() if poll else -1
        # anyio locks bind to the event loop that first needs them: made lazily.
        # Waiters of one direction take turns (index: writing).
        self._wait_locks: list[anyio.Lock | None] = [None, None]
        # asyncio's callbacks on the descriptor, [read, write] (one waiter at a
        # time in each direction, by the locks).
        self._watches: list[_Watch | None] = [None, None]
        # The thread strategy's state.
        self._stash: deque[Message] = deque()
        self._stash_lock = threading.Lock()  # guards _stash, _workers, _finalized
        self._kernel_lock = threading.Lock()  # held by whoever receives from the kernel
        self._workers = 0
        self._finalized = False
        self._waiters: set[anyio.CancelScope] = set()
        self._receive_limiter: anyio.CapacityLimiter | None = None
        self._send_limiter: anyio.CapacityLimiter | None = None

    # -- properties ---------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The queue's name with its leading slash (``None`` if adopted unnamed)."""
        return self._mq.name

    @property
    def capacity(self) -> int:
        """How many messages the queue holds at most."""
        return self._mq.capacity

    @property
    def max_message_size(self) -> int:
        """The largest message, in bytes, the queue takes."""
        return self._mq.max_message_size

    @property
    def strategy(self) -> Literal["poll", "thread"]:
        """How this object waits: ``"poll"`` or ``"thread"``."""
        return "poll" if self._poll else "thread"

    def attributes(self) -> QueueAttributes:
        """The queue's attributes now (``mq_getattr(3)``); ``nonblocking`` is always True.

        :raises anyio.ClosedResourceError: the object was closed.
        """
        self._check_open()
        return self._mq.attributes()

    def fileno(self) -> int:
        """The queue's descriptor (for inspection: do not wait on it yourself).

        :raises anyio.ClosedResourceError: the object was closed.
        :raises OSError: (``ENOTSUP``) this platform's queues have none to poll.
        """
        self._check_open()
        return self._mq.fileno()

    def unlink(self) -> None:
        """Remove this queue's name (see :func:`anyposixmq.unlink`); the object stays open."""
        self._mq.unlink()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError

    # -- receiving ----------------------------------------------------------

    async def receive(self) -> Message:
        """Take the oldest message of the highest priority, waiting for one.

        This is a checkpoint.  Raising the cancellation exception means the
        operation did not happen: the message is still in the queue.

        :returns: the :class:`Message` ``(data, priority)``.
        :raises anyio.ClosedResourceError: the object was closed (also while waiting).
        :raises OSError: (``EBADF``) the queue was not opened for reading.
        """
        await checkpoint()
        if self._poll and not self._closed:
            msg = self._mq._try_receive()
            if msg is not None:
                return msg
        return await self._receive_slow()

    __anext__ = receive

    async def _receive_slow(self) -> Message:
        """The rest of :meth:`receive` after its checkpoint: try, wait, try again.

        No extra look before waiting: a producer woken by our receives tends
        to share our CPU, and only runs once we wait (measured: slower).
        """
        if self._poll:
            mq = self._mq
            while True:
                if self._closed:
                    raise ClosedResourceError
                msg = mq._try_receive()
                if msg is not None:
                    return msg
                await self._wait_ready(False)
        while True:
            if self._closed:
                raise ClosedResourceError
            msg = self._take()
            if msg is not None:
                return msg
            await self._thread_wait_receive()

    async def receive_into(self, buffer: Buffer) -> tuple[int, int]:
        """Take a message into *buffer*, waiting for one; return ``(nbytes, priority)``.

        This is a checkpoint, and cancelling it means no message was taken.

        :param buffer: a writable contiguous buffer of at least
            :attr:`max_message_size` bytes.
        :raises ValueError: *buffer* is too small (before anything is taken).
        :raises anyio.ClosedResourceError: the object was closed.
        """
        # Checked before anything is taken; no view is kept across the awaits.
        self._mq._check_receive_buffer(buffer)
        await checkpoint()
        if self._poll:
            mq = self._mq
            while True:
                if self._closed:
                    raise ClosedResourceError
                got = mq._try_receive_into(buffer)
                if got is not None:
                    return got
                await self._wait_ready(False)
        while True:
            if self._closed:
                raise ClosedResourceError
            msg = self._take()
            if msg is not None:
                return copy_into(buffer, msg)
            await self._thread_wait_receive()

    async def receive_many(self, max_messages: int) -> list[Message]:
        """Wait for at least one message, then take all there are, up to *max_messages*.

        One checkpoint for the whole batch (and one system call where the
        queue is not empty): the fast way to drain a busy queue.  Cancelling
        it means no message was taken.

        :raises ValueError: *max_messages* is less than 1.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        check_max_messages(max_messages)
        await checkpoint()
        if self._poll:
            mq = self._mq
            while True:
                if self._closed:
                    raise ClosedResourceError
                msgs = mq._try_receive_many(max_messages)
                if msgs:
                    return msgs
                await self._wait_ready(False)
        while True:
            if self._closed:
                raise ClosedResourceError
            msgs = self._take_many(max_messages)
            if msgs:
                return msgs
            await self._thread_wait_receive()

    def receive_nowait(self) -> Message:
        """Take a message if one is there now.

        Under the ``thread`` strategy, a message that a waiting :meth:`receive`
        of this object is taking at that moment goes to that receive.

        :raises anyio.WouldBlock: the queue is empty.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        self._check_open()
        msg = self._mq._try_receive() if self._poll else self._take()
        if msg is None:
            raise WouldBlock
        return msg

    async def _wait_ready(self, writing: bool) -> None:
        """Wait for room (*writing*) or a message; one waiter per direction at a time."""
        lock = self._wait_locks[writing]
        if lock is None:
            lock = self._wait_locks[writing] = anyio.Lock(fast_acquire=True)
        async with lock:
            # Checked after the lock: aclose() may have run while we queued for it.
            if self._closed:
                raise ClosedResourceError
            await self._wait_fd(writing)

    # -- sending ------------------------------------------------------------

    async def send(self, item: Buffer | Message, priority: int | None = None) -> None:
        """Send one message, waiting for room.

        This is a checkpoint.  Raising the cancellation exception means the
        operation did not happen: the message was not sent.

        :param item: ``bytes`` or any contiguous bytes-like object, or a
            :class:`Message` (whose priority is used when *priority* is not given).
        :param priority: ``0`` (the default) to :data:`~anyposixmq.PRIORITY_MAX`.
        :raises TypeError, ValueError: bad *item* or *priority*, before anything else.
        :raises OSError: (``EMSGSIZE``) *item* is longer than :attr:`max_message_size`;
            (``EBADF``) the queue was not opened for writing.
        :raises anyio.ClosedResourceError: the object was closed (also while waiting).
        """
        # Leaving the block lets go of the view of the caller's buffer (no
        # worker uses it then: _thread_send settles its worker).
        with SendArgs(item, priority) as args:
            await checkpoint()
            mq = self._mq
            while True:
                if self._closed:
                    raise ClosedResourceError
                if mq._try_send(args):
                    return
                if self._poll:
                    await self._wait_ready(True)
                elif await self._thread_send(args):
                    return

    def send_nowait(self, item: Buffer | Message, priority: int | None = None) -> None:
        """Send one message if there is room now.

        :raises anyio.WouldBlock: the queue is full.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        with SendArgs(item, priority) as args:
            self._check_open()
            sent = self._mq._try_send(args)
        if not sent:
            raise WouldBlock

    async def _wait_fd(self, writing: bool) -> None:
        """Wait until the descriptor polls ready; ClosedResourceError if aclose() ran.

        What :func:`anyio.wait_readable`/:func:`anyio.wait_writable` do, without
        their backend lookup: on trio, trio's own wait (its epoll registration
        stays between waits); on asyncio, a future that this object's
        :class:`_Watch` completes (aclose() completes it with False instead).
        """
        fd = self._fd
        if _on_trio():
            lowlevel = sys.modules["trio"].lowlevel
            try:
                if writing:
                    await lowlevel.wait_writable(fd)
                else:
                    await lowlevel.wait_readable(fd)
            except sys.modules["trio"].ClosedResourceError:
                raise ClosedResourceError from None
            except sys.modules["trio"].BusyResourceError:  # someone else waits on fileno()
                raise anyio.BusyResourceError("writing to" if writing else "reading from") from None
            return
        loop = asyncio.get_running_loop()
        watches = self._watches
        watch = watches[writing]
        if watch is None or not watch.active or watch.loop is not loop:
            if watch is not None:
                watch.stop()
            elif watches[not writing] is None:
                # An object dropped without aclose() must not leave a callback
                # on a descriptor number that the next open file will reuse.
                weakref.finalize(self, _stop_watches, watches)
            try:
                watch = _Watch(loop, fd, writing)
            except NotImplementedError:  # pragma: no cover - a loop without add_reader
                await (anyio.wait_writable(fd) if writing else anyio.wait_readable(fd))
                return
            watches[writing] = watch
        fut: asyncio.Future[bool] = loop.create_future()
        watch.waiter = fut
        watch.idle = False
        try:
            ready = await fut
        finally:
            if watch.waiter is fut:
                watch.waiter = None
        if not ready:
            raise ClosedResourceError

    # -- the thread strategy ------------------------------------------------

    def _take(self) -> Message | None:
        """The next message without waiting: from the stash, else from the kernel.

        None when there is none, or when a worker is receiving from the kernel
        right now (what it gets is older than anything we could take, so we
        wait for it rather than overtake it).
        """
        if self._stash:
            with self._stash_lock:
                if self._stash:
                    return self._stash.popleft()
        if not self._kernel_lock.acquire(blocking=False):
            return None
        try:
            if self._stash:
                with self._stash_lock:
                    return self._stash.popleft()
            return self._mq._try_receive()
        finally:
            self._kernel_lock.release()

    def _take_many(self, max_messages: int) -> list[Message]:
        out: list[Message] = []
        if self._stash:
            with self._stash_lock:
                while self._stash and len(out) < max_messages:
                    out.append(self._stash.popleft())
        if len(out) < max_messages and self._kernel_lock.acquire(blocking=False):
            try:
                with self._stash_lock:
                    while self._stash and len(out) < max_messages:
                        out.append(self._stash.popleft())
                if len(out) < max_messages:
                    out += self._mq._try_receive_many(max_messages - len(out))
            finally:
                self._kernel_lock.release()
        return out

    def _enter_worker(self) -> bool:
        with self._stash_lock:
            if self._closed:
                return False
            self._workers += 1
            return True

    def _leave_worker(self) -> None:
        with self._stash_lock:
            self._workers -= 1
            last = self._closed and self._workers == 0
        if last:
            self._finalize()

    def _receive_worker(self, op: _ReceiveOp) -> None:
        """Wait (in a worker thread) until the stash has a message, or we are told to stop."""
        if not self._enter_worker():
            return
        try:
            mq = self._mq
            while not (op.cancelled or self._closed):
                if not self._kernel_lock.acquire(timeout=_RECEIVE_SLICE):
                    continue
                try:
                    if self._stash:
                        return
                    msg = mq._timed_receive(_RECEIVE_SLICE)
                    if msg is not None:
                        # Whoever takes it next gets it: the task that sent us
                        # or, if that one gave up, the next receive.
                        with self._stash_lock:
                            self._stash.append(msg)
                        return
                finally:
                    self._kernel_lock.release()
        finally:
            self._leave_worker()

    async def _thread_wait_receive(self) -> None:
        op = _ReceiveOp()
        limiter = self._receive_limiter
        if limiter is None:
            limiter = self._receive_limiter = anyio.CapacityLimiter(1)
        try:
            await self._in_worker(self._receive_worker, op, limiter)
        finally:
            # The worker, if abandoned, stops at the end of its slice; what it
            # receives until then goes to the stash for the next receive.
            op.cancelled = True

    async def _thread_send(self, args: SendArgs) -> bool:
        """Send from a worker thread; True once sent, False to try again in the task."""
        op = _SendOp()
        mq = self._mq

        def work(_: None) -> bool:
            if not self._enter_worker():
                return False
            try:
                while True:
                    with op.cond:
                        if op.cancelled or self._closed:
                            return False
                        op.in_slice = True
                    sent = False
                    try:
                        sent = mq._timed_send(args, _SEND_SLICE)
                    finally:
                        with op.cond:
                            op.in_slice = False
                            op.sent = sent
                            op.cond.notify_all()
                    if sent:
                        return True
            finally:
                self._leave_worker()

        limiter = self._send_limiter
        if limiter is None:
            limiter = self._send_limiter = anyio.CapacityLimiter(1)
        try:
            await self._in_worker(work, None, limiter)
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

    async def _in_worker(
        self, func: Callable[[Any], T], arg: Any, limiter: anyio.CapacityLimiter
    ) -> T:
        """Run *func(arg)* in a worker; aclose() cancels the wait with ClosedResourceError."""
        scope = anyio.CancelScope()
        self._waiters.add(scope)
        try:
            with scope:
                return await anyio.to_thread.run_sync(
                    func, arg, abandon_on_cancel=True, limiter=limiter
                )
        finally:
            self._waiters.discard(scope)
        raise ClosedResourceError

    def _finalize(self) -> None:
        """Close the descriptor once no worker uses it.

        A worker that received after its task gave up and the object was
        closed leaves the message in the stash: put it back in the queue
        (behind those of its priority) rather than lose it.
        """
        with self._stash_lock:
            if self._finalized:
                return
            self._finalized = True
            leftovers = list(self._stash)
            self._stash.clear()
        mq = self._mq
        try:
            if leftovers:
                # The queue may be full (one attempt lost the message then):
                # wait for room, in a worker thread or off the event loop.
                _put_back(mq, leftovers, _PUT_BACK_TIMEOUT)
        finally:
            mq.close()

    # -- closing ------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the queue; calling it again does nothing.

        Every task waiting in this object at that moment gets
        :class:`anyio.ClosedResourceError` before the descriptor is closed, and
        so does every later operation.  (Under the ``thread`` strategy, a
        message that a worker took after its task gave up goes back to the
        queue first; if the queue is full, a thread waits up to 5 s for room
        and closes the descriptor after.)
        """
        if self._closed:
            return
        # Mark closed, wake the waiters, close: no checkpoint in between.
        self._closed = True
        if self._poll:
            for watch in self._watches:
                if watch is not None:
                    waiter = watch.waiter
                    watch.stop()
                    if waiter is not None and not waiter.done():
                        waiter.set_result(False)
            self._watches[:] = [None, None]
            anyio.notify_closing(self._fd)  # trio's waiters (and any of anyio's)
            self._mq.close()
            return
        for scope in list(self._waiters):
            scope.cancel()
        with self._stash_lock:
            busy = self._workers > 0
        if not busy:
            self._finalize_soon()
            return
        # Workers finish their slice (at most _RECEIVE_SLICE): wait for them
        # so that the descriptor is closed when aclose() returns.  Should this
        # wait be cancelled, the last worker closes it.
        with anyio.CancelScope(shield=True):
            for _ in range(math.ceil(10 * _RECEIVE_SLICE / 0.002)):
                await anyio.sleep(0.002)
                with self._stash_lock:
                    if self._workers == 0:
                        break
        with self._stash_lock:
            busy = self._workers > 0
        if not busy:
            self._finalize_soon()

    def _finalize_soon(self) -> None:
        """:meth:`_finalize` now or, when a stashed message must go back and may
        have to wait for room, in a thread of its own: a full queue is emptied
        by other tasks or processes, which may be waiting for aclose() itself."""
        if not self._stash:
            self._finalize()
        else:
            threading.Thread(target=self._finalize, name="anyposixmq-put-back", daemon=True).start()

    def __reduce__(self) -> Any:
        raise pickle_error(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.strategy
        return f"<AsyncMessageQueue {self.name or '(unnamed)'} {state}>"
