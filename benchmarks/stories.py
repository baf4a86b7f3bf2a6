"""Stories: the cost of assigning an article its story with 10,000 and 1,000,000 articles of history in the
window, and the burst throughput of the real daemon with stories on and off, in one run.

1. The index (monitor.matching.stories.StoryIndex), in this process, on synthetic signatures with a
   realistic vocabulary: each article has TERMS name terms drawn from a Zipf-like distribution over an open
   vocabulary (numpy's zipf, exponent 1.2: a few terms are in most articles, most are rare, new ones keep
   appearing) and a word sketch of the SKETCH smallest hashes of WORDS words drawn the same way from the
   words of the language (exponent 1.1), so unrelated articles share common terms and words; a tenth of
   the history are variants of an earlier article (half its terms and words kept: an event of several
   articles). The probes are 2,000 new articles, half of them variants of an article in the window. Timed
   per probe: `decide` and `add`. Memory: the growth of the process's RSS while the index was built,
   per article. 1,000,000 articles are built only when 100,000 measured a memory per article that keeps
   them under MEMORY_CAP_MB (this machine is shared); else the line says so.
2. The daemon: the shipped rules, a burst of articles copied in with one `cp -r`, timed from the copy to the
   last ledger row and delivered alert, once with `stories.enabled: true` and once with false (the runs
   alternate: off, on, off, on, off, on; the median of each is shown).

    /work/venv/bin/python benchmarks/stories.py [--quick]    (quick: 100,000 instead of 1,000,000)
    /work/venv/bin/python benchmarks/stories.py --burst-only
"""

from __future__ import annotations

import gc
import resource
import statistics
import struct
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
from monitor.matching.stories import MAGIC, SKETCH, StoryEntry, StoryIndex

TERMS, WORDS = 24, 300
PROBES = 2_000
NOW = 1_800_000_000.0
BURST = {"quick": 1000, "full": 3000}
MEMORY_CAP_MB = 3_000


class Synthetic:
    """Articles as (terms, words) drawn from Zipf-like vocabularies; signatures built as `signature` does."""

    def __init__(self, seed: int = 18) -> None:
        self.rng = np.random.default_rng(seed)

    def articles(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` articles' terms and word sketches (the SKETCH smallest 32-bit hashes of WORDS words)."""
        terms = (self.rng.zipf(1.2, (count, TERMS)) % (2**31)).astype(np.uint32)
        sketches = np.empty((count, SKETCH), dtype=np.uint32)
        for start in range(0, count, 10_000):
            words = self.rng.zipf(1.1, (min(10_000, count - start), WORDS)).astype(np.uint64)
            hashed = np.sort((words * 2654435761 + 12345) % (2**32), axis=1)  # a word's 32-bit hash
            sketches[start : start + len(words)] = hashed[:, :SKETCH]  # (a word drawn twice: a repeated value)
        return terms, sketches

    def variants(self, terms: np.ndarray, sketches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The articles with half their terms and words swapped for others: the same event, written differently."""
        new_terms, new_sketches = self.articles(len(terms))
        new_terms[:, : TERMS // 2] = terms[:, : TERMS // 2]
        both = np.sort(np.concatenate([sketches[:, ::2], new_sketches[:, ::2]], axis=1), axis=1)
        return new_terms, both[:, :SKETCH]

    @staticmethod
    def signatures(terms: np.ndarray, sketches: np.ndarray) -> Iterator[bytes]:
        for row_terms, row_sketch in zip(terms, sketches, strict=True):
            unique = list(dict.fromkeys(row_terms.tolist()))
            sketch = list(dict.fromkeys(row_sketch.tolist()))
            yield MAGIC + struct.pack(f"<H{len(unique) + len(sketch)}I", len(unique), *unique, *sketch)


def history(source: Synthetic, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` articles, a tenth of them variants of an earlier one (events of several articles)."""
    terms, words = source.articles(count)
    events = np.arange(count // 10, count)[::9]
    terms[events], words[events] = source.variants(terms[events - count // 10], words[events - count // 10])
    return terms, words


def entries(source: Synthetic, terms: np.ndarray, words: np.ndarray) -> Iterator[StoryEntry]:
    for start in range(0, len(terms), 10_000):
        block = source.signatures(terms[start : start + 10_000], words[start : start + 10_000])
        for number, signature in enumerate(block, start):
            at = NOW - 3600 + number * 1e-3
            yield StoryEntry(f"{number:064x}", f"story_{number:016x}", f"{number}.txt", 1, at, at, signature, ("r",))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def assignment(source: Synthetic, count: int) -> dict[str, Any]:
    """Build an index of `count` articles of history, then time PROBES assignments against it."""
    start = time.perf_counter()
    terms, words = history(source, count)
    gc.collect()
    before = rss_mb()
    index = StoryIndex(window=72 * 3600.0)
    index.load(entries(source, terms, words))
    gc.collect()
    built = time.perf_counter() - start
    memory = rss_mb() - before
    progress(f"{count:,} articles indexed in {built:.0f}s, index {memory:.0f} MB")
    pick = source.rng.integers(0, count, PROBES)
    probe_terms, probe_words = source.articles(PROBES)
    probe_terms[::2], probe_words[::2] = source.variants(terms[pick[::2]], words[pick[::2]])
    del terms, words
    timings, joined = [], 0
    for number, signature in enumerate(source.signatures(probe_terms, probe_words)):
        entry = StoryEntry(f"p{number:063x}", "", f"p{number}.txt", 0, NOW, NOW, signature, ("r",))
        began = time.perf_counter()
        ref = index.decide(entry)
        index.add(entry)
        timings.append(time.perf_counter() - began)
        joined += not ref.started
    del index
    gc.collect()
    return {
        "history": count,
        "median_us": statistics.median(timings) * 1e6,
        "mean_us": statistics.fmean(timings) * 1e6,
        "p99_us": sorted(timings)[int(len(timings) * 0.99)] * 1e6,
        "joined": joined,
        "memory": memory,
        "per_article": memory * 1024 * 1024 / count,
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
    if not args.burst_only:
        results = [assignment(source, count) for count in (10_000, 100_000)]
        estimate = results[-1]["per_article"] * largest / 2**20
        if largest > 100_000 and estimate < MEMORY_CAP_MB:
            results.append(assignment(source, largest))
        elif largest > 100_000:
            rows.append(Row(f"{largest:,} articles: not built", estimate, "MB (estimated)", note="over MEMORY_CAP_MB"))
        small = results[0]
        rows += [
            Row(
                f"assignment, {r['history']:,} articles in the window",
                r["median_us"],
                "us/article",
                2 * small["median_us"] if r["history"] == largest else None,
                note=f"mean {r['mean_us']:.0f}, p99 {r['p99_us']:.0f}; {r['joined']} of {PROBES} joined a story;"
                f" index {r['memory']:.0f} MB = {r['per_article']:.0f} bytes/article; built in {r['built']:.0f}s",
            )
            for r in results
        ]
        for r in results[1:]:
            rows.append(Row(f"{r['history']:,} vs 10,000, median cost", r["median_us"] / small["median_us"], "x", 2.0))
    runs: dict[bool, list[float]] = {True: [], False: []}
    with scratch("stories", args.keep) as home, receiver() as server:
        folder = home / "src" / "burst"
        write_corpus(Corpus(), folder, articles, "s")
        for round_ in range(3):
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
