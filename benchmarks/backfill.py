"""Backfill throughput: `news-monitor backfill DIR` over 50,000 existing article files.

The archive is 50,000 generated Dutch articles in ten subfolders, a third of them matching one shipped
rule each. The command runs as a user runs it (a fresh SQLite state, the shipped rules; alerts are queued
in the outbox for a daemon to deliver), and is timed from process start to exit. A second run over the
same folder shows the resume path (every file already in the ledger).

    /work/venv/bin/python benchmarks/backfill.py [--quick] [--no-send]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from common import (
    PYTHON,
    Corpus,
    Daemon,
    Row,
    arguments,
    command_line,
    print_table,
    progress,
    scratch,
    shipped_rules_text,
    source_root,
    write_corpus,
)


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-send", action="store_true", help="pass --no-send to backfill (record alerts only)")


def backfill(home: Path, archive: Path, no_send: bool, profile: Path | None) -> tuple[float, str]:
    """Run the command; (wall seconds, its summary line)."""
    command = [PYTHON, "-m", "monitor", "backfill", str(archive), "--config", str(home / "monitor.yaml")]
    if no_send:
        command.append("--no-send")
    if profile is not None:
        command = [
            str(Path(PYTHON).parent / "py-spy"),
            "record",
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(profile),
            "--",
            *command,
        ]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(source_root())}
    done = subprocess.run(command, cwd=home, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"backfill failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = [line for line in done.stdout.splitlines() if line.startswith("backfill of")]
    return seconds, summary[-1] if summary else done.stdout.strip()[-200:]


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _extra)
    count = 5000 if args.quick else 50_000
    corpus = Corpus()
    corpus.check()
    with scratch("backfill", args.keep) as home:
        progress(f"writing {count} articles in subfolders of {count // 10}")
        archive = home / "archive"
        expected = write_corpus(corpus, archive, count, "a", per_folder=count // 10)
        wanted = sum(1 for rule in expected.values() if rule)
        state = Daemon(home / "bf", shipped_rules_text("http://127.0.0.1:9/hooks/newsroom"))  # config only
        profile = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = args.profile / "backfill.raw"
        progress(f"backfill of {count} files" + (" --no-send" if args.no_send else ""))
        seconds, summary = backfill(state.home, archive, args.no_send, profile)
        ledger = state.ledger_count()
        alerts = int(state.query("SELECT count(*) FROM alerts") or 0)
        queued = int(state.query("SELECT count(*) FROM deliveries") or 0)
        progress("again over the same folder (resume: every file already seen)")
        again, again_summary = backfill(state.home, archive, args.no_send, None)
    if profile is not None:
        from common import summarize_profile

        print(summarize_profile(profile))
    rows = [
        Row("files", count, note="10 subfolders, ~2.1 KB each, a third matching"),
        Row("files in the ledger", ledger, target=count, kind="eq"),
        Row("alerts recorded", alerts, target=wanted, kind="eq", note=f"deliveries queued {queued}"),
        Row("wall time", seconds, "s", note=summary),
        Row("backfill throughput", count / seconds, "articles/s", 1000, kind="min"),
        Row("resume run (all seen)", count / again, "articles/s", note=f"{again:.1f}s; {again_summary}"),
    ]
    print_table("Backfill: " + ("--no-send, " if args.no_send else "") + f"{count:,} files", rows, command_line())


if __name__ == "__main__":
    main()
