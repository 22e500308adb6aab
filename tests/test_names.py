"""Queue names: normalisation, str and bytes, and every rule checked before a system call."""

from __future__ import annotations

from typing import Any

import pytest
from _helpers import MakeQueue, unique_name

import anyposixmq


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


@pytest.mark.parametrize("name", ["/a\udcff", "\ud800"])
@pytest.mark.usefixtures("no_syscalls")
def test_str_that_is_not_utf8_encodable(name: str) -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        anyposixmq.MessageQueue(name, create=True)


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
