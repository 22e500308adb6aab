"""The sessions that README.md, docs/cli.rst and docs/operating.rst show for
``top``, ``metrics`` and ``doctor``, run as a newcomer would type them.

These commands need mqueuefs, and their output names queues and limits, so
each session (a ``text`` block whose lines start with ``$ anyposixmq``) runs
in a private IPC namespace with mqueuefs mounted, from nothing, with
RLIMIT_MSGQUEUE at Linux's default of 819,200 bytes: there its output is
the same on every machine, and must be what the page shows.  Only doctor's
RemoveIPC= check depends on the machine (whether systemd runs, how it is
configured); its lines are left out of the comparison.  The screen of
``top`` that operating.rst shows is compared in a real terminal.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _namespaces
import pytest
from _helpers import CHILD_CWD
from _namespaces import Tmux

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "docs" / "cli.rst", ROOT / "docs" / "operating.rst"]
#: Stands for ``anyposixmq`` in the sessions' shell.
FUNCTION = 'anyposixmq() { "$PY" -m anyposixmq "$@"; }\n'
LIMIT = "prlimit --msgqueue=819200:819200 --pid $$ || exit 98\n"
_STATUS = re.compile(r"^(ok|note|problem|skipped) +(\w+) ")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    yield from _namespaces.tmux_server(tmp_path)


def text_blocks(path: Path) -> list[tuple[str, list[str]]]:
    """(where, lines) of each ``text`` block of *path*, dedented."""
    lines = path.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() in ("```text", ".. code-block:: text"):
            start, body = i + 1, []
            fenced = line.strip() == "```text"
            i += 1
            while i < len(lines):
                if fenced and lines[i].strip() == "```":
                    break
                if not fenced and lines[i].strip() and not lines[i].startswith(" "):
                    break
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            while body and not body[0].strip():
                body.pop(0)
            indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
            blocks.append((f"{path.name}:{start}", [b[indent:] for b in body]))
        i += 1
    return blocks


def sessions() -> list[tuple[str, list[str]]]:
    return [
        (where, body)
        for page in PAGES
        for where, body in text_blocks(page)
        if body and body[0].startswith("$ anyposixmq ")
    ]


def split(body: list[str]) -> list[tuple[str, list[str]]]:
    """(command, output lines) of each ``$`` line of a session."""
    steps: list[tuple[str, list[str]]] = []
    for line in body:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def without_removeipc(lines: list[str]) -> list[str]:
    """The lines of doctor's output less those of its RemoveIPC= check."""
    kept, skipping = [], False
    for line in lines:
        if (match := _STATUS.match(line)) is not None:
            skipping = match.group(2) == "removeipc"
        if not skipping:
            kept.append(line)
    return kept


def run_session(steps: list[tuple[str, list[str]]]) -> list[list[str]]:
    """The output of each command, run in order in one fresh private namespace."""
    script = _namespaces.MOUNT + LIMIT + FUNCTION
    for command, _ in steps:
        script += f"echo @@@\n{command}\n"
    result = _namespaces.run(script)
    if result.returncode == 98:
        pytest.skip("prlimit(1) cannot set RLIMIT_MSGQUEUE to 819,200 here")
    assert result.stderr == "", result.stderr
    outputs = result.stdout.split("@@@\n")[1:]
    return [output.splitlines() for output in outputs]


SESSIONS = sessions()


def test_each_page_has_a_session() -> None:
    pages = {where.split(":")[0] for where, _ in SESSIONS}
    assert pages == {"README.md", "cli.rst", "operating.rst"}
    commands = {step[0].split()[1] for _, body in SESSIONS for step in split(body)}
    assert {"metrics", "doctor"} <= commands


@pytest.mark.parametrize("body", [body for _, body in SESSIONS], ids=[w for w, _ in SESSIONS])
def test_session_output(body: list[str]) -> None:
    steps = split(body)
    for (command, expected), actual in zip(steps, run_session(steps), strict=True):
        if command.startswith("anyposixmq doctor"):
            expected, actual = without_removeipc(expected), without_removeipc(actual)
        assert actual == expected, command


def test_without_removeipc() -> None:
    lines = ["ok       mount      x", "ok       removeipc  y", "   z", "note     namespace  w"]
    assert without_removeipc(lines) == [lines[0], lines[3]]


# -- the screen of top -------------------------------------------------------------


def top_screens() -> list[tuple[str, list[str], list[str]]]:
    """(where, setup commands, screen) of each screen of top the pages show: the
    commands are those of the session before it on the same page."""
    found = []
    for page in PAGES:
        session: list[str] = []
        for where, body in text_blocks(page):
            if body and body[0].startswith("$ anyposixmq "):
                session = [command for command, _ in split(body)]
            elif body and body[0].startswith("anyposixmq top: "):
                found.append((where, session, body))
    return found


TOP_SCREENS = top_screens()


def test_each_page_shows_top() -> None:
    assert {where.split(":")[0] for where, _, _ in TOP_SCREENS} == {"README.md", "operating.rst"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("setup", "expected"),
    [(setup, screen) for _, setup, screen in TOP_SCREENS],
    ids=[where for where, _, _ in TOP_SCREENS],
)
def test_top_screen(tmux: Tmux, tmp_path: Path, setup: list[str], expected: list[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("the pages show root's queues")
    script = tmp_path / "top.sh"
    commands = "".join(f"{command} >/dev/null\n" for command in setup)
    script.write_text(
        _namespaces.MOUNT
        + FUNCTION
        + "unset COLUMNS LINES\n"
        + commands
        + 'exec "$PY" -m anyposixmq top\n'
    )
    command = f"env PY={sys.executable} unshare -i -m sh {script}"
    width = max(map(len, expected)) + 1  # top draws one column short of the edge
    tmux("new-session", "-d", "-x", str(width), "-y", "12", "-c", str(CHILD_CWD), command)
    wanted = [line for line in expected if line.strip()]
    deadline = time.monotonic() + 30
    while True:
        actual = [line.rstrip() for line in tmux.screen().splitlines() if line.strip()]
        if actual == wanted:
            break
        assert time.monotonic() < deadline, actual
        time.sleep(0.05)
    tmux("send-keys", "q")
