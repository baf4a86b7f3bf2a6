"""Replicas on one shared folder: CPU per article with 1 and with 2 replicas, and whether each file is read once.

The real daemon (`news-monitor run`, the shipped immediate rules, signed generic webhooks to a real receiver
on 127.0.0.1) runs as 1 replica and then as 2 replicas against one PostgreSQL (a fresh database per run,
on the server of `scripts/postgres.sh` or `--url`), all watching one folder with the native observer (every
replica sees every file close at once: the worst case for duplicated reading; `--observer polling` for a
network share's). N articles (a third matching one rule) are renamed into the folder at once; the run ends
when every article is in the ledger and every alert delivered.

Measured per run: the replicas' CPU (user + system from /proc, summed over the replicas) per article, from
the first rename until every file is in the ledger and then `watch.read_lease` (5 s here) and 2 s more, so
that it includes the second look at the files another replica was reading; also net of their idle CPU
(measured for a few seconds before the burst, as a rate); the CPU of their PostgreSQL backends; files read
by more than one replica (`article_read` log events by path); deadlocks (pg_stat_database.deadlocks of the
run's database); missing and duplicate alerts. Rounds of 1 then 2 replicas (`--runs`, default 3) show
medians; then the ratio of the 2-replica CPU per article (net of idle) to the 1-replica one.

    /work/main/.venv/bin/python benchmarks/replicas.py [--quick] [--articles N] [--runs R] [--url URL]
                                                       [--observer polling]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    HOOK_PATH,
    ROOT,
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
    source_root,
    tally,
    wait_until,
    write_corpus,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from benchmarks.kit.harness import reads
from benchmarks.kit.postgres import fresh_database
from monitor.cli.receiver import Receiver

IDLE = 3.0  # seconds of idle CPU measured before each burst
LEASE = 5.0  # watch.read_lease: files claimed by the other replica are looked at again this long after


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--articles", type=int, help="articles in the burst (default 2,000; quick 500)")
    parser.add_argument("--url", help="a PostgreSQL server URL (default: MONITOR_TEST_PG_URL or scripts/postgres.sh)")
    parser.add_argument("--observer", choices=["native", "polling"], default="native")
    parser.add_argument("--runs", type=int, help="rounds of 1 then 2 replicas (default 3; quick 1): medians shown")


def lease_setting() -> dict[str, str]:
    """`watch.read_lease`, unless the daemon's code predates it (BENCH_SOURCE of an older tree, to compare)."""
    settings = source_root() / "monitor" / "settings.py"
    return {"read_lease": f"{LEASE}s"} if "read_lease" in settings.read_text(encoding="utf-8") else {}


def server_url(given: str | None) -> str:
    if given or os.environ.get("MONITOR_TEST_PG_URL"):
        return str(given or os.environ["MONITOR_TEST_PG_URL"])
    done = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextmanager
def probing(url: str) -> Iterator[Engine]:
    """An engine of one connection that the script's queries reuse (a new backend per poll would load the
    server being measured)."""
    engine = create_engine(url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend of the run's database but this one, from /proc
    (the server runs on this machine)."""
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalars()
        found = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return found


def cpu(daemons: list[Daemon]) -> float:
    return sum(sum(daemon.cpu_seconds()) for daemon in daemons)


@dataclass
class Run:
    replicas: int
    articles: int
    finished: bool
    seconds: float
    cpu: float  # CPU seconds of all replicas from the burst until the look-again after the read lease
    database: float  # CPU seconds of their PostgreSQL backends meanwhile
    idle: float  # of which idle CPU, by the rate measured before the burst
    per_replica: list[int]  # files read by each replica
    twice: int  # files read by more than one replica
    deadlocks: int
    missing: int
    duplicates: int
    problems: int

    @property
    def per_article(self) -> float:
        return self.cpu / self.articles * 1000

    @property
    def net_per_article(self) -> float:
        return max(0.0, self.cpu - self.idle) / self.articles * 1000


def run(replicas: int, server: str, observer: str, home: Path, corpus: Corpus, count: int, hook: Receiver) -> Run:
    """`replicas` daemons on a fresh database and one folder; a burst of `count` articles renamed into it."""
    tag = f"r{replicas}"
    staging, shared = home / f"staging-{tag}", home / f"shared-{tag}"
    shared.mkdir(parents=True)
    expected = write_corpus(corpus, staging, count, tag)
    wanted = sum(1 for rule in expected.values() if rule)
    with fresh_database(server, "bench") as url, probing(url) as probe:
        settings = {
            "watch": {"folders": [str(shared)], "observer": observer, "settle": "0.5s", **lease_setting()},
            "state": {"url": url},
        }
        rules = shipped_rules_text(hook.url + HOOK_PATH)
        daemons = [Daemon(home / f"{tag}-{n}", rules, settings) for n in range(replicas)]
        before = len(arrivals(hook))
        try:
            for daemon in daemons:
                daemon.start()
            time.sleep(1.0)  # past the start-up reconcile and catch-up
            idle_start = cpu(daemons)
            time.sleep(IDLE)
            idle_rate = (cpu(daemons) - idle_start) / IDLE
            progress(f"{replicas} replica(s) ready; idle {idle_rate * 100:.1f} % of a core; renaming {count} files in")
            start_cpu, start_db, t0 = cpu(daemons), backend_cpu(probe), time.monotonic()
            for name in sorted(expected):
                os.rename(staging / name, shared / name)

            def done() -> bool:
                ledger = int(scalar(probe, "SELECT count(*) FROM files") or 0)
                open_ = scalar(probe, "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying')")
                return ledger >= count and len(arrivals(hook)) - before >= wanted and int(open_ or 0) == 0

            finished = wait_until(done, 300, interval=0.2)
            seconds = time.monotonic() - t0
            time.sleep(LEASE + 2.0)  # files read elsewhere are looked at again; a late duplicate would arrive
            used, window = cpu(daemons) - start_cpu, time.monotonic() - t0
            database = sum(seconds - start_db.get(pid, 0.0) for pid, seconds in backend_cpu(probe).items())
            deadlocks = int(
                scalar(probe, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()") or 0
            )
        finally:
            for daemon in daemons:
                daemon.stop()
        missing, duplicates = tally(expected, arrivals(hook)[before:])
    counted = [reads(daemon.log) for daemon in daemons]
    total = sum(counted, collections.Counter())
    return Run(
        replicas,
        count,
        finished,
        seconds,
        used,
        database,
        idle_rate * window,
        [sum(c.values()) for c in counted],
        sum(1 for n in total.values() if n > 1),
        deadlocks,
        missing,
        duplicates,
        sum(len(daemon.log_problems()) for daemon in daemons),
    )


def rows_of(runs: list[Run]) -> list[Row]:
    """The figures of the runs of one replica count: medians of the CPU and time, sums of the counts."""
    label = f"{runs[0].replicas} replica" + ("s" if runs[0].replicas > 1 else "")
    done = "" if all(r.finished for r in runs) else " (NOT all finished)"
    each = ", ".join(f"{r.per_article:.2f}" for r in runs)
    missing, duplicates = sum(r.missing for r in runs), sum(r.duplicates for r in runs)
    return [
        Row(f"{label}: CPU per article", median(r.per_article for r in runs), "ms", note=f"median of {each}{done}"),
        Row(
            f"{label}: CPU per article, net of idle",
            median(r.net_per_article for r in runs),
            "ms",
            note=f"idle CPU {median(r.idle for r in runs):.2f} s a run",
        ),
        Row(
            f"{label}: PostgreSQL CPU per article",
            median(r.database / r.articles * 1000 for r in runs),
            "ms",
            note="the replicas' backends (those alive at the end), from /proc",
        ),
        Row(f"{label}: throughput", median(r.articles / r.seconds for r in runs), "articles/s"),
        Row(
            f"{label}: files read more than once",
            sum(r.twice for r in runs),
            target=0,
            kind="eq",
            note="files read per replica " + " ".join(str(r.per_replica) for r in runs),
        ),
        Row(
            f"{label}: deadlocks",
            sum(r.deadlocks for r in runs),
            target=0,
            kind="eq",
            note="pg_stat_database.deadlocks of each run's database",
        ),
        Row(
            f"{label}: missing + duplicate alerts",
            missing + duplicates,
            target=0,
            kind="eq",
            note=f"missing {missing}, duplicates {duplicates}; {sum(r.problems for r in runs)} warning log lines",
        ),
    ]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _extra)
    count = args.articles or (500 if args.quick else 2000)
    rounds = args.runs or (1 if args.quick else 3)
    server = server_url(args.url)
    corpus = Corpus()
    corpus.check()
    results: dict[int, list[Run]] = {1: [], 2: []}
    with scratch("replicas", args.keep) as home, receiver() as hook:
        for number in range(rounds):  # 1 and 2 replicas in turn: both see the same moments of a shared machine
            for replicas in results:
                results[replicas].append(run(replicas, server, args.observer, home / str(number), corpus, count, hook))
    one, two = results[1], results[2]
    ratios = ", ".join(f"{b.net_per_article / a.net_per_article:.2f}" for a, b in zip(one, two, strict=True))
    raw = median(r.per_article for r in two) / median(r.per_article for r in one)
    with_db = median(r.cpu + r.database - r.idle for r in two) / median(r.cpu + r.database - r.idle for r in one)
    rows = rows_of(one) + rows_of(two)
    rows.append(
        Row(
            "CPU per article, 2 replicas / 1",
            median(r.net_per_article for r in two) / median(r.net_per_article for r in one),
            "x",
            1.15,
            note=f"net of idle, of the medians; each round {ratios}; not net {raw:.2f} x;"
            f" with PostgreSQL {with_db:.2f} x",
        )
    )
    title = f"Replicas: bursts of {count} articles into one shared folder ({args.observer} observer), 1 and 2 replicas"
    print_table(title, rows, command_line())


if __name__ == "__main__":
    main()
