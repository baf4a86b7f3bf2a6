"""The health port under slow and hostile clients, through the real daemon (issue 13): a slowloris of 2,000
connections, methods other than GET and HEAD, oversized and malformed requests, requests that drip."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import SEED_RULES, DaemonProcess, HealthProbe, copy_seeds, shipped_rules, wait_until

pytestmark = pytest.mark.e2e
DEFAULT_NOFILE = 1024  # the usual soft limit on open files (systemd's default, most shells)


def ask(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send `request` on a new connection and read the answer until the daemon closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer.split(b" ", 2)[1])


def split(answer: bytes) -> tuple[dict[str, str], bytes]:
    """The answer's headers (names lowercased) and its body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}, body


@dataclass
class Slowloris:
    """Keeps `count` connections open to the port in a thread, as the attack does: a quarter of them send
    nothing, the others a request's line and then a header line every half second, never the request's end
    (each line well within a per-line timeout); a connection that the daemon closes is opened again."""

    port: int
    count: int
    opened: int = 0
    held: dict[socket.socket, bool] = field(default_factory=dict)  # the connection, and whether it drips
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Slowloris:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.held:
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            while len(self.held) < self.count and not self._stop.is_set():
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                    drips = self.opened % 4 != 0
                    if drips:
                        sock.send(b"GET /healthz HTTP/1.1\r\nHost: m\r\n")
                except OSError:
                    break
                self.held[sock] = drips
                self.opened += 1
            self._drip()
            self._stop.wait(0.5)

    def _drip(self) -> None:
        for sock, drips in list(self.held.items()):
            try:
                if drips:
                    sock.send(b"X-Drip: x\r\n")
                elif sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":  # closed by the daemon
                    raise ConnectionResetError
            except BlockingIOError:  # an idle one, still open
                pass
            except OSError:
                del self.held[sock]
                sock.close()


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def many_sockets() -> None:
    """This process holds 2,000 sockets of its own: its soft limit on open files raised for them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if max(soft, wanted) < 2100:
        pytest.skip(f"needs 2,100 open files in the test process; the hard limit is {hard}")


@pytest.mark.slow
@pytest.mark.usefixtures("many_sockets")
def test_a_slowloris_of_2000_connections_silences_neither_health_nor_reads(receiver: Receiver, daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory(shipped_rules(receiver.url)).start()
    assert daemon.proc is not None
    subprocess.run(["prlimit", f"--pid={daemon.proc.pid}", f"--nofile={DEFAULT_NOFILE}:"], check=True)
    baseline = open_files(daemon.proc.pid)
    most = 0
    with HealthProbe(daemon.port) as prober, Slowloris(daemon.port, 2000) as attack:
        wait_until(lambda: attack.opened >= 2000, 30, "2,000 connections to the health port")
        names = copy_seeds(daemon.watched)  # written while the attack holds its connections
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline or not daemon.settled(names):
            most = max(most, open_files(daemon.proc.pid))
            assert time.monotonic() < deadline + 25, "the articles were not read and alerted under the attack"
            time.sleep(0.1)
        answered = len(prober.times)
    print(f"attack: {attack.opened} connections opened; /healthz: {answered} answers, max {max(prober.times):.3f} s;")
    print(f"  the daemon's open files: {baseline} before, at most {most} during")
    # Under a flood of new connections a probe can be the longest waiting when the cap is reached, and be
    # dropped (seen once in ~250 probes on a loaded CI machine): a probe may fail now and then, never twice
    # in a row (a liveness probe's failureThreshold is 3 by default) nor more than 2 % of the time.
    assert not prober.failed_twice_in_a_row() and len(prober.failures) <= 0.02 * answered, prober.failures[:5]
    assert answered >= 100 and max(prober.times) < 1.0, sorted(prober.times)[-5:]
    assert most < baseline + 64 + 5 * 16 + 40  # the cap, batches accepted, not yet counted, own files
    assert daemon.stop() == 0
    assert {(Path(r.json()["data"]["article"]["path"]).name, r.json()["data"]["rule"]) for r in receiver.received} == {
        (name, rule) for name in names for rule in SEED_RULES[name]
    }
    assert "Traceback" not in daemon.log.read_text()


def test_only_get_and_head_are_answered(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    for method in ("POST", "PUT", "DELETE"):
        answer = ask(daemon.port, f"{method} /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 2\r\n\r\nhi".encode())
        headers, _ = split(answer)
        assert (status(answer), headers.get("allow")) == (405, "GET, HEAD"), answer
    head = ask(daemon.port, b"HEAD /readyz HTTP/1.1\r\nHost: m\r\n\r\n")
    headers, body = split(head)
    assert (status(head), headers["content-length"], body) == (200, "6", b"")  # the size of "ready\n", no body
    get = ask(daemon.port, b"GET /readyz HTTP/1.1\r\nHost: m\r\n\r\n")
    assert (status(get), split(get)[1]) == (200, b"ready\n")
    assert daemon.stop() == 0


def test_oversized_and_malformed_requests_are_refused_without_a_traceback(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    long_line = b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: m\r\n\r\n"
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"b" * 100) for i in range(200))  # 23 KB of headers
    many_headers = b"GET /healthz HTTP/1.1\r\nHost: m\r\n" + filler + b"\r\n"
    answers = {
        "long line": ask(daemon.port, long_line),
        "many headers": ask(daemon.port, many_headers),
        "not http": ask(daemon.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),  # a TLS hello
        "no target": ask(daemon.port, b"GET\r\nHost: m\r\n\r\n"),
    }
    codes = {what: status(answer) for what, answer in answers.items()}
    assert codes == {"long line": 414, "many headers": 431, "not http": 400, "no target": 400}
    assert status(ask(daemon.port, b"GET /healthz HTTP/1.1\r\nHost: m\r\n\r\n")) == 200
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert "Traceback" not in log
    assert log.count('"http_requests_refused"') == 1  # one line for them all (at most one a minute)


def test_a_request_that_drips_is_answered_within_the_deadline_and_cut_off_past_it(
    receiver: Receiver, daemon_factory
) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as sock:
        for piece in (b"GE", b"T /heal", b"thz HTTP/1.1\r\n", b"Host: m\r\n", b"\r\n"):  # 1.2 s in all
            sock.sendall(piece)
            time.sleep(0.3)  # the scenario: a client on a slow link
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: m\r\n")
        answer = b""
        for i in range(20):  # a header line every 0.5 s, each well within a line's time: for 10 s
            sock.settimeout(0.5)
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                sock.sendall(f"X-Drip-{i}: x\r\n".encode())
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 2.5 < waited < 4.5  # the default request_timeout is 3 s for the request line and headers together
    assert daemon.stop() == 0
