"""The ``anyposixmq`` command line: look into queues, feed them, tail them, watch them.

Exit status: 0 on success, 1 when the operation fails (missing queue, bad
name or priority, timeout), 2 for usage errors (argparse's convention), 130
on Ctrl-C.  Errors are one line on stderr, never a traceback.  The
subcommands live in ``_cli_queues`` (one queue at a time), ``_cli_limits``,
``_top``, ``_metrics``, ``_doctor``, ``_demo`` and ``_selfbench``.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from . import __version__
from ._cli_common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    PROG,
    Failure,
    OutputFailed,
    closed_standard_streams,
    mode,
    positive,
    print_error,
    seconds,
    silence_stdout,
)
from ._cli_limits import cmd_limits
from ._cli_queues import cmd_create, cmd_info, cmd_list, cmd_receive, cmd_rm, cmd_send
from ._interrupt import is_interrupt
from ._top import SORT_KEYS


def interval(text: str) -> float:
    value = seconds(text)
    if value < 0.1:
        raise argparse.ArgumentTypeError(f"must be at least 0.1 seconds, not {text!r}")
    return value


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


def cmd_top(args: argparse.Namespace) -> int:
    """The live view."""
    from . import _top

    return _top.run(args.patterns, interval=args.interval, sort=args.sort)


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print the metrics, or serve them."""
    from . import _metrics

    return _metrics.run(args.listen)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check and explain."""
    from . import _doctor

    return _doctor.run(
        capacity=args.capacity, max_message_size=args.max_message_size, as_json=args.json
    )


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
    parser.set_defaults(prints=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", help="create a queue", description="Create a queue.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--capacity", type=positive, metavar="N", help="messages it holds")
    p.add_argument(
        "--max-message-size", type=positive, metavar="N", help="largest message, in bytes"
    )
    p.add_argument(
        "--mode", type=mode, default=0o600, metavar="MODE", help="octal permissions (0600)"
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
    p.add_argument("messages", nargs="*", default=[], metavar="MESSAGE")
    p.add_argument("-p", "--priority", type=int, default=0, metavar="N", help="0 (default) and up")
    p.add_argument("--create", action="store_true", help="create the queue if it does not exist")
    p.add_argument(
        "--timeout",
        type=seconds,
        metavar="S",
        help="give up after S seconds when the queue stays full (default: wait)",
    )
    p.set_defaults(func=cmd_send, parser=p, prints=False)

    p = sub.add_parser(
        "receive",
        help="receive and print messages",
        description="Print messages, one line each, highest priority first.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("-n", "--count", type=positive, metavar="N", help="how many (default 1)")
    p.add_argument(
        "--timeout", type=seconds, metavar="S", help="give up after S seconds (default: wait)"
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
    p.set_defaults(func=cmd_rm, parser=p, prints=False)

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
    p.add_argument("--rounds", type=positive, default=3, metavar="N", help="rounds (3)")
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
        "--messages", type=positive, default=5000, metavar="N", help="per producer (5000)"
    )
    p.set_defaults(func=cmd_demo, parser=p)

    p = sub.add_parser(
        "top",
        help="watch every queue, live (q or Ctrl-C to leave)",
        description="A live, full-screen view of the queues in /dev/mqueue: messages and "
        "capacity, the change since the last refresh, bytes, owner, mode and the notify pid; "
        "full queues marked. Keys: q leaves; n, m, f, b, c sort by name, messages, fill, "
        "bytes, change; r reverses.",
    )
    p.add_argument(
        "patterns",
        nargs="*",
        default=[],
        metavar="PATTERN",
        help="names to show (shell patterns such as '/jobs-*'; default: all)",
    )
    p.add_argument(
        "--interval", type=interval, default=1.0, metavar="S", help="seconds between refreshes (1)"
    )
    p.add_argument(
        "--sort",
        choices=list(SORT_KEYS.values()),
        default="fill",
        help="the order of the rows (fill: fullest first)",
    )
    p.set_defaults(func=cmd_top, parser=p)

    p = sub.add_parser(
        "metrics",
        help="the queues and limits as Prometheus/OpenMetrics text",
        description="Print the queues of /dev/mqueue and the system limits as Prometheus "
        "text (valid OpenMetrics too), for node_exporter's textfile collector; or serve it "
        "over HTTP for Prometheus to scrape.",
    )
    p.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        help="serve it at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1; "
        "name 0.0.0.0 or [::] to listen on every address)",
    )
    p.set_defaults(func=cmd_metrics, parser=p)

    p = sub.add_parser(
        "doctor",
        help="check this system for what breaks queues, and say how to fix it",
        description="Check /dev/mqueue, the IPC namespace, the limits against a queue of "
        "the given size, systemd's RemoveIPC= and this user's queues that are nearly full. "
        "Exit status 0 when all is well, 1 otherwise.",
    )
    p.add_argument("--capacity", type=positive, metavar="N", help="the queue you need: messages")
    p.add_argument(
        "--max-message-size", type=positive, metavar="N", help="the queue you need: bytes each"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_doctor, parser=p)
    return parser


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
    namespace = argparse.Namespace(command=first.command, prints=first.prints)
    return first.parser.parse_intermixed_args(rest, namespace)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    closed = closed_standard_streams()
    args = parse_args(argv)
    if args.command == "receive" and args.follow and (args.count or args.timeout is not None):
        args.parser.error("--follow does not go with --count or --timeout")
    if 1 in closed and args.prints:
        # Before it acts: a message received, a queue created, with nowhere to say so.
        print_error(Failure(f"{args.command} prints its results, and standard output is closed"))
        return EXIT_FAILURE
    if isinstance(sys.stdout, io.TextIOWrapper):  # names print back as the bytes they are
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        status = int(args.func(args))
        try:
            if sys.stdout is not None:
                sys.stdout.flush()  # a full stdout fails here, not in Python's exit
        except OSError as exc:
            raise OutputFailed(exc) from None
        return status
    except OutputFailed as exc:
        silence_stdout()
        if not exc.quiet:  # the reader went away (``| head``): stop quietly
            print_error(exc)
        return EXIT_FAILURE
    except BrokenPipeError:  # a print of the demo or the benchmark
        silence_stdout()
        return EXIT_FAILURE
    except (Failure, OSError, ValueError) as exc:
        print_error(exc)
        return EXIT_FAILURE
    except BaseException as exc:
        if is_interrupt(exc):
            return EXIT_INTERRUPTED
        raise
