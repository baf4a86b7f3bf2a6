"""Operations end to end: health, metrics, hot reload, observer restarts, overflow, malformed input."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor import __version__
from monitor.cli.receiver import Receiver
from tests.conftest import SECRET, SEED_RULES, DaemonProcess, copy_seeds, shipped_rules, wait_until
from tests.helpers import cli

pytestmark = pytest.mark.e2e
GOOD = "date 2022-01-08 Bericht {i}: oud-premier opgepakt op verdenking van hoogverraad."


def rules_for(url: str, *queries: tuple[str, str]) -> dict[str, Any]:
    return {
        "version": 1,
        "webhooks": {"hook": {"url": url, "secret": SECRET, "retry_schedule": ["0.2s", "0.5s"]}},
        "rules": [{"name": name, "query": query} for name, query in queries],
    }


def get(daemon: DaemonProcess, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{daemon.port}{path}", timeout=5)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ledger(daemon: DaemonProcess) -> dict[str, tuple[str, str | None]]:
    store = daemon.store()
    try:
        rows = store.recorded_files()
    finally:
        store.close()
    return {file.path: (file.outcome, file.code) for file in rows}


def test_health_and_metrics(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(shipped_rules(receiver.url)).start()
    names = copy_seeds(daemon.watched)
    (daemon.watched / "bad.txt").write_text("geen datum", encoding="utf-8")
    daemon.wait_settled([*names, "bad.txt"])
    assert get(daemon, "/healthz").status_code == 200
    assert get(daemon, "/readyz").text == "ready\n"
    text = get(daemon, "/metrics").text
    assert daemon.stop() == 0
    alerts = sum(len(SEED_RULES[n]) for n in names)
    assert metric(text, 'monitor_articles_total{outcome="accepted"}') == 2
    assert metric(text, 'monitor_rejections_total{reason="no_date"}') == 1
    assert metric(text, 'monitor_matches_total{rule="arrestaties"}') == 2
    assert metric(text, 'monitor_delivery_attempts_total{outcome="delivered",webhook="newsroom"}') == alerts
    assert metric(text, "monitor_file_to_delivery_seconds_count") == alerts
    assert metric(text, 'monitor_outbox{state="delivered"}') == alerts
    assert metric(text, "monitor_queue_depth") == 0


def test_rules_reload_on_change_refuses_invalid_and_on_sighup(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*"))).start()
    broken = daemon.home / "rules.yaml.new"
    broken.write_text("version: 1\nrules:\n  - name: broken\n    query: 'a AND (b'\n", encoding="utf-8")
    broken.replace(daemon.home / "rules.yaml")
    wait_until(lambda: "rules_reload_failed" in daemon.log.read_text(), 20, "the invalid rules to be refused")
    assert "rules.yaml:4" in daemon.log.read_text()  # the file and line of the bad query
    (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=20)  # the old rules are still in force
    assert receiver.received[0].json()["data"]["rule"] == "hoogverraad"
    assert metric(get(daemon, "/metrics").text, "monitor_reload_failures_total") == 1
    daemon.write_rules(rules_for(receiver.url, ("dodental", "dodental*")))
    wait_until(lambda: '"event": "rules_reloaded"' in daemon.log.read_text(), 20, "the new rules to load")
    (daemon.watched / "two.txt").write_text("date 2022-01-09 Het dodental is gestegen.", encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 2, timeout=20)
    assert receiver.received[1].json()["data"]["rule"] == "dodental"
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.log.read_text().count('"event": "rules_reloaded"') == 2, 20, "a reload on SIGHUP")
    assert '"why": "SIGHUP"' in daemon.log.read_text()
    assert daemon.stop() == 0


def test_post_reload_reloads_rules_and_refuses_an_invalid_file_with_its_line(
    receiver: Receiver, daemon_factory
) -> None:
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*"))).start()
    reload = f"http://127.0.0.1:{daemon.port}/-/reload"
    text = get(daemon, "/metrics").text
    assert metric(text, "monitor_config_last_reload_successful") == 1
    loaded = metric(text, "monitor_config_last_reload_success_timestamp_seconds")
    assert loaded > 0
    assert f'monitor_build_info{{python="{platform.python_version()}",version="{__version__}"}} 1.0' in text
    assert metric(text, "process_resident_memory_bytes") > 0 and metric(text, "process_open_fds") > 0
    refused = httpx.get(reload, timeout=5)
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert httpx.post(reload, headers={"Origin": "http://evil.example"}, timeout=5).status_code == 403
    broken = daemon.home / "rules.yaml.new"
    broken.write_text("version: 1\nrules:\n  - name: broken\n    query: 'a AND (b'\n", encoding="utf-8")
    broken.replace(daemon.home / "rules.yaml")
    answer = httpx.post(reload, timeout=10)
    assert answer.status_code == 500
    assert re.search(r"rules\.yaml:4:\d+: rule 'broken': ", answer.text), answer.text
    assert metric(get(daemon, "/metrics").text, "monitor_config_last_reload_successful") == 0
    (daemon.watched / "one.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=20)  # the old rules are still in force
    daemon.write_rules(rules_for(receiver.url, ("dodental", "dodental*")))
    answer = httpx.post(reload, timeout=10)
    assert (answer.status_code, answer.text) == (200, "reloaded\n")
    text = get(daemon, "/metrics").text
    assert metric(text, "monitor_config_last_reload_successful") == 1
    assert metric(text, "monitor_config_last_reload_success_timestamp_seconds") >= loaded
    assert '"why": "POST /-/reload"' in daemon.log.read_text()
    (daemon.watched / "two.txt").write_text("date 2022-01-09 Het dodental is gestegen.", encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 2, timeout=20)
    assert receiver.received[1].json()["data"]["rule"] == "dodental"
    assert daemon.stop() == 0


def test_post_reload_is_off_when_http_reload_is_false(receiver: Receiver, daemon_factory) -> None:
    settings = {"http": {"reload": False}}
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")), settings=settings).start()
    answer = httpx.post(f"http://127.0.0.1:{daemon.port}/-/reload", timeout=5)
    assert answer.status_code == 403 and "http.reload" in answer.text
    assert "rules_reloaded" not in daemon.log.read_text()
    assert daemon.stop() == 0


def test_a_folder_removed_while_running_makes_readyz_fail_until_it_is_back(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*"))).start()
    shutil.rmtree(daemon.watched)

    def not_ready() -> bool:
        answer = get(daemon, "/readyz")
        return answer.status_code == 503 and f"watched folder missing: {daemon.watched}" in answer.text

    wait_until(not_ready, 20, "/readyz to name the missing folder")
    assert '"event": "watch_folder_missing"' in daemon.log.read_text()
    assert not daemon.watched.exists()  # made again only with watch.create_folders
    daemon.watched.mkdir()
    daemon.wait_ready()
    (daemon.watched / "after.txt").write_text(GOOD.format(i=2), encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=20), daemon.log.read_text()[-2000:]
    assert daemon.stop() == 0
    assert '"event": "watch_folder_back"' in daemon.log.read_text()


def test_create_folders_makes_a_missing_folder_at_start_and_when_removed(
    receiver: Receiver, daemon_factory, tmp_path: Path
) -> None:
    fresh = tmp_path / "not-yet" / "inbox"
    settings = {"watch": {"folders": [str(fresh)], "create_folders": True}}
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")), settings=settings).start()
    assert fresh.is_dir()
    shutil.rmtree(fresh)
    wait_until(lambda: "observer_died" in daemon.log.read_text(), 20, "the dead observer to be noticed")
    daemon.wait_ready()
    (fresh / "after.txt").write_text(GOOD.format(i=2), encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=20), daemon.log.read_text()[-2000:]
    assert daemon.stop() == 0


def test_run_refuses_a_missing_folder_in_one_line(receiver: Receiver, daemon_factory, tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    settings = {"watch": {"folders": [str(missing)]}}
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")), settings=settings)
    daemon.start(ready=False)
    assert daemon.proc is not None and daemon.proc.wait(30) == 1
    assert daemon.log.read_text().strip() == (
        f"error: watch.folders: {str(missing)!r} does not exist (create it, or set watch.create_folders: true)"
    )
    assert not missing.exists()


def malformed(folder: Path, outside: Path) -> dict[str, str | None]:
    """Write 100 malformed inputs; returns name -> the reason code expected in the ledger (None: none)."""
    expected: dict[str, str | None] = {}

    def put(name: str, data: bytes, code: str | None) -> None:
        (folder / name).write_bytes(data)
        expected[name] = code

    for i in range(12):
        put(f"binary-{i}.txt", b"date 2022-01 \x00\x01\x02" * 50, "binary")
        put(f"empty-{i}.txt", b"", "empty")
        put(f"latin-{i}.txt", b"date 2022-01 \x81\x8d\x8f\x90\x9d ongeldig", "encoding")
        put(f"nodate-{i}.txt", b"Geen datum maar wel hoogverraad.", "no_date")
    for i, bad in enumerate(["2022-13", "2022-02-30", "2022-00", "2022-04-31", "2021-02-29", "2022-12-32"] * 2):
        put(f"baddate-{i}.txt", f"date {bad} Hoogverraad.".encode(), "bad_date")
    for i in range(11):
        put(f"control-{i}.txt", b"date 2022-01 " + b"\x01\x02\x03\x04" * 100, "binary")
    for i in range(6):
        put(f"huge-{i}.txt", b"date 2022-01 " + b"hoogverraad " * 400, "too_large")
    target = outside / "secret.txt"
    target.write_text(GOOD.format(i=999), encoding="utf-8")
    for i in range(5):
        os.symlink(target, folder / f"outside-{i}.txt")
        expected[f"outside-{i}.txt"] = "symlink"
        os.symlink(folder / f"loop-{i}b.txt", folder / f"loop-{i}a.txt")
        os.symlink(folder / f"loop-{i}a.txt", folder / f"loop-{i}b.txt")
        expected[f"loop-{i}a.txt"] = expected[f"loop-{i}b.txt"] = "symlink"
    for i in range(4):
        (folder / f"folder-{i}.txt").mkdir()
        expected[f"folder-{i}.txt/"] = None  # a folder is watched like any subfolder, not an article
    for i in range(4):
        gone = folder / f"gone-{i}.txt"
        gone.write_text(f"date 2022-01 Bericht {i}: het weer blijft wisselvallig.", encoding="utf-8")
        gone.unlink()
        # recorded as vanished, or never seen; or read whole before the unlink (a loaded machine: a complete,
        # closed file may be read at once), which is why it matches no rule
        expected[f"gone-{i}.txt"] = None
    return expected


def test_100_malformed_inputs_are_recorded_and_the_good_ones_alerted(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(
        rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")),
        settings={"watch": {"max_article_bytes": 4000}},
    ).start()
    outside = daemon.home / "outside"
    outside.mkdir()
    expected = malformed(daemon.watched, outside)
    assert len(expected) == 100
    good = [f"good-{i}.txt" for i in range(10)]
    for i, name in enumerate(good):
        (daemon.watched / name).write_text(GOOD.format(i=i), encoding="utf-8")
    odd = [os.fsdecode(b"nieuw\nregel-%d.txt" % i) for i in range(3)]
    odd += [os.fsdecode(b"caf\xe9-%d.txt" % i) for i in range(3)]  # Latin-1 bytes: not UTF-8
    for i, name in enumerate(odd):
        with open(os.path.join(os.fsencode(daemon.watched), os.fsencode(name)), "wb") as handle:
            handle.write(GOOD.format(i=100 + i).encode())
    recorded = [n for n, code in expected.items() if code is not None]
    daemon.wait_settled([*recorded, *good], timeout=60)
    assert receiver.wait_for(lambda got: len(got) == len(good) + len(odd), timeout=30), daemon.log.read_text()[-3000:]
    assert get(daemon, "/readyz").status_code == 200
    assert daemon.stop() == 0
    entries = {Path(path).name: value for path, value in ledger(daemon).items()}
    for name, code in expected.items():
        if code is not None:
            assert entries[name] == ("rejected", code), name
    gone = [entries.get(n, ("rejected", "vanished")) for n in expected if n.startswith("gone")]
    assert all(entry[1] == "vanished" or entry[0] == "accepted" for entry in gone), gone
    alerted = Counter(Path(r.json()["data"]["article"]["path"]).name for r in receiver.received)
    assert set(alerted) == {
        *good,
        *(n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for n in odd),
    }
    assert all(count == 1 for count in alerted.values())


def test_a_full_queue_loses_nothing(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(
        rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")),
        settings={"watch": {"queue_size": 3, "settle": "0.2s"}},
    ).start()
    names = []
    for i in range(150):
        (daemon.watched / f"burst-{i:03d}.txt").write_text(GOOD.format(i=i), encoding="utf-8")
        names.append(f"burst-{i:03d}.txt")
    assert receiver.wait_for(lambda got: len(got) >= 150, timeout=60), daemon.log.read_text()[-2000:]
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 150
    assert '"event": "reconcile_found"' in daemon.log.read_text()


QUEUED_EVENTS = Path("/proc/sys/fs/inotify/max_queued_events")
INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


@contextmanager
def sysctl(path: Path, value: int):
    """A kernel setting changed for the moment the daemon starts (CI runs the tests one at a time)."""
    old = path.read_text()
    path.write_text(str(value))
    try:
        yield
    finally:
        path.write_text(old)


@pytest.mark.skipif(not os.access(INSTANCES, os.W_OK), reason="needs write access to fs.inotify.max_user_instances")
def test_inotify_limit_falls_back_to_polling_with_a_clear_message(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(
        rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")), settings={"watch": {"settle": "0.3s"}}
    )
    with sysctl(INSTANCES, 0):  # no inotify instance can be made
        daemon.start()
    (daemon.watched / "polled.txt").write_text(GOOD.format(i=1), encoding="utf-8")
    assert receiver.wait_for(lambda got: len(got) == 1, timeout=30)
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert '"event": "watch_limit_reached"' in log and "fs.inotify.max_user_instances" in log


@pytest.mark.skipif(not os.access(QUEUED_EVENTS, os.W_OK), reason="needs write access to fs.inotify.max_queued_events")
def test_kernel_queue_overflow_loses_nothing(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(
        rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")),
        settings={"watch": {"reconcile_interval": "2s", "settle": "0.2s"}},
    )
    with sysctl(QUEUED_EVENTS, 16):  # read by the kernel when the daemon's inotify instance is made
        daemon.start()
    names = []
    for i in range(300):
        (daemon.watched / f"flood-{i:03d}.txt").write_text(GOOD.format(i=i), encoding="utf-8")
        names.append(f"flood-{i:03d}.txt")
    assert receiver.wait_for(lambda got: len({r.headers["webhook-id"] for r in got}) >= 300, timeout=90)
    daemon.wait_settled(names)
    assert daemon.stop() == 0
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 300


def test_polling_observer_for_network_shares(receiver: Receiver, daemon_factory) -> None:
    daemon = daemon_factory(
        rules_for(receiver.url, ("hoogverraad", "*hoogverraad*")),
        settings={"watch": {"observer": "polling", "settle": "0.5s"}},
    ).start()
    slow = daemon.watched / "slow.txt"
    with slow.open("w", encoding="utf-8") as handle:  # written in two steps: counted once, when settled
        handle.write("date 2022-01-08 Eerst: ")
        handle.flush()
        handle.write("opgepakt wegens hoogverraad.")
    (daemon.watched / ".hidden.txt").write_text(GOOD.format(i=9), encoding="utf-8")
    daemon.wait_settled(["slow.txt"])
    assert daemon.stop() == 0
    assert [Path(r.json()["data"]["article"]["path"]).name for r in receiver.received] == ["slow.txt"]


def test_backfill_runs_existing_files_and_resumes(receiver: Receiver, daemon_factory, tmp_path: Path) -> None:
    daemon = daemon_factory(rules_for(receiver.url, ("hoogverraad", "*hoogverraad*"), ("dodental", "dodental*")))
    archive = tmp_path / "archive"
    (archive / "2021").mkdir(parents=True)
    for i in range(30):
        (archive / "2021" / f"old-{i:02d}.txt").write_text(GOOD.format(i=i).replace("2022-01-08", "2021-06-01"))
    for i in range(30, 40):
        (archive / f"new-{i:02d}.txt").write_text(GOOD.format(i=i))
    (archive / "broken.txt").write_text("geen datum")
    first = cli(daemon.config, "backfill", str(archive), "--since", "2022-01-01")
    assert first.returncode == 0, first.stderr
    assert "accepted 10" in first.stdout and "skipped 30" in first.stdout and "rejected 1" in first.stdout
    again = cli(daemon.config, "backfill", str(archive), "--no-send")
    assert "accepted 30" in again.stdout and "seen 11" in again.stdout  # resumable: the ledger remembers
    daemon.start()  # the daemon delivers what backfill queued, and nothing of --no-send
    assert receiver.wait_for(lambda got: len(got) >= 10, timeout=30)
    wait_until(lambda: daemon.settled([]), 30, "the outbox to drain")
    assert daemon.stop() == 0
    assert sorted(Path(r.json()["data"]["article"]["path"]).name for r in receiver.received) == [
        f"new-{i:02d}.txt" for i in range(30, 40)
    ]
