"""The full benchmark suite: rows B1-B5 and memory, side by side with C and posix_ipc.

Run it with ``nox -s bench`` (or ``python benchmarks/run.py``).  It compiles
the C reference programs of ``benchmarks/c`` into ``benchmarks/_build``,
measures every row in alternating rounds, prints the table, and writes
``benchmarks/results/latest.json`` and a chart of the ratios against their
targets, ``benchmarks/results/ratios.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from anyposixmq import _bench

HERE = Path(__file__).resolve().parent


def chart(doc: dict[str, Any], path: Path) -> None:
    """A horizontal bar per target ratio, each with its bound as a tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in doc["targets"] if t.get("ratio") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(targets) + 1.4))
    for y, t in enumerate(targets):
        colour = "tab:green" if t["ok"] else "tab:red"
        ax.barh(y, t["ratio"], color=colour, alpha=0.75)
        ax.plot([t["limit"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(t["ratio"], y, f" {t['ratio']:.2f}x", va="center", fontsize=8)
    ax.set_yticks(range(len(targets)))
    ax.set_yticklabels([f"{t['label']} ({t['target']})" for t in targets], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log", base=2)
    top = max(max(t["ratio"], t["limit"]) for t in targets) if targets else 2.0
    ax.set_xlim(0.25, 2 ** math.ceil(math.log2(top * 1.6)))
    ax.axvline(1.0, color="grey", linewidth=0.5)
    ax.set_xlabel("ratio (median of per-round ratios); black tick = target; green = holds")
    machine = doc["machine"]
    ax.set_title(
        f"anyposixmq vs C and posix_ipc: {doc['rounds']} rounds, "
        f"Python {machine['python']}, {machine['cpus']} CPUs",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rst_tables(doc: dict[str, Any]) -> str:
    """The measurements and targets of a run as reST list-tables (for docs/performance.rst)."""
    lines = [".. list-table:: Medians of the rounds", "   :header-rows: 1", ""]
    lines += ["   * - row", "     - workload", "     - implementation", "     - median"]
    last = None
    for m in doc["measurements"]:
        if m["error"]:
            value = "n/a"
        else:
            value = ", ".join(_bench._FORMATS[k].format(v) for k, v in m["median"].items())
        workload = m["workload"] if m["row"] != last else ""
        last = m["row"]
        lines += [
            f"   * - {m['row']}",
            f"     - {workload}".rstrip(),
            f"     - {m['impl']}",
            f"     - {value}",
        ]
    lines += ["", ".. list-table:: Targets", "   :header-rows: 1", ""]
    lines += ["   * - ratio", "     - measured", "     - target", "     - holds"]
    for t in doc["targets"]:
        got = "n/a"
        if t["ratio"] is not None:
            got = f"{t['ratio']:.2f}x"
        elif t.get("value") is not None:
            got = f"{t['value']:.2f}"
        ok = {True: "yes", False: "**no**", None: "n/a"}[t["ok"]]
        lines += [f"   * - {t['label']}", f"     - {got}", f"     - {t['target']}", f"     - {ok}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument(
        "--short", action="store_true", help="the smaller sizes of `anyposixmq bench`"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--png", type=Path, default=HERE / "results" / "ratios.png")
    parser.add_argument(
        "--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)"
    )
    parser.add_argument("--rst", type=Path, help="also write the tables as reST there")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = _bench.run_suite(
        rounds=args.rounds,
        sizes=_bench.SHORT if args.short else _bench.FULL,
        c_sources=HERE / "c",
        build_dir=HERE / "_build",
        json_path=str(args.json),
    )
    if args.rst:
        args.rst.write_text(rst_tables(doc))
        print(f"reST tables written to {args.rst}")
    if not args.no_chart:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        chart(doc, args.png)
        print(f"chart written to {args.png}")
    return 1 if any(m["error"] for m in doc["measurements"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
