"""The command line with a closed or full standard output, closed standard
input, and what ``send`` says when it runs out of time or arguments.

Standard output closed (``>&-``) or full (``> /dev/full``): one line on
stderr and status 1, never a traceback; ``receive`` never consumes a message
it did not write (it puts it back).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import CHILD_CWD, MakeQueue
from test_cli import COMMAND, cli, exists, one_error_line

import anyposixmq


def shell(line: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``anyposixmq ARGS`` with the redirections of *line* (``"$@" >&-``)."""
    return subprocess.run(
        ["sh", "-c", line, "sh", *COMMAND, *args],
        input=stdin,
        capture_output=stdin is not None or ">" in line,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )


def closed_stdout(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["sh", "-c", '"$@" >&-', "sh", *COMMAND, *args],
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )


# -- stdout closed -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["limits"],
        ["limits", "--json"],
        ["list"],
        ["metrics"],
        ["doctor"],
        ["top"],
        ["demo", "--messages", "10"],
        ["bench", "--rounds", "1"],
    ],
)
def test_closed_stdout_is_one_line(args: list[str]) -> None:
    result = closed_stdout(*args)
    assert result.returncode == 1
    assert "standard output is closed" in one_error_line(result)


def test_closed_stdout_receive_takes_nothing(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"kept")
    for args in (["receive", str(mq.name)], ["receive", str(mq.name), "--follow"]):
        result = closed_stdout(*args)
        assert result.returncode == 1
        assert "standard output is closed" in one_error_line(result)
    assert list(mq.drain()) == [anyposixmq.Message(b"kept", 0)]


def test_closed_stdout_info_and_create(mq: anyposixmq.MessageQueue, queue_name: str) -> None:
    result = closed_stdout("info", str(mq.name))
    assert result.returncode == 1
    one_error_line(result)
    result = closed_stdout("create", queue_name, "--capacity", "2", "--max-message-size", "8")
    assert result.returncode == 1
    one_error_line(result)
    assert not exists(queue_name)  # it stopped before acting


def test_closed_stdout_send_and_rm_still_work(make_queue: MakeQueue) -> None:
    # They print nothing when they succeed; descriptor 1 gets /dev/null, so
    # the queue they open cannot take its number.
    mq = make_queue()
    result = closed_stdout("send", str(mq.name), "one", "two")
    assert (result.returncode, result.stderr) == (0, b"")
    assert [m.data for m in mq.drain()] == [b"one", b"two"]
    gone = make_queue()
    result = closed_stdout("rm", str(gone.name))
    assert (result.returncode, result.stderr) == (0, b"")
    assert not exists(str(gone.name))


def test_closed_stdin_send_says_so(mq: anyposixmq.MessageQueue) -> None:
    result = subprocess.run(
        ["sh", "-c", '"$@" <&-', "sh", *COMMAND, "send", str(mq.name)],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 1
    assert "standard input is closed" in one_error_line(result)


def test_closed_stderr_still_exits_1(queue_name: str) -> None:
    result = subprocess.run(
        ["sh", "-c", '"$@" 2>&-', "sh", *COMMAND, "info", queue_name],
        capture_output=False,
        stdout=subprocess.PIPE,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    assert (result.returncode, result.stdout) == (1, b"")


# -- stdout full -----------------------------------------------------------------


def test_full_stdout_receive_puts_the_messages_back(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"first", 5)
    mq.send(b"second")
    result = shell('"$@" > /dev/full', "receive", str(mq.name), "--count", "2")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "cannot write to standard output: No space left on device" in line
    assert f"2 messages put back into {mq.name}" in line
    assert list(mq.drain()) == [anyposixmq.Message(b"first", 5), anyposixmq.Message(b"second", 0)]


def test_full_stdout_follow_puts_the_message_back(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"only", 3)
    result = shell('"$@" > /dev/full', "receive", str(mq.name), "--follow", "--json")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "No space left on device" in line
    assert f"the message was put back into {mq.name}" in line
    assert list(mq.drain()) == [anyposixmq.Message(b"only", 3)]


@pytest.mark.parametrize("args", [["limits"], ["info", "QUEUE"], ["doctor"]])
def test_full_stdout_is_one_line(args: list[str], mq: anyposixmq.MessageQueue) -> None:
    args = [str(mq.name) if a == "QUEUE" else a for a in args]
    result = shell('"$@" > /dev/full', *args)
    assert result.returncode == 1
    assert "cannot write to standard output" in one_error_line(result)


def test_put_back_without_write_permission_says_so(make_queue: MakeQueue) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    mq = make_queue(mode=0o644)
    mq.send(b"taken")
    code = (
        "import locale, os, shutil, sys\n"
        "from anyposixmq._cli import main\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"sys.exit(main(['receive', {mq.name!r}]))\n"
    )
    result = subprocess.run(
        ["sh", "-c", '"$@" > /dev/full', "sh", sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    assert result.returncode == 1
    assert "could not be put back" in one_error_line(result)
    assert "no permission to write to it" in result.stderr.decode()


# -- send --------------------------------------------------------------------------


def test_send_without_arguments_names_only_what_is_required() -> None:
    result = cli("send")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "the following arguments are required: NAME\n" in err
    assert "MESSAGE" not in err.splitlines()[-1]


def test_send_timeout_says_how_many_went(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=2, max_message_size=16)
    mq.send(b"waiting")
    result = cli("send", str(mq.name), "a", "b", "c", "--timeout", "0.2")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "timed out after 0.2 s" in line
    assert line.endswith("sent 1 of 3\n")
    assert [m.data for m in mq.drain()] == [b"waiting", b"a"]


def test_send_timeout_counts_the_lines_of_a_file(make_queue: MakeQueue, tmp_path: Path) -> None:
    mq = make_queue(capacity=2, max_message_size=16)
    lines = tmp_path / "lines"
    lines.write_bytes(b"".join(b"line %d\n" % i for i in range(10)))
    with lines.open("rb") as stdin:
        result = subprocess.run(
            [*COMMAND, "send", str(mq.name), "--timeout", "0.2"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
            check=False,
            cwd=CHILD_CWD,
        )
    assert result.returncode == 1
    assert one_error_line(result).endswith("sent 2 of 10 lines\n")


def test_send_timeout_from_a_pipe(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=1, max_message_size=16)
    result = cli("send", str(mq.name), "--timeout", "0.2", stdin=b"one\ntwo\nthree\n")
    assert result.returncode == 1
    assert one_error_line(result).endswith("sent 1 line; line 2 and any after it were not sent\n")
