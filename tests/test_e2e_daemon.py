"""End to end through the real daemon: a subprocess, a real watched folder, real SQLite, a real receiver."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.cli.receiver import Received, Receiver
from tests.conftest import SECRET, SEED_RULES, SEEDS, copy_seeds, shipped_rules

pytestmark = pytest.mark.e2e


def alerts_by_article(received: list[Received]) -> Counter[tuple[str, str]]:
    """(article file name, rule) -> how many deliveries, deduplicated by webhook-id."""
    unique = {r.headers["webhook-id"]: r.json()["data"] for r in received}
    return Counter((Path(d["article"]["path"]).name, d["rule"]) for d in unique.values())


def expected_alerts(names: list[str]) -> Counter[tuple[str, str]]:
    return Counter((name, rule) for name in names for rule in SEED_RULES[name])


def test_seeds_alert_exactly_the_expected_rules_signed(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url + "/hook")).start()
    names = copy_seeds(daemon.watched)
    want = expected_alerts(names)
    assert receiver.wait_for(lambda got: len(got) >= sum(want.values()), timeout=30), daemon.log.read_text()[-2000:]
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == want
    assert len(receiver.received) == sum(want.values())  # no duplicates on a clean run
    verifier = Webhook(SECRET)
    for request in receiver.received:
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "alert.matched"
        hits = payload["data"]["hits"]
        assert hits and all("[[" in hit["snippet"] for hit in hits)
        text = (SEEDS / Path(payload["data"]["article"]["path"]).name).read_text(encoding="utf-8")
        body = text.split("2022-01", 1)[1].lstrip(" ")
        assert all(body[h["start"] : h["end"]] == h["text"] for h in hits)


def test_files_written_while_stopped_alert_once_after_start(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    assert daemon.stop() == 0
    names = copy_seeds(daemon.watched)
    daemon.start()
    daemon.wait_settled(names)
    assert alerts_by_article(receiver.received) == expected_alerts(names)
    assert daemon.stop() == 0
    # A second restart finds everything in the ledger: nothing is read or sent again.
    before = len(receiver.received)
    daemon.start()
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert len(receiver.received) == before
    assert daemon.log.read_text().count('"event": "article_read"') == len(names)


def test_same_content_under_a_second_name_alerts_once(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    name = "003_1649dd4e54c446b5.txt"
    shutil.copyfile(SEEDS / name, daemon.watched / name)
    daemon.wait_settled([name])
    shutil.copyfile(SEEDS / name, daemon.watched / "copy-of-003.txt")
    daemon.wait_settled([name, "copy-of-003.txt"])
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == expected_alerts([name])
    assert '"outcome": "duplicate"' in daemon.log.read_text()


def test_changed_content_is_a_new_version(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    path = daemon.watched / "story.txt"
    path.write_text("date 2022-01-08 Masimov opgepakt op verdenking van hoogverraad.", encoding="utf-8")
    daemon.wait_settled(["story.txt"])
    path.write_text("date 2022-01-08 Update: het dodental is opgelopen tot 164.", encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) >= 2, timeout=20)
    daemon.wait_settled(["story.txt"])
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == {("story.txt", "hoogverraad"): 1, ("story.txt", "dodental"): 1}


def test_503_twice_then_200_is_delivered_with_one_webhook_id(receiver: Receiver, daemon_factory) -> None:
    answers = iter([503, 503])
    receiver.respond = lambda _request: (next(answers, 200), {})
    rules = shipped_rules(receiver.url, retry_schedule=["0.3s", "0.3s", "0.3s"])
    rules["rules"] = [r for r in rules["rules"] if r["name"] == "dodental"]
    daemon = daemon_factory(rules).start()
    shutil.copyfile(SEEDS / "003_1649dd4e54c446b5.txt", daemon.watched / "003.txt")
    assert receiver.wait_for(lambda got: len(got) >= 3, timeout=30), daemon.log.read_text()[-2000:]
    daemon.wait_settled(["003.txt"])
    assert daemon.stop() == 0
    attempts = receiver.received
    assert len(attempts) == 3
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    verifier = Webhook(SECRET)
    for request in attempts:
        verifier.verify(request.body, request.headers)
    assert attempts[2].at - attempts[1].at >= 0.3 * 0.8  # the schedule's wait, less the jitter


def test_slow_writer_gives_one_alert_from_the_whole_text(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    first = "date 2022-01-08 In Almaty zijn volgens de autoriteiten honderden mensen gearresteerd. "
    second = "Staatsmedia meldden later dat het dodental is opgelopen tot 164."
    path = daemon.watched / "slow.txt"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(first)
        handle.flush()
        os.fsync(handle.fileno())
        time.sleep(1.5)  # the writer pauses longer than the settle time: that is the scenario, not a wait
        handle.write(second)
    daemon.wait_settled(["slow.txt"])
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == {("slow.txt", "arrestaties"): 1, ("slow.txt", "dodental"): 1}
    assert len(receiver.received) == 2


def test_rsync_style_rename_alerts_once_under_the_final_name(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    temporary = daemon.watched / ".003_1649dd4e54c446b5.txt.Xa81Qz"
    shutil.copyfile(SEEDS / "003_1649dd4e54c446b5.txt", temporary)
    temporary.rename(daemon.watched / "003_1649dd4e54c446b5.txt")
    daemon.wait_settled(["003_1649dd4e54c446b5.txt"])
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == expected_alerts(["003_1649dd4e54c446b5.txt"])
    assert len(receiver.received) == 2
    assert ".Xa81Qz" not in daemon.log.read_text()


def test_bad_article_is_recorded_and_skipped(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    (daemon.watched / "no-date.txt").write_text("Geen datum, wel hoogverraad.", encoding="utf-8")
    (daemon.watched / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (daemon.watched / "empty.txt").write_bytes(b"")
    names = copy_seeds(daemon.watched)
    daemon.wait_settled([*names, "no-date.txt", "binary.txt", "empty.txt"])
    assert daemon.stop() == 0
    assert alerts_by_article(receiver.received) == expected_alerts(names)
    log = daemon.log.read_text()
    for name, code in (("no-date.txt", "no_date"), ("binary.txt", "binary"), ("empty.txt", "empty")):
        assert f"{name}" in log and f'"code": "{code}"' in log
