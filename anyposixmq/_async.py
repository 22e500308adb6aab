"""AsyncMessageQueue: the cancel-safe anyio layer (trio, asyncio, asyncio+uvloop).

Everything about the kernel (arguments, buffers, errno) stays in
:mod:`anyposixmq._sync`.  This module adds only waiting and cancellation, on
a waiter that makes the core's one-attempt calls and waits between them:
:class:`~anyposixmq._poll.PollWaiter` on the queue's descriptor in the event
loop, or :class:`~anyposixmq._threads.ThreadWaiter` in worker threads where
the descriptor cannot be polled (the interface: :mod:`anyposixmq._waiting`).
Each operation is written once, for both.

Its order is anyio's own (``UNIXDatagramSocket.receive``,
``MemoryObjectReceiveStream``): :func:`anyio.lowlevel.checkpoint` first, then
the nonblocking attempt, waiting only when it would block, and never an
``await`` between a successful attempt and the return.  Cancellation is thus
only ever delivered while nothing has happened yet, under anyio cancel scopes
and plain asyncio cancellation alike.  The other orders fail: trio's (check
for cancellation, attempt, then a shielded checkpoint) loses messages under
plain asyncio cancellation, which anyio's shields do not stop; and a wait for
readiness is no cancellation point on uvloop, which may report a ready
descriptor before it delivers a pending cancellation.

The object owns its descriptor.  uvloop sets ``O_NONBLOCK`` on a descriptor
it watches and never clears it, so the object never shares one with a
blocking MessageQueue: it opens its own, or takes one MessageQueue over
(:meth:`AsyncMessageQueue.from_sync`), once.  Nothing in it belongs to an
event loop except what the waiters keep per loop, so one object may serve
asyncio, then trio, then uvloop.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal

from anyio import ClosedResourceError, TypedAttributeSet, WouldBlock, typed_attribute
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.lowlevel import checkpoint

from ._checks import SendArgs, check_max_messages
from ._errors import pickle_error
from ._names import QueueName
from ._poll import PollWaiter
from ._sync import POLLABLE, MessageQueue
from ._threads import ThreadWaiter
from ._types import Buffer, Message, QueueAttributes, QueueStatistics
from ._waiting import Waiter

__all__ = ["AsyncMessageQueue", "QueueAttribute"]

Strategy = Literal["auto", "poll", "thread"]

#: The MessageQueues that from_sync() took over (each may be, once).
_taken_over: weakref.WeakSet[MessageQueue] = weakref.WeakSet()
_taken_over_lock = threading.Lock()


class QueueAttribute(TypedAttributeSet):
    """The typed attributes of an :class:`AsyncMessageQueue`, for anyio's
    :meth:`~anyio.TypedAttributeProvider.extra`: ``queue.extra(QueueAttribute.capacity)``.

    .. versionadded:: 0.1
    """

    #: The descriptor to poll (missing where the platform has none to poll).
    fileno: int = typed_attribute()
    #: The queue's name with its leading slash (``None`` if adopted unnamed).
    name: str | None = typed_attribute()
    #: How many messages the queue holds at most.
    capacity: int = typed_attribute()
    #: The largest message, in bytes, the queue takes.
    max_message_size: int = typed_attribute()
    #: How the object waits: ``"poll"`` or ``"thread"``.
    strategy: str = typed_attribute()


def _waiter_class(strategy: object) -> type[PollWaiter | ThreadWaiter]:
    if strategy == "auto":
        return PollWaiter if POLLABLE else ThreadWaiter
    if strategy == "poll":
        if not POLLABLE:
            raise ValueError(
                'strategy="poll" needs a pollable queue descriptor, which this platform '
                'does not have: use strategy="thread" or "auto"'
            )
        return PollWaiter
    if strategy == "thread":
        return ThreadWaiter
    raise ValueError(f'strategy must be "auto", "poll" or "thread", not {strategy!r}')


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
    :class:`anyio.abc.ObjectSendStream` of bytes-like objects or messages,
    with the typed attributes of :class:`QueueAttribute`.  Unlike a memory
    stream it does not keep the order of sending: higher priorities are
    received first (FIFO within one priority).  Any number of tasks may send
    and receive on one object at once, in one event loop at a time (a task
    that would wait while tasks of another loop wait raises RuntimeError:
    open the queue again for each loop).  There
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
    back in the queue (behind the others of its priority) rather than lose
    it, or raises :class:`~anyposixmq.PutBackError` with it if the queue
    stays full.

    .. versionadded:: 0.1
    """

    _waiter: Waiter

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
        waiter_class = _waiter_class(strategy)
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
        try:
            self._waiter = waiter_class(mq)
        except BaseException:
            mq.close()
            raise

    @classmethod
    def from_sync(cls, queue: MessageQueue, *, strategy: Strategy = "auto") -> AsyncMessageQueue:
        """Take over the open *queue*.

        The queue becomes nonblocking and is closed when the new object is; do
        not use it directly afterwards.  ``O_NONBLOCK`` is a flag of the open
        queue description, which :meth:`MessageQueue.dup` copies share: taking
        over ``queue.dup()`` makes *queue* nonblocking too (and the event loop
        may set the flag anyway).  To keep a blocking queue beside an async
        one, open the name twice instead.

        :raises TypeError: *queue* is not a :class:`MessageQueue`.
        :raises ValueError: *queue* is closed, another AsyncMessageQueue took
            it over already, or *strategy* is not usable.
        """
        if not isinstance(queue, MessageQueue):
            raise TypeError(f"from_sync() takes a MessageQueue, not {type(queue).__name__}")
        waiter_class = _waiter_class(strategy)
        if queue.closed:
            raise ValueError("from_sync() was given a closed MessageQueue")
        with _taken_over_lock:
            if queue in _taken_over:
                raise ValueError(
                    "from_sync() was given a MessageQueue that an AsyncMessageQueue "
                    "already took over: two objects cannot own one descriptor"
                )
            queue.nonblocking = True
            _taken_over.add(queue)
        self = cls.__new__(cls)
        self._waiter = waiter_class(queue)
        return self

    # -- properties ---------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The queue's name with its leading slash (``None`` if adopted unnamed)."""
        return self._waiter.mq.name

    @property
    def capacity(self) -> int:
        """How many messages the queue holds at most."""
        return self._waiter.mq.capacity

    @property
    def max_message_size(self) -> int:
        """The largest message, in bytes, the queue takes."""
        return self._waiter.mq.max_message_size

    @property
    def strategy(self) -> Literal["poll", "thread"]:
        """How this object waits: ``"poll"`` or ``"thread"``."""
        return self._waiter.strategy

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio's typed attributes: see :class:`QueueAttribute`."""
        mq = self._waiter.mq
        attributes: dict[Any, Callable[[], Any]] = {
            QueueAttribute.name: lambda: mq.name,
            QueueAttribute.capacity: lambda: mq.capacity,
            QueueAttribute.max_message_size: lambda: mq.max_message_size,
            QueueAttribute.strategy: lambda: self._waiter.strategy,
        }
        if POLLABLE:
            attributes[QueueAttribute.fileno] = self.fileno
        return attributes

    def statistics(self) -> QueueStatistics:
        """How full the queue is now, and how many tasks of this object wait.

        Like :meth:`anyio.streams.memory.MemoryObjectReceiveStream.statistics`.

        :raises anyio.ClosedResourceError: the object was closed.
        """
        attributes = self.attributes()
        waits = self._waiter.waits
        return QueueStatistics(
            current_messages=attributes.current_messages,
            capacity=attributes.capacity,
            tasks_waiting_send=waits.sending,
            tasks_waiting_receive=waits.receiving,
        )

    def attributes(self) -> QueueAttributes:
        """The queue's attributes now (``mq_getattr(3)``); ``nonblocking`` is always True.

        :raises anyio.ClosedResourceError: the object was closed.
        """
        self._check_open()
        return self._waiter.mq.attributes()

    def fileno(self) -> int:
        """The queue's descriptor, for inspection.

        Waiting on it yourself (``anyio.wait_readable(q.fileno())``) works
        between this object's own waits; while one of them waits in the same
        direction, it or yours gets :class:`anyio.BusyResourceError`.

        :raises anyio.ClosedResourceError: the object was closed.
        :raises OSError: (``ENOTSUP``) this platform's queues have none to poll.
        """
        self._check_open()
        return self._waiter.mq.fileno()

    def unlink(self) -> None:
        """Remove this queue's name (see :func:`anyposixmq.unlink`); the object stays open."""
        self._waiter.mq.unlink()

    def _check_open(self) -> None:
        if self._waiter.closed:
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
        waiter = self._waiter
        while (msg := waiter.receive()) is None:
            await waiter.wait_readable()
        return msg

    __anext__ = receive

    async def receive_into(self, buffer: Buffer) -> tuple[int, int]:
        """Take a message into *buffer*, waiting for one; return ``(nbytes, priority)``.

        This is a checkpoint, and cancelling it means no message was taken.

        :param buffer: a writable contiguous buffer of at least
            :attr:`max_message_size` bytes.
        :raises ValueError: *buffer* is too small (before anything is taken).
        :raises anyio.ClosedResourceError: the object was closed.
        """
        waiter = self._waiter
        # Checked before anything is taken; no view is kept across the awaits.
        waiter.mq._check_receive_buffer(buffer)
        await checkpoint()
        while (got := waiter.receive_into(buffer)) is None:
            await waiter.wait_readable()
        return got

    async def receive_many(self, max_messages: int) -> list[Message]:
        """Wait for at least one message, then take all there are, up to *max_messages*.

        One checkpoint for the whole batch (and one system call where the
        queue is not empty): the fast way to drain a busy queue.  Cancelling
        it means no message was taken.  Memory is set aside for at most
        :attr:`capacity` messages, however large *max_messages* is.

        :raises ValueError: *max_messages* is less than 1.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        max_messages = check_max_messages(max_messages)
        await checkpoint()
        waiter = self._waiter
        while not (msgs := waiter.receive_many(max_messages)):
            await waiter.wait_readable()
        return msgs

    def receive_nowait(self) -> Message:
        """Take a message if one is there now.

        Under the ``thread`` strategy, a message that a waiting :meth:`receive`
        of this object is taking at that moment goes to that receive.

        :raises anyio.WouldBlock: the queue is empty.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        msg = self._waiter.receive()
        if msg is None:
            raise WouldBlock
        return msg

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
        # worker uses it then: a thread waiter settles its worker first).
        with SendArgs(item, priority) as args:
            await checkpoint()
            waiter = self._waiter
            while not waiter.send(args):
                if await waiter.wait_writable(args):
                    return

    def send_nowait(self, item: Buffer | Message, priority: int | None = None) -> None:
        """Send one message if there is room now.

        :raises anyio.WouldBlock: the queue is full.
        :raises anyio.ClosedResourceError: the object was closed.
        """
        with SendArgs(item, priority) as args:
            sent = self._waiter.send(args)
        if not sent:
            raise WouldBlock

    # -- closing ------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the queue; calling it again does nothing.

        Every task waiting in this object at that moment gets
        :class:`anyio.ClosedResourceError` before the descriptor is closed, and
        so does every later operation.  It closes even when cancelled (and
        is not a checkpoint under the ``poll`` strategy).

        Messages that this object took and never handed over (a receive that
        :exc:`KeyboardInterrupt` stopped just after the kernel handed over
        its message; under the ``thread`` strategy, what a worker took after
        its task gave up) go back in the queue first, behind the others of
        their priority.

        :raises PutBackError: some of those found no room within
            :data:`~anyposixmq.PUT_BACK_TIMEOUT` seconds: they are in the
            exception, and the queue is closed all the same.
        :raises RuntimeError: tasks of another event loop wait in this object.
        """
        if not self._waiter.closed:
            await self._waiter.aclose()

    def __del__(self) -> None:
        waiter: Waiter | None = getattr(self, "_waiter", None)  # None: __init__ failed
        if waiter is not None and not waiter.closed:
            try:
                warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            finally:  # even when warnings are errors
                waiter.close_unwatched()

    def __reduce__(self) -> Any:
        raise pickle_error(self)

    def __repr__(self) -> str:
        waiter: Waiter | None = getattr(self, "_waiter", None)
        if waiter is None:
            return f"<{type(self).__name__} (not opened)>"
        state = "closed" if waiter.closed else waiter.strategy
        return f"<{type(self).__name__} {waiter.mq.name or '(unnamed)'} {state}>"
