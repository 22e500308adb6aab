"""``anyposixmq top``: a live, full-screen view of the queues of this IPC namespace.

It draws with the standard library's :mod:`curses`: nothing to install on a
server, it reads keys as well as drawing (rich's live display draws but reads
no keys), and it works in any terminal that terminfo knows, over ssh
included.  Only text attributes (bold, reverse video) are used, no colours,
so it reads the same on a monochrome terminal and in ``tmux capture-pane``.

Between refreshes it waits in ``select`` on the terminal and on the Ctrl-C
pipe of :class:`~anyposixmq._interrupt.Interrupt`; ``q`` leaves with status 0,
Ctrl-C with 130, and ``curses.wrapper`` restores the terminal either way (and
on an error).
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import _snapshot
from ._cli_common import EXIT_INTERRUPTED, EXIT_OK, Failure
from ._interrupt import Interrupt
from ._snapshot import QueueState

#: Keys that pick the order of the rows, and the ``--sort`` name of each.
SORT_KEYS = {"n": "name", "m": "messages", "f": "fill", "b": "bytes", "c": "change"}

#: (title, width) of the columns after the queue's name, right-aligned.
COLUMNS = [
    ("MSGS/CAP", 11),
    ("FILL", 6),
    ("CHANGE", 8),
    ("BYTES", 11),
    ("MSGSIZE", 9),
    ("OWNER", 10),
    ("MODE", 6),
    ("NOTIFY", 8),
]
_FIXED = sum(width for _, width in COLUMNS)


class View:
    """What the screen shows: the last snapshot, the change since the one before, the order."""

    def __init__(self, patterns: Sequence[str], interval: float, sort: str) -> None:
        self.patterns = patterns
        self.interval = interval
        self.sort = sort
        self.reverse = False
        self.states: list[QueueState] = []
        #: Messages now less messages at the refresh before, where both are known.
        self.changes: dict[str, int] = {}
        #: Queues that were not there at the refresh before.
        self.new: set[str] = set()
        self._previous: dict[str, int | None] | None = None

    def update(self, states: list[QueueState]) -> None:
        """Take a new snapshot; the change is measured against the one before."""
        before, self.states = self._previous, states
        self.changes, self.new = {}, set()
        for q in states:
            if before is None:
                continue
            if q.name not in before:
                self.new.add(q.name)
            elif q.messages is not None and (old := before[q.name]) is not None:
                self.changes[q.name] = q.messages - old
        self._previous = {q.name: q.messages for q in states}

    def ordered(self) -> list[QueueState]:
        """The rows in the chosen order; rows without a value for the key come last."""
        value: Callable[[QueueState], Any] = {
            "name": lambda q: q.name,
            "messages": lambda q: q.messages,
            "fill": lambda q: q.fill,
            "bytes": lambda q: q.data_bytes,
            "change": lambda q: self.changes.get(q.name),
        }[self.sort]
        by_name = sorted(self.states, key=lambda q: q.name)
        known = [q for q in by_name if value(q) is not None]
        unknown = [q for q in by_name if value(q) is None]
        # Names A to Z, numbers largest first; r turns either round.
        descending = (self.sort != "name") != self.reverse
        return sorted(known, key=value, reverse=descending) + unknown

    def row(self, q: QueueState) -> str:
        known = q.capacity is not None and q.messages is not None
        change = self.changes.get(q.name)
        cells = [
            f"{q.messages}/{q.capacity}" if known else "?",
            "FULL" if q.full else (f"{q.fill:.0%}" if q.fill is not None else ""),
            "new" if q.name in self.new else (f"{change:+d}" if change else ""),
            "" if q.data_bytes is None else f"{q.data_bytes:,}",
            "" if q.max_message_size is None else f"{q.max_message_size:,}",
            q.owner[:9],
            f"{q.mode:04o}",
            "-" if not q.notify_pid else str(q.notify_pid),
        ]
        return "".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True))

    def lines(self, width: int) -> list[tuple[str, bool, bool]]:
        """(text, bold, reverse) of each line of the screen, *width* columns wide."""
        name_width = max(12, width - _FIXED - 1)
        full = sum(q.full for q in self.states)
        order = f"sorted by {self.sort}" + (", reversed" if self.reverse else "")
        title = (
            f"anyposixmq top: {len(self.states)} queue{'s' * (len(self.states) != 1)}, "
            f"{full} full; "
            f"every {self.interval:g} s; {order}"
        )
        keys = "q quit   n m f b c: sort by name, messages, fill, bytes, change   r reverse"
        header = f"{'QUEUE':<{name_width}}" + "".join(f"{t:>{w}}" for t, w in COLUMNS)
        lines = [(title, True, False), (keys, False, False), ("", False, False)]
        lines.append((header, True, False))
        for q in self.ordered():
            name = q.name if len(q.name) <= name_width - 1 else q.name[: name_width - 2] + "~"
            lines.append((f"{name:<{name_width}}" + self.row(q), False, q.full))
        if not self.states:
            wanted = " ".join(self.patterns)
            lines.append((f"no queue matches {wanted}" if wanted else "no queues", False, False))
        return lines


def _draw(screen: Any, view: View) -> None:
    import curses

    height, width = screen.getmaxyx()
    screen.erase()
    for y, (text, bold, reverse) in enumerate(view.lines(width)[:height]):
        attr = (curses.A_BOLD if bold else 0) | (curses.A_REVERSE if reverse else 0)
        screen.addnstr(y, 0, text, width - 1, attr)
    screen.refresh()


def _keys(screen: Any, view: View) -> bool | None:
    """Act on the keys pressed: True to leave, False to redraw, None when nothing changed."""
    outcome = None
    while (key := screen.getch()) != -1:
        char = chr(key) if 0 <= key < 256 else ""
        if char in ("q", "Q"):
            return True
        if char in SORT_KEYS:
            view.sort = SORT_KEYS[char]
        elif char == "r":
            view.reverse = not view.reverse
        outcome = False  # any other key (a resize among them) redraws
    return outcome


def _loop(screen: Any, view: View, interrupt: Interrupt) -> None:
    import curses

    try:
        curses.curs_set(0)
    except curses.error:
        pass  # a terminal that cannot hide the cursor
    screen.nodelay(True)
    while True:
        _draw(screen, view)
        deadline = time.monotonic() + view.interval
        while (remaining := deadline - time.monotonic()) > 0:
            select.select([sys.stdin, interrupt], [], [], remaining)
            # Read away what signals wrote before looking at `caught`: the
            # handler sets it before it writes, so nothing is lost.
            interrupt.discard()
            if interrupt.caught:
                return
            outcome = _keys(screen, view)
            if outcome:
                return
            if outcome is False:
                _draw(screen, view)
        view.update(_snapshot.take(view.patterns))


def run(patterns: Sequence[str], *, interval: float, sort: str) -> int:
    """Show the view until ``q`` (status 0) or Ctrl-C (status 130)."""
    view = View(patterns, interval, sort)
    view.update(_snapshot.take(patterns))  # not mounted: say so before the screen changes
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Failure(
            "top needs a terminal; in a script use anyposixmq metrics or anyposixmq info NAME"
        )
    import curses

    with Interrupt() as interrupt:
        curses.wrapper(_loop, view, interrupt)
    return EXIT_INTERRUPTED if interrupt.caught else EXIT_OK
