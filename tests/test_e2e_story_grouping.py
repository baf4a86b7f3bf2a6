"""Story grouping end to end: the labelled set tests/data/stories through the real daemon, one file at a time in
the order of their dates (a file's versions written over it), with the shipped rules; its stories are scored as
`evaluate` scores the story index and must be the ones `evaluate` predicts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from monitor.cli.evaluation import evaluate, grouping_scores
from monitor.cli.receiver import Receiver
from monitor.config.rules import load_rules
from monitor.ingest.articles import read_article
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "tests" / "data" / "stories"
RULES = ROOT / "config" / "rules.yaml"
_VERSION = re.compile(r"-v\d+(?=\.txt$)")


def test_the_daemon_groups_the_labelled_set_as_evaluate_scores_it(receiver: Receiver, daemon_factory) -> None:
    with (SET / "labels.csv").open(encoding="utf-8", newline="") as handle:
        labels = {row["file"]: row["story"] for row in csv.DictReader(handle)}
    order = sorted(labels, key=lambda name: (read_article(SET / "articles" / name).date.value, name))
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules["webhooks"] = {"newsroom": {"url": receiver.url, "format": "generic"}}
    daemon = daemon_factory(rules, settings={"stories": {"enabled": True}}).start()
    store = daemon.store()
    try:
        for number, name in enumerate(order, 1):
            (daemon.watched / _VERSION.sub("", name)).write_bytes((SET / "articles" / name).read_bytes())
            wait_until(lambda: len(store.story_rows(0)) >= number, 30, f"{name}'s story")  # noqa: B023
        rows = store.story_rows(0)
    finally:
        store.close()
    assert daemon.stop() == 0
    predicted = {name: row.story for name, row in zip(order, rows, strict=True)}
    assert [Path(row.path).name for row in rows] == [_VERSION.sub("", name) for name in order]
    score = grouping_scores(predicted, labels)
    assert score.precision is not None and score.precision >= 0.95
    assert score.recall is not None and score.recall >= 0.9
    expected = evaluate(load_rules(RULES, environ={}), SET / "articles", SET / "labels.csv")
    offline = {name: story for name, _, story in expected.stories}
    assert partition(predicted) == partition(offline)


def partition(stories: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for name, story in stories.items():
        groups.setdefault(story, set()).add(name)
    return {frozenset(group) for group in groups.values()}
