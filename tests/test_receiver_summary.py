"""What the demo's printing receiver shows of an alert (issue 17): its language, count and denied hits."""

from __future__ import annotations

import json

from monitor.cli.receiver import Received, summarize_request


def summary(data: dict[str, object]) -> str:
    body = json.dumps({"type": "alert.matched", "timestamp": "2026-12-01T00:00:00Z", "data": data}).encode()
    return summarize_request(Received("/hooks/newsroom", {"webhook-id": "msg_x"}, body, 0.0))


def test_an_alert_shows_its_language_count_and_denied_hits() -> None:
    text = summary(
        {
            "rule": "arrestaties",
            "clause": "@arrest",
            "article": {"path": "seeds/003.txt", "date": "2022-01", "language": "nl"},
            "count": {"value": 8000, "qualifier": "almost", "text": "bijna achtduizend"},
            "hits": [
                {"snippet": "bijna achtduizend mensen [[gearresteerd]]", "negated": False},
                {"snippet": "er werden geen [[arrestaties]] verricht", "negated": True},
            ],
            "update_of": "msg_first",
        }
    )
    head, affirmed, denied, _ = text.splitlines()
    assert "language nl" in head and "count 8000 (almost): bijna achtduizend" in head
    assert "update of msg_first" in head
    assert not affirmed.endswith("(negated)") and denied.endswith("(negated)")


def test_an_alert_of_an_older_version_still_prints() -> None:
    text = summary({"rule": "r", "clause": "x", "article": {"path": "a.txt"}, "hits": [{"snippet": "[[x]]"}]})
    assert text.splitlines()[0] == "ALERT r  [None] a.txt  (fired by: x)"
