"""Story modes end to end (issue 18, "Rules decide what a story does"): the real daemon, a real receiver on
127.0.0.1, real files. `first_then_updates` follows up a new matched rule and a new outlet after a quiet
period; `digest_updates` sends the first alert at once and gathers the follow-ups into the rule's digest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import SECRET, wait_until
from tests.story_texts import QUAKE_A
from tests.test_e2e_stories import report

pytestmark = pytest.mark.e2e
STORY_DATA = Path(__file__).parent / "data" / "stories"
MOURNING = "President Erdogan declared seven days of national mourning."


def rules(receiver: Receiver, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "webhooks": {"hook": {"url": receiver.url, "secret": SECRET}}, "rules": list(rules)}


def stories(**options: Any) -> dict[str, Any]:
    return {"stories": {"enabled": True, **options}}


def received(receiver: Receiver, rule: str | None = None) -> list[dict[str, Any]]:
    """The alerts received (each once, by webhook-id), in order; only `rule`'s when given."""
    by_id = {request.headers["webhook-id"]: request.json() for request in receiver.received}
    alerts = [body["data"] for body in by_id.values() if body["type"] == "alert.matched"]
    return [alert for alert in alerts if rule is None or alert["rule"] == rule]


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.part"  # written whole, then renamed in
    temporary.write_text(f"date 2023-02-06\n{text}\n", encoding="utf-8")
    temporary.replace(path)


def test_first_then_updates_follows_up_a_new_matched_rule(receiver: Receiver, daemon_factory) -> None:
    """Three reports of one event: the second is the first to match `mourning` too, which is news for the
    story, so `quake` follows up (naming its first alert and the new rule); the third brings nothing new."""
    config = rules(
        receiver,
        {"name": "quake", "query": "earthquake", "story": "first_then_updates"},
        {"name": "mourning", "query": "mourning"},
    )
    daemon = daemon_factory(config, settings=stories()).start()
    write(daemon.watched, "first.txt", QUAKE_A.replace(MOURNING, "Schools were closed across the region."))
    wait_until(lambda: len(received(receiver)) >= 1, 30, "the first alert")
    write(daemon.watched, "second.txt", QUAKE_A)
    wait_until(lambda: len(received(receiver)) >= 3, 30, "the follow-up and the mourning alert")
    write(daemon.watched, "third.txt", QUAKE_A + " Schools were closed across the region.")
    daemon.wait_settled(["first.txt", "second.txt", "third.txt"])
    wait_until(lambda: len(received(receiver, "mourning")) >= 2, 30, "the second mourning alert")
    assert daemon.stop() == 0
    quake = received(receiver, "quake")
    assert [alert["article"]["path"].rsplit("/", 1)[-1] for alert in quake] == ["first.txt", "second.txt"]
    first, follow_up = quake
    assert first["update_of"] is None and first["update"] is None
    assert (follow_up["story"], follow_up["update_of"]) == (first["story"], first["alert_id"])
    assert follow_up["update"] == {
        "reasons": ["rule"],
        "count": None,
        "rules": ["mourning"],
        "rules_total": 1,
        "outlet": None,
        "title": "quake: first.txt",
    }


def test_first_then_updates_follows_up_a_new_outlet_after_a_quiet_period(receiver: Receiver, daemon_factory) -> None:
    """Outlets are the folders beneath the watched one. A second outlet within `stories.quiet` of the first
    alert is held back; a third one after the rule was quiet that long is a follow-up."""
    quiet = 4.0
    config = rules(receiver, {"name": "quake", "query": "earthquake", "story": "first_then_updates"})
    daemon = daemon_factory(config, settings=stories(quiet=f"{quiet:g}s")).start()
    written = time.time()  # the first alert is made after this
    write(daemon.watched, "reuters/quake.txt", QUAKE_A)
    wait_until(lambda: len(received(receiver)) >= 1, 30, "the first alert")
    sent_at = time.time()  # ... and before this
    write(daemon.watched, "nos/quake.txt", QUAKE_A + " Schools were closed across the region.")
    wait_until(lambda: daemon.log.read_text().count('"event": "article_read"') >= 2, 30, "the second outlet")
    assert time.time() < written + quiet, "the second outlet came within the quiet period (a slow machine?)"
    wait_until(lambda: time.time() > sent_at + quiet + 0.5, quiet + 5, "the quiet period to pass")
    write(daemon.watched, "bbc/quake.txt", QUAKE_A + " Aid flights landed in Adana.")
    wait_until(lambda: len(received(receiver)) >= 2, 30, "the follow-up")
    assert daemon.stop() == 0
    first, follow_up = received(receiver)
    assert [alert["article"]["path"].rsplit("/", 2)[-2] for alert in (first, follow_up)] == ["reuters", "bbc"]
    assert (follow_up["story"], follow_up["update_of"]) == (first["story"], first["alert_id"])
    assert follow_up["update"]["reasons"] == ["outlet"] and follow_up["update"]["outlet"] == "bbc"
    assert follow_up["update"]["title"] == "quake: quake.txt"


def test_digest_updates_sends_the_first_alert_at_once_and_follow_ups_in_the_digest(
    receiver: Receiver, daemon_factory
) -> None:
    """A digest rule with `story: digest_updates`: the story's first alert goes out at once, the rise of
    the toll waits for the digest, and the correction downwards is held back (in neither)."""
    config = rules(
        receiver, {"name": "toll", "query": "*dodental*", "story": "digest_updates", "schedule": "*/2 * * * * *"}
    )
    daemon = daemon_factory(config, settings=stories()).start()
    for edit, toll in enumerate([76, 500, 300], start=1):
        write(daemon.watched, "beving.txt", report(edit, toll).removeprefix("date 2023-02-06 "))
        wait_until(
            lambda edit=edit: daemon.log.read_text().count('"event": "article_read"') >= edit, 30, f"edit {edit}"
        )
    wait_until(lambda: any(r.json()["type"] == "alert.digest" for r in receiver.received), 30, "the digest")
    daemon.wait_settled(["beving.txt"])
    assert daemon.stop() == 0
    bodies = {request.headers["webhook-id"]: request.json() for request in receiver.received}
    immediate = [body["data"] for body in bodies.values() if body["type"] == "alert.matched"]
    digested = [alert for body in bodies.values() if body["type"] == "alert.digest" for alert in body["data"]["alerts"]]
    assert [(alert["count"]["value"], alert["update_of"]) for alert in immediate] == [(76, None)]
    assert [(alert["count"]["value"], alert["update_of"]) for alert in digested] == [(500, immediate[0]["alert_id"])]
    assert digested[0]["update"]["reasons"] == ["count"]
    assert digested[0]["update"]["count"] == {"previous": 76, "value": 500}


FIVE_OUTLETS = [  # tests/data/stories/labels.csv: story turkey-quake, each written by another outlet
    ("nu", "nu_turkije_syrie_beving.txt"),
    ("volkskrant", "volkskrant_aardbeving_gaziantep.txt"),
    ("rtl", "rtl_beving_turkije_nederlanders.txt"),
    ("reuters", "reuters_turkey_quake.txt"),
    ("tagesschau", "tagesschau_erdbeben_tuerkei.txt"),
]


def test_five_outlets_on_one_event_give_one_alert_under_first_then_updates(receiver: Receiver, daemon_factory) -> None:
    """Issue 18: five outlets' differently written reports of one event (none with a count near its hits,
    one rule, within the quiet period) are one story: one alert, the others held back."""
    labels = dict(line.split(",") for line in (STORY_DATA / "labels.csv").read_text().splitlines()[1:])
    assert {labels[name] for _, name in FIVE_OUTLETS} == {"turkey-quake"}
    config = rules(receiver, {"name": "quake", "query": "Gaziantep OR Kahramanmaras", "story": "first_then_updates"})
    daemon = daemon_factory(config, settings=stories()).start()
    for outlet, name in FIVE_OUTLETS:
        (daemon.watched / outlet).mkdir()
        text = (STORY_DATA / "articles" / name).read_text(encoding="utf-8")
        (daemon.watched / outlet / name).write_text(text, encoding="utf-8")
    daemon.wait_settled([name for _, name in FIVE_OUTLETS])
    assert daemon.stop() == 0
    sent = received(receiver)
    assert len(sent) == 1, [alert["article"]["path"] for alert in sent]
