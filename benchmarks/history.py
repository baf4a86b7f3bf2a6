"""A year of news: start-up, reconcile and the periodic queries on a state of a million articles.

Builds a synthetic SQLite state in bulk (the schema of the code under test, `Store.create`): N ledger rows
and articles over the past 365 days, half of them matching one of four rules (two immediate rules sent to
two webhooks, two digest rules with their digests, claims and a few hundred alerts still pending), so
about N/2 alerts and N/2 deliveries, almost all delivered. Ids are the daemon's (`make_id`), payloads of
the size the daemon writes. Only the newest `--on-disk` articles exist as files in the watched folder
(with the ledger's size and mtime): the ledger holds N rows, the folder listing is smaller.

Measured:
- the database size per million articles (after a WAL checkpoint; per table when SQLite has `dbstat`);
- `news-monitor run` on that state: start to the first 200 of /readyz, then the start-up reconcile
  (the folder listing against the ledger, a chunk at a time) until it has read 20 new files; the daemon's peak RSS
  (VmHWM) then, beside the same daemon's on an empty state;
- in a fresh process, before the daemon runs, the daemon's own functions on the built store: one reconcile scan
  (`Daemon._unseen`: time and the RSS it adds), the digest-flush check (the `EXISTS` of `flush_digest`),
  `oldest_pending` (start-up catch-up), the flush's pending-alert query, the realert lookup (`_recent`)
  and `next_due`: the median of repeated runs, with SQLite's query plan for each;
- after the daemon has run, in a fresh process: the retention prune (`monitor.store.retention.prune`, default
  `state.retention`, the rules' longest realert) on that state: its time and rows deleted per table, the
  database's size per million articles after it (its live pages: SQLite reuses the free ones; per table
  when it has `dbstat`), and after a VACUUM that gives the free pages back to the file system.

    /work/venv/bin/python benchmarks/history.py [--quick] [--articles N] [--on-disk N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import (
    HOOK_PATH,
    PYTHON,
    SECRET,
    Daemon,
    Row,
    arguments,
    command_line,
    print_table,
    progress,
    receiver,
    scratch,
    source_root,
)

YEAR = 365 * 86400.0
NEW_FILES = 20  # written before the daemon starts: its start-up reconcile reads them
PENDING = 2000  # the newest articles: their digest alerts are still pending
# rule -> (digest period in seconds or None, realert key); immediate rules go to both webhooks
RULES = {
    "hoogverraad": (None, ""),
    "arrestaties": (7200.0, ""),
    "dodental": (None, "date"),
    "csto": (86400.0, ""),
}
HOOKS = ("newsroom", "archive")
CHUNK = 50_000  # rows per executemany
RUNS = 30  # repetitions of each query (the median is shown)


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--articles", type=int, help="ledger rows and articles (default 1,000,000; quick 100,000)")
    parser.add_argument("--on-disk", type=int, help="of those, the newest as real files (default 10,000; quick 2,000)")
    parser.add_argument("--probe", nargs=2, metavar=("DB", "FOLDER"), help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--prune-state", nargs=2, metavar=("DB", "FOLDER"), help=argparse.SUPPRESS)  # another one


def rules_text(url: str) -> str:
    lines = ["version: 1", "webhooks:"]
    for hook in HOOKS:
        lines += [f"  {hook}:", f"    url: {url}", f"    secret: {SECRET}", "    format: generic"]
    lines.append("rules:")
    for name, (period, key) in RULES.items():
        lines += [f"  - name: {name}", f"    query: {name}"]
        if period is None:
            lines.append(f"    notify: [{', '.join(HOOKS)}]")
        else:
            lines += ["    notify: [newsroom]", f"    schedule: '0 {'*/2 *' if period == 7200 else '8 *'} * *'"]
        if key:
            lines += ["    realert: 6h", f"    realert_key: {key}"]
    return "\n".join(lines) + "\n"


# --- the synthetic state ----------------------------------------------------------------------------------
_PAYLOAD = json.dumps(
    {
        "alert_id": "%(id)s",
        "rule": "%(rule)s",
        "clause": "%(rule)s",
        "article": {
            "path": "%(path)s",
            "date": "%(date)s",
            "date_precision": "day",
            "content_hash": "%(hash)s",
            "size": 2140,
            "lead": "Het kabinet heeft gisteren in Den Haag een besluit genomen over de maatregelen die de regering"
            " volgende week aan het parlement voorlegt, volgens een woordvoerder van het ministerie.",
        },
        "hits_total": 2,
        "truncated": False,
        "hits": [
            {
                "term": "%(rule)s",
                "start": 812,
                "end": 824,
                "snippet": "volgens de politie zijn tientallen betogers %(rule)s in de hoofdstad, meldt het persbureau",
            },
            {
                "term": "%(rule)s",
                "start": 1530,
                "end": 1542,
                "snippet": "de woordvoerder bevestigde dat er meer %(rule)s zijn dan eerder gemeld door de omroep",
            },
        ],
    }
)


class Builder:
    """Rows of article `i` of `n`, created at evenly spaced times over the year before `now`."""

    def __init__(self, n: int, folder: Path, on_disk: int, now: float) -> None:
        from monitor.notify.alerts import make_id

        self.n, self.folder, self.on_disk, self.now = n, folder, on_disk, now
        self.make_id = make_id
        self.digest: dict[str, tuple[float, list[str]]] = {}  # rule -> (slot, alert ids) of the open digest

    def at(self, i: int) -> float:
        return self.now - YEAR + YEAR * i / self.n

    def path(self, i: int) -> str:
        if i >= self.n - self.on_disk:
            return str(self.folder / "recent" / f"a{i:07d}.txt")
        return str(self.folder / datetime.fromtimestamp(self.at(i), UTC).strftime("%Y/%m") / f"a{i:07d}.txt")

    def rows(self, i: int, stat: tuple[int, int] | None) -> dict[str, list[dict[str, Any]]]:
        t, path = self.at(i), self.path(i)
        digest = hashlib.sha256(f"history-{i}".encode()).hexdigest()
        size, mtime_ns = stat or (2140, int(t * 1e9))
        date = datetime.fromtimestamp(t, UTC).date().isoformat()
        matching = i % 2 == 0
        out: dict[str, list[dict[str, Any]]] = {
            "files": [
                {"path": path, "size": size, "mtime_ns": mtime_ns, "content_hash": digest, "outcome": "accepted"}
                | {"code": None, "reason": None, "seen_at": t}
            ],
            "articles": [
                {"content_hash": digest, "path": path, "article_date": date, "size": size}
                | {"matches": int(matching), "claimed_at": t}
            ],
            "alerts": [],
            "deliveries": [],
            "digest_claims": [],
        }
        if matching:
            self._alert(out, i, t, path, digest, date)
        return out

    def _alert(self, out: dict[str, list[dict[str, Any]]], i: int, t: float, path: str, digest: str, date: str) -> None:
        rule = list(RULES)[(i // 2) % len(RULES)]
        period, key = RULES[rule]
        alert_id = self.make_id(rule, digest)
        payload = _PAYLOAD % {"id": alert_id, "rule": rule, "path": path, "date": date, "hash": digest}
        pending = period is not None and i >= self.n - PENDING
        out["alerts"].append(
            {"id": alert_id, "rule": rule, "content_hash": digest, "payload": payload}
            | {"realert_key": date if key == "date" else "", "suppressed": False, "digest_pending": pending}
            | {"created_at": t}
        )
        if period is None:
            for hook in HOOKS:
                dead = i % 1000 == 0
                out["deliveries"].append(
                    self._delivery(self.make_id(alert_id, hook), hook, "alert", rule, t, alert_id=alert_id, dead=dead)
                )
        elif not pending:
            self._into_digest(out, rule, period, t, alert_id, len(payload))

    def _into_digest(
        self, out: dict[str, list[dict[str, Any]]], rule: str, period: float, t: float, alert_id: str, size: int
    ) -> None:
        slot = (t // period + 1) * period
        current = self.digest.get(rule)
        if current is not None and current[0] != slot:
            self._flush(out, rule, *current)
            current = None
        if current is None:
            current = self.digest[rule] = (slot, [])
        current[1].append(alert_id)

    def _flush(self, out: dict[str, list[dict[str, Any]]], rule: str, slot: float, ids: list[str]) -> None:
        from monitor.notify.payload import digest_parts, dumps

        when = datetime.fromtimestamp(slot, UTC).isoformat()
        for number, part in enumerate(digest_parts(rule, when, [(a, 1000) for a in ids], 262_144), 1):
            parts = ("digest", rule, "newsroom", when) + (() if number == 1 else (str(number),))
            out["deliveries"].append(
                self._delivery(self.make_id(*parts), "newsroom", "digest", rule, slot, dumps(part))
            )
        out["digest_claims"].append({"rule": rule, "slot": when, "flushed_at": slot})

    @staticmethod
    def _delivery(
        delivery_id: str,
        hook: str,
        kind: str,
        rule: str,
        t: float,
        payload: str | None = None,
        alert_id: str | None = None,
        dead: bool = False,
    ) -> dict[str, Any]:
        """An outbox row as the daemon queues it (monitor.notify.alerts), then as its attempts left it."""
        from monitor.store import DeliveryKind, NewDelivery

        row = NewDelivery(delivery_id, hook, DeliveryKind(kind), rule, t, alert_id, payload).row()
        row.update(
            state="dead" if dead else "delivered",
            attempts=5 if dead else 1,
            lease_until=None,
            last_status=500 if dead else 200,
            last_error="HTTP 500" if dead else None,
            delivered_at=None if dead else t + 0.05,
        )
        return row


def write_files(builder: Builder) -> dict[int, tuple[int, int]]:
    """The newest articles as small real files, with the ledger's mtime; {i: (size, mtime_ns)}."""
    stats = {}
    folder = builder.folder / "recent"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(builder.n - builder.on_disk, builder.n):
        path = Path(builder.path(i))
        path.write_text(f"date 2025-01-01\nBericht {i}.\n", encoding="utf-8")
        mtime_ns = int(builder.at(i) * 1e9)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        stats[i] = (path.stat().st_size, mtime_ns)
    return stats


def build(db: Path, folder: Path, n: int, on_disk: int) -> float:
    """The state of `n` articles in `db`, the newest `on_disk` of them as files in `folder`; seconds taken."""
    from monitor.store import Store, schema  # bulk rows, straight into the tables

    start = time.perf_counter()
    store = Store(f"sqlite:///{db}")
    store.create()
    builder = Builder(n, folder, on_disk, time.time() - 3 * 86400)  # the year ends 3 days ago: nothing is due
    stats = write_files(builder)
    tables = {name: schema.metadata.tables[name] for name in ("files", "articles", "alerts", "deliveries")}
    tables["digest_claims"] = schema.digest_claims
    for lo in range(0, n, CHUNK):
        batch: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
        for i in range(lo, min(n, lo + CHUNK)):
            for name, rows in builder.rows(i, stats.get(i)).items():
                batch[name] += rows
        with store.engine.begin() as conn:
            for name, rows in batch.items():
                if rows:
                    conn.execute(tables[name].insert(), rows)
        if lo // CHUNK % 4 == 3:
            progress(f"built {lo + CHUNK:,} of {n:,} articles")
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - start


def table_sizes(db: Path) -> dict[str, float]:
    """MB per table with its indexes (SQLite's dbstat), empty when SQLite was built without it."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT tbl_name, sum(pgsize) FROM dbstat JOIN sqlite_master USING (name) GROUP BY 1")
            return {name: size / 1e6 for name, size in rows}
    except sqlite3.Error:
        return {}


# --- the daemon -------------------------------------------------------------------------------------------
def run_daemon(home: Path, url: str, build_state: Callable[[Path, Path], None]) -> dict[str, Any]:
    """`news-monitor run` on the state `build_state(db, folder)` makes, with NEW_FILES files it has not seen:
    start to ready, then until its start-up reconcile has read them; its peak RSS then."""
    daemon = Daemon(home, rules_text(url))
    build_state(daemon.db, daemon.watched)
    new = [daemon.watched / "new" / f"n{k:03d}.txt" for k in range(NEW_FILES)]
    new[0].parent.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(new):
        path.write_text(f"date 2026-11-30\nEen nieuw bericht, nummer {k}.\n", encoding="utf-8")
        os.utime(path, (time.time() - 60, time.time() - 60))
    names = ", ".join(f"'{p}'" for p in new)
    out: dict[str, Any] = {}
    try:
        out["ready"] = daemon.start().ready_after
        deadline = time.monotonic() + 600
        while int(daemon.query(f"SELECT count(*) FROM files WHERE path IN ({names})") or 0) < NEW_FILES:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the start-up reconcile did not read the new files:\n{daemon.log.read_text()[-3000:]}"
                )
            time.sleep(0.1)
        out["reconciled"] = time.perf_counter() - daemon.started_at
        out["rss"], out["peak"] = daemon.rss_mb()
    finally:
        out["status"] = daemon.stop(timeout=120)
        out["problems"] = daemon.log_problems()
    return out


# --- the probe: the daemon's functions on the built store, in a fresh process ------------------------------
def _memory() -> tuple[float, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _median_ms(call: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _plan(conn: Any, statement: Any) -> str:
    """SQLite's query plan of a statement, one line."""
    compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return "; ".join(row[-1] for row in rows)


def probe(db: Path, folder: Path) -> dict[str, Any]:
    from sqlalchemy import exists, select

    from monitor.daemon import Daemon as MonitorDaemon
    from monitor.store import Store
    from monitor.store.alerts import _ALERTED_SINCE
    from monitor.store.digests import _waiting
    from monitor.store.schema import alerts

    store = Store(f"sqlite:///{db}")
    out: dict[str, Any] = {}
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM meta").all()  # connected before the baseline
    before, _ = _memory()
    owner = SimpleNamespace(
        store=store, settings=SimpleNamespace(watch=SimpleNamespace(folders=[folder], suffixes=[".txt"]))
    )
    owner._listing = lambda: MonitorDaemon._listing(owner)  # type: ignore[arg-type]
    start = time.perf_counter()
    found, _recent = MonitorDaemon._unseen(owner, 2.0)  # type: ignore[arg-type]
    out["reconcile_s"] = time.perf_counter() - start
    out["reconcile_found"] = len(found)
    out["reconcile_rss"] = _memory()[1] - before
    now = time.time()
    slot = datetime.now(UTC)
    digests = [SimpleNamespace(name=name) for name, (period, _) in RULES.items() if period is not None]
    realerts = [(name, key) for name, (_, key) in RULES.items() if key]
    with store.engine.connect() as conn:
        checks = [select(exists().where(_waiting(rule.name, slot.timestamp()))) for rule in digests]
        out["flush_check_ms"] = _median_ms(lambda: [conn.execute(q).scalar() for q in checks]) / len(checks)
        out["flush_check_plan"] = _plan(conn, checks[0])
        query = select(alerts.c.id).where(_waiting(digests[0].name, slot.timestamp()))
        query = query.order_by(alerts.c.created_at, alerts.c.id)
        out["flush_query_ms"] = _median_ms(lambda: conn.execute(query).all())
        out["flush_query_rows"] = len(conn.execute(query).all())
        out["oldest_pending_ms"] = _median_ms(store.oldest_pending)
        out["oldest_pending_plan"] = _plan(conn, _oldest_pending_query())
        end = float(conn.exec_driver_sql("SELECT max(created_at) FROM alerts").scalar() or now)  # the newest
        day = datetime.fromtimestamp(end, UTC).date().isoformat()
        keys = [(name, day if key == "date" else "") for name, key in realerts]
        for label, window in (("realert_ms", 6 * 3600), ("realert_30d_ms", 30 * 86400)):
            since = end - window
            lookups = [{"rule": r, "key": k, "since": since} for r, k in keys]
            out[label] = _median_ms(lambda: [conn.execute(_ALERTED_SINCE, p).scalar() for p in lookups]) / len(keys)  # noqa: B023
        out["realert_plan"] = _plan(conn, _recent_query(keys[0][0], keys[0][1], since))
    out["next_due_ms"] = _median_ms(store.next_due)
    store.close()
    return out


def _oldest_pending_query() -> Any:
    from sqlalchemy import func, select

    from monitor.store.schema import alerts

    query = select(alerts.c.rule, func.min(alerts.c.created_at)).where(alerts.c.digest_pending.is_(True))
    return query.group_by(alerts.c.rule)


def _recent_query(rule: str, key: str, since: float) -> Any:
    """The statement of `monitor.notify.alerts._recent`, for its plan."""
    from sqlalchemy import exists, select

    from monitor.store.schema import alerts

    return select(
        exists().where(
            alerts.c.rule == rule,
            alerts.c.realert_key == key,
            alerts.c.suppressed.is_(False),
            alerts.c.created_at >= since,
        )
    )


def run_probe(db: Path, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(source_root())}
    command = [PYTHON, str(Path(__file__).resolve()), "--probe", str(db), str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the prune: retention on the state the daemon ran on, in a fresh process --------------------------------
def live_mb(db: Path) -> float:
    """MB of the database's pages in use (its size less the free pages SQLite reuses for new rows)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        pages, free, size = (
            conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "freelist_count", "page_size")
        )
    return float((pages - free) * size / 1e6)


def prune_state(db: Path, folder: Path) -> dict[str, Any]:
    from monitor.config.settings import RetentionSettings
    from monitor.store import Store
    from monitor.store.retention import prune

    store = Store(f"sqlite:///{db}")
    start = time.perf_counter()
    counts = prune(store, RetentionSettings(), [folder], timedelta(hours=6))  # the rules' realert: 6h
    out: dict[str, Any] = {"prune_s": time.perf_counter() - start, "counts": counts}
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["live"], out["tables"] = live_mb(db), table_sizes(db)
    start = time.perf_counter()
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    out["vacuum_s"], out["vacuumed"] = time.perf_counter() - start, db.stat().st_size / 1e6
    return out


def run_prune(db: Path, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(source_root())}
    command = [PYTHON, str(Path(__file__).resolve()), "--prune-state", str(db), str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"prune failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the table --------------------------------------------------------------------------------------------
def report(
    n: int,
    on_disk: int,
    built: float,
    size: float,
    tables: dict[str, float],
    full: dict[str, Any],
    empty: dict[str, Any],
    p: dict[str, Any],
    pruned: dict[str, Any],
) -> list[Row]:
    scale = 1e6 / n
    at = "1 M" if n == 1_000_000 else f"{n:,}"
    bounded = n >= 1_000_000
    split = ", ".join(f"{k} {v * scale:.0f}" for k, v in sorted(tables.items(), key=lambda kv: -kv[1]) if v > 1)
    problems = full["problems"] + empty["problems"]
    after = ", ".join(
        f"{k} {v * scale:.0f}" for k, v in sorted(pruned["tables"].items(), key=lambda kv: -kv[1]) if v > 1
    )
    deleted = ", ".join(f"{k} {v:,}" for k, v in pruned["counts"].items())
    return [
        Row("state built", built, "s", note=f"{n:,} articles, {n // 2:,} alerts, {on_disk:,} files on disk"),
        Row("DB size per million articles", size * scale / 1000, "GB", note=f"MB: {split}" if split else "no dbstat"),
        Row(
            "  after a prune (default retention)",
            pruned["live"] * scale / 1000,
            "GB",
            note=f"live pages; MB: {after}" if after else "live pages; no dbstat",
        ),
        Row(
            "  after the prune and a VACUUM",
            pruned["vacuumed"] * scale / 1000,
            "GB",
            note=f"VACUUM {pruned['vacuum_s']:.1f} s",
        ),
        Row("prune time", pruned["prune_s"], "s", note=f"rows deleted: {deleted}"),
        Row(
            f"start to ready, {at} articles",
            full["ready"],
            "s",
            2 if bounded else None,
            note=f"empty state {empty['ready']:.2f} s",
        ),
        Row(
            "start to start-up reconcile done",
            full["reconciled"],
            "s",
            note=f"{NEW_FILES} new files read; empty state {empty['reconciled']:.2f} s",
        ),
        Row(
            f"daemon peak RSS, {at} ledger rows",
            full["peak"],
            "MB",
            150 if bounded else None,
            note=f"empty state {empty['peak']:.0f} MB; VmHWM after the start-up reconcile",
        ),
        Row(
            "one reconcile scan (_unseen)",
            p["reconcile_s"],
            "s",
            note=f"in a fresh process; found {p['reconcile_found']}",
        ),
        Row("  RSS it adds", p["reconcile_rss"], "MB", note="VmHWM after - VmRSS before"),
        Row("digest-flush check (EXISTS)", p["flush_check_ms"], "ms", 10, note=p["flush_check_plan"]),
        Row("oldest_pending (start-up)", p["oldest_pending_ms"], "ms", 10, note=p["oldest_pending_plan"]),
        Row("flush's pending-alert query", p["flush_query_ms"], "ms", note=f"{p['flush_query_rows']} alerts"),
        Row("realert lookup (_recent)", p["realert_ms"], "ms", note=p["realert_plan"]),
        Row("  with realert: 30d", p["realert_30d_ms"], "ms", note="a window of a month"),
        Row("next_due (deliverer)", p["next_due_ms"], "ms"),
        Row(
            "daemon warnings",
            len(problems),
            "",
            0,
            "eq",
            note=f"exit {full['status']}/{empty['status']}" + (f": {problems[0][:80]}" if problems else ""),
        ),
    ]


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _extra)
    if args.probe:
        print(json.dumps(probe(Path(args.probe[0]), Path(args.probe[1]))))
        return
    if args.prune_state:
        print(json.dumps(prune_state(Path(args.prune_state[0]), Path(args.prune_state[1]))))
        return
    n = args.articles or (100_000 if args.quick else 1_000_000)
    on_disk = args.on_disk or (2_000 if args.quick else 10_000)
    made: dict[str, Any] = {}

    def full_state(db: Path, folder: Path) -> None:
        progress(f"building {n:,} articles")
        made["built"] = build(db, folder, n, on_disk)
        made["state"] = (db, folder)
        made["size"] = db.stat().st_size / 1e6
        made["tables"] = table_sizes(db)
        progress(f"built in {made['built']:.0f}s, {made['size']:.0f} MB")
        made["probe"] = run_probe(db, folder)  # before the daemon's start-up catch-up flushes the pending digests

    with scratch("history", args.keep) as home, receiver() as server:
        url = server.url + HOOK_PATH
        empty = run_daemon(home / "empty", url, lambda db, folder: None)
        progress(f"empty state: ready in {empty['ready']:.2f}s, peak {empty['peak']:.0f} MB")
        full = run_daemon(home / "full", url, full_state)
        progress(f"{n:,} articles: ready in {full['ready']:.2f}s, peak {full['peak']:.0f} MB")
        pruned = run_prune(*made["state"])
        progress(f"pruned in {pruned['prune_s']:.1f}s: {pruned['counts']}")
    rows = report(n, on_disk, made["built"], made["size"], made["tables"], full, empty, made["probe"], pruned)
    print_table(f"A year of news: {n:,} articles in the state", rows, command_line())


if __name__ == "__main__":
    main()
