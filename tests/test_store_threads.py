"""Story threads in the store (SQLite and PostgreSQL): a rule's thread in a story and what the story has
seen, read back in later batches, so that a follow-up is decided the same after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from monitor.config.rules import RuleSet, load_rules
from monitor.ingest.articles import read_article
from monitor.ingest.storyline import Storyline
from monitor.matching.stories import signature
from monitor.notify.alerts import prepare, queue_prepared
from monitor.notify.threads import Followups
from monitor.store import Store, StoryThread
from monitor.store.schema import metadata
from tests.helpers import created_database
from tests.story_texts import QUAKE_A

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with created_database("threads") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'monitor.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    )
    store = Store(url)
    store.create()
    with store.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete().where(table.c.key != "schema") if table.name == "meta" else table.delete())
    yield store
    store.close()


def rules(tmp_path: Path) -> RuleSet:
    body = {
        "version": 1,
        "webhooks": {"hook": {"url": "http://127.0.0.1:9/"}},
        "rules": [
            {"name": "quake", "query": "earthquake", "story": "first_then_updates"},
            {"name": "mourning", "query": "mourning"},
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(body))
    return load_rules(tmp_path / "rules.yaml")


def batch(store: Store, ruleset: RuleSet, storyline: Storyline, root: Path, name: str, text: str, now: float) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"date 2027-01-15\n{text}\n")
    article = read_article(path)
    item = prepare(ruleset, article, ruleset.engine.match(article), (1, 0), None, signature(article.text))
    with store.transaction() as tx:
        queue_prepared(tx, ruleset, [item], now, stories=storyline, followups=Followups.of([str(root)], 3600.0))


def test_threads_and_what_a_story_has_seen_are_read_back(db: Store, tmp_path: Path) -> None:
    ruleset, storyline, root = rules(tmp_path), Storyline(), tmp_path / "in"
    quiet = QUAKE_A.replace("President Erdogan declared seven days of national mourning.", "Schools closed.")
    batch(db, ruleset, storyline, root, "reuters/a.txt", quiet, NOW)
    batch(db, ruleset, storyline, root, "nos/b.txt", QUAKE_A, NOW + 60)  # a new rule: a follow-up
    batch(db, ruleset, storyline, root, "bbc/c.txt", QUAKE_A + " Aid.", NOW + 120)  # a new outlet, too soon
    batch(db, ruleset, storyline, root, "afp/d.txt", QUAKE_A + " Aid!", NOW + 60 + 3600)  # quiet long enough
    with db.begin() as conn:
        rows = conn.exec_driver_sql("SELECT id, story, suppressed, payload FROM alerts WHERE rule = 'quake'").all()
    story = rows[0].story
    sent = sorted((json.loads(row.payload) for row in rows if not row.suppressed), key=lambda p: p["article"]["path"])
    assert [(p["article"]["path"].rsplit("/", 2)[-2], (p["update"] or {}).get("reasons")) for p in sent] == [
        ("afp", ["outlet"]),
        ("nos", ["rule"]),
        ("reuters", None),
    ]
    first = next(p["alert_id"] for p in sent if p["update"] is None)
    with db.transaction() as tx:
        threads = tx.story_threads([(story, "quake")])
        seen = tx.story_seen([story])
    (thread,) = threads.values()
    assert thread == StoryThread(first, str(root / "reuters" / "a.txt"), thread.best, NOW + 60 + 3600)
    rules_seen, paths = seen[story]
    assert rules_seen == {"quake", "mourning"} and {Path(p).parent.name for p in paths} == {
        "reuters",
        "nos",
        "bbc",
        "afp",
    }


def test_a_thread_keeps_its_paths_after_the_story_rows_are_pruned(db: Store, tmp_path: Path) -> None:
    """Story rows go a day after the window while a story that keeps being joined lives on: the first alert's
    path (its title in chat) and the outlets seen are then read from the claims."""
    ruleset, storyline, root = rules(tmp_path), Storyline(), tmp_path / "in"
    batch(db, ruleset, storyline, root, "reuters/a.txt", QUAKE_A, NOW)
    batch(db, ruleset, storyline, root, "nos/b.txt", QUAKE_A + " Aid.", NOW + 60)
    with db.begin() as conn:
        story = conn.exec_driver_sql("SELECT story FROM alerts WHERE rule = 'quake'").scalar()
        conn.exec_driver_sql("DELETE FROM story_articles")  # as the retention prune does
    with db.transaction() as tx:
        (thread,) = tx.story_threads([(story, "quake")]).values()
        _, paths = tx.story_seen([story])[story]
    assert thread.path == str(root / "reuters" / "a.txt")
    assert {Path(p).parent.name for p in paths} == {"reuters", "nos"}
