"""A run's JSON document as a terminal table, reST tables and a chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from suite import ROWS

FORMATS = {
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


def value_text(m: dict[str, Any]) -> str:
    if m["error"]:
        return f"n/a: {m['error']}"[:100]
    return ", ".join(FORMATS[k].format(v) for k, v in m["median"].items())


def ratio_text(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def floor_text(m: dict[str, Any]) -> str:
    """The ratio to the floor, with the floor's name (in its own row when it is not this one)."""
    if m["floor"] is None:
        return "-"
    row, _, impl = m["floor"].partition(" ")
    where = impl if row == m["row"] else m["floor"]
    text = f"{ratio_text(m['ratios'].get('floor'))} {where}"
    if m["ratios"].get("anyio floor") is not None:
        text += f", {ratio_text(m['ratios']['anyio floor'])} anyio"
    return text


def target_value(t: dict[str, Any]) -> str:
    if t["ratio"] is not None:
        return f"{t['ratio']:.2f}x"
    if t.get("value") is not None:
        return f"{t['value']:.2f}"
    return "n/a"


def format_table(doc: dict[str, Any]) -> str:
    """The terminal table of a run: medians of the rounds, each with its floor, then
    the targets.  Ratios are of the row's figure (time for B1 and B4, so lower is
    faster; messages a second otherwise, so higher is faster)."""
    lines = [
        f"{'':5}{'implementation':20}{'median':34}{'vs floor':34}{'vs C':>7}{'vs posix_ipc':>13}"
    ]
    last = None
    for m in doc["measurements"]:
        if m["row"] != last:
            lines.append(f"{m['row']:4} {ROWS[m['row']].workload}")
            last = m["row"]
        r = m["ratios"]
        lines.append(
            f"     {m['impl']:19} {value_text(m):34}"
            + (
                f"{floor_text(m):34}{ratio_text(r.get('C')):>7}{ratio_text(r.get('posix_ipc')):>13}"
                if r and not m["error"]
                else ""
            )
        )
    lines.append("")
    lines.append(f"{'target':34} {'measured':>9}  {'wanted':12} holds")
    for t in doc["targets"]:
        ok = {True: "yes", False: "NO", None: "-"}[t["ok"]]
        lines.append(f"{t['label']:34} {target_value(t):>9}  {t['target']:12} {ok}")
    return "\n".join(lines)


def rst_tables(doc: dict[str, Any]) -> str:
    """The measurements and targets of a run as reST list-tables (for docs/performance.rst)."""
    lines = [".. list-table:: Medians of the rounds, and ratios to the floor, C and posix_ipc"]
    lines += ["   :header-rows: 1", ""]
    header = ["row", "implementation", "median", "vs floor", "vs C", "vs posix_ipc"]
    lines += [f"   {'*' if i == 0 else ' '} - {h}" for i, h in enumerate(header)]
    for m in doc["measurements"]:
        r = m["ratios"] if not m["error"] else {}
        cells = [
            m["row"],
            m["impl"],
            "n/a" if m["error"] else value_text(m),
            floor_text(m) if r else "-",
            ratio_text(r.get("C")),
            ratio_text(r.get("posix_ipc")),
        ]
        # A lone "-" would be a bullet list in reST.
        cells = ["\N{EM DASH}" if c == "-" else c for c in cells]
        lines += [f"   {'*' if i == 0 else ' '} - {c}" for i, c in enumerate(cells)]
    lines += ["", ".. list-table:: Targets (DESIGN.md)", "   :header-rows: 1", ""]
    lines += ["   * - ratio", "     - measured", "     - target", "     - holds"]
    for t in doc["targets"]:
        ok = {True: "yes", False: "**no**", None: "n/a"}[t["ok"]]
        lines += [
            f"   * - {t['label']}",
            f"     - {target_value(t)}",
            f"     - {t['target']}",
            f"     - {ok}",
        ]
    return "\n".join(lines) + "\n"


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
        f"anyposixmq against its floors: {doc['rounds']} rounds, "
        f"Python {machine['python']}, {machine['cpus']} CPUs",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
