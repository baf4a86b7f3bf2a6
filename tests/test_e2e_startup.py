"""Start-up order through the real daemon (issue 12): what can refuse to start does so before any article is
read, in one line; a SIGHUP while starting is kept, not fatal; systemd hears READY=1 and STOPPING=1."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import copy_seeds, shipped_rules, wait_until

pytestmark = pytest.mark.e2e


def test_a_busy_health_port_refuses_to_start_before_reading_anything(receiver: Receiver, daemon_factory) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = daemon_factory(shipped_rules(receiver.url), port=port)
        copy_seeds(daemon.watched)
        daemon.start(ready=False)
        assert daemon.proc is not None
        assert daemon.proc.wait(30) == 1
    log = daemon.log.read_text()
    assert f"http.port: cannot listen on 127.0.0.1:{port}" in log
    assert "Traceback" not in log and "article_read" not in log
    assert receiver.received == []


def test_a_sighup_while_starting_is_kept_not_fatal(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start(ready=False)
    assert daemon.proc is not None
    time.sleep(0.2)  # the scenario: systemctl reload while the process starts (Python is still importing)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_ready()
    wait_until(lambda: "SIGHUP during start-up" in daemon.log.read_text(), 10, "the held reload")
    names = copy_seeds(daemon.watched)
    daemon.wait_settled(names)
    assert daemon.stop() == 0


def test_systemd_hears_ready_and_stopping(receiver: Receiver, daemon_factory, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(30)
        daemon = daemon_factory(shipped_rules(receiver.url), env={"NOTIFY_SOCKET": address}).start(ready=False)
        assert listener.recv(100) == b"READY=1"
        daemon.wait_ready()  # READY=1 came once /readyz could say ready
        assert daemon.stop() == 0
        assert listener.recv(100) == b"STOPPING=1"
