"""Shared fixtures: a real receiver on 127.0.0.1 and the real daemon as a subprocess (`benchmarks.kit`'s
harness); shared helpers are in tests/helpers.py."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.kit import harness
from benchmarks.kit.harness import checkout_env as this_checkout
from benchmarks.kit.harness import free_port, wait_until
from benchmarks.kit.rules import SECRET, shipped_rules
from monitor.cli.receiver import Receiver
from monitor.store import OPEN_STATES, Store
from tests.helpers import fresh_database

__all__ = ["SECRET", "free_port", "shipped_rules", "this_checkout", "wait_until"]  # imported from here by tests

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
# The shipped rules flag these seeds, by rule (issue 2).
SEED_RULES = {
    "000_3107e6f82356df66.txt": {"hoogverraad", "arrestaties", "csto"},
    "003_1649dd4e54c446b5.txt": {"arrestaties", "dodental"},
}


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


@dataclass
class DaemonProcess(harness.DaemonProcess):
    """The real daemon (`python -m monitor run`) on a temporary folder, state file and config; its state
    read through the store."""

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


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database on the MONITOR_TEST_PG_URL server, named after the test module; dropped after."""
    with fresh_database(request.module.__name__.rpartition(".")[2].removeprefix("test_")) as url:
        yield url
