"""The public namespace is exactly the contract's names, and their shapes are pinned."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any

import anyposixmq

CONTRACT = {
    "MessageQueue",
    "AsyncMessageQueue",
    "Message",
    "QueueAttributes",
    "SystemLimits",
    "unlink",
    "limits",
    "list_queues",
    "PRIORITY_MAX",
    "PUT_BACK_TIMEOUT",
    "PutBackError",
    "QueueAttribute",
    "QueueStatistics",
}


def test_all_is_exactly_the_contract() -> None:
    assert set(anyposixmq.__all__) == CONTRACT
    assert len(anyposixmq.__all__) == len(CONTRACT)  # no duplicates


def test_every_public_name_exists() -> None:
    for name in anyposixmq.__all__:
        assert hasattr(anyposixmq, name), name


def test_star_import_gives_the_contract() -> None:
    namespace: dict[str, object] = {}
    exec("from anyposixmq import *", namespace)
    assert set(namespace) - {"__builtins__"} == CONTRACT


def test_nothing_else_public_but_modules_and_version() -> None:
    extra = {
        name
        for name, value in vars(anyposixmq).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert extra - {"annotations"} <= CONTRACT
    assert isinstance(anyposixmq.__version__, str)


def test_public_objects_say_they_are_from_anyposixmq() -> None:
    # Private module paths should not leak into reprs and docs.
    for name in CONTRACT - {"PRIORITY_MAX", "PUT_BACK_TIMEOUT"}:
        obj = getattr(anyposixmq, name)
        assert obj.__module__.startswith("anyposixmq"), name
        assert obj.__doc__, f"{name} has no docstring"


def test_message_is_a_named_tuple() -> None:
    msg = anyposixmq.Message(b"data", 3)
    assert isinstance(msg, tuple)
    assert anyposixmq.Message._fields == ("data", "priority")
    assert typing.get_type_hints(anyposixmq.Message) == {"data": bytes, "priority": int}
    assert msg == (b"data", 3)


def test_queue_attributes_fields_and_frozen() -> None:
    # The contract allows a frozen dataclass or a NamedTuple.
    attrs: Any = anyposixmq.QueueAttributes(
        capacity=4, max_message_size=128, current_messages=1, nonblocking=False
    )
    assert (attrs.capacity, attrs.max_message_size, attrs.current_messages, attrs.nonblocking) == (
        4,
        128,
        1,
        False,
    )
    if dataclasses.is_dataclass(attrs):
        assert [f.name for f in dataclasses.fields(attrs)] == [
            "capacity",
            "max_message_size",
            "current_messages",
            "nonblocking",
        ]
        cls: Any = anyposixmq.QueueAttributes
        assert cls.__dataclass_params__.frozen
    else:
        assert type(attrs)._fields == (
            "capacity",
            "max_message_size",
            "current_messages",
            "nonblocking",
        )


def test_system_limits_fields() -> None:
    fields = [f.name for f in dataclasses.fields(anyposixmq.SystemLimits)]
    assert fields == [
        "msg_max",
        "msgsize_max",
        "msg_default",
        "msgsize_default",
        "queues_max",
        "priority_max",
        "rlimit_msgqueue",
    ]
    assert anyposixmq.SystemLimits.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_priority_max_is_an_int() -> None:
    assert type(anyposixmq.PRIORITY_MAX) is int
    assert anyposixmq.PRIORITY_MAX >= 31  # POSIX asks for at least 32 priorities


def test_message_queue_signature() -> None:
    params = inspect.signature(anyposixmq.MessageQueue).parameters
    assert list(params) == [
        "name",
        "create",
        "exclusive",
        "read",
        "write",
        "mode",
        "capacity",
        "max_message_size",
        "nonblocking",
    ]
    assert params["name"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    defaults = {
        name: p.default
        for name, p in params.items()
        if name != "name" and p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert defaults == {
        "create": False,
        "exclusive": False,
        "read": True,
        "write": True,
        "mode": 0o600,
        "capacity": None,
        "max_message_size": None,
        "nonblocking": False,
    }


def test_message_queue_methods() -> None:
    mq = anyposixmq.MessageQueue
    for name in [
        "send",
        "send_nowait",
        "receive",
        "receive_nowait",
        "receive_into",
        "drain",
        "attributes",
        "fileno",
        "get_inheritable",
        "set_inheritable",
        "dup",
        "detach",
        "from_fd",
        "unlink",
        "close",
        "__enter__",
        "__exit__",
        "__iter__",
    ]:
        assert callable(getattr(mq, name)), name
    for name in ["name", "capacity", "max_message_size", "closed", "nonblocking"]:
        assert isinstance(inspect.getattr_static(mq, name), property), name
    assert inspect.getattr_static(mq, "nonblocking").fset is not None
    assert isinstance(inspect.getattr_static(mq, "from_fd"), classmethod)
    send = inspect.signature(mq.send).parameters
    assert send["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert send["timeout"].default is None
    assert inspect.signature(mq.receive).parameters["timeout"].kind is (
        inspect.Parameter.KEYWORD_ONLY
    )
    assert inspect.signature(mq.receive_into).parameters["timeout"].default is None


def test_unlink_signature() -> None:
    params = inspect.signature(anyposixmq.unlink).parameters
    assert list(params) == ["name", "missing_ok"]
    assert params["missing_ok"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["missing_ok"].default is False
