"""`news-monitor stories` and `check`'s story preview, as processes on the real daemon's state."""

from __future__ import annotations

import json

import pytest

from monitor.cli.receiver import Receiver
from tests.conftest import SECRET, wait_until
from tests.helpers import cli
from tests.story_texts import QUAKE_A, QUAKE_B, QUAKE_OTHER, TRIAL_A

pytestmark = pytest.mark.e2e


def test_stories_lists_what_the_daemon_grouped_and_check_previews_without_writing(
    receiver: Receiver, daemon_factory
) -> None:
    rules = {
        "version": 1,
        "webhooks": {"hook": {"url": receiver.url, "secret": SECRET}},
        "rules": [{"name": "quake", "query": "earthquake OR quake"}],
    }
    daemon = daemon_factory(rules, settings={"stories": {"enabled": True}})
    before = cli(daemon.config, "stories")
    assert before.returncode == 0 and "no story" in before.stdout and not daemon.db.exists()
    daemon.start()
    for name, text in (("a.txt", QUAKE_A), ("nepal.txt", QUAKE_OTHER)):
        (daemon.watched / name).write_text(f"date 2023-02-06\n{text}\n")
        daemon.wait_settled([name])
    (daemon.watched / "a.txt").write_text(f"date 2023-02-06\n{QUAKE_A}\nThe toll rose.\n")
    wait_until(lambda: len(receiver.received) == 3, 30, "three alerts")
    assert daemon.stop() == 0
    alerts = {
        (r.json()["data"]["article"]["path"], r.json()["data"]["version"]): r.json()["data"] for r in receiver.received
    }

    listed = json.loads(cli(daemon.config, "stories", "--since", "1h", "--json").stdout)
    assert len(listed) == 2
    quake = next(story for story in listed if len(story["articles"]) == 2)
    assert [(a["path"].rsplit("/", 1)[-1], a["version"]) for a in quake["articles"]] == [("a.txt", 1), ("a.txt", 2)]
    assert [a["alerts"] for a in quake["articles"]] == [
        [alerts[(quake["articles"][0]["path"], 1)]["alert_id"]],
        [alerts[(quake["articles"][0]["path"], 2)]["alert_id"]],
    ]
    assert quake["story"] == alerts[(quake["articles"][0]["path"], 1)]["story"]
    text = cli(daemon.config, "stories").stdout
    assert quake["story"] in text and "v2" in text

    outlet = daemon.home / "outlet-b.txt"
    outlet.write_text(f"date 2023-02-06\n{QUAKE_B}\n")
    trial = daemon.home / "trial.txt"
    trial.write_text(f"date 2023-02-06\nearthquake? no: {TRIAL_A}\n")
    checked = cli(daemon.config, "check", str(outlet), str(trial))
    assert checked.returncode == 0, checked.stderr
    assert f"story: would join {quake['story']} (similarity " in checked.stdout and "2 articles)" in checked.stdout
    assert "story: new" in checked.stdout
    edited = cli(daemon.config, "check", str(daemon.watched / "a.txt"), "--json")
    assert json.loads(edited.stdout)[0]["story"]["version"] == 3
    assert json.loads(cli(daemon.config, "stories", "--json").stdout) == listed  # check wrote nothing


def test_check_with_stories_off_never_opens_the_state(receiver: Receiver, daemon_factory) -> None:
    """Review: `check` opened (and migrated) the state store for its story preview even with stories off, so
    an unreachable store made it fail."""
    rules = {
        "version": 1,
        "webhooks": {"hook": {"url": receiver.url, "secret": SECRET}},
        "rules": [{"name": "quake", "query": "earthquake OR quake"}],
    }
    daemon = daemon_factory(rules)
    article = daemon.watched / "a.txt"
    article.write_text(f"date 2023-02-06\n{QUAKE_A}\n")
    unreachable = "postgresql+psycopg://user:secret@127.0.0.1:1/nothing"
    checked = cli(daemon.config, "check", "--json", str(article), MONITOR_STATE__URL=unreachable)
    assert checked.returncode == 0, checked.stderr
    (report,) = json.loads(checked.stdout)
    assert [m["rule"] for m in report["matches"]] == ["quake"] and report["story"] is None
