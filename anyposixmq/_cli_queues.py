"""The subcommands that work on one queue: create, send, receive, info, list, rm.

``receive`` never consumes a message without writing it: when a line cannot
be written (stdout full, or its reader gone), that message and the rest of its
batch are sent back into the queue, behind those of the same priority that
are waiting there.  That needs write permission, so ``receive`` opens the
queue for reading and writing when it may, and says so when it could not put
a message back.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ._cli_common import (
    EXIT_FAILURE,
    EXIT_OK,
    Failure,
    OutputFailed,
    error_text,
    out,
    print_error,
)
from ._interrupt import Interrupt
from ._limits import list_queues, queue_cost
from ._sync import MessageQueue, check_priority, unlink
from ._types import Message

#: How long ``receive`` waits for room to put back a message it could not
#: print (only a sender that filled the queue meanwhile makes it wait).
PUT_BACK_PATIENCE = 10.0


def _open(name: str, hint: str = "", **kwargs: bool) -> MessageQueue:
    """Open *name*, saying in command-line terms what went wrong."""
    try:
        return MessageQueue(name, **kwargs)
    except FileNotFoundError as exc:
        raise Failure(f"no message queue named {exc.filename}{hint}") from None


def cmd_create(args: argparse.Namespace) -> int:
    """Create a queue; an existing one is left as it is (unless --exclusive)."""
    sizes = {"capacity": args.capacity, "max_message_size": args.max_message_size}
    try:
        mq = MessageQueue(args.name, create=True, exclusive=True, mode=args.mode, **sizes)
        verb = "created"
    except FileExistsError as exc:
        if args.exclusive:
            raise Failure(f"{exc.filename} already exists (--exclusive was given)") from None
        mq = _open(args.name)
        verb = "already exists"
    with mq:
        out(
            f"{mq.name} {verb}: capacity {mq.capacity}, "
            f"max message size {mq.max_message_size} bytes"
        )
    return EXIT_OK


def _stdin_messages() -> Iterator[bytes]:
    for line in sys.stdin.buffer:
        yield line[:-1] if line.endswith(b"\n") else line


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cmd_send(args: argparse.Namespace) -> int:
    """Send each MESSAGE, or each line of stdin."""
    check_priority(args.priority)  # before anything is sent
    if args.messages:
        messages: Sequence[bytes] | None = [
            m.encode("utf-8", "surrogateescape") for m in args.messages
        ]
    elif sys.stdin is None:  # Python's sign that descriptor 0 was closed
        raise Failure("standard input is closed: give the messages as arguments")
    else:
        messages = None
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    hint = " (send --create creates it)"
    sent = 0
    with _open(args.name, hint, create=args.create, read=False) as mq:
        try:
            for data in _stdin_messages() if messages is None else messages:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                mq.send(data, args.priority, timeout=timeout)
                sent += 1
        except TimeoutError:
            raise Failure(
                f"{mq.name} stayed full: timed out after {args.timeout:g} s; "
                + _sent_of(sent, messages)
            ) from None
    return EXIT_OK


def _sent_of(sent: int, messages: Sequence[bytes] | None) -> str:
    """How many of the messages went, when the rest timed out."""
    if messages is not None:
        return f"sent {sent} of {len(messages)}"
    if stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode):  # a file: count what is left
        return f"sent {sent} of {sent + 1 + sum(1 for _ in _stdin_messages())} lines"
    return f"sent {_plural(sent, 'line')}; line {sent + 1} and any after it were not sent"


# -- receive ------------------------------------------------------------------


def _write_message(stream: BinaryIO, msg: Message, as_json: bool) -> None:
    if as_json:
        record: dict[str, object] = {"priority": msg.priority}
        try:
            record["data"] = msg.data.decode("utf-8")
        except UnicodeDecodeError:
            record["data_base64"] = base64.b64encode(msg.data).decode("ascii")
        stream.write(json.dumps(record).encode("ascii") + b"\n")
    else:
        stream.write(msg.data + b"\n")
    stream.flush()


def _open_to_receive(name: str) -> tuple[MessageQueue, bool]:
    """The queue open for reading, and whether for writing too (to put messages back)."""
    try:
        return _open(name), True
    except PermissionError:
        return _open(name, write=False), False


def _put_back(mq: MessageQueue, messages: list[Message], writable: bool) -> str:
    """Send *messages* back into *mq*; say what became of them."""
    count = _plural(len(messages), "message")
    if not writable:
        return f"{count} could not be put back into {mq.name}: no permission to write to it"
    for i, msg in enumerate(messages):
        try:
            mq.send(msg, timeout=PUT_BACK_PATIENCE)
        except (OSError, ValueError) as exc:
            lost = _plural(len(messages) - i, "message")
            return f"{lost} could not be put back into {mq.name}: {error_text(exc)}"
    return f"{count} put back into {mq.name}"


def cmd_receive(args: argparse.Namespace) -> int:
    """Print messages: one, --count of them, or all until Ctrl-C (--follow)."""
    if args.follow:
        return _follow(args.name, args.json)
    stdout = sys.stdout.buffer
    count = args.count or 1
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    got = 0
    mq, writable = _open_to_receive(args.name)
    with mq:
        while got < count:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                # Waits as receive() does, then takes all that are there at once.
                batch = mq.receive_many(count - got, timeout=timeout)
            except TimeoutError:
                if count == 1:
                    raise Failure(f"no message in {mq.name} within {args.timeout:g} s") from None
                raise Failure(
                    f"received {got} of {count} messages from {mq.name} within {args.timeout:g} s"
                ) from None
            for i, msg in enumerate(batch):
                try:
                    _write_message(stdout, msg, args.json)
                except OSError as exc:
                    raise OutputFailed(exc, _put_back(mq, batch[i:], writable)) from None
            got += len(batch)
    return EXIT_OK


def _follow(name: str, as_json: bool) -> int:
    from ._async import AsyncMessageQueue

    stdout = sys.stdout.buffer

    async def follow() -> None:
        import anyio

        writable = True
        try:
            try:
                mq = AsyncMessageQueue(name)
            except PermissionError:
                mq, writable = AsyncMessageQueue(name, write=False), False
        except FileNotFoundError as exc:
            raise Failure(f"no message queue named {exc.filename}") from None
        async with mq:
            async for msg in mq:
                try:
                    _write_message(stdout, msg, as_json)
                except OSError as exc:
                    outcome = "no permission to write to it"
                    if writable:
                        # Shielded: a Ctrl-C now must not cancel the put-back.
                        with anyio.move_on_after(PUT_BACK_PATIENCE, shield=True) as scope:
                            await mq.send(msg)
                        outcome = "it stayed full" if scope.cancelled_caught else ""
                    if outcome:
                        outcome = f"the message could not be put back into {mq.name}: {outcome}"
                    raise OutputFailed(
                        exc, outcome or f"the message was put back into {mq.name}"
                    ) from None

    with Interrupt() as interrupt:
        interrupt.run(follow)
    return EXIT_OK  # pragma: no cover - it only ends with an exception


# -- info, list, rm -------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """Print a queue's attributes."""
    with _open(args.name, write=False) as mq:
        attrs = mq.attributes()
        name = mq.name
    info = {
        "name": name,
        "capacity": attrs.capacity,
        "max_message_size": attrs.max_message_size,
        "current_messages": attrs.current_messages,
        "cost_bytes": queue_cost(attrs.capacity, attrs.max_message_size),
    }
    if args.json:
        out(json.dumps(info))
        return EXIT_OK
    out(f"name              {name}")
    out(f"capacity          {attrs.capacity} messages")
    out(f"max message size  {attrs.max_message_size} bytes")
    out(f"current messages  {attrs.current_messages}")
    out(f"cost              about {info['cost_bytes']:,} bytes of RLIMIT_MSGQUEUE")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print the names of the queues in /dev/mqueue."""
    for name in list_queues():
        out(name)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    """Unlink each NAME; report each failure and go on with the others."""
    status = EXIT_OK
    for name in args.names:
        try:
            unlink(name, missing_ok=args.force)
        except (OSError, ValueError) as exc:
            print_error(exc)
            status = EXIT_FAILURE
    return status
