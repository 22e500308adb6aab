"""The benchmark's bookkeeping: round trips, percentiles, ratios, the table.

Nothing here measures anything (benchmarks never run in the test sessions);
it checks that the figures the suite reports are computed from the right
samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _helpers import MakeQueue

from anyposixmq import _bench


def test_round_trips_skip_the_warmup_and_use_consecutive_stamps() -> None:
    assert _bench._round_trips([0, 5, 9, 20, 26], warmup=2) == [11, 6]
    assert _bench._round_trips([0, 5], warmup=0) == [5]


def test_percentiles_are_nearest_rank() -> None:
    times = list(range(100, 0, -1))  # 1..100 us in ns/1000, unsorted
    result = _bench._percentiles([t * 1000 for t in times])
    assert result == {"median_us": 51.0, "p99_us": 100.0}


def _case(row: str, impl: str, metric: str, values: list[float]) -> _bench.Case:
    case = _bench.Case(row, impl, dict)
    case.samples[metric] = values
    return case


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    # Per round 2/1, 3/3, 12/4 -> median 2; the ratio of the medians would be 3/3 = 1.
    ours = _case("B1", "sync", "us", [2.0, 3.0, 12.0])
    c = _case("B1", "C", "us", [1.0, 3.0, 4.0])
    doc = _bench.summarize([ours, c], [], {})
    target = next(t for t in doc["targets"] if t["label"] == "B1 sync / C")
    assert target["ratios"] == [2.0, 1.0, 3.0]
    assert target["ratio"] == 2.0
    assert target["ok"] is False  # <= 1.3x wanted


@pytest.mark.parametrize(("value", "ok"), [(1.2, True), (1.1, True), (1.0, False)])
def test_throughput_targets_are_lower_bounds(value: float, ok: bool) -> None:
    ours = _case("B2", "sync", "msgs", [value * 100])
    pi = _case("B2", "posix_ipc", "msgs", [100.0])
    doc = _bench.summarize([ours, pi], [], {})
    target = next(t for t in doc["targets"] if t["label"] == "B2 sync / posix_ipc")
    assert target["ok"] is ok


def test_a_failed_or_missing_side_gives_no_ratio() -> None:
    ours = _case("B1", "sync", "us", [2.0])
    broken = _case("B1", "C", "us", [1.0])
    broken.error = "RuntimeError: boom"
    doc = _bench.summarize([ours, broken], [], {})
    by_label = {t["label"]: t for t in doc["targets"]}
    assert by_label["B1 sync / C"]["ratio"] is None
    assert by_label["B1 sync / C"]["ok"] is None
    assert by_label["B1 sync / posix_ipc"]["ratio"] is None
    table = _bench.format_table(doc)
    assert "n/a: RuntimeError: boom" in table
    assert "B1 sync / C" in table


def test_memory_growth_target() -> None:
    flat = _case("M", "sync", "bytes_per_msg", [0.0])
    leaky = _case("M", "asyncio", "bytes_per_msg", [8.0])
    doc = _bench.summarize([], [flat, leaky], {})
    by_label = {t["label"]: t for t in doc["targets"]}
    assert by_label["M sync: RSS growth per message"]["ok"] is True
    assert by_label["M asyncio: RSS growth per message"]["ok"] is False


def test_run_refuses_bad_arguments_before_measuring() -> None:
    with pytest.raises(ValueError, match="rounds"):
        _bench.run(rounds=0)
    with pytest.raises(FileNotFoundError):
        _bench.run(json_path="/nonexistent-dir/results.json")


def test_children_import_the_package_they_were_started_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_queue: MakeQueue
) -> None:
    # A source checkout in the working directory has no compiled binding: a
    # child started with ``python -m`` from there would import it and die,
    # and the consumer would wait for its messages forever.
    broken = tmp_path / "anyposixmq"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('not the installed package')\n")
    monkeypatch.chdir(tmp_path)
    mq = make_queue(max_message_size=_bench.STREAM_SIZE)
    with _bench._child(_bench._child_command("produce", mq.name, 3, _bench.STREAM_SIZE)) as proc:
        _bench._finish(proc, timeout=30)
    assert list(mq.drain()) == [(b"x" * _bench.STREAM_SIZE, 0)] * 3


def test_a_failing_producer_fails_the_row_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_producer(progs: object, name: str, n: int) -> list[object]:
        return [sys.executable, "-c", "raise SystemExit('the producer failed')"]

    monkeypatch.setattr(_bench, "_producer", failing_producer)
    with pytest.raises(RuntimeError, match="the producer failed"):
        _bench.stream({}, 1000, _bench.consume_sync)
