"""Rename-in latency: articles written in a staging folder beside the watched one (same filesystem), then
renamed into it one at a time, the atomic-delivery pattern of scripts and sync tools; measured from the
rename to the webhook received, through the real daemon (shipped settings: native observer, 2 s settle).

A file renamed in from an unwatched folder is complete at once unless a process holds it open for writing
(one look at /proc off the loop); before the sixth session of issue 19 it waited for the settle timer.

    python benchmarks/rename_in.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import time

from common import HOOK_PATH, Corpus, Daemon, Row, arguments, command_line, print_table, receiver, scratch, wait_until

from benchmarks.kit.corpus import plan
from benchmarks.kit.rules import shipped_rules_text

ARTICLES = {"quick": 20, "full": 100}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    count = ARTICLES["quick" if args.quick else "full"]
    corpus = Corpus()
    with scratch("rename-in", args.keep) as home, receiver() as server:
        daemon = Daemon(home / "d", shipped_rules_text(server.url + HOOK_PATH))
        daemon.start()
        staging = home / "staging"
        staging.mkdir()
        seconds: list[float] = []
        try:
            for i, rule in enumerate([rule for rule in plan(3 * count) if rule][:count]):
                staged = staging / f"mv{i:05d}.txt"
                staged.write_text(corpus.article(i, rule, "mv"), encoding="utf-8")
                before = len(server.received)
                start = time.time()
                os.rename(staged, daemon.watched / staged.name)
                wait_until(lambda n=before: len(server.received) > n, 30, interval=0.002)
                seconds.append(server.received[before].at - start)
        finally:
            status = daemon.stop()
    seconds.sort()
    rows = [
        Row("articles renamed in", count, note="one at a time, each alerted once before the next"),
        Row("rename -> webhook, p50", statistics.median(seconds) * 1000, "ms", note="settle is 2 s"),
        Row("rename -> webhook, max", seconds[-1] * 1000, "ms", 2000, note=f"daemon exit status {status}"),
    ]
    print_table("Rename-in latency", rows, command_line())


if __name__ == "__main__":
    main()
