"""Delivery under faults, end to end: the real daemon, a real receiver on 127.0.0.1, real files."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.cli.receiver import Received, Receiver
from tests.conftest import wait_until
from tests.helpers import by_id, cli, one_rule, write_articles

pytestmark = pytest.mark.e2e
FAST = ["0.2s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s", "0.4s"]


def test_receiver_down_then_back_gets_all_50_once(daemon_factory) -> None:
    receiver = Receiver().start()
    port = receiver.port
    receiver.stop()  # down: connections are refused
    daemon = daemon_factory(one_rule(f"http://127.0.0.1:{port}/hook", retry_schedule=FAST)).start()
    names = write_articles(daemon.watched, range(50))
    wait_until(lambda: "ConnectError" in daemon.log.read_text(), 30, "failed attempts while the receiver is down")
    back = Receiver(port=port).start()
    try:
        assert back.wait_for(lambda got: len(by_id(got)) >= 50, timeout=60), daemon.log.read_text()[-2000:]
        daemon.wait_settled(names)
    finally:
        back.stop()
    assert daemon.stop() == 0
    unique = by_id(back.received)
    assert len(unique) == 50
    assert {Path(p["data"]["article"]["path"]).name for p in unique.values()} == set(names)
    duplicates = len(back.received) - len(unique)
    assert duplicates <= 8  # at most the deliveries in flight (delivery.concurrency)


def test_kill_9_rounds_lose_nothing_and_duplicate_only_with_the_same_id(receiver: Receiver, daemon_factory) -> None:
    rounds, total = 3, 200
    daemon = daemon_factory(one_rule(receiver.url, retry_schedule=FAST), settings={"watch": {"settle": "0.2s"}})
    daemon.start()
    writer_done = threading.Event()

    def writer() -> None:
        for batch in range(20):
            write_articles(daemon.watched, range(batch * (total // 20), (batch + 1) * (total // 20)))
            time.sleep(0.1)  # a steady arrival over about two seconds, across the kills
        writer_done.set()

    threading.Thread(target=writer, daemon=True).start()
    rng = random.Random(20221)
    for _ in range(rounds):
        time.sleep(rng.uniform(0.2, 1.0))  # a random moment to crash: the scenario, not a wait
        daemon.kill()
        daemon.start()
    assert writer_done.wait(30)
    names = [f"article-{i:04d}.txt" for i in range(total)]
    daemon.wait_settled(names, timeout=90)
    assert daemon.stop() == 0
    per_article: dict[str, set[str]] = {}
    for request in receiver.received:
        name = Path(request.json()["data"]["article"]["path"]).name
        per_article.setdefault(name, set()).add(request.headers["webhook-id"])
    assert set(per_article) == set(names)  # every expected alert, nothing unexpected
    assert all(len(ids) == 1 for ids in per_article.values())  # a duplicate carries the same webhook-id
    duplicates = len(receiver.received) - len(per_article)
    print(f"kill -9 x{rounds}: {len(receiver.received)} requests for {total} alerts, {duplicates} duplicates")


def test_429_retry_after_is_honoured(receiver: Receiver, daemon_factory) -> None:
    answers = iter([(429, {"Retry-After": "2"})])
    receiver.respond = lambda _r: next(answers, (200, {}))
    daemon = daemon_factory(one_rule(receiver.url, retry_schedule=["0.1s", "0.1s"])).start()
    write_articles(daemon.watched, range(1))
    assert receiver.wait_for(lambda got: len(got) >= 2, timeout=30)
    assert daemon.stop() == 0
    first, second = receiver.received[:2]
    assert second.at - first.at >= 2.0
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_stalled_receiver_is_abandoned_at_the_timeout_and_retried(receiver: Receiver, daemon_factory) -> None:
    release = threading.Event()
    calls = Counter[str]()

    def respond(request: Received) -> tuple[int, dict[str, str]]:
        calls["n"] += 1
        if calls["n"] == 1:
            release.wait(10)  # stalls far beyond the webhook's 1 s timeout
        return 200, {}

    receiver.respond = respond
    daemon = daemon_factory(one_rule(receiver.url, timeout="1s", retry_schedule=["0.1s", "0.1s"])).start()
    write_articles(daemon.watched, range(1))
    started = time.monotonic()
    assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30)  # the retry, answered at once
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 8, "the attempt was not abandoned at the timeout"
    assert "timed out after 1s" in daemon.log.read_text()
    assert daemon.stop() == 0


def test_410_disables_the_webhook_until_enabled(receiver: Receiver, daemon_factory) -> None:
    receiver.respond = lambda _r: (410, {})
    daemon = daemon_factory(one_rule(receiver.url, retry_schedule=FAST)).start()
    first = write_articles(daemon.watched, range(1))
    wait_until(lambda: "webhook_disabled" in daemon.log.read_text(), 30, "the webhook to be disabled")
    write_articles(daemon.watched, range(1, 2))  # a second alert is queued and held
    wait_until(lambda: cli(daemon.config, "status", "--json").stdout.count('"disabled": true') == 1, 30, "status")
    assert len(receiver.received) == 1  # no attempts after the 410
    receiver.respond = lambda _r: (200, {})
    assert cli(daemon.config, "webhooks", "enable", "hook").returncode == 0
    assert receiver.wait_for(lambda got: len(by_id(got)) == 2, timeout=30)
    daemon.wait_settled([*first, "article-0001.txt"])
    assert daemon.stop() == 0


def test_redirect_is_not_followed_and_is_retried(receiver: Receiver, daemon_factory) -> None:
    answers = iter([(302, {"Location": "/elsewhere"})])
    receiver.respond = lambda _r: next(answers, (200, {}))
    daemon = daemon_factory(one_rule(receiver.url + "/hook", retry_schedule=FAST)).start()
    names = write_articles(daemon.watched, range(1))
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]


def test_a_receivers_cookie_is_never_sent_back(receiver: Receiver, daemon_factory) -> None:
    """Deliveries are no browser session (issue 19's leaner POST): a cookie the receiver sets with its answer
    is not sent with the next alert."""
    receiver.respond = lambda _r: (200, {"Set-Cookie": "session=kept; Path=/"})
    daemon = daemon_factory(one_rule(receiver.url + "/hook")).start()
    first = write_articles(daemon.watched, range(1))
    daemon.wait_settled(first)
    assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30)
    second = write_articles(daemon.watched, range(1, 2))
    daemon.wait_settled(second)
    assert receiver.wait_for(lambda got: len(got) >= 2, timeout=30)
    assert daemon.stop() == 0
    assert [r.headers.get("cookie") for r in receiver.received] == [None, None]


def test_wrong_secret_is_rejected_on_every_attempt(receiver: Receiver, daemon_factory) -> None:
    other = Webhook("whsec_" + "b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmctISE=")
    outcomes: list[bool] = []

    def respond(request: Received) -> tuple[int, dict[str, str]]:
        try:
            other.verify(request.body, request.headers)
        except WebhookVerificationError:
            outcomes.append(False)
            return 401, {}
        outcomes.append(True)
        return 200, {}

    receiver.respond = respond
    daemon = daemon_factory(one_rule(receiver.url, retry_schedule=FAST)).start()
    names = write_articles(daemon.watched, range(3))
    daemon.wait_settled(names)
    assert outcomes and not any(outcomes)
    dead = json.loads(cli(daemon.config, "deliveries", "--state", "dead", "--json").stdout)
    assert len(dead) == 3 and all(d["last_status"] == 401 for d in dead)
    # The receiver is fixed: dead deliveries go out again under their original ids.
    receiver.respond = lambda _r: (200, {})
    assert cli(daemon.config, "redeliver", "--all-dead").stdout.strip() == "queued 3 deliveries again"
    assert receiver.wait_for(lambda got: len(got) == len(outcomes) + 3, timeout=30)
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert {r.headers["webhook-id"] for r in receiver.received[-3:]} == {d["id"] for d in dead}


def test_digest_goes_out_once_per_time(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(one_rule(receiver.url, rule={"schedule": "*/2 * * * * *"}, retry_schedule=FAST)).start()
    names = write_articles(daemon.watched, range(3))
    daemon.wait_settled(names)
    assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30)
    write_articles(daemon.watched, range(3, 5))
    assert receiver.wait_for(lambda got: len(got) >= 2, timeout=30)
    daemon.wait_settled([f"article-{i:04d}.txt" for i in range(5)])
    assert daemon.stop() == 0
    counts = [r.json()["data"]["count"] for r in receiver.received]
    assert all(r.json()["type"] == "alert.digest" for r in receiver.received)
    assert sum(counts) == 5 and len(counts) == len(by_id(receiver.received))  # no empty digest, none twice


def test_digest_time_missed_while_down_is_sent_once_after_start(receiver: Receiver, daemon_factory) -> None:
    never = one_rule(receiver.url, rule={"schedule": "0 0 1 1 *"}, retry_schedule=FAST)
    daemon = daemon_factory(never).start()
    names = write_articles(daemon.watched, range(3))
    daemon.wait_settled(names)  # three alerts wait for their digest
    assert daemon.stop() == 0
    due = datetime.now(UTC) + timedelta(seconds=2)
    daemon.write_rules(one_rule(receiver.url, rule={"schedule": f"{due.second} * * * * *"}, retry_schedule=FAST))
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=0.5), 5, "the digest time to pass while down")
    daemon.start()
    assert receiver.wait_for(lambda got: len(got) >= 1, timeout=30)
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    daemon.start()  # and again: the missed time is not sent a second time
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert [r.json()["data"]["count"] for r in receiver.received] == [3]


def test_realert_window_records_but_does_not_send_again(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(one_rule(receiver.url, rule={"realert": "1h"})).start()
    names = write_articles(daemon.watched, range(1))
    daemon.wait_settled(names)
    names += write_articles(daemon.watched, range(1, 3))
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert len(receiver.received) == 1


def test_max_per_minute_makes_excess_wait_and_drops_none(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(one_rule(receiver.url, max_per_minute=3)).start()
    names = write_articles(daemon.watched, range(5))
    assert receiver.wait_for(lambda got: len(got) >= 3, timeout=30)
    waiting = json.loads(cli(daemon.config, "deliveries", "--state", "pending", "--json").stdout)
    assert len(waiting) == 2 and all(d["attempts"] == 0 for d in waiting)  # deferred, not attempted
    first = receiver.received[0].at
    assert all(d["due_at"] >= first + 59 for d in waiting)
    assert receiver.wait_for(lambda got: len(got) == 5, timeout=90)  # their turn comes a minute later
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert receiver.received[3].at - first >= 59
    assert len(by_id(receiver.received)) == 5


def test_slow_attempts_queued_past_their_lease_are_each_sent_once(receiver: Receiver, daemon_factory) -> None:
    """One attempt at a time, each 2.5 s: the last of eight waits about 17.5 s in line, longer than the
    shortest lease its 6 s timeout allows (16.5 s): leases held are renewed, and one that could run out before
    its attempt ends is given back, so no alert goes out twice (with both guards taken out, one did). Unlike
    tests/test_isolation.py's short-lease test, the wait in line outlasts the lease."""

    def slow(_request: Received) -> tuple[int, dict[str, str]]:
        time.sleep(2.5)  # the scenario: a receiver that takes its time
        return 200, {}

    receiver.respond = slow
    daemon = daemon_factory(
        one_rule(receiver.url, timeout="6s"), settings={"delivery": {"lease": "16.5s", "per_webhook": 1}}
    ).start()
    names = write_articles(daemon.watched, range(8))
    assert receiver.wait_for(lambda got: len(got) >= 8, timeout=90)
    daemon.wait_settled(names, timeout=30)
    assert daemon.stop() == 0
    ids = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(ids) == 8 and set(ids.values()) == {1}, ids


def test_alerts_of_articles_coming_one_at_a_time_are_handed_straight_to_the_deliverer(
    receiver: Receiver, daemon_factory
) -> None:
    """Issue 19: the deliveries an ingest batch queues are leased in its transaction and handed to the
    deliverer (no look in the outbox on the way to the webhook); each is sent once, under its id."""
    daemon = daemon_factory(one_rule(receiver.url)).start()
    names: list[str] = []
    for i in range(5):
        names += write_articles(daemon.watched, [i])
        assert receiver.wait_for(lambda got, n=i + 1: len(got) >= n, timeout=30), daemon.log.read_text()[-2000:]
    daemon.wait_settled(names)
    text = httpx.get(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5).text
    handed = [line for line in text.splitlines() if line.startswith("monitor_deliveries_handed_over_total ")]
    assert daemon.stop() == 0
    assert handed == ["monitor_deliveries_handed_over_total 5.0"], handed
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(ids) == len(set(ids)) == 5
    store = daemon.store()
    try:
        assert {d.state.value for d in store.deliveries()} == {"delivered"}
    finally:
        store.close()
