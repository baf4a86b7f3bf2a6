"""Stories (`story_articles`): each claimed article's story, version and signature (terms, word sketch), numbered in the
order they were assigned (`seq`), so that a process's in-memory index (monitor.matching.stories) loads the
rows after the last number it has, and the latest version of a file is found by its path.

On PostgreSQL a batch takes one transaction-level advisory lock before it loads and assigns
(`lock_stories`): two replicas then never start two stories for one event at the same moment, and numbers
are given in commit order (a replica that loaded up to N has seen every row numbered N or less)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, text

from monitor.store.engine import Database, Writes
from monitor.store.schema import alerts, articles, story_articles
from monitor.store.statements import insert_returning

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_LOCK_KEY = 7_370_411_690_617_000_018  # pg_advisory_xact_lock key of story assignment
_COLUMNS = (
    story_articles.c.content_hash,
    story_articles.c.story,
    story_articles.c.path,
    story_articles.c.version,
    story_articles.c.article_at,
    story_articles.c.created_at,
    story_articles.c.signature,
    story_articles.c.rules,
    story_articles.c.seq,
)
_SINCE = (
    select(*_COLUMNS)
    .where(story_articles.c.seq > bindparam("seq"), story_articles.c.created_at >= bindparam("since"))
    .order_by(story_articles.c.seq)
)
_OF_PATHS = (
    select(*_COLUMNS)
    .where(story_articles.c.path.in_(bindparam("paths", expanding=True)))
    .order_by(story_articles.c.path, story_articles.c.version.desc())
)
_PRESENT = select(alerts.c.id).where(alerts.c.id.in_(bindparam("ids", expanding=True)))


class StoryRow(NamedTuple):
    """A row of `story_articles` (`seq` 0: not stored yet)."""

    content_hash: str
    story: str
    path: str
    version: int
    article_at: float
    created_at: float
    signature: bytes
    rules: tuple[str, ...]
    seq: int = 0


class StoryAlert(NamedTuple):
    """An article of a story as `Store.story_articles` lists it, with its alerts' ids."""

    row: StoryRow
    alerts: tuple[str, ...]


def _row(values: Sequence[Any]) -> StoryRow:
    content_hash, story, path, version, article_at, created_at, signature, rules, seq = values
    names = tuple(rules.split("\n")) if rules else ()
    return StoryRow(content_hash, story, path, version, article_at, created_at, bytes(signature), names, seq)


class Stories(Database):
    """The store's reads of stories (each its own transaction)."""

    def story_rows(self, since: float, after: int = 0) -> list[StoryRow]:
        """The rows that arrived at `since` or later and are numbered after `after`, in number order (the
        daemon's index at start, `check`'s preview)."""
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(_SINCE, {"seq": after, "since": since})]

    def latest_story_version(self, path: str) -> StoryRow | None:
        """The row of the latest version of a file (`check`'s preview)."""
        with self.engine.connect() as conn:
            found = conn.execute(_OF_PATHS, {"paths": [path]}).first()
        return _row(found) if found is not None else None

    def story_articles(self, since: float) -> list[StoryAlert]:
        """The articles that arrived at `since` or later with their alerts' ids, in number order
        (`news-monitor stories`)."""
        query = (
            select(*_COLUMNS, alerts.c.id)
            .outerjoin(alerts, alerts.c.content_hash == story_articles.c.content_hash)
            .where(story_articles.c.created_at >= since)
            .order_by(story_articles.c.seq, alerts.c.id)
        )
        found: dict[str, StoryAlert] = {}
        with self.engine.connect() as conn:
            for values in conn.execute(query):
                row = _row(values[:-1])
                item = found.setdefault(row.content_hash, StoryAlert(row, ()))
                if values[-1] is not None:
                    found[row.content_hash] = StoryAlert(row, (*item.alerts, str(values[-1])))
        return list(found.values())


class StoryWrites(Writes):
    """A write transaction's statements on stories."""

    def lock_stories(self) -> None:
        """On PostgreSQL, take the story lock until the transaction ends (SQLite: the write lock is it)."""
        if self.dialect == "postgresql":
            self._conn.execute(_LOCK, {"key": _LOCK_KEY})

    def story_rows_since(self, after: int, since: float) -> list[StoryRow]:
        """The rows numbered after `after` that arrived at `since` or later, in number order."""
        return [_row(row) for row in self._conn.execute(_SINCE, {"seq": after, "since": since})]

    def latest_versions(self, paths: Iterable[str]) -> dict[str, StoryRow]:
        """The row of the latest version of each of these files that has one."""
        wanted = sorted(set(paths))
        latest: dict[str, StoryRow] = {}
        if wanted:
            for values in self._conn.execute(_OF_PATHS, {"paths": wanted}):
                row = _row(values)
                latest.setdefault(row.path, row)
        return latest

    def record_stories(self, rows: Sequence[StoryRow]) -> set[str]:
        """Store assignments (numbered as inserted, in the order given); a content stored before is skipped.
        Returns the content hashes stored now."""
        values = [row._asdict() | {"rules": "\n".join(row.rules)} for row in rows]  # seq: the database numbers them
        for value in values:
            del value["seq"]
        return set(insert_returning(self._conn, story_articles, values, story_articles.c.content_hash))

    def alerts_present(self, ids: Iterable[str]) -> set[str]:
        """Which of these alert ids are stored."""
        wanted = sorted(set(ids))
        return set(self._conn.execute(_PRESENT, {"ids": wanted}).scalars()) if wanted else set()


# Story threads (monitor.notify.threads): the index `alerts_story` (story, rule, created_at) serves both.
_JOINED = alerts.outerjoin(story_articles, story_articles.c.content_hash == alerts.c.content_hash).outerjoin(
    articles, articles.c.content_hash == alerts.c.content_hash
)
# An alert's article path: its story row's, or once that is pruned (a day after the story window, while a story
# that keeps being joined lives on) its claim's (kept as long as its file, or `retention.articles`).
_PATH = func.coalesce(story_articles.c.path, articles.c.path).label("path")
# A rule's alerts sent in a story, the first first (bounded by the follow-ups a story mode lets through).
_STORY_SENT = (
    select(alerts.c.id, alerts.c.count_value, alerts.c.created_at, _PATH)
    .select_from(_JOINED)
    .where(alerts.c.story == bindparam("story"), alerts.c.rule == bindparam("rule"), alerts.c.suppressed.is_(False))
    .order_by(alerts.c.created_at, alerts.c.id)
)
# The rules matched in a story and the files of its matched articles (each alert, sent or not, is a match).
_STORY_SEEN = select(alerts.c.rule, _PATH).select_from(_JOINED).where(alerts.c.story == bindparam("story")).distinct()


class StoryThread(NamedTuple):
    """A rule's thread in a story: its first alert (id, and its article's path: None once pruned), the
    largest count sent and when the last alert was sent."""

    first: str
    path: str | None
    best: float | None
    last_at: float


class ThreadWrites(Writes):
    """A write transaction's reads of story threads (`story: first_then_updates`, `digest_updates`)."""

    def story_threads(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoryThread]:
        """For each (story, rule) that has sent an alert: its thread."""
        found: dict[tuple[str, str], StoryThread] = {}
        for story, rule in sorted(set(keys)):
            rows = self._conn.execute(_STORY_SENT, {"story": story, "rule": rule}).all()
            if rows:
                counts = [row.count_value for row in rows if row.count_value is not None]
                best = max(counts) if counts else None
                found[story, rule] = StoryThread(rows[0].id, rows[0].path, best, max(row.created_at for row in rows))
        return found

    def story_seen(self, stories: Iterable[str]) -> dict[str, tuple[set[str], set[str]]]:
        """For each story: the rules its articles matched and the paths of those articles (stored alerts)."""
        found: dict[str, tuple[set[str], set[str]]] = {}
        for story in sorted(set(stories)):
            rules, paths = found.setdefault(story, (set(), set()))
            for rule, path in self._conn.execute(_STORY_SEEN, {"story": story}):
                rules.add(rule)
                if path is not None:
                    paths.add(path)
        return found
