"""The ``anyposixmq`` command line, run as a real subprocess.

Every subcommand and flag: its output, its exit status (0 done, 1 failed,
2 usage, 130 Ctrl-C), and one clear line on stderr instead of a traceback
for a user's mistake.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from _helpers import CHILD_CWD, MakeQueue, unique_name

import anyposixmq
from anyposixmq._limits import queue_cost

COMMAND = [sys.executable, "-m", "anyposixmq"]


def cli(
    *args: str, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m anyposixmq ARGS`` to the end."""
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=CHILD_CWD,
    )


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=CHILD_CWD,
    )


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The single line a user error prints; fails on a traceback or anything more."""
    err = result.stderr.decode()
    assert "Traceback" not in err, err
    assert err.startswith("anyposixmq: "), err
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    return err


def stdout_lines(result: subprocess.CompletedProcess[bytes]) -> list[bytes]:
    return result.stdout.splitlines()


def exists(name: str) -> bool:
    try:
        anyposixmq.MessageQueue(name).close()
    except FileNotFoundError:
        return False
    return True


def readline(proc: subprocess.Popen[bytes], timeout: float = 20) -> bytes:
    """One line from a running process's stdout, failing instead of hanging."""
    stream: IO[bytes] | None = proc.stdout
    assert stream is not None
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"no output within {timeout} s")
    return stream.readline()


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; killed if the test leaves them running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# -- usage -------------------------------------------------------------------


def test_help_lists_every_subcommand() -> None:
    result = cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    commands = ["create", "send", "receive", "info", "list", "rm", "limits", "bench", "demo"]
    for command in [*commands, "top", "metrics", "doctor"]:
        assert command in out


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"anyposixmq {anyposixmq.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["send"],
        ["send", "q", "x", "-p", "high"],
        ["receive", "q", "--timeout", "-1"],
        ["receive", "q", "--timeout", "nan"],
        ["receive", "q", "-n", "0"],
        ["receive", "q", "--follow", "--count", "2"],
        ["receive", "q", "--follow", "--timeout", "0"],
        ["create", "q", "--mode", "rw"],
        ["create", "q", "--capacity", "0"],
        ["rm"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert b"usage:" in result.stderr


def test_console_script_runs() -> None:
    script = shutil.which("anyposixmq", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the anyposixmq console script is not installed next to this Python")
    result = subprocess.run(
        [script, "--version"], capture_output=True, timeout=30, check=False, cwd=CHILD_CWD
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b"anyposixmq ")


# -- create ------------------------------------------------------------------


def test_create(queue_name: str) -> None:
    result = cli("create", queue_name, "--capacity", "3", "--max-message-size", "100")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        f"{queue_name} created: capacity 3, max message size 100 bytes\n"
    )
    with anyposixmq.MessageQueue(queue_name) as mq:
        assert (mq.capacity, mq.max_message_size) == (3, 100)


def test_create_name_without_slash(queue_name: str) -> None:
    result = cli("create", queue_name.lstrip("/"), "--capacity", "2", "--max-message-size", "16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{queue_name} created".encode())
    assert exists(queue_name)


def test_create_mode(queue_name: str) -> None:
    result = cli(
        "create", queue_name, "--capacity", "2", "--max-message-size", "16", "--mode", "640"
    )
    assert result.returncode == 0, result.stderr
    with anyposixmq.MessageQueue(queue_name) as mq:
        assert os.fstat(mq.fileno()).st_mode & 0o7777 == 0o640


def test_create_existing_leaves_it_alone(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=2, max_message_size=32)
    mq.send(b"kept")
    result = cli("create", str(mq.name), "--capacity", "4")
    assert result.returncode == 0
    assert result.stdout.decode() == (
        f"{mq.name} already exists: capacity 2, max message size 32 bytes\n"
    )
    assert mq.receive_nowait().data == b"kept"


def test_create_exclusive_existing_fails(mq: anyposixmq.MessageQueue) -> None:
    result = cli("create", str(mq.name), "--exclusive")
    assert result.returncode == 1
    assert "already exists" in one_error_line(result)


def test_create_too_large_explains_the_limit(queue_name: str) -> None:
    msg_max = anyposixmq.limits().msg_max
    if msg_max is None:
        pytest.skip("the system does not report msg_max")
    result = cli("create", queue_name, "--capacity", str(msg_max + 1), "--max-message-size", "16")
    assert result.returncode == 1
    assert "msg_max" in one_error_line(result)
    assert not exists(queue_name)


@pytest.mark.parametrize("name", ["a/b", "/", "/..", "x" * 300])
def test_bad_name_is_one_line(name: str) -> None:
    for args in (["create", name], ["send", name, "x"], ["receive", name], ["info", name]):
        result = cli(*args)
        assert result.returncode == 1, args
        assert "queue name" in one_error_line(result)


# -- send --------------------------------------------------------------------


def test_send_arguments_with_priority(mq: anyposixmq.MessageQueue) -> None:
    assert cli("send", str(mq.name), "low").returncode == 0
    result = cli("send", str(mq.name), "urgent", "wörld", "-p", "7")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert list(mq.drain()) == [
        anyposixmq.Message(b"urgent", 7),
        anyposixmq.Message("wörld".encode(), 7),
        anyposixmq.Message(b"low", 0),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--priority", "9", "urgent job", "second"],
        ["-p", "9", "urgent job", "second"],
        ["urgent job", "-p", "9", "second"],
        ["urgent job", "second", "--priority=9"],
    ],
)
def test_send_options_between_messages(args: list[str]) -> None:
    # argparse alone stops taking positionals at the first option:
    # ``send /jobs --priority 9 "urgent job"`` was "unrecognized arguments".
    from anyposixmq._cli import parse_args

    parsed = parse_args(["send", "/jobs", *args])
    assert parsed.command == "send"
    assert parsed.name == "/jobs"
    assert parsed.messages == ["urgent job", "second"]
    assert parsed.priority == 9


def test_options_between_positionals_end_to_end(mq: anyposixmq.MessageQueue) -> None:
    result = cli("send", str(mq.name), "--priority", "9", "urgent job")
    assert result.returncode == 0, result.stderr
    result = cli("receive", "--json", str(mq.name), "--timeout", "5")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"priority": 9, "data": "urgent job"}


def test_usage_errors_name_the_subcommand() -> None:
    result = cli("send", "/jobs", "--bogus")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "anyposixmq send: error: unrecognized arguments: --bogus" in err
    assert "Traceback" not in err


def test_send_stdin_lines(mq: anyposixmq.MessageQueue) -> None:
    result = cli("send", str(mq.name), "--priority", "2", stdin=b"one\n\nbin\xff\nlast")
    assert result.returncode == 0, result.stderr
    assert [m.data for m in mq.drain()] == [b"one", b"", b"bin\xff", b"last"]


def test_send_create(queue_name: str) -> None:
    result = cli("send", queue_name, "hello", "--create")
    assert result.returncode == 0, result.stderr
    with anyposixmq.MessageQueue(queue_name) as mq:
        assert mq.receive_nowait() == anyposixmq.Message(b"hello", 0)


def test_send_missing_queue(queue_name: str) -> None:
    result = cli("send", queue_name, "hello")
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"no message queue named {queue_name}" in line
    assert "--create" in line
    assert not exists(queue_name)


@pytest.mark.parametrize("priority", [str(anyposixmq.PRIORITY_MAX + 1), "-1"])
def test_send_bad_priority_sends_nothing(mq: anyposixmq.MessageQueue, priority: str) -> None:
    result = cli("send", str(mq.name), "x", f"--priority={priority}")
    assert result.returncode == 1
    assert "priority" in one_error_line(result)
    assert mq.attributes().current_messages == 0


def test_send_timeout_when_full(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=2, max_message_size=16)
    mq.send(b"first")
    result = cli("send", str(mq.name), "second", "third", "--timeout", "0.2")
    assert result.returncode == 1
    assert "timed out" in one_error_line(result)
    assert [m.data for m in mq.drain()] == [b"first", b"second"]


def test_send_too_long(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=2, max_message_size=8)
    result = cli("send", str(mq.name), "x" * 9)
    assert result.returncode == 1
    assert "max_message_size" in one_error_line(result)


# -- receive -----------------------------------------------------------------


def test_receive_count_takes_what_is_there_in_one_call(
    mq: anyposixmq.MessageQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    # --count uses receive_many: waiting as receive() does, then up to the
    # rest of the count in one call into C.
    from anyposixmq import _cli

    for data in (b"a", b"b", b"c"):
        mq.send(data)
    calls: list[int] = []
    receive_many = anyposixmq.MessageQueue.receive_many

    def counting(
        self: anyposixmq.MessageQueue, max_messages: int, *, timeout: float | None = None
    ) -> list[anyposixmq.Message]:
        calls.append(max_messages)
        return receive_many(self, max_messages, timeout=timeout)

    monkeypatch.setattr(anyposixmq.MessageQueue, "receive_many", counting)
    assert _cli.main(["receive", str(mq.name), "--count", "3", "--timeout", "5"]) == 0
    assert capsysbinary.readouterr().out == b"a\nb\nc\n"
    assert calls == [3]


def test_receive_one(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"a")
    mq.send(b"b", 3)
    result = cli("receive", str(mq.name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"b\n"
    assert mq.attributes().current_messages == 1


def test_receive_count_in_priority_order(mq: anyposixmq.MessageQueue) -> None:
    for data, prio in [(b"a", 0), (b"b", 5), (b"c", 0), (b"d", 9)]:
        mq.send(data, prio)
    result = cli("receive", str(mq.name), "-n", "4")
    assert result.returncode == 0, result.stderr
    assert stdout_lines(result) == [b"d", b"b", b"a", b"c"]


def test_receive_json_with_base64(mq: anyposixmq.MessageQueue) -> None:
    mq.send("héllo".encode(), 4)
    mq.send(b"\xff\x00raw", 1)
    result = cli("receive", str(mq.name), "--count", "2", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in stdout_lines(result)]
    assert records == [
        {"priority": 4, "data": "héllo"},
        {"priority": 1, "data_base64": base64.b64encode(b"\xff\x00raw").decode()},
    ]


def test_receive_timeout_empty(mq: anyposixmq.MessageQueue) -> None:
    result = cli("receive", str(mq.name), "--timeout", "0.1")
    assert result.returncode == 1
    assert result.stdout == b""
    assert "no message" in one_error_line(result)


def test_receive_timeout_after_some(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"only")
    result = cli("receive", str(mq.name), "-n", "3", "--timeout", "0.2")
    assert result.returncode == 1
    assert result.stdout == b"only\n"
    assert "received 1 of 3" in one_error_line(result)


@pytest.mark.parametrize("follow", [False, True])
def test_receive_missing_queue(queue_name: str, follow: bool) -> None:
    if follow:
        pytest.importorskip("anyposixmq._async")
    args = ["receive", queue_name, "--follow"] if follow else ["receive", queue_name]
    result = cli(*args)
    assert result.returncode == 1
    assert f"no message queue named {queue_name}" in one_error_line(result)


def test_receive_ctrl_c_exits_130(
    mq: anyposixmq.MessageQueue, running: list[subprocess.Popen[bytes]]
) -> None:
    mq.send(b"one")
    proc = start("receive", str(mq.name), "-n", "2")
    running.append(proc)
    assert readline(proc) == b"one\n"  # now waiting for the second
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert err == b""


def test_follow_receives_while_waiting_and_stops_on_ctrl_c(
    mq: anyposixmq.MessageQueue, running: list[subprocess.Popen[bytes]]
) -> None:
    pytest.importorskip("anyposixmq._async")
    mq.send(b"before", 2)
    proc = start("receive", str(mq.name), "--follow", "--json")
    running.append(proc)
    assert json.loads(readline(proc)) == {"priority": 2, "data": "before"}
    # It printed the first, so it is waiting: these arrive while it waits.
    for i in range(3):
        mq.send(f"later {i}".encode(), i)
        assert json.loads(readline(proc)) == {"priority": i, "data": f"later {i}"}
    mq.send(b"\xfe")
    assert json.loads(readline(proc)) == {"priority": 0, "data_base64": "/g=="}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert (out, err) == (b"", b"")
    assert mq.attributes().current_messages == 0


def test_follow_plain_text(
    mq: anyposixmq.MessageQueue, running: list[subprocess.Popen[bytes]]
) -> None:
    pytest.importorskip("anyposixmq._async")
    proc = start("receive", str(mq.name), "-f")
    running.append(proc)
    mq.send(b"tail me")
    assert readline(proc) == b"tail me\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert (proc.returncode, err) == (130, b"")


# -- info, rm ----------------------------------------------------------------


def test_info(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=3, max_message_size=50)
    mq.send(b"x")
    result = cli("info", str(mq.name))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert f"name              {mq.name}\n" in out
    assert "capacity          3 messages\n" in out
    assert "max message size  50 bytes\n" in out
    assert "current messages  1\n" in out
    assert f"about {queue_cost(3, 50):,} bytes" in out


def test_info_json(make_queue: MakeQueue) -> None:
    mq = make_queue(capacity=3, max_message_size=50)
    mq.send(b"x")
    mq.send(b"y")
    result = cli("info", str(mq.name), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": mq.name,
        "capacity": 3,
        "max_message_size": 50,
        "current_messages": 2,
        "cost_bytes": queue_cost(3, 50),
    }


def test_info_missing(queue_name: str) -> None:
    result = cli("info", queue_name)
    assert result.returncode == 1
    assert f"no message queue named {queue_name}" in one_error_line(result)


def test_rm(make_queue: MakeQueue) -> None:
    names = [str(make_queue().name) for _ in range(2)]
    result = cli("rm", *names)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == (b"", b"")
    assert not any(exists(name) for name in names)


def test_rm_missing_goes_on(make_queue: MakeQueue, queue_name: str) -> None:
    present = str(make_queue().name)
    result = cli("rm", queue_name, present)
    assert result.returncode == 1
    assert queue_name in one_error_line(result)
    assert not exists(present)


def test_rm_force_ignores_missing(queue_name: str) -> None:
    result = cli("rm", "-f", queue_name)
    assert (result.returncode, result.stderr) == (0, b"")
    result = cli("rm", "--force", "a/b")
    assert result.returncode == 1
    assert "queue name" in one_error_line(result)


# -- list --------------------------------------------------------------------


def _can_unshare(*flags: str) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", *flags, "true"], capture_output=True, check=False)
    return probe.returncode == 0


def test_list_not_mounted() -> None:
    from anyposixmq._limits import MQUEUE_MOUNT, _mqueue_mounted

    if _mqueue_mounted(MQUEUE_MOUNT):
        # Unmount it in a private mount namespace, leaving the real one alone.
        if not _can_unshare("-m"):
            pytest.skip("mqueuefs is mounted here and unshare -m is not available")
        script = 'umount /dev/mqueue && exec "$@"'
        args = ["unshare", "-m", "sh", "-c", script, "sh", *COMMAND, "list"]
    else:
        args = [*COMMAND, "list"]
    result = subprocess.run(args, capture_output=True, timeout=30, check=False, cwd=CHILD_CWD)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "not mounted" in line
    assert "mount -t mqueue none /dev/mqueue" in line


def test_list_in_private_namespace() -> None:
    if not _can_unshare("-i", "-m"):
        pytest.skip("unshare -i -m is not available (needs root or user namespaces)")
    # A private IPC namespace holds only our queues; a private mount
    # namespace lets us mount mqueuefs without touching the real /dev/mqueue.
    names = ["/zeta", "/alpha", "/mid-dle"]
    script = (
        "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue || exit 99\n"
        '"$@" list || exit 98\n'
        "echo ---\n"
        + "".join(f'"$@" create {n} --capacity 1 --max-message-size 8 >/dev/null\n' for n in names)
        + '"$@" list\n'
    )
    result = subprocess.run(
        ["unshare", "-i", "-m", "sh", "-c", script, "sh", *COMMAND],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=CHILD_CWD,
    )
    if result.returncode == 99:
        pytest.skip(f"cannot mount mqueuefs: {result.stderr.decode().strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "---\n/alpha\n/mid-dle\n/zeta\n"


# -- limits ------------------------------------------------------------------


def test_limits_text() -> None:
    lim = anyposixmq.limits()
    result = cli("limits")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    for key, value in [
        ("msg_max", lim.msg_max),
        ("msgsize_max", lim.msgsize_max),
        ("queues_max", lim.queues_max),
        ("priority_max", lim.priority_max),
    ]:
        if value is not None:
            assert f"{key} " in out
            assert f" {value:,} " in out
    assert "In practice:" in out
    assert "How to raise them:" in out
    assert "sysctl fs.mqueue.msg_max" in out
    assert "ulimit -q" in out
    if lim.msg_max is not None and lim.msgsize_max is not None:
        assert f"largest queue one may create holds {lim.msg_max} messages" in out
    if None not in (lim.msg_default, lim.msgsize_default, lim.rlimit_msgqueue):
        assert lim.msg_default is not None
        assert lim.msgsize_default is not None
        assert lim.rlimit_msgqueue is not None
        fit = lim.rlimit_msgqueue // queue_cost(lim.msg_default, lim.msgsize_default)
        assert f"so {fit} of them fit in RLIMIT_MSGQUEUE" in out


def test_limits_follow_a_lowered_rlimit() -> None:
    # The numbers are read live: lower RLIMIT_MSGQUEUE in the child only.
    if importlib.util.find_spec("resource") is None:
        pytest.skip("no resource module")
    import resource

    if not hasattr(resource, "RLIMIT_MSGQUEUE"):
        pytest.skip("no RLIMIT_MSGQUEUE on this platform")
    lim = anyposixmq.limits()
    if lim.msg_default is None or lim.msgsize_default is None:
        pytest.skip("the system does not report its default queue size")
    cost = queue_cost(lim.msg_default, lim.msgsize_default)
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_MSGQUEUE, ({3 * cost + 1}, {3 * cost + 1}))\n"
        "from anyposixmq._cli import main\n"
        "sys.exit(main(['limits']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False, cwd=CHILD_CWD
    )
    assert result.returncode == 0, result.stderr
    assert b"so 3 of them fit in RLIMIT_MSGQUEUE" in result.stdout
    assert f"{3 * cost + 1:,}".encode() in result.stdout


def test_limits_json() -> None:
    result = cli("limits", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    lim = anyposixmq.limits()
    for key in (
        "msg_max",
        "msgsize_max",
        "msg_default",
        "msgsize_default",
        "queues_max",
        "priority_max",
        "rlimit_msgqueue",
    ):
        assert record[key] == getattr(lim, key), key
    assert "rlimit_msgqueue_hard" in record


# -- bench -------------------------------------------------------------------


def test_bench_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The measurements themselves are tested in test_bench; here only the wiring.
    from anyposixmq import _cli, _selfbench

    calls: list[tuple[int, str | None]] = []

    def fake_run(*, rounds: int, json_path: str | None) -> int:
        calls.append((rounds, json_path))
        return 7

    monkeypatch.setattr(_selfbench, "run", fake_run)
    path = str(tmp_path / "b.json")
    assert _cli.main(["bench", "--rounds", "2", "--json", path]) == 7
    assert _cli.main(["bench"]) == 7
    assert calls == [(2, path), (3, None)]


def test_bench_help_points_to_the_comparison_suite() -> None:
    result = cli("bench", "--help")
    assert result.returncode == 0
    assert "nox -s bench" in result.stdout.decode()


def test_bench_bad_rounds_is_a_usage_error() -> None:
    result = cli("bench", "--rounds", "0")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


@pytest.mark.stress
@pytest.mark.timeout(900)
def test_bench_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    result = cli("bench", "--rounds", "1", "--json", str(path), timeout=900)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert result.stdout
    json.loads(path.read_text())


# -- demo --------------------------------------------------------------------


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains *text*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_demo(running: list[subprocess.Popen[bytes]]) -> None:
    pytest.importorskip("anyposixmq._async")
    name = unique_name("demo")
    try:
        result = cli("demo", "--name", name, "--messages", "300", timeout=120)
        out = result.stdout.decode()
        assert result.returncode == 0, (out, result.stderr)
        assert b"Traceback" not in result.stderr
        assert out.startswith(f"queue {name}: ")
        assert "asyncio\n" in out
        if importlib.util.find_spec("trio") is not None:
            assert "trio\n" in out
        assert "priorities  9 9 5 5 0 0 " in out
        assert "900 messages from 3 processes" in out
        assert "FAILED" not in out
        assert out.endswith(f"all checks passed; queue {name} removed\n")
        assert not exists(name)
        assert _processes_mentioning(name) == []
    finally:
        anyposixmq.unlink(name, missing_ok=True)


def test_demo_default_name_is_removed() -> None:
    pytest.importorskip("anyposixmq._async")
    result = cli("demo", "--messages", "50", timeout=120)
    assert result.returncode == 0, result.stderr
    first = result.stdout.decode().splitlines()[0]
    name = first.split()[1].rstrip(":")
    assert name.startswith("/anyposixmq-demo-")
    assert not exists(name)


def test_demo_never_takes_an_existing_queue(mq: anyposixmq.MessageQueue) -> None:
    mq.send(b"mine")
    result = cli("demo", "--name", str(mq.name))
    assert result.returncode == 1
    assert "already exists" in one_error_line(result)
    assert exists(str(mq.name))
    assert mq.receive_nowait().data == b"mine"


def test_demo_ctrl_c_removes_its_queue(running: list[subprocess.Popen[bytes]]) -> None:
    pytest.importorskip("anyposixmq._async")
    name = unique_name("demo")
    try:
        # Enough messages that it is still streaming when interrupted.
        proc = start("demo", "--name", name, "--messages", "200000")
        running.append(proc)
        assert readline(proc).startswith(f"queue {name}: ".encode())
        assert exists(name)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert b"Traceback" not in err
        assert b"interrupted" in err
        assert not exists(name)
        assert _processes_mentioning(name) == []
    finally:
        anyposixmq.unlink(name, missing_ok=True)


def test_demo_error_removes_its_queue() -> None:
    # Producers that cannot start: the demo fails with one line, queue removed.
    name = unique_name("demo")
    code = (
        "import sys\n"
        "from anyposixmq._cli import main\n"
        "sys.executable = '/bin/false'\n"
        f"sys.exit(main(['demo', '--name', {name!r}]))\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            timeout=120,
            check=False,
            cwd=CHILD_CWD,
        )
        assert result.returncode == 1
        err = result.stderr.decode()
        assert "Traceback" not in err
        # Its own line comes last (asyncio may log about the failed children first).
        line = err.splitlines()[-1]
        assert line.startswith("anyposixmq: demo failed: a producer process failed")
        assert f"its queue {name} is removed" in line
        assert not exists(name)
    finally:
        anyposixmq.unlink(name, missing_ok=True)


def test_demo_from_a_source_checkout(tmp_path: Path) -> None:
    # README: `pip install . && anyposixmq demo` runs in the checkout, whose
    # anyposixmq/ (without the compiled binding) must not shadow the
    # installed package in the producer processes.
    pytest.importorskip("anyposixmq._async")
    script = shutil.which("anyposixmq", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the anyposixmq console script is not installed next to this Python")
    shadow = tmp_path / "anyposixmq"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the uninstalled checkout')\n")
    name = unique_name("demo")
    try:
        result = subprocess.run(
            [script, "demo", "--name", name, "--messages", "20"],
            capture_output=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert not exists(name)
    finally:
        anyposixmq.unlink(name, missing_ok=True)


def test_follow_into_a_closed_pipe_stops_quietly(
    mq: anyposixmq.MessageQueue, running: list[subprocess.Popen[bytes]]
) -> None:
    # `anyposixmq receive -f q | head -1`: when the reader goes, so does it.
    pytest.importorskip("anyposixmq._async")
    proc = start("receive", str(mq.name), "-f")
    running.append(proc)
    mq.send(b"first")
    assert readline(proc) == b"first\n"
    assert proc.stdout is not None
    proc.stdout.close()
    mq.send(b"second")
    assert proc.wait(timeout=20) == 1
    assert proc.stderr is not None
    assert proc.stderr.read() == b""
    assert list(mq.drain()) == [anyposixmq.Message(b"second", 0)]  # put back, not lost


def run_main_with(setup: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the command line in a child that first runs *setup* (limits, user)."""
    code = (
        "import os, resource, shutil, sys\n"
        "from anyposixmq._cli import main\n"
        f"{setup}\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False, cwd=CHILD_CWD
    )


def test_rlimit_msgqueue_is_explained(queue_name: str) -> None:
    import resource

    if not hasattr(resource, "RLIMIT_MSGQUEUE"):
        pytest.skip("no RLIMIT_MSGQUEUE on this platform")
    setup = "resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1000, 1000))"
    result = run_main_with(
        setup, "create", queue_name, "--capacity", "4", "--max-message-size", "1024"
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert "RLIMIT_MSGQUEUE" in line
    assert "1,000 bytes" in line
    assert not exists(queue_name)


def test_permission_denied(make_queue: MakeQueue) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    mq = make_queue(mode=0o600)
    # Root ignores the mode (CAP_DAC_OVERRIDE): drop to nobody in the child,
    # having imported what argparse imports late (nobody may not read the
    # interpreter's files; Python 3.10 has not imported locale by then).
    setup = "import locale; os.setgid(65534); os.setuid(65534)"
    result = run_main_with(setup, "receive", str(mq.name), "--timeout", "0")
    assert result.returncode == 1
    assert f"{mq.name}: permission denied" in one_error_line(result)
