"""Several replicas on one PostgreSQL, end to end: real daemon processes, one shared folder watched with the
polling observer, a real receiver on 127.0.0.1, kill -9 in the middle, digests flushed by exactly one replica.

Needs a real PostgreSQL: `export MONITOR_TEST_PG_URL="$(scripts/postgres.sh)"` (scripts/test.sh does it).
Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, exists, func, select, text

from monitor.cli.receiver import Received, Receiver
from monitor.config.rules import load_rules
from monitor.ingest.articles import parse_article
from monitor.notify.alerts import flush_digest, queue_article
from monitor.store import OPEN_STATES, Store
from monitor.store.digests import _waiting
from monitor.store.schema import alerts, articles, deliveries, files
from tests.conftest import DaemonProcess, wait_until
from tests.helpers import NO_PG, PG_URL, by_id, cli, one_rule, write_articles

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not PG_URL, reason=NO_PG)]

REPLICAS = 3
CONCURRENCY = 4  # delivery.concurrency of each replica: at most this many attempts in flight per replica
TOTAL = 1000
FAST = ["0.2s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s"]


def rules(url: str, **rule: Any) -> dict[str, Any]:
    """One rule on plain `hoogverraad`, quick retries."""
    return one_rule(url, {"query": "hoogverraad", **rule}, retry_schedule=FAST, timeout="5s")


def matches(i: int) -> bool:
    return i % 7 == 0  # the known subset: 143 of 1,000


def start_replicas(
    factory: Callable[..., DaemonProcess], url: str, folder: Path, rules_of: Callable[[int], dict[str, Any]]
) -> list[Any]:
    """Replica n has its own rules file, where the webhook may name it (receiver path /replica<n>)."""
    settings = {
        # read_lease: the files a killed replica was reading are taken over within 10 s
        "watch": {"folders": [str(folder)], "observer": "polling", "settle": "0.3s", "read_lease": "10s"},
        "state": {"url": url},
        "delivery": {"concurrency": CONCURRENCY, "lease": "20s", "shutdown_grace": "5s"},
    }
    replicas = [factory(rules_of(n), name=f"replica{n}", settings=settings) for n in range(REPLICAS)]
    for replica in replicas:
        replica.state_url = url
        replica.start(ready=False)  # all at once: they race to create the schema of the empty database
    for replica in replicas:
        replica.wait_ready()
    return replicas


def settled(url: str, names: int) -> bool:
    """Every file is in the ledger and no delivery is open (the digest test: no alert waits either)."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            seen = conn.execute(select(func.count()).select_from(files)).scalar_one()
            open_ = conn.execute(select(func.count()).where(deliveries.c.state.in_(OPEN_STATES))).scalar_one()
            waiting = conn.execute(select(func.count()).where(alerts.c.digest_pending.is_(True))).scalar_one()
    finally:
        store.close()
    return seen >= names and open_ == 0 and waiting == 0


def claims_in_logs(replica: DaemonProcess) -> int:
    """How many articles this replica claimed (article_read events with outcome accepted)."""
    count = 0
    for line in replica.log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        count += event.get("event") == "article_read" and event.get("outcome") == "accepted"
    return count


class Gate:
    """The receiver's answers: after a moment (so that attempts are in flight), and, while `holding`,
    never for replica 0 (its requests wait): a replica that dies then has CONCURRENCY attempts in flight."""

    def __init__(self) -> None:
        self.holding = False
        self.held = 0
        self.released = threading.Event()
        self._lock = threading.Lock()

    def respond(self, request: Received) -> tuple[int, dict[str, str]]:
        time.sleep(0.02)
        if self.holding and request.path == "/replica0":
            with self._lock:
                self.held += 1
            self.released.wait(30)
        return 200, {}


def run_replicas(
    receiver: Receiver, factory: Callable[..., DaemonProcess], url: str, tmp_path: Path, kill: bool
) -> None:
    gate = Gate()
    receiver.respond = gate.respond
    folder = tmp_path / "shared"
    folder.mkdir()
    replicas = start_replicas(factory, url, folder, lambda n: rules(f"{receiver.url}/replica{n}"))
    writer = threading.Thread(target=write_articles, args=(folder, range(TOTAL), matches, 0.2), daemon=True)
    writer.start()
    expected = {f"article-{i:04d}.txt" for i in range(TOTAL) if matches(i)}
    killed = 0
    if kill:
        assert receiver.wait_for(lambda got: len(by_id(got)) >= len(expected) // 4, timeout=60)
        gate.holding = True
        wait_until(lambda: gate.held >= CONCURRENCY, 30, "replica 0 to have all its attempts in flight")
        replicas[0].kill()  # SIGKILL: its leased deliveries are taken over when the lease (20 s) expires
        killed = 1
        gate.released.set()
    writer.join(30)
    assert receiver.wait_for(lambda got: len(by_id(got)) >= len(expected), timeout=60), "alerts missing"
    wait_until(lambda: settled(url, TOTAL), 60, "every file read and every delivery done")
    for replica in replicas[killed:]:
        assert replica.stop() == 0
    unique = by_id(receiver.received)
    assert {Path(alert["data"]["article"]["path"]).name for alert in unique.values()} == expected
    duplicates = len(receiver.received) - len(unique)
    claims = [claims_in_logs(replica) for replica in replicas]
    sent = Counter(request.path for request in receiver.received)
    print(f"{REPLICAS} replicas, kill -9 x{killed}: {len(receiver.received)} requests for {len(expected)} alerts,")
    print(f"  {duplicates} duplicates (bound {CONCURRENCY * killed}), articles claimed per replica {claims},")
    print(f"  requests sent per replica {dict(sorted(sent.items()))}")
    assert duplicates <= CONCURRENCY * killed  # only attempts in flight in a killed replica are repeated
    # Which replica claims and delivers is not decided: on one shared folder every replica reads every file
    # and their batches claim in key order, so a batch that inserts first takes every article of it (issue
    # 14 is to split the reading itself); the outbox is shared whoever queued it.
    if not kill:  # a killed replica's log may lack its last claims; its claims are counted in the database
        assert sum(claims) == TOTAL  # every article claimed by exactly one replica
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(articles)).scalar_one() == TOTAL
            outcomes = dict(conn.execute(select(files.c.outcome, func.count()).group_by(files.c.outcome)).all())
            states = dict(conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())
            deadlocks = conn.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
    finally:
        store.close()
    print(f"  deadlocks in the database: {deadlocks}")
    assert deadlocks == 0  # every batch writes its rows in key order
    assert outcomes == {"accepted": TOTAL}  # a replica that lost the claim does not relabel the file
    assert states == {"delivered": len(expected)}


def test_three_replicas_deliver_every_alert_once(receiver: Receiver, daemon_factory, pg_url: str, tmp_path) -> None:
    run_replicas(receiver, daemon_factory, pg_url, tmp_path, kill=False)


def test_replica_killed_mid_way_loses_nothing(receiver: Receiver, daemon_factory, pg_url: str, tmp_path) -> None:
    run_replicas(receiver, daemon_factory, pg_url, tmp_path, kill=True)


def test_each_digest_time_is_flushed_by_one_replica(receiver: Receiver, daemon_factory, pg_url: str, tmp_path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    replicas = start_replicas(daemon_factory, pg_url, folder, lambda _n: rules(receiver.url, schedule="*/3 * * * * *"))
    numbers = range(210)  # 30 match, written over about 7 s: the alerts of three or four digest times
    for start in numbers[::30]:
        write_articles(folder, range(start, start + 30), matches)
        time.sleep(1.0)  # the arrival pattern of the scenario, not a wait for the daemons
    wanted = sum(1 for i in numbers if matches(i))
    assert receiver.wait_for(lambda got: sum(r.json()["data"]["count"] for r in got) >= wanted, timeout=40)
    wait_until(lambda: settled(pg_url, len(numbers)), 30, "every alert in a digest and every digest delivered")
    for replica in replicas:
        assert replica.stop() == 0
    digests = [r.json()["data"] for r in receiver.received]
    per_time = Counter(d["slot"] for d in digests)
    alert_ids = [a["alert_id"] for d in digests for a in d["alerts"]]
    flushes = [line for r in replicas for line in r.log.read_text().splitlines() if '"event": "digest_flushed"' in line]
    print(f"digests per time {dict(per_time)}; {len(flushes)} flush wake-ups in {REPLICAS} replicas")
    assert len(per_time) >= 2 and set(per_time.values()) == {1}  # exactly one digest per schedule time
    assert len(by_id(receiver.received)) == len(receiver.received)
    assert len(alert_ids) == len(set(alert_ids)) == wanted  # every alert in exactly one digest


def test_every_command_works_on_postgresql(receiver: Receiver, pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    write_articles(folder, range(14), matches)  # two match
    (tmp_path / "rules.yaml").write_text(json.dumps(rules(receiver.url)))
    config = tmp_path / "monitor.yaml"
    config.write_text(json.dumps({"rules_file": str(tmp_path / "rules.yaml"), "state": {"url": pg_url}}))
    assert "empty" in cli(config, "db", "current").stdout
    backfill = cli(config, "backfill", str(folder))
    assert backfill.returncode == 0, backfill.stderr
    assert "accepted 14" in backfill.stdout
    assert "up to date" in cli(config, "db", "current").stdout
    queued = json.loads(cli(config, "deliveries", "--json").stdout)
    assert [d["state"] for d in queued] == ["pending", "pending"]
    assert cli(config, "webhooks", "disable", "hook").returncode == 0
    assert cli(config, "redeliver", queued[0]["id"]).stdout.strip() == "queued 1 delivery again"
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["files"] == {"accepted": 14} and status["outbox"] == {"pending": 2}
    assert [(w["name"], w["disabled"]) for w in status["webhooks"]] == [("hook", True)]
    assert cli(config, "webhooks", "enable", "hook").returncode == 0
    assert "already at revision" in cli(config, "db", "upgrade").stdout


def add_alert(store: Store, alert_id: str, created_at: float) -> None:
    row = {
        "id": alert_id,
        "rule": "hoogverraad",
        "content_hash": alert_id,
        "payload": json.dumps({"alert_id": alert_id}),
    }
    row |= {"realert_key": "", "suppressed": False, "digest_pending": True, "created_at": created_at}
    with store.begin() as conn:
        conn.execute(alerts.insert().values(**row))


def lock_waits(store: Store) -> int:
    """Backends of this database that wait for a row or transaction lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_concurrent_flushes_of_one_time_lose_no_alert(pg_url: str, tmp_path: Path) -> None:
    """Replica A flushes a digest time and is held up mid-way; an alert arrives; replica B flushes the same
    time. B must not send (or mark as sent) the late alert under the digest id that A's digest holds."""
    (tmp_path / "rules.yaml").write_text(json.dumps(rules("http://127.0.0.1:9/", schedule="0 * * * *")))
    ruleset = load_rules(tmp_path / "rules.yaml")
    rule = ruleset.rule("hoogverraad")
    store = Store(pg_url)
    store.create()
    slot = datetime.now(UTC).replace(microsecond=0)
    for n in range(3):
        add_alert(store, f"early-{n}", slot.timestamp() - 10)
    results: dict[str, int] = {}

    def flush(name: str) -> None:
        results[name] = flush_digest(store, ruleset, rule, slot)

    with store.engine.connect() as holder:  # holds one pending alert's row lock: A stops there
        holder.execute(select(alerts.c.id).where(alerts.c.id == "early-0").with_for_update())
        first = threading.Thread(target=flush, args=("a",))
        first.start()
        wait_until(lambda: lock_waits(store) == 1, 10, "replica A to wait in its flush")
        add_alert(store, "late", slot.timestamp() - 1)  # committed while A's flush runs
        second = threading.Thread(target=flush, args=("b",))
        second.start()
        wait_until(lambda: lock_waits(store) == 2, 10, "replica B to wait behind A")
        holder.rollback()
    first.join(10)
    second.join(10)
    sent = [delivery.payload for delivery in store.deliveries()]  # a digest's alerts, as the deliverer gets them
    with store.engine.connect() as conn:
        pending = {i for (i,) in conn.execute(select(alerts.c.id).where(alerts.c.digest_pending.is_(True)))}
    store.close()
    assert sorted(results.values()) == [0, 1] and len(sent) == 1  # one digest for the time, by one replica
    in_digest = [a["alert_id"] for a in sent[0]["alerts"]]
    assert sorted(in_digest) == ["early-0", "early-1", "early-2"]
    assert pending == {"late"}  # not lost: it waits for the next digest time


def test_sessions_carry_timeouts_and_a_name(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        with store.engine.connect() as conn:
            shown = [conn.execute(text(f"SHOW {name}")).scalar() for name in ("statement_timeout", "lock_timeout")]
            name = conn.execute(text("SHOW application_name")).scalar()
    finally:
        store.close()
    assert shown == ["1min", "10s"]
    assert name == f"news-monitor {os.uname().nodename}:{os.getpid()}"[:63]


def cluster_processes(url: str) -> list[int]:
    """The PostgreSQL server's processes: its postmaster (postmaster.pid in its data directory) and children."""
    engine = create_engine(url)
    with engine.connect() as conn:
        data = conn.execute(text("SHOW data_directory")).scalar()
    engine.dispose()
    postmaster = int(Path(str(data), "postmaster.pid").read_text().split()[0])
    children = [
        int(c) for task in Path(f"/proc/{postmaster}/task").glob("*/children") for c in task.read_text().split()
    ]
    return [postmaster, *children]


def signal_all(pids: list[int], signum: int) -> None:
    """Send `signum` to each process; a backend that ended meanwhile (its zombie reaped once the postmaster
    runs again) is skipped."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def test_a_hung_database_is_not_ready_then_heals(receiver: Receiver, daemon_factory, pg_url: str, tmp_path) -> None:
    daemon = daemon_factory(rules(receiver.url), settings={"state": {"url": pg_url}})
    daemon.state_url = pg_url
    daemon.start()
    processes = cluster_processes(pg_url)
    try:
        signal_all(processes, signal.SIGSTOP)
        stopped = time.monotonic()
        wait_until(lambda: not ready(daemon), 15, "/readyz to say the store is not writable")
        took = time.monotonic() - stopped
        names = write_articles(daemon.watched, range(3), matches)  # arrive while the database hangs
    finally:
        signal_all(processes, signal.SIGCONT)
    wait_until(lambda: ready(daemon), 20, "/readyz to recover")
    daemon.wait_settled(names, timeout=30)
    assert daemon.stop() == 0
    print(f"/readyz said 503 {took:.2f} s after the database stopped answering")
    assert took < 2 * 2 + 1.5  # a store check every 2 s, each allowed 2 s (monitor.daemon.STORE_CHECK)
    log = daemon.log.read_text()
    assert '"store_failed"' in log and '"store_recovered"' in log


def ready(daemon: DaemonProcess) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{daemon.port}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def ledger_rows(url: str) -> int:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(files)).scalar_one())
    finally:
        store.close()


def test_two_replicas_alert_once_per_realert_window_when_matches_race(
    receiver: Receiver, daemon_factory, pg_url: str, tmp_path: Path
) -> None:
    """Issue 14: with `realert: 10m`, two matching articles claimed by two replicas at the same moment both
    alerted (18 of 20 pairs): the check for a recent alert and the insert were two steps under READ
    COMMITTED. Each trial writes two different articles of one date, one per replica's folder, at once."""
    trials = 20
    rule = {"realert": "10m", "realert_key": "date"}
    replicas = []
    for n in range(2):
        folder = tmp_path / f"in{n}"
        folder.mkdir()
        settings = {"watch": {"folders": [str(folder)], "settle": "0.2s"}, "state": {"url": pg_url}}
        replica = daemon_factory(rules(f"{receiver.url}/r{n}", **rule), name=f"replica{n}", settings=settings)
        replica.state_url, replica.watched = pg_url, folder
        replicas.append(replica.start())
    for trial in range(trials):
        day = f"2022-{1 + trial // 28:02d}-{1 + trial % 28:02d}"
        texts = [f"date {day} Replica {n}, proef {trial}: verdachte opgepakt wegens hoogverraad.\n" for n in range(2)]
        for n, replica in enumerate(replicas):
            (replica.watched / f"t{trial:02d}.txt").write_text(texts[n], encoding="utf-8")
        rows = 2 * (trial + 1)
        wait_until(lambda rows=rows: ledger_rows(pg_url) >= rows, 30, f"trial {trial} read by both replicas")
    wait_until(lambda: settled(pg_url, 2 * trials), 60, "every file read and every delivery done")
    store = Store(pg_url)
    try:
        with store.engine.connect() as conn:
            sent = Counter(
                key for (key,) in conn.execute(select(alerts.c.realert_key).where(alerts.c.suppressed.is_(False)))
            )
            total = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
    finally:
        store.close()
    for replica in replicas:
        assert replica.stop() == 0
    assert total == 2 * trials  # every match recorded
    twice = {key: count for key, count in sent.items() if count != 1}
    assert len(sent) == trials and not twice, f"alerted more than once per window: {twice}"
    assert len(receiver.received) == trials


def test_the_periodic_queries_can_use_their_indexes_and_long_keys_fit(pg_url: str, tmp_path: Path) -> None:
    """The partial index of pending digest alerts covers the flush's check (its condition is the query's),
    and a realert key of 20 long hits (3 KB, not compressible) is stored within PostgreSQL's limit on an index entry."""
    (tmp_path / "rules.yaml").write_text(
        json.dumps(rules("http://127.0.0.1:9/", query="hoogverraad*", realert="1h", realert_key="term"))
    )
    ruleset = load_rules(tmp_path / "rules.yaml")
    store = Store(pg_url)
    store.create()
    words = " ".join(f"hoogverraad{hashlib.sha512(bytes([k])).hexdigest()}{k:020d}" for k in range(20))
    article = parse_article("long.txt", f"date 2022-01 {words}", 3000)
    assert queue_article(store, ruleset, article, ruleset.engine.match(article), (3000, 1)).alerts == 1
    check = select(exists().where(_waiting("hoogverraad", datetime.now(UTC).timestamp())))
    with store.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # an empty table: show whether the index can serve
        sql = check.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    store.close()
    assert "alerts_digest_pending" in plan, plan
