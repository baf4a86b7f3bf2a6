"""Matches become alerts and outbox rows, in the same transaction as the article's claim.

`prepare` builds each match's bounded payload (monitor.payload) before the transaction: that works out
the match's hits, the costly part, which must not hold the write lock. The transaction (`queue_prepared`)
stores each payload once, in the alert row; the alert's deliveries refer to it by `alert_id`.

Ids are deterministic: an alert's id comes from (rule, article hash) and a delivery's from (alert, webhook)
or, for a digest, from (rule, webhook, schedule time, and the part's number after the first). Inserting
an id twice is a no-op, so a repeated flush or a crash between steps can never queue a second delivery of
the same thing. A digest over `max_payload_bytes` is queued as several parts, all in the flush's one
transaction, each part's delivery listing its alerts by id.

Several replicas may flush the same digest time at once: each flush first claims (rule, time) in
`digest_claims` within its transaction, and only the one whose claim took effect builds the digest, so no
flush can mark alerts as sent that went into no digest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import ColumnElement, Connection, and_, exists, func, select, text, update

from monitor.articles import Article
from monitor.matching.engine import Match
from monitor.payload import alert_payload, digest_parts, dumps
from monitor.rules import Rule, RuleSet
from monitor.settings import LimitsSettings
from monitor.store import (
    State,
    Store,
    alerts,
    articles,
    deliveries,
    digest_claims,
    file_row,
    files,
    insert_ignore,
    insert_returning,
    octets,
    upsert_many,
)

REALERT_KEY_BYTES = 256
_LOOKBACK = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
)


@dataclass(frozen=True, slots=True)
class Queued:
    claimed: bool  # False: the same content was claimed before (no new alerts)
    alerts: int
    deliveries: int  # immediate deliveries queued now
    # accepted (claimed now) | unchanged (this text was claimed under this very name: read again, or by
    # another replica at the same moment) | duplicate (the same text under another name)
    outcome: str = "accepted"


@dataclass(frozen=True, slots=True)
class Draft:
    """A match made ready for the outbox: its alert id, payload (JSON) and realert key."""

    rule: str
    alert_id: str
    payload: str
    realert_key: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article with its matches as drafts, built before the write transaction."""

    article: Article
    stat: tuple[int, int]
    drafts: tuple[Draft, ...]


def make_id(*parts: str) -> str:
    return "msg_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def prepare(
    ruleset: RuleSet, article: Article, matches: Sequence[Match], stat: tuple[int, int], limits: LimitsSettings | None
) -> Prepared:
    """Work out the matches' hits and bounded payloads (the costly part): outside any transaction."""
    drafts = []
    for match in matches:
        rule = ruleset.rule(match.rule)
        alert_id = make_id(rule.name, article.content_hash)
        payload = dumps(alert_payload(alert_id, article, match, limits))
        drafts.append(Draft(rule.name, alert_id, payload, _realert_key(rule, article, match)))
    return Prepared(article, stat, tuple(drafts))


def queue_article(
    store: Store,
    ruleset: RuleSet,
    article: Article,
    matches: list[Match],
    stat: tuple[int, int],
    now: float | None = None,
    send: bool = True,
    limits: LimitsSettings | None = None,
) -> Queued:
    """Claim the article and queue its alerts, all in one transaction (`send=False`: record them only);
    the payloads are built before it."""
    prepared = prepare(ruleset, article, matches, stat, limits)
    with store.begin() as conn:
        return queue_prepared(conn, ruleset, [prepared], now, send)[0]


def queue_many(
    conn: Connection,
    ruleset: RuleSet,
    items: Sequence[tuple[Article, list[Match], tuple[int, int]]],
    now: float | None = None,
    send: bool = True,
    limits: LimitsSettings | None = None,
) -> list[Queued]:
    """`queue_prepared` of articles not prepared yet: their payloads are built within the caller's
    transaction (a caller holding a write lock should `prepare` first, as the pipeline does)."""
    prepared = [prepare(ruleset, article, matches, stat, limits) for article, matches, stat in items]
    return queue_prepared(conn, ruleset, prepared, now, send)


def queue_prepared(
    conn: Connection, ruleset: RuleSet, items: Sequence[Prepared], now: float | None = None, send: bool = True
) -> list[Queued]:
    """`queue_article` for several articles within the caller's transaction, with one statement per table
    for all of them (claims, ledger rows, alerts, deliveries). The first article of a content claims it;
    the others with that content are duplicates, as if they had come one after another."""
    now = time.time() if now is None else now
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.article.content_hash, index)
    claims = [_claim(items[index].article, len(items[index].drafts), now) for index in first.values()]
    claims.sort(key=lambda row: row["content_hash"])  # every table in key order: replicas lock rows in one order
    claimed = set(insert_returning(conn, articles, claims, articles.c.content_hash))
    winners = [items[index] for content, index in first.items() if content in claimed]
    _lock_realert_windows(conn, ruleset, winners)
    ledger, alert_rows, delivery_rows, results = [], [], [], []
    sent: set[tuple[str, str]] = set()  # (rule, realert key) alerted earlier in this batch: not in the table yet
    for index, item in enumerate(items):
        article = item.article
        won = article.content_hash in claimed and first[article.content_hash] == index
        same_name = won or _claimed_path(conn, article) == article.path
        outcome = "accepted" if same_name else "duplicate"  # in the ledger: the file's content is claimed
        ledger.append(file_row(article.path, *item.stat, outcome=outcome, content_hash=article.content_hash))
        if not won:
            results.append(Queued(False, 0, 0, "unchanged" if same_name else "duplicate"))
            continue
        queued = 0
        for draft in item.drafts:
            alert, due = _alert(conn, sent, ruleset, ruleset.rule(draft.rule), article, draft, now, send)
            alert_rows.append(alert)
            delivery_rows += due
            queued += len(due)
        results.append(Queued(True, len(item.drafts), queued))
    upsert_many(conn, files, sorted(ledger, key=lambda row: row["path"]), key="path")
    insert_returning(conn, alerts, sorted(alert_rows, key=lambda row: row["id"]), alerts.c.id)
    insert_returning(conn, deliveries, sorted(delivery_rows, key=lambda row: row["id"]), deliveries.c.id)
    return results


def _lock_realert_windows(conn: Connection, ruleset: RuleSet, winners: Sequence[Prepared]) -> None:
    """On PostgreSQL, lock each (rule, realert key) that these newly claimed articles may alert, until the
    transaction ends, in sorted order: another replica's check for a recent alert of the same key then waits
    for this commit and sees its alert, so a window gets one alert however the matches race. (On SQLite
    the write lock already makes the check and the insert one step.)"""
    if conn.dialect.name != "postgresql":
        return
    keys = {
        _lock_key(draft.rule, draft.realert_key)
        for item in winners
        for draft in item.drafts
        if ruleset.rule(draft.rule).realert is not None
    }
    for key in sorted(keys):
        conn.execute(_ADVISORY_LOCK, {"key": key})


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def _lock_key(rule: str, key: str) -> int:
    """A signed 64-bit advisory lock key for (rule, realert key)."""
    digest = hashlib.blake2b(f"realert\x1f{rule}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _claim(article: Article, matches: int, now: float) -> dict[str, Any]:
    return {
        "content_hash": article.content_hash,
        "path": article.path,
        "article_date": article.date.isoformat(),
        "size": article.size,
        "matches": matches,
        "claimed_at": now,
    }


def _claimed_path(conn: Connection, article: Article) -> str | None:
    """The file whose content claimed this article: the same path when another replica read it first."""
    query = select(articles.c.path).where(articles.c.content_hash == article.content_hash)
    return conn.execute(query).scalar()


def _alert(
    conn: Connection,
    sent: set[tuple[str, str]],
    ruleset: RuleSet,
    rule: Rule,
    article: Article,
    draft: Draft,
    now: float,
    send: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The alert row of a match of a newly claimed article, and its immediate delivery rows: they refer
    to the alert, whose row holds the payload once."""
    alert_id, key = draft.alert_id, draft.realert_key
    suppressed = rule.realert is not None and (
        (rule.name, key) in sent or _recent(conn, rule.name, key, now - rule.realert.total_seconds())
    )
    if not suppressed:
        sent.add((rule.name, key))
    row = {
        "id": alert_id,
        "rule": rule.name,
        "content_hash": article.content_hash,
        "payload": draft.payload,
        "realert_key": key,
        "suppressed": suppressed,
        "digest_pending": send and rule.digest_cron is not None and not suppressed,
        "created_at": now,
    }
    if suppressed or not send or rule.digest_cron is not None:
        return row, []
    hooks = ruleset.targets(rule)
    return row, [_delivery(make_id(alert_id, hook), hook, "alert", rule.name, now, alert_id=alert_id) for hook in hooks]


def _delivery(
    delivery_id: str,
    webhook: str,
    kind: str,
    rule: str,
    now: float,
    payload: str | None = None,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """An outbox row: an alert's refers to its alert (`alert_id`), a digest's holds its compact payload."""
    return {
        "id": delivery_id,
        "webhook": webhook,
        "kind": kind,
        "rule": rule,
        "alert_id": alert_id,
        "payload": payload,
        "state": State.pending.value,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }


def _realert_key(rule: Rule, article: Article, match: Match) -> str:
    if rule.realert_key == "date":
        return article.date.isoformat()
    if rule.realert_key == "term":
        return _bounded("\x1f".join(sorted({hit.text.casefold() for hit in match.hits})))
    return ""


def _bounded(key: str) -> str:
    """A realert key of at most REALERT_KEY_BYTES (UTF-8): a longer one (up to 20 hits of 200 characters)
    as its digest, so that it fits in an index entry (PostgreSQL refuses one over 2,704 bytes)."""
    if len(key.encode()) <= REALERT_KEY_BYTES:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _recent(conn: Connection, rule: str, key: str, since: float) -> bool:
    query = select(
        exists().where(
            alerts.c.rule == rule,
            alerts.c.realert_key == key,
            alerts.c.suppressed.is_(False),
            alerts.c.created_at >= since,
        )
    )
    return bool(conn.execute(query).scalar())


def flush_digest(
    store: Store,
    ruleset: RuleSet,
    rule: Rule,
    slot: datetime,
    now: float | None = None,
    limits: LimitsSettings | None = None,
) -> int:
    """Queue the rule's pending alerts up to `slot` as a digest for each webhook: one delivery per webhook
    and part, each part within `limits.max_payload_bytes`. Returns the deliveries queued: 0 when another
    flush (another replica, or an earlier run) has claimed this schedule time."""
    now = time.time() if now is None else now
    budget = (limits or LimitsSettings()).max_payload_bytes
    with store.begin() as conn:
        if not rule.send_empty and not conn.execute(select(exists().where(_pending(rule, slot)))).scalar():
            return 0
        claim = {"rule": rule.name, "slot": slot.astimezone(UTC).isoformat(), "flushed_at": now}
        if insert_ignore(conn, digest_claims, [claim]) == 0:
            return 0
        query = select(alerts.c.id, octets(conn, alerts.c.payload)).where(_pending(rule, slot))
        query = query.order_by(alerts.c.created_at, alerts.c.id)
        if conn.dialect.name == "postgresql":  # a flush of a later time waits, then skips what this one sends
            query = query.with_for_update()
        pending = [(alert_id, int(size)) for alert_id, size in conn.execute(query)]
        if not pending and not rule.send_empty:
            return 0
        parts = digest_parts(rule.name, slot.isoformat(), pending, budget)
        rows = [
            _delivery(_digest_id(rule, hook, slot, number), hook, "digest", rule.name, now, payload=dumps(part))
            for hook in ruleset.targets(rule)
            for number, part in enumerate(parts, 1)
        ]
        queued = insert_ignore(conn, deliveries, rows)
        ids = [alert_id for alert_id, _ in pending]
        if ids:
            conn.execute(update(alerts).where(alerts.c.id.in_(ids)).values(digest_pending=False))
    return queued


def _digest_id(rule: Rule, hook: str, slot: datetime, number: int) -> str:
    """Part 1 has the id a digest had before digests had parts; part k > 1 adds k."""
    parts = ("digest", rule.name, hook, slot.isoformat())
    return make_id(*parts) if number == 1 else make_id(*parts, str(number))


def _pending(rule: Rule, slot: datetime) -> ColumnElement[bool]:
    return and_(alerts.c.rule == rule.name, alerts.c.digest_pending.is_(True), alerts.c.created_at <= slot.timestamp())


def latest_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last time at or before `now` that the cron trigger fired (None if not within a year)."""
    for window in _LOOKBACK:
        fire: datetime | None = trigger.get_next_fire_time(None, now - window)  # APScheduler 3 is untyped
        if fire is None or fire > now:
            continue
        while True:
            following: datetime | None = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if following is None or following > now:
                return fire
            fire = following
    return None


def oldest_pending(store: Store) -> dict[str, float]:
    """Per rule, the creation time of its oldest alert waiting for a digest (rules with none are absent)."""
    with store.engine.connect() as conn:
        query = select(alerts.c.rule, func.min(alerts.c.created_at)).where(alerts.c.digest_pending.is_(True))
        return {rule: float(oldest) for rule, oldest in conn.execute(query.group_by(alerts.c.rule))}
