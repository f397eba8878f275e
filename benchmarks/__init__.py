"""PyFlow benchmarks: `make bench` (python -m benchmarks) prints tables; nothing here is a timed test.

Each module measures one promise the issues make and prints whether it is met on this machine, next to
a baseline measured in the same run, so a slow machine shows slow numbers rather than failures. The
helpers below keep every module's tables and verdicts looking the same.
"""

from __future__ import annotations

import statistics
from typing import Iterable, Sequence

__all__ = ["table", "verdict", "fmt", "median", "percentile", "busy_warning"]


def fmt(value, digits: int = 1) -> str:
    """A table cell: floats with `digits` decimals and thousands separators, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence], title: str | None = None) -> str:
    """Right-aligned plain-text table (first column left-aligned), printable in any terminal or CI log."""
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)


def verdict(goal: str, met: bool | None, detail: str = "") -> str:
    """One goal line: MET / MISSED / n/a (when it could not be measured here), and the evidence."""
    label = "n/a   " if met is None else ("MET   " if met else "MISSED")
    return f"  [{label}] {goal}" + (f": {detail}" if detail else "")


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; enough for the few hundred samples a benchmark collects."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def busy_warning() -> str | None:
    """A warning when other work competes for the CPUs: absolute times then run high (ratios measured
    side by side in the same run hold better), so a reader can tell a busy machine from a slow engine."""
    import os
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load <= cpus * 0.75:
        return None
    return (f"warning: the machine is busy (load average {load:.2f} on {cpus} CPUs): absolute times are "
            f"inflated; compare the ratios, measured side by side")
