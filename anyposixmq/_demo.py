"""``anyposixmq demo``: producer processes, async consumers, priorities and a timeout.

The demo creates a small queue of its own under a unique name, starts
producer processes that send at several priorities, and consumes their
messages with ``async for`` on asyncio (and asyncio+uvloop and trio when they
are installed).  It checks what it shows, prints a short report, and removes
its queue whatever happens, Ctrl-C included.

``python -m anyposixmq._demo NAME PRIORITY COUNT`` is one producer.
"""

from __future__ import annotations

import errno
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ._children import PACKAGE_HOME, module_command
from ._interrupt import Interrupt, is_interrupt
from ._sync import MessageQueue, unlink
from ._types import Message

CAPACITY = 8
MAX_MESSAGE_SIZE = 64
#: One producer process per priority: low, normal, urgent.
PRIORITIES = (0, 5, 9)
#: Messages each producer sends for the priority check; all of them fit in the queue.
SHOWN_PER_PRODUCER = 2
TIMEOUT = 0.25
#: A producer gives up when the queue stays full this long (the consumer is gone).
PRODUCER_PATIENCE = 30.0


@dataclass
class Report:
    """What one backend showed, and whether each check held."""

    backend: str
    priorities: list[int] = field(default_factory=list)
    priorities_ok: bool = False
    received: int = 0
    seconds: float = 0.0
    stream_ok: bool = False
    waited: float = 0.0
    timeout_ok: bool = False

    @property
    def ok(self) -> bool:
        return self.priorities_ok and self.stream_ok and self.timeout_ok


def _say(line: str = "") -> None:
    print(line, flush=True)


def _mark(ok: bool) -> str:
    return "ok" if ok else "FAILED"


def _decode(msg: Message) -> tuple[int, int]:
    """(producer priority, sequence number) of a demo message."""
    prio, seq = msg.data.decode("ascii").split(":")
    return int(prio), int(seq)


def _in_order(messages: list[Message], per_producer: int) -> bool:
    """Each priority's messages arrived all, once, and in the order they were sent."""
    seen: dict[int, list[int]] = {p: [] for p in PRIORITIES}
    for msg in messages:
        prio, seq = _decode(msg)
        if prio != msg.priority or prio not in seen:
            return False
        seen[prio].append(seq)
    return all(seqs == list(range(per_producer)) for seqs in seen.values())


async def _produce(name: str, priority: int, count: int) -> None:
    import anyio

    command = module_command("anyposixmq._demo", name, priority, count)
    await anyio.run_process(command, stdout=None, check=True, cwd=PACKAGE_HOME)


async def _showcase(name: str, per_producer: int, backend: str) -> Report:
    import anyio

    from ._async import AsyncMessageQueue

    report = Report(backend)
    async with AsyncMessageQueue(name) as queue:
        # 1. Priorities: all producers send while nobody receives, then the
        #    messages come out highest priority first, FIFO within one.
        async with anyio.create_task_group() as tg:
            for prio in PRIORITIES:
                tg.start_soon(_produce, name, prio, SHOWN_PER_PRODUCER)
        shown = [await queue.receive() for _ in range(SHOWN_PER_PRODUCER * len(PRIORITIES))]
        report.priorities = [msg.priority for msg in shown]
        report.priorities_ok = report.priorities == sorted(
            report.priorities, reverse=True
        ) and _in_order(shown, SHOWN_PER_PRODUCER)

        # 2. A stream: the producers send concurrently into the small queue
        #    (they wait while it is full); one task takes them with async for.
        total = per_producer * len(PRIORITIES)
        streamed: list[Message] = []
        async with anyio.create_task_group() as tg:
            for prio in PRIORITIES:
                tg.start_soon(_produce, name, prio, per_producer)
            first = 0.0
            async for msg in queue:
                if not streamed:
                    first = time.perf_counter()
                streamed.append(msg)
                if len(streamed) == total:
                    break
            report.seconds = time.perf_counter() - first
        report.received = len(streamed)
        report.stream_ok = report.received == total and _in_order(streamed, per_producer)

        # 3. A timeout is a cancel scope: the receive on the empty queue is
        #    cancelled, takes nothing, and the queue goes on working.
        start = time.perf_counter()
        with anyio.move_on_after(TIMEOUT) as scope:
            await queue.receive()
        report.waited = time.perf_counter() - start
        await queue.send(b"still here", 1)
        after = await queue.receive()
        report.timeout_ok = scope.cancelled_caught and after == Message(b"still here", 1)
    return report


class DemoError(RuntimeError):
    """The demo could not run to the end (its queue is removed all the same)."""


def _describe(exc: BaseException) -> str:
    """One line about what went wrong, from the first error inside any groups."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(exc, subprocess.CalledProcessError):
        err = exc.stderr.decode(errors="replace").strip().splitlines() if exc.stderr else []
        last = err[-1] if err else f"exit status {exc.returncode}"
        return f"a producer process failed: {last}"
    return f"{type(exc).__name__}: {exc}"


def installed_backends() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, anyio backend, backend options) for what is installed."""
    found: list[tuple[str, str, dict[str, Any]]] = [("asyncio", "asyncio", {})]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass
    else:
        found.append(("asyncio+uvloop", "asyncio", {"use_uvloop": True}))
    try:
        import trio  # noqa: F401
    except ImportError:
        pass
    else:
        found.append(("trio", "trio", {}))
    return found


def _print_report(report: Report) -> None:
    rate = (report.received - 1) / report.seconds if report.seconds > 0 else float("inf")
    order = " ".join(str(p) for p in report.priorities)
    _say(report.backend)
    _say(f"  priorities  {order}  highest first, FIFO within one: {_mark(report.priorities_ok)}")
    _say(
        f"  stream      {report.received:,} messages from {len(PRIORITIES)} processes "
        f"in {report.seconds:.2f} s ({rate:,.0f} msg/s), each priority in order: "
        f"{_mark(report.stream_ok)}"
    )
    _say(
        f"  timeout     receive() on the empty queue cancelled by move_on_after({TIMEOUT}) "
        f"after {report.waited:.2f} s, nothing lost: {_mark(report.timeout_ok)}"
    )


def run(*, name: str | None = None, messages: int = 5000) -> int:
    """Run the demo on queue *name* (default: a new unique name); return the exit status.

    :param messages: how many messages each producer sends in the stream.
    :raises KeyboardInterrupt: on Ctrl-C, however it was timed, after the
        queue is removed and the producers are gone.
    """
    if name is None:
        name = f"/anyposixmq-demo-{os.getpid()}-{secrets.token_hex(4)}"
    with Interrupt() as interrupt:  # from before the queue exists until it is gone
        return _run(interrupt, name, messages)


def _run(interrupt: Interrupt, name: str, messages: int) -> int:
    # exclusive: never take over (and then remove) a queue somebody else made.
    try:
        created = MessageQueue(
            name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=MAX_MESSAGE_SIZE
        )
    except FileExistsError as exc:
        raise OSError(
            errno.EEXIST,
            "the queue already exists; the demo only runs on a queue of its own",
            exc.filename,
        ) from None
    with created:
        name = created.name or name
    try:
        _say(
            f"queue {name}: capacity {CAPACITY}, messages up to {MAX_MESSAGE_SIZE} bytes; "
            f"{len(PRIORITIES)} producer processes at priorities " + ", ".join(map(str, PRIORITIES))
        )
        ok = True
        for label, backend, options in installed_backends():
            report = interrupt.run(
                _showcase, name, messages, label, backend=backend, backend_options=options
            )
            _print_report(report)
            ok = ok and report.ok
        if interrupt.caught:
            raise KeyboardInterrupt
    except BaseException as exc:
        # Ctrl-C wins over what it made go wrong (a producer killed by the
        # same Ctrl-C from the terminal, a cancelled task).
        if interrupt.caught or is_interrupt(exc):
            sys.stderr.write(f"demo interrupted; its queue {name} is removed\n")
            raise KeyboardInterrupt from None
        if not isinstance(exc, Exception):
            raise
        raise DemoError(f"demo failed: {_describe(exc)}; its queue {name} is removed") from exc
    finally:
        unlink(name, missing_ok=True)
    _say(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'}; queue {name} removed")
    return 0 if ok else 1


def _producer(argv: list[str]) -> None:
    name, priority, count = argv[0], int(argv[1]), int(argv[2])
    with MessageQueue(name, read=False) as queue:
        for seq in range(count):
            queue.send(f"{priority}:{seq}".encode("ascii"), priority, timeout=PRODUCER_PATIENCE)


if __name__ == "__main__":
    _producer(sys.argv[1:])
