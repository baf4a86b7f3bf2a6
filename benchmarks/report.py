"""The figures of a benchmark: percentiles, the result table (metric, value, target, ratio, verdict) and
the lines that say where it ran (machine, load, git commit, command)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from source import PYTHON, ROOT, source_root


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Row:
    name: str
    value: float | None
    unit: str = ""
    target: float | None = None
    kind: str = "max"  # "max": value <= target is good; "min": value >= target is good; "eq": value == target
    note: str = ""

    def ratio(self) -> str:
        if self.target is None or self.value is None:
            return ""
        if self.kind == "eq":
            return ""
        if self.target == 0:
            return ""
        return f"{self.value / self.target:.2f}"

    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None:
            return "MISS"
        ok = {"max": self.value <= self.target, "min": self.value >= self.target, "eq": self.value == self.target}
        return "ok" if ok[self.kind] else "MISS"

    def cells(self) -> list[str]:
        sign = {"max": "<=", "min": ">=", "eq": "=="}[self.kind]
        target = "" if self.target is None else f"{sign} {_num(self.target)} {self.unit}".rstrip()
        value = "n/a" if self.value is None else f"{_num(self.value)} {self.unit}".rstrip()
        return [self.name, value, target, self.ratio(), self.verdict(), self.note]


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


_LOAD_AT_START = load_average()


def _tree() -> str:
    """The git commit of the project, and whether `monitor/` has uncommitted changes."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "monitor"], capture_output=True, text=True
    )
    return commit.stdout.strip() + ("+local changes in monitor/" if dirty.stdout.strip() else "")


_TREE_AT_START = _tree()


def _monitor_changed(start: str) -> bool:
    """Whether `monitor/` now differs from commit `start` (committed since, or uncommitted)."""
    return (
        subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", start, "--", "monitor"], check=False).returncode != 0
    )


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    tree, now = _TREE_AT_START, _tree()
    if now != tree and "+" not in tree and _monitor_changed(tree):
        tree += f" (monitor/ changed, now {now}, during the run)"
    source = "" if source_root() == ROOT else f", daemon from BENCH_SOURCE={source_root()}"
    return (
        f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, {platform.system()}, git {tree}{source}"
    )


def print_table(title: str, rows: Sequence[Row], command: str) -> None:
    header = ["metric", "value", "target", "ratio", "", "note"]
    table = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    print(f"## {title}")
    print(f"machine: {machine()}")
    load = f"load average (1 min) at start {_LOAD_AT_START}, at end {load_average()}"
    print(f"{load} (a load above nproc means other work shared the CPUs)")
    print(f"command: {command}")
    print()
    for n, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    misses = [row.name for row in rows if row.verdict() == "MISS"]
    print()
    if not any(row.target is not None for row in rows):
        print("result: figures only (no targets)")
    else:
        print("result: " + ("all targets met" if not misses else "MISSED: " + ", ".join(misses)))
    sys.stdout.flush()


def command_line() -> str:
    return " ".join([f"{Path(PYTHON).parent.parent}/bin/python", *[_rel(a) for a in sys.argv]])


def _rel(arg: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(arg).resolve().relative_to(ROOT)) if arg.endswith(".py") else arg
    return arg
