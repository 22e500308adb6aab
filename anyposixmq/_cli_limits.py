"""``anyposixmq limits``: the system's limits, read now, and what they allow."""

from __future__ import annotations

import argparse
import json

from ._cli_common import EXIT_OK, out
from ._limits import SystemLimits, default_sizes, limits, queue_cost, rlimit_msgqueue


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


HOW_TO_RAISE = [
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
        out(json.dumps(record))
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
    out("System limits on POSIX message queues (read now):")
    for key, value, meaning in rows:
        out(f"  {key:<16} {value:>10}  {meaning}")
    out()
    out("In practice:")
    for line in _practice(lim):
        out(f"  {line}")
    out()
    out("How to raise them:")
    for line in HOW_TO_RAISE:
        out(f"  {line}")
    return EXIT_OK
