"""The suite's child processes: ``python benchmarks/children.py COMMAND ARGS``.

- ``produce NAME N SIZE``: send N messages (the producer where there is no C);
- ``echo IMPL REQUESTS REPLIES N``: the echo side of a B4 ping-pong;
- ``memory IMPL NAME N``: receive N messages and print the RSS after N/10 and N.
"""

from __future__ import annotations

import os
import sys

import floors
from workloads import BACKENDS, anyio_run, posix_ipc

from anyposixmq import AsyncMessageQueue, MessageQueue


def produce(name: str, n: int, size: int) -> None:
    data = b"x" * size
    with MessageQueue(name, read=False) as q:
        send = q.send
        for _ in range(n):
            send(data)


def echo(impl: str, req: str, rep: str, n: int) -> None:
    if impl == "sync":
        with MessageQueue(req, write=False) as inq, MessageQueue(rep, read=False) as out:
            for _ in range(n):
                msg = inq.receive()
                out.send(msg.data, msg.priority)
    elif impl == "posix_ipc":
        inq, out = posix_ipc().MessageQueue(req), posix_ipc().MessageQueue(rep)
        for _ in range(n):
            out.send(*inq.receive())
    elif impl == "cffi floor":
        floors.echo(req, rep, n)
    elif impl.endswith(" floor"):
        floors.echo_async(floors.floor_loop(impl), req, rep, n)
    elif impl in BACKENDS:
        anyio_run(impl, _echo_async, req, rep, n)
    else:
        raise SystemExit(f"unknown implementation {impl!r}")


async def _echo_async(req: str, rep: str, n: int) -> None:
    async with (
        AsyncMessageQueue(req, write=False) as inq,
        AsyncMessageQueue(rep, read=False) as out,
    ):
        for _ in range(n):
            await out.send(await inq.receive())


def rss() -> int:
    """This process's resident set, in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory(impl: str, name: str, n: int) -> None:
    first = n // 10
    if impl == "sync":
        with MessageQueue(name, write=False) as q:
            receive = q.receive
            for _ in range(first):
                receive()
            rss_first = rss()
            for _ in range(n - first):
                receive()
            rss_last = rss()
    else:
        rss_first, rss_last = anyio_run(impl, _memory_async, name, n, first)
    print(f"rss_first={rss_first} rss_last={rss_last}")


async def _memory_async(name: str, n: int, first: int) -> tuple[int, int]:
    async with AsyncMessageQueue(name, write=False) as q:
        for _ in range(first):
            await q.receive()
        rss_first = rss()
        for _ in range(n - first):
            await q.receive()
        return rss_first, rss()


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "produce":
        produce(args[0], int(args[1]), int(args[2]))
    elif cmd == "echo":
        echo(args[0], args[1], args[2], int(args[3]))
    elif cmd == "memory":
        memory(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
