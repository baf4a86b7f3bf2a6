"""Crash soak: kill -9 the real daemon at random moments while matching articles arrive, for N rounds.

    .venv/bin/python scripts/soak.py --rounds 50 --articles 200

Each round writes `--articles` articles into a watched folder while the daemon is killed and restarted
at random moments, then waits until every article is read and its delivery done, and checks: every
expected alert arrived, nothing unexpected, any duplicate carries the same webhook-id. Prints one line a
round and a summary; exits 1 on the first broken guarantee. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.cli.receiver import Receiver
from tests.conftest import SECRET, DaemonProcess

RULES = {
    "version": 1,
    "webhooks": {"hook": {"url": "", "secret": SECRET, "retry_schedule": ["0.2s"] + ["0.5s"] * 9}},
    "rules": [{"name": "hoogverraad", "query": "*hoogverraad*"}],
}


def one_round(number: int, articles: int, kills: int, rng: random.Random, home: Path) -> tuple[int, int]:
    receiver = Receiver().start()
    rules = {**RULES, "webhooks": {"hook": {**RULES["webhooks"]["hook"], "url": receiver.url}}}
    daemon = DaemonProcess(home / f"round-{number}", rules, settings={"watch": {"settle": "0.2s"}})
    names = [f"article-{i:05d}.txt" for i in range(articles)]
    try:
        daemon.start()

        def write() -> None:
            for i, name in enumerate(names):
                (daemon.watched / name).write_text(f"date 2022-01-08 Bericht {i}: opgepakt wegens hoogverraad.")
                if i % 10 == 9:
                    time.sleep(0.05)

        writer = threading.Thread(target=write)
        writer.start()
        for _ in range(kills):
            time.sleep(rng.uniform(0.1, 1.0))
            daemon.kill()
            daemon.start()
        writer.join()
        daemon.wait_settled(names, timeout=300)
        daemon.stop()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
        receiver.stop()
    ids: dict[str, set[str]] = {}
    for request in receiver.received:
        ids.setdefault(Path(request.json()["data"]["article"]["path"]).name, set()).add(request.headers["webhook-id"])
    if set(ids) != set(names):
        missing, extra = set(names) - set(ids), set(ids) - set(names)
        raise SystemExit(f"round {number}: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    if any(len(found) != 1 for found in ids.values()):
        raise SystemExit(f"round {number}: an alert arrived under two webhook-ids")
    return len(receiver.received), len(receiver.received) - len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3, help="kill -9 per round")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total_dupes = 0
    with tempfile.TemporaryDirectory(prefix="news-monitor-soak-") as home:
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            requests, dupes = one_round(number, args.articles, args.kills, rng, Path(home))
            total_dupes += dupes
            print(
                f"round {number}: {args.articles} alerts ok, {requests} requests, {dupes} duplicates "
                f"(same webhook-id), {time.monotonic() - started:.1f}s",
                flush=True,
            )
    print(f"{args.rounds} rounds x {args.kills} kills: nothing lost, {total_dupes} duplicates, all with their id")


if __name__ == "__main__":
    main()
