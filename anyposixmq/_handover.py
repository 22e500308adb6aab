"""Receive blocks and the hand-over: how a message reaches its caller, or goes back.

The rule that shapes every receive (signal safety), stated once:

CPython runs a pending signal handler right after a C call returns, and a
handler may raise (:exc:`KeyboardInterrupt`) just after the kernel handed a
message over.  So every receive goes through a *receive block* (see
``_shim.h``): the C call that takes messages from the kernel marks its block
``taken`` before it returns, and the messages belong to the block until the
caller clears the flag.  A receive is three steps:

1. an attempt (``_attempts.py``): one C call fills a block and marks it taken;
2. the hand-over (:meth:`Blocks._hand_over` and its kin, here): the Message
   is built from the block, and the block goes back to the object's pool;
3. the clear, ``block.taken = 0``, as the public method's last statement
   before ``return``, in the outermost frame: handlers run only at calls and
   backward jumps (and, on Python 3.10, right after a call returns, in the
   caller), so none can run between the clear and the return.

An exception before step 3 leaves the messages with the block: the next
receive of the same thread (any kind) returns them first, and
:meth:`~anyposixmq.MessageQueue.close` puts them back in the queue, behind
those of their priority.  If the queue stays full (or cannot be written) for
``PUT_BACK_TIMEOUT`` seconds, ``close()`` raises :class:`PutBackError` with
them instead of dropping them (:meth:`Blocks._raise_kept`).  A forked child
never returns or puts back what its parent holds.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from ._binding import ffi, lib
from ._checks import borrow
from ._errors import Operation, closed_error, operation_error, put_back_error
from ._names import display_name
from ._types import Buffer, Message

#: Seconds that :meth:`MessageQueue.close` waits, in all, for room to put
#: back messages taken but never handed over before it raises
#: :class:`PutBackError` with them.
PUT_BACK_TIMEOUT: Final = lib.APMQ_PUT_BACK_MS / 1000

_CLOSED: Final = int(lib.APMQ_CLOSED)
_new_tuple = tuple.__new__
_unpack = ffi.unpack

#: A receive entry: (receive block, view of its buffer).
Entry = tuple[Any, Any]
#: A batch entry: (receive block, view of its buffers, capacity).
ManyEntry = tuple[Any, Any, int]


class Blocks:
    """The state every part of :class:`~anyposixmq.MessageQueue` shares, its
    receive blocks, and the hand-over.

    ``_spare`` holds single-message entries and ``_many`` batch entries that
    no call is using; a call takes one and gives it back after its hand-over
    (or after a failure).  Threads never share an entry while it is in use.
    They are deques: a list of one would be resized at every pop and append.
    """

    __slots__ = ()

    _q: Any
    _name: bytes | None
    _capacity: int
    _max_message_size: int
    _spare: deque[Entry]
    _many: deque[ManyEntry]

    @property
    def name(self) -> str | None:
        """The queue's name with its leading slash (``None`` if adopted unnamed).

        Bytes that are not UTF-8 appear as surrogate escapes (``"/caf\\udce9"``),
        as :func:`os.fsdecode` shows them; the name opens the same queue again.
        """
        return None if self._name is None else display_name(self._name)

    # -- blocks ---------------------------------------------------------------

    def _entry(self) -> Entry:
        """A single-message entry for one call; give it back after."""
        try:
            return self._spare.pop()
        except IndexError:
            return self._new_entry()

    def _new_entry(self) -> Entry:
        # Slicing the view, ``view[:n]``, is the cheapest way to the received bytes.
        block = self._new_block(1)
        return block, ffi.buffer(block.buf, block.stride)

    def _many_entry(self, count: int, *, fresh: bool = False) -> ManyEntry:
        """A batch entry for up to *count* messages (never more than the queue holds)."""
        capacity = min(count, self._capacity)
        if not fresh and self._many:
            entry = self._many.pop()
            if entry[2] >= capacity:
                return entry
        block = self._new_block(capacity)
        return block, ffi.buffer(block.buf, block.stride * capacity), capacity

    def _new_block(self, capacity: int) -> Any:
        size = self._max_message_size
        block = lib.apmq_block_new(self._q, size, capacity)
        if block == ffi.NULL:
            raise MemoryError(f"no memory for {capacity} messages of {size} bytes")
        return ffi.gc(block, lib.apmq_block_free)

    # -- the hand-over (the caller clears ``taken`` after it) -----------------

    def _hand_over(self, n: int, entry: Entry) -> Message:
        """The message of size *n* in *entry*'s block; the entry goes back to the pool."""
        block, view = entry
        msg = _new_tuple(Message, (view[:n], block.priority))
        self._spare.append(entry)
        return msg

    def _hand_over_into(self, n: int, entry: Entry) -> tuple[int, int]:
        """``(nbytes, priority)`` of a message that C copied into the caller's buffer."""
        result = (n, entry[0].priority)
        self._spare.append(entry)
        return result

    def _hand_over_many(self, taken: int, entry: ManyEntry) -> list[Message]:
        """The *taken* messages of a batch entry; the entry goes back to the pool."""
        msgs = _messages(entry, taken)
        self._many.append(entry)
        return msgs

    # -- what could not be put back --------------------------------------------

    def _raise_kept(self, err: int, all_threads: bool) -> None:
        """Raise :class:`PutBackError` with the messages that closing kept.

        Called when ``apmq_close`` said that some found no room (errno *err*).
        They move into a block of their own, taken as by a receive, and are
        handed over in the exception, with the clear last.
        """
        count = lib.apmq_kept(self._q, all_threads)
        if count <= 0:
            return  # another thread put them back meanwhile
        block = self._new_block(count)
        entry = (block, ffi.buffer(block.buf, block.stride * count), count)
        taken = lib.apmq_take_kept(block, all_threads)
        exc = put_back_error(err, self.name, _messages(entry, taken), PUT_BACK_TIMEOUT)
        block.taken = 0
        raise exc

    # -- errors -----------------------------------------------------------------

    def _raise(
        self, rc: int, err: int, size: int = 0, receiving: bool = False, *, timed: bool = False
    ) -> Any:
        """Raise the exception for a failed call (rc < 0, errno *err*).

        *size* is a send's message length, *receiving* says a receive failed
        (neither: a send), and *timed* whether the caller gave a timeout
        (then "would block" is a TimeoutError, else a BlockingIOError).
        """
        if rc == _CLOSED:
            raise closed_error()
        operation: Operation = "receive" if receiving else "send"
        raise operation_error(
            err,
            self.name,
            operation=operation,
            timed=timed,
            size=size,
            max_message_size=self._max_message_size,
        )

    def _raise_query(self, rc: int, err: int) -> Any:
        """Raise the exception for a failed call that neither sends nor receives."""
        if rc == _CLOSED:
            raise closed_error()
        raise operation_error(err, self.name, operation="query")


def _messages(entry: ManyEntry, taken: int) -> list[Message]:
    # Slices of one buffer view and two bulk unpacks: fewer cdata operations
    # per message than indexing the arrays and unpacking each message.
    block, view, _ = entry
    stride = block.stride
    return [
        _new_tuple(Message, (view[start : start + n], prio))
        for start, n, prio in zip(
            range(0, taken * stride, stride),
            _unpack(block.lengths, taken),
            _unpack(block.priorities, taken),
            strict=False,
        )
    ]


def copy_into(
    buffer: Buffer, message: Message, max_message_size: int, name: str | None
) -> tuple[int, int]:
    """Write *message* (already received) into *buffer*; return ``(nbytes, priority)``.

    The buffer is checked here, at the moment of the copy, as ``receive_into``
    checks it: it may have been resized since an earlier check.  If it no
    longer fits, the ValueError comes before anything is written, and the
    caller still has the message.
    """
    data = message.data
    with borrow(buffer, max_message_size, name) as view:
        if len(data) > len(view):  # never: a queue's messages fit its max_message_size
            raise ValueError(f"a message of {len(data)} bytes does not fit the buffer")
        ffi.memmove(view, data, len(data))
    return len(data), message.priority
