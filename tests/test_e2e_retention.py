"""Retention end to end through the real daemon: its scheduled prune and `news-monitor db prune` delete what
retention lets go, and a daemon started again on the pruned state alerts no article a second time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from monitor.cli.receiver import Receiver
from monitor.store.schema import alerts, articles, deliveries, files  # what the prune left, row by row
from tests.conftest import DaemonProcess, wait_until
from tests.helpers import NO_PG, PG_URL, cli, fresh_database

pytestmark = pytest.mark.e2e
TINY = {"deliveries": "1s", "dead": "1s", "alerts": "1s", "articles": "1s", "rejections": "1s"}


def rules(url: str) -> dict[str, Any]:
    return {
        "version": 1,
        "webhooks": {"hook": {"url": url}},
        "rules": [{"name": "treason", "query": "hoogverraad", "notify": ["hook"]}],
    }


def write(folder: Path, name: str) -> None:
    temporary = folder / f".{name}.tmp"
    temporary.write_text(f"date 2024-01-07\nHoogverraad in Almaty, bericht {name}.\n", encoding="utf-8")
    temporary.replace(folder / name)


def alerted(receiver: Receiver) -> Counter[str]:
    """Article file name -> alerts received, deduplicated by webhook-id."""
    unique = {r.headers["webhook-id"]: r.json()["data"] for r in receiver.received}
    return Counter(Path(data["article"]["path"]).name for data in unique.values())


def rows(daemon: DaemonProcess) -> dict[str, Any]:
    store = daemon.store()
    try:
        with store.engine.connect() as conn:
            count = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in (deliveries, alerts)}
            ledger = {Path(path).name for (path,) in conn.execute(select(files.c.path))}
            claims = conn.execute(select(func.count()).select_from(articles)).scalar()
    finally:
        store.close()
    return count | {"files": ledger, "articles": claims}


def older_than_retention(daemon: DaemonProcess) -> bool:
    store = daemon.store()
    try:
        with store.engine.connect() as conn:
            times = [
                conn.execute(select(func.max(column))).scalar() or 0.0
                for column in (deliveries.c.delivered_at, alerts.c.created_at, files.c.seen_at, articles.c.claimed_at)
            ]
    finally:
        store.close()
    return time.time() > max(times) + 1.0


def prune_cli(daemon: DaemonProcess, *args: str) -> str:
    done = cli(daemon.config, "db", "prune", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_with_old_state(receiver: Receiver, daemon: DaemonProcess) -> None:
    """Three articles alerted and a rejected file read; then one article and the rejected file removed."""
    for name in ("a.txt", "b.txt", "c.txt"):
        write(daemon.watched, name)
    (daemon.watched / "r.txt").write_bytes(b"\0\0binary\0")
    daemon.start()
    assert receiver.wait_for(lambda got: len(got) >= 3, timeout=30), daemon.log.read_text()[-2000:]
    daemon.wait_settled(["a.txt", "b.txt", "c.txt", "r.txt"])
    (daemon.watched / "b.txt").unlink()
    (daemon.watched / "r.txt").unlink()


def restart_with_a_new_article(receiver: Receiver, daemon: DaemonProcess) -> None:
    """Start again with d.txt written meanwhile: the start-up scan reads d.txt after a.txt and c.txt
    (in name order), so once d.txt's alert is in, a scan has judged every file on disk."""
    write(daemon.watched, "d.txt")
    daemon.start()
    assert receiver.wait_for(lambda got: len(got) >= 4, timeout=30), daemon.log.read_text()[-2000:]
    daemon.wait_settled(["a.txt", "c.txt", "d.txt"])
    assert daemon.stop() == 0
    assert alerted(receiver) == {"a.txt": 1, "b.txt": 1, "c.txt": 1, "d.txt": 1}
    assert len(receiver.received) == 4  # no article sent twice, not even under the same id


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the daemon's own SQLite file; else a fresh PostgreSQL database (with MONITOR_TEST_PG_URL)."""
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    with fresh_database("retention_e2e") as url:
        yield url


def test_the_scheduled_prune_deletes_old_rows_and_never_realerts(
    receiver: Receiver, daemon_factory, state_url: str | None
) -> None:
    retention = TINY | {"prune_interval": "0.5s"}
    state = {"retention": retention} | ({"url": state_url} if state_url else {})
    daemon = daemon_factory(rules(receiver.url), settings={"state": state})
    daemon.state_url = state_url or daemon.state_url
    start_with_old_state(receiver, daemon)

    def pruned() -> bool:
        left = rows(daemon)
        return left["deliveries"] == left["alerts"] == 0 and not {"b.txt", "r.txt"} & left["files"]

    wait_until(pruned, 30, f"the prune to delete the old rows: {rows(daemon)}")
    metrics = httpx.get(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5).text
    assert 'monitor_pruned_rows_total{table="deliveries"} 3.0' in metrics
    assert '"event": "pruned"' in daemon.log.read_text()
    assert daemon.stop() == 0
    left = rows(daemon)
    restart_with_a_new_article(receiver, daemon)  # first: a prune that lost a.txt's row shows as a second alert
    assert left == {"deliveries": 0, "alerts": 0, "files": {"a.txt", "c.txt"}, "articles": 2}
    restart_with_a_new_article(receiver, daemon)


def test_db_prune_dry_run_counts_then_prune_deletes_and_nothing_realerts(receiver: Receiver, daemon_factory) -> None:
    retention = TINY | {"prune_interval": "0s"}  # the daemon does not prune: the command does
    daemon = daemon_factory(rules(receiver.url), settings={"state": {"retention": retention}})
    start_with_old_state(receiver, daemon)
    assert daemon.stop() == 0
    before = rows(daemon)
    assert before == {"deliveries": 3, "alerts": 3, "files": {"a.txt", "b.txt", "c.txt", "r.txt"}, "articles": 3}
    wait_until(lambda: older_than_retention(daemon), 5, "the rows to be older than the retention (1 s)")
    dry = prune_cli(daemon, "--dry-run")
    assert "would delete" in dry and rows(daemon) == before
    counted = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in dry.splitlines()[1:]}
    # claims freed by ledger rows that the same prune deletes are counted by the next dry run
    assert counted == {
        "deliveries": 3,
        "alerts": 3,
        "digest_claims": 0,
        "files": 2,
        "articles": 0,
        "reading": 0,
        "story_articles": 0,
        "chat_threads": 0,
    }
    done = prune_cli(daemon)
    deleted = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in done.splitlines()[1:]}
    assert deleted == {
        "deliveries": 3,
        "alerts": 3,
        "digest_claims": 0,
        "files": 2,
        "articles": 1,
        "reading": 0,
        "story_articles": 0,
        "chat_threads": 0,
    }, done
    assert rows(daemon) == {"deliveries": 0, "alerts": 0, "files": {"a.txt", "c.txt"}, "articles": 2}
    restart_with_a_new_article(receiver, daemon)
