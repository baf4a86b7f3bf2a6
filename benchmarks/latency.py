"""Latency from the writer's close() to the receiver getting the webhook, through the real daemon.

The real daemon (`news-monitor run`, SQLite state, the shipped immediate rules, signed generic webhooks)
watches a folder; this script writes 3,000 articles into it at 50 per second, a third of them matching
one rule each, and times each matching article from its close() to the arrival of its alert at a real
receiver on 127.0.0.1. In the same run, interleaved 10 ms after each article, it measures the floor: a
bare watchdog observer in a process of its own (close to event) that POSTs with a bare httpx client to
the same receiver (event to arrival), so that both see the same moments of a shared machine.

    /work/venv/bin/python benchmarks/latency.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from common import (
    HOOK_PATH,
    PYTHON,
    Corpus,
    Daemon,
    Row,
    arguments,
    arrivals,
    command_line,
    percentile,
    plan,
    print_table,
    progress,
    receiver,
    scratch,
    shipped_rules_text,
    summarize_profile,
    tally,
    wait_until,
)
from watchdog.events import FileClosedEvent, FileSystemEventHandler
from watchdog.observers import Observer

from monitor.cli.receiver import Receiver

FLOOR_PATH = "/floor"


Item = tuple[Path, str, str]  # folder, file name, text


def write_paced(items: list[Item], rate: float) -> dict[str, float]:
    """Write the items in turn at `rate` per second; {name: time.time() just after close()}."""
    closed: dict[str, float] = {}
    start = time.monotonic()
    for i, (folder, name, text) in enumerate(items):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with open(folder / name, "w", encoding="utf-8") as handle:
            handle.write(text)
        closed[name] = time.time()
    return closed


def interleave(daemon: list[Item], floor: list[Item]) -> list[Item]:
    """Daemon articles and floor files alternately, so that both see the same moments of the machine."""
    out: list[Item] = []
    for i in range(max(len(daemon), len(floor))):
        out += daemon[i : i + 1] + floor[i : i + 1]
    return out


class _FloorHandler(FileSystemEventHandler):
    """The bare chain: on a close event, POST a body of an alert's size to the receiver, nothing else."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=10)
        self.events: dict[str, float] = {}

    def on_closed(self, event: FileClosedEvent) -> None:
        at = time.time()
        name = Path(str(event.src_path)).name
        self.events[name] = at
        body = {"data": {"rule": "floor", "article": {"path": name, "lead": "x" * 1500}}}
        self.client.post(self.url, json=body)


def floor_worker(folder: Path, url: str, out: Path) -> None:
    """A process of its own, like the daemon: watch `folder`, POST on each close, until `out`.stop exists;
    then write {file name: event time} to `out`."""
    handler = _FloorHandler(url)
    observer = Observer()
    observer.schedule(handler, str(folder), recursive=True)
    observer.start()
    out.with_suffix(".ready").touch()
    while not out.with_suffix(".stop").exists():
        time.sleep(0.1)
    observer.stop()
    observer.join(10)
    handler.client.close()
    out.write_text(json.dumps(handler.events))


def start_floor(home: Path, url: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    folder, out = home / "floor", home / "floor-events.json"
    folder.mkdir(parents=True)
    worker = subprocess.Popen([PYTHON, __file__, "--floor-worker", str(folder), url, str(out)])
    if not wait_until(lambda: out.with_suffix(".ready").exists(), 30):
        raise RuntimeError("the floor worker did not start")
    return worker, folder, out


def floor_figures(
    worker: subprocess.Popen[bytes], out: Path, server: Receiver, closed: dict[str, float], count: int
) -> dict[str, list[float]]:
    """Per floor file, in ms: close -> watchdog event, event -> receiver, close -> receiver."""
    wait_until(lambda: len(arrivals(server, FLOOR_PATH)) >= count, 30)
    out.with_suffix(".stop").touch()
    worker.wait(30)
    events = json.loads(out.read_text()) if out.exists() else {}
    arrived = {a.name: a.at for a in arrivals(server, FLOOR_PATH)}
    figures: dict[str, list[float]] = {"watch": [], "post": [], "total": []}
    for name, at in arrived.items():
        if name in events and name in closed:
            figures["watch"].append((events[name] - closed[name]) * 1000)
            figures["post"].append((at - events[name]) * 1000)
            figures["total"].append((at - closed[name]) * 1000)
    return figures


def read_times(log: Path) -> dict[str, float]:
    """{file name: when the daemon logged article_read} (after the claim's commit), from its JSON log."""
    out = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "article_read" and "path" in entry:
            stamp = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
            out[Path(entry["path"]).name] = stamp.timestamp()
    return out


def stages(closed: dict[str, float], read: dict[str, float], first: dict[str, float]) -> dict[str, list[float]]:
    """Per alert, in ms: close -> read, matched and claimed; claimed -> webhook received."""
    out: dict[str, list[float]] = {"read": [], "deliver": []}
    for name, arrived in first.items():
        if name in read and name in closed:
            out["read"].append((read[name] - closed[name]) * 1000)
            out["deliver"].append((arrived - read[name]) * 1000)
    return out


def slowest(closed: dict[str, float], read: dict[str, float], first: dict[str, float], count: int = 3) -> str:
    """The slowest alerts: the article's place in the writing order, its latency and its two stages, in ms."""
    order = {name: i for i, name in enumerate(sorted(closed, key=closed.__getitem__))}
    worst = sorted((at - closed[name], name) for name, at in first.items() if name in closed)[-count:][::-1]
    parts = []
    for seconds, name in worst:
        stage = (
            f" ({(read[name] - closed[name]) * 1000:.0f} + {(first[name] - read[name]) * 1000:.0f})"
            if name in read
            else ""
        )
        parts.append(f"#{order[name]} {seconds * 1000:.0f}{stage}")
    return "slowest (article # in writing order, ms, read + deliver): " + ", ".join(parts)


def main() -> None:
    if sys.argv[1:2] == ["--floor-worker"]:
        floor_worker(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        return
    args = arguments(__doc__.splitlines()[0])
    count, rate = (300, 50.0) if args.quick else (3000, 50.0)
    corpus = Corpus()
    corpus.check()
    rules = plan(count)
    expected = {f"lat{i:06d}.txt": rule for i, rule in enumerate(rules)}
    wanted = sum(1 for rule in rules if rule)
    with scratch("latency", args.keep) as home, receiver() as server:
        daemon = Daemon(home / "daemon", shipped_rules_text(server.url + HOOK_PATH))
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            daemon.profile = args.profile / "latency-daemon.raw"
        worker, floor_folder, floor_out = start_floor(home, server.url + FLOOR_PATH)
        articles = [
            (daemon.watched, name, corpus.article(i, rule, "lat")) for i, (name, rule) in enumerate(expected.items())
        ]
        floor_files = [(floor_folder, f"floor{i:06d}.txt", corpus.article(i, None, "floor")) for i in range(count)]
        closed: dict[str, float] = {}
        try:
            ready = daemon.start().ready_after
            daemon.record()
            progress(
                f"daemon ready in {ready:.2f}s; writing {count} articles at {rate:g}/s, "
                f"each followed 10 ms later by a floor file"
            )
            written_at, cpu = time.monotonic(), daemon.cpu_seconds()
            closed = write_paced(interleave(articles, floor_files), 2 * rate)
            elapsed = time.monotonic() - written_at
            busy = sum(daemon.cpu_seconds()) - sum(cpu)
            wait_until(lambda: len(arrivals(server)) >= wanted, 60)
            time.sleep(1.0)  # a late duplicate would arrive now
            rss, _ = daemon.rss_mb()
        finally:
            status = daemon.stop()
            floor = floor_figures(worker, floor_out, server, closed, count)
        got = arrivals(server)
        missing, duplicates = tally(expected, got)
        first: dict[str, float] = {}
        for arrival in got:
            first[arrival.name] = min(arrival.at, first.get(arrival.name, arrival.at))
        latencies = [(at - closed[name]) * 1000 for name, at in first.items() if name in closed]
        problems = daemon.log_problems()
        read_at = read_times(daemon.log)
        split = stages(closed, read_at, first)
    if args.profile:
        print(summarize_profile(args.profile / "latency-daemon.raw"))
    p99, floor_p99 = percentile(latencies, 99), percentile(floor["total"], 99)
    rows = [
        Row("articles written", count, note=f"at {count / elapsed:.1f}/s, a third matching"),
        Row("alerts received", len(got), note=f"expected {wanted}"),
        Row("missing alerts", missing, target=0, kind="eq"),
        Row("duplicate alerts", duplicates, target=0, kind="eq"),
        Row("latency p50", percentile(latencies, 50), "ms", 15),
        Row("latency p90", percentile(latencies, 90), "ms"),
        Row("latency p99", p99, "ms", 50),
        Row("latency max", max(latencies, default=float("nan")), "ms", note=slowest(closed, read_at, first)),
        Row(
            "  close -> read and claimed",
            percentile(split["read"], 50),
            "ms",
            note=f"p50; p99 {percentile(split['read'], 99):.1f} ms: watch, queue, read, match, commit, hand-over",
        ),
        Row(
            "  claimed -> webhook received",
            percentile(split["deliver"], 50),
            "ms",
            note=f"p50; p99 {percentile(split['deliver'], 99):.1f} ms: the POST (handed over before the log line)",
        ),
        Row(
            "floor p50 (watchdog + POST)",
            percentile(floor["total"], 50),
            "ms",
            note=f"{len(floor['total'])} files; watchdog {percentile(floor['watch'], 50):.2f} "
            f"+ POST {percentile(floor['post'], 50):.2f}",
        ),
        Row(
            "floor p99 (watchdog + POST)",
            floor_p99,
            "ms",
            note=f"watchdog p99 {percentile(floor['watch'], 99):.2f}, POST p99 {percentile(floor['post'], 99):.2f}",
        ),
        Row("latency p99 / floor p99", p99 / floor_p99 if floor_p99 else None, "x", 3),
        Row(
            "daemon CPU while writing",
            busy / elapsed * 100,
            "% of a core",
            note=f"{busy / count * 1000:.1f} ms CPU per article",
        ),
        Row("daemon RSS at the end", rss, "MB"),
    ]
    print_table("Latency: writer close() to webhook received", rows, command_line())
    print(f"daemon exit status {status}; {len(problems)} warning/error log lines")
    for line in problems[:5]:
        print("  " + line[:300])


if __name__ == "__main__":
    main()
