"""The real daemon as a subprocess, for tests and benchmarks: `python -m monitor run` on a folder of its own
(watched folder, rules file, settings file, SQLite state, log), started, waited on until /readyz answers 200,
and stopped with SIGTERM; plus what a harness reads from outside (its RSS, CPU time and JSON log).

Failures raise `AssertionError` with the end of the daemon's log, so that a test reports them as failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

import monitor

PYTHON = sys.executable
LOG_TAIL = 3000  # characters of the daemon's log quoted in a failure


def checkout() -> Path:
    """The folder that holds the `monitor` package this process imported: the daemon runs the same code."""
    return Path(monitor.__file__).resolve().parent.parent


def checkout_env() -> dict[str, str]:
    """The environment for a `python -m monitor` subprocess that runs this process's `monitor`, whatever
    `monitor` the environment would import from its folder (a worktree beside an editable install)."""
    path = os.pathsep.join(filter(None, [str(checkout()), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def holds_within(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `predicate` until it holds; fail with `what` after `timeout` seconds."""
    if not holds_within(predicate, timeout, interval):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings `base` with `overrides` per section: a dict is merged into the section, anything else replaces it."""
    config = dict(base)
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    return config


def reads(log: Path) -> Counter[str]:
    """How often a daemon read and matched each file (its `article_read` log events), by file name."""
    counts: Counter[str] = Counter()
    for event in log_events(log):
        if event.get("event") == "article_read":
            counts[Path(event["path"]).name] += 1
    return counts


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON log's events; lines that are not JSON objects (a traceback) are left out."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


@dataclass
class DaemonProcess:
    """`python -m monitor run` on `home`: `rules` (a dict, or YAML text) and `settings` (overrides per section
    of `base_settings()`) are written there; `env` is added to the daemon's environment."""

    home: Path
    rules: dict[str, Any] | str
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    starts: int = 0
    started_at: float = 0.0  # time.perf_counter() at the last spawn
    ready_after: float = 0.0  # seconds from the last spawn to /readyz answering 200

    def __post_init__(self) -> None:
        self.watched = self.home / "incoming"
        self.watched.mkdir(parents=True, exist_ok=True)
        self.db = self.home / "state" / "monitor.db"
        self.state_url = f"sqlite:///{self.db}"
        self.write_rules(self.rules)
        YAML(typ="safe").dump(merged(self.base_settings(), self.settings), self.config)

    def base_settings(self) -> dict[str, Any]:
        """Settings for a test: quick to settle, UTC, a JSON log."""
        return {
            "rules_file": str(self.home / "rules.yaml"),
            "timezone": "UTC",
            "watch": {"folders": [str(self.watched)], "settle": "0.5s", "reconcile_interval": "30s"},
            "state": {"url": self.state_url},
            "delivery": {"shutdown_grace": "5s"},
            "http": {"port": self.port},
            "log": {"level": "INFO", "format": "json"},
        }

    def write_rules(self, rules: dict[str, Any] | str) -> None:
        """Write the rules file as editors do: a temporary file renamed into place."""
        temporary = self.home / "rules.yaml.tmp"
        if isinstance(rules, str):
            temporary.write_text(rules, encoding="utf-8")
        else:
            YAML(typ="safe").dump(rules, temporary)
        temporary.replace(self.home / "rules.yaml")

    @property
    def config(self) -> Path:
        return self.home / "monitor.yaml"

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    @property
    def command(self) -> list[str]:
        return [PYTHON, "-m", "monitor", "run", "--config", str(self.config)]

    @property
    def pid(self) -> int:
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    def spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        """Run `command` in `home` with this checkout's `monitor`, its output appended to the log."""
        inherited = {k: v for k, v in checkout_env().items() if not k.lower().endswith("_proxy")}  # env sets its own
        env = {**inherited, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.started_at = time.perf_counter()
            return subprocess.Popen(command, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start(self, ready: bool = True) -> DaemonProcess:
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.starts += 1
        self.proc = self.spawn(self.command)
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> float:
        """Wait for /readyz to answer 200; the seconds from the spawn to that answer."""
        with httpx.Client(timeout=1, trust_env=False) as client:

            def ready() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"http://127.0.0.1:{self.port}/readyz").status_code == 200:
                        self.ready_after = time.perf_counter() - self.started_at
                        return True
                return False

            if not holds_within(ready, timeout, interval=0.01):
                raise AssertionError(f"daemon not ready after {timeout}s:\n{self.log_tail()}")
        return self.ready_after

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit status; kills the daemon and fails if it does not stop in time."""
        assert self.proc is not None, "daemon not started"
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"daemon ignored SIGTERM for {timeout}s:\n{self.log_tail()}") from None

    def kill(self) -> None:
        assert self.proc is not None, "daemon not started"
        self.proc.kill()
        self.proc.wait(10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL:]

    def log_problems(self) -> list[str]:
        """Log lines at warning level or above, and lines that are not JSON (a traceback)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                level = json.loads(line).get("level")
            except (ValueError, AttributeError):
                level = "unparsed"
            if level in ("warning", "error", "critical", "unparsed"):
                found.append(line)
        return found

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the daemon in MB, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the daemon so far (all its threads), from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
