"""End to end through the real daemon (issue 17): languages, counts and negation in alerts, `min_count` and
`negated: exclude` deciding what alerts, with the shipped rules and a real receiver."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import SEEDS, shipped_rules
from tests.helpers import by_id

pytestmark = pytest.mark.e2e

ARTICLES = {
    "en-arrests.txt": "date 2022-01-08 Police in Almaty arrested more than 200 people overnight, the interior "
    "ministry said on Saturday. Protests over fuel prices had turned violent in several cities.",
    "de-ovks.txt": "date 2022-01-07 Präsident Tokajew hat die Organisation des Vertrags über kollektive Sicherheit "
    "um Hilfe gebeten. Die OVKS schickt nach eigenen Angaben rund 2500 Soldaten nach Kasachstan.",
    "fr-trahison.txt": "date 2022-01-09 L'ancien chef des services de sécurité du Kazakhstan, Karim Massimov, a été "
    "arrêté et inculpé de haute trahison, a annoncé le comité de sécurité nationale.",
    "nl-geen-arrestaties.txt": "date 2023-03-11 De betoging tegen de stikstofplannen in Den Haag verliep rustig, "
    "meldt de politie. Er werden geen arrestaties verricht.",
}


def alerts(receiver: Receiver) -> dict[tuple[str, str], dict[str, Any]]:
    """(file name, rule) -> the alert's payload, one per alert id."""
    found = {}
    for envelope in by_id(receiver.received).values():
        data = envelope["data"]
        found[Path(data["article"]["path"]).name, data["rule"]] = data
    return found


def test_languages_counts_and_denials_reach_the_webhook(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url + "/hook")).start()
    for name, text in ARTICLES.items():
        (daemon.watched / name).write_text(text, encoding="utf-8")
    shutil.copyfile(SEEDS / "003_1649dd4e54c446b5.txt", daemon.watched / "003_1649dd4e54c446b5.txt")
    names = [*ARTICLES, "003_1649dd4e54c446b5.txt"]
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    got = alerts(receiver)
    assert sorted(got) == [
        ("003_1649dd4e54c446b5.txt", "arrestaties"),
        ("003_1649dd4e54c446b5.txt", "dodental"),
        ("de-ovks.txt", "csto"),
        ("en-arrests.txt", "arrestaties"),
        ("fr-trahison.txt", "arrestaties"),  # "a été arrêté"
        ("fr-trahison.txt", "hoogverraad"),
    ]  # not the Dutch article whose only arrest is denied (negated: exclude)
    languages = {name: data["article"]["language"] for (name, _), data in got.items()}
    assert languages == {
        "003_1649dd4e54c446b5.txt": "nl",
        "de-ovks.txt": "de",
        "en-arrests.txt": "en",
        "fr-trahison.txt": "fr",
    }
    arrests = got["003_1649dd4e54c446b5.txt", "arrestaties"]
    assert arrests["count"] == {"value": 8000, "qualifier": "almost", "text": "bijna achtduizend"}
    assert arrests["hits"][0]["count"] == arrests["count"] and arrests["hits"][0]["negated"] is False
    assert got["003_1649dd4e54c446b5.txt", "dodental"]["count"]["value"] == 164
    assert got["en-arrests.txt", "arrestaties"]["count"] == {
        "value": 200,
        "qualifier": "more_than",
        "text": "more than 200",
    }
    assert "Traceback" not in daemon.log.read_text()


def test_min_count_decides_through_the_daemon(receiver: Receiver, daemon_factory) -> None:
    rules = shipped_rules(receiver.url + "/hook")
    rules["rules"] = [
        {"name": "tens-of-thousands", "query": "@arrest", "min_count": 10000},
        {"name": "thousands", "query": "@arrest", "min_count": 5000},
        {"name": "denied", "query": "*arresta*", "negated": "only"},
    ]
    daemon = daemon_factory(rules).start()
    shutil.copyfile(SEEDS / "003_1649dd4e54c446b5.txt", daemon.watched / "003.txt")
    (daemon.watched / "geen.txt").write_text(
        "date 2023-03-11 De betoging verliep rustig. Er werden geen arrestaties verricht.", encoding="utf-8"
    )
    daemon.wait_settled(["003.txt", "geen.txt"])
    assert daemon.stop() == 0
    assert sorted(alerts(receiver)) == [("003.txt", "thousands"), ("geen.txt", "denied")]


def test_a_dutch_article_with_an_english_statement_alerts_on_its_english_query(
    receiver: Receiver, daemon_factory
) -> None:
    """Issue 19, seventh session: an article is detected in chunks, so a Dutch seed that ends with an English
    statement has both languages' queries applied. The shipped `hoogverraad` rule fires on its
    English query ("high treason"), which the Dutch query does not see; its language is unknown (null). Before,
    one detection of the whole sample found Dutch alone and that alert was lost."""
    daemon = daemon_factory(shipped_rules(receiver.url + "/hook")).start()
    seed = (SEEDS / "003_1649dd4e54c446b5.txt").read_text(encoding="utf-8")
    statement = (
        "\n\nIn a statement issued in English on Monday evening, the ministry said that the former head of the "
        "security service had been detained on suspicion of high treason and would be held in custody in the "
        "capital while prosecutors prepared the case against him and several of his former deputies."
    )
    (daemon.watched / "nl-en-quote.txt").write_text(seed + statement, encoding="utf-8")
    daemon.wait_settled(["nl-en-quote.txt"])
    assert daemon.stop() == 0
    got = alerts(receiver)
    assert ("nl-en-quote.txt", "hoogverraad") in got
    assert got["nl-en-quote.txt", "hoogverraad"]["article"]["language"] is None  # its chunks differ
    assert ("nl-en-quote.txt", "arrestaties") in got  # the Dutch query still applies
