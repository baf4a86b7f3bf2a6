"""Schema migrations on SQLite and PostgreSQL: from an empty database, from the previous revision, from a
database made before migrations existed; refusals of an older or newer schema, by the store and the daemon.

The PostgreSQL cases need MONITOR_TEST_PG_URL (see tests/test_postgres.py); without it they are skipped.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text

from monitor.errors import StoreError
from monitor.store import NewAlert, Store, StoryRow, Window, migrations
from monitor.store.schema import deliveries, files, metadata  # raw rows of older revisions
from tests.helpers import NO_PG, PG_URL, cli, fresh_database

HEAD = migrations.head()
PREVIOUS = ScriptDirectory.from_config(migrations.config()).get_revision(HEAD).down_revision
assert isinstance(PREVIOUS, str), "the tests expect a linear history of at least two revisions"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    with fresh_database("migrations") as fresh:
        yield fresh


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url)
    yield store
    store.close()


def differences(store: Store) -> list[object]:
    """What differs between the database's schema and the tables the code uses (empty: nothing)."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def add_rows(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(
            files.insert().values(path="a.txt", size=3, mtime_ns=1_700_000_000_123_456_789, outcome="ok", seen_at=1)
        )
        conn.execute(
            deliveries.insert().values(
                id="d1",
                webhook="w",
                kind="alert",
                rule="r",
                payload="{}",
                state="pending",
                attempts=0,
                due_at=1,
                created_at=1,
            )
        )


def db_cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`news-monitor db ARGS` on the state at `url`."""
    config = tmp_path / "monitor.yaml"
    config.write_text(json.dumps({"state": {"url": url}}))
    return cli(config, "db", *args)


def test_an_empty_database_gets_the_schema_of_the_code(store: Store) -> None:
    assert store.revision() is None
    store.create()
    assert store.revision() == HEAD
    assert differences(store) == []
    store.create()  # at head: accepted as it is
    add_rows(store)  # 64-bit sizes and nanosecond times fit


@pytest.mark.e2e  # `news-monitor db upgrade` as a process
def test_upgrade_from_the_previous_revision_keeps_the_data(store: Store, url: str, tmp_path: Path) -> None:
    assert store.upgrade(PREVIOUS) == (None, PREVIOUS)
    add_rows(store)
    with pytest.raises(
        StoreError, match=f"revision {PREVIOUS}, this news-monitor needs {HEAD}.*news-monitor db upgrade"
    ):
        store.create()
    assert db_cli(url, tmp_path, "current").returncode == 1
    upgraded = db_cli(url, tmp_path, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"from revision {PREVIOUS} to {HEAD}" in upgraded.stdout
    store.create()
    assert differences(store) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(files.c.mtime_ns)).scalar_one() == 1_700_000_000_123_456_789
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 1
    again = db_cli(url, tmp_path, "upgrade")
    assert again.returncode == 0 and f"already at revision {HEAD}" in again.stdout


OLD_ALERT = {"alert_id": "msg_a", "rule": "r", "hits": [{"term": "x", "snippet": "[[x]]"}]}
OLD_DIGEST = {"rule": "r", "slot": "2025-01-01T12:00:00+00:00", "count": 1, "alerts": [OLD_ALERT]}


def add_old_outbox(conn: Connection) -> None:
    """Rows as revision 0002 wrote them: every delivery with its full payload."""
    alert = {"id": "msg_a", "rule": "r", "content_hash": "h", "payload": json.dumps(OLD_ALERT), "realert_key": ""}
    conn.execute(
        text("INSERT INTO alerts VALUES (:id, :rule, :content_hash, :payload, :realert_key, false, false, 1)"), alert
    )
    for delivery_id, kind, payload in (("d-alert", "alert", OLD_ALERT), ("d-digest", "digest", OLD_DIGEST)):
        conn.execute(
            text(
                "INSERT INTO deliveries (id, webhook, kind, rule, payload, state, attempts, due_at, created_at)"
                " VALUES (:id, 'w', :kind, 'r', :payload, 'pending', 0, 1, 1)"
            ),
            {"id": delivery_id, "kind": kind, "payload": json.dumps(payload)},
        )


def test_outbox_rows_of_revision_0002_still_deliver_after_0003(store: Store) -> None:
    store.upgrade("0002")
    with store.begin() as conn:
        add_old_outbox(conn)
    store.upgrade("0003")
    assert {d.id: d.payload for d in store.take_due(2.0, 10, 60.0)} == {"d-alert": OLD_ALERT, "d-digest": OLD_DIGEST}


def test_0003_downgrades_with_the_payloads_copied_back(store: Store, tmp_path: Path) -> None:
    """A row that refers to its alert, and a digest part, get their full payloads back in 0002's shape."""
    store.upgrade("0003")
    with store.begin() as conn:
        add_old_outbox(conn)
        conn.execute(text("UPDATE deliveries SET payload = NULL, alert_id = 'msg_a' WHERE id = 'd-alert'"))
        part = {"rule": "r", "slot": OLD_DIGEST["slot"], "count": 1, "alert_ids": ["msg_a"]}
        conn.execute(text("UPDATE deliveries SET payload = :p WHERE id = 'd-digest'"), {"p": json.dumps(part)})
    with store.engine.begin() as conn:
        command.downgrade(migrations.config(conn), "0002")
    with store.engine.connect() as conn:
        stored = {i: json.loads(p) for i, p in conn.execute(text("SELECT id, payload FROM deliveries"))}
    assert stored == {"d-alert": OLD_ALERT, "d-digest": OLD_DIGEST}


def test_0007_gives_older_alerts_no_count_and_downgrades(store: Store) -> None:
    """An alert of revision 0006 has no count after the upgrade: its window holds an alert without one."""
    store.upgrade("0006")
    with store.begin() as conn:
        add_old_outbox(conn)  # alert msg_a, rule r, key "", created at 1
    store.upgrade("0007")
    with store.transaction() as tx:
        assert tx.alerted_since([Window("r", "", 0.0, True)]) == {("r", ""): None}
    store.upgrade("0008")  # this code's alerts have a story column
    with store.transaction() as tx:
        tx.queue_alerts([NewAlert("msg_b", "r", "h2", "{}", "", False, False, 2.0, 347.0)])
    with store.transaction() as tx:
        assert tx.alerted_since([Window("r", "", 0.0, True)]) == {("r", ""): 347.0}
    with store.engine.begin() as conn:
        command.downgrade(migrations.config(conn), "0006")
    with store.engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT id FROM alerts")).scalars()) == ["msg_a", "msg_b"]
        assert "count_value" not in list(conn.execute(text("SELECT * FROM alerts")).keys())


def test_0008_gives_older_alerts_no_story_and_downgrades(store: Store) -> None:
    store.upgrade("0006")  # the old rows as that revision wrote them
    with store.begin() as conn:
        add_old_outbox(conn)
    store.upgrade("0008")
    with store.engine.connect() as conn:
        assert list(conn.execute(text("SELECT story FROM alerts")).scalars()) == [None]
    with store.transaction() as tx:
        tx.record_stories([StoryRow("h" * 64, "story_x", "p", 1, 1.0, 1.0, b"\x00" * 512, ("r",))])
    assert [row.story for row in store.story_rows(0)] == ["story_x"]
    with store.engine.begin() as conn:
        command.downgrade(migrations.config(conn), "0007")
    with store.engine.connect() as conn:
        assert "story" not in list(conn.execute(text("SELECT * FROM alerts")).keys())
        assert not inspect(conn).has_table("story_articles")


def test_0010_empties_minhash_signatures_and_downgrades(store: Store) -> None:
    """The MinHash signatures of 0008 (512 bytes) become empty; a signature of terms stays; downgrading empties
    the signatures of terms, which the code before 0010 cannot read."""
    from monitor.matching.stories import decode, signature

    store.upgrade("0009")
    terms = signature("Rescuers in Gaziantep and Hatay, Turkey, said 1,500 people died in Kahramanmaras.")
    with store.transaction() as tx:
        tx.record_stories(
            [
                StoryRow("a" * 64, "story_a", "a", 1, 1.0, 1.0, bytes(range(256)) * 2, ("r",)),
                StoryRow("b" * 64, "story_b", "b", 1, 1.0, 1.0, terms, ("r",)),
                StoryRow("c" * 64, "story_c", "c", 1, 1.0, 1.0, b"", ()),
            ]
        )
    store.upgrade("0010")
    assert [row.signature for row in store.story_rows(0)] == [b"", terms, b""]
    assert decode(terms)[0]
    with store.engine.begin() as conn:
        command.downgrade(migrations.config(conn), "0009")
    assert [row.signature for row in store.story_rows(0)] == [b"", b"", b""]


def test_a_database_made_before_migrations_counts_as_the_baseline(store: Store) -> None:
    store.upgrade(migrations.BASELINE)
    with store.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # what create_all made: our tables, no version table
    assert store.revision() == migrations.BASELINE
    with pytest.raises(StoreError, match="news-monitor db upgrade"):
        store.create()
    assert store.upgrade() == (migrations.BASELINE, HEAD)
    store.create()
    assert differences(store) == []


def test_a_newer_schema_is_refused(store: Store) -> None:
    store.create()
    with store.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="revision 9999, newer than this news-monitor"):
        store.create()
    with pytest.raises(StoreError, match="newer than this news-monitor"):
        store.upgrade()


@pytest.mark.e2e
def test_the_daemon_refuses_an_old_schema_until_db_upgrade(url: str, daemon_factory, receiver, tmp_path) -> None:
    old = Store(url)
    old.upgrade(PREVIOUS)
    old.close()
    rules = {"version": 1, "webhooks": {"hook": {"url": receiver.url}}, "rules": [{"name": "r", "query": "x"}]}
    daemon = daemon_factory(rules, settings={"state": {"url": url}})
    daemon.start(ready=False)
    assert daemon.proc is not None
    assert daemon.proc.wait(60) == 1
    log = " ".join(daemon.log.read_text().split())  # the message as one line, however the console wrapped it
    assert f"schema revision {PREVIOUS}" in log and "news-monitor db upgrade" in log
    assert "Traceback" not in log
    upgraded = db_cli(url, tmp_path, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    daemon.start()
    assert daemon.stop() == 0


def create_when_all_are_ready(url: str, ready: Any, errors: Any) -> None:
    """One replica's start-up in a process of its own (Alembic's context is global to a process)."""
    store = Store(url)
    migrations.head()  # loaded before the start line, so that the creates really run together
    ready.wait(30)
    try:
        store.create()
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()


def test_replicas_starting_together_on_an_empty_postgresql_take_turns() -> None:
    if not PG_URL:
        pytest.skip(NO_PG)
    spawn = multiprocessing.get_context("spawn")
    with fresh_database("race") as url:
        ready, errors = spawn.Barrier(4), spawn.Queue()
        processes = [spawn.Process(target=create_when_all_are_ready, args=(url, ready, errors)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
        failures = [errors.get(timeout=1) for _ in range(errors.qsize())]
        assert failures == []
        check = Store(url)
        assert check.revision() == HEAD
        check.close()


def test_the_upgrade_is_logged_as_an_event_with_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON logs keep the event name alone and the revisions as fields, not packed into the event string."""
    from monitor.config.logs import configure

    configure("INFO", "json")
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.create()
    store.close()
    (event,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert event["event"] == "schema_upgraded" and event["level"] == "info"
    assert (event["dialect"], event["before"], event["after"]) == ("sqlite", None, HEAD)
