"""The suite: which implementations each row runs, the rounds, the ratios and targets.

Within a round every implementation of a row is measured one after the
other, in an order that rotates from round to round, so a noisy machine
slows them alike; a ratio is the median of the per-round ratios.  Every
implementation is compared with its floor (``floors.py``) and with the C and
posix_ipc implementations of its workload, side by side in the same run.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import floors
import workloads as w

from anyposixmq import MessageQueue


@dataclass(frozen=True)
class Sizes:
    """How much work one measurement does."""

    pairs: int
    stream: int
    pingpong: int
    warmup: int
    cancels: int
    memory: int


#: ``python benchmarks/run.py --short``.
SHORT = Sizes(pairs=20_000, stream=30_000, pingpong=1_500, warmup=200, cancels=5, memory=400_000)
#: ``nox -s bench``.
FULL = Sizes(
    pairs=150_000, stream=150_000, pingpong=8_000, warmup=500, cancels=10, memory=1_000_000
)


@dataclass(frozen=True)
class Row:
    """A workload of the performance table."""

    workload: str
    #: The figure that ratios are taken of (None: the row has no ratios).
    metric: str | None = None
    #: The row whose C and posix_ipc implementations this one is compared with.
    references: str | None = None


ROWS = {
    "B1": Row("send+receive pairs in one process, 16 B (thread CPU time)", "us", "B1"),
    "B2": Row("producer process -> consumer, 64 B, capacity 10", "msgs", "B2"),
    "B2b": Row("same, sync receive_many(64)", "msgs", "B2"),
    "B3": Row("same, async consumer: async for (one checkpoint a message)", "msgs", "B2"),
    "B3b": Row("same, async consumer: receive_many(64) (one checkpoint a batch)", "msgs", "B2"),
    "B4": Row("ping-pong round trip between two processes on one CPU, 64 B", "median_us", "B4"),
    "B5": Row("same as B3, thread strategy, asyncio", "msgs", "B2"),
    "B5c": Row("thread strategy: cancel a waiting receive"),
    "M": Row("consumer RSS after 10% and 100% of its messages (1M; 400k in the short run)"),
}

CFFI_FLOOR = "cffi floor"


def loop_floor(backend: str) -> str:
    return floors.floor_name(backend)


def anyio_floor(backend: str) -> str:
    return floors.floor_name(floors.ANYIO + backend)


@dataclass
class Case:
    """One implementation of one row: measured once per round."""

    row: str
    impl: str
    measure: Callable[[], dict[str, float]]
    #: (row, impl) of the floor it is compared with.
    floor: tuple[str, str] | None = None
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


#: DESIGN.md's table of targets.  The async rows are bounded against the anyio
#: floor (the mechanism the design requires); the event-loop floor stays in
#: the table as a reference.
TARGETS = [
    Target("B1", "sync", "B1", CFFI_FLOOR, "us", 1.2, at_most=True),
    Target("B2", "sync", "B2", CFFI_FLOOR, "msgs", 0.85, at_most=False),
    Target("B2b", "sync", "B2", "posix_ipc", "msgs", 1.1, at_most=False),
    Target("B2b", "sync", "B2", "sync", "msgs", 1.3, at_most=False),
    *(Target("B3", b, "B3", anyio_floor(b), "msgs", 0.9, at_most=False) for b in w.BACKENDS),
    *(Target("B3b", b, "B2", "sync", "msgs", 0.8, at_most=False) for b in w.BACKENDS),
    *(Target("B4", b, "B4", anyio_floor(b), "median_us", 1.2, at_most=True) for b in w.BACKENDS),
    Target("B4", "sync", "B4", "C", "median_us", 1.5, at_most=True),
    Target("B5", "thread", "B3", "asyncio", "msgs", 0.3, at_most=False),
]


def make_cases(
    progs: dict[str, Path], sizes: Sizes, have_floor: bool
) -> tuple[list[Case], list[str]]:
    """Every case this machine can run, and notes on what was left out."""
    notes = []
    have_c = bool(progs)
    have_pi = w.posix_ipc() is not None
    have_many = hasattr(MessageQueue, "receive_many")
    if not have_pi:
        notes.append("posix_ipc rows skipped: posix_ipc is not installed")
    if not have_many:
        notes.append("B2b skipped: this version of MessageQueue has no receive_many")
    if not have_c:
        notes.append("the producer and echo are Python processes (no C)")
    s = sizes
    cffi = {row: (row, CFFI_FLOOR) if have_floor else None for row in ("B1", "B2", "B4")}
    loop = {b: ("B3", loop_floor(b)) if have_floor else None for b in w.BACKENDS}
    ping_loop = {b: ("B4", loop_floor(b)) if have_floor else None for b in w.BACKENDS}

    def streamed(consume: w.Consumer, n: int = s.stream) -> Callable[[], dict[str, float]]:
        return lambda: w.stream(progs, n, consume)

    cases = []
    if have_c:
        cases.append(Case("B1", "C", lambda: w.pairs_c(progs, s.pairs), cffi["B1"]))
    if have_pi:
        cases.append(Case("B1", "posix_ipc", lambda: w.pairs_posix_ipc(s.pairs), cffi["B1"]))
    if have_floor:
        cases.append(Case("B1", CFFI_FLOOR, lambda: floors.pairs(s.pairs)))
    cases.append(Case("B1", "sync", lambda: w.pairs_sync(s.pairs), cffi["B1"]))

    if have_c:
        cases.append(Case("B2", "C", streamed(w.consume_c(progs)), cffi["B2"]))
    if have_pi:
        cases.append(Case("B2", "posix_ipc", streamed(w.consume_posix_ipc), cffi["B2"]))
    if have_floor:
        cases.append(Case("B2", CFFI_FLOOR, streamed(floors.consume)))
    cases.append(Case("B2", "sync", streamed(w.consume_sync), cffi["B2"]))
    if have_many:
        cases.append(Case("B2b", "sync", streamed(w.consume_sync_many), cffi["B2"]))

    for b in w.BACKENDS:
        if have_floor:
            cases.append(Case("B3", loop_floor(b), streamed(floors.consume_async(b))))
            anyio_loop = floors.ANYIO + b
            cases.append(
                Case("B3", anyio_floor(b), streamed(floors.consume_async(anyio_loop)), loop[b])
            )
        cases.append(Case("B3", b, streamed(w.consume_async(b)), loop[b]))
    for b in w.BACKENDS:
        cases.append(Case("B3b", b, streamed(w.consume_async(b, 64)), loop[b]))

    if have_c:
        cases.append(Case("B4", "C", lambda: w.pingpong_c(progs, s.pingpong, s.warmup), cffi["B4"]))
    if have_floor:
        cases.append(Case("B4", CFFI_FLOOR, lambda: floors.pingpong_floor(s.pingpong, s.warmup)))
    for impl in [*(["posix_ipc"] if have_pi else []), "sync"]:
        cases.append(
            Case(
                "B4",
                impl,
                lambda i=impl: w.pingpong_python(i, s.pingpong, s.warmup),  # type: ignore[misc]
                cffi["B4"],
            )
        )
    for b in w.BACKENDS:
        if have_floor:
            cases.append(
                Case(
                    "B4",
                    loop_floor(b),
                    lambda b=b: floors.pingpong_async(b, s.pingpong, s.warmup),  # type: ignore[misc]
                )
            )
            cases.append(
                Case(
                    "B4",
                    anyio_floor(b),
                    lambda b=b: floors.pingpong_async(  # type: ignore[misc]
                        floors.ANYIO + b, s.pingpong, s.warmup
                    ),
                    ping_loop[b],
                )
            )
        cases.append(
            Case(
                "B4",
                b,
                lambda b=b: w.pingpong_python(b, s.pingpong, s.warmup),  # type: ignore[misc]
                ping_loop[b],
            )
        )

    thread = w.consume_async("asyncio", 0, "thread")
    cases.append(Case("B5", "thread", streamed(thread, s.stream // 2), loop["asyncio"]))
    for b in ("asyncio", "trio"):
        cases.append(Case("B5c", b, lambda b=b: w.cancel_latency(b, s.cancels)))  # type: ignore[misc]
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


def per_round_ratios(a: Case | None, b: Case | None, metric: str) -> list[float]:
    """a/b in each round where both were measured."""
    if a is None or b is None or a is b or a.error or b.error:
        return []
    xs, ys = a.samples.get(metric, []), b.samples.get(metric, [])
    return [x / y for x, y in zip(xs, ys, strict=False) if y]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _comparisons(case: Case, by_key: dict[tuple[str, str], Case]) -> dict[str, float | None]:
    """The case's ratios to its floor, to C, to posix_ipc and, for an async row, to
    the anyio floor of its backend (None where not measured)."""
    row = ROWS[case.row]
    if row.metric is None or row.references is None:
        return {}
    bases = {
        "floor": by_key.get(case.floor) if case.floor else None,
        "C": by_key.get((row.references, "C")),
        "posix_ipc": by_key.get((row.references, "posix_ipc")),
        # AsyncMessageQueue against the same loop on anyio's API: what is ours.
        "anyio floor": by_key.get((case.row, anyio_floor(case.impl))),
    }
    return {name: _median(per_round_ratios(case, base, row.metric)) for name, base in bases.items()}


def summarize(cases: list[Case], memory_rows: list[Case], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a run."""
    by_key = {(c.row, c.impl): c for c in cases}
    measurements = [
        {
            "row": c.row,
            "impl": c.impl,
            "workload": ROWS[c.row].workload,
            "floor": None if c.floor is None else " ".join(c.floor),
            "error": c.error,
            "median": {m: statistics.median(v) for m, v in c.samples.items() if v},
            "ratios": _comparisons(c, by_key),
            "samples": c.samples,
        }
        for c in [*cases, *memory_rows]
    ]
    targets = []
    for t in TARGETS:
        ratios = per_round_ratios(
            by_key.get((t.row, t.impl)), by_key.get((t.base_row, t.base_impl)), t.metric
        )
        ratio = _median(ratios)
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
    c_sources: Path,
    build_dir: Path,
    rows: set[str] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the C programs and the floor, measure every row (or those in *rows*);
    return the JSON document."""
    started = time.monotonic()
    progs, note = w.build_c(c_sources, build_dir)
    progress(note)
    have_floor, floor_note = floors.build()
    progress(floor_note)
    cases, notes = make_cases(progs, sizes, have_floor)
    if rows is not None:
        cases = [c for c in cases if c.row in rows]
    for n in notes:
        progress(n)
    run_rounds(cases, rounds, progress)
    memory_rows = [
        Case("M", impl, lambda i=impl: w.memory(progs, i, sizes.memory))  # type: ignore[misc]
        for impl in ("sync", "asyncio")
        if rows is None or "M" in rows
    ]
    run_rounds(memory_rows, 1, lambda _: None)
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rounds": rounds,
        "sizes": asdict(sizes),
        "machine": machine(),
        "notes": [note, floor_note, *notes],
        "seconds": round(time.monotonic() - started, 1),
    }
    return summarize(cases, memory_rows, meta)
