"""The pipeline on real files and a real SQLite file: a batch is read and matched, then written in one
transaction; every file gets its own outcome, and a file the store refuses cannot hold back the others."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select
from structlog.testing import capture_logs

from monitor.config.rules import load_rules
from monitor.ingest import pipeline as pipeline_module
from monitor.ingest.articles import ArticleOutcome
from monitor.ingest.pipeline import Pipeline
from monitor.store import Store
from monitor.store.schema import alerts, deliveries, files
from tests.test_alerts import watching_transactions

MATCH = "date 2022-01-08 Een officier wordt verdacht van hoogverraad.\n"
PLAIN = "date 2022-01-09 De winkels gingen weer open.\n"


@pytest.fixture
def pipeline(store: Store, tmp_path: Path) -> Pipeline:
    data = {
        "version": 1,
        "webhooks": {"a": {"url": "http://127.0.0.1:9/a"}},
        "rules": [{"name": "hv", "query": "hoogverraad"}],
    }
    YAML(typ="safe").dump(data, tmp_path / "rules.yaml")
    ruleset = load_rules(tmp_path / "rules.yaml")
    return Pipeline(store, lambda: ruleset, 1 << 20)


def write(folder: Path, files_: dict[str, str | bytes]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files_.items():
        path = folder / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        paths.append(str(path))
    return paths


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_batch_gives_each_file_its_outcome_in_order(pipeline: Pipeline, store: Store, tmp_path: Path) -> None:
    paths = write(
        tmp_path / "in",
        {"a.txt": MATCH, "b.txt": "geen datum hier\n", "c.txt": MATCH, "d.txt": PLAIN, "e.txt": b"\x00\x01binary"},
    )
    gone = str(tmp_path / "in" / "gone.txt")
    results = pipeline.process_many([*paths, gone, paths[0]])
    assert [(Path(r.path).name, r.outcome, r.code) for r in results] == [
        ("a.txt", "accepted", None),
        ("b.txt", "rejected", "no_date"),
        ("c.txt", "duplicate", None),  # the same text as a.txt, in the same batch
        ("d.txt", "accepted", None),
        ("e.txt", "rejected", "binary"),
        ("gone.txt", "rejected", "vanished"),
    ], "a path twice in one batch is read once"
    assert (results[0].alerts, results[0].deliveries, results[0].rules) == (1, 1, ("hv",))
    assert count(store, alerts) == 1 and count(store, deliveries) == 1
    outcomes = {Path(p).name: o for p, o in _ledger(store)}
    assert outcomes == {
        "a.txt": "accepted",
        "b.txt": "rejected",
        "c.txt": "duplicate",
        "d.txt": "accepted",
        "e.txt": "rejected",
        "gone.txt": "rejected",
    }


def test_a_second_run_sees_every_file_it_recorded(pipeline: Pipeline, tmp_path: Path) -> None:
    paths = write(tmp_path / "in", {"a.txt": MATCH, "b.txt": "geen datum\n", "d.txt": PLAIN})
    pipeline.process_many(paths)
    assert [r.outcome for r in pipeline.process_many(paths)] == ["seen", "seen", "seen"]
    Path(paths[2]).write_text(PLAIN + "Een nieuwe alinea.\n")
    assert [r.outcome for r in pipeline.process_many(paths)] == ["seen", "seen", "accepted"], "a changed file"


def test_articles_before_since_are_skipped_and_not_recorded(pipeline: Pipeline, store: Store, tmp_path: Path) -> None:
    paths = write(tmp_path / "in", {"a.txt": MATCH, "d.txt": PLAIN})
    results = pipeline.process_many(paths, since=date(2022, 1, 9))
    assert [r.outcome for r in results] == ["skipped", "accepted"]
    assert {Path(p).name for p, _ in _ledger(store)} == {"d.txt"}


def test_send_false_records_alerts_without_deliveries(pipeline: Pipeline, store: Store, tmp_path: Path) -> None:
    results = pipeline.process_many(write(tmp_path / "in", {"a.txt": MATCH}), send=False)
    assert (results[0].outcome, results[0].alerts, results[0].deliveries) == ("accepted", 1, 0)
    assert count(store, alerts) == 1 and count(store, deliveries) == 0


def test_a_file_the_store_refuses_does_not_hold_back_the_others(
    pipeline: Pipeline, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write(tmp_path / "in", {"a.txt": MATCH, "bad.txt": PLAIN, "d.txt": PLAIN.replace("09", "10")})
    original = pipeline_module.queue_prepared

    def refusing(conn: Any, ruleset: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
        if any(item.article.path.endswith("bad.txt") for item in items):
            raise RuntimeError("constraint failed")
        return original(conn, ruleset, items, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "queue_prepared", refusing)
    with capture_logs() as logs:
        results = pipeline.process_many(paths)
    assert [(Path(r.path).name, r.outcome) for r in results] == [
        ("a.txt", "accepted"),
        ("bad.txt", "failed"),
        ("d.txt", "accepted"),
    ]
    assert {Path(p).name for p, _ in _ledger(store)} == {"a.txt", "d.txt"}, "the failed file stays unseen"
    assert [e["path"] for e in logs if e["event"] == "article_failed"] == [paths[1]]
    assert count(store, deliveries) == 1, "the batch's first try left nothing behind"
    monkeypatch.setattr(pipeline_module, "queue_prepared", original)
    assert [r.outcome for r in pipeline.process_many(paths)] == ["seen", "accepted", "seen"], "tried again later"


def test_a_batch_that_fails_whole_and_then_file_by_file_clears_the_failing_state(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk freed while a batch is written: the batch fails, its files alone are written. The store took
    writes again, so `failing` (which keeps the daemon's /readyz at 503) must be cleared: CI once timed out
    waiting for /readyz to recover (tests/test_e2e_ingest_edges.py, a store that stops taking writes)."""
    paths = write(tmp_path / "in", {"a.txt": MATCH, "b.txt": PLAIN})
    pipeline.failing = True  # an earlier batch failed (the disk was full)
    original = pipeline_module.queue_prepared
    calls = iter([True])  # the first transaction (the whole batch) fails, then the disk has room again

    def full_once(conn: Any, ruleset: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
        if next(calls, False):
            raise OSError(28, "No space left on device")
        return original(conn, ruleset, items, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "queue_prepared", full_once)
    assert [r.outcome for r in pipeline.process_many(paths)] == ["accepted", "accepted"]
    assert not pipeline.failing


def test_payloads_are_built_before_the_write_transaction(
    pipeline: Pipeline, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building a payload works out the match's hits: the costly part must not hold the write lock."""
    paths = write(tmp_path / "in", {"a.txt": MATCH, "b.txt": MATCH.replace("08", "09"), "d.txt": PLAIN})
    with watching_transactions(store, monkeypatch) as built:
        results = pipeline.process_many(paths)
    assert [r.outcome for r in results] == ["accepted"] * 3
    assert built == [False, False], "two payloads, both built outside the transaction"
    assert count(store, alerts) == 2


def test_a_name_that_is_not_utf8_is_stored_with_escapes(pipeline: Pipeline, store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.txt")
    with open(raw, "wb") as handle:
        handle.write(PLAIN.encode())
    result = pipeline.process_many([os.fsdecode(raw)])[0]
    assert result.outcome == "accepted"
    assert result.path.endswith("caf\\xe9.txt")
    assert pipeline.process_many([os.fsdecode(raw)])[0].outcome == "seen"


def test_outcomes_are_enum_members_stored_and_read_back_as_the_same_strings(
    pipeline: Pipeline, store: Store, tmp_path: Path
) -> None:
    paths = write(tmp_path / "in", {"a.txt": MATCH, "b.txt": "geen datum hier\n", "c.txt": MATCH})
    results = pipeline.process_many(paths)
    assert [r.outcome for r in results] == [ArticleOutcome.accepted, ArticleOutcome.rejected, ArticleOutcome.duplicate]
    assert all(type(r.outcome) is ArticleOutcome for r in results)
    stored = dict(_ledger(store))
    assert {Path(path).name: (type(value), value) for path, value in stored.items()} == {
        "a.txt": (str, "accepted"),
        "b.txt": (str, "rejected"),
        "c.txt": (str, "duplicate"),
    }, "the ledger keeps the plain strings"
    assert [ArticleOutcome(stored[r.path]) for r in results] == [r.outcome for r in results]
    assert store.status()["files"] == {"accepted": 1, "rejected": 1, "duplicate": 1}
    assert json.dumps([r.outcome for r in results]) == '["accepted", "rejected", "duplicate"]'
    assert [r.outcome for r in pipeline.process_many(paths)] == [ArticleOutcome.seen] * 3  # the rejection read back


def _ledger(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [(path, outcome) for path, outcome in conn.execute(select(files.c.path, files.c.outcome))]


def test_a_file_through_a_symlinked_folder_is_refused(store: Store, pipeline: Pipeline, tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    [secret] = write(tmp_path / "secret", {"private.txt": MATCH})
    watched.mkdir()
    (watched / "feed").symlink_to(tmp_path / "secret", target_is_directory=True)
    beneath = Pipeline(store, pipeline.rules, 1 << 20, roots=[watched])
    [result] = beneath.process_many([str(watched / "feed" / "private.txt")])
    assert (result.outcome, result.code) == ("rejected", "symlink")
    assert count(store, alerts) == 0
    assert pipeline.process_many([secret])[0].outcome == "accepted"  # outside any root: read as it is


def test_a_transient_failure_is_not_recorded_and_the_file_is_read_later(
    pipeline: Pipeline, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [path] = write(tmp_path / "in", {"a.txt": MATCH})
    real_open = os.open

    def no_descriptors(*args: Any, **kwargs: Any) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "open", no_descriptors)
    [result] = pipeline.process_many([path])
    assert (result.outcome, result.code) == ("failed", "transient")
    assert count(store, files) == 0  # not a rejection: nothing in the ledger
    monkeypatch.setattr(os, "open", real_open)
    assert pipeline.process_many([path])[0].outcome == "accepted"
    assert count(store, alerts) == 1


def test_a_rejection_is_looked_at_again_when_the_file_mode_changes(pipeline: Pipeline, tmp_path: Path) -> None:
    [path] = write(tmp_path / "in", {"a.txt": "geen datum hier\n"})
    assert pipeline.process_many([path])[0].code == "no_date"
    assert pipeline.process_many([path])[0].outcome == "seen"
    time.sleep(0.05)  # the scenario: the mode changes later (file times tick every few milliseconds)
    before = os.stat(path)
    os.chmod(path, 0o600)  # as after `chmod 644` on a file that was unreadable: ctime moves, mtime does not
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert pipeline.process_many([path])[0].outcome == "rejected"  # read again
    assert pipeline.process_many([path])[0].outcome == "seen"


def test_an_accepted_file_is_not_read_again_for_a_mode_change(pipeline: Pipeline, tmp_path: Path) -> None:
    [path] = write(tmp_path / "in", {"a.txt": MATCH})
    assert pipeline.process_many([path])[0].outcome == "accepted"
    os.chmod(path, 0o600)
    assert pipeline.process_many([path])[0].outcome == "seen"


def test_the_same_text_read_again_under_its_own_name_is_unchanged_not_a_duplicate(
    pipeline: Pipeline, store: Store, tmp_path: Path
) -> None:
    [path] = write(tmp_path / "in", {"a.txt": MATCH})
    assert pipeline.process_many([path])[0].outcome == "accepted"
    os.utime(path, ns=(1, 1))  # touched: a new version to the ledger, the same text
    assert pipeline.process_many([path])[0].outcome == "unchanged"
    [copy] = write(tmp_path / "in", {"b.txt": MATCH})
    assert pipeline.process_many([copy])[0].outcome == "duplicate"  # the same text under a second name
    assert count(store, alerts) == 1


def test_a_raw_name_and_its_escape_written_out_are_two_files(pipeline: Pipeline, store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsdecode(os.path.join(os.fsencode(folder), b"\xff\xfe.txt"))
    literal = str(folder / "\\xff\\xfe.txt")  # the text backslash, x, f, f...
    for path in (raw, literal):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(MATCH.replace("officier", f"officier {len(path)} {path[-12:]!r}"))
    keys = {pipeline_module.ledger_key(raw), pipeline_module.ledger_key(literal)}
    assert len(keys) == 2
    assert [r.outcome for r in pipeline.process_many([raw, literal])] == ["accepted", "accepted"]
    assert [r.outcome for r in pipeline.process_many([raw, literal])] == ["seen", "seen"]  # not read at every scan


def test_the_reconcile_scan_compares_the_folder_with_the_ledger_a_chunk_at_a_time(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the scan loaded the whole ledger (430 MB at a million rows). It now looks files up a chunk
    at a time: across chunk boundaries it still finds exactly the files not in the ledger in this version,
    and no lookup asks for more than a chunk."""
    from monitor import daemon as daemon_module
    from monitor.config.settings import load_settings

    folder = tmp_path / "in"
    read = write(folder, {f"old{k:02d}.txt": PLAIN for k in range(7)})
    settled(read)
    pipeline.process_many(read)
    changed = folder / "old03.txt"
    changed.write_text(PLAIN + "Bijgewerkt.\n", encoding="utf-8")
    new = write(folder, {f"new{k:02d}.txt": PLAIN for k in range(5)})
    settled([*new, str(changed)])
    rules = tmp_path / "rules.yaml"  # the pipeline fixture's
    settings = load_settings(
        None, rules_file=rules, state={"url": pipeline.store.url}, watch={"folders": [str(folder)]}
    )
    monkeypatch.setattr(daemon_module.gc, "freeze", lambda: None)  # the daemon's, not for the test process
    owner = daemon_module.Daemon(settings)
    lookups: list[int] = []
    seen_many = owner.store.seen_many
    monkeypatch.setattr(owner.store, "seen_many", lambda keys: lookups.append(len(keys)) or seen_many(keys))
    monkeypatch.setattr(daemon_module, "LEDGER_CHUNK", 4)
    try:
        found, recent = owner._unseen(2.0)
    finally:
        owner.store.close()
    assert sorted(path for path, _size in found) == sorted([*new, str(changed)])
    assert recent == 0
    assert lookups and max(lookups) <= 4 and sum(lookups) == 12


def settled(paths: list[str]) -> None:
    """Give files an mtime a minute ago: older than any scan's `settle`."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))
