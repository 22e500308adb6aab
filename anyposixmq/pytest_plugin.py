"""A pytest plugin for the tests of code that uses anyposixmq.

pytest loads it in every project where anyposixmq is installed (the
``pytest11`` entry point ``anyposixmq``; ``-p no:anyposixmq`` turns it off).
Its fixtures create queues with unique names and remove them after the test,
whatever happened; the ``message_queue`` marker sizes those queues, and a test
whose queue the system's limits cannot hold is skipped with the reason.

Queues are kernel objects that outlive the process, and RLIMIT_MSGQUEUE
(819,200 bytes per user by default) is shared by every test run of that user:
hence small default sizes and an unlink after every test.  A queue's name
carries the process id and a random token, so parallel runs (pytest-xdist)
and runs that reuse a process id never meet.

The async fixtures run under anyio's pytest plugin, which comes with anyio,
on whatever backends the ``anyio_backend`` fixture names: they request it, so
anyio runs them (and the test) in the test's event loop.  This module imports
only pytest and the package; never trio, so projects without it are unharmed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import pytest

from ._async import AsyncMessageQueue
from ._limits import SystemLimits, default_sizes, limits, queue_cost
from ._names import QueueName
from ._sync import MessageQueue, unlink

# The fixtures are not listed: pytest finds them; importing them into a
# conftest would define them twice.
__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AsyncMessageQueueFactory",
    "MessageQueueFactory",
    "skip_unless_fits",
]

#: The capacity of the queues the fixtures create, unless a test asks otherwise.
DEFAULT_CAPACITY = 4
#: Their ``max_message_size``: 4 x 128 bytes cost under 1 KiB of RLIMIT_MSGQUEUE.
DEFAULT_MAX_MESSAGE_SIZE = 128

#: What the ``make_message_queue`` fixture gives: ``make(name=None, **options)``.
MessageQueueFactory = Callable[..., MessageQueue]
#: What the ``make_async_message_queue`` fixture gives: ``make(name=None, **options)``.
AsyncMessageQueueFactory = Callable[..., AsyncMessageQueue]

_MARKER = "message_queue"
_counter = itertools.count()
_token = os.urandom(4).hex()
#: Linux's capability to go past fs.mqueue.msg_max and msgsize_max.
_CAP_SYS_RESOURCE = 24


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): options (capacity, max_message_size, strategy, ...) "
        "of the queues that anyposixmq's fixtures create for this test; skips the "
        "test, saying why, where the system's limits cannot hold such a queue",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Decided when collected, as skipif is: reported at the test's own line,
    # and no fixture of a test that cannot have its queue is ever set up.
    for item in items:
        reason = _why_its_queue_does_not_fit(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def _why_its_queue_does_not_fit(item: pytest.Item) -> str | None:
    """Why the queue that *item* asks for (its marker, or its indirect
    parameters of the queue fixtures) cannot be created; None if it can."""
    callspec = getattr(item, "callspec", None)
    params = {} if callspec is None else callspec.params
    asked = [
        params[fixture]
        for fixture in ("message_queue", "async_message_queue")
        if isinstance(params.get(fixture), dict)
    ]
    if not asked and item.get_closest_marker(_MARKER) is None:
        return None
    marked = _marker_options(item)
    for given in asked or [{}]:
        options = _creation_options(marked, given)
        if options["create"]:
            reason = _why_not_here(options["capacity"], options["max_message_size"])
            if reason is not None:
                return reason
    return None


def skip_unless_fits(capacity: int | None = None, max_message_size: int | None = None) -> None:
    """Skip the running test, saying why, unless this system's limits allow a
    queue of *capacity* messages of *max_message_size* bytes.

    ``None`` stands for what a queue created without that size gets.  The
    limits are those that :func:`anyposixmq.limits` reads (on Linux,
    ``fs.mqueue.msg_max`` and ``msgsize_max``, which a process with
    ``CAP_SYS_RESOURCE`` may exceed, and RLIMIT_MSGQUEUE); limits the platform
    does not report are not checked.  What the user's other queues hold now is
    not known: a queue that fits may still find RLIMIT_MSGQUEUE used up.
    """
    __tracebackhide__ = True  # the skip is reported at the caller's line
    reason = _why_not_here(capacity, max_message_size)
    if reason is not None:
        pytest.skip(reason)


def _why_not_here(capacity: int | None, max_message_size: int | None) -> str | None:
    return _why_it_does_not_fit(
        limits(), capacity, max_message_size, may_exceed_maxima=_has_cap_sys_resource()
    )


def _why_it_does_not_fit(
    lim: SystemLimits,
    capacity: int | None,
    max_message_size: int | None,
    *,
    may_exceed_maxima: bool,
) -> str | None:
    """Why a queue of these sizes cannot be created under *lim*; None if it can."""
    defaults = default_sizes(lim)
    if defaults is not None:
        capacity = defaults[0] if capacity is None else capacity
        max_message_size = defaults[1] if max_message_size is None else max_message_size
    problems = []
    if not may_exceed_maxima:
        if capacity is not None and lim.msg_max is not None and capacity > lim.msg_max:
            problems.append(f"capacity {capacity} is more than fs.mqueue.msg_max ({lim.msg_max})")
        if (
            max_message_size is not None
            and lim.msgsize_max is not None
            and max_message_size > lim.msgsize_max
        ):
            problems.append(
                f"max_message_size {max_message_size} is more than "
                f"fs.mqueue.msgsize_max ({lim.msgsize_max})"
            )
    if capacity is not None and max_message_size is not None and lim.rlimit_msgqueue is not None:
        cost = queue_cost(capacity, max_message_size)
        if cost > lim.rlimit_msgqueue:
            problems.append(
                f"it costs about {cost} bytes, more than RLIMIT_MSGQUEUE "
                f"({lim.rlimit_msgqueue} bytes; see ulimit -q)"
            )
    if not problems:
        return None
    sizes = ", ".join(
        f"{what} {'(default)' if value is None else value}"
        for what, value in [("capacity", capacity), ("max_message_size", max_message_size)]
    )
    return f"this system cannot hold a queue of {sizes}: {'; '.join(problems)}"


def _has_cap_sys_resource() -> bool:
    """Whether this process holds CAP_SYS_RESOURCE (Linux; False elsewhere)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
    return False


def _marker_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The options of the node's ``message_queue`` markers, the closest winning."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers(_MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"{node.nodeid}: the {_MARKER} marker takes keyword arguments only "
                f"(capacity=..., max_message_size=..., strategy=...), not {marker.args!r}"
            )
        options.update(marker.kwargs)
    return options


def _creation_options(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for a new queue: *given* over *defaults*, created
    (small) unless told otherwise."""
    options = {"create": True, **defaults, **given}
    if options["create"]:
        options.setdefault("capacity", DEFAULT_CAPACITY)
        options.setdefault("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    return options


def _unique_name() -> str:
    return f"/pytest-{os.getpid()}-{_token}-{next(_counter)}"


@pytest.fixture
def mq_name() -> Iterator[str]:
    """A unique queue name; the queue of that name is unlinked after the test,
    whatever happened (it need not exist)."""
    name = _unique_name()
    yield name
    unlink(name, missing_ok=True)


@pytest.fixture
def make_message_queue(request: pytest.FixtureRequest) -> Iterator[MessageQueueFactory]:
    """A factory of MessageQueues: ``make(name=None, **options)`` takes the
    arguments of ``MessageQueue``.

    Without a name it makes a unique one; unless told otherwise it creates the
    queue, with capacity 4 and 128-byte messages, or what the test's
    ``message_queue`` marker says (its ``strategy`` is for async queues and
    ignored here).  It makes what it is told to, so a queue too big for the
    system raises the error that says which limit (a test that needs it
    calls ``skip_unless_fits`` first).  After the test, every queue it made
    is closed and its name unlinked, even a name only opened.
    """
    defaults = _marker_options(request.node)
    defaults.pop("strategy", None)
    with ExitStack() as stack:

        def make(name: QueueName | None = None, **given: Any) -> MessageQueue:
            options = _creation_options(defaults, given)
            if name is None:
                name = _unique_name()
            stack.callback(unlink, name, missing_ok=True)
            queue = MessageQueue(name, **options)
            stack.callback(queue.close)
            return queue

        yield make


@pytest.fixture
async def make_async_message_queue(
    request: pytest.FixtureRequest, anyio_backend: object
) -> AsyncIterator[AsyncMessageQueueFactory]:
    """A factory of AsyncMessageQueues: ``make(name=None, **options)`` takes
    the arguments of ``AsyncMessageQueue``.

    As ``make_message_queue``, and the marker's ``strategy`` applies.  After
    the test, every queue it made is closed in the test's event loop and its
    name unlinked.  Needs anyio's pytest plugin: it runs on the backends that
    the ``anyio_backend`` fixture names.
    """
    defaults = _marker_options(request.node)
    async with AsyncExitStack() as stack:

        def make(name: QueueName | None = None, **given: Any) -> AsyncMessageQueue:
            options = _creation_options(defaults, given)
            if name is None:
                name = _unique_name()
            stack.callback(unlink, name, missing_ok=True)
            queue = AsyncMessageQueue(name, **options)
            stack.push_async_callback(queue.aclose)
            return queue

        yield make


@pytest.fixture
def message_queue(
    request: pytest.FixtureRequest, make_message_queue: MessageQueueFactory
) -> MessageQueue:
    """A new MessageQueue, open for reading and writing: capacity 4, 128-byte
    messages, unless the ``message_queue`` marker or an indirect parameter (a
    dict of ``MessageQueue`` arguments) says otherwise; the test is skipped,
    saying why, where the system's limits cannot hold it.  Closed and unlinked
    after the test.
    """
    return make_message_queue(**getattr(request, "param", {}))


@pytest.fixture
async def async_message_queue(
    request: pytest.FixtureRequest, make_async_message_queue: AsyncMessageQueueFactory
) -> AsyncMessageQueue:
    """A new AsyncMessageQueue, open for reading and writing: capacity 4,
    128-byte messages and the platform's strategy, unless the
    ``message_queue`` marker or an indirect parameter (a dict of
    ``AsyncMessageQueue`` arguments) says otherwise; skipped as
    ``message_queue`` is.  Closed in the test's event loop and unlinked after
    the test; needs anyio's pytest plugin.
    """
    return make_async_message_queue(**getattr(request, "param", {}))
