"""The comparison suite's bookkeeping, and ``anyposixmq bench``.

The suite lives in the source tree's ``benchmarks/`` (it imports the package,
never the reverse), so it is imported from there.  Nothing here measures
anything in earnest (benchmarks never run in the test sessions): it checks
that the figures the suite reports come from the right samples, that its
children and its floor binding work, and that the installed package holds
no comparison code.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import pytest
from _helpers import MakeQueue

import anyposixmq
from anyposixmq import _selfbench

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import floors  # noqa: E402
import report  # noqa: E402
import suite  # noqa: E402
import workloads  # noqa: E402


def test_round_trips_skip_the_warmup_and_use_consecutive_stamps() -> None:
    assert workloads.round_trips([0, 5, 9, 20, 26], warmup=2) == [11, 6]
    assert workloads.round_trips([0, 5], warmup=0) == [5]


def test_percentiles_are_nearest_rank() -> None:
    times = list(range(100, 0, -1))  # 1..100 us in ns/1000, unsorted
    result = workloads.percentiles([t * 1000 for t in times])
    assert result == {"median_us": 51.0, "p99_us": 100.0}


def _case(
    row: str, impl: str, metric: str, values: list[float], floor: tuple[str, str] | None = None
) -> suite.Case:
    case = suite.Case(row, impl, dict, floor)
    case.samples[metric] = values
    return case


def _target(doc: dict[str, object], label: str) -> dict[str, object]:
    targets = doc["targets"]
    assert isinstance(targets, list)
    found: dict[str, object] = next(t for t in targets if t["label"] == label)
    return found


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    # Per round 2/1, 3/3, 12/4 -> median 2; the ratio of the medians would be 3/3 = 1.
    ours = _case("B1", "sync", "us", [2.0, 3.0, 12.0])
    floor = _case("B1", "cffi floor", "us", [1.0, 3.0, 4.0])
    doc = suite.summarize([ours, floor], [], {})
    target = _target(doc, "B1 sync / cffi floor")
    assert target["ratios"] == [2.0, 1.0, 3.0]
    assert target["ratio"] == 2.0
    assert target["ok"] is False  # <= 1.2x wanted


@pytest.mark.parametrize(("value", "ok"), [(1.0, True), (0.85, True), (0.8, False)])
def test_throughput_targets_are_lower_bounds(value: float, ok: bool) -> None:
    ours = _case("B2", "sync", "msgs", [value * 100])
    floor = _case("B2", "cffi floor", "msgs", [100.0])
    doc = suite.summarize([ours, floor], [], {})
    assert _target(doc, "B2 sync / cffi floor")["ok"] is ok


def test_every_row_is_compared_with_its_floor_c_and_posix_ipc() -> None:
    cases = [
        _case("B2", "C", "msgs", [400.0, 400.0, 400.0]),
        _case("B2", "posix_ipc", "msgs", [200.0, 200.0, 200.0]),
        _case("B2", "cffi floor", "msgs", [100.0, 100.0, 100.0]),
        _case("B3", "trio floor", "msgs", [50.0, 50.0, 50.0]),
        _case("B3", "trio anyio floor", "msgs", [40.0, 40.0, 40.0], floor=("B3", "trio floor")),
        _case("B3", "trio", "msgs", [40.0, 45.0, 50.0], floor=("B3", "trio floor")),
    ]
    doc = suite.summarize(cases, [], {})
    by_impl = {m["impl"]: m for m in doc["measurements"]}
    # B3 compares with its event-loop floor, with B2's C and posix_ipc
    # consumers, and with the same loop on anyio's API.
    assert by_impl["trio"]["ratios"] == {
        "floor": 0.9,
        "C": 0.1125,
        "posix_ipc": 0.225,
        "anyio floor": 1.125,
    }
    assert by_impl["trio"]["floor"] == "B3 trio floor"
    assert by_impl["trio anyio floor"]["ratios"]["floor"] == 0.8
    assert by_impl["posix_ipc"]["ratios"] == {
        "floor": None,
        "C": 0.5,
        "posix_ipc": None,
        "anyio floor": None,
    }
    # The target bounds B3 against the anyio floor, the mechanism the design requires.
    assert _target(doc, "B3 trio / trio anyio floor")["ratio"] == 1.125
    assert _target(doc, "B3 trio / trio anyio floor")["ok"] is True
    table = report.format_table(doc)
    trio_line = next(line for line in table.splitlines() if line.split()[:2] == ["trio", "45"])
    assert "0.90x trio floor, 1.12x anyio" in trio_line
    assert "0.11x" in trio_line
    assert "0.23x" in trio_line
    rst = report.rst_tables(doc)
    assert "0.90x trio floor, 1.12x anyio" in rst


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "trio", "anyio/asyncio", "anyio/trio"])
def test_a_floor_names_its_loop(loop: str) -> None:
    # The echo child of a B4 floor finds its loop from the row's name.
    assert floors.floor_loop(floors.floor_name(loop)) == loop
    assert floors.floor_name("anyio/uvloop") == "uvloop anyio floor"


def test_a_failed_or_missing_side_gives_no_ratio() -> None:
    ours = _case("B1", "sync", "us", [2.0], floor=("B1", "cffi floor"))
    broken = _case("B1", "cffi floor", "us", [1.0])
    broken.error = "RuntimeError: boom"
    doc = suite.summarize([ours, broken], [], {})
    assert _target(doc, "B1 sync / cffi floor")["ratio"] is None
    assert _target(doc, "B1 sync / cffi floor")["ok"] is None
    assert doc["measurements"][0]["ratios"]["floor"] is None
    table = report.format_table(doc)
    assert "n/a: RuntimeError: boom" in table
    assert "B1 sync / cffi floor" in table


def test_memory_growth_target() -> None:
    flat = _case("M", "sync", "bytes_per_msg", [0.0])
    leaky = _case("M", "asyncio", "bytes_per_msg", [8.0])
    doc = suite.summarize([], [flat, leaky], {})
    assert _target(doc, "M sync: RSS growth per message")["ok"] is True
    assert _target(doc, "M asyncio: RSS growth per message")["ok"] is False


def test_every_target_names_cases_the_suite_makes() -> None:
    cases, _ = suite.make_cases({"pairs": Path("c")}, suite.SHORT, have_floor=True)
    keys = {(c.row, c.impl) for c in cases}
    for t in suite.TARGETS:
        if t.row == "B2b" and not hasattr(anyposixmq.MessageQueue, "receive_many"):
            continue
        assert (t.row, t.impl) in keys, t.label
        assert (t.base_row, t.base_impl) in keys, t.label
    floors_named = {c.floor for c in cases if c.floor is not None}
    assert floors_named <= keys


def test_children_import_the_package_under_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_queue: MakeQueue
) -> None:
    # A source checkout in the working directory has no compiled binding: a
    # child that put the working directory on sys.path would import it and
    # die, and the consumer would wait for its messages forever.
    broken = tmp_path / "anyposixmq"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('not the installed package')\n")
    monkeypatch.chdir(tmp_path)
    mq = make_queue(max_message_size=workloads.STREAM_SIZE)
    command = workloads.child_command("produce", mq.name, 3, workloads.STREAM_SIZE)
    with workloads.child(command) as proc:
        workloads.finish(proc, timeout=30)
    assert list(mq.drain()) == [(b"x" * workloads.STREAM_SIZE, 0)] * 3


def test_a_failing_producer_fails_the_row_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_producer(progs: object, name: str, n: int) -> list[object]:
        return [sys.executable, "-c", "raise SystemExit('the producer failed')"]

    monkeypatch.setattr(workloads, "producer_command", failing_producer)
    with pytest.raises(RuntimeError, match="the producer failed"):
        workloads.stream({}, 1000, workloads.consume_sync)


def test_the_floor_binding_receives_what_was_sent(make_queue: MakeQueue) -> None:
    # The suite builds it with the system compiler; so does this test, once.
    built, note = floors.build()
    if not built:
        pytest.skip(note)
    ffi, lib = floors.binding()
    mq = make_queue(max_message_size=workloads.STREAM_SIZE)
    mq.send(b"hello", 3)
    assert mq.name is not None
    q = floors._open(mq.name, lib.O_RDONLY | lib.O_NONBLOCK)
    try:
        buf, cell = floors._buffers(workloads.STREAM_SIZE)
        size = lib.mq_receive(q, buf, workloads.STREAM_SIZE, cell)
        assert (ffi.unpack(buf, size), cell[0]) == (b"hello", 3)
        assert lib.mq_receive(q, buf, workloads.STREAM_SIZE, cell) == -1  # would block
    finally:
        lib.mq_close(q)


# -- anyposixmq bench: the installed self-measurement ---------------------------


@pytest.mark.parametrize("loop", ["asyncio", "trio", "anyio/asyncio", "anyio/trio"])
def test_an_async_floor_consumes_every_message(make_queue: MakeQueue, loop: str) -> None:
    # The event-loop floor on the loop's own API, and the anyio floor on anyio's.
    built, note = floors.build()
    if not built:
        pytest.skip(note)
    mq = make_queue(capacity=5, max_message_size=workloads.STREAM_SIZE)
    mq.send(b"first")

    def send_the_rest() -> None:  # while the floor waits for the descriptor
        for i in range(4):
            mq.send(b"%d" % i)

    later = threading.Timer(0.2, send_the_rest)
    later.start()
    assert mq.name is not None
    try:
        seconds = floors.run_on(loop, floors._consume_async, loop, mq.name, 5)
    finally:
        later.join()
    assert seconds >= 0
    assert mq.attributes().current_messages == 0


def test_the_package_holds_no_comparison_code() -> None:
    # No posix_ipc, no C reference programs, no floors: `nox -s bench` has them.
    package = Path(anyposixmq.__file__).parent
    assert not (package / "_bench.py").exists()
    for path in package.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+posix_ipc", text, re.MULTILINE), path
        assert "benchmarks/c" not in text, path
    assert {p.name for p in package.glob("*.c")} <= {"_shim.c", "_binding.c"}


def test_selfbench_measures_each_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    assert _selfbench.run(rounds=1, messages=200, json_path=str(path)) == 0
    out = capsys.readouterr().out
    assert "sync consumer" in out
    assert "nox -s bench" in out
    rows = json.loads(path.read_text())["rows"]
    assert [r["row"] for r in rows][:2] == [
        "sync send+receive pair, one process",
        "sync consumer, producer process",
    ]
    assert any(r["row"] == "async for consumer, asyncio" for r in rows)
    assert all(r["median"] > 0 and len(r["samples"]) == 1 for r in rows)


def test_selfbench_refuses_bad_arguments_before_measuring() -> None:
    with pytest.raises(ValueError, match="rounds"):
        _selfbench.run(rounds=0)
    with pytest.raises(FileNotFoundError):
        _selfbench.run(json_path="/nonexistent-dir/results.json")


def test_selfbench_reports_a_failed_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _selfbench,
        "module_command",
        lambda *args: [sys.executable, "-c", "raise SystemExit('no producer')"],
    )
    monkeypatch.setattr(_selfbench, "FIRST_MESSAGE_TIMEOUT", 0.5)
    with pytest.raises(RuntimeError, match="no producer"):
        _selfbench.stream(_selfbench._consume_sync, 100)
