"""PostgreSQL sessions and the pool, on a real server: the timeouts of `state.postgres` take effect, each
session names its host and process, one daemon never holds more connections than docs/scale-out.md says,
a replica that gets no connection says so in one line, and a killed replica's deliveries are taken over
when its (short, renewed) leases run out.

Needs MONITOR_TEST_PG_URL (see tests/test_postgres.py); each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from monitor.cli.receiver import Received, Receiver
from monitor.config.settings import PostgresSettings
from monitor.store import Store
from monitor.store.schema import deliveries
from tests.conftest import ROOT, SECRET, DaemonProcess, wait_until
from tests.helpers import NO_PG, PG_URL, by_id, write_articles
from tests.test_postgres import matches, ready, rules

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not PG_URL, reason=NO_PG)]
PER_PROCESS = 9  # connections one daemon holds at most: docs/scale-out.md, "Connections"


def test_sessions_take_the_configured_timeouts(pg_url: str) -> None:
    options = PostgresSettings(statement_timeout="1500ms", lock_timeout="250ms", idle_in_transaction_timeout="2m")
    store = Store(pg_url, options)
    try:
        with store.engine.connect() as conn:
            names = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            shown = [conn.execute(text(f"SHOW {name}")).scalar() for name in names]
    finally:
        store.close()
    assert shown == ["1500ms", "250ms", "2min"]


def test_a_pool_without_a_free_connection_is_not_writable_within_its_timeout(pg_url: str) -> None:
    store = Store(pg_url, PostgresSettings(pool_size=1, pool_timeout="0.5s"))
    store.create()
    try:
        assert store.writable()
        with store.engine.connect():  # the pool's only connection, held
            started = time.monotonic()
            assert not store.writable()
            waited = time.monotonic() - started
        assert store.writable()
    finally:
        store.close()
    assert 0.4 < waited < 2.0


def daemon_on(factory: Any, url: str, rules_: dict[str, Any], name: str = "d", **settings: Any) -> DaemonProcess:
    state = {"url": url, **settings.pop("state", {})}
    daemon: DaemonProcess = factory(rules_, name=name, settings={"state": state, **settings})
    daemon.state_url = url
    return daemon


@pytest.mark.slow
def test_a_held_lock_fails_the_batch_within_lock_timeout_and_readyz_says_so(
    receiver: Receiver, daemon_factory: Any, pg_url: str
) -> None:
    """Another session holds the ledger's table lock: the daemon's batch gives up after `lock_timeout`
    (1 s here; 10 s before it was a setting, while /readyz kept saying 200), /readyz says 503 within that
    and a store check, and when the lock is gone the file is read and alerted."""
    postgres = {"lock_timeout": "1s", "statement_timeout": "3s"}
    daemon = daemon_on(daemon_factory, pg_url, rules(receiver.url), state={"postgres": postgres}).start()
    other = create_engine(pg_url)
    holder = other.connect()
    try:
        holder.execute(text("LOCK TABLE files IN ACCESS EXCLUSIVE MODE"))
        written = time.monotonic()
        names = write_articles(daemon.watched, range(1), matches)  # article 0 matches
        wait_until(lambda: not ready(daemon), 8, "/readyz to say 503 while the ledger is locked")
        took = time.monotonic() - written
        assert '"article_failed"' in daemon.log.read_text()
    finally:
        holder.rollback()
        holder.close()
        other.dispose()
    wait_until(lambda: ready(daemon), 20, "/readyz to recover once the lock is gone")
    daemon.wait_settled(names, timeout=30)
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=10)
    assert daemon.stop() == 0
    print(f"503 {took:.2f} s after the file was written (settle 0.5 s, lock_timeout 1 s, store check 2 s)")
    assert took < 0.5 + 1 + 2 * 2 + 1.5


def digested(received: list[Any]) -> int:
    """Alerts sent in digests, all rules together."""
    return sum(data["count"] for data in (r.json()["data"] for r in received) if "slot" in data)


def application(daemon: DaemonProcess) -> str:
    assert daemon.proc is not None
    return f"news-monitor {socket.gethostname()}:{daemon.proc.pid}"[:63]


class Sessions:
    """Samples pg_stat_activity every 20 ms in a thread: the most sessions a named process held at once."""

    def __init__(self, url: str, name: str) -> None:
        self.engine = create_engine(url)
        self.name = name
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sessions:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()

    def _run(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        with self.engine.connect() as conn:
            while not self._stop.wait(0.02):
                count = int(conn.execute(query, {"name": self.name}).scalar_one())
                conn.rollback()
                self.most, self.samples = max(self.most, count), self.samples + 1


def scrape(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError):  # the daemon stopping is not the test's concern
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


@pytest.mark.slow
def test_one_daemon_never_holds_more_connections_than_documented(
    receiver: Receiver, daemon_factory: Any, pg_url: str
) -> None:
    """A burst of files (ordinary and large), a slow receiver, /metrics scraped by 8 clients at once, and 12
    digest rules due every 2 s whose flushes all wait on a lock held elsewhere: the daemon's sessions, counted
    in pg_stat_activity by its application_name (host and pid), never exceed PER_PROCESS (before: up to 15,
    one per waiting flush); nothing is lost."""
    receiver.respond = lambda request: (time.sleep(0.2), (200, {}))[1]
    hook = {"url": receiver.url, "secret": SECRET, "timeout": "5s"}
    digests = [{"name": f"digest{n}", "query": "hoogverraad", "schedule": "*/2 * * * * *"} for n in range(12)]
    ruleset = {"version": 1, "webhooks": {"hook": hook}, "rules": [{"name": "now", "query": "hoogverraad"}, *digests]}
    limits = {"large_article_bytes": 4096}
    daemon = daemon_on(daemon_factory, pg_url, ruleset, limits=limits).start()
    filler = "woord " * 2000 + "hoogverraad"  # a large file: read in the large lane
    stop = threading.Event()
    scrapers = [threading.Thread(target=scrape, args=(daemon.port, stop), daemon=True) for _ in range(8)]
    with Sessions(pg_url, application(daemon)) as sessions:
        wait_until(lambda: sessions.most > 0, 10, "the daemon's sessions under its application_name")
        for scraper in scrapers:
            scraper.start()
        other = create_engine(pg_url)
        holder = other.connect()
        try:
            names = write_articles(
                daemon.watched, range(300), matches
            )  # 43 match: an alert each, pending in 12 digests
            for n in range(5):
                (daemon.watched / f"large-{n}.txt").write_text(f"date 2022-01-01 Groot {n}: {filler}\n")
            wait_until(lambda: daemon.settled(names), 60, "the burst to be read")
            holder.execute(text("LOCK TABLE digest_claims, files IN ACCESS EXCLUSIVE MODE"))  # flushes and reads wait
            for start in range(300, 364, 16):  # 10 more match: each waiting batch is left running, the next goes on
                names += write_articles(daemon.watched, range(start, start + 16), matches)
                (daemon.watched / f"large-{start}.txt").write_text(f"date 2022-01-02 Groot {start}: {filler}\n")
                time.sleep(1.5)  # the scenario: files keep coming while the database holds everything up
        finally:
            holder.rollback()
            holder.close()
            other.dispose()
        wanted = 52 + 9  # immediate alerts, and every alert in some digest of each of the 12 rules
        ok = receiver.wait_for(lambda got: digested(got) >= 12 * wanted, timeout=60)
        assert ok, f"digests missing: {digested(receiver.received)} alerts in {len(receiver.received)} requests"
        stop.set()
        for scraper in scrapers:
            scraper.join(10)
    daemon.wait_settled(names, timeout=30)
    assert daemon.stop() == 0
    print(f"most sessions of one daemon at once: {sessions.most} ({sessions.samples} samples), bound {PER_PROCESS}")
    assert 0 < sessions.most <= PER_PROCESS
    assert "QueuePool limit" not in daemon.log.read_text()


def test_a_replica_without_a_connection_slot_says_so_in_one_line(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL refuses the connection (the role's CONNECTION LIMIT here; max_connections alike): the
    daemon exits 1 with one line that names the limit and the docs, no traceback."""
    role = f"nm_full_{tmp_path.name[-8:]}".replace("-", "_").lower()
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    try:
        url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        (tmp_path / "rules.yaml").write_text(json.dumps(rules("http://127.0.0.1:9/")))
        (tmp_path / "in").mkdir()
        config = {"rules_file": str(tmp_path / "rules.yaml"), "state": {"url": url}, "http": {"port": 0}}
        config |= {"watch": {"folders": [str(tmp_path / "in")]}}
        (tmp_path / "monitor.yaml").write_text(json.dumps(config))
        command = [sys.executable, "-m", "monitor", "run", "--config", str(tmp_path / "monitor.yaml")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "too many connections" in output and "docs/scale-out.md" in output, output


class Hold:
    """The receiver's answers: requests for /replica0 are held (their webhook-ids noted) until `released`;
    the others are answered at once."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Lock()

    def respond(self, request: Received) -> tuple[int, dict[str, str]]:
        if request.path == "/replica0":
            with self._lock:
                self.held.append(request.headers["webhook-id"])
            self.released.wait(60)
        return 200, {}


def taken_over(received: list[Received]) -> list[Received]:
    """The requests replica 1 sent."""
    return [r for r in received if r.path == "/replica1"]


def held_rules(url: str) -> dict[str, Any]:
    """`rules` with a webhook timeout of 15 s: the held attempts do not time out (and give their leases back)
    before all six are leased on a loaded machine; 1.5 x (15 s + 5 s) keeps the default lease at 30 s."""
    made = rules(url)
    made["webhooks"]["hook"]["timeout"] = "15s"
    return made


def lease_ends(url: str) -> dict[str, float]:
    """The leased deliveries and their lease_until."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            query = select(deliveries.c.id, deliveries.c.lease_until).where(deliveries.c.lease_until.is_not(None))
            return {key: float(until) for key, until in conn.execute(query)}
    finally:
        store.close()


@pytest.mark.slow
def test_a_killed_replicas_deliveries_are_taken_over_after_the_default_lease(
    receiver: Receiver, daemon_factory: Any, pg_url: str
) -> None:
    """Replica 0 leases six deliveries and has four in flight to a receiver that does not answer; it is
    killed (SIGKILL). Replica 1, started then, sends all six under their original webhook-ids as soon as
    the leases run out: within the default lease (30 s, renewed while held) and a few seconds, where the
    old default (2 min) made them wait 120 s."""
    hold = Hold()
    receiver.respond = hold.respond
    # Four slots for the webhook, eight in all: the two deliveries beyond the webhook's four are leased and
    # wait in its line however the ingest batches fell (with all four slots taken, leasing waited for
    # a free slot, so the six were leased at once only when one batch brought them all).
    delivery = {"concurrency": 8, "per_webhook": 4, "shutdown_grace": "2s"}
    replicas = [
        daemon_on(
            daemon_factory, pg_url, held_rules(f"{receiver.url}/replica{n}"), name=f"replica{n}", delivery=delivery
        )
        for n in range(2)
    ]
    try:
        replicas[0].start()
        write_articles(replicas[0].watched, range(0, 42), matches)  # 6 match
        wait_until(lambda: len(hold.held) == 4 and len(lease_ends(pg_url)) == 6, 30, "replica 0 to hold all six")
        leases = lease_ends(pg_url)
        replicas[0].kill()
        killed = time.time()
        replicas[1].start()
        done = receiver.wait_for(lambda got: len(by_id(taken_over(got))) == 6, timeout=30 + 15)
    finally:
        hold.released.set()  # the killed replica's held requests end (their answers reach no one)
    sent = taken_over(receiver.received)
    assert done, f"not taken over: {len(by_id(sent))} of 6 delivered"
    assert replicas[1].stop() == 0
    assert sorted(by_id(sent)) == sorted(leases) and set(hold.held) <= set(leases)  # each once, its original id
    took = max(r.at for r in sent) - killed
    after_lease = max(r.at for r in sent) - max(leases.values())
    print(f"taken over {took:.1f} s after the kill, {after_lease:.1f} s after the last lease ran out")
    assert took < 30 + 5 and after_lease < 5
