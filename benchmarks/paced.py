"""The ingest stage alone, one article at a time: back to back, and paced as `latency.py` writes them.

The daemon's `Pipeline` in this process (the shipped rules, a real SQLite file in WAL mode, the lease of each
article's deliveries in its transaction as the daemon does), fed `latency.py`'s articles (a third matching)
one per call, as the daemon's ingest thread gets them when articles come one at a time. Each round times a
fresh set of articles in CPU seconds of this process, either back to back or with a pause between them
(`--gap`, 20 ms by default: `latency.py`'s 50 articles/s); the two kinds of round take turns, and each
figure is the median of its rounds.

What it shows: how much of `latency.py`'s daemon CPU per article is the ingest work itself, and what the
pauses cost that same work (caches and branch predictors gone cold, the CPU clocked down, a virtual CPU
descheduled): the same Python, SQL and lingua calls cost more when nothing ran just before them. The rest of
the daemon's figure is the event loop (inotify, the POST) and the outcome threads.

    python benchmarks/paced.py [--quick] [--gap SECONDS]
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

from common import Corpus, Row, arguments, command_line, print_table, progress, scratch

from benchmarks.kit.corpus import plan
from benchmarks.kit.rules import shipped_rules_text
from monitor.config.logs import configure
from monitor.config.rules import load_rules
from monitor.config.settings import LimitsSettings
from monitor.ingest.pipeline import Pipeline
from monitor.matching import language
from monitor.store import Store

ROUNDS = {"quick": (4, 100), "full": (8, 250)}  # rounds of each kind, articles a round


class Handoff:
    """What the daemon's deliverer answers the pipeline: room for 8 deliveries, leased for 60 s; what it is
    handed is dropped (this measures ingest alone)."""

    def room(self) -> tuple[int, float]:
        return 8, 60.0

    def hand_over(self, *handed: object) -> None:
        pass


def main() -> None:
    args = arguments(__doc__.splitlines()[0], lambda p: p.add_argument("--gap", type=float, default=0.02))
    rounds, per_round = ROUNDS["quick" if args.quick else "full"]
    corpus = Corpus()
    rules = plan(per_round)
    with scratch("paced", args.keep) as home:
        (home / "rules.yaml").write_text(shipped_rules_text("http://127.0.0.1:9/hooks"), encoding="utf-8")
        watched = home / "watched"
        watched.mkdir()
        store = Store(f"sqlite:///{home / 'state.db'}")
        store.create()
        ruleset = load_rules(home / "rules.yaml", environ={})
        pipeline = Pipeline(store, lambda: ruleset, 10_000_000, LimitsSettings(), roots=[watched])
        pipeline.handoff = Handoff()  # type: ignore[assignment]
        language.warm()
        configure("INFO", "json")  # the daemon's log lines, to a file as its stderr would be
        log = (home / "daemon.log").open("w", encoding="utf-8")
        progress(f"{rounds} rounds each of {per_round} articles, back to back and {args.gap * 1000:g} ms apart")
        figures: dict[float, list[float]] = {0.0: [], args.gap: []}
        alerts = 0
        for number in range(2 * rounds + 2):  # the first two rounds warm up and are not counted
            gap = args.gap if number % 2 else 0.0
            paths = write_round(watched, corpus, rules, number)
            with contextlib.redirect_stderr(log):
                seconds, raised = timed(pipeline, paths, gap)
            if number >= 2:
                figures[gap].append(seconds / len(paths) * 1000)
                alerts += raised
        store.close()
        log.close()
    steady, paced = statistics.median(figures[0.0]), statistics.median(figures[args.gap])
    rows = [
        Row("articles", 2 * rounds * per_round, note=f"{rounds} rounds of each kind in turns, a third matching"),
        Row("alerts queued", alerts, note="one a matching article, as in latency.py"),
        Row("CPU per article, back to back", steady, "ms", note=spread(figures[0.0])),
        Row(f"CPU per article, {args.gap * 1000:g} ms apart", paced, "ms", note=spread(figures[args.gap])),
        Row("paced / back to back", paced / steady, "x", note="the same work, after a pause"),
    ]
    print_table("Ingest alone, one article at a time: back to back and paced", rows, command_line())


def write_round(folder: Path, corpus: Corpus, rules: list[str | None], number: int) -> list[str]:
    """A fresh set of articles (new names and texts: the ledger has none of them)."""
    paths = []
    for i, rule in enumerate(rules):
        path = folder / f"r{number:02d}-{i:05d}.txt"
        path.write_text(corpus.article(number * len(rules) + i, rule, f"p{number}"), encoding="utf-8")
        paths.append(str(path))
    return paths


def timed(pipeline: Pipeline, paths: list[str], gap: float) -> tuple[float, int]:
    """CPU seconds of this process to ingest the articles one per call (pauses not counted), and the alerts."""
    cpu = 0.0
    alerts = 0
    for path in paths:
        start = time.process_time()
        for result in pipeline.process_many([path]):
            alerts += result.alerts or 0
        cpu += time.process_time() - start
        if gap:
            time.sleep(gap)
    return cpu, alerts


def spread(values: list[float]) -> str:
    return "rounds " + ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
