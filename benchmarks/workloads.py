"""The workloads of rows B1-B5 and M, written with C, posix_ipc and anyposixmq.

Each function measures one implementation of one row once and returns its
figures (``{"us": ...}``, ``{"msgs": ...}``, percentiles).  The C reference
programs of ``benchmarks/c`` are compiled with the system compiler; the
producer, the echo side of a ping-pong and the memory consumer run in child
processes: the C programs where there are, ``children.py`` otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from anyposixmq import AsyncMessageQueue, MessageQueue, unlink

HERE = Path(__file__).resolve().parent
#: Message sizes and queue capacity of the workloads (DESIGN.md).
PAIR_SIZE = 16
STREAM_SIZE = 64
CAPACITY = 10

#: The async backends, as anyio.run arguments.
BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}

now = time.perf_counter_ns
#: B1 never waits: it is timed on the thread's CPU clock, as the C loop is,
#: so that other processes on a shared machine disturb it less.
cpu = time.thread_time_ns
_counter = itertools.count()


# -- the C reference programs -----------------------------------------------

C_PROGRAMS = ("pairs", "producer", "consumer", "pingpong")


def build_c(sources: Path, build_dir: Path) -> tuple[dict[str, Path], str]:
    """Compile the C programs (when out of date); return them and a note on what happened."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return {}, "C references skipped: no C compiler (set CC)"
    build_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for prog in C_PROGRAMS:
        src = sources / f"{prog}.c"
        exe = build_dir / prog
        deps = [src, sources / "common.h"]
        if not exe.exists() or any(d.stat().st_mtime > exe.stat().st_mtime for d in deps):
            cmd = [compiler, "-O2", "-Wall", "-o", str(exe), str(src)]
            if sys.platform.startswith(("linux", "freebsd", "netbsd", "sunos")):
                cmd.append("-lrt")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                return {}, f"C references skipped: {' '.join(cmd)} failed:\n{proc.stderr}"
        built[prog] = exe
    return built, f"C references built with {compiler} in {build_dir}"


# -- helpers ------------------------------------------------------------------


def posix_ipc() -> Any:
    """The posix_ipc module, or None."""
    try:
        import posix_ipc
    except ImportError:
        return None
    return posix_ipc


def fresh_name() -> str:
    return f"/anyposixmq-bench-{os.getpid()}-{next(_counter)}"


@contextlib.contextmanager
def scratch_queue(size: int = STREAM_SIZE) -> Iterator[str]:
    """A fresh queue name (capacity 10), created here and unlinked afterwards."""
    name = fresh_name()
    MessageQueue(
        name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=size
    ).close()
    try:
        yield name
    finally:
        unlink(name, missing_ok=True)


def child_command(*args: object) -> list[str]:
    """``python benchmarks/children.py ARGS``: the script's directory, not the
    working directory, goes first on ``sys.path``, so a source checkout there
    (without its compiled binding) cannot shadow the package under test."""
    return [sys.executable, str(HERE / "children.py"), *map(str, args)]


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> dict[str, float]:
    """Wait for a child; parse its ``key=value`` output."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{proc.args!r} did not finish in {timeout} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}: {err.strip()}")
    values: dict[str, float] = {}
    for word in out.split():
        key, _, value = word.partition("=")
        values[key] = float(value)
    return values


@contextlib.contextmanager
def child(cmd: Sequence[object]) -> Iterator[subprocess.Popen[str]]:
    """A child process that is killed if the measurement around it fails."""
    proc = subprocess.Popen(
        [str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def percentiles(times_ns: list[int]) -> dict[str, float]:
    """Median and 99th percentile (nearest rank), in microseconds."""
    times_ns.sort()
    n = len(times_ns)
    return {"median_us": times_ns[n // 2] / 1e3, "p99_us": times_ns[(n * 99) // 100] / 1e3}


def anyio_run(backend: str, func: Callable[..., Any], *args: Any) -> Any:
    import anyio

    name, options = BACKENDS[backend]
    return anyio.run(func, *args, backend=name, backend_options=options)


def round_trips(stamps: list[int], warmup: int) -> list[int]:
    """Round-trip times from the clock read before each one (and once after the last).

    One clock read per round trip keeps the timing's own cost small, as it is
    in the C program.
    """
    return [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :], strict=False)]


# -- B1: send + receive pairs in one process -----------------------------------


def pairs_c(progs: dict[str, Path], n: int) -> dict[str, float]:
    name = fresh_name()
    try:
        with child([progs["pairs"], name, n, PAIR_SIZE]) as proc:
            return {"us": finish(proc)["ns"] / n / 1e3}
    finally:
        unlink(name, missing_ok=True)


def time_pairs(send: Callable[[bytes], object], receive: Callable[[], object], n: int) -> float:
    """Microseconds of thread CPU time per send+receive pair, after a warm-up."""
    data = b"x" * PAIR_SIZE
    for _ in range(n // 10 + 1):
        send(data)
        receive()
    start = cpu()
    for _ in range(n):
        send(data)
        receive()
    return (cpu() - start) / n / 1e3


def pairs_sync(n: int) -> dict[str, float]:
    with scratch_queue(PAIR_SIZE) as name, MessageQueue(name) as q:
        return {"us": time_pairs(q.send, q.receive, n)}


def pairs_posix_ipc(n: int) -> dict[str, float]:
    with scratch_queue(PAIR_SIZE) as name:
        q = posix_ipc().MessageQueue(name)
        try:
            return {"us": time_pairs(q.send, q.receive, n)}
        finally:
            q.close()


# -- B2, B3, B5: a producer process and a consumer ------------------------------

#: A consumer: receives n messages from the named queue; returns the
#: nanoseconds from its first message to its last.
Consumer = Callable[[str, int], float]


def producer_command(progs: dict[str, Path], name: str, n: int) -> list[object]:
    if "producer" in progs:
        return [progs["producer"], name, n, STREAM_SIZE]
    return list(child_command("produce", name, n, STREAM_SIZE))


def _stand_in_for_a_dead(producer: subprocess.Popen[str], name: str, done: threading.Event) -> None:
    """Should *producer* fail, feed its consumer until it is done: the run then
    reports the producer's error instead of waiting for its messages forever."""
    if producer.wait() == 0:
        return
    with MessageQueue(name, read=False) as q:
        filler = b"\0" * STREAM_SIZE
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                q.send(filler, timeout=0.05)


def stream(progs: dict[str, Path], n: int, consume: Consumer) -> dict[str, float]:
    """Messages per second of *consume* fed by the producer through a capacity-10 queue."""
    with scratch_queue() as name, child(producer_command(progs, name, n)) as producer:
        done = threading.Event()
        watchdog = threading.Thread(
            target=_stand_in_for_a_dead, args=(producer, name, done), daemon=True
        )
        watchdog.start()
        try:
            elapsed_ns = consume(name, n)
        finally:
            done.set()
        finish(producer)  # raises the producer's error, if it failed
        watchdog.join()
    return {"msgs": (n - 1) / elapsed_ns * 1e9}


def consume_c(progs: dict[str, Path]) -> Consumer:
    def consume(name: str, n: int) -> float:
        with child([progs["consumer"], name, n]) as proc:
            return finish(proc)["ns"]

    return consume


def time_receives(receive: Callable[[], object], n: int) -> float:
    """Nanoseconds from the first of n receives to the last."""
    receive()
    start = now()
    for _ in range(n - 1):
        receive()
    return now() - start


def consume_sync(name: str, n: int) -> float:
    with MessageQueue(name, write=False) as q:
        return time_receives(q.receive, n)


def consume_sync_many(name: str, n: int, batch: int = 64) -> float:
    """B2b: the sync ``receive_many`` (when this version of the package has it)."""
    with MessageQueue(name, write=False) as q:
        receive_many = q.receive_many  # type: ignore[attr-defined,unused-ignore]
        count = len(receive_many(batch))
        start = now()
        while count < n:
            count += len(receive_many(batch))
        return now() - start


def consume_posix_ipc(name: str, n: int) -> float:
    q = posix_ipc().MessageQueue(name)
    try:
        return time_receives(q.receive, n)
    finally:
        q.close()


async def _consume_async(name: str, n: int, batch: int, strategy: str) -> float:
    async with AsyncMessageQueue(name, write=False, strategy=strategy) as q:  # type: ignore[arg-type]
        await q.receive()
        start = now()
        count = 1
        if batch:
            while count < n:
                count += len(await q.receive_many(batch))
        else:
            async for _ in q:
                count += 1
                if count == n:
                    break
        return now() - start


def consume_async(backend: str, batch: int = 0, strategy: str = "poll") -> Consumer:
    def consume(name: str, n: int) -> float:
        return float(anyio_run(backend, _consume_async, name, n, batch, strategy))

    return consume


async def _cancel_latency(count: int) -> list[float]:
    """Seconds from cancelling a waiting thread-strategy receive to its return."""
    import anyio

    latencies = []
    with scratch_queue() as name:
        async with AsyncMessageQueue(name, strategy="thread") as q:
            for _ in range(count):
                scope = anyio.CancelScope()
                done = anyio.Event()

                async def waiter(
                    scope: anyio.CancelScope = scope, done: anyio.Event = done
                ) -> None:
                    with scope:
                        await q.receive()
                    done.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    await anyio.sleep(0.02)
                    start = now()
                    scope.cancel()
                    await done.wait()
                    latencies.append((now() - start) / 1e9)
    return latencies


def cancel_latency(backend: str, count: int) -> dict[str, float]:
    lat = anyio_run(backend, _cancel_latency, count)
    return {"median_ms": statistics.median(lat) * 1e3, "max_ms": max(lat) * 1e3}


# -- B4: ping-pong between two processes ----------------------------------------


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """Run this process and the children it starts meanwhile on one CPU.

    Where the two sides of a ping-pong run on different CPUs, a round trip
    mostly measures how fast the machine wakes an idle CPU (about 30 us in
    a virtual machine, against 6 us on one CPU, for the C programs alike),
    and whether the scheduler moves a woken process next to its waker,
    which it does for a blocking receive but not for a poll wakeup.  B4
    compares the software, so every implementation gets the same one CPU.
    """
    get = getattr(os, "sched_getaffinity", None)
    set_ = getattr(os, "sched_setaffinity", None)
    if get is None or set_ is None:
        yield
        return
    before = get(0)
    set_(0, {min(before)})
    try:
        yield
    finally:
        set_(0, before)


@contextlib.contextmanager
def two_queues() -> Iterator[tuple[str, str]]:
    with scratch_queue() as requests, scratch_queue() as replies:
        yield requests, replies


def pingpong_c(progs: dict[str, Path], n: int, warmup: int) -> dict[str, float]:
    prog = progs["pingpong"]
    with (
        one_cpu(),
        two_queues() as (req, rep),
        child([prog, "echo", req, rep, n + warmup]) as echo,
    ):
        with child([prog, "ping", req, rep, n, warmup, STREAM_SIZE]) as ping:
            out = finish(ping)
        finish(echo)
    return {"median_us": out["median_ns"] / 1e3, "p99_us": out["p99_ns"] / 1e3}


def ping_blocking(
    send: Callable[[bytes], object], receive: Callable[[], object], n: int, warmup: int
) -> list[int]:
    """Round trips of a blocking pinger: one clock read before each."""
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    for _ in range(warmup + n):
        stamp(now())
        send(data)
        receive()
    stamp(now())
    return round_trips(stamps, warmup)


def _ping_sync(req: str, rep: str, n: int, warmup: int) -> list[int]:
    with MessageQueue(req, read=False) as out, MessageQueue(rep, write=False) as inq:
        return ping_blocking(out.send, inq.receive, n, warmup)


def _ping_posix_ipc(req: str, rep: str, n: int, warmup: int) -> list[int]:
    out, inq = posix_ipc().MessageQueue(req), posix_ipc().MessageQueue(rep)
    try:
        return ping_blocking(out.send, inq.receive, n, warmup)
    finally:
        out.close()
        inq.close()


async def _ping_async(req: str, rep: str, n: int, warmup: int) -> list[int]:
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    async with (
        AsyncMessageQueue(req, read=False) as out,
        AsyncMessageQueue(rep, write=False) as inq,
    ):
        for _ in range(warmup + n):
            stamp(now())
            await out.send(data)
            await inq.receive()
        stamp(now())
    return round_trips(stamps, warmup)


def pingpong(
    impl: str, n: int, warmup: int, ping: Callable[[str, str], list[int]]
) -> dict[str, float]:
    """Round trips of *ping* (given the two queues) against an *impl* echo child."""
    with (
        one_cpu(),
        two_queues() as (req, rep),
        child(child_command("echo", impl, req, rep, n + warmup)) as echo,
    ):
        times = ping(req, rep)
        finish(echo)
    return percentiles(times)


def pingpong_python(impl: str, n: int, warmup: int) -> dict[str, float]:
    """Round trips with *impl* (sync, posix_ipc or a backend) on both sides."""

    def ping(req: str, rep: str) -> list[int]:
        if impl == "sync":
            return _ping_sync(req, rep, n, warmup)
        if impl == "posix_ipc":
            return _ping_posix_ipc(req, rep, n, warmup)
        return list(anyio_run(impl, _ping_async, req, rep, n, warmup))

    return pingpong(impl, n, warmup, ping)


# -- memory: RSS of a consumer over a million messages ---------------------------


def memory(progs: dict[str, Path], impl: str, n: int) -> dict[str, float]:
    """RSS of a consumer child after n/10 and after n messages."""
    with scratch_queue() as name, child(producer_command(progs, name, n)) as producer:
        with child(child_command("memory", impl, name, n)) as consumer:
            out = finish(consumer, timeout=600)
        finish(producer)
    growth = out["rss_last"] - out["rss_first"]
    return {
        "rss_mib": out["rss_last"] / 2**20,
        "growth_kib": growth / 1024,
        "bytes_per_msg": growth / (n - n // 10),
    }
