"""The store's contract, on SQLite and (with MONITOR_TEST_PG_URL) PostgreSQL alike: the ledger, article
claims, named leases, the outbox (queue, lease, outcome, renewal and expiry), digest claims, webhook state
and the status counts. Only through `Store` and `Transaction` methods."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import (
    ArticleClaim,
    Attempted,
    DeliveryKind,
    LedgerEntry,
    NewAlert,
    NewDelivery,
    State,
    Store,
    Window,
)
from tests.helpers import NO_PG, PG_URL, fresh_database


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the module (emptied before each test)."""
    if not PG_URL:
        pytest.skip(NO_PG)
    with fresh_database("store") as url:
        store = Store(url)
        store.create()
        store.close()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
        return
    url: str = request.getfixturevalue("pg_database")
    from monitor.store.schema import metadata  # emptied as raw tables: no store method deletes everything

    store = Store(url)
    with store.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete().where(table.c.key != "schema") if table.name == "meta" else table.delete())
    store.close()
    yield url


@pytest.fixture
def db(url: str) -> Iterator[Store]:
    store = Store(url)
    store.create()
    yield store
    store.close()


def alert(
    alert_id: str,
    rule: str = "r",
    key: str = "",
    *,
    created_at: float = 100.0,
    count: float | None = None,
    **flags: bool,
) -> NewAlert:
    payload = json.dumps({"alert_id": alert_id, "rule": rule})
    suppressed, pending = flags.get("suppressed", False), flags.get("digest_pending", False)
    return NewAlert(alert_id, rule, f"h-{alert_id}", payload, key, suppressed, pending, created_at, count)


def queue(store: Store, *ids: str, webhook: str = "w", created_at: float = 100.0) -> None:
    """An alert per id and its delivery (id `d-<id>`) to `webhook`, due at `created_at`."""
    with store.transaction() as tx:
        tx.queue_alerts([alert(i, created_at=created_at) for i in ids])
        tx.queue_deliveries([NewDelivery(f"d-{i}", webhook, "alert", "r", created_at, alert_id=i) for i in ids])


def states(store: Store) -> dict[str, str]:
    return {d.id: d.state for d in store.deliveries()}


def test_the_ledger_records_files_and_tells_what_it_knows(db: Store) -> None:
    with db.transaction() as tx:
        tx.record_files([LedgerEntry("b.txt", 3, 30, "accepted", "hb"), LedgerEntry("a.txt", 2, 20, "duplicate", "hb")])
        tx.record_file("c.txt", 1, 10, outcome="rejected", code="empty", reason="no text")
    known = db.seen_many(["a.txt", "b.txt", "c.txt", "gone.txt"])
    assert set(known) == {"a.txt", "b.txt", "c.txt"}
    assert known["a.txt"][:2] == (2, 20) and known["a.txt"].rejected_at is None
    assert known["c.txt"].rejected_at is not None, "a rejection remembers when"
    assert [tuple(f) for f in db.recorded_files()] == [
        ("a.txt", "duplicate", None, None),
        ("b.txt", "accepted", None, None),
        ("c.txt", "rejected", "empty", "no text"),
    ]
    with db.transaction() as tx:  # a new version of a file replaces its row
        tx.record_file("c.txt", 5, 50, outcome="accepted", content_hash="hc")
    assert db.seen_many(["c.txt"])["c.txt"] == (5, 50, None)
    assert db.status()["files"] == {"accepted": 2, "duplicate": 1}


def test_an_article_is_claimed_once_by_its_content(db: Store) -> None:
    claim = ArticleClaim("h1", "x.txt", "2022-01", 10, 1, 100.0)
    with db.transaction() as tx:
        assert tx.claim_articles([claim, claim._replace(content_hash="h2", path="y.txt")]) == {"h1", "h2"}
    with db.transaction() as tx:
        assert tx.claim_articles([claim._replace(path="copy.txt")]) == set()
        assert (tx.claimed_path("h1"), tx.claimed_path("h3")) == ("x.txt", None)


def test_a_failed_transaction_writes_nothing(db: Store) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.record_file("a.txt", 1, 1, outcome="accepted")
        raise RuntimeError("boom")
    assert db.recorded_files() == []


def test_a_named_lease_is_held_by_one_process_until_it_ends_or_runs_out(db: Store, url: str) -> None:
    other = Store(url)
    try:
        assert db.take_lease("prune", 60)
        assert db.take_lease("prune", 60), "the holder renews it"
        assert not other.take_lease("prune", 60)
        other.end_lease("prune")  # not its own: nothing changes
        assert not other.take_lease("prune", 60)
        db.end_lease("prune")
        assert other.take_lease("prune", -1)  # taken, and run out at once
        assert db.take_lease("prune", 60)
    finally:
        other.close()


def test_due_deliveries_are_leased_once_until_their_lease_runs_out(db: Store, url: str) -> None:
    queue(db, "a", "b", "c")
    other = Store(url)
    try:
        taken = db.take_due(200.0, 2, 30.0)
        assert [d.id for d in taken] == ["d-a", "d-b"] and taken[0].payload == {"alert_id": "a", "rule": "r"}
        assert taken[0].kind is DeliveryKind.alert and taken[0].state is State.pending, "typed, not bare strings"
        assert [d.id for d in other.take_due(200.0, 10, 30.0)] == ["d-c"], "a leased delivery is not taken again"
        assert other.take_due(229.0, 10, 30.0) == []
        assert [d.id for d in other.take_due(231.0, 10, 30.0)] == ["d-a", "d-b", "d-c"], "expired leases"
    finally:
        other.close()
    assert db.take_due(100.0, 10, 30.0) == [], "nothing is due before its time"


def test_leases_are_renewed_and_released_only_while_they_hold(db: Store) -> None:
    queue(db, "a", "b")
    assert len(db.take_due(200.0, 10, 30.0)) == 2
    assert db.renew([("d-a", 230.0), ("d-b", 999.0)], 260.0) == {"d-a"}, "d-b's lease is not the one given"
    assert db.next_due() == 230.0  # d-b's lease runs out first
    db.release([("d-b", 230.0), ("d-a", 1.0)])
    assert [d.id for d in db.take_due(240.0, 10, 30.0)] == ["d-b"], "d-a still leased until 260"
    assert db.release_all() == 2
    db.defer([("d-a", 500.0)])
    assert [d.id for d in db.take_due(300.0, 10, 30.0)] == ["d-b"], "d-a deferred to 500"


def test_outcomes_are_stored_with_the_webhooks_latest_state_and_leasing_in_one_step(db: Store) -> None:
    queue(db, "a", "b", "c")
    queue(db, "z", webhook="other", created_at=150.0)
    assert len(db.take_due(200.0, 3, 30.0)) == 3
    outcomes = [
        Attempted("d-a", "w", State.delivered, 200, None, delivered_at=201.0),
        Attempted("d-b", "w", State.retrying, 503, "HTTP 503", due_at=260.0),
        Attempted("d-c", "w", State.dead, 400, "HTTP 400"),
    ]
    leased = db.record_outcomes_and_lease(outcomes, 202.0, 10, 30.0, busy=())
    assert [d.id for d in leased] == ["d-z"]
    by_id = {d.id: d for d in db.deliveries()}
    assert (by_id["d-a"].state, by_id["d-a"].attempts, by_id["d-a"].delivered_at) == (State.delivered, 1, 201.0)
    assert (by_id["d-b"].state, by_id["d-b"].due_at, by_id["d-b"].last_error) == (State.retrying, 260.0, "HTTP 503")
    assert (by_id["d-c"].state, by_id["d-c"].last_status) == (State.dead, 400)
    [hook] = [h for h in db.webhook_states() if h["name"] == "w"]
    assert hook["last_delivery_at"] is not None and hook["last_error"] in ("HTTP 503", "HTTP 400")
    assert db.count_deliveries_by_state() == {"delivered": 1, "retrying": 1, "dead": 1, "pending": 1}
    assert db.requeue(None) == 1 and states(db)["d-c"] == State.pending
    due = db.record_outcomes_and_lease([], 300.0, 10, 30.0, busy=["other"])
    assert [d.id for d in due] == ["d-b"], "a busy webhook's are left (d-c is due again from now)"


def test_a_disabled_webhooks_deliveries_wait(db: Store) -> None:
    queue(db, "a")
    db.set_webhook_disabled("w", True, "HTTP 410")
    assert db.take_due(200.0, 10, 30.0) == [] and db.next_due() is None
    [hook] = db.webhook_states()
    assert (hook["name"], hook["disabled"], hook["disabled_reason"]) == ("w", True, "HTTP 410")
    db.set_webhook_disabled("w", False)
    assert [d.id for d in db.take_due(200.0, 10, 30.0)] == ["d-a"]
    assert db.status()["webhooks"][0]["disabled"] is False


def test_a_digest_time_is_claimed_once_and_takes_the_waiting_alerts(db: Store) -> None:
    with db.transaction() as tx:
        tx.queue_alerts([alert(f"a{n}", created_at=100.0 + n, digest_pending=True) for n in range(3)])
        tx.queue_alerts([alert("late", created_at=500.0, digest_pending=True), alert("sent", created_at=50.0)])
    assert db.oldest_pending() == {"r": 100.0}
    with db.transaction() as tx:
        assert tx.digest_waiting("r", 200.0) and not tx.digest_waiting("r", 90.0)
        assert tx.claim_digest("r", "2026-01-01T12:00:00+00:00", 200.0)
        taken = tx.take_digest_alerts("r", 200.0)
        assert [alert_id for alert_id, _ in taken] == ["a0", "a1", "a2"]
        assert all(size == len(json.dumps({"alert_id": i, "rule": "r"})) for i, size in taken)
        part = NewDelivery("dg", "w", "digest", "r", 200.0, payload=json.dumps({"alert_ids": ["a0", "a1", "a2"]}))
        assert tx.queue_digest([part]) == 1
        assert tx.queue_digest([part]) == 0, "an id queued before"
        tx.mark_digested([alert_id for alert_id, _ in taken])
    with db.transaction() as tx:
        assert not tx.claim_digest("r", "2026-01-01T12:00:00+00:00", 201.0), "claimed before"
        assert not tx.digest_waiting("r", 200.0)
    assert db.oldest_pending() == {"r": 500.0}
    [digest] = db.take_due(300.0, 10, 30.0)
    assert digest.kind is DeliveryKind.digest
    assert [a["alert_id"] for a in digest.payload["alerts"]] == ["a0", "a1", "a2"], "composed from the alerts"


def test_realert_lookups_see_alerts_not_suppressed_within_the_window(db: Store) -> None:
    with db.transaction() as tx:
        tx.queue_alerts([alert("a", key="k", created_at=100.0), alert("b", key="s", created_at=100.0, suppressed=True)])
    with db.transaction() as tx:
        tx.lock_realert_windows([("r", "k"), ("r", "s")])  # PostgreSQL: advisory locks until the commit
        windows = [Window("r", "k", 50.0), Window("r", "k", 150.0), Window("r", "s", 0.0), Window("x", "k", 0.0)]
        assert tx.alerted_since(windows) == {("r", "k"): None}


def test_realert_lookups_with_counts_give_the_largest_count_sent_in_the_window(db: Store) -> None:
    """For `realert_on_increase`: the largest stored count of the alerts not suppressed since the window's
    start (a suppressed alert's count, and an alert before the window, do not count)."""
    with db.transaction() as tx:
        tx.queue_alerts(
            [
                alert("old", key="k", created_at=10.0, count=9000.0),  # before the window
                alert("a", key="k", created_at=100.0, count=164.0),
                alert("b", key="k", created_at=110.0, count=5000.0, suppressed=True),
                alert("c", key="k", created_at=120.0, count=347.5),
                alert("d", key="k", created_at=130.0),  # without a count
                alert("e", key="none", created_at=100.0),
            ]
        )
    with db.transaction() as tx:
        windows = [Window("r", "k", 50.0, True), Window("r", "none", 50.0, True), Window("r", "x", 50.0, True)]
        assert tx.alerted_since(windows) == {("r", "k"): 347.5, ("r", "none"): None}
        assert tx.alerted_since([Window("r", "k", 50.0)]) == {("r", "k"): None}, "no counts asked for"


@pytest.mark.skipif(not PG_URL, reason=NO_PG)
def test_claims_to_read_files_on_postgresql(url: str, db: Store) -> None:
    if db.dialect != "postgresql":
        pytest.skip("claims to read files are PostgreSQL's")
    other = Store(url)
    try:
        assert other.claim_reading([("a", 1, 1)], lease=60).paths == {"a"}
        assert db.claim_reading([("a", 1, 1), ("b", 1, 1)], lease=60).paths == {"b"}
        with other.transaction() as tx:
            tx.release_reading(["a"])
        assert db.claim_reading([("a", 1, 1)], lease=60).paths == {"a"}
    finally:
        other.close()


def test_status_counts(db: Store) -> None:
    assert db.status() == {"files": {}, "last_rejections": [], "outbox": {}, "webhooks": []}
    queue(db, "a")
    with db.transaction() as tx:
        tx.record_file("bad.txt", 1, 1, outcome="rejected", code="binary", reason="binary data")
    report = db.status()
    assert report["outbox"] == {"pending": 1} and report["files"] == {"rejected": 1}
    assert [(r["path"], r["code"]) for r in report["last_rejections"]] == [("bad.txt", "binary")]
    assert os.path.basename(db.recorded_files()[0].path) == "bad.txt"
