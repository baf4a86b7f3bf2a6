"""Matches become alerts and outbox rows, in the same transaction as the article's claim: what to alert,
what a realert window suppresses, what goes into a digest. The decisions are pure functions (`plan_batch`,
`digest_deliveries`); the store executes them (`monitor.store.Transaction`), and speaks all the SQL.

`prepare` builds each match's bounded payload (monitor.notify.payload) before the transaction: that works out
the match's hits, the costly part, which must not hold the write lock. The transaction (`queue_prepared`)
stores each payload once, in the alert row; the alert's deliveries refer to it by `alert_id`.

Ids are deterministic: an alert's id comes from (rule, article hash) and a delivery's from (alert, webhook)
or, for a digest, from (rule, webhook, schedule time, and the part's number after the first). Inserting
an id twice is a no-op, so a repeated flush or a crash between steps can never queue a second delivery of
the same thing. A digest over `max_payload_bytes` is queued as several parts, all in the flush's one
transaction, each part's delivery listing its alerts by id.

With `realert_on_increase` a match inside a window is not suppressed when its count (the largest among its
hits) is larger than the largest count alerted in the window so far (by an alert before the batch, whose
count the store keeps, or earlier in it); a match with a count after alerts without one counts as a rise.
Its payload's `count_increase` then holds both numbers.

Several replicas may flush the same digest time at once: each flush first claims (rule, time) in
`digest_claims` within its transaction, and only the one whose claim took effect builds the digest, so no
flush can mark alerts as sent that went into no digest.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.triggers.cron import CronTrigger

from monitor.config.rules import Rule, RuleSet
from monitor.config.settings import LimitsSettings
from monitor.ingest.articles import Article, ArticleOutcome
from monitor.matching.engine import Match
from monitor.matching.stories import StoryRef
from monitor.notify.payload import (
    alert_payload,
    digest_parts,
    dumps,
    update_fields,
    with_count_increase,
    with_story,
)
from monitor.notify.threads import MODES, Followups, Seen, Thread, follow_up, sent_follow_up, title
from monitor.store import (
    ArticleClaim,
    DeliveryKind,
    LedgerEntry,
    NewAlert,
    NewDelivery,
    Store,
    StoryThread,
    Transaction,
    Window,
)


class Stories(Protocol):
    """What assigns stories in the batch transaction (`monitor.ingest.storyline.Storyline`)."""

    def assign(self, tx: Transaction, items: Sequence[Prepared], now: float) -> dict[str, StoryRef]: ...


REALERT_KEY_BYTES = 256
Alerted = Mapping[tuple[str, str], float | None]  # (rule, realert key) alerted: the largest count alerted
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
    # accepted (claimed now), unchanged (this text was claimed under this very name: read again, or by
    # another replica at the same moment) or duplicate (the same text under another name)
    outcome: ArticleOutcome = ArticleOutcome.accepted


@dataclass(frozen=True, slots=True)
class Draft:
    """A match made ready for the outbox: its alert id, payload (JSON), realert key and count (the
    largest among its hits, None without one)."""

    rule: str
    alert_id: str
    payload: str
    realert_key: str
    count: float | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article with its matches as drafts, built before the write transaction; its story signature
    (None: stories are off), and its story once the transaction has assigned it (`queue_prepared`)."""

    article: Article
    stat: tuple[int, int]
    drafts: tuple[Draft, ...]
    signature: bytes | None = None
    story: StoryRef | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a batch of articles writes: ledger rows, alerts, immediate deliveries, and each article's result."""

    ledger: list[LedgerEntry] = field(default_factory=list)
    alerts: list[NewAlert] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    results: list[Queued] = field(default_factory=list)


def make_id(*parts: str) -> str:
    return "msg_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def prepare(
    ruleset: RuleSet,
    article: Article,
    matches: Sequence[Match],
    stat: tuple[int, int],
    limits: LimitsSettings | None,
    signature: bytes | None = None,
) -> Prepared:
    """Work out the matches' hits and bounded payloads (the costly part): outside any transaction;
    `signature`: the article's story signature (`monitor.matching.stories.signature`), None: no story."""
    drafts = []
    for match in matches:
        rule = ruleset.rule(match.rule)
        alert_id = make_id(rule.name, article.content_hash)
        payload = dumps(alert_payload(alert_id, article, match, limits, rule.realert_on_increase))
        drafts.append(Draft(rule.name, alert_id, payload, _realert_key(rule, article, match), count_value(match)))
    return Prepared(article, stat, tuple(drafts), signature)


def count_value(match: Match) -> float | None:
    """The match's count as a finite float (a number too large for one: the largest float), or None when
    it has none or only a vague one ("honderden")."""
    count = match.count
    if count is None or count.value is None:
        return None
    try:
        value = float(count.value)
    except OverflowError:
        value = math.copysign(sys.float_info.max, count.value)
    return value if math.isfinite(value) else None


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
    with store.transaction() as tx:
        return queue_prepared(tx, ruleset, [prepared], now, send)[0]


def queue_many(
    tx: Transaction,
    ruleset: RuleSet,
    items: Sequence[tuple[Article, list[Match], tuple[int, int]]],
    now: float | None = None,
    send: bool = True,
    limits: LimitsSettings | None = None,
) -> list[Queued]:
    """`queue_prepared` of articles not prepared yet: their payloads are built within the caller's
    transaction (a caller holding a write lock should `prepare` first, as the pipeline does)."""
    prepared = [prepare(ruleset, article, matches, stat, limits) for article, matches, stat in items]
    return queue_prepared(tx, ruleset, prepared, now, send)


def queue_prepared(
    tx: Transaction,
    ruleset: RuleSet,
    items: Sequence[Prepared],
    now: float | None = None,
    send: bool = True,
    stories: Stories | None = None,
    followups: Followups | None = None,
) -> list[Queued]:
    """`queue_article` for several articles within the caller's transaction, with one statement per table
    for all of them (claims, ledger rows, alerts, deliveries). The first article of a content claims it;
    the others with that content are duplicates, as if they had come one after another. The newly claimed
    articles get their stories (`stories`: the daemon's; None: no stories) before their alerts are
    decided (`followups`: the watched folders and quiet period of the story modes). Before the realert
    lookups the windows of the newly claimed articles are locked (PostgreSQL: replicas take turns)."""
    now = time.time() if now is None else now
    first = _first_of_each_content(items)
    claimed = tx.claim_articles([_claim(items[index], now) for index in first.values()])
    if stories is not None:
        items = with_stories(tx, stories, items, [items[index] for c, index in first.items() if c in claimed], now)
    winners = [items[index] for content, index in first.items() if content in claimed]
    windows = realert_windows(ruleset, winners, now)
    tx.lock_realert_windows((window.rule, window.key) for window in windows)
    recent = tx.alerted_since(windows)
    won = {index for content, index in first.items() if content in claimed}
    paths = {index: tx.claimed_path(item.article.content_hash) for index, item in enumerate(items) if index not in won}
    previous = tx.alerts_present(_previous_alerts(winners))
    keys = _story_keys(ruleset, winners)
    threads = {key: _thread(key[1], found) for key, found in tx.story_threads(keys).items()}
    seen = _seen(tx.story_seen(story for story, _ in keys), followups or Followups())
    plan = plan_batch(ruleset, items, won, paths, recent, now, send, previous, threads, seen, followups)
    tx.record_files(plan.ledger)
    tx.queue_alerts(plan.alerts)
    tx.queue_deliveries(plan.deliveries)
    return plan.results


def with_stories(
    tx: Transaction, stories: Stories, items: Sequence[Prepared], winners: Sequence[Prepared], now: float
) -> list[Prepared]:
    """The items, those claimed now (`winners`) with their stories assigned (and stored)."""
    refs = stories.assign(tx, winners, now)
    winning = {id(item) for item in winners}
    return [replace(item, story=refs.get(item.article.content_hash)) if id(item) in winning else item for item in items]


def _story_keys(ruleset: RuleSet, winners: Sequence[Prepared]) -> list[tuple[str, str]]:
    """The (story, rule) of the winners' matches of rules with a story mode that keeps a thread."""
    return [
        (item.story.story, draft.rule)
        for item in winners
        if item.story is not None
        for draft in item.drafts
        if ruleset.rule(draft.rule).story in MODES
    ]


def _thread(rule: str, found: StoryThread) -> Thread:
    return Thread(found.first, title(rule, found.path or ""), found.best, found.last_at)


def _seen(found: Mapping[str, tuple[set[str], set[str]]], followups: Followups) -> dict[str, Seen]:
    """Each story's rules matched and outlets, from the rules and paths of its stored alerts."""
    return {
        story: Seen(rules, {outlet for path in paths if (outlet := followups.outlet(path)) is not None})
        for story, (rules, paths) in found.items()
    }


def _previous_alerts(winners: Sequence[Prepared]) -> list[str]:
    """The ids the alerts of the same rules had for the previous versions of the winners' files."""
    return [
        make_id(draft.rule, item.story.previous_version)
        for item in winners
        if item.story is not None and item.story.previous_version is not None
        for draft in item.drafts
    ]


def _first_of_each_content(items: Sequence[Prepared]) -> dict[str, int]:
    """Each content's first article in the batch (by index): the one that may claim it."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.article.content_hash, index)
    return first


def realert_windows(ruleset: RuleSet, winners: Sequence[Prepared], now: float) -> list[Window]:
    """The realert windows that the matches of newly claimed articles fall in (rules with `realert`)."""
    windows = []
    for item in winners:
        for draft in item.drafts:
            rule = ruleset.rule(draft.rule)
            if rule.realert is not None:
                since = now - rule.realert.total_seconds()
                windows.append(Window(draft.rule, draft.realert_key, since, rule.realert_on_increase))
    return windows


def plan_batch(
    ruleset: RuleSet,
    items: Sequence[Prepared],
    won: set[int],
    claimed_paths: Mapping[int, str | None],
    recent: Alerted,
    now: float,
    send: bool,
    previous: Set[str] = frozenset(),
    threads: Mapping[tuple[str, str], Thread] | None = None,
    seen: Mapping[str, Seen] | None = None,
    followups: Followups | None = None,
) -> Plan:
    """Decide what a batch writes. `won`: the items (by index) that claimed their content now;
    `claimed_paths`: for the others, the path whose content claimed theirs; `recent`: the (rule, realert
    key) alerted within the rule's window before this batch, with the largest count alerted (for rules
    with `realert_on_increase`). An alert earlier in the batch counts too. `previous`: the stored alert
    ids among those of the previous versions of the items' files (their `previous_alert`). `threads`: per
    (story, rule) of a rule with a story mode, its thread there (`Transaction.story_threads`); `seen`: per
    story, the rules and outlets of its stored matched articles (monitor.notify.threads); `followups`: the
    watched folders and quiet period. The batch's own alerts are added to both as they are decided."""
    plan = Plan()
    sent: dict[tuple[str, str], float | None] = {}  # alerted earlier in this batch: not in the table yet
    story = _Threads(dict(threads or {}), dict(seen or {}), followups or Followups(), now)
    for index, item in enumerate(items):
        article = item.article
        same_name = index in won or claimed_paths.get(index) == article.path
        outcome = (
            ArticleOutcome.accepted if same_name else ArticleOutcome.duplicate
        )  # in the ledger: the file's content is claimed
        plan.ledger.append(LedgerEntry(article.path, *item.stat, outcome=outcome, content_hash=article.content_hash))
        if index not in won:
            plan.results.append(
                Queued(False, 0, 0, ArticleOutcome.unchanged if same_name else ArticleOutcome.duplicate)
            )
            continue
        queued = 0
        for draft in item.drafts:
            rule = ruleset.rule(draft.rule)
            before = _previous_alert(item.story, rule.name, previous)
            step = story.decide(rule, item, draft)
            alert, due = decide_alert(ruleset, rule, article, draft, now, send, sent, recent, item.story, before, step)
            if alert.suppressed and not step.held:  # by realert: the thread stays as the store will have it
                story.undo()
            plan.alerts.append(alert)
            plan.deliveries.extend(due)
            queued += len(due)
        story.add(item)
        plan.results.append(Queued(True, len(item.drafts), queued))
    return plan


@dataclass(frozen=True, slots=True)
class StoryStep:
    """What a story mode does with a match: hold it back, send it as the story's first alert (`first`, which
    a digest rule under `digest_updates` sends at once), or as a follow-up of `update_of` (`update`: what is
    new, as the payload's `update` field)."""

    held: bool = False
    first: bool = False
    update_of: str | None = None
    update: dict[str, object] | None = None


@dataclass(slots=True)
class _Threads:
    """A batch's story threads and what its stories have seen, updated as its alerts are decided."""

    threads: dict[tuple[str, str], Thread]
    seen: dict[str, Seen]
    followups: Followups
    now: float
    last: tuple[tuple[str, str], Thread | None] | None = None  # the thread the last `decide` changed, before

    def decide(self, rule: Rule, item: Prepared, draft: Draft) -> StoryStep:
        """The story mode's step for a match (nothing for `alert_each`, or without a story)."""
        self.last = None
        if rule.story not in MODES or item.story is None:
            return StoryStep()
        key = (item.story.story, rule.name)
        thread = self.threads.get(key)
        self.last = (key, thread)
        if thread is None:
            self.threads[key] = Thread(draft.alert_id, title(rule.name, item.article.path), draft.count, self.now)
            return StoryStep(first=True)
        seen = self.seen.get(item.story.story, Seen())
        outlet = self.followups.outlet(item.article.path)
        rules = [other.rule for other in item.drafts]
        update = follow_up(thread, seen, draft.count, rules, outlet, self.now, self.followups.quiet)
        if update is None:
            return StoryStep(held=True)
        self.threads[key] = sent_follow_up(thread, draft.count, self.now)
        return StoryStep(update_of=thread.first, update=update_fields(update, thread.title))

    def undo(self) -> None:
        """The last decided match was not sent after all (`realert` suppressed it): its thread as before."""
        if self.last is not None:
            key, thread = self.last
            if thread is None:
                self.threads.pop(key, None)
            else:
                self.threads[key] = thread
            self.last = None

    def add(self, item: Prepared) -> None:
        """The item's rules and outlet are now the story's (for the batch's later articles)."""
        if item.story is None or not item.drafts:
            return
        seen = self.seen.setdefault(item.story.story, Seen())
        seen.rules.update(draft.rule for draft in item.drafts)
        if (outlet := self.followups.outlet(item.article.path)) is not None:
            seen.outlets.add(outlet)


def _previous_alert(story: StoryRef | None, rule: str, stored: Set[str]) -> str | None:
    """The alert of `rule` for the previous version of the article's file, if it is stored."""
    if story is None or story.previous_version is None:
        return None
    alert_id = make_id(rule, story.previous_version)
    return alert_id if alert_id in stored else None


def _claim(item: Prepared, now: float) -> ArticleClaim:
    article = item.article
    date = article.date.isoformat()
    return ArticleClaim(article.content_hash, article.path, date, article.size, len(item.drafts), now)


def decide_alert(
    ruleset: RuleSet,
    rule: Rule,
    article: Article,
    draft: Draft,
    now: float,
    send: bool,
    sent: dict[tuple[str, str], float | None],
    recent: Alerted,
    story: StoryRef | None = None,
    previous_alert: str | None = None,
    step: StoryStep | None = None,
) -> tuple[NewAlert, list[NewDelivery]]:
    """The alert of a match of a newly claimed article, and its immediate deliveries: they refer to the
    alert, which holds the payload once. Suppressed when its realert window already had an alert (before
    this batch: `recent`; in it: `sent`, which this adds to), unless the rule has `realert_on_increase`
    and the match's count is larger than the window's largest so far; a digest rule's waits for its digest.
    `story`: the article's (None: stories are off), whose story, version and the alert of the same rule
    for the file's previous version (`previous_alert`) go into the payload; `step`: what the rule's story
    mode does with it (holds it back, or sends the story's first alert or a follow-up: `update_of` and
    `update` in its payload). Under `digest_updates` the story's first alert is sent at once."""
    step = step or StoryStep()
    key = draft.realert_key
    suppressed, payload = _realert(rule, draft, sent, recent)
    suppressed = suppressed or step.held
    if story is not None:
        payload = with_story(payload, story.story, story.version, previous_alert, step.update_of, step.update)
    if not suppressed:
        sent[(rule.name, key)] = draft.count
    digest = rule.digest_cron is not None and not (step.first and rule.story == "digest_updates")
    digest_pending = send and digest and not suppressed
    content = article.content_hash
    alert = NewAlert(
        draft.alert_id,
        rule.name,
        content,
        payload,
        key,
        suppressed,
        digest_pending,
        now,
        draft.count,
        story.story if story is not None else None,
    )
    if suppressed or not send or digest:
        return alert, []
    hooks = ruleset.targets(rule)
    return alert, [
        NewDelivery(make_id(draft.alert_id, hook), hook, DeliveryKind.alert, rule.name, now, alert_id=draft.alert_id)
        for hook in hooks
    ]


def _realert(
    rule: Rule, draft: Draft, sent: Mapping[tuple[str, str], float | None], recent: Alerted
) -> tuple[bool, str]:
    """Whether realert suppresses the draft, and its payload (with `count_increase` filled in for a rise)."""
    window = (rule.name, draft.realert_key)
    if rule.realert is None or (window not in sent and window not in recent):
        return False, draft.payload
    if not rule.realert_on_increase or draft.count is None:
        return True, draft.payload
    previous = _largest(sent.get(window), recent.get(window))
    if previous is not None and draft.count <= previous:
        return True, draft.payload
    return False, with_count_increase(draft.payload, previous, draft.count)


def _largest(*counts: float | None) -> float | None:
    present = [count for count in counts if count is not None]
    return max(present) if present else None


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
    until = slot.timestamp()
    with store.transaction() as tx:
        if not rule.send_empty and not tx.digest_waiting(rule.name, until):
            return 0
        if not tx.claim_digest(rule.name, slot.astimezone(UTC).isoformat(), now):
            return 0
        pending = tx.take_digest_alerts(rule.name, until)
        if not pending and not rule.send_empty:
            return 0
        queued = tx.queue_digest(digest_deliveries(ruleset, rule, slot, pending, budget, now))
        tx.mark_digested([alert_id for alert_id, _ in pending])
    return queued


def digest_deliveries(
    ruleset: RuleSet, rule: Rule, slot: datetime, pending: Sequence[tuple[str, int]], budget: int, now: float
) -> list[NewDelivery]:
    """A digest's deliveries: its alerts, each (id, payload size), in parts within `budget` bytes, one
    delivery per webhook and part, each part listing its alerts by id."""
    parts = digest_parts(rule.name, slot.isoformat(), list(pending), budget)
    return [
        NewDelivery(
            _digest_id(rule, hook, slot, number), hook, DeliveryKind.digest, rule.name, now, payload=dumps(part)
        )
        for hook in ruleset.targets(rule)
        for number, part in enumerate(parts, 1)
    ]


def _digest_id(rule: Rule, hook: str, slot: datetime, number: int) -> str:
    """Part 1 has the id a digest had before digests had parts; part k > 1 adds k."""
    parts = ("digest", rule.name, hook, slot.isoformat())
    return make_id(*parts) if number == 1 else make_id(*parts, str(number))


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
