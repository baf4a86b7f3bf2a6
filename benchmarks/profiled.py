"""The daemon as the benchmarks run it: the test harness's `DaemonProcess` with the benchmarks' settings
(the shipped ones: native observer, 2 s settle, concurrency 8), py-spy profiles of it, and read-only
looks at its SQLite state."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from source import PYTHON

from benchmarks.kit.harness import DaemonProcess


@dataclass
class Daemon(DaemonProcess):
    """`news-monitor run` (as `python -m monitor run`) on `home`; `profile`: a py-spy output file to record."""

    profile: Path | None = None
    spy: subprocess.Popen[bytes] | None = None
    child: int | None = None  # the daemon's pid when py-spy started it

    def base_settings(self) -> dict[str, Any]:
        """The shipped config/monitor.yaml with our folder, state, port and a JSON log."""
        return {
            "rules_file": str(self.home / "rules.yaml"),
            "timezone": "Europe/Amsterdam",
            "watch": {"folders": [str(self.watched)], "observer": "native", "settle": "2s", "reconcile_interval": "5m"},
            "state": {"url": self.state_url},
            "delivery": {"concurrency": 8, "shutdown_grace": "10s"},
            "http": {"port": self.port},
            "log": {"level": "INFO", "format": "json"},
        }

    @property
    def pid(self) -> int:
        if self.child is not None:
            return self.child
        return super().pid

    def wait_ready(self, timeout: float = 300) -> float:
        """Wait for /readyz (100,000 rules take a while); the seconds from the spawn to ready."""
        return super().wait_ready(timeout)

    def start_recorded(self, rate: int = 250) -> None:
        """Start the daemon under `py-spy record` (to profile the start-up too); then `wait_ready()`."""
        assert self.profile is not None
        spy = [
            _py_spy(),
            "record",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(self.profile),
            "--nonblocking",
            *_py_spy_extra(),
            "--",
        ]
        self.proc = self.spy = self.spawn(spy + self.command)
        deadline = time.monotonic() + 10
        while self.child is None and time.monotonic() < deadline:
            for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
                pids = task.read_text().split()
                if pids:
                    self.child = int(pids[0])
            time.sleep(0.005)

    def record(self, rate: int = 250) -> None:
        """Start py-spy on the running daemon (when `profile` is set); `stop()` writes the profile."""
        if self.profile is None or self.proc is None or self.spy is not None:
            return
        self.spy = subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--output",
                str(self.profile),
                "--nonblocking",
                *_py_spy_extra(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop_recording(self) -> None:
        if self.spy is not None and self.child is None:
            self.spy.send_signal(signal.SIGINT)
            self.spy.wait(60)
            self.spy = None

    def stop(self, timeout: float = 60) -> int:
        self.stop_recording()
        if self.proc is None:
            return 0
        if self.child is not None:  # py-spy started it: stop the daemon, py-spy then writes the profile
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGTERM)
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    # -- the state store, read-only -----------------------------------------------------------------------
    def query(self, sql: str) -> Any:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as conn:
                return conn.execute(sql).fetchone()[0]
        except sqlite3.Error:
            return None

    def ledger_count(self) -> int:
        return int(self.query("SELECT count(*) FROM files") or 0)

    def open_deliveries(self) -> int:
        return int(self.query("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying')") or 0)


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")


def _py_spy_extra() -> list[str]:
    """More py-spy options from BENCH_PY_SPY, e.g. `--gil` (only the thread holding the GIL) or `--idle`."""
    return os.environ.get("BENCH_PY_SPY", "").split()


def summarize_profile(raw: Path, top: int = 25, thread_filter: str | None = None) -> str:
    """The functions with the most samples (inclusive and self) from py-spy's raw collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    if not raw.exists():
        return f"(no profile written at {raw})"
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if thread_filter and thread_filter not in frames[0]:
            continue
        n = int(count)
        total += n
        names = [_frame(f) for f in frames[1:] if f]
        for name in set(names):
            inclusive[name] += n
        if names:
            own[names[-1]] += n
    lines = [f"{raw.name}: {total} samples"]
    lines.append("  inclusive:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)] if total else []
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)] if total else []
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`, without the line so that a function counts once."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    short = "/".join(Path(path).parts[-2:]) if path else ""
    return f"{name} ({short})"
