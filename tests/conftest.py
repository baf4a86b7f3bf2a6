"""Shared fixtures: a real receiver on 127.0.0.1 and the real daemon as a subprocess."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from monitor.receiver import Receiver
from monitor.store import OPEN_STATES, Store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SECRET = "whsec_" + base64.b64encode(b"news-monitor-test-secret-32bytes").decode()
# The shipped rules flag these seeds, by rule (issue 2).
SEED_RULES = {
    "000_3107e6f82356df66.txt": {"hoogverraad", "arrestaties", "csto"},
    "003_1649dd4e54c446b5.txt": {"arrestaties", "dodental"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `predicate` until it holds; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite state file, migrated, in the test's folder."""
    store = Store(f"sqlite:///{tmp_path / 'state' / 'monitor.db'}")
    store.create()
    yield store
    store.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def shipped_rules(url: str, **webhook: Any) -> dict[str, Any]:
    """config/rules.yaml with the newsroom webhook pointed at `url` and `webhook` settings added."""
    data = YAML(typ="safe").load((ROOT / "config" / "rules.yaml").read_text(encoding="utf-8"))
    data["webhooks"]["newsroom"] = {"url": url, "secret": SECRET, "format": "generic", **webhook}
    return data


def this_checkout() -> dict[str, str]:
    """The environment for a `python -m monitor` subprocess that runs this checkout's code, whatever
    `monitor` the environment would import from its folder (a worktree beside an editable install)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@dataclass
class DaemonProcess:
    """The real daemon (`python -m monitor run`) on a temporary folder, state file and config."""

    home: Path
    rules: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    starts: int = 0

    def __post_init__(self) -> None:
        self.watched = self.home / "incoming"
        self.watched.mkdir(parents=True, exist_ok=True)
        self.state_url = f"sqlite:///{self.home / 'state' / 'monitor.db'}"
        self.write_rules(self.rules)
        config = {
            "rules_file": str(self.home / "rules.yaml"),
            "timezone": "UTC",
            "watch": {"folders": [str(self.watched)], "settle": "0.5s", "reconcile_interval": "30s"},
            "state": {"url": self.state_url},
            "delivery": {"shutdown_grace": "5s"},
            "http": {"port": self.port},
            "log": {"level": "INFO", "format": "json"},
        }
        for section, values in self.settings.items():
            config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
        YAML(typ="safe").dump(config, self.home / "monitor.yaml")

    def write_rules(self, rules: dict[str, Any]) -> None:
        """Write the rules file as editors do: a temporary file renamed into place."""
        temporary = self.home / "rules.yaml.tmp"
        YAML(typ="safe").dump(rules, temporary)
        temporary.replace(self.home / "rules.yaml")

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    def start(self, ready: bool = True) -> DaemonProcess:
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.starts += 1
        inherited = {
            k: v for k, v in this_checkout().items() if not k.lower().endswith("_proxy")
        }  # a test sets its own
        env = {**inherited, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.home / "monitor.yaml")],
                cwd=self.home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout, "the daemon's /readyz")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit status; fails the test if the daemon does not stop in time."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"daemon ignored SIGTERM for {timeout}s:\n{self.log.read_text()[-3000:]}") from None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def store(self) -> Store:
        return Store(self.state_url)

    def settled(self, names: list[str]) -> bool:
        """Every named file is in the ledger and no delivery is still pending or retrying."""
        store = self.store()
        try:
            seen = {Path(file.path).name for file in store.recorded_files()}
            open_ = sum(count for state, count in store.count_deliveries_by_state().items() if state in OPEN_STATES)
        except Exception:
            return False
        finally:
            store.close()
        return set(names) <= seen and not open_

    def wait_settled(self, names: list[str], timeout: float = 30) -> None:
        wait_until(lambda: self.settled(names), timeout, f"{names} to be read and their deliveries done")


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    made: list[DaemonProcess] = []

    def make(rules: dict[str, Any], name: str = "d", **kwargs: Any) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path / name, rules, **kwargs)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)


def copy_seeds(folder: Path) -> list[str]:
    names = sorted(SEED_RULES)
    for name in names:
        shutil.copyfile(SEEDS / name, folder / name)
    return names


@dataclass
class HealthProbe:
    """GETs /healthz on a new connection every 20 ms in a thread, timing each answer (a bare socket: an
    HTTP client in this process would add more than it measures)."""

    port: int
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    answered: list[bool] = field(default_factory=list)  # each probe in order: answered 200 or not
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            start = time.perf_counter()
            failed = len(self.failures)
            try:
                answer = self._get()
                if not answer.startswith(b"HTTP/1.1 200"):
                    self.failures.append(answer[:40].decode("latin-1") or "closed without an answer")
            except OSError as exc:
                self.failures.append(repr(exc))
            self.times.append(time.perf_counter() - start)
            self.answered.append(len(self.failures) == failed)

    def failed_twice_in_a_row(self) -> bool:
        return any(not a and not b for a, b in zip(self.answered, self.answered[1:], strict=False))

    def _get(self) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: monitor\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):  # the server closes the connection after its answer
                answer += chunk
        return answer
