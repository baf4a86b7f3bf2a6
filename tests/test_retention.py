"""The retention prune's rules (monitor/store/retention.py) on a real state store: SQLite, and PostgreSQL when
MONITOR_TEST_PG_URL is set. Rows are written as the daemon writes them, with times set in the past."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from monitor.config.rules import Webhook
from monitor.config.settings import RetentionSettings
from monitor.ingest.pipeline import ledger_key, ledger_path
from monitor.notify.alerts import flush_digest
from monitor.notify.formats import render
from monitor.store import DIGEST_REFS, Store
from monitor.store.retention import REALERT_MARGIN, STALE_READING, Disk, longest_realert, prune
from monitor.store.schema import alerts, articles, deliveries, digest_claims, files, meta, reading
from tests.helpers import NO_PG, PG_URL, fresh_database
from tests.test_alerts import queue, ruleset

NOW = 2_000_000_000.0
DAY = 86400.0
RETENTION = RetentionSettings()  # deliveries 30d, dead 90d, alerts 90d, articles 365d, rejections 30d


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
        made = Store(url)
        made.create()
        yield made
        made.close()
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    with fresh_database("retention") as url:
        made = Store(url)
        made.create()
        yield made
        made.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A watched folder, never empty (an empty one counts as not mounted)."""
    path = tmp_path / "incoming"
    path.mkdir()
    (path / "keep.txt").write_text("date 2024-01-01\nstays")
    return path


def add(store: Store, table: Any, **row: Any) -> None:
    with store.begin() as conn:
        conn.execute(table.insert().values(**row))


def delivery(store: Store, key: str, state: str, age_days: float, **extra: Any) -> None:
    at = NOW - age_days * DAY
    values = {"webhook": "hook", "kind": "alert", "rule": "r", "attempts": 1, "due_at": at, "created_at": at}
    delivered = {"delivered_at": at} if state == "delivered" else {}
    add(store, deliveries, id=key, state=state, **(values | delivered | extra))


def alert(store: Store, key: str, age_days: float, pending: bool = False) -> None:
    add(
        store,
        alerts,
        id=key,
        rule="r",
        content_hash="h",
        payload=json.dumps({"alert_id": key, "rule": "r"}),
        realert_key="",
        suppressed=False,
        digest_pending=pending,
        created_at=NOW - age_days * DAY,
    )


def ledger(store: Store, path: str, age_days: float, outcome: str = "accepted", content: str | None = None) -> None:
    add(
        store,
        files,
        path=path,
        size=1,
        mtime_ns=1,
        content_hash=content if outcome != "rejected" else None,
        outcome=outcome,
        seen_at=NOW - age_days * DAY,
    )


def claim(store: Store, content: str, age_days: float) -> None:
    at = NOW - age_days * DAY
    add(store, articles, content_hash=content, path="p", article_date="2024-01-01", size=1, matches=1, claimed_at=at)


def keys(store: Store, column: Any) -> set[str]:
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(select(column))}


def run(store: Store, folders: list[Path] | None = None, **kwargs: Any) -> dict[str, int]:
    kwargs.setdefault("realert", None)
    kwargs.setdefault("now", NOW)
    counts = prune(store, kwargs.pop("retention", RETENTION), folders or [], **kwargs)
    assert counts is not None
    return counts


def test_deliveries_go_after_their_retention_and_open_ones_never(store: Store) -> None:
    delivery(store, "delivered-old", "delivered", 31)
    delivery(store, "delivered-new", "delivered", 29)
    delivery(store, "dead-old", "dead", 91)
    delivery(store, "dead-new", "dead", 60)
    delivery(store, "pending-ancient", "pending", 1000)
    delivery(store, "retrying-ancient", "retrying", 1000)
    assert run(store)["deliveries"] == 2
    assert keys(store, deliveries.c.id) == {"delivered-new", "dead-new", "pending-ancient", "retrying-ancient"}


def test_alerts_go_only_when_no_kept_delivery_or_digest_needs_them(store: Store) -> None:
    alert(store, "unreferenced", 91)
    alert(store, "recent", 89)
    alert(store, "waits-for-digest", 400, pending=True)
    alert(store, "of-open-delivery", 400)
    delivery(store, "open", "pending", 400, alert_id="of-open-delivery")
    alert(store, "of-old-delivery", 400)
    delivery(store, "old", "delivered", 300, alert_id="of-old-delivery")
    alert(store, "in-kept-digest", 400)
    alert(store, "in-old-digest", 400)
    digest = {"rule": "r", "slot": "2024-01-01T00:00:00+00:00", "part": 1, "parts": 1}
    for key, ids, state, age in (("d-kept", ["in-kept-digest"], "dead", 60), ("d-old", ["in-old-digest"], "dead", 100)):
        payload = json.dumps(digest | {"count": 1, DIGEST_REFS: ids})
        delivery(store, key, state, age, kind="digest", payload=payload)
    counts = run(store)
    assert keys(store, alerts.c.id) == {"recent", "waits-for-digest", "of-open-delivery", "in-kept-digest"}
    assert counts["alerts"] == 3 and counts["deliveries"] == 2  # the old delivery and the old digest


def test_alerts_outlive_the_longest_realert_window(store: Store) -> None:
    """A realert lookup looks back one window: alerts within the longest window (+ a margin) stay, so a
    prune never lets a throttled rule alert again."""
    alert(store, "within-window", 150)
    alert(store, "past-window", 200 + REALERT_MARGIN.days + 1)
    run(store, realert=timedelta(days=200))
    assert keys(store, alerts.c.id) == {"within-window"}


def test_a_prune_changes_no_realert_decision(store: Store, tmp_path: Path) -> None:
    """With alerts kept 1 s but a rule's `realert: 3h`, a prune keeps the alert that opened the window: the
    next match within it is still throttled, the first after it alerts."""
    rules, short = ruleset(tmp_path, realert="3h"), RetentionSettings(deliveries=timedelta(0), alerts=timedelta(0))
    assert queue(store, rules, "a.txt", "date 2024-01-01\nHoogverraad een.", NOW - 2 * 3600).deliveries == 2
    with store.begin() as conn:  # delivered at once: its deliveries no longer hold the alert
        conn.execute(deliveries.update().values(state="delivered", delivered_at=NOW - 2 * 3600))
    counts = run(store, [], retention=short, realert=longest_realert(rules))
    assert counts["deliveries"] == 2 and counts["alerts"] == 0
    assert queue(store, rules, "b.txt", "date 2024-01-01\nHoogverraad twee.", NOW).deliveries == 0  # throttled
    later = NOW + 2 * 3600 + REALERT_MARGIN.total_seconds()  # a's alert is past the window and the margin
    assert run(store, [], retention=short, realert=longest_realert(rules), now=later)["alerts"] == 1
    assert queue(store, rules, "c.txt", "date 2024-01-01\nHoogverraad drie.", later).deliveries == 2


@pytest.mark.parametrize("batch", [1, 1000])
def test_digest_claims_go_with_the_alerts_cutoff(store: Store, batch: int) -> None:
    """(Batches of one row walk the two-column key in order, past a row that stays.)"""
    add(store, digest_claims, rule="r", slot="old", flushed_at=NOW - 91 * DAY)
    add(store, digest_claims, rule="r", slot="new", flushed_at=NOW - 89 * DAY)
    add(store, digest_claims, rule="s", slot="old", flushed_at=NOW - 91 * DAY)
    add(store, digest_claims, rule="a", slot="old", flushed_at=NOW - 91 * DAY)
    assert run(store, retention=RetentionSettings(batch=batch))["digest_claims"] == 3
    assert keys(store, digest_claims.c.slot) == {"new"}


def test_ledger_rows_go_only_for_files_gone_from_disk(store: Store, folder: Path) -> None:
    """The row of a file still there stays however old: it is how a scan knows the file is unchanged."""
    there = folder / "keep.txt"
    odd = folder / os.fsdecode(b"back\\slash \xff.txt")  # a key with escapes (`ledger_key`)
    odd.write_text("date 2024-01-01\nodd")
    ledger(store, str(there), 1000, content="a")
    ledger(store, ledger_key(str(odd)), 1000, content="b")
    ledger(store, str(folder / "gone.txt"), 366, content="c")
    ledger(store, str(folder / "gone-recent.txt"), 364, content="d")
    ledger(store, ledger_key(str(folder / os.fsdecode(b"gone \\ \xfe.txt"))), 366, content="e")
    ledger(store, str(folder / "rejected-gone.txt"), 31, outcome="rejected")
    ledger(store, str(folder / "rejected-gone-recent.txt"), 29, outcome="rejected")
    ledger(store, str(folder / "rejected-there.txt"), 1000, outcome="rejected")
    (folder / "rejected-there.txt").write_bytes(b"\0binary")
    assert run(store, [folder], retention=RetentionSettings(batch=2))["files"] == 3  # batches past kept rows
    left = {Path(ledger_path(key) or key).name for key in keys(store, files.c.path)}
    assert left == {"keep.txt", odd.name, "gone-recent.txt", "rejected-gone-recent.txt", "rejected-there.txt"}


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_folder_missing_or_empty_keeps_its_rows(store: Store, tmp_path: Path, state: str) -> None:
    """A network share that is not mounted looks like a missing or empty folder: nothing in it is gone."""
    share = tmp_path / "share"
    if state == "empty":
        share.mkdir()
    ledger(store, str(share / "a.txt"), 1000, content="a")
    claim(store, "a", 1000)
    assert not any(run(store, [share]).values())
    assert keys(store, files.c.path) == {str(share / "a.txt")} and keys(store, articles.c.content_hash) == {"a"}


def test_claims_go_after_their_retention_when_no_ledger_row_refers(store: Store, folder: Path) -> None:
    """A claim stays while a ledger row refers to its content (a copy still on disk is a duplicate)."""
    ledger(store, str(folder / "keep.txt"), 1000, outcome="duplicate", content="copy-there")
    claim(store, "copy-there", 1000)
    ledger(store, str(folder / "gone.txt"), 1000, content="gone")
    claim(store, "gone", 1000)  # its ledger row goes in the same round, then the claim
    claim(store, "orphan-old", 366)
    claim(store, "orphan-recent", 364)
    counts = run(store, [folder])
    assert keys(store, articles.c.content_hash) == {"copy-there", "orphan-recent"}
    assert counts["articles"] == 2 and counts["files"] == 1


def test_dry_run_counts_and_deletes_nothing(store: Store, folder: Path) -> None:
    delivery(store, "old", "delivered", 31, alert_id="a")
    alert(store, "a", 91)
    ledger(store, str(folder / "gone.txt"), 366, outcome="rejected")
    tables = {"deliveries": deliveries.c.id, "alerts": alerts.c.id, "files": files.c.path}
    before = {name: keys(store, column) for name, column in tables.items()}
    counts = run(store, [folder], dry_run=True)
    assert counts == {
        "deliveries": 1,
        "alerts": 1,
        "digest_claims": 0,
        "files": 1,
        "articles": 0,
        "reading": 0,
        "story_articles": 0,
        "chat_threads": 0,
    }
    assert {name: keys(store, column) for name, column in tables.items()} == before
    assert run(store, [folder]) == counts


def test_small_batches_delete_everything_and_stop_between_batches(store: Store) -> None:
    for number in range(7):
        delivery(store, f"d{number}", "delivered", 31)
    small = RetentionSettings(batch=2)
    asked = []
    counts = run(store, retention=small, stop=lambda: asked.append(1) is None and len(asked) > 2)
    assert counts["deliveries"] == 4 and len(keys(store, deliveries.c.id)) == 3  # two batches, then asked to stop
    assert run(store, retention=small)["deliveries"] == 3 and not keys(store, deliveries.c.id)


def test_a_digest_whose_alerts_are_gone_still_renders(store: Store) -> None:
    """The prune keeps the alerts of every delivery it keeps; a digest row whose alerts were deleted some
    other way is sent with each alert as its id only, not refused."""
    digest = {"rule": "r", "slot": "2024-01-01T00:00:00+00:00", "part": 1, "parts": 1, "count": 2}
    delivery(store, "d", "pending", 0, kind="digest", payload=json.dumps(digest | {DIGEST_REFS: ["x", "y"]}))
    (taken,) = store.deliveries()
    assert taken.payload["alerts"] == [{"alert_id": "x"}, {"alert_id": "y"}]
    for fmt in ("generic", "slack", "discord", "mattermost", "teams"):
        webhook = Webhook.model_validate({"url": "https://hooks.example.invalid/x", "format": fmt})
        assert render(webhook, taken)


def test_one_process_prunes_at_a_time_and_a_dead_holders_lease_runs_out(store: Store) -> None:
    """Replicas on PostgreSQL (or the daemon and `db prune` on SQLite): a process that finds the prune's
    lease held skips the round; the lease is given back at the end of a round, and one whose holder died
    is taken over once its time has run out."""
    delivery(store, "old", "delivered", 31)
    other = Store(store.url)
    try:
        assert other.take_lease("prune", 60)
        assert prune(store, RETENTION, [], None, now=NOW) is None
        assert not store.take_lease("prune", 60)
        other.end_lease("prune")
        assert run(store)["deliveries"] == 1
        assert other.take_lease("prune", 60), "a round gives the lease back"
        with store.begin() as conn:  # the holder died: its lease ran out a second ago
            conn.execute(
                meta.update().where(meta.c.key == "lease:prune").values(value=f"{other.owner} {time.time() - 1}")
            )
        assert store.take_lease("prune", 60) and not other.take_lease("prune", 60)
    finally:
        other.close()


@pytest.mark.parametrize(
    "name",
    [b"plain.txt", b"back\\slash.txt", b"\xff\xfe.txt", b"\\xff literal.txt", "ünï.txt".encode(), b"\\\\x41"],
    ids=["plain", "backslash", "bytes", "literal-escape", "utf8", "double"],
)
def test_ledger_path_undoes_ledger_key(name: bytes) -> None:
    path = os.fsdecode(b"/folder/" + name)
    assert ledger_path(ledger_key(path)) == path


@pytest.mark.parametrize("key", ["a\\b", "a\\xZZ", "a\\"])
def test_a_key_ledger_key_does_not_make_is_no_path(key: str) -> None:
    assert ledger_path(key) is None
    assert not Disk([]).gone(key)


def test_claims_to_read_go_an_hour_after_their_lease_ran_out(store: Store) -> None:
    """A replica that died mid-read on a file deleted since leaves its claim in `reading`: an expired claim
    is one any replica may take over, so it goes once it is stale; a live or recent one stays."""
    stale = NOW - STALE_READING.total_seconds()
    for key, lease_until in (("dead.txt", stale - 1), ("recent.txt", stale + 60), ("live.txt", NOW + 30)):
        add(
            store,
            reading,
            path=key,
            size=1,
            mtime_ns=1,
            owner="h:1:x",
            claimed_at=lease_until - 60,
            lease_until=lease_until,
        )
    counts = run(store, [])
    assert counts["reading"] == 1
    assert keys(store, reading.c.path) == {"recent.txt", "live.txt"}


def test_a_digest_flushed_while_the_prune_runs_keeps_its_alerts(store: Store, tmp_path: Path) -> None:
    """An alert that waited for a digest longer than `alerts` (a quarterly digest) and is flushed after the
    prune listed the kept digests but before it swept the alerts stays: the new digest renders it in full."""
    rules = ruleset(tmp_path, schedule="0 * * * *")
    queue(store, rules, "a.txt", "date 2024-01-01\nHoogverraad een.", NOW - 100 * DAY)
    slot = datetime.fromtimestamp(NOW - 3600, UTC)
    asked: list[int] = []

    def flush_between_sweeps() -> bool:  # asked before each batch: the second time, the alerts' first
        asked.append(1)
        if len(asked) == 2:
            assert flush_digest(store, rules, rules.rule("hv"), slot, now=NOW - 3600) == 2
        return False

    assert run(store, stop=flush_between_sweeps)["alerts"] == 0
    assert len(keys(store, alerts.c.id)) == 1
    assert all(d.payload["alerts"][0].get("rule") == "hv" for d in store.deliveries())
