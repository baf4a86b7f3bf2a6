"""The Dutch-only matching path before and after a change, in one run (issue 17: within 10 %).

The same generated Dutch rules (plain queries: no language, counts or negation options) over the same Dutch
text, matched by this checkout's engine and by the engine of an older commit (default: before issue 17),
each in its own process, taking turns, best of `--rounds`. Measured per tree and rule count:
- decisions: MB/s of `Engine.match_text` (what the daemon pays per article);
- +hits: the same with every match's hits read, which now also works out each hit's count and negation and
  the article's language (what the daemon pays per article that alerts).

    python benchmarks/dutch_path.py [--base ad9ed74] [--rounds 3] [--rules 100,1000,10000]

The older tree is checked out with `git worktree` into a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "ad9ed74"  # main before issue 17


def measure(tree: Path, counts: list[int], megabytes: float) -> dict[str, dict[str, float]]:
    """In a child process: the engine of `tree` on the rules and text that this checkout's matching.py makes."""
    sys.path.insert(0, str(tree))
    import monitor.matching.engine  # noqa: F401  (the tree's, before matching.py puts this checkout first)

    spec = importlib.util.spec_from_file_location("bench_matching", ROOT / "benchmarks" / "matching.py")
    assert spec is not None and spec.loader is not None
    matching = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(matching)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = matching.corpus(int(megabytes * 1_000_000))
    _, words = matching.vocabulary(texts)
    results = {}
    for count in counts:
        engine, _ = matching.build(matching.RuleMaker(words).rules(count))
        speed, full = matching.throughput(texts, engine.match_text, matching.with_hits(engine), passes=3)
        results[str(count)] = {"decisions": speed, "hits": full}
    return results


def child(tree: Path, counts: list[int], megabytes: float) -> dict[str, dict[str, float]]:
    command = [sys.executable, __file__, "--child", str(tree), "--rules", ",".join(map(str, counts))]
    command += ["--megabytes", str(megabytes)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE, help=f"the older commit (default {BASE}: before issue 17)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rules", default="100,1000,10000")
    parser.add_argument("--megabytes", type=float, default=0.5, help="MB of Dutch text")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(c) for c in args.rules.split(",")]
    if args.child is not None:
        print(json.dumps(measure(args.child, counts, args.megabytes)))
        return
    base = Path(tempfile.mkdtemp(prefix="nm-base-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
    try:
        best: dict[str, dict[str, dict[str, float]]] = {"before": {}, "after": {}}
        started = time.monotonic()
        for _ in range(args.rounds):
            for label, tree in (("before", base), ("after", ROOT)):
                for count, figures in child(tree, counts, args.megabytes).items():
                    kept = best[label].setdefault(count, {})
                    for key, value in figures.items():
                        kept[key] = max(kept.get(key, 0.0), value)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    print(f"Dutch-only path, {args.megabytes} MB of text, best of {args.rounds} rounds taking turns")
    print(f"before: {args.base}; after: this checkout ({time.monotonic() - started:.0f} s)\n")
    print(f"{'rules':>7} {'what':>10} {'before MB/s':>12} {'after MB/s':>11} {'after/before':>13}  within 10 %")
    for count in map(str, counts):
        for key in ("decisions", "hits"):
            before, after = best["before"][count][key], best["after"][count][key]
            ratio = after / before
            print(f"{int(count):>7,} {key:>10} {before:>12.2f} {after:>11.2f} {ratio:>13.2f}  {ratio >= 0.9}")


if __name__ == "__main__":
    main()
