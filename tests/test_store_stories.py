"""Stories in the store (SQLite and PostgreSQL): assignments recorded and numbered, rows since a number,
latest versions, the alerts' story, two processes' indexes kept in step (replicas), rebuild at start."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.ingest.articles import Article, parse_date
from monitor.ingest.storyline import Storyline
from monitor.matching.stories import signature
from monitor.notify.alerts import Draft, Prepared
from monitor.store import Store, StoryRow
from monitor.store.schema import metadata
from tests.helpers import created_database
from tests.story_texts import QUAKE_A, QUAKE_B, QUAKE_C, QUAKE_OTHER

NOW = 1_800_000_000.0
WINDOW = 72 * 3600.0


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with created_database("stories") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    store = Store(url)
    store.create()
    with store.begin() as conn:  # emptied as raw tables: no store method deletes everything
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete().where(table.c.key != "schema") if table.name == "meta" else table.delete())
    yield store
    store.close()


def prepared(text: str, path: str, rule: str = "quake") -> Prepared:
    body = f"{text}\n"
    content = hashlib.sha256(body.encode()).hexdigest()
    article = Article(path, parse_date("2027-01-15"), body, content, len(body))
    return Prepared(article, (len(body), 0), (Draft(rule, "msg_" + content[:32], "{}", ""),), signature(body))


def test_assignments_are_recorded_numbered_and_found_by_path(db: Store) -> None:
    stories = Storyline(WINDOW)
    with db.transaction() as tx:
        first = stories.assign(tx, [prepared(QUAKE_A, "a.txt"), prepared(QUAKE_B, "b.txt")], NOW)
    a, b = (first[hashlib.sha256(f"{t}\n".encode()).hexdigest()] for t in (QUAKE_A, QUAKE_B))
    assert a.started and (b.story, b.started) == (a.story, False)
    with db.transaction() as tx:
        again = stories.assign(tx, [prepared(QUAKE_A + " More.", "a.txt")], NOW + 10)
        latest = tx.latest_versions(["a.txt", "b.txt", "none.txt"])
    (ref,) = again.values()
    assert (ref.story, ref.version) == (a.story, 2)
    assert {path: row.version for path, row in latest.items()} == {"a.txt": 2, "b.txt": 1}
    rows = db.story_rows(NOW - WINDOW)
    assert [row.path for row in rows] == ["a.txt", "b.txt", "a.txt"]
    assert [row.seq for row in rows] == sorted({row.seq for row in rows})
    assert rows[0].rules == ("quake",) and rows[0].signature == signature(QUAKE_A)
    assert db.story_rows(NOW - WINDOW, after=rows[1].seq) == rows[2:]
    assert db.story_rows(NOW + 5) == rows[2:]


def test_a_rolled_back_batch_leaves_the_index_as_it_was(db: Store) -> None:
    stories = Storyline(WINDOW)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        stories.assign(tx, [prepared(QUAKE_A, "a.txt")], NOW)
        raise RuntimeError("the batch failed")
    assert len(stories.index) == 0 and db.story_rows(0) == []
    with db.transaction() as tx:
        (ref,) = stories.assign(tx, [prepared(QUAKE_A, "a.txt")], NOW).values()
    assert ref.started and ref.version == 1


def test_a_second_process_sees_the_first_ones_stories_and_a_rebuild_equals_the_index(db: Store) -> None:
    one, two = Storyline(WINDOW), Storyline(WINDOW)
    with db.transaction() as tx:
        (a,) = one.assign(tx, [prepared(QUAKE_A, "a.txt")], NOW).values()
    with db.transaction() as tx:  # the other replica: loads the row before it decides
        (b,) = two.assign(tx, [prepared(QUAKE_B, "b.txt")], NOW + 1).values()
    with db.transaction() as tx:
        (other,) = one.assign(tx, [prepared(QUAKE_OTHER, "nepal.txt")], NOW + 2).values()
    assert b.story == a.story and other.story != a.story
    rebuilt = Storyline(WINDOW)
    assert rebuilt.rebuild(db, NOW + 3) == 3
    stored = {row.content_hash: (row.story, row.version, row.signature) for row in db.story_rows(0)}
    assert {key: (e.story, e.version, e.signature) for key, e in rebuilt.index._entries.items()} == stored
    probe = prepared(QUAKE_C, "c.txt")
    with db.transaction() as tx:
        (c,) = rebuilt.assign(tx, [probe], NOW + 4).values()
    assert c.story == a.story


def test_replicas_deciding_at_once_never_start_two_stories_for_one_event(db: Store) -> None:
    """Two processes' indexes, each its own connection: while one has assigned a story and not committed, the
    other's assignment waits on the story lock, then loads the first one's row and joins its story."""
    if db.dialect != "postgresql":
        pytest.skip("one SQLite writer at a time: the write lock is the story lock")
    first, second = Storyline(WINDOW), Storyline(WINDOW)
    assigned, done = threading.Event(), threading.Event()
    results: dict[str, str] = {}

    def other_replica() -> None:
        assigned.wait(10)
        with db.transaction() as tx:
            (ref,) = second.assign(tx, [prepared(QUAKE_B, "b.txt")], time.time()).values()
        results["second"] = ref.story
        done.set()

    thread = threading.Thread(target=other_replica)
    thread.start()
    with db.transaction() as tx:
        (ref,) = first.assign(tx, [prepared(QUAKE_A, "a.txt")], time.time()).values()
        results["first"] = ref.story
        assigned.set()
        assert not done.wait(0.5), "the other replica assigned while this one held the story lock"
    thread.join(30)
    assert done.is_set() and results["second"] == results["first"]


def test_alerts_present_and_the_alert_story_column(db: Store) -> None:
    with db.transaction() as tx:
        assert tx.alerts_present(["msg_x"]) == set()
        assert tx.record_stories([StoryRow("h" * 64, "story_x", "p", 1, NOW, NOW, b"", ())]) == {"h" * 64}
        assert tx.record_stories([StoryRow("h" * 64, "story_y", "p", 2, NOW, NOW, b"", ())]) == set()
    assert [row.story for row in db.story_rows(0)] == ["story_x"]


def test_the_prune_deletes_story_rows_a_day_after_the_window(db: Store, tmp_path: Path) -> None:
    from datetime import timedelta

    from monitor.config.settings import RetentionSettings
    from monitor.store.retention import prune

    with db.transaction() as tx:
        tx.record_stories(
            [
                StoryRow("a" * 64, "story_a", "a.txt", 1, NOW, NOW - 4 * 86400 - 1, b"", ()),  # window + 1 day ago
                StoryRow("b" * 64, "story_b", "b.txt", 1, NOW, NOW - 3 * 86400, b"", ()),
            ]
        )
    counts = prune(db, RetentionSettings(), [tmp_path], None, now=NOW, stories=timedelta(hours=72))
    assert counts is not None and counts["story_articles"] == 1
    assert [row.story for row in db.story_rows(0)] == ["story_b"]
