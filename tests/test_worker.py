"""The worker process that reads and matches large articles: the same result as in the daemon, the daemon's
own rules or none, and no file read once it is closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from monitor.config.rules import load_rules
from monitor.config.settings import LimitsSettings
from monitor.ingest.pipeline import Job, read_step
from monitor.ingest.worker import MatchWorker
from monitor.matching.stories import MAGIC

TEXT = "date 2022-01-08 Een officier wordt verdacht van hoogverraad. " + "Gewoon nieuws. " * 20_000


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    data = {
        "version": 1,
        "webhooks": {"a": {"url": "http://127.0.0.1:9/a"}},
        "rules": [{"name": "hv", "query": "*verraad"}],
    }
    YAML(typ="safe").dump(data, tmp_path / "rules.yaml")
    return tmp_path / "rules.yaml"


def job_for(path: Path, stories: bool = False) -> Job:
    return Job(str(path), str(path), None, None, 10 << 20, LimitsSettings(), None, stories)


def test_the_worker_gives_what_the_daemon_would(rules_file: Path, tmp_path: Path) -> None:
    article = tmp_path / "big.txt"
    article.write_text(TEXT, encoding="utf-8")
    ruleset = load_rules(rules_file)
    worker = MatchWorker(large_bytes=1000)
    try:
        assert worker.takes(str(article)) and not worker.takes(str(rules_file))
        step = worker.read(ruleset, job_for(article))
    finally:
        worker.close()
    here = read_step(ruleset, job_for(article))
    assert step is not None and step.prepared is not None and here.prepared is not None
    assert step.prepared.drafts == here.prepared.drafts  # the same alerts, payloads and realert keys
    assert [m.rule for m in step.matches] == ["hv"]
    assert step.article is not None and step.article.text == ""  # the text stays in the worker
    assert here.article is not None and step.article.content_hash == here.article.content_hash


def test_the_worker_computes_the_story_signature_the_daemon_would(rules_file: Path, tmp_path: Path) -> None:
    article = tmp_path / "big.txt"
    article.write_text(TEXT, encoding="utf-8")
    ruleset = load_rules(rules_file)
    worker = MatchWorker(large_bytes=1000)
    try:
        step = worker.read(ruleset, job_for(article, stories=True))
    finally:
        worker.close()
    here = read_step(ruleset, job_for(article, stories=True))
    assert step is not None and step.prepared is not None and here.prepared is not None
    assert step.prepared.signature is not None and step.prepared.signature.startswith(MAGIC)
    assert step.prepared.signature == here.prepared.signature
    assert read_step(ruleset, job_for(article)).prepared.signature is None  # stories off: none computed


def test_other_rules_in_the_file_leave_the_file_to_the_daemon(rules_file: Path, tmp_path: Path) -> None:
    article = tmp_path / "big.txt"
    article.write_text(TEXT, encoding="utf-8")
    ruleset = load_rules(rules_file)
    rules_file.write_text(rules_file.read_text().replace("*verraad", "*dodental"), encoding="utf-8")
    worker = MatchWorker(large_bytes=1000)
    try:
        assert worker.read(ruleset, job_for(article)) is None
    finally:
        worker.close()


def test_a_closed_worker_reads_nothing(rules_file: Path, tmp_path: Path) -> None:
    article = tmp_path / "big.txt"
    article.write_text(TEXT, encoding="utf-8")
    worker = MatchWorker(large_bytes=1000)
    worker.close()
    step = worker.read(load_rules(rules_file), job_for(article))
    assert step is not None and step.error is not None and step.error.code == "transient"
