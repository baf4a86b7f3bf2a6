"""Start-up and memory with 100, 10,000 and 100,000 rules; the command line's start.

For each rule count, the real daemon is started on a generated rules file (the four shipped rules plus
generated ones of the shapes users write: words, phrases, wildcards, boolean mixes with NOT, proximity,
list references, a few stemmed, digest and realert rules, over a Dutch vocabulary). Measured: the time
from starting the process to the first 200 from /readyz, the RSS at idle (2 s after ready), and the RSS
after a burst of articles dropped into the folder with one `cp -r` (read, matched and delivered to a real
receiver). With 100 and 10,000 rules in the run, a third daemon has 10,000 rules of which only the 100
rules' can fire (the rest are of the same shapes over words no article has): what rules that do not concern
the articles cost a burst, apart from the alerts that more rules raise.

First, the command line: the wall time of `news-monitor --version`, `--help`, `validate` and `health`
(median of interleaved runs, off a terminal) as a multiple of `python -c "import json"` in the same run
(issue 16: `--version` and `--help` at most 5x).

    /work/venv/bin/python benchmarks/startup.py [--quick] [--rules 100,10000,100000] [--cli-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from common import (
    HOOK_PATH,
    PYTHON,
    ROOT,
    Corpus,
    Daemon,
    Row,
    arguments,
    command_line,
    generated_rules_text,
    print_table,
    progress,
    receiver,
    scratch,
    source_root,
    summarize_profile,
    wait_until,
    write_corpus,
)

from monitor.cli.receiver import Receiver

# Articles in the burst after start-up, by rule count: more rules raise more alerts per article.
BURST = {"quick": 300, "full": 1000}
CLI_RUNS = {"quick": 10, "full": 30}
CLI_COMMANDS = {  # name: (argv after the program, target as a multiple of the bare interpreter)
    "--version": (["--version"], 5.0),
    "--help": (["--help"], 5.0),
    "validate": (["validate"], None),
    "health (nothing listening)": (["health", "--url", "http://127.0.0.1:9/healthz", "--timeout", "1"], None),
}


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", help="comma-separated rule counts (default 100,10000,100000; quick 100,10000)")
    parser.add_argument("--cli-only", action="store_true", help="measure the command line only, start no daemon")


def measure(
    home: Path,
    server: Receiver,
    rules: int,
    source: Path,
    articles: int,
    profile: Path | None,
    firing: int | None = None,
) -> dict[str, Any]:
    daemon = Daemon(home, generated_rules_text(rules, server.url + HOOK_PATH, firing=firing), profile=profile)
    size_mb = (home / "rules.yaml").stat().st_size / 1e6
    out: dict[str, Any] = {"rules": rules, "size": size_mb, "firing": firing}
    try:
        if profile is not None:  # record the start-up itself: py-spy starts the daemon
            daemon.start_recorded()
        out["ready"] = daemon.start().ready_after if profile is None else daemon.wait_ready()
        progress(f"{rules} rules: ready in {out['ready']:.2f}s")
        time.sleep(2.0)
        out["idle"], _ = daemon.rss_mb()
        before = len(server.received)
        cpu = sum(daemon.cpu_seconds())
        start = time.time()
        # Into the watched folder itself: each file then ends with its close event. A new folder's files copied
        # before its watch begins wait for the settle timer (2 s), which made this figure bimodal (the race,
        # not the rules; README "Performance").
        subprocess.run(["cp", "-r", f"{source}/.", str(daemon.watched)], check=True)
        out["finished"] = wait_until(
            lambda: daemon.ledger_count() >= articles and daemon.open_deliveries() == 0, 600, interval=0.2
        )
        out["cpu"] = sum(daemon.cpu_seconds()) - cpu  # to the end of the wait: up to 0.2 s of idle more
        last = max((r.at for r in server.received[before:]), default=start)
        seen = float(daemon.query("SELECT max(seen_at) FROM files") or start)
        out["burst_seconds"] = max(last, seen) - start
        out["alerts"] = len(server.received) - before
        out["after"], out["peak"] = daemon.rss_mb()
    finally:
        out["status"] = daemon.stop(timeout=120)
        out["problems"] = len(daemon.log_problems())
    return out


def cli_rows(runs: int) -> list[Row]:
    """The command line's wall times against the bare interpreter's, measured round-robin in one run."""
    program = Path(PYTHON).parent / "news-monitor"
    base = [str(program)] if program.exists() else [PYTHON, "-m", "monitor"]
    commands = {"python -c 'import json'": [PYTHON, "-c", "import json"]}
    commands |= {name: [*base, *argv] for name, (argv, _) in CLI_COMMANDS.items()}
    env = {**os.environ, "PYTHONPATH": str(source_root())}  # this checkout's code, whatever is installed
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    bare = medians.pop("python -c 'import json'")
    rows = [Row("python -c 'import json'", bare * 1000, "ms", note=f"median of {runs}")]
    for name, (_, target) in CLI_COMMANDS.items():
        note = f"{medians[name] * 1000:.0f} ms"
        rows.append(Row(f"news-monitor {name}: x bare python", medians[name] / bare, "x", target, note=note))
    progress(", ".join(f"{row.name} {row.value:.2f}" for row in rows))
    return rows


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _extra)
    counts = (
        [int(n) for n in args.rules.split(",")]
        if args.rules
        else ([100, 10_000] if args.quick else [100, 10_000, 100_000])
    )
    articles = BURST["quick" if args.quick else "full"]
    cli = cli_rows(CLI_RUNS["quick" if args.quick else "full"])
    if args.cli_only:
        counts = []
    corpus = Corpus()
    results = []
    with scratch("startup", args.keep) as home, receiver() as server:
        source = home / "src" / "burst"
        write_corpus(corpus, source, articles, "s")
        for rules in counts:
            profile = None
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"startup-{rules}-rules.raw"
            results.append(measure(home / f"r{rules}", server, rules, source, articles, profile))
            if profile is not None:
                print(summarize_profile(profile))
        if 100 in counts and 10_000 in counts:
            results.append(measure(home / "r10000-silent", server, 10_000, source, articles, None, firing=100))
    rows = list(cli)
    for r in results:
        n = r["rules"]
        tag = f"{n:,} rules" + (f" ({r['firing']} can fire)" if r["firing"] else "")
        bounded = n == 10_000 and not r["firing"]
        rows += [
            Row(
                f"{tag}: start to ready", r["ready"], "s", 2 if bounded else None, note=f"rules file {r['size']:.1f} MB"
            ),
            Row(f"{tag}: RSS idle", r["idle"], "MB", 200 if bounded else None),
            Row(
                f"{tag}: RSS after the burst",
                r["after"],
                "MB",
                200 if bounded else None,
                note=f"peak {r['peak']:.0f} MB",
            ),
            Row(
                f"{tag}: burst of {articles} articles",
                articles / r["burst_seconds"] if r["finished"] else None,
                "articles/s",
                note=f"{r['alerts']} alerts delivered in {r['burst_seconds']:.1f}s"
                + ("" if r["finished"] else " (did NOT finish)")
                + (f"; exit {r['status']}, {r['problems']} warning log lines" if r["status"] or r["problems"] else ""),
            ),
            Row(
                f"{tag}: daemon CPU in the burst",
                r["cpu"] * 1000 / articles,
                "ms/article",
                note=f"{r['cpu'] * 1000 / max(r['alerts'], 1):.1f} ms per alert delivered",
            ),
        ]
    speed = {(r["rules"], r["firing"]): articles / r["burst_seconds"] for r in results if r["finished"]}
    alerts = {(r["rules"], r["firing"]): r["alerts"] for r in results}
    base = (100, None)
    if base in speed and (10_000, None) in speed:  # issue 19: the burst's cost flat in the number of rules
        rows.append(
            Row(
                "burst 10,000 rules / 100 rules",
                speed[10_000, None] / speed[base],
                "",
                0.7,
                kind="min",
                note=f"articles/s; the 10,000 rules raise {alerts[10_000, None] / max(alerts[base], 1):.1f}x"
                " the alerts",
            )
        )
    if base in speed and (10_000, 100) in speed:
        rows.append(
            Row(
                "burst 10,000 rules (100 can fire) / 100 rules",
                speed[10_000, 100] / speed[base],
                "",
                note=f"articles/s; {alerts[10_000, 100]} and {alerts[base]} alerts: the cost of 9,900 rules that "
                "do not fire",
            )
        )
    print_table("Start-up and memory by rule count", rows, command_line())


if __name__ == "__main__":
    main()
