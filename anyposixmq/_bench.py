"""Benchmarks side by side with C and posix_ipc (rows B1-B5 of the performance table).

:func:`run` is the short version behind ``anyposixmq bench``; ``benchmarks/run.py``
runs the same workloads with more messages and rounds and draws the chart.
Within a round every implementation of a row is measured one after the other,
in an order that rotates from round to round, so a noisy machine slows them
alike; a ratio is the median of the per-round ratios.

The C reference programs (``benchmarks/c``) are compiled with the system
compiler when the sources and a compiler are there, and posix_ipc is used
when it is installed; rows that need them are skipped otherwise.  The
producer and the echo side of a ping-pong run in child processes
(``python -m anyposixmq._bench ...`` when there is no C).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._children import PACKAGE_HOME, module_command
from ._sync import MessageQueue, unlink

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

_now = time.perf_counter_ns
#: B1 never waits: it is timed on the thread's CPU clock, as the C loop is,
#: so that other processes on a shared machine disturb it less.
_cpu = time.thread_time_ns
_counter = itertools.count()


@dataclass(frozen=True)
class Sizes:
    """How much work one measurement does."""

    pairs: int
    stream: int
    pingpong: int
    warmup: int
    cancels: int
    memory: int


#: ``anyposixmq bench``: about 25 s on a 2-core machine (3 rounds).
SHORT = Sizes(pairs=20_000, stream=30_000, pingpong=1_500, warmup=200, cancels=5, memory=400_000)
#: ``nox -s bench``.
FULL = Sizes(
    pairs=150_000, stream=150_000, pingpong=8_000, warmup=500, cancels=10, memory=1_000_000
)


# -- the C reference programs -----------------------------------------------

C_PROGRAMS = ("pairs", "producer", "consumer", "pingpong")


def default_c_sources() -> Path | None:
    """``benchmarks/c`` of a source checkout, if this package runs from one."""
    here = Path(__file__).resolve().parent.parent / "benchmarks" / "c"
    return here if (here / "pairs.c").is_file() else None


def build_c(sources: Path | None, build_dir: Path) -> tuple[dict[str, Path], str]:
    """Compile the C programs (when out of date); return them and a note on what happened."""
    if sources is None:
        return {}, "C references skipped: no benchmarks/c sources (not a source checkout)"
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


def _posix_ipc() -> Any:
    try:
        import posix_ipc
    except ImportError:
        return None
    return posix_ipc


@contextlib.contextmanager
def _scratch_queue(size: int = STREAM_SIZE) -> Iterator[str]:
    """A fresh queue name (capacity 10), created here and unlinked afterwards."""
    name = f"/anyposixmq-bench-{os.getpid()}-{next(_counter)}"
    MessageQueue(
        name, create=True, exclusive=True, capacity=CAPACITY, max_message_size=size
    ).close()
    try:
        yield name
    finally:
        unlink(name, missing_ok=True)


def _child_command(*args: object) -> list[str]:
    return module_command("anyposixmq._bench", *args)


def _spawn(cmd: Sequence[object]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(c) for c in cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PACKAGE_HOME,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> dict[str, float]:
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
def _child(cmd: Sequence[object]) -> Iterator[subprocess.Popen[str]]:
    """A child process that is killed if the measurement around it fails."""
    proc = _spawn(cmd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _percentiles(times_ns: list[int]) -> dict[str, float]:
    times_ns.sort()
    n = len(times_ns)
    return {"median_us": times_ns[n // 2] / 1e3, "p99_us": times_ns[(n * 99) // 100] / 1e3}


def _anyio_run(backend: str, func: Callable[..., Any], *args: Any) -> Any:
    import anyio

    name, options = BACKENDS[backend]
    return anyio.run(func, *args, backend=name, backend_options=options)


# -- B1: send + receive pairs in one process -----------------------------------


def pairs_c(progs: dict[str, Path], n: int) -> dict[str, float]:
    name = f"/anyposixmq-bench-{os.getpid()}-{next(_counter)}"
    try:
        with _child([progs["pairs"], name, n, PAIR_SIZE]) as proc:
            return {"us": _finish(proc)["ns"] / n / 1e3}
    finally:
        unlink(name, missing_ok=True)


def pairs_sync(n: int) -> dict[str, float]:
    data = b"x" * PAIR_SIZE
    with _scratch_queue(PAIR_SIZE) as name, MessageQueue(name) as q:
        send, receive = q.send, q.receive
        for _ in range(n // 10 + 1):
            send(data)
            receive()
        start = _cpu()
        for _ in range(n):
            send(data)
            receive()
        return {"us": (_cpu() - start) / n / 1e3}


def pairs_posix_ipc(n: int) -> dict[str, float]:
    posix_ipc = _posix_ipc()
    data = b"x" * PAIR_SIZE
    with _scratch_queue(PAIR_SIZE) as name:
        q = posix_ipc.MessageQueue(name)
        try:
            send, receive = q.send, q.receive
            for _ in range(n // 10 + 1):
                send(data)
                receive()
            start = _cpu()
            for _ in range(n):
                send(data)
                receive()
            return {"us": (_cpu() - start) / n / 1e3}
        finally:
            q.close()


# -- B2, B3, B5: a producer process and a consumer ------------------------------


def _producer(progs: dict[str, Path], name: str, n: int) -> list[object]:
    if "producer" in progs:
        return [progs["producer"], name, n, STREAM_SIZE]
    return list(_child_command("produce", name, n, STREAM_SIZE))


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


def stream(
    progs: dict[str, Path], n: int, consume: Callable[[str, int], float]
) -> dict[str, float]:
    """Messages per second of *consume* fed by the producer through a capacity-10 queue."""
    with _scratch_queue() as name, _child(_producer(progs, name, n)) as producer:
        done = threading.Event()
        watchdog = threading.Thread(
            target=_stand_in_for_a_dead, args=(producer, name, done), daemon=True
        )
        watchdog.start()
        try:
            elapsed_ns = consume(name, n)
        finally:
            done.set()
        _finish(producer)  # raises the producer's error, if it failed
        watchdog.join()
    return {"msgs": (n - 1) / elapsed_ns * 1e9}


def consume_c(progs: dict[str, Path]) -> Callable[[str, int], float]:
    def consume(name: str, n: int) -> float:
        with _child([progs["consumer"], name, n]) as proc:
            return _finish(proc)["ns"]

    return consume


def consume_sync(name: str, n: int) -> float:
    with MessageQueue(name, write=False) as q:
        receive = q.receive
        receive()
        start = _now()
        for _ in range(n - 1):
            receive()
        return _now() - start


def consume_posix_ipc(name: str, n: int) -> float:
    q = _posix_ipc().MessageQueue(name)
    try:
        receive = q.receive
        receive()
        start = _now()
        for _ in range(n - 1):
            receive()
        return _now() - start
    finally:
        q.close()


async def _consume_async(name: str, n: int, batch: int, strategy: str) -> float:
    from ._async import AsyncMessageQueue

    async with AsyncMessageQueue(name, write=False, strategy=strategy) as q:  # type: ignore[arg-type]
        await q.receive()
        start = _now()
        count = 1
        if batch:
            while count < n:
                count += len(await q.receive_many(batch))
        else:
            async for _ in q:
                count += 1
                if count == n:
                    break
        return _now() - start


def consume_async(
    backend: str, batch: int = 0, strategy: str = "poll"
) -> Callable[[str, int], float]:
    def consume(name: str, n: int) -> float:
        return float(_anyio_run(backend, _consume_async, name, n, batch, strategy))

    return consume


async def _cancel_latency(count: int) -> list[float]:
    """Seconds from cancelling a waiting thread-strategy receive to its return."""
    import anyio

    from ._async import AsyncMessageQueue

    latencies = []
    with _scratch_queue() as name:
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
                    start = _now()
                    scope.cancel()
                    await done.wait()
                    latencies.append((_now() - start) / 1e9)
    return latencies


def cancel_latency(backend: str, count: int) -> dict[str, float]:
    lat = _anyio_run(backend, _cancel_latency, count)
    return {"median_ms": statistics.median(lat) * 1e3, "max_ms": max(lat) * 1e3}


# -- B4: ping-pong between two processes ----------------------------------------


@contextlib.contextmanager
def _one_cpu() -> Iterator[None]:
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
def _two_queues() -> Iterator[tuple[str, str]]:
    with _scratch_queue() as requests, _scratch_queue() as replies:
        yield requests, replies


def pingpong_c(progs: dict[str, Path], n: int, warmup: int) -> dict[str, float]:
    prog = progs["pingpong"]
    with (
        _one_cpu(),
        _two_queues() as (req, rep),
        _child([prog, "echo", req, rep, n + warmup]) as echo,
    ):
        with _child([prog, "ping", req, rep, n, warmup, STREAM_SIZE]) as ping:
            out = _finish(ping)
        _finish(echo)
    return {"median_us": out["median_ns"] / 1e3, "p99_us": out["p99_ns"] / 1e3}


def _round_trips(stamps: list[int], warmup: int) -> list[int]:
    """Round-trip times from the clock read before each one (and once after the last).

    One clock read per round trip keeps the timing's own cost small, as it is
    in the C program.
    """
    return [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :], strict=False)]


def _ping_sync(req: str, rep: str, n: int, warmup: int) -> list[int]:
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    with MessageQueue(req, read=False) as out, MessageQueue(rep, write=False) as inq:
        send, receive = out.send, inq.receive
        for _ in range(warmup + n):
            stamp(_now())
            send(data)
            receive()
        stamp(_now())
    return _round_trips(stamps, warmup)


def _ping_posix_ipc(req: str, rep: str, n: int, warmup: int) -> list[int]:
    posix_ipc = _posix_ipc()
    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    out, inq = posix_ipc.MessageQueue(req), posix_ipc.MessageQueue(rep)
    try:
        send, receive = out.send, inq.receive
        for _ in range(warmup + n):
            stamp(_now())
            send(data)
            receive()
        stamp(_now())
    finally:
        out.close()
        inq.close()
    return _round_trips(stamps, warmup)


async def _ping_async(req: str, rep: str, n: int, warmup: int) -> list[int]:
    from ._async import AsyncMessageQueue

    data = b"x" * STREAM_SIZE
    stamps: list[int] = []
    stamp = stamps.append
    async with (
        AsyncMessageQueue(req, read=False) as out,
        AsyncMessageQueue(rep, write=False) as inq,
    ):
        for _ in range(warmup + n):
            stamp(_now())
            await out.send(data)
            await inq.receive()
        stamp(_now())
    return _round_trips(stamps, warmup)


def pingpong_python(impl: str, n: int, warmup: int) -> dict[str, float]:
    """Round trips with *impl* (sync, posix_ipc or a backend) on both sides."""
    with (
        _one_cpu(),
        _two_queues() as (req, rep),
        _child(_child_command("echo", impl, req, rep, n + warmup)) as echo,
    ):
        if impl == "sync":
            times = _ping_sync(req, rep, n, warmup)
        elif impl == "posix_ipc":
            times = _ping_posix_ipc(req, rep, n, warmup)
        else:
            times = _anyio_run(impl, _ping_async, req, rep, n, warmup)
        _finish(echo)
    return _percentiles(times)


# -- memory: RSS of a consumer over a million messages ---------------------------


def memory(progs: dict[str, Path], impl: str, n: int) -> dict[str, float]:
    """RSS of a consumer child after n/10 and after n messages."""
    with _scratch_queue() as name, _child(_producer(progs, name, n)) as producer:
        with _child(_child_command("memory", impl, name, n)) as consumer:
            out = _finish(consumer, timeout=600)
        _finish(producer)
    growth = out["rss_last"] - out["rss_first"]
    return {
        "rss_mib": out["rss_last"] / 2**20,
        "growth_kib": growth / 1024,
        "bytes_per_msg": growth / (n - n // 10),
    }


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


# -- the suite ------------------------------------------------------------------


@dataclass
class Case:
    """One implementation of one row: measured once per round."""

    row: str
    impl: str
    measure: Callable[[], dict[str, float]]
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """A ratio of two cases' medians that DESIGN.md bounds."""

    row: str
    impl: str
    base_row: str
    base_impl: str
    metric: str
    limit: float
    at_most: bool

    @property
    def label(self) -> str:
        base = self.base_impl if self.base_row == self.row else f"{self.base_row} {self.base_impl}"
        return f"{self.row} {self.impl} / {base}"

    @property
    def text(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:g}x"


WORKLOADS = {
    "B1": "send+receive pairs in one process, 16 B (thread CPU time)",
    "B2": "producer process -> consumer, 64 B, capacity 10",
    "B3": "same, async consumer: async for (one checkpoint a message)",
    "B3b": "same, async consumer: receive_many(64) (one checkpoint a batch)",
    "B4": "ping-pong round trip between two processes on one CPU, 64 B",
    "B5": "same as B3, thread strategy, asyncio",
    "B5c": "thread strategy: cancel a waiting receive",
    "M": "consumer RSS after 10% and 100% of its messages (1M; 400k in the short run)",
}

TARGETS = [
    Target("B1", "sync", "B1", "C", "us", 1.3, at_most=True),
    Target("B1", "sync", "B1", "posix_ipc", "us", 1.0, at_most=True),
    Target("B2", "sync", "B2", "posix_ipc", "msgs", 1.1, at_most=False),
    Target("B2", "sync", "B2", "C", "msgs", 0.7, at_most=False),
    Target("B3", "trio", "B2", "sync", "msgs", 0.35, at_most=False),
    Target("B3", "uvloop", "B2", "sync", "msgs", 0.45, at_most=False),
    Target("B3", "asyncio", "B2", "sync", "msgs", 0.3, at_most=False),
    Target("B3b", "trio", "B2", "sync", "msgs", 0.8, at_most=False),
    Target("B3b", "uvloop", "B2", "sync", "msgs", 0.8, at_most=False),
    Target("B3b", "asyncio", "B2", "sync", "msgs", 0.8, at_most=False),
    Target("B4", "sync", "B4", "C", "median_us", 1.5, at_most=True),
    Target("B4", "asyncio", "B4", "sync", "median_us", 2.0, at_most=True),
    Target("B4", "uvloop", "B4", "sync", "median_us", 2.0, at_most=True),
    Target("B4", "trio", "B4", "sync", "median_us", 2.0, at_most=True),
    Target("B5", "thread", "B3", "asyncio", "msgs", 0.3, at_most=False),
]


def make_cases(progs: dict[str, Path], sizes: Sizes) -> tuple[list[Case], list[str]]:
    """Every case this machine can run, and notes on what was left out."""
    notes = []
    have_c = bool(progs)
    have_pi = _posix_ipc() is not None
    if not have_pi:
        notes.append("posix_ipc rows skipped: posix_ipc is not installed")
    s = sizes
    cases = []
    if have_c:
        cases.append(Case("B1", "C", lambda: pairs_c(progs, s.pairs)))
    if have_pi:
        cases.append(Case("B1", "posix_ipc", lambda: pairs_posix_ipc(s.pairs)))
    cases.append(Case("B1", "sync", lambda: pairs_sync(s.pairs)))
    if have_c:
        cases.append(Case("B2", "C", lambda: stream(progs, s.stream, consume_c(progs))))
    if have_pi:
        cases.append(Case("B2", "posix_ipc", lambda: stream(progs, s.stream, consume_posix_ipc)))
    cases.append(Case("B2", "sync", lambda: stream(progs, s.stream, consume_sync)))
    for backend in BACKENDS:
        cases.append(
            Case("B3", backend, lambda b=backend: stream(progs, s.stream, consume_async(b)))  # type: ignore[misc]
        )
    for backend in BACKENDS:
        cases.append(
            Case("B3b", backend, lambda b=backend: stream(progs, s.stream, consume_async(b, 64)))  # type: ignore[misc]
        )
    if have_c:
        cases.append(Case("B4", "C", lambda: pingpong_c(progs, s.pingpong, s.warmup)))
    impls = (["posix_ipc"] if have_pi else []) + ["sync", *BACKENDS]
    for impl in impls:
        cases.append(
            Case("B4", impl, lambda i=impl: pingpong_python(i, s.pingpong, s.warmup))  # type: ignore[misc]
        )
    cases.append(
        Case(
            "B5",
            "thread",
            lambda: stream(progs, s.stream // 2, consume_async("asyncio", 0, "thread")),
        )
    )
    for backend in ("asyncio", "trio"):
        cases.append(Case("B5c", backend, lambda b=backend: cancel_latency(b, s.cancels)))  # type: ignore[misc]
    if not have_c:
        notes.append("the producer and echo are Python processes (no C)")
    return cases, notes


def run_rounds(cases: list[Case], rounds: int, progress: Callable[[str], None]) -> None:
    """Measure every case once per round; the order within a row rotates each round."""
    rows: dict[str, list[Case]] = {}
    for case in cases:
        rows.setdefault(case.row, []).append(case)
    for r in range(rounds):
        start = time.monotonic()
        for row_cases in rows.values():
            k = r % len(row_cases)
            for case in row_cases[k:] + row_cases[:k]:
                if case.error is not None:
                    continue
                gc.collect()
                try:
                    result = case.measure()
                except Exception as exc:
                    case.error = f"{type(exc).__name__}: {exc}"
                    continue
                for metric, value in result.items():
                    case.samples.setdefault(metric, []).append(value)
        progress(f"round {r + 1}/{rounds} done in {time.monotonic() - start:.1f} s")


def _ratio(cases: dict[tuple[str, str], Case], t: Target) -> list[float]:
    """Per-round ratios of a target (rounds where both sides were measured)."""
    a, b = cases.get((t.row, t.impl)), cases.get((t.base_row, t.base_impl))
    if a is None or b is None or a.error or b.error:
        return []
    xs, ys = a.samples.get(t.metric, []), b.samples.get(t.metric, [])
    return [x / y for x, y in zip(xs, ys, strict=False) if y]


def summarize(cases: list[Case], memory_rows: list[Case], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a run."""
    by_key = {(c.row, c.impl): c for c in cases}
    measurements = [
        {
            "row": c.row,
            "impl": c.impl,
            "workload": WORKLOADS[c.row],
            "error": c.error,
            "median": {m: statistics.median(v) for m, v in c.samples.items() if v},
            "samples": c.samples,
        }
        for c in [*cases, *memory_rows]
    ]
    targets = []
    for t in TARGETS:
        ratios = _ratio(by_key, t)
        ratio = statistics.median(ratios) if ratios else None
        ok = None if ratio is None else (ratio <= t.limit if t.at_most else ratio >= t.limit)
        targets.append(
            {
                **asdict(t),
                "label": t.label,
                "target": t.text,
                "ratio": ratio,
                "ok": ok,
                "ratios": ratios,
            }
        )
    for backend in ("asyncio", "trio"):
        c = by_key.get(("B5c", backend))
        if c is not None and not c.error and c.samples.get("max_ms"):
            worst = max(c.samples["max_ms"])
            targets.append(
                {
                    "label": f"B5 cancel latency, {backend} (worst)",
                    "target": "<= 100 ms",
                    "ratio": None,
                    "value": worst,
                    "ok": worst <= 100,
                }
            )
    for c in memory_rows:
        if not c.error and c.samples.get("bytes_per_msg"):
            per_msg = c.samples["bytes_per_msg"][0]
            targets.append(
                {
                    "label": f"M {c.impl}: RSS growth per message",
                    "target": "< 1 B (flat)",
                    "ratio": None,
                    "value": per_msg,
                    "ok": per_msg < 1,
                }
            )
    return {**meta, "measurements": measurements, "targets": targets}


_FORMATS = {
    "us": "{:.2f} us/pair",
    "msgs": "{:,.0f} msg/s",
    "median_us": "median {:.1f} us",
    "p99_us": "p99 {:.1f} us",
    "median_ms": "median {:.2f} ms",
    "max_ms": "max {:.2f} ms",
    "rss_mib": "RSS {:.1f} MiB",
    "growth_kib": "growth {:+.0f} KiB",
    "bytes_per_msg": "{:.4f} B/msg",
}


def format_table(doc: dict[str, Any]) -> str:
    """The terminal table of a run: medians of the rounds, then the targets."""
    lines = []
    last = None
    for m in doc["measurements"]:
        if m["row"] != last:
            lines.append(f"{m['row']:4} {WORKLOADS[m['row']]}")
            last = m["row"]
        if m["error"]:
            value = f"n/a: {m['error']}"[:100]
        else:
            value = "   ".join(_FORMATS[k].format(v) for k, v in m["median"].items())
        lines.append(f"     {m['impl']:10} {value}")
    lines.append("")
    lines.append(f"{'target':34} {'measured':>9}  {'wanted':12} ok")
    for t in doc["targets"]:
        if t["ratio"] is not None:
            got = f"{t['ratio']:.2f}x"
        elif t.get("value") is not None:
            got = f"{t['value']:.2f}"
        else:
            got = "n/a"
        ok = {True: "yes", False: "NO", None: "-"}[t["ok"]]
        lines.append(f"{t['label']:34} {got:>9}  {t['target']:12} {ok}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib import metadata

    versions = {}
    for dist in ("anyposixmq", "anyio", "cffi", "posix_ipc", "trio", "uvloop"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def run_suite(
    *,
    rounds: int,
    sizes: Sizes,
    c_sources: Path | None,
    build_dir: Path,
    json_path: str | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure everything, print the table, write the JSON; return the JSON document."""
    started = time.monotonic()
    progs, note = build_c(c_sources, build_dir)
    progress(note)
    cases, notes = make_cases(progs, sizes)
    for n in notes:
        progress(n)
    run_rounds(cases, rounds, progress)
    memory_rows = [
        Case("M", impl, lambda i=impl: memory(progs, i, sizes.memory))  # type: ignore[misc]
        for impl in ("sync", "asyncio")
    ]
    run_rounds(memory_rows, 1, lambda _: None)
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rounds": rounds,
        "sizes": asdict(sizes),
        "machine": machine(),
        "notes": [note, *notes],
        "seconds": round(time.monotonic() - started, 1),
    }
    doc = summarize(cases, memory_rows, meta)
    progress("")
    progress(format_table(doc))
    progress(f"\n{rounds} rounds in {doc['seconds']} s")
    if json_path:
        Path(json_path).write_text(json.dumps(doc, indent=2) + "\n")
        progress(f"results written to {json_path}")
    return doc


def run(*, rounds: int = 3, json_path: str | None = None) -> int:
    """The short benchmark of ``anyposixmq bench``: print the table; 0 if every row ran.

    :param rounds: rounds of alternating measurements (medians are taken over them).
    :param json_path: also write the results there as JSON.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    if json_path is not None and not Path(json_path).resolve().parent.is_dir():
        # Before the measurements, not after them.
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(Path(json_path).parent))
    sources = default_c_sources()
    build_dir = sources.parent / "_build" if sources is not None else Path("/nonexistent")
    doc = run_suite(
        rounds=rounds, sizes=SHORT, c_sources=sources, build_dir=build_dir, json_path=json_path
    )
    return 1 if any(m["error"] for m in doc["measurements"]) else 0


# -- child processes -------------------------------------------------------------


def _produce(name: str, n: int, size: int) -> None:
    data = b"x" * size
    with MessageQueue(name, read=False) as q:
        send = q.send
        for _ in range(n):
            send(data)


def _echo(impl: str, req: str, rep: str, n: int) -> None:
    if impl == "sync":
        with MessageQueue(req, write=False) as inq, MessageQueue(rep, read=False) as out:
            for _ in range(n):
                msg = inq.receive()
                out.send(msg.data, msg.priority)
    elif impl == "posix_ipc":
        posix_ipc = _posix_ipc()
        inq, out = posix_ipc.MessageQueue(req), posix_ipc.MessageQueue(rep)
        for _ in range(n):
            out.send(*inq.receive())
    else:
        _anyio_run(impl, _echo_async, req, rep, n)


async def _echo_async(req: str, rep: str, n: int) -> None:
    from ._async import AsyncMessageQueue

    async with (
        AsyncMessageQueue(req, write=False) as inq,
        AsyncMessageQueue(rep, read=False) as out,
    ):
        for _ in range(n):
            await out.send(await inq.receive())


def _memory(impl: str, name: str, n: int) -> None:
    first = n // 10
    if impl == "sync":
        with MessageQueue(name, write=False) as q:
            receive = q.receive
            for _ in range(first):
                receive()
            rss_first = _rss()
            for _ in range(n - first):
                receive()
            rss_last = _rss()
    else:
        rss_first, rss_last = _anyio_run(impl, _memory_async, name, n, first)
    print(f"rss_first={rss_first} rss_last={rss_last}")


async def _memory_async(name: str, n: int, first: int) -> tuple[int, int]:
    from ._async import AsyncMessageQueue

    async with AsyncMessageQueue(name, write=False) as q:
        for _ in range(first):
            await q.receive()
        rss_first = _rss()
        for _ in range(n - first):
            await q.receive()
        return rss_first, _rss()


def _main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "produce":
        _produce(args[0], int(args[1]), int(args[2]))
    elif cmd == "echo":
        _echo(args[0], args[1], args[2], int(args[3]))
    elif cmd == "memory":
        _memory(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
