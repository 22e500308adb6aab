"""Where one implementation of one row spends its time: a cProfile of one measurement.

``python benchmarks/profile_row.py B3 trio`` measures that case once (the
short sizes) under :mod:`cProfile` and prints the functions with the most
time of their own.  Only this process is profiled: the consumer of B2/B3, the
pinger of B4, the whole loop of B1; producers and echoes are children.
cProfile's own cost inflates cheap calls, so compare two implementations of
a row (``B3 trio`` and ``B3 "trio floor"``) rather than read absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

import floors
import suite
import workloads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", help="B1, B2, B3, B3b, B4 or B5")
    parser.add_argument("impl", help='sync, asyncio, uvloop, trio, "cffi floor", "trio floor"...')
    parser.add_argument("--top", type=int, default=18, help="functions to print (18)")
    args = parser.parse_args(argv)
    progs, _ = workloads.build_c(workloads.HERE / "c", floors.BUILD_DIR)
    have_floor, _ = floors.build()
    cases, _ = suite.make_cases(progs, suite.SHORT, have_floor)
    by_key = {(c.row, c.impl): c for c in cases}
    case = by_key.get((args.row, args.impl))
    if case is None:
        parser.error(f"no case {args.row} {args.impl!r}; there are: {sorted(by_key)}")
    profile = cProfile.Profile()
    result = profile.runcall(case.measure)
    print(f"{args.row} {args.impl}: {result} (under cProfile)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
