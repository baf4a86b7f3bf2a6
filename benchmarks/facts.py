"""Cost of `hit_facts` per hit, on ordinary and hostile hits, against a baseline measured in the same run.

    python benchmarks/facts.py            # about ten seconds
    python benchmarks/facts.py --quick    # fewer repetitions

For each hit it prints µs per call of `hit_facts` with its word cache warm (a hit in an article like the ones
before it), with the cache cleared before every call (the first hit in words never seen), and of the baseline:
`str.split` of the same window (400 characters on each side of the hit), the least any look at the context
costs. The ratio is warm ÷ baseline. Hostile texts are 5-10 MB: the window keeps them as cheap as the ordinary
ones. Best of five rounds; wall time (time.perf_counter) on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.matching import facts  # noqa: E402

WINDOW = 400
Case = tuple[str, str, int, int, str | None]


def cases() -> list[Case]:
    seed = next((ROOT / "seeds").glob("003_*.txt")).read_text(encoding="utf-8")
    rng = random.Random(17)
    words = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(700_000))
    made = [
        ("seed: gearresteerd (8000)", seed, "gearresteerd", "nl"),
        ("seed: dodental (164)", seed, "dodental", "nl"),
        ("seed: dodental, language unknown", seed, "dodental", None),
        ("seed: Aantal doden (heading)", seed, "Aantal doden", "nl"),
        ("10 MB one word", "a" * 10_000_000, "a" * 10, None),
        ("5 MB sentence of random words", f"{words} doden {words}", "doden", None),
        ("5 MB sentence of number words", "veertig " * 320_000 + "doden " + "veertig " * 320_000, "doden", None),
        ("5 MB of digit groups", "1.000." * 450_000 + " doden " + "000 " * 650_000, "doden", "nl"),
        ("5 MB of single digits", "1 " * 1_300_000 + "doden " + "1 " * 1_300_000, "doden", "en"),
        ("5 MB of cues", "geen " * 500_000 + "doden " + "niet " * 500_000, "doden", "nl"),
    ]
    out: list[Case] = []
    for name, text, hit, language in made:
        start = text.index(hit, len(text) // 2 - len(hit) - 10) if len(text) > 1_000_000 else text.index(hit)
        out.append((name, text, start, start + len(hit), language))
    return out


def per_call(call: Callable[[], object], calls: int) -> float:
    """µs per call, best of five rounds."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, time.perf_counter() - began)
    return best / calls * 1e6


def cold(text: str, start: int, end: int, language: str | None) -> None:
    facts._phrase_value.cache_clear()
    facts.hit_facts(text, start, end, language)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per round")
    calls = 200 if parser.parse_args().quick else 2000
    print(f"{'hit':36} {'result':42} {'warm µs':>8} {'cold µs':>8} {'split µs':>8} {'ratio':>6}")
    for name, text, start, end, language in cases():
        result = facts.hit_facts(text, start, end, language)
        lo, hi = max(0, start - WINDOW), min(len(text), end + WINDOW)
        warm = per_call(lambda: facts.hit_facts(text, start, end, language), calls)  # noqa: B023
        fresh = per_call(lambda: cold(text, start, end, language), max(10, calls // 20))  # noqa: B023
        split = per_call(lambda: text[lo:hi].split(), calls)  # noqa: B023
        shown = f"{result[0].text if result[0] else None!s:.30} {result[1]}"
        print(f"{name:36} {shown:42} {warm:8.1f} {fresh:8.1f} {split:8.2f} {warm / split:6.0f}")


if __name__ == "__main__":
    main()
