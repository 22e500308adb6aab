"""``anyposixmq bench``: a short self-measurement of this installation.

A few rows, each the median of a few rounds: a send+receive pair in one
process, a sync consumer fed by a producer process, and an ``async for``
consumer on each installed backend.  The comparison with C, posix_ipc and the
floors is the suite in the source tree's ``benchmarks/`` (``nox -s bench``);
it is not part of the installed package.

``python -m anyposixmq._selfbench NAME N`` is the producer process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import __version__
from ._children import PACKAGE_HOME, module_command
from ._demo import installed_backends
from ._sync import MessageQueue, unlink

SIZE = 64
CAPACITY = 10
#: A producer that has not sent its first message by then has failed.
FIRST_MESSAGE_TIMEOUT = 30.0
SUITE = "nox -s bench"


@contextlib.contextmanager
def _queue() -> Iterator[str]:
    name = f"/anyposixmq-selfbench-{os.getpid()}-{secrets.token_hex(4)}"
    MessageQueue(
        name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=SIZE
    ).close()
    try:
        yield name
    finally:
        unlink(name, missing_ok=True)


def pairs(n: int) -> float:
    """Microseconds of this thread's CPU time per send+receive pair."""
    data = b"x" * SIZE
    with _queue() as name, MessageQueue(name) as q:
        send, receive = q.send, q.receive
        start = time.thread_time_ns()
        for _ in range(n):
            send(data)
            receive()
        return (time.thread_time_ns() - start) / n / 1e3


def _consume_sync(name: str, n: int) -> int:
    with MessageQueue(name, write=False) as q:
        q.receive(timeout=FIRST_MESSAGE_TIMEOUT)
        receive = q.receive
        start = time.perf_counter_ns()
        for _ in range(n - 1):
            receive()
        return time.perf_counter_ns() - start


async def _consume_async(name: str, n: int) -> int:
    import anyio

    from ._async import AsyncMessageQueue

    async with AsyncMessageQueue(name, write=False) as q:
        with anyio.fail_after(FIRST_MESSAGE_TIMEOUT):
            await q.receive()
        start = time.perf_counter_ns()
        count = 1
        async for _ in q:
            count += 1
            if count == n:
                break
        return time.perf_counter_ns() - start


def stream(consume: Callable[[str, int], int], n: int) -> float:
    """Messages a second of *consume*, fed by a producer process."""
    with _queue() as name:
        producer = subprocess.Popen(
            module_command("anyposixmq._selfbench", name, n),
            cwd=PACKAGE_HOME,
            stderr=subprocess.PIPE,
        )
        try:
            elapsed = consume(name, n)
        finally:
            # The producer's failure is the reason why the consumer failed.
            _, err = producer.communicate()
            if producer.returncode:
                reason = err.decode(errors="replace").strip()
                raise RuntimeError(f"the producer failed: {reason}")
    return (n - 1) / elapsed * 1e9


def rows(messages: int) -> dict[str, tuple[str, Callable[[], float]]]:
    """label: (unit, measure) of each row this installation can run."""
    import anyio

    found: dict[str, tuple[str, Callable[[], float]]] = {
        "sync send+receive pair, one process": ("us", lambda: pairs(messages)),
        "sync consumer, producer process": ("msg/s", lambda: stream(_consume_sync, messages)),
    }
    for label, backend, options in installed_backends():

        def consume(name: str, n: int, backend: str = backend, options: object = options) -> int:
            return anyio.run(_consume_async, name, n, backend=backend, backend_options=options)  # type: ignore[arg-type]

        found[f"async for consumer, {label}"] = (
            "msg/s",
            lambda consume=consume: stream(consume, messages),  # type: ignore[misc]
        )
    return found


def run(*, rounds: int = 3, messages: int = 10_000, json_path: str | None = None) -> int:
    """Measure, print the table (and write JSON to *json_path*); return the exit status."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    if json_path is not None and not Path(json_path).resolve().parent.is_dir():
        # Before the measurements, not after them.
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(Path(json_path).parent))
    measured = rows(messages)
    samples: dict[str, list[float]] = {label: [] for label in measured}
    for _ in range(rounds):
        for label, (_, measure) in measured.items():
            samples[label].append(measure())
    where = f"anyposixmq {__version__} on {platform.python_implementation()} "
    print(f"{where}{platform.python_version()}: medians of {rounds} rounds")
    results = []
    for label, (unit, _) in measured.items():
        median = statistics.median(samples[label])
        shown = f"{median:.2f} us" if unit == "us" else f"{median:,.0f} msg/s"
        print(f"  {label:40} {shown:>15}")
        results.append({"row": label, "unit": unit, "median": median, "samples": samples[label]})
    print(f"Against C, posix_ipc and the floors: {SUITE}, in a source checkout.")
    if json_path is not None:
        doc = {"version": __version__, "python": platform.python_version(), "rows": results}
        Path(json_path).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _produce(name: str, n: int) -> None:
    data = b"x" * SIZE
    with MessageQueue(name, read=False) as q:
        send = q.send
        for _ in range(n):
            send(data)


if __name__ == "__main__":
    _produce(sys.argv[1], int(sys.argv[2]))
