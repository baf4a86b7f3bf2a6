"""Burst throughput: 10,000 articles dropped into the watched folder at once, end to end.

The real daemon (SQLite state, the shipped immediate rules, signed generic webhooks to a real receiver
on 127.0.0.1) watches an empty folder. The script copies in one folder of 5,000 articles with one
`cp -r`, then a second set of 5,000 with one `rsync -a` (temporary dot-files renamed into place), a
third of them matching one rule each. It times from the start of the `cp` until every article is in
the ledger and every alert is delivered, and counts missing and duplicate alerts.

    /work/venv/bin/python benchmarks/burst.py [--quick]      (needs rsync: apt-get install -y rsync)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    HOOK_PATH,
    Corpus,
    Daemon,
    Row,
    arguments,
    arrivals,
    command_line,
    print_table,
    progress,
    receiver,
    scratch,
    shipped_rules_text,
    summarize_profile,
    tally,
    wait_until,
    write_corpus,
)

from monitor.cli.receiver import Receiver


def drop(sources: list[Path], target: Path) -> list[float]:
    """One `cp -r` of the first folder, then one `rsync -a` of the second; the seconds each took."""
    took = []
    start = time.monotonic()
    subprocess.run(["cp", "-r", str(sources[0]), str(target)], check=True)
    took.append(time.monotonic() - start)
    start = time.monotonic()
    subprocess.run(["rsync", "-a", str(sources[1]), str(target)], check=True)
    took.append(time.monotonic() - start)
    return took


def metrics(port: int) -> dict[str, float]:
    """The daemon's article counters and queue overflows from /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(("monitor_articles", "monitor_queue", "monitor_reconcile")) and " " in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def run_burst(
    daemon: Daemon, server: Receiver, sources: list[Path], expected: dict[str, str | None], timeout: float
) -> dict[str, Any]:
    """Drop the sources into the running daemon's folder; wait until all is read and delivered."""
    total = len(expected)
    wanted = sum(1 for rule in expected.values() if rule)
    before = len(arrivals(server))
    cpu = daemon.cpu_seconds()
    t0 = time.time()
    copy_seconds = drop(sources, daemon.watched)

    def done() -> bool:
        return (
            daemon.ledger_count() >= total
            and len(arrivals(server)) - before >= wanted
            and daemon.open_deliveries() == 0
        )

    finished = wait_until(done, timeout, interval=0.2)
    user, system = daemon.cpu_seconds()
    cpu = (user - cpu[0], system - cpu[1])
    last_seen = float(daemon.query("SELECT max(seen_at) FROM files") or t0)
    got = arrivals(server)[before:]
    last_alert = max((a.at for a in got), default=t0)
    end = max(last_seen, last_alert)
    time.sleep(2.0)  # a late duplicate would arrive now
    got = arrivals(server)[before:]
    missing, duplicates = tally(expected, got)
    return {
        "finished": finished,
        "seconds": end - t0,
        "to_last_alert": last_alert - t0,
        "to_last_read": last_seen - t0,
        "copy": copy_seconds,
        "read": daemon.ledger_count(),
        "alerts": len(got),
        "wanted": wanted,
        "missing": missing,
        "duplicates": duplicates,
        "metrics": metrics(daemon.port),
        "cpu": cpu,
    }


def _label(metric: str) -> str:
    """`monitor_articles_total{outcome="accepted"}` -> `accepted`."""
    return metric.split("=")[-1].strip('"}')


def prepare(corpus: Corpus, home: Path, count: int, run: str) -> tuple[list[Path], dict[str, str | None]]:
    """Two source folders of `count / 2` articles each; {file name: rule} over both."""
    half = count // 2
    first, second = home / "src" / f"{run}1", home / "src" / f"{run}2"
    expected = write_corpus(corpus, first, half, run)
    expected |= write_corpus(corpus, second, count - half, run, start=half)
    return [first, second], expected


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    if shutil.which("rsync") is None:
        sys.exit("rsync is missing: apt-get install -y rsync")
    count = 2000 if args.quick else 10_000
    corpus = Corpus()
    corpus.check()
    with scratch("burst", args.keep) as home, receiver() as server:
        progress(f"writing {count} articles to two source folders")
        sources, expected = prepare(corpus, home, count, "b")
        daemon = Daemon(home / "daemon", shipped_rules_text(server.url + HOOK_PATH))
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            daemon.profile = args.profile / "burst-daemon.raw"
        try:
            ready = daemon.start().ready_after
            daemon.record()
            idle, _ = daemon.rss_mb()
            progress(f"daemon ready in {ready:.2f}s; cp -r then rsync of {count} articles")
            result = run_burst(daemon, server, sources, expected, timeout=120 if args.quick else 480)
            rss, peak = daemon.rss_mb()
        finally:
            status = daemon.stop()
        problems = daemon.log_problems()
    if args.profile:
        print(summarize_profile(args.profile / "burst-daemon.raw"))
    seconds = result["seconds"]
    rate = count / seconds if result["finished"] else None
    counted = result["metrics"]
    outcomes = ", ".join(
        f"{_label(key)} {value:g}" for key, value in counted.items() if key.startswith("monitor_articles_total{")
    )
    rows = [
        Row("articles dropped", count, note=f"cp -r {result['copy'][0]:.2f}s, rsync {result['copy'][1]:.2f}s"),
        Row("articles read", result["read"], note=outcomes),
        Row("alerts received", result["alerts"], note=f"expected {result['wanted']}"),
        Row("missing alerts", result["missing"], target=0, kind="eq"),
        Row("duplicate alerts", result["duplicates"], target=0, kind="eq"),
        Row("time to last article read", result["to_last_read"], "s"),
        Row("time to last alert delivered", result["to_last_alert"], "s"),
        Row(
            "end to end throughput",
            rate,
            "articles/s",
            500,
            kind="min",
            note=f"{count} in {seconds:.1f}s" + ("" if result["finished"] else " (did NOT finish)"),
        ),
        Row(
            "daemon CPU time per article",
            sum(result["cpu"]) / count * 1000,
            "ms",
            note="user {:.1f}s + system {:.1f}s in all".format(*result["cpu"]),
        ),
        Row("daemon RSS idle", idle, "MB"),
        Row("daemon RSS after the burst", rss, "MB", note=f"peak {peak:.0f} MB"),
    ]
    print_table("Burst: 10,000 articles by cp -r and rsync, end to end", rows, command_line())
    print(f"daemon exit status {status}; {len(problems)} warning/error log lines")
    for line in problems[:5]:
        print("  " + line[:300])


if __name__ == "__main__":
    main()
