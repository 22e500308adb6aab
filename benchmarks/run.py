"""The comparison suite: rows B1-B5 and memory, against their floors, C and posix_ipc.

Run it with ``nox -s bench`` (or ``python benchmarks/run.py`` with the package
installed).  It compiles the C reference programs of ``benchmarks/c`` and the
cffi floor (``floors.py``) into ``benchmarks/_build``, measures every row in
alternating rounds, prints each row with its floor, and writes
``benchmarks/results/latest.json`` and a chart of the ratios against their
targets, ``benchmarks/results/ratios.png``.

The modules: ``workloads.py`` (each implementation of each row),
``floors.py`` (the cffi and event-loop floors), ``suite.py`` (cases, rounds,
ratios, targets), ``report.py`` (tables and chart), ``children.py`` (the
child processes).  They import the package; the package never imports them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import report
import suite

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--short", action="store_true", help="fewer messages per measurement")
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
    doc = suite.run_suite(
        rounds=args.rounds,
        sizes=suite.SHORT if args.short else suite.FULL,
        c_sources=HERE / "c",
        build_dir=HERE / "_build",
    )
    print()
    print(report.format_table(doc))
    print(f"\n{args.rounds} rounds in {doc['seconds']} s")
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.json}")
    if args.rst:
        args.rst.write_text(report.rst_tables(doc))
        print(f"reST tables written to {args.rst}")
    if not args.no_chart:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        report.chart(doc, args.png)
        print(f"chart written to {args.png}")
    return 1 if any(m["error"] for m in doc["measurements"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
