"""Stories: the cost of assigning an article its story with 10,000 and 1,000,000 articles of history in the
window, and the burst throughput of the real daemon with stories on and off, in one run.

1. The index (monitor.matching.stories.StoryIndex), in this process, on synthetic signatures of two kinds:
   - "distinct": unrelated articles share no salient word (their signatures are independent random values);
     an event's articles share about 40 % of their hash values. 10,000 and 1,000,000 articles of history.
   - "zipf": articles of 150 salient words drawn from a vocabulary of 100,000 with Zipf-like frequencies,
     so unrelated articles share common words (Jaccard about 0.05), each word with its own random hash per
     permutation (a MinHash family like datasketch's); events are variants (half the words swapped).
     10,000 and 100,000 articles: every pair whose words overlap by chance is a candidate with probability
     1 - (1 - J^2)^32, so the candidates, and the cost, grow with the history.
   A tenth of the history are events of several articles. The probes are 2,000 new articles, half of them
   variants of an article in the window. Timed per probe: `decide` (the LSH query and the verification)
   and `add`. Memory: the process's RSS after building each index. Target: the 1 M figure at most 2x the
   10 k figure.
2. The daemon: the shipped rules, a burst of articles copied in with one `cp -r`, timed from the copy to the
   last ledger row and delivered alert, once with `stories.enabled: true` and once with false (the runs
   alternate: off, on, off, on ...).

    /work/venv/bin/python benchmarks/stories.py [--quick]    (quick: 100,000 instead of 1,000,000)
    /work/venv/bin/python benchmarks/stories.py --burst-only
"""

from __future__ import annotations

import gc
import resource
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    HOOK_PATH,
    Corpus,
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
    write_corpus,
)

from monitor.cli.receiver import Receiver
from monitor.matching.stories import NUM_PERM, StoryEntry, StoryIndex

VOCABULARY = 100_000
WORDS = 150
PROBES = 2_000
NOW = 1_800_000_000.0
BURST = {"quick": 1000, "full": 3000}


class Synthetic:
    """Signatures of synthetic articles: a random hash per (word, permutation); a set's MinHash is the minimum."""

    def __init__(self, seed: int = 18) -> None:
        self.rng = np.random.default_rng(seed)
        self.hashes = self.rng.integers(0, 2**32, (VOCABULARY, NUM_PERM), dtype=np.uint32)
        weights = 1.0 / (np.arange(VOCABULARY) + 20.0)
        self.weights = weights / weights.sum()

    def random(self, count: int) -> np.ndarray:
        """Signatures of `count` articles of words no other article has: independent random values."""
        return self.rng.integers(0, 2**32, (count, NUM_PERM), dtype=np.uint32)

    def related(self, signatures: np.ndarray) -> np.ndarray:
        """Signatures sharing about 40 % of their values with the given ones (Jaccard about 0.4)."""
        changed = signatures.copy()
        swap = self.rng.random(changed.shape) < 0.6
        changed[swap] = self.random(len(changed))[swap]
        return changed

    def words(self, count: int) -> np.ndarray:
        """`count` articles' words (indices), each row WORDS draws (a word drawn twice counts once)."""
        return self.rng.choice(VOCABULARY, size=(count, WORDS), p=self.weights)

    def variants(self, words: np.ndarray) -> np.ndarray:
        """The articles with half their words swapped for others: the same event, written differently."""
        changed = words.copy()
        changed[:, WORDS // 2 :] = self.words(len(words))[:, WORDS // 2 :]
        return changed

    def signatures(self, words: np.ndarray) -> list[bytes]:
        out: list[bytes] = []
        for start in range(0, len(words), 2000):
            block = self.hashes[words[start : start + 2000]].min(axis=1).astype("<u4")
            out.extend(row.tobytes() for row in block)
        return out


def history(source: Synthetic, kind: str, count: int) -> np.ndarray:
    """`count` articles of history (their words for "zipf", their signatures for "distinct"), a tenth of
    them variants of an earlier one (events of several articles)."""
    rows = source.words(count) if kind == "zipf" else source.random(count)
    events = np.arange(count // 10, count)[::9]
    change = source.variants if kind == "zipf" else source.related
    rows[events] = change(rows[events - count // 10])
    return rows


def signatures(source: Synthetic, kind: str, rows: np.ndarray) -> list[bytes]:
    if kind == "zipf":
        return source.signatures(rows)
    return [row.astype("<u4").tobytes() for row in rows]


def entries(made: list[bytes]) -> Iterator[StoryEntry]:
    for number, signature in enumerate(made):
        at = NOW - 3600 + number * 1e-3
        yield StoryEntry(f"{number:064x}", f"story_{number:016x}", f"{number}.txt", 1, at, at, signature, ("r",))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def assignment(source: Synthetic, kind: str, count: int) -> dict[str, Any]:
    """Build an index of `count` articles of history, then time PROBES assignments against it."""
    start = time.perf_counter()
    rows = history(source, kind, count)
    index = StoryIndex(window=72 * 3600.0)
    index.load(entries(signatures(source, kind, rows)))
    gc.collect()
    built = time.perf_counter() - start
    memory = rss_mb()
    progress(f"{kind}: {count:,} articles indexed in {built:.0f}s, RSS {memory:.0f} MB")
    pick = source.rng.integers(0, count, PROBES)
    probes = source.words(PROBES) if kind == "zipf" else source.random(PROBES)
    probes[::2] = (source.variants if kind == "zipf" else source.related)(rows[pick[::2]])
    del rows
    timings, joined = [], 0
    for number, signature in enumerate(signatures(source, kind, probes)):
        entry = StoryEntry(f"p{number:063x}", "", f"p{number}.txt", 0, NOW, NOW, signature, ("r",))
        began = time.perf_counter()
        ref = index.decide(entry)
        index.add(entry)
        timings.append(time.perf_counter() - began)
        joined += not ref.started
    del index
    gc.collect()
    return {
        "kind": kind,
        "history": count,
        "median_us": statistics.median(timings) * 1e6,
        "mean_us": statistics.fmean(timings) * 1e6,
        "p99_us": sorted(timings)[int(len(timings) * 0.99)] * 1e6,
        "joined": joined,
        "rss": memory,
        "built": built,
    }


def burst(home: Path, server: Receiver, source: Path, articles: int, enabled: bool) -> dict[str, Any]:
    daemon = Daemon(home, shipped_rules_text(server.url + HOOK_PATH), settings={"stories": {"enabled": enabled}})
    try:
        daemon.start()
        before = len(server.received)
        start = time.time()
        subprocess.run(["cp", "-r", str(source), str(daemon.watched)], check=True)
        finished = wait_until(
            lambda: daemon.ledger_count() >= articles and daemon.open_deliveries() == 0, 600, interval=0.2
        )
        last = max((r.at for r in server.received[before:]), default=start)
        seen = float(daemon.query("SELECT max(seen_at) FROM files") or start)
        return {"seconds": max(last, seen) - start, "finished": finished, "alerts": len(server.received) - before}
    finally:
        daemon.stop(timeout=120)


def _extra(parser: Any) -> None:
    parser.add_argument("--burst-only", action="store_true", help="skip the index figures (part 1)")


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _extra)
    largest = 100_000 if args.quick else 1_000_000
    articles = BURST["quick" if args.quick else "full"]
    source = Synthetic()
    rows: list[Row] = []
    for kind, sizes in () if args.burst_only else (("distinct", (10_000, largest)), ("zipf", (10_000, 100_000))):
        results = [assignment(source, kind, count) for count in sizes]
        small, large = results
        rows += [
            Row(
                f"{kind}: assignment, {r['history']:,} articles in the window",
                r["median_us"],
                "us/article",
                2 * small["median_us"] if r is large and kind == "distinct" else None,
                note=f"mean {r['mean_us']:.0f}, p99 {r['p99_us']:.0f}; {r['joined']} of {PROBES} joined a story;"
                f" RSS {r['rss']:.0f} MB; built in {r['built']:.0f}s",
            )
            for r in results
        ]
        ratio = large["median_us"] / small["median_us"]
        target = 2.0 if kind == "distinct" else None
        rows.append(Row(f"{kind}: {large['history']:,} vs 10,000, median cost", ratio, "x", target))
    runs: dict[bool, list[float]] = {True: [], False: []}
    with scratch("stories", args.keep) as home, receiver() as server:
        folder = home / "src" / "burst"
        write_corpus(Corpus(), folder, articles, "s")
        for round_ in range(2):
            for enabled in (False, True):
                out = burst(home / f"d{round_}{int(enabled)}", server, folder, articles, enabled)
                runs[enabled].append(articles / out["seconds"] if out["finished"] else 0.0)
                progress(f"stories {'on' if enabled else 'off'}: {runs[enabled][-1]:.0f} articles/s")
    for enabled in (False, True):
        rate = statistics.median(runs[enabled])
        label = "on" if enabled else "off"
        rows.append(Row(f"burst of {articles} articles, stories {label}", rate, "articles/s", note=str(runs[enabled])))
    rows.append(Row("stories on / off", statistics.median(runs[True]) / statistics.median(runs[False]), "x"))
    print_table("Stories: assignment cost and burst throughput", rows, command_line())


if __name__ == "__main__":
    main()
