"""The ``anyposixmq`` command line: look into queues, feed them, tail them.

Exit status: 0 on success, 1 when the operation fails (missing queue, bad
name or priority, timeout), 2 for usage errors (argparse's convention), 130
on Ctrl-C.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

from . import __version__
from ._demo import is_interrupt, run_async
from ._limits import (
    SystemLimits,
    default_sizes,
    limits,
    list_queues,
    queue_cost,
    rlimit_msgqueue,
)
from ._sync import MessageQueue, check_priority, unlink
from ._types import Message

PROG = "anyposixmq"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Failure(Exception):
    """An operation failed for a reason the user can act on: one line, exit 1."""


# -- argument types ---------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, not {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode such as 0600: {text!r}") from None
    if not 0 <= value <= 0o7777:
        raise argparse.ArgumentTypeError(f"not a permission mode between 0 and 7777: {text!r}")
    return value


# -- output helpers ---------------------------------------------------------


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


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


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None and str(exc.filename) not in text:
            text = f"{exc.filename}: {text}"
        return text
    return str(exc)


# -- subcommands ------------------------------------------------------------


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
        _out(
            f"{mq.name} {verb}: capacity {mq.capacity}, "
            f"max message size {mq.max_message_size} bytes"
        )
    return EXIT_OK


def _stdin_messages() -> Iterator[bytes]:
    for line in sys.stdin.buffer:
        yield line[:-1] if line.endswith(b"\n") else line


def cmd_send(args: argparse.Namespace) -> int:
    """Send each MESSAGE, or each line of stdin."""
    check_priority(args.priority)  # before anything is sent
    messages: Iterable[bytes] = (
        [m.encode("utf-8", "surrogateescape") for m in args.messages]
        if args.messages
        else _stdin_messages()
    )
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    hint = " (send --create creates it)"
    with _open(args.name, hint, create=args.create, read=False) as mq:
        for data in messages:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            mq.send(data, args.priority, timeout=timeout)
    return EXIT_OK


def cmd_receive(args: argparse.Namespace) -> int:
    """Print messages: one, --count of them, or all until Ctrl-C (--follow)."""
    if args.follow:
        return _follow(args.name, args.json)
    out = sys.stdout.buffer
    count = args.count or 1
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    got = 0
    with _open(args.name, write=False) as mq:
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
            for msg in batch:
                _write_message(out, msg, args.json)
            got += len(batch)
    return EXIT_OK


def _follow(name: str, as_json: bool) -> int:
    from ._async import AsyncMessageQueue

    out = sys.stdout.buffer

    async def follow() -> None:
        try:
            mq = AsyncMessageQueue(name, write=False)
        except FileNotFoundError as exc:
            raise Failure(f"no message queue named {exc.filename}") from None
        async with mq:
            async for msg in mq:
                _write_message(out, msg, as_json)

    run_async(follow)
    return EXIT_OK  # pragma: no cover - the loop only ends with an exception


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
        _out(json.dumps(info))
        return EXIT_OK
    _out(f"name              {name}")
    _out(f"capacity          {attrs.capacity} messages")
    _out(f"max message size  {attrs.max_message_size} bytes")
    _out(f"current messages  {attrs.current_messages}")
    _out(f"cost              about {info['cost_bytes']:,} bytes of RLIMIT_MSGQUEUE")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print the names of the queues in /dev/mqueue."""
    for name in list_queues():
        _out(name)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    """Unlink each NAME; report each failure and go on with the others."""
    status = EXIT_OK
    for name in args.names:
        try:
            unlink(name, missing_ok=args.force)
        except (OSError, ValueError) as exc:
            _print_error(exc)
            status = EXIT_FAILURE
    return status


def _show(value: int | None) -> str:
    return "not reported" if value is None else f"{value:,}"


def _practice(lim: SystemLimits) -> list[str]:
    """What the limits allow, in sentences."""
    lines = []
    rlimit = lim.rlimit_msgqueue
    if lim.msg_max is not None and lim.msgsize_max is not None:
        cost = queue_cost(lim.msg_max, lim.msgsize_max)
        line = (
            f"The largest queue one may create holds {lim.msg_max} messages of "
            f"{lim.msgsize_max:,} bytes (about {cost:,} bytes of RLIMIT_MSGQUEUE)"
        )
        if rlimit is not None and cost > rlimit:
            line += ", which is more than RLIMIT_MSGQUEUE allows: lower one of the two"
        lines.append(line + ".")
    if (defaults := default_sizes(lim)) is not None:
        cost = queue_cost(*defaults)
        line = (
            f"A queue created with the default size ({defaults[0]} x "
            f"{defaults[1]:,} bytes) costs about {cost:,} bytes"
        )
        if rlimit is not None:
            line += f", so {rlimit // cost} of them fit in RLIMIT_MSGQUEUE for one user"
        lines.append(line + ".")
    if lim.queues_max is not None:
        lines.append(f"At most {lim.queues_max:,} queues may exist at once, system-wide.")
    lines.append(f"Priorities go from 0 to {lim.priority_max:,}; higher is received first.")
    return lines


_HOW_TO_RAISE = [
    "msg_max, msgsize_max, queues_max: as root, sysctl fs.mqueue.msg_max=N (and",
    "  msgsize_max, queues_max); keep it across reboots in /etc/sysctl.d/.",
    "  A process with CAP_SYS_RESOURCE may go past msg_max and msgsize_max.",
    "msg_default, msgsize_default: sysctl fs.mqueue.msg_default=N (and msgsize_default);",
    "  they only apply to queues created without a size.",
    "RLIMIT_MSGQUEUE: ulimit -q BYTES in the shell, up to the hard limit; past it",
    "  as root: 'msgqueue' in /etc/security/limits.conf, or LimitMSGQUEUE= for a",
    "  systemd service.",
]


def cmd_limits(args: argparse.Namespace) -> int:
    """Print the live system limits and what they mean in practice."""
    lim = limits()
    hard = rlimit_msgqueue(hard=True)
    if args.json:
        record = {
            "msg_max": lim.msg_max,
            "msgsize_max": lim.msgsize_max,
            "msg_default": lim.msg_default,
            "msgsize_default": lim.msgsize_default,
            "queues_max": lim.queues_max,
            "priority_max": lim.priority_max,
            "rlimit_msgqueue": lim.rlimit_msgqueue,
            "rlimit_msgqueue_hard": hard,
        }
        _out(json.dumps(record))
        return EXIT_OK
    rows = [
        ("msg_max", _show(lim.msg_max), "largest capacity of a queue, in messages"),
        ("msgsize_max", _show(lim.msgsize_max), "largest max_message_size, in bytes"),
        (
            "msg_default",
            _show(lim.msg_default),
            "capacity of a queue created without one (capped at msg_max)",
        ),
        (
            "msgsize_default",
            _show(lim.msgsize_default),
            "max_message_size of a queue created without one (capped at msgsize_max)",
        ),
        ("queues_max", _show(lim.queues_max), "queues that may exist at once, system-wide"),
        ("priority_max", _show(lim.priority_max), "largest message priority"),
        (
            "RLIMIT_MSGQUEUE",
            "unlimited" if lim.rlimit_msgqueue is None else f"{lim.rlimit_msgqueue:,}",
            "bytes of queue storage one user may hold (soft limit; hard: "
            + ("unlimited" if hard is None else f"{hard:,}")
            + ")",
        ),
    ]
    _out("System limits on POSIX message queues (read now):")
    for key, value, meaning in rows:
        _out(f"  {key:<16} {value:>10}  {meaning}")
    _out()
    _out("In practice:")
    for line in _practice(lim):
        _out(f"  {line}")
    _out()
    _out("How to raise them:")
    for line in _HOW_TO_RAISE:
        _out(f"  {line}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure this installation (the comparison suite is ``nox -s bench``)."""
    from . import _selfbench

    return _selfbench.run(rounds=args.rounds, json_path=args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    from . import _demo

    try:
        return _demo.run(name=args.name, messages=args.messages)
    except _demo.DemoError as exc:
        raise Failure(str(exc)) from None


# -- parser -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``anyposixmq`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Create, feed, read and inspect POSIX message queues.",
        epilog="Queue names may be given with or without their leading slash.\n"
        "Exit status: 0 done, 1 failed (the reason on stderr), 2 usage error, 130 Ctrl-C.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", help="create a queue", description="Create a queue.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--capacity", type=_positive, metavar="N", help="messages it holds")
    p.add_argument(
        "--max-message-size", type=_positive, metavar="N", help="largest message, in bytes"
    )
    p.add_argument(
        "--mode", type=_mode, default=0o600, metavar="MODE", help="octal permissions (0600)"
    )
    p.add_argument(
        "--exclusive", action="store_true", help="fail if it exists (otherwise leave it as is)"
    )
    p.set_defaults(func=cmd_create, parser=p)

    p = sub.add_parser(
        "send",
        help="send messages",
        description="Send each MESSAGE (UTF-8) as one message; with none, each line of stdin.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("messages", nargs="*", metavar="MESSAGE")
    p.add_argument("-p", "--priority", type=int, default=0, metavar="N", help="0 (default) and up")
    p.add_argument("--create", action="store_true", help="create the queue if it does not exist")
    p.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="give up after S seconds when the queue stays full (default: wait)",
    )
    p.set_defaults(func=cmd_send, parser=p)

    p = sub.add_parser(
        "receive",
        help="receive and print messages",
        description="Print messages, one line each, highest priority first.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("-n", "--count", type=_positive, metavar="N", help="how many (default 1)")
    p.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up after S seconds (default: wait)"
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing messages until Ctrl-C"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='JSON lines {"priority": P, "data": "..."} ("data_base64" when not UTF-8)',
    )
    p.set_defaults(func=cmd_receive, parser=p)

    p = sub.add_parser("info", help="show a queue's attributes", description="Show attributes.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_info, parser=p)

    p = sub.add_parser(
        "list", help="list the queues", description="List the queues in /dev/mqueue."
    )
    p.set_defaults(func=cmd_list, parser=p)

    p = sub.add_parser("rm", help="remove queues", description="Remove (unlink) queues.")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-f", "--force", action="store_true", help="ignore queues that do not exist")
    p.set_defaults(func=cmd_rm, parser=p)

    p = sub.add_parser(
        "limits",
        help="show the system limits and what they allow",
        description="Show the system limits on message queues and what they allow.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_limits, parser=p)

    p = sub.add_parser(
        "bench",
        help="measure this installation (a few seconds)",
        description="A short self-measurement of this installation: a send+receive pair, "
        "a sync consumer and an async for consumer on each installed backend. The rows "
        "against C, posix_ipc and the floors come from the comparison suite of the source "
        "tree, `nox -s bench`.",
    )
    p.add_argument("--rounds", type=_positive, default=3, metavar="N", help="rounds (3)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.set_defaults(func=cmd_bench, parser=p)

    p = sub.add_parser(
        "demo",
        help="watch it work (a few seconds)",
        description="Producer processes, async consumers on asyncio and trio, priorities "
        "and a cancel-scope timeout, on a queue of its own that is removed at the end.",
    )
    p.add_argument("--name", metavar="NAME", help="the demo queue's name (default: unique)")
    p.add_argument(
        "--messages", type=_positive, default=5000, metavar="N", help="per producer (5000)"
    )
    p.set_defaults(func=cmd_demo, parser=p)
    return parser


def _print_error(exc: BaseException) -> None:
    sys.stderr.write(f"{PROG}: {_error_text(exc)}\n")
    sys.stderr.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line.

    Options may come between positionals (``send /jobs --priority 9 "job"``),
    which needs ``parse_intermixed_args``; argparse does not offer that with
    subcommands.  The first pass picks the subcommand (and answers ``--help``
    and ``--version``); the subcommand's own parser then reads what follows
    its name.  The top-level parser has no options that take a value, so the
    subcommand's name is the first word that names one.
    """
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    first, _ = parser.parse_known_args(words)
    rest = words[words.index(first.command) + 1 :]
    namespace = argparse.Namespace(command=first.command)
    return first.parser.parse_intermixed_args(rest, namespace)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    if args.command == "receive" and args.follow and (args.count or args.timeout is not None):
        args.parser.error("--follow does not go with --count or --timeout")
    if isinstance(sys.stdout, io.TextIOWrapper):  # names print back as the bytes they are
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python
        # from complaining while it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except (Failure, OSError, ValueError) as exc:
        _print_error(exc)
        return EXIT_FAILURE
    except BaseException as exc:
        if is_interrupt(exc):
            return EXIT_INTERRUPTED
        raise
