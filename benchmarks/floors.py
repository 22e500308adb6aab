"""The floors: what any binding pays, measured beside each row.

The **cffi floor** is a binding of its own, built here with cffi's API mode
into ``benchmarks/_build``: ``mq_send``, ``mq_receive`` and
``mq_timedreceive`` declared straight from ``<mqueue.h>``, called inline in
the measuring loop with no argument checks, no error checks and no
``Message``.  Its receive still makes the bytes (``ffi.unpack``) and reads the
priority, since every receive has to hand both over.  It runs the B1 pair,
the B2 consumer and a B4 ping-pong.

The **event-loop floor** is the same binding driven by one event loop,
written directly on that loop with nothing of anyio: on asyncio and uvloop
``asyncio.sleep(0)``, a nonblocking ``mq_receive``, and when that would
block, ``loop.add_reader`` on a future; on trio
``trio.lowlevel.checkpoint()``, the receive, and
``trio.lowlevel.wait_readable``.  Like every ``AsyncMessageQueue`` operation,
each receive and send is a checkpoint.  It runs the B3 consumer and the B4
ping-pong, and is the floor of B3, B3b, B4 and B5.

The **anyio floor** is the event-loop floor written on anyio's public API
instead, as DESIGN.md asks ``AsyncMessageQueue`` to wait:
``anyio.lowlevel.checkpoint()``, the receive, ``anyio.wait_readable``, run by
``anyio.run`` on each backend.  It is not a target's base; beside the
event-loop floor it shows what anyio itself adds, and beside
``AsyncMessageQueue`` what is left that is ours.

A queue descriptor is a file descriptor on Linux (``mqd_t`` is an int), which
the event-loop floor needs; where the floor cannot be built, its rows are
skipped with a note.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from workloads import (
    HERE,
    PAIR_SIZE,
    STREAM_SIZE,
    Consumer,
    anyio_run,
    cpu,
    now,
    pingpong,
    round_trips,
    scratch_queue,
)

BUILD_DIR = HERE / "_build"
MODULE = "_anyposixmq_floor"
CDEF = """
typedef int... mqd_t;
typedef int... time_t;
struct timespec { time_t tv_sec; long tv_nsec; ...; };
#define O_RDONLY ...
#define O_WRONLY ...
#define O_RDWR ...
#define O_NONBLOCK ...
mqd_t mq_open(const char *name, int oflag);
int mq_close(mqd_t mqdes);
int mq_send(mqd_t mqdes, const char *msg_ptr, size_t msg_len, unsigned int msg_prio);
ssize_t mq_receive(mqd_t mqdes, char *msg_ptr, size_t msg_len, unsigned int *msg_prio);
ssize_t mq_timedreceive(mqd_t mqdes, char *msg_ptr, size_t msg_len, unsigned int *msg_prio,
                        const struct timespec *abs_timeout);
"""
#: The prefix of a loop name that says "through anyio's public API" ("anyio/trio").
ANYIO = "anyio/"


def floor_name(loop: str) -> str:
    """The row name of *loop*'s floor: "trio floor", or "trio anyio floor" for "anyio/trio"."""
    if loop.startswith(ANYIO):
        return f"{loop.removeprefix(ANYIO)} anyio floor"
    return f"{loop} floor"


def floor_loop(name: str) -> str:
    """The loop of a floor's row name: the inverse of :func:`floor_name`."""
    base = name.removesuffix(" floor")
    if base.endswith(" anyio"):
        return ANYIO + base.removesuffix(" anyio")
    return base


def build() -> tuple[bool, str]:
    """Compile the floor binding; return whether it is there and a note."""
    import cffi

    ffibuilder = cffi.FFI()
    ffibuilder.cdef(CDEF)
    libraries = ["rt"] if sys.platform.startswith(("linux", "freebsd", "netbsd", "sunos")) else []
    source = "#include <fcntl.h>\n#include <mqueue.h>\n#include <time.h>\n"
    ffibuilder.set_source(MODULE, source, libraries=libraries)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    try:
        ffibuilder.compile(tmpdir=str(BUILD_DIR), verbose=False)
        binding()
    except Exception as exc:
        return False, f"floor rows skipped: the cffi floor did not build: {exc}"
    return True, f"cffi floor built in {BUILD_DIR}"


@functools.cache
def binding() -> tuple[Any, Any]:
    """The compiled floor's ``(ffi, lib)``."""
    if str(BUILD_DIR) not in sys.path:
        sys.path.insert(0, str(BUILD_DIR))
    module = importlib.import_module(MODULE)
    return module.ffi, module.lib


def _open(name: str, flags: int) -> int:
    ffi, lib = binding()
    q: int = lib.mq_open(name.encode(), flags)
    if q == -1:  # opening is not measured
        raise OSError(ffi.errno, os.strerror(ffi.errno), name)
    return q


def _buffers(size: int) -> tuple[Any, Any]:
    ffi, _ = binding()
    return ffi.new("char[]", size), ffi.new("unsigned int *")


# -- the cffi floor: B1, B2, B4 sync --------------------------------------------


def pairs(n: int) -> dict[str, float]:
    """B1: send+receive pairs, thread CPU time, as workloads.time_pairs."""
    ffi, lib = binding()
    with scratch_queue(PAIR_SIZE) as name:
        q = _open(name, lib.O_RDWR)
        buf, cell = _buffers(PAIR_SIZE)
        send, receive, unpack = lib.mq_send, lib.mq_receive, ffi.unpack
        data = b"x" * PAIR_SIZE
        try:
            for _ in range(n // 10 + 1):
                send(q, data, PAIR_SIZE, 0)
                unpack(buf, receive(q, buf, PAIR_SIZE, cell)), cell[0]
            start = cpu()
            for _ in range(n):
                send(q, data, PAIR_SIZE, 0)
                unpack(buf, receive(q, buf, PAIR_SIZE, cell)), cell[0]
            return {"us": (cpu() - start) / n / 1e3}
        finally:
            lib.mq_close(q)


def consume(name: str, n: int) -> float:
    """B2: a blocking consumer, as workloads.time_receives."""
    ffi, lib = binding()
    q = _open(name, lib.O_RDONLY)
    buf, cell = _buffers(STREAM_SIZE)
    receive, unpack = lib.mq_receive, ffi.unpack
    try:
        unpack(buf, receive(q, buf, STREAM_SIZE, cell)), cell[0]
        start = now()
        for _ in range(n - 1):
            unpack(buf, receive(q, buf, STREAM_SIZE, cell)), cell[0]
        return now() - start
    finally:
        lib.mq_close(q)


def _ping(req: str, rep: str, n: int, warmup: int) -> list[int]:
    ffi, lib = binding()
    out, inq = _open(req, lib.O_WRONLY), _open(rep, lib.O_RDONLY)
    buf, cell = _buffers(STREAM_SIZE)
    send, receive, unpack = lib.mq_send, lib.mq_receive, ffi.unpack
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    try:
        for _ in range(warmup + n):
            stamp(now())
            send(out, data, STREAM_SIZE, 0)
            unpack(buf, receive(inq, buf, STREAM_SIZE, cell)), cell[0]
        stamp(now())
    finally:
        lib.mq_close(out)
        lib.mq_close(inq)
    return round_trips(stamps, warmup)


def echo(req: str, rep: str, n: int) -> None:
    """The cffi floor's echo side of a ping-pong (a child process)."""
    ffi, lib = binding()
    inq, out = _open(req, lib.O_RDONLY), _open(rep, lib.O_WRONLY)
    buf, cell = _buffers(STREAM_SIZE)
    send, receive, unpack = lib.mq_send, lib.mq_receive, ffi.unpack
    for _ in range(n):
        data = unpack(buf, receive(inq, buf, STREAM_SIZE, cell))
        send(out, data, len(data), cell[0])


def pingpong_floor(n: int, warmup: int) -> dict[str, float]:
    """B4: the cffi floor on both sides."""
    return pingpong("cffi floor", n, warmup, lambda req, rep: _ping(req, rep, n, warmup))


# -- the event-loop floor: B3, B4 async ------------------------------------------


async def _asyncio_wait_readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await future
    finally:
        loop.remove_reader(fd)


Checkpoint = Callable[[], Awaitable[None]]
WaitReadable = Callable[[int], Awaitable[None]]


def _primitives(loop: str) -> tuple[Checkpoint, WaitReadable]:
    """The checkpoint and the wait for a readable descriptor of *loop*'s own API
    (of anyio's, for ``"anyio/BACKEND"``)."""
    if loop.startswith(ANYIO):
        import anyio
        import anyio.lowlevel

        return anyio.lowlevel.checkpoint, anyio.wait_readable
    if loop == "trio":
        import trio

        return trio.lowlevel.checkpoint, trio.lowlevel.wait_readable
    return functools.partial(asyncio.sleep, 0), _asyncio_wait_readable


def run_on(loop: str, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    """Run *func* on *loop* with that loop's own runner (no anyio), or with
    ``anyio.run`` for ``"anyio/BACKEND"``."""
    if loop.startswith(ANYIO):
        return anyio_run(loop.removeprefix(ANYIO), func, *args)
    if loop == "trio":
        import trio

        return trio.run(func, *args)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(func(*args))
    return asyncio.run(func(*args))


async def _consume_async(loop: str, name: str, n: int) -> float:
    ffi, lib = binding()
    checkpoint, wait_readable = _primitives(loop)
    q = _open(name, lib.O_RDONLY | lib.O_NONBLOCK)
    buf, cell = _buffers(STREAM_SIZE)
    receive, unpack = lib.mq_receive, ffi.unpack
    start = 0
    try:
        for count in range(n):
            await checkpoint()
            while (size := receive(q, buf, STREAM_SIZE, cell)) < 0:
                await wait_readable(q)
            unpack(buf, size), cell[0]
            if not count:
                start = now()
        return now() - start
    finally:
        lib.mq_close(q)


def consume_async(loop: str) -> Consumer:
    """B3: the event-loop floor's consumer on *loop*."""

    def consume(name: str, n: int) -> float:
        return float(run_on(loop, _consume_async, loop, name, n))

    return consume


async def _ping_async(loop: str, req: str, rep: str, n: int, warmup: int) -> list[int]:
    ffi, lib = binding()
    checkpoint, wait_readable = _primitives(loop)
    out = _open(req, lib.O_WRONLY | lib.O_NONBLOCK)
    inq = _open(rep, lib.O_RDONLY | lib.O_NONBLOCK)
    buf, cell = _buffers(STREAM_SIZE)
    send, receive, unpack = lib.mq_send, lib.mq_receive, ffi.unpack
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    try:
        for _ in range(warmup + n):
            stamp(now())
            await checkpoint()
            send(out, data, STREAM_SIZE, 0)  # never full: one message in flight
            await checkpoint()
            while (size := receive(inq, buf, STREAM_SIZE, cell)) < 0:
                await wait_readable(inq)
            unpack(buf, size), cell[0]
        stamp(now())
    finally:
        lib.mq_close(out)
        lib.mq_close(inq)
    return round_trips(stamps, warmup)


async def _echo_async(loop: str, req: str, rep: str, n: int) -> None:
    ffi, lib = binding()
    checkpoint, wait_readable = _primitives(loop)
    inq = _open(req, lib.O_RDONLY | lib.O_NONBLOCK)
    out = _open(rep, lib.O_WRONLY | lib.O_NONBLOCK)
    buf, cell = _buffers(STREAM_SIZE)
    send, receive, unpack = lib.mq_send, lib.mq_receive, ffi.unpack
    for _ in range(n):
        await checkpoint()
        while (size := receive(inq, buf, STREAM_SIZE, cell)) < 0:
            await wait_readable(inq)
        data = unpack(buf, size)
        await checkpoint()
        send(out, data, size, cell[0])


def echo_async(loop: str, req: str, rep: str, n: int) -> None:
    """The event-loop floor's echo side of a ping-pong (a child process)."""
    run_on(loop, _echo_async, loop, req, rep, n)


def pingpong_async(loop: str, n: int, warmup: int) -> dict[str, float]:
    """B4: the event-loop floor on *loop*, on both sides."""

    def ping(req: str, rep: str) -> list[int]:
        return list(run_on(loop, _ping_async, loop, req, rep, n, warmup))

    return pingpong(floor_name(loop), n, warmup, ping)
