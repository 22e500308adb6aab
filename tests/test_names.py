"""Queue names: normalisation, str and bytes, and every rule checked before a system call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from _helpers import CHILD_CWD, MakeQueue, run_in_private_mqueuefs, unique_name

import anyposixmq
from anyposixmq import _names


def test_leading_slash_is_added(make_queue: MakeQueue) -> None:
    bare = unique_name().lstrip("/")
    created = make_queue(bare)
    assert created.name == "/" + bare
    with anyposixmq.MessageQueue("/" + bare) as same:
        created.send(b"one way", 3)
        assert same.receive(timeout=1) == (b"one way", 3)
        same.send(b"other way", 4)
        assert created.receive(timeout=1) == (b"other way", 4)


def test_bytes_and_str_name_the_same_queue(make_queue: MakeQueue) -> None:
    name = unique_name() + "-caf\u00e9"
    created = make_queue(name)
    for alias in (name.encode(), name.encode().lstrip(b"/"), name.lstrip("/")):
        with anyposixmq.MessageQueue(alias) as other:
            assert other.name == name
            other.send(b"x")
            assert created.receive(timeout=1) == (b"x", 0)


def test_non_utf8_bytes_name(make_queue: MakeQueue) -> None:
    raw = unique_name().encode() + b"-\xff"
    created = make_queue(raw)
    with anyposixmq.MessageQueue(raw) as other:
        other.send(b"y")
    assert created.receive(timeout=1).data == b"y"
    anyposixmq.unlink(raw)
    with pytest.raises(FileNotFoundError):
        anyposixmq.MessageQueue(raw)


def test_255_bytes_after_the_slash_is_accepted_by_the_kernel(make_queue: MakeQueue) -> None:
    prefix = unique_name("long").lstrip("/")
    name = prefix + "x" * (255 - len(prefix))
    assert len(name.encode()) == 255
    mq = make_queue(name)
    assert mq.name == "/" + name
    mq.send(b"fits")
    with anyposixmq.MessageQueue("/" + name) as again:
        assert again.receive(timeout=1).data == b"fits"


def test_length_counts_bytes_not_characters(make_queue: MakeQueue) -> None:
    # 127 two-byte characters and one ASCII: 255 bytes, accepted.
    prefix = unique_name("u").lstrip("/")
    fill = "\u00e9" * ((255 - len(prefix)) // 2)
    name = prefix + fill + "a" * ((255 - len(prefix)) % 2)
    assert len(name.encode()) == 255
    make_queue(name)
    with pytest.raises(ValueError, match="NAME_MAX"):
        anyposixmq.MessageQueue(name + "\u00e9", create=True)


BAD_NAMES: list[tuple[object, str]] = [
    ("", "empty"),
    (b"", "empty"),
    ("/a\0b", "NUL"),
    (b"a\0", "NUL"),
    ("/a/b", "slash after the leading one"),
    ("a/b", "slash after the leading one"),
    ("//a", "slash after the leading one"),
    (b"/a/", "slash after the leading one"),
    ("/", '"/" alone'),
    (b"/", '"/" alone'),
    ("/.", r'"/\." or "/\.\."'),
    (".", r'"/\." or "/\.\."'),
    ("/..", r'"/\." or "/\.\."'),
    (b"..", r'"/\." or "/\.\."'),
    ("/" + "x" * 256, "256 bytes long after the slash.*NAME_MAX = 255"),
    ("x" * 256, "256 bytes long after the slash.*NAME_MAX = 255"),
    (b"/" + b"x" * 300, "300 bytes long after the slash"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
@pytest.mark.usefixtures("no_syscalls")
def test_bad_name_rejected_before_any_system_call(name: Any, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        anyposixmq.MessageQueue(name, create=True)
    with pytest.raises(ValueError, match=rule):
        anyposixmq.unlink(name)
    with pytest.raises(ValueError, match=rule):
        anyposixmq.unlink(name, missing_ok=True)


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_bad_name_creates_nothing(name: Any, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        anyposixmq.MessageQueue(name, create=True, capacity=1, max_message_size=1)


def test_second_slash_creates_nothing_under_the_first_part() -> None:
    first = unique_name()
    with pytest.raises(ValueError):
        anyposixmq.MessageQueue(first + "/child", create=True, capacity=1, max_message_size=1)
    with pytest.raises(FileNotFoundError):
        anyposixmq.MessageQueue(first)


@pytest.mark.parametrize("name", ["\ud800", "/a\udbff", "/b" + chr(0xDC7F)])
@pytest.mark.usefixtures("no_syscalls")
def test_lone_surrogate_that_stands_for_no_byte(name: str) -> None:
    # Only U+DC80..U+DCFF carry a byte (as os.fsencode reads them).
    with pytest.raises(ValueError, match="lone surrogate"):
        anyposixmq.MessageQueue(name, create=True)
    with pytest.raises(ValueError, match="lone surrogate"):
        anyposixmq.unlink(name)


@pytest.mark.parametrize("name", ["/caf\udce9", "/\udcff\udc80", "/caf\u00e9\udce9"])
def test_str_name_is_encoded_as_os_fsencode_does(name: str) -> None:
    assert _names.encode_name(name) == os.fsencode(name)
    assert _names.display_name(os.fsencode(name)) == name


def test_non_utf8_name_round_trips(make_queue: MakeQueue) -> None:
    # A queue another program made with a name that is not UTF-8 is reported
    # with surrogate escapes, and that report opens and removes it.
    raw = unique_name("caf").encode() + b"\xe9"
    created = make_queue(raw)
    reported = created.name
    assert reported == raw.decode("utf-8", "surrogateescape")
    assert reported is not None
    assert reported.endswith("\udce9")
    with anyposixmq.MessageQueue(reported) as again:
        again.send(b"by its reported name")
    assert created.receive(timeout=1).data == b"by its reported name"
    with anyposixmq.MessageQueue(reported.lstrip("/"), create=True, exclusive=False) as same:
        assert same.name == reported
    anyposixmq.unlink(reported)
    with pytest.raises(FileNotFoundError) as info:
        anyposixmq.MessageQueue(raw)
    assert info.value.filename == reported
    assert created.attributes().current_messages == 0  # still open, name gone


def test_str_with_surrogates_creates_the_bytes_name(make_queue: MakeQueue) -> None:
    name = unique_name("esc") + "-\udcff"
    make_queue(name)
    with anyposixmq.MessageQueue(name.encode("utf-8", "surrogateescape")) as same:
        assert same.name == name
    anyposixmq.unlink(name.encode("utf-8", "surrogateescape"))


def test_posix_ipc_non_utf8_name_round_trips() -> None:
    posix_ipc = pytest.importorskip("posix_ipc")
    raw = unique_name("pi").encode() + b"-\xe9\xff"
    theirs = posix_ipc.MessageQueue(
        raw, posix_ipc.O_CREX, max_messages=2, max_message_size=16, read=False
    )
    try:
        theirs.send(b"from posix_ipc", priority=2)
        name = raw.decode("utf-8", "surrogateescape")
        with anyposixmq.MessageQueue(name, write=False) as ours:
            assert ours.name == name
            assert ours.receive(timeout=1) == (b"from posix_ipc", 2)
        anyposixmq.unlink(name)
        with pytest.raises(posix_ipc.ExistentialError):
            posix_ipc.MessageQueue(raw)
    finally:
        theirs.close()
        anyposixmq.unlink(raw, missing_ok=True)


_LIST_SCRIPT = """
import json, os, anyposixmq
raw = b"/list-caf-%d\\xe9" % os.getpid()
anyposixmq.MessageQueue(raw, create=True, capacity=1, max_message_size=8).close()
try:
    mine = [name for name in anyposixmq.list_queues() if name.startswith("/list-caf-")]
    for name in mine:
        anyposixmq.unlink(name)
finally:
    anyposixmq.unlink(raw, missing_ok=True)
print(json.dumps([raw.decode("utf-8", "surrogateescape"), mine]))
"""


def test_list_queues_reports_names_that_can_be_given_back() -> None:
    proc = run_in_private_mqueuefs(_LIST_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    name, listed = json.loads(proc.stdout)
    assert name.endswith("\udce9")
    assert listed == [name]  # listed, and unlinked by that name


def _cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    # Strict UTF-8 on stdout, as under a UTF-8 locale such as en_US.UTF-8.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "anyposixmq", *args],
        capture_output=True,
        timeout=30,
        check=False,
        cwd=CHILD_CWD,
        env=env,
    )


def test_cli_reports_non_utf8_names_that_can_be_given_back(queue_name: str) -> None:
    raw = queue_name.encode() + b"-caf\xe9"
    try:
        made = _cli("create", raw, "--capacity", "2", "--max-message-size", "16")
        assert made.returncode == 0, made.stderr
        # The name printed is the queue's bytes, whatever the terminal takes.
        printed = made.stdout.split(b" ", 1)[0]
        assert printed == raw
        info = _cli("info", printed)
        assert info.returncode == 0, info.stderr
        assert info.stdout.splitlines()[0].split() == [b"name", raw]
        as_json = _cli("info", "--json", printed)
        assert as_json.returncode == 0, as_json.stderr
        reported = json.loads(as_json.stdout)["name"]
        assert reported == raw.decode("utf-8", "surrogateescape")
        sent = _cli("send", os.fsencode(reported), "hello")
        assert sent.returncode == 0, sent.stderr
        with anyposixmq.MessageQueue(reported) as mq:
            assert mq.receive(timeout=1).data == b"hello"
        removed = _cli("rm", printed)
        assert (removed.returncode, removed.stderr) == (0, b"")
        with pytest.raises(FileNotFoundError):
            anyposixmq.MessageQueue(raw)
    finally:
        anyposixmq.unlink(raw, missing_ok=True)


@pytest.mark.parametrize("name", [None, 5, ["/a"], bytearray(b"/a"), memoryview(b"/a")])
@pytest.mark.usefixtures("no_syscalls")
def test_name_of_another_type_is_a_type_error(name: Any) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        anyposixmq.MessageQueue(name, create=True)
    with pytest.raises(TypeError, match="str or bytes"):
        anyposixmq.unlink(name)


@pytest.mark.usefixtures("no_syscalls")
def test_from_fd_checks_its_name_first() -> None:
    with pytest.raises(ValueError, match="slash"):
        anyposixmq.MessageQueue.from_fd(0, name="/a/b")
