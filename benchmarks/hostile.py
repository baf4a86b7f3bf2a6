"""Hostile articles through the real daemon: what the worst article of each shape costs, and what it makes
the others wait (issue 11).

For each input of `hostile_corpus.corpus()` (each up to the 10 MB size limit) and for an ordinary article of
ordinary words of the same size (the baseline), a fresh daemon (`news-monitor run`, SQLite, the shipped rules
plus one rule per query shape, signed generic webhooks to a real receiver on 127.0.0.1) gets the article
in its watched folder; one second later an ordinary small article is written beside it. Per input:
- CPU s: the CPU of the daemon and its worker process (all threads) from the write until the article is
  recorded and its alerts are delivered, and its ratio to the ordinary article of the same size (≤ 10×);
- peak RSS: the larger of the daemon's and its worker's (target < 300 MB);
- the largest alert payload received (target ≤ the cap, 65,536 bytes);
- the delay of the small article written 1 s later, from its close() to its alert (target ≤ 2 s);
- /healthz answered every 20 ms meanwhile: the slowest answer (target ≤ 100 ms).

    .venv/bin/python benchmarks/hostile.py [--quick] [--only NAME,NAME] [--size BYTES]
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import (
    Daemon,
    Row,
    arguments,
    command_line,
    print_table,
    progress,
    receiver,
    scratch,
    shipped_rules_text,
    wait_until,
)
from hostile_corpus import corpus, ordinary, shapes_rules_yaml
from ruamel.yaml import YAML

from monitor.cli.receiver import Receiver

SMALL = (Path(__file__).resolve().parent.parent / "seeds" / "003_1649dd4e54c446b5.txt").read_text(encoding="utf-8")
PAYLOAD_CAP = 65_536


@dataclass
class Result:
    name: str
    size: int
    cpu: float
    rss: float
    payload: int
    hits_total: int
    delay: float | None
    health_max: float | None
    unanswered: int
    outcome: str


class HealthProbe(threading.Thread):
    """GET /healthz every 20 ms; keeps each answer's time (None: no 200 within 5 s)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.times: list[float | None] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.halt.wait(0.02):
                started = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.TransportError:
                    ok = False
                self.times.append(time.perf_counter() - started if ok else None)


def rules_text(url: str) -> str:
    """The shipped rules plus one rule per query shape, all sent to `url`."""
    yaml = YAML(typ="safe")
    shipped = yaml.load(shipped_rules_text(url))
    shapes = yaml.load(shapes_rules_yaml())
    shipped["lists"] = {**shipped.get("lists", {}), **(shapes.get("lists") or {})}
    names = {rule["name"] for rule in shipped["rules"]}
    shipped["rules"] += [{**rule, "notify": ["newsroom"]} for rule in shapes["rules"] if rule["name"] not in names]
    for rule in shipped["rules"]:
        rule.pop("examples", None)  # the shapes' own examples are for the unit tests
    return json.dumps(shipped)


def write_atomically(folder: Path, name: str, text: str) -> None:
    temporary = folder / f".{name}.part"
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(folder / name)


def bodies_for(server: Receiver, name: str) -> list[dict[str, object]]:
    out = []
    for request in list(server.received):
        data = request.json()["data"]
        if Path(data["article"]["path"]).name == name:
            out.append({"size": len(request.body), **data})
    return out


def outcome_of(daemon: Daemon, name: str) -> str:
    row = daemon.query(f"SELECT (SELECT outcome || coalesce(':' || code, '') FROM files WHERE path LIKE '%/{name}')")
    return str(row or "unseen")


def family(pid: int) -> list[int]:
    """The daemon and its child processes (the worker that matches large articles), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of the processes so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pids: list[int]) -> float:
    """The largest peak RSS among the processes (each process's own; the worker's holds the article)."""
    peaks = [0.0]
    for pid in pids:
        with contextlib.suppress(OSError, StopIteration):
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            peaks.append(int(next(line for line in lines if line.startswith("VmHWM:")).split()[1]) / 1024)
    return max(peaks)


def run_one(home: Path, server: Receiver, name: str, text: str, timeout: float) -> Result:
    daemon = Daemon(home, rules_text(server.url + "/hooks/newsroom"))
    daemon.start()
    probe = HealthProbe(daemon.port)
    probe.start()
    try:
        cpu0 = cpu_seconds(family(daemon.pid))  # no worker yet: it starts with the first large article
        write_atomically(daemon.watched, name, text)
        time.sleep(1.0)  # the scenario: an ordinary article one second after the hostile one
        small = f"small-after-{name}"
        write_atomically(daemon.watched, small, SMALL.replace("2022-01 ", f"2022-01 Na {name}. ", 1))
        written = time.time()
        arrived = wait_until(lambda: bool(bodies_for(server, small)), timeout)
        delay = min(float(b["at"]) for b in arrived_at(server, small)) - written if arrived else None
        wait_until(lambda: outcome_of(daemon, name) != "unseen" and daemon.open_deliveries() == 0, timeout)
        processes = family(daemon.pid)
        cpu = cpu_seconds(processes) - cpu0
        peak = peak_rss_mb(processes)
    finally:
        probe.halt.set()
        probe.join(10)
        daemon.stop()
    bodies = bodies_for(server, name)
    answered = [t for t in probe.times if t is not None]
    return Result(
        name.removesuffix(".txt"),
        len(text.encode()),
        cpu,
        peak,
        max((int(str(b["size"])) for b in bodies), default=0),
        max((int(str(b.get("hits_total", len(b["hits"])))) for b in bodies), default=0),  # type: ignore[arg-type]
        delay,
        max(answered) if answered else None,
        len(probe.times) - len(answered),
        outcome_of(daemon, name),
    )


def arrived_at(server: Receiver, name: str) -> list[dict[str, float]]:
    return [
        {"at": request.at}
        for request in list(server.received)
        if Path(request.json()["data"]["article"]["path"]).name == name
    ]


def main() -> None:
    args = arguments(__doc__ or "", extra)
    size = args.size or (1024 * 1024 if args.quick else 10 * 1024 * 1024 - 4096)
    inputs = [("ordinary", ordinary(size)), *corpus(size)]
    if args.only:
        keep = set(args.only.split(",")) | {"ordinary"}
        inputs = [(name, text) for name, text in inputs if name in keep]
    results: list[Result] = []
    with scratch("hostile", args.keep) as root, receiver() as server:
        for number, (name, text) in enumerate(inputs):
            progress(f"{name}: {len(text.encode()) / 1e6:.1f} MB")
            result = run_one(root / f"{number:02d}-{name}", server, f"{name}.txt", text, args.timeout)
            progress(f"  cpu {result.cpu:.2f}s, rss {result.rss:.0f} MB, delay {result.delay}, {result.outcome}")
            results.append(result)
    report(results)


def extra(parser: object) -> None:
    parser.add_argument("--only", help="comma-separated input names (the ordinary baseline always runs)")  # type: ignore[attr-defined]
    parser.add_argument("--size", type=int, help="bytes per input (default 10 MB, --quick 1 MB)")  # type: ignore[attr-defined]
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for one input")  # type: ignore[attr-defined]


def report(results: list[Result]) -> None:
    base = results[0].cpu or 1e-9
    print()
    print(
        "| input | MB | CPU s | × ordinary | peak RSS MB | largest payload B | hits_total | small article delay s |"
        " /healthz max ms | outcome |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        delay = "never" if r.delay is None else f"{r.delay:.2f}"
        health = "none" if r.health_max is None else f"{r.health_max * 1000:.0f}"
        if r.unanswered:
            health += f" ({r.unanswered} unanswered)"
        print(
            f"| {r.name} | {r.size / 1e6:.1f} | {r.cpu:.2f} | {r.cpu / base:.1f} | {r.rss:.0f} | {r.payload:,} |"
            f" {r.hits_total:,} | {delay} | {health} | {r.outcome} |"
        )
    hostile = results[1:] or results
    worst = max(hostile, key=lambda r: r.cpu)
    delays = [r.delay if r.delay is not None else float("inf") for r in hostile]
    health = [r.health_max if r.health_max is not None else float("inf") for r in results]
    rows = [
        Row("worst CPU / ordinary article", worst.cpu / base, "×", 10.0, note=worst.name),
        Row("worst peak RSS", max(r.rss for r in results), "MB", 300.0),
        Row("largest payload", float(max(r.payload for r in results)), "B", float(PAYLOAD_CAP)),
        Row("worst small-article delay", max(delays), "s", 2.0),
        Row("slowest /healthz answer", max(health) * 1000, "ms", 100.0),
        Row("/healthz unanswered", float(sum(r.unanswered for r in results)), "", 0.0, kind="eq"),
    ]
    print_table("Hostile articles through the real daemon", rows, command_line())


if __name__ == "__main__":
    main()
