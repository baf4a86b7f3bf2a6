"""Matching speed: MB/s of article text for 10 to 100,000 rules, against a bare automaton scan and naive regexes.

    python benchmarks/matching.py            # the full run: about a minute on one core
    python benchmarks/matching.py --quick    # 10 to 1,000 rules, a smaller text: a smoke test

Pinned to one core, and timed in CPU seconds of this process (time.process_time), so that other work on the
machine counts as little as it can. The text is about 1 MB of 2.5 kB articles, each five of the labelled
articles of tests/data and the seeds. Rules have realistic shapes (words, OR lists, implicit AND, phrases,
wildcards, boolean mixes with NOT, proximity, hyphenated compounds) with terms drawn from a Dutch vocabulary of
200,000 words: the content words of the text (function words left out), plus compounds of two of them, which
is how Dutch makes new words and which almost never occur. Each run prints, for each rule count:
- build: seconds to compile every query and build the engine; RSS: the process's resident memory after it;
- engine: MB/s of `Engine.match_text` over the text, the match decisions (best of five passes, taking turns
  with the other runs); +hits: the same with every match's hits read (offsets mapped back, snippets cut);
- bare scan: MB/s of the floor, one pyahocorasick pass over the lower-cased text with the same fragments;
- naive: MB/s of one compiled regular expression per rule, `search`ed in each article (up to 1,000 rules);
- cand/art, match/art: rules evaluated and rules fired per article;
- in the full run, a row `100k/100`: 100,000 rules of which only the 100-rule set can fire, the rest over
  compounds that the text does not have (those that still fire on it, `bondgenootsch*`, left out): what rules
  that cannot match cost, beside the 100,000 rules above, of which about 60 fire on each article;
then each target with its measured value, for the decisions and for the decisions with their hits.

Last, the daemon's mix (`--daemon`: only this): `startup.py`'s generated rules (`benchmarks.kit.rules`, loaded
by `load_rules` as the daemon does) on its 300 generated articles, at 100 and 10,000 rules: µs of CPU per
article of `Engine.match` with the default budget, candidates and matches per article, and the ratio of the
two rule counts. Its rules share a small vocabulary with the articles, so many rules have a word that occurs
and few fire (about one a article at 10,000 rules): the case where presearch, not the matches, sets the cost.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.kit.corpus import Corpus, plan  # noqa: E402
from benchmarks.kit.rules import generated_rules_text  # noqa: E402
from monitor.config.rules import load_rules  # noqa: E402
from monitor.config.settings import LimitsSettings  # noqa: E402
from monitor.ingest.articles import read_article  # noqa: E402
from monitor.matching.engine import Engine, MatchRule  # noqa: E402
from monitor.matching.query import Compiler, terms  # noqa: E402
from monitor.matching.spans import fragment  # noqa: E402

COUNTS = (10, 100, 1_000, 10_000, 100_000)
# Function words: nobody writes a rule on them.
STOPWORDS = {
    *"""aan achter af al alle alles als altijd ander andere bij binnen daar daarom dan dat deze die dit doch doen
    door dus een eens eerder elke en er geen geweest haar had heb hebben heeft hem het hier hij hoe hun iemand
    iets ik in is ja je kan kon kunnen laat maar meer men met mij mijn moet na naar niet niets nog nu of om omdat
    onder ons ook op over reeds te tegen toch toen tot uit van veel voor want waren was wat werd wel welke werden
    wie wij wil worden wordt zal ze zei zelf zich zij zijn zo zonder zou zegt zeggen volgens sinds tussen terwijl
    daarbij daarna waarin waarop waarmee hebben gaat gaan komt komen kunnen moeten mogen zullen willen heel erg
    jaar jaren week dagen twee drie vier vijf tien eerste tweede nieuwe grote kleine weer even later""".split()  # noqa: SIM905
}
NAIVE_LIMIT = 1_000
SILENT = -100_000  # results' key of the row of 100,000 rules of which only the 100-rule set can fire
SHAPES = (
    ("word", 25),
    ("or", 15),
    ("and", 15),
    ("phrase", 10),
    ("wildcard", 10),
    ("mix", 15),
    ("near", 5),
    ("compound", 5),
)


def corpus(target_bytes: int) -> list[str]:
    """Articles of about 2.5 kB (five labelled articles joined), until there are about `target_bytes` of UTF-8."""
    paths = sorted((ROOT / "tests" / "data" / "articles").glob("*.txt")) + sorted((ROOT / "seeds").glob("*.txt"))
    bodies = [read_article(p).text for p in paths]
    rng = random.Random(7)
    texts: list[str] = []
    size = 0
    while size < target_bytes:
        text = "\n\n".join(rng.sample(bodies, 5))
        texts.append(text)
        size += len(text.encode())
    return texts


def vocabulary(texts: Sequence[str], size: int = 200_000) -> tuple[list[str], list[tuple[str, int]]]:
    """(words of the text, the whole vocabulary): the text's words plus two-word compounds of them.

    Each vocabulary entry is (word, where its second part starts; 0 for the text's own words)."""
    seen = sorted({w.lower() for t in texts for w in re.findall(r"[^\W\d_]{4,}", t)} - STOPWORDS)
    stems = [w for w in seen if len(w) >= 5]
    rng = random.Random(11)
    compounds: dict[str, int] = {}
    while len(compounds) < size - len(seen):
        first = rng.choice(stems)
        compounds.setdefault(first + rng.choice(stems), len(first))
    return seen, [(w, 0) for w in seen] + sorted(compounds.items())


class RuleMaker:
    def __init__(self, words: list[tuple[str, int]], seed: int = 3) -> None:
        self.words = words
        self.rng = random.Random(seed)
        self.shapes = [name for name, weight in SHAPES for _ in range(weight)]

    def word(self) -> str:
        return self.rng.choice(self.words)[0]

    def wildcard(self) -> str:
        """arrest*, *verraad or dode?tal; on a compound, the literal part keeps some of both its parts."""
        word, split = self.rng.choice(self.words)
        if self.rng.random() < 0.2:
            middle = self.rng.randrange(2, len(word) - 1)
            return word[:middle] + "?" + word[middle + 1 :]
        if self.rng.random() < 0.7:
            cut = self.rng.randint(split + 2, len(word) - 1) if split else max(4, len(word) * 2 // 3)
            return word[:cut] + "*"
        cut = self.rng.randint(1, split - 2) if split else len(word) // 3
        return "*" + word[cut:]

    def query(self) -> str:
        shape = self.rng.choice(self.shapes)
        w = self.word
        if shape == "word":
            return w()
        if shape == "or":
            return " OR ".join(w() for _ in range(self.rng.randint(2, 4)))
        if shape == "and":
            return f"{w()} {w()}"
        if shape == "phrase":
            return f'"{w()} {w()}"'
        if shape == "wildcard":
            return self.wildcard()
        if shape == "mix":
            return f"({w()} OR {self.wildcard()}) AND {w()} NOT {w()}"
        if shape == "near":
            return f'"{w()} {w()}"~5'
        return f"{w()}-{w()}"

    def rules(self, count: int) -> list[str]:
        return [self.query() for _ in range(count)]


def silent_rules(words: list[tuple[str, int]], texts: Sequence[str], count: int) -> list[str]:
    """`count` rules over the vocabulary's compounds (none is a word of the text) that fire on no article of
    `texts`: a wildcard such as `bondgenootsch*` on a compound can still fire, and those are left out. Their
    words and fragments do occur in part (` arrestatie` of `arrestatie?bevel`), so presearch still sees them."""
    maker = RuleMaker([w for w in words if w[1]], seed=5)
    kept: list[str] = []
    while len(kept) < count:
        queries = maker.rules(count - len(kept))
        engine, _ = build(queries)
        fired = {int(match.rule[1:]) for text in texts for match in engine.match_text(text)}
        kept += [query for i, query in enumerate(queries) if i not in fired]
    return kept


def build(queries: Sequence[str]) -> tuple[Engine, float]:
    gc.collect()
    start = time.process_time()
    compiler = Compiler({})
    engine = Engine([MatchRule(f"r{i}", q, compiler.compile(q)) for i, q in enumerate(queries)])
    return engine, time.process_time() - start


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def throughput(texts: Sequence[str], *runs: Callable[[str], object], passes: int = 5) -> list[float]:
    """MB/s of each run, best of `passes`; the runs take turns, so that a change in load hits them alike."""
    size = sum(len(t.encode()) for t in texts) / 1e6
    best = [float("inf")] * len(runs)
    for _ in range(passes):
        for i, run in enumerate(runs):
            start = time.process_time()
            for text in texts:
                run(text)
            best[i] = min(best[i], time.process_time() - start)
    return [size / seconds for seconds in best]


def bare_scan(engine: Engine) -> Callable[[str], object]:
    """The floor: one automaton pass over the lower-cased text, with every fragment of every term."""
    automaton = ahocorasick.Automaton()
    fragments = {fragment(w) for rule in engine.rules for t in terms(rule.node) if t.kind != "stem" for w in t.words}
    for i, text in enumerate(fragments):
        automaton.add_word(text, i)
    automaton.make_automaton()

    def scan(text: str) -> int:
        found = 0
        for _ in automaton.iter(" " + text.lower() + " "):
            found += 1
        return found

    return scan


def with_hits(engine: Engine) -> Callable[[str], object]:
    """The engine's matches with every hit read: what a caller that alerts on every match pays."""

    def run(text: str) -> int:
        return sum(len(match.hits) for match in engine.match_text(text))

    return run


def naive(queries: Sequence[str]) -> Callable[[str], object]:
    """One regex per rule: its positive terms as whole words, searched case-insensitively (no boolean logic)."""
    patterns = []
    for query in queries:
        words = re.findall(r"[\w*?]+", re.sub(r"\bNOT \S+|\b(AND|OR)\b|~\d+", " ", query))
        alternatives = [re.escape(w).replace(r"\*", r"\w*").replace(r"\?", r"\w") for w in words]
        patterns.append(re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE))

    def search(text: str) -> int:
        return sum(1 for p in patterns if p.search(text))

    return search


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 to 1,000 rules on 0.2 MB")
    parser.add_argument("--daemon", action="store_true", help="only the daemon's rule mix")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.daemon:
        daemon_mix()
        return
    counts = COUNTS[:3] if args.quick else COUNTS
    texts = corpus(200_000 if args.quick else 1_000_000)
    seen, words = vocabulary(texts)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    print(
        f"text: {megabytes:.2f} MB, {len(texts)} articles; vocabulary: {len(words):,} words, {len(seen):,} in the text"
    )
    print(f"one core (pinned), CPU time; Python {sys.version.split()[0]}, pyahocorasick {version('pyahocorasick')}")
    print(f"process RSS before any rules: {rss_mb():.0f} MB\n")
    header = f"{'rules':>8} {'build s':>8} {'RSS MB':>7} {'engine MB/s':>12} {'+hits MB/s':>11} {'bare MB/s':>10}"
    print(
        header
        + f" {'eng/bare':>9} {'+hits/bare':>10} {'naive MB/s':>11} {'eng/naive':>10} {'cand/art':>9} {'match/art':>10}"
    )
    results: dict[int, dict[str, float]] = {}
    for count in counts:
        results[count] = measure(f"{count:,}", RuleMaker(words).rules(count), texts, count <= NAIVE_LIMIT)
    if 100 in results and 100_000 in results:  # 100,000 rules of which only the 100-rule set can fire
        queries = RuleMaker(words).rules(100) + silent_rules(words, texts, 99_900)
        results[SILENT] = measure("100k/100", queries, texts, note="   (100,000 rules, only the 100 can fire)")
    print()
    targets(results)
    print()
    daemon_mix()


def measure(
    label: str, queries: list[str], texts: Sequence[str], naive_too: bool = False, note: str = ""
) -> dict[str, float]:
    """One row: build the engine, time it against the floor (and the naive regexes, on a tenth of the text),
    print the row and return its figures."""
    engine, seconds = build(queries)
    memory = rss_mb()
    sample = texts[:50]
    matched = sum(len(engine.match_text(t)) for t in sample) / len(sample)
    candidates = sum(len(engine.candidates(t)) for t in sample) / len(sample)
    speed, full, floor = throughput(texts, engine.match_text, with_hits(engine), bare_scan(engine))
    row = {"build": seconds, "rss": memory, "engine": speed, "hits": full, "bare": floor}
    line = f"{label:>8} {seconds:>8.2f} {memory:>7.0f} {speed:>12.2f} {full:>11.2f} {floor:>10.2f}"
    line += f" {speed / floor:>9.2f} {full / floor:>10.2f}"
    if naive_too:
        (slow,) = throughput(texts[: max(1, len(texts) // 10)], naive(queries), passes=1)
        row["naive"] = slow
        line += f" {slow:>11.3f} {speed / slow:>9.0f}x"
    else:
        line += f" {'-':>11} {'-':>10}"
    print(line + f" {candidates:>9.1f} {matched:>10.1f}{note}", flush=True)
    return row


def targets(results: dict[int, dict[str, float]]) -> None:
    """Each target, measured on the decisions (engine) and on the decisions with every hit read (+hits)."""
    checks = []
    for key, label in (("engine", "engine"), ("hits", "+hits")):
        if 10_000 in results:
            r = results[10_000]
            ratio = r[key] / r["bare"]
            checks.append((f"{label} / bare scan at 10,000 rules", ratio, 0.5, f"{ratio:.2f}", ">= 0.50"))
        if 1_000 in results and "naive" in results[1_000]:
            ratio = results[1_000][key] / results[1_000]["naive"]
            checks.append((f"{label} / naive at 1,000 rules", ratio / 100, 1.0, f"{ratio:.0f}x", ">= 100x"))
        for top, name in ((100_000, "throughput 100,000 / 100 rules"), (SILENT, "100,000 (100 can fire) / 100")):
            if top in results and 100 in results:
                ratio = results[top][key] / results[100][key]
                checks.append((f"{label}: {name}", ratio, 0.5, f"{ratio:.2f}", ">= 0.50"))
    if SILENT in results and 100 in results:
        ratio = results[SILENT]["bare"] / results[100]["bare"]
        checks.append(("bare scan: 100,000 (100 can fire) / 100", ratio, 0.0, f"{ratio:.2f}", "-"))
    if 10_000 in results:
        seconds = results[10_000]["build"]
        checks.append(("build of 10,000 rules (s)", 2.0 / seconds, 1.0, f"{seconds:.2f}", "< 2"))
    if 100_000 in results:
        memory = results[100_000]["rss"]
        checks.append(("RSS with 100,000 rules (MB)", 500 / memory, 1.0, f"{memory:.0f}", "< 500"))
    print(f"{'target':<42} {'measured':>9} {'target':>8}  {'of target':>9}  met")
    for name, ratio, goal, measured, wanted in checks:
        share, met = (f"{ratio / goal:.2f}", "yes" if ratio >= goal else "NO") if goal else ("-", "-")  # no goal:
        print(f"{name:<42} {measured:>9} {wanted:>8}  {share:>9}  {met}")  # a figure beside them (the floor's)


def daemon_mix(counts: Sequence[int] = (100, 10_000), articles: int = 300) -> None:
    """`Engine.match` as the daemon calls it, on startup.py's rules and articles; best of five passes."""
    limits = LimitsSettings()
    print(f"the daemon's mix: startup.py's rules and {articles} articles, Engine.match with a budget, CPU time")
    print(f"{'rules':>8} {'us/article':>11} {'cand/art':>9} {'match/art':>10}")
    speeds = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        corpus = Corpus()
        texts = []
        for number, rule in enumerate(plan(articles)):
            path = folder / f"a{number:04d}.txt"
            path.write_text(corpus.article(number, rule, "m"), encoding="utf-8")
            texts.append(read_article(path))
        for count in counts:
            (folder / "rules.yaml").write_text(generated_rules_text(count, "http://127.0.0.1:9/"), encoding="utf-8")
            engine = load_rules(folder / "rules.yaml", environ={}).engine

            def run(article: object, engine: Engine = engine) -> object:
                return engine.match(article, max_hits=limits.max_hits, budget=limits.match_budget)  # type: ignore[arg-type]

            best = min(_timed(run, texts) for _ in range(5))
            candidates = sum(len(engine.candidates(a.text)) for a in texts) / len(texts)
            matched = sum(len(run(a)) for a in texts) / len(texts)  # type: ignore[arg-type]
            speeds.append(best)
            print(f"{count:>8,} {best * 1e6 / len(texts):>11.0f} {candidates:>9.1f} {matched:>10.2f}", flush=True)
    print(f"time per article, {counts[0]:,} / {counts[-1]:,} rules: {speeds[0] / speeds[-1]:.2f}")


def _timed(run: Callable[[object], object], items: Sequence[object]) -> float:
    start = time.process_time()
    for item in items:
        run(item)
    return time.process_time() - start


if __name__ == "__main__":
    main()
