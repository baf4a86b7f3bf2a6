"""Retention: the prune that deletes what the store no longer needs, in small batches (`state.retention`).

One round, in this order, each table in batches of `batch` rows, each batch its own short transaction:
1. deliveries: delivered ones after `deliveries` (by delivery time), dead ones after `dead` (by their last
   attempt). An open delivery (pending, retrying) is never deleted.
2. alerts: after `alerts` (at least the longest `realert` window + REALERT_MARGIN, if a rule has one),
   when no kept delivery refers to them (by `alert_id`, or in a digest's list of alert ids) and no digest
   waits for them. A realert lookup never looks back further than its window, so deleting older alerts
   changes no decision.
3. digest_claims: after the alerts' cut-off (a flush claims only the time it is at).
4. files (the ledger): only rows of files gone from disk, after `rejections` (rejected files) or `articles`
   (read files). The row of a file still there stays: it is how a scan knows the file is unchanged, so a
   prune never makes the daemon read an old article again. A watched folder that is missing or empty (a
   network share not mounted) counts as unknown: its rows stay.
5. articles (claims): after `articles`, when no ledger row refers to their content.
6. reading (replicas' claims to read a file, PostgreSQL): an hour after their lease ran out. An expired
   claim is one any replica may take over, so deleting it changes nothing; it is left by a replica that
   died mid-read on a file that was then deleted.
7. story_articles: a day (STORY_MARGIN) after the story window (`stories.window`): no story index holds
   them any more; a file's new version after that starts a new story.
8. chat_threads (the Discord thread of a story's first alert, `thread: story`): with story_articles' cut-off.

One process prunes at a time (replicas on PostgreSQL; on SQLite the daemon and `db prune`): it holds the
prune's lease, a row of `meta` (`Store.take_lease`), renewed between batches; a process that finds it
held skips the round, and a lease whose holder died runs out after PRUNE_LEASE. A row, not a session
advisory lock, so that it needs no connection of its own and works through PgBouncer's transaction
pooling. A dry run counts what would go without deleting: claims freed by ledger rows that the same round
would delete are counted by the next one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, not_, or_, select, tuple_

from monitor.config.rules import RuleSet
from monitor.config.settings import RetentionSettings
from monitor.ingest.articles import ArticleOutcome
from monitor.ingest.pipeline import ledger_path
from monitor.store import DIGEST_REFS, DeliveryKind, State, Store
from monitor.store.schema import (
    alerts,
    articles,
    chat_threads,
    deliveries,
    digest_claims,
    files,
    reading,
    story_articles,
)

REALERT_MARGIN = timedelta(days=1)  # alerts outlive the longest realert window by this much
REFS_SLACK = 600.0  # seconds: digests due this long before the last read of their refs are read again
STALE_READING = timedelta(hours=1)  # a claim to read a file is deleted this long after its lease ran out
TABLES = ("deliveries", "alerts", "digest_claims", "files", "articles", "reading", "story_articles", "chat_threads")
STORY_MARGIN = timedelta(days=1)  # story rows outlive the story window by this much
STORY_WINDOW = timedelta(hours=72)  # `stories.window` unset
PRUNE_LEASE = 300.0  # seconds the prune's lease holds; renewed after a third of it, between batches


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these UNIX times may go (each by its table's rule)."""

    delivered: float
    dead: float
    alerts: float
    articles: float
    rejections: float
    reading: float
    stories: float

    @classmethod
    def of(
        cls, retention: RetentionSettings, realert: timedelta | None, now: float, stories: timedelta = STORY_WINDOW
    ) -> Cutoffs:
        alerts_kept = retention.alerts if realert is None else max(retention.alerts, realert + REALERT_MARGIN)
        return cls(
            now - retention.deliveries.total_seconds(),
            now - retention.dead.total_seconds(),
            now - alerts_kept.total_seconds(),
            now - retention.articles.total_seconds(),
            now - retention.rejections.total_seconds(),
            now - STALE_READING.total_seconds(),
            now - (stories + STORY_MARGIN).total_seconds(),
        )


def prune(
    store: Store,
    retention: RetentionSettings,
    folders: Sequence[Path],
    realert: timedelta | None,
    dry_run: bool = False,
    now: float | None = None,
    stop: Callable[[], bool] = lambda: False,
    stories: timedelta = STORY_WINDOW,
) -> dict[str, int] | None:
    """Delete (or with `dry_run` count) what retention lets go: rows per table, or None when another
    replica is pruning. `realert` is the longest realert window of the rules in force; `stop` is asked
    between batches; `stories`: the story window (`stories.window`)."""
    cut = Cutoffs.of(retention, realert, time.time() if now is None else now, stories)
    with _one_at_a_time(store) as holding:
        if holding is None:
            return None
        sweep = _Sweep(store, retention.batch, dry_run, lambda: stop() or not holding())
        counts = {"deliveries": sweep.run(deliveries, [deliveries.c.id], _gone_delivery(cut))}
        refs = _DigestRefs(store, cut)
        counts["alerts"] = sweep.run(alerts, [alerts.c.id], _gone_alert(cut), keep=refs.keeps, fresh=refs.read)
        claims = digest_claims.c.flushed_at < cut.alerts
        counts["digest_claims"] = sweep.run(digest_claims, [digest_claims.c.rule, digest_claims.c.slot], claims)
        disk = Disk(folders)
        ledger = [files.c.path, files.c.seen_at]
        counts["files"] = sweep.run(files, ledger, _gone_file(cut), keep=lambda row: not disk.gone(row[0]))
        counts["articles"] = sweep.run(articles, [articles.c.content_hash], _gone_claim(cut))
        counts["reading"] = sweep.run(reading, [reading.c.path], reading.c.lease_until < cut.reading)
        old_stories = story_articles.c.created_at < cut.stories
        counts["story_articles"] = sweep.run(story_articles, [story_articles.c.seq], old_stories)
        threads = [chat_threads.c.webhook, chat_threads.c.alert_id]
        counts["chat_threads"] = sweep.run(chat_threads, threads, chat_threads.c.created_at < cut.stories)
        return counts


def longest_realert(ruleset: RuleSet) -> timedelta | None:
    """The longest `realert` window of the rules (None: no rule has one)."""
    return max((rule.realert for rule in ruleset.rules if rule.realert is not None), default=None)


@contextmanager
def _one_at_a_time(store: Store) -> Iterator[Callable[[], bool] | None]:
    """The prune's lease for this process: a callable that renews it when a third of it has passed and says
    whether it still holds, or None when another process holds it."""
    if not store.take_lease("prune", PRUNE_LEASE):
        yield None
        return
    renewed = time.monotonic()

    def holding() -> bool:
        nonlocal renewed
        if time.monotonic() - renewed < PRUNE_LEASE / 3:
            return True
        renewed = time.monotonic()
        return store.take_lease("prune", PRUNE_LEASE)

    try:
        yield holding
    finally:
        store.end_lease("prune")


def _gone_delivery(cut: Cutoffs) -> ColumnElement[bool]:
    delivered = and_(deliveries.c.state == State.delivered.value, deliveries.c.delivered_at < cut.delivered)
    dead = and_(deliveries.c.state == State.dead.value, deliveries.c.due_at < cut.dead)  # due_at: the last attempt
    return or_(delivered, dead)


def _gone_alert(cut: Cutoffs) -> ColumnElement[bool]:
    referred = exists().where(deliveries.c.alert_id == alerts.c.id, not_(_gone_delivery(cut)))
    return and_(alerts.c.created_at < cut.alerts, alerts.c.digest_pending.is_(False), not_(referred))


def _gone_file(cut: Cutoffs) -> ColumnElement[bool]:
    rejected = and_(files.c.outcome == ArticleOutcome.rejected, files.c.seen_at < cut.rejections)
    return or_(rejected, and_(files.c.outcome != ArticleOutcome.rejected, files.c.seen_at < cut.articles))


def _gone_claim(cut: Cutoffs) -> ColumnElement[bool]:
    referred = exists().where(files.c.content_hash == articles.c.content_hash)
    return and_(articles.c.claimed_at < cut.articles, not_(referred))


class _DigestRefs:
    """The alert ids listed by the digest deliveries that this round keeps: their alerts stay, so that a
    kept digest (pending, or replayed later) still renders in full. Read whole once, then before each batch
    of alerts the digests due since the last read (less REFS_SLACK): a digest flushed meanwhile cleared its
    alerts' `digest_pending` in the transaction that wrote it, so it is seen by the time they are candidates.
    A digest's `due_at` is never before its creation, and (state, due_at) is indexed."""

    def __init__(self, store: Store, cut: Cutoffs) -> None:
        self.store, self.cut = store, cut
        self.ids: set[str] = set()
        self._since: float | None = None

    def keeps(self, row: Any) -> bool:
        return row[0] in self.ids

    def read(self) -> None:
        query = select(deliveries.c.payload).where(
            deliveries.c.kind == DeliveryKind.digest.value, not_(_gone_delivery(self.cut))
        )
        if self._since is not None:
            query = query.where(deliveries.c.state.in_(list(State)), deliveries.c.due_at >= self._since)
        self._since = time.time() - REFS_SLACK
        with self.store.engine.connect() as conn:
            for (payload,) in conn.execute(query):
                self.ids.update(json.loads(payload or "{}").get(DIGEST_REFS, ()))


class _Sweep:
    """Walks a table's candidate rows in key order, a batch at a time, and deletes those not kept, each
    batch in a transaction of its own that checks the condition again (a row changed meanwhile stays)."""

    def __init__(self, store: Store, batch: int, dry_run: bool, stop: Callable[[], bool]) -> None:
        self.store, self.batch, self.dry_run, self.stop = store, batch, dry_run, stop

    def run(
        self,
        table: Any,
        columns: list[Any],
        condition: ColumnElement[bool],
        keep: Callable[[Any], bool] | None = None,
        fresh: Callable[[], None] | None = None,
    ) -> int:
        """Delete the rows that meet `condition` unless `keep` says otherwise; `fresh` is called after each
        batch is read and before `keep` is asked about it."""
        keys = [column for column in columns if column.primary_key]
        key = keys[0] if len(keys) == 1 else tuple_(*keys)
        deleted, after = 0, None
        while not self.stop():
            query = select(*columns).where(condition).order_by(*keys).limit(self.batch)
            if after is not None:
                query = query.where(key > (after[0] if len(keys) == 1 else tuple_(*after)))
            with self.store.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                break
            after = tuple(rows[-1])[: len(keys)]
            if fresh is not None:
                fresh()
            chosen = [tuple(row)[: len(keys)] for row in rows if keep is None or not keep(row)]
            deleted += self._delete(table, keys, key, chosen, condition)
            if len(rows) < self.batch:
                break
        return deleted

    def _delete(self, table: Any, keys: list[Any], key: Any, chosen: list[tuple[Any, ...]], condition: Any) -> int:
        if self.dry_run or not chosen:
            return len(chosen)
        values = [row[0] for row in chosen] if len(keys) == 1 else chosen
        with self.store.begin() as conn:
            return int(conn.execute(delete(table).where(key.in_(values), condition)).rowcount)


class Disk:
    """Whether a ledger row's file is gone from disk: not there (ENOENT), in a watched folder (or, outside
    them, a directory) that is there and not empty. Anything else (no access, an I/O error, a key that is
    not a path) counts as there."""

    def __init__(self, folders: Sequence[Path]) -> None:
        roots = {os.path.normpath(folder) for folder in folders} | {os.path.abspath(folder) for folder in folders}
        self.roots = sorted(roots, key=len, reverse=True)
        self._listed: dict[str, bool] = {}

    def gone(self, key: str) -> bool:
        path = ledger_path(key)
        if path is None:
            return False
        try:
            os.lstat(path)
        except FileNotFoundError:
            return self._listed_here(self._root(path))
        except (OSError, ValueError):
            return False
        return False

    def _root(self, path: str) -> str:
        for root in self.roots:
            if path.startswith(root.rstrip(os.sep) + os.sep):
                return root
        return os.path.dirname(path) or "."

    def _listed_here(self, folder: str) -> bool:
        """Whether the folder is there and has at least one entry (cached for the round)."""
        found = self._listed.get(folder)
        if found is None:
            try:
                with os.scandir(folder) as entries:
                    found = next(entries, None) is not None
            except OSError:
                found = False
            self._listed[folder] = found
        return found
