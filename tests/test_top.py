"""``anyposixmq top`` in a real terminal: tmux runs it, ``send-keys`` types,
``capture-pane`` reads the screen.

top runs in a private mount namespace with mqueuefs mounted (it needs
``/dev/mqueue``), showing the machine's IPC namespace through a name pattern,
so that the test can fill its queues from here while top watches them.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import _namespaces
import pytest
from _helpers import CHILD_CWD, MakeQueue, unique_name
from _namespaces import Tmux

#: Each run of top ends here, so the pane stays to be read.
SCRIPT = """\
unset COLUMNS LINES  # curses would take them over the pane's size
echo before top
unshare -m sh -c 'mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue &&
  exec "$0" -m anyposixmq top "$1"' {python} '{pattern}'
echo "status=$?"
stty -a
sleep 600
"""


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    yield from _namespaces.tmux_server(tmp_path)


def row(screen: str, name: str) -> list[str]:
    """The cells of *name*'s row."""
    for line in screen.splitlines():
        if line.startswith(name + " "):
            return line.split()
    return []


def start_top(tmux: Tmux, tmp_path: Path, pattern: str) -> None:
    script = tmp_path / "top.sh"
    script.write_text(SCRIPT.format(python=sys.executable, pattern=pattern))
    tmux("new-session", "-d", "-x", "150", "-y", "30", "-c", str(CHILD_CWD), f"bash {script}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("key", "status"), [("q", 0), ("C-c", 130)])
def test_top_watches_queues_fill(
    tmux: Tmux, tmp_path: Path, make_queue: MakeQueue, key: str, status: int
) -> None:
    prefix = unique_name("top")
    fast, slow, full = (
        make_queue(f"{prefix}-{tag}", capacity=cap, max_message_size=32)
        for tag, cap in (("fast", 8), ("slow", 8), ("full", 4))
    )
    start_top(tmux, tmp_path, f"{prefix}-*")
    tmux.wait_for("the three queues", lambda s: "3 queues, 0 full; every 1 s" in s)

    def fill() -> None:  # at different rates
        for i in range(6):
            fast.send(b"f%d" % i)
            if i % 2:
                slow.send(b"s%d" % i)
            time.sleep(0.05)
        for _ in range(4):
            full.send(b"x" * 32)

    filler = threading.Thread(target=fill)
    filler.start()
    filler.join()
    screen = tmux.wait_for(
        "the queues filled",
        lambda s: (
            row(s, str(full.name))[1:3] == ["4/4", "FULL"]
            and row(s, str(fast.name))[1:3] == ["6/8", "75%"]
            and row(s, str(slow.name))[1:3] == ["3/8", "38%"]
        ),
    )
    assert "3 queues, 1 full; every 1 s; sorted by fill" in screen
    # Fullest first; the full one in reverse video.
    names = [line.split()[0] for line in screen.splitlines() if line.startswith(prefix)]
    assert names == [str(full.name), str(fast.name), str(slow.name)]
    assert re.search(rf"\x1b\[7m{re.escape(str(full.name))} ", tmux.screen(escapes=True))
    cells = row(screen, str(full.name))
    assert cells[-5:] == ["128", "32", cells[-3], "0600", "-"]  # bytes, size, owner, mode, notify

    # The change since the last refresh: one message each way.
    fast.receive_nowait()
    tmux.wait_for("-1", lambda s: row(s, str(fast.name))[1:4] == ["5/8", "62%", "-1"])
    slow.send(b"one more")
    tmux.wait_for("+1", lambda s: row(s, str(slow.name))[1:4] == ["4/8", "50%", "+1"])

    # Sorting by name, then reversed.
    tmux("send-keys", "n")
    screen = tmux.wait_for("sorted by name", lambda s: "sorted by name" in s)
    names = [line.split()[0] for line in screen.splitlines() if line.startswith(prefix)]
    assert names == sorted(names)
    tmux("send-keys", "r")
    screen = tmux.wait_for("reversed", lambda s: "sorted by name, reversed" in s)
    names = [line.split()[0] for line in screen.splitlines() if line.startswith(prefix)]
    assert names == sorted(names, reverse=True)

    tmux("send-keys", key)
    # stty prints "icanon" or "-icanon" after the status: wait for both.
    screen = tmux.wait_for("the exit status and stty", lambda s: "status=" in s and "icanon" in s)
    assert f"status={status}\n" in screen
    assert "before top" in screen  # the screen top drew is gone
    assert "Traceback" not in screen
    assert re.search(r"(?<!-)\bicanon\b", screen)  # the terminal is back as it was
    assert re.search(r"(?<!-)\becho\b", screen)


def test_snapshot_of_a_queue_it_may_not_open() -> None:
    # As nobody: a queue of root's with mode 0600 shows only owner and mode.
    if os.geteuid() != 0:
        pytest.skip("needs root to make a queue nobody may not open")
    script = (
        _namespaces.MOUNT
        + "$APMQ create /secret --mode 0600 --capacity 2 --max-message-size 8 >/dev/null\n"
        + "$APMQ create /open --mode 0644 --capacity 2 --max-message-size 8 >/dev/null\n"
        + "$APMQ send /open hello\n"
        + "exec $PY -c 'import locale, os, pwd\n"
        "from anyposixmq import _snapshot\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "for q in _snapshot.take(): print(q)'\n"
    )
    result = _namespaces.run(script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "QueueState(name='/open', uid=0, mode=420, data_bytes=5, notify_pid=0, capacity=2,"
        " max_message_size=8, messages=1)",
        "QueueState(name='/secret', uid=0, mode=384, data_bytes=None, notify_pid=None,"
        " capacity=None, max_message_size=None, messages=None)",
    ]


def test_top_needs_a_terminal() -> None:
    result = _namespaces.run(_namespaces.MOUNT + "exec $APMQ top")
    assert result.returncode == 1
    assert result.stderr.startswith("anyposixmq: top needs a terminal")
    assert result.stderr.count("\n") == 1


def test_top_without_mqueuefs_says_how_to_mount_it() -> None:
    result = _namespaces.run(_namespaces.UNMOUNT + "exec $APMQ top", ipc=False)
    assert result.returncode == 1
    assert "mount -t mqueue none /dev/mqueue" in result.stderr


def test_rows_of_a_view() -> None:
    from anyposixmq._snapshot import QueueState
    from anyposixmq._top import View

    def state(name: str, messages: int | None, capacity: int | None = 10) -> QueueState:
        return QueueState(name, 0, 0o600, 0, 0, capacity, 8, messages)

    view = View([], 1.0, "fill")
    view.update([state("/a", 1), state("/b", 5), state("/c", None, None)])
    assert [q.name for q in view.ordered()] == ["/b", "/a", "/c"]  # unknown last
    view.update([state("/a", 3), state("/b", 5), state("/d", 0)])
    assert view.changes == {"/a": 2, "/b": 0}
    assert view.new == {"/d"}
    view.sort = "change"
    assert [q.name for q in view.ordered()] == ["/a", "/b", "/d"]
    view.reverse = True
    assert [q.name for q in view.ordered()] == ["/b", "/a", "/d"]
    lines = view.lines(100)
    assert lines[0][0].startswith("anyposixmq top: 3 queues, 0 full")
    assert "new" in row("\n".join(text for text, _, _ in lines), "/d")
