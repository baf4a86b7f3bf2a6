"""Alerts: the pure decisions (what a batch writes, realert, digest parts) without a database, and through
the store on a real SQLite file: one claim per content, stable ids, digests, realert."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import event, func, select

from monitor.config.rules import RuleSet, load_rules
from monitor.config.settings import LimitsSettings
from monitor.ingest.articles import parse_article, parse_date
from monitor.matching.engine import Hit, Match
from monitor.matching.facts import Count
from monitor.matching.stories import StoryRef
from monitor.notify import alerts as alerts_module
from monitor.notify.alerts import (
    digest_deliveries,
    flush_digest,
    latest_fire,
    make_id,
    plan_batch,
    prepare,
    queue_article,
    queue_many,
    realert_windows,
)
from monitor.notify.payload import alert_budget, json_size
from monitor.schedule import cron
from monitor.store import Store, Window
from monitor.store.schema import alerts, deliveries  # the rows as stored

HOOKS = {"a": {"url": "http://127.0.0.1:9/a"}, "b": {"url": "http://127.0.0.1:9/b"}}


def ruleset(tmp_path: Path, **rule: Any) -> RuleSet:
    data = {"version": 1, "webhooks": HOOKS, "rules": [{"name": "hv", "query": "*hoogverraad*", **rule}]}
    YAML(typ="safe").dump(data, tmp_path / "rules.yaml")
    return load_rules(tmp_path / "rules.yaml")


def queue(
    store: Store, rules: RuleSet, path: str, text: str, now: float = 1000.0, send: bool = True, **limits: Any
) -> Any:
    article = parse_article(path, text, len(text))
    matches = rules.engine.match(article)
    return queue_article(store, rules, article, matches, (len(text), 1), now, send, LimitsSettings(**limits))


def rows(store: Store, table: Any) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(table)).mappings())


def test_an_immediate_match_queues_one_delivery_per_webhook_with_stable_ids(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    queued = queue(store, rules, "x.txt", "date 2022-01 Verdacht van hoogverraad.")
    assert (queued.claimed, queued.alerts, queued.deliveries) == (True, 1, 2)
    found = rows(store, deliveries)
    alert_id = make_id("hv", rows(store, alerts)[0]["content_hash"])
    assert {d["id"] for d in found} == {make_id(alert_id, "a"), make_id(alert_id, "b")}
    assert {d["state"] for d in found} == {"pending"}


def test_the_same_text_under_another_name_is_claimed_once(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    text = "date 2022-01 Verdacht van hoogverraad."
    assert queue(store, rules, "x.txt", text).claimed
    again = queue(store, rules, "copy.txt", text)
    assert (again.claimed, again.deliveries) == (False, 0)
    assert len(rows(store, deliveries)) == 2
    assert store.seen_many(["copy.txt"])["copy.txt"][:2] == (len(text), 1)


def test_send_false_records_alerts_without_deliveries(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path, schedule="0 * * * *")
    queue(store, rules, "x.txt", "date 2022-01 hoogverraad", send=False)
    assert len(rows(store, alerts)) == 1 and not rows(store, alerts)[0]["digest_pending"]
    assert rows(store, deliveries) == []


@pytest.mark.parametrize(
    ("key", "second", "sent"),
    [
        ("rule", "date 2022-02 Weer hoogverraad.", 1),
        ("date", "date 2022-02 Weer hoogverraad.", 2),
        ("date", "date 2022-01 Weer hoogverraad.", 1),
        ("term", "date 2022-01 Een hoogverraadzaak.", 2),
        ("term", "date 2022-02 Weer HOOGVERRAAD.", 1),
    ],
    ids=["rule-suppresses", "date-differs", "date-same", "term-differs", "term-same-casefolded"],
)
@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "in-one-batch"])
def test_realert_keys(store: Store, tmp_path: Path, key: str, second: str, sent: int, together: bool) -> None:
    rules = ruleset(tmp_path, realert="1h", realert_key=key, notify=["a"])
    first = "date 2022-01 Over hoogverraad."
    if together:  # the second sees the first although it is not in the table yet
        items = [item(rules, "1.txt", first), item(rules, "2.txt", second)]
        with store.transaction() as tx:
            queued = queue_many(tx, rules, items, now=1100.0)
        assert [q.deliveries for q in queued] == [1, sent - 1]
    else:
        queue(store, rules, "1.txt", first, now=1000.0)
        queue(store, rules, "2.txt", second, now=1100.0)
    assert len(rows(store, deliveries)) == sent
    assert len(rows(store, alerts)) == 2  # recorded either way


def item(rules: RuleSet, path: str, text: str) -> Any:
    article = parse_article(path, text, len(text))
    return (article, rules.engine.match(article), (len(text), 1))


def test_realert_window_ends(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path, realert="1h", notify=["a"])
    queue(store, rules, "1.txt", "date 2022-01 hoogverraad", now=1000.0)
    queue(store, rules, "2.txt", "date 2022-01 weer hoogverraad", now=1000.0 + 3601)
    assert len(rows(store, deliveries)) == 2


def test_digest_flush_is_once_per_slot_and_takes_only_alerts_up_to_it(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path, schedule="0 * * * *", notify=["a"])
    rule = rules.rule("hv")
    slot = datetime(2026, 1, 1, 12, tzinfo=UTC)
    queue(store, rules, "1.txt", "date 2022-01 hoogverraad een", now=slot.timestamp() - 60)
    queue(store, rules, "2.txt", "date 2022-01 hoogverraad twee", now=slot.timestamp() + 60)
    assert rows(store, deliveries) == []  # a digest rule sends nothing at once
    assert flush_digest(store, rules, rule, slot) == 1
    assert flush_digest(store, rules, rule, slot) == 0  # the same slot again: nothing new
    [digest] = store.deliveries()
    assert digest.kind == "digest" and digest.id == make_id("digest", "hv", "a", slot.isoformat())
    assert (digest.payload["count"], digest.payload["part"], digest.payload["parts"]) == (1, 1, 1)
    assert [alert["article"]["path"] for alert in digest.payload["alerts"]] == ["1.txt"]
    assert flush_digest(store, rules, rule, slot + timedelta(hours=1)) == 1  # the later alert, next slot
    assert flush_digest(store, rules, rule, slot + timedelta(hours=2)) == 0  # empty: not sent


def test_an_alert_is_stored_once_and_its_deliveries_refer_to_it(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    queue(store, rules, "x.txt", "date 2022-01 Verdacht van hoogverraad.")
    [alert] = rows(store, alerts)
    assert [(d["alert_id"], d["payload"]) for d in rows(store, deliveries)] == [(alert["id"], None)] * 2
    handed = store.take_due(2000.0, 10, 60.0)
    assert [d.payload for d in handed] == [json.loads(alert["payload"])] * 2
    assert handed[0].payload["hits_total"] == 1 and handed[0].payload["truncated"] is False


def test_a_hostile_article_costs_the_state_one_bounded_payload(store: Store, tmp_path: Path) -> None:
    """The issue's article, 100 KB of it: 8,000 hits. One alert payload within the cap, none in the outbox."""
    rules = ruleset(tmp_path)
    queue(store, rules, "x.txt", "date 2022-01 " + "hoogverraad " * 8000)
    [alert] = rows(store, alerts)
    payload = json.loads(alert["payload"])
    assert len(alert["payload"].encode()) <= alert_budget(LimitsSettings())
    assert (payload["hits_total"], len(payload["hits"]), payload["truncated"]) == (8000, 20, True)
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.sum(func.length(deliveries.c.payload)))).scalar()
    assert stored is None, "the outbox holds no copy of it"


def test_outbox_rows_written_before_revision_0003_still_deliver(store: Store) -> None:
    """An alert delivery with its payload and no alert_id, a digest with its alerts in full."""
    alert = {"alert_id": "msg_old", "rule": "hv", "hits": [{"term": "hoogverraad", "snippet": "[[hoogverraad]]"}]}
    digest = {"rule": "hv", "slot": "2025-01-01T12:00:00+00:00", "count": 1, "alerts": [alert]}
    row = {"webhook": "a", "rule": "hv", "state": "pending", "attempts": 0, "due_at": 1.0, "created_at": 1.0}
    with store.begin() as conn:
        conn.execute(deliveries.insert().values(id="d1", kind="alert", payload=json.dumps(alert), **row))
        conn.execute(deliveries.insert().values(id="d2", kind="digest", payload=json.dumps(digest), **row))
    assert {d.id: d.payload for d in store.take_due(2.0, 10, 60.0)} == {"d1": alert, "d2": digest}
    assert {d.id: d.payload for d in store.deliveries()} == {"d1": alert, "d2": digest}


def test_a_digest_over_the_cap_goes_out_in_parts_with_every_alert_once(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path, schedule="0 * * * *")
    slot = datetime(2026, 1, 1, 12, tzinfo=UTC)
    text = "date 2022-01 nummer {}: " + "hoogverraad " * 30
    for n in range(40):
        queue(store, rules, f"{n}.txt", text.format(n), now=slot.timestamp() - 60, max_payload_bytes=4096)
    limits = LimitsSettings(max_payload_bytes=4096)
    queued = flush_digest(store, rules, rules.rule("hv"), slot, limits=limits)
    assert flush_digest(store, rules, rules.rule("hv"), slot, limits=limits) == 0
    sent = store.deliveries()
    parts = sent[0].payload["parts"]
    assert parts > 1 and queued == len(sent) == 2 * parts
    for hook in "ab":
        mine = sorted((d for d in sent if d.webhook == hook), key=lambda d: d.payload["part"])
        base = ("digest", "hv", hook, slot.isoformat())
        assert [d.id for d in mine] == [make_id(*base)] + [make_id(*base, str(k)) for k in range(2, parts + 1)]
        paths = [alert["article"]["path"] for d in mine for alert in d.payload["alerts"]]
        assert sorted(paths) == sorted(f"{n}.txt" for n in range(40)), "every alert once"
        assert all(d.payload["total"] == 40 and d.payload["count"] == len(d.payload["alerts"]) for d in mine)
        assert max(json_size(d.payload) for d in mine) <= 4096


@contextmanager
def watching_transactions(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Record, for every payload built, whether a write transaction was open at that moment."""
    inside = [False]
    built: list[bool] = []
    begin, payload = store.begin, alerts_module.alert_payload

    @contextmanager
    def begin_() -> Iterator[Any]:
        inside[0] = True
        try:
            with begin() as conn:
                yield conn
        finally:
            inside[0] = False

    def payload_(*args: Any, **kwargs: Any) -> Any:
        built.append(inside[0])
        return payload(*args, **kwargs)

    monkeypatch.setattr(store, "begin", begin_)
    monkeypatch.setattr(alerts_module, "alert_payload", payload_)
    yield built


def test_payloads_are_built_before_the_write_transaction(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = ruleset(tmp_path)
    with watching_transactions(store, monkeypatch) as built:
        queue(store, rules, "x.txt", "date 2022-01 Verdacht van hoogverraad.")
    assert built == [False]


def test_empty_digest_only_when_asked(store: Store, tmp_path: Path) -> None:
    rules = ruleset(tmp_path, schedule="0 * * * *", send_empty=True)
    assert flush_digest(store, rules, rules.rule("hv"), datetime(2026, 1, 1, tzinfo=UTC)) == 2


@pytest.mark.parametrize(
    ("expression", "now", "expected"),
    [
        ("0 */2 * * *", datetime(2026, 1, 1, 13, 59, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("0 */2 * * *", datetime(2026, 1, 1, 14, 0, tzinfo=UTC), datetime(2026, 1, 1, 14, tzinfo=UTC)),
        ("30 7 * * mon", datetime(2026, 1, 8, 9, tzinfo=UTC), datetime(2026, 1, 5, 7, 30, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2026, 1, 1, 0, 0, 25, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 20, tzinfo=UTC)),
        ("0 0 1 1 *", datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
    ids=["two-hourly", "on-the-dot", "weekly", "seconds-field", "yearly"],
)
def test_latest_fire(expression: str, now: datetime, expected: datetime) -> None:
    assert latest_fire(cron(expression, UTC), now) == expected


def test_a_long_term_key_is_stored_as_its_digest_and_still_throttles(store: Store, tmp_path: Path) -> None:
    """20 hits of 159 characters (not compressible) make a key of 3 KB, past PostgreSQL's limit on an index entry."""
    rules = ruleset(tmp_path, realert="1h", realert_key="term", notify=["a"])
    words = " ".join(f"hoogverraad{hashlib.sha512(bytes([k])).hexdigest()}{k:020d}" for k in range(20))
    queue(store, rules, "1.txt", f"date 2022-01 Een: {words}", now=1000.0)
    queue(store, rules, "2.txt", f"date 2022-01 Twee: {words}", now=1100.0)
    keys = [row["realert_key"] for row in rows(store, alerts)]
    assert len(set(keys)) == 1 and keys[0].startswith("sha256:")
    assert len(keys[0].encode()) <= alerts_module.REALERT_KEY_BYTES
    assert len(rows(store, deliveries)) == 1  # the second, with the same terms, is throttled


@pytest.mark.parametrize("on_increase", [False, True], ids=["realert", "realert-on-increase"])
def test_the_periodic_queries_use_their_indexes(store: Store, tmp_path: Path, on_increase: bool) -> None:
    """SQLite's plans of the statements that the digest flush, the start-up catch-up and the realert lookup
    (with the largest count, for realert_on_increase) really run: each searches its index, none scans the alerts."""
    rules = ruleset(tmp_path, schedule="0 * * * *", realert="1h", realert_on_increase=on_increase, notify=["a"])
    slot = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM alerts" in statement and not statement.lstrip().startswith(("INSERT", "UPDATE")):
            ran.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        queue(store, rules, "1.txt", "date 2022-01 hoogverraad een", now=slot.timestamp() - 60)  # realert lookup
        store.oldest_pending()
        flush_digest(store, rules, rules.rule("hv"), slot)  # the check, then the pending alerts
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    with store.engine.connect() as conn:
        plans = {sql: " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", p)) for sql, p in ran}
    pending = [plan for sql, plan in plans.items() if "digest_pending" in sql]
    realert = [plan for sql, plan in plans.items() if "realert_key" in sql]
    assert len(pending) == 3 and len(realert) == 1, plans
    assert all("USING INDEX alerts_digest_pending" in plan for plan in pending), pending
    assert "USING COVERING INDEX alerts_realert" in realert[0] or "USING INDEX alerts_realert" in realert[0], realert


def prepared(rules: RuleSet, path: str, text: str) -> Any:
    article = parse_article(path, text, len(text))
    return prepare(rules, article, rules.engine.match(article), (len(text), 1), None)


def test_a_batch_plan_alerts_the_winners_and_records_every_file(tmp_path: Path) -> None:
    """Without a database: the article that claimed its content gets an alert and a delivery per webhook;
    a copy under another name is a duplicate, the same name read again is unchanged; all are in the ledger."""
    rules = ruleset(tmp_path)
    items = [prepared(rules, name, "date 2022-01 hoogverraad") for name in ("x.txt", "copy.txt", "x.txt")]
    plan = plan_batch(rules, items, {0}, {1: "x.txt", 2: "x.txt"}, {}, 1000.0, True)
    assert [(q.claimed, q.outcome, q.deliveries) for q in plan.results] == [
        (True, "accepted", 2),
        (False, "duplicate", 0),
        (False, "unchanged", 0),
    ]
    ledger = [(entry.path, entry.outcome) for entry in plan.ledger]
    assert ledger == [("x.txt", "accepted"), ("copy.txt", "duplicate"), ("x.txt", "accepted")]
    [alert] = plan.alerts
    assert (alert.suppressed, alert.digest_pending, alert.created_at) == (False, False, 1000.0)
    assert {d.id for d in plan.deliveries} == {make_id(alert.id, "a"), make_id(alert.id, "b")}
    assert all(d.alert_id == alert.id and d.payload is None and d.kind == "alert" for d in plan.deliveries)


@pytest.mark.parametrize(
    ("recent", "send", "schedule", "expected"),
    [
        (False, True, None, (False, False, 1)),
        (True, True, None, (True, False, 0)),
        (False, False, None, (False, False, 0)),
        (False, True, "0 * * * *", (False, True, 0)),
        (True, True, "0 * * * *", (True, False, 0)),
    ],
    ids=["alerts", "realert-suppresses", "record-only", "digest-waits", "suppressed-digest-does-not-wait"],
)
def test_realert_and_digest_decisions(
    tmp_path: Path, recent: bool, send: bool, schedule: str | None, expected: tuple[bool, bool, int]
) -> None:
    """Without a database: (suppressed, waits for a digest, immediate deliveries) of one match."""
    rules = ruleset(tmp_path, realert="1h", notify=["a"], **({"schedule": schedule} if schedule else {}))
    item = prepared(rules, "x.txt", "date 2022-01 hoogverraad")
    [window] = realert_windows(rules, [item], 5000.0)
    assert window == Window("hv", "", 5000.0 - 3600)
    plan = plan_batch(rules, [item], {0}, {}, {("hv", ""): None} if recent else {}, 5000.0, send)
    [alert] = plan.alerts
    assert (alert.suppressed, alert.digest_pending, len(plan.deliveries)) == expected


def test_a_second_match_of_a_window_in_one_batch_is_suppressed(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, realert="1h", notify=["a"])
    items = [prepared(rules, name, f"date 2022-01 hoogverraad {name}") for name in ("1.txt", "2.txt")]
    plan = plan_batch(rules, items, {0, 1}, {}, {}, 1000.0, True)
    assert [alert.suppressed for alert in plan.alerts] == [False, True]
    assert [q.deliveries for q in plan.results] == [1, 0]


def test_digest_deliveries_split_in_parts_for_every_webhook(tmp_path: Path) -> None:
    """Without a database: one delivery per webhook and part, each part listing its alerts by id."""
    rules = ruleset(tmp_path, schedule="0 * * * *")
    slot = datetime(2026, 1, 1, 12, tzinfo=UTC)
    pending = [(f"msg_{n}", 1500) for n in range(6)]
    rows = digest_deliveries(rules, rules.rule("hv"), slot, pending, 4096, 7.0)
    parts = [json.loads(row.payload or "") for row in rows if row.webhook == "a"]
    assert len(parts) > 1 and len(rows) == 2 * len(parts)
    assert [alert_id for part in parts for alert_id in part["alert_ids"]] == [alert_id for alert_id, _ in pending]
    assert rows[0].id == make_id("digest", "hv", "a", slot.isoformat()) and rows[0].created_at == 7.0
    assert digest_deliveries(rules, rules.rule("hv"), slot, [], 4096, 7.0)[0].payload is not None  # send_empty


# realert_on_increase. Until the engine sets hit counts, the matches are built here with their counts.
NONE, VAGUE = None, "vague"
NO_FIELD = "no count_increase field"


def tolled(rules: RuleSet, name: str, value: float | str | None, now_text: str = "") -> Any:
    """An article whose match has one hit with this count: a number, VAGUE ("honderden") or NONE."""
    text = f"date 2022-01 Het dodental bij hoogverraad {name} {now_text}"
    article = parse_article(name, text, len(text))
    count = None if value is None else Count(None, "vague", "honderden") if value == VAGUE else Count(value, None, "")
    hit = Hit("*hoogverraad*", "hoogverraad", 18, 29, "[[hoogverraad]]", count=count)
    return prepare(rules, article, [Match("hv", (hit,), "*hoogverraad*")], (len(text), 1), None)


def increases(plan: Any) -> list[Any]:
    return [json.loads(alert.payload).get("count_increase", NO_FIELD) for alert in plan.alerts]


def rise(previous: float | None, value: float) -> dict[str, Any]:
    return {"previous": previous, "value": value}


@pytest.mark.parametrize(
    ("on_increase", "recent", "counts", "suppressed", "expected"),
    [
        (True, None, [164], [False], [None]),
        (True, 164.0, [347], [False], [rise(164, 347)]),
        (True, 164.0, [120], [True], [None]),
        (True, 164.0, [164], [True], [None]),
        (True, 164.0, [NONE], [True], [None]),
        (True, 164.0, [VAGUE], [True], [None]),
        (True, "alerted without a count", [164], [False], [rise(None, 164)]),
        (True, "alerted without a count", [NONE], [True], [None]),
        (
            True,
            None,
            [164, 120, 347, 200, 347.5],
            [False, True, False, True, False],
            [None, None, rise(164, 347), None, rise(347, 347.5)],
        ),
        (True, 300.0, [200, 350], [True, False], [None, rise(300, 350)]),
        (True, None, [NONE, 5], [False, False], [None, rise(None, 5)]),
        (False, 164.0, [347], [True], [NO_FIELD]),
        (False, None, [164, 347], [False, True], [NO_FIELD, NO_FIELD]),
    ],
    ids=[
        "first-in-window",
        "rise",
        "fall",
        "equal",
        "no-count",
        "vague-count",
        "count-after-countless",
        "no-count-after-countless",
        "in-one-batch",
        "batch-after-recent",
        "batch-countless-then-count",
        "option-off",
        "option-off-batch",
    ],
)
def test_realert_on_increase_decisions(
    tmp_path: Path, on_increase: bool, recent: Any, counts: list[Any], suppressed: list[bool], expected: list[Any]
) -> None:
    """Without a database: a match in a window that had an alert goes out only when its count is larger
    than the largest alerted in the window (before the batch: `recent`; earlier in it), with both numbers."""
    rules = ruleset(tmp_path, realert="1h", realert_on_increase=on_increase, notify=["a"])
    items = [tolled(rules, f"{n}.txt", value) for n, value in enumerate(counts)]
    alerted = {} if recent is None else {("hv", ""): None if isinstance(recent, str) else recent}
    plan = plan_batch(rules, items, set(range(len(items))), {}, alerted, 1000.0, True)
    assert [alert.suppressed for alert in plan.alerts] == suppressed
    assert increases(plan) == expected
    assert [q.deliveries for q in plan.results] == [0 if s else 1 for s in suppressed]
    stored = [None if v in (NONE, VAGUE) else float(v) for v in counts]
    assert [alert.count_value for alert in plan.alerts] == stored, "every alert keeps its count, suppressed or not"


def test_realert_windows_ask_for_counts_only_with_realert_on_increase(tmp_path: Path) -> None:
    for on_increase in (False, True):
        rules = ruleset(tmp_path, realert="1h", realert_on_increase=on_increase)
        [window] = realert_windows(rules, [tolled(rules, "x.txt", 164)], 5000.0)
        assert window == Window("hv", "", 1400.0, on_increase)


def test_realert_on_increase_through_the_store(store: Store, tmp_path: Path) -> None:
    """One article at a time on a real SQLite file: the counts are stored and read back per window; the
    window's end starts over (the next alert is not an increase)."""
    rules = ruleset(tmp_path, realert="1h", realert_on_increase=True, notify=["a"])
    for n, (value, now) in enumerate([(164, 1000.0), (120, 1100.0), (347, 1200.0), (300, 1300.0), (200, 4900.0)]):
        with store.transaction() as tx:
            alerts_module.queue_prepared(tx, rules, [tolled(rules, f"{n}.txt", value)], now)
    stored = sorted(rows(store, alerts), key=lambda row: row["created_at"])
    assert [(row["count_value"], row["suppressed"]) for row in stored] == [
        (164.0, False),
        (120.0, True),
        (347.0, False),
        (300.0, True),
        (200.0, False),  # 3,700 s after the first, 3,700 after 347: a new window
    ]
    sent = [json.loads(row["payload"])["count_increase"] for row in stored if not row["suppressed"]]
    assert sent == [None, {"previous": 164, "value": 347}, None]
    assert len(rows(store, deliveries)) == 3


def test_a_follow_up_that_realert_suppresses_leaves_the_story_thread_as_it_was(tmp_path: Path) -> None:
    """A count rise that `realert` suppresses (same date) was not sent: a later article of another date
    with that count is still a rise for the story's thread, and goes out as a follow-up of the first."""
    rules = ruleset(tmp_path, realert="6h", realert_key="date", story="first_then_updates")
    items = []
    for name, value, date in [("a", 76, "2022-01-05"), ("b", 500, "2022-01-05"), ("c", 500, "2022-01-06")]:
        item = tolled(rules, name, value)
        article = replace(item.article, date=parse_date(date))
        drafts = tuple(replace(draft, realert_key=date) for draft in item.drafts)
        items.append(replace(item, article=article, drafts=drafts, story=StoryRef("story_x", 1, name == "a")))
    plan = plan_batch(rules, items, {0, 1, 2}, {}, {}, 1000.0, True)
    sent = [json.loads(alert.payload) for alert in plan.alerts]
    assert [alert.suppressed for alert in plan.alerts] == [False, True, False]
    assert sent[2]["update_of"] == plan.alerts[0].id and sent[2]["update"]["reasons"] == ["count"]
    assert sent[2]["update"]["count"] == {"previous": 76, "value": 500}
