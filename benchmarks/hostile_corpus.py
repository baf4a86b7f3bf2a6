"""Hostile articles for the matching engine, an ordinary article to compare them with, and rules of every
query shape.

    python benchmarks/hostile_corpus.py                 # every input at 10 MB, each in a fresh process
    python benchmarks/hostile_corpus.py --size 1000000  # smaller
    python benchmarks/hostile_corpus.py --only one_token_arresta --rules shapes

- `corpus(size)`: (name, text) of adversarial inputs of about `size` bytes of UTF-8 each, every text starting
  with `date 2022-01 `: one huge token the shipped `*arresta*` hits everywhere, millions of hits, a huge word
  with one hit, line-broken hyphenation, deep hyphen chains, runs of invisible, combining, resized or
  non-Latin characters, runs of white space and punctuation, a million distinct words, phrase and proximity
  pairs, case variants;
- `ordinary(size)`: the seed articles repeated (they hold real hits): the baseline;
- `shapes_rules_yaml()`: a rules file with one rule per query shape, so that every path of the engine runs.

Run as a script, it matches each input in a fresh subprocess with the shipped rules and with the shapes
rules, and prints CPU seconds of `Engine.match_text` (time.process_time), the ratio to the ordinary article
of the same size, the matches' `hits_total`, and the subprocess's peak RSS (ru_maxrss). Imports only the
standard library and `monitor`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "date 2022-01 "
MB = 1024 * 1024


def _repeat(unit: str, size: int) -> str:
    """`unit` repeated to about `size` bytes of UTF-8, after the date header."""
    count = max(1, (size - len(HEADER)) // len(unit.encode()))
    return HEADER + unit * count


def _around(middle: str, filler: str, size: int) -> str:
    """`middle` in the middle of `filler` repeated: one huge run with something in it."""
    half = max(1, (size - len(HEADER) - len(middle.encode())) // 2 // len(filler.encode()))
    return HEADER + filler * half + middle + filler * half


def _distinct_words(size: int) -> str:
    """Distinct made-up words of 6 to 10 letters: as many different words as the size allows."""
    rng = random.Random(3)
    letters = "abcdefghijklmnoprstuvwz"
    words, total = [], len(HEADER)
    while total < size:
        word = "".join(rng.choices(letters, k=rng.randint(6, 10)))
        words.append(word)
        total += len(word) + 1
    return HEADER + " ".join(words)


_SHAPES: dict[str, Callable[[int], str]] = {
    "one_token_arresta": lambda size: _repeat("arresta", size),
    "many_hits": lambda size: _repeat("gearresteerd ", size),
    "huge_word_with_hit": lambda size: _around("hoogverraad", "x", size),
    "line_hyphenation": lambda size: _repeat("ab-\ncd", size),
    "tiny_words": lambda size: _repeat("a ", size),
    "hyphen_chain": lambda size: _repeat("ab-", size),
    "multi_star_no_end": lambda size: HEADER + "ar" + "st" * ((size - len(HEADER)) // 2),
    "punctuation_run": lambda size: _around(" hoogverraad ", ".,;", size),
    "whitespace_run": lambda size: _around(" hoogverraad ", " \n\t", size),
    "invisible_run": lambda size: _around("hoog\u00adverraad", "\u200b", size),
    "combining_marks": lambda size: _repeat("e\u0301", size),
    "eszett_run": lambda size: _repeat("ß", size),
    "soft_hyphen_hits": lambda size: _repeat("doden\u00adtal ", size),
    "cjk_token": lambda size: _repeat("日本語", size),
    "emoji_words": lambda size: _repeat("😀 arrestatie ", size),
    "distinct_words": _distinct_words,
    "phrase_pairs": lambda size: _repeat("aantal doden ", size),
    "near_pairs": lambda size: _repeat("masimov x hoogverraad ", size),
    "case_variants": lambda size: _repeat("CSTO csto Csto Arrestatie ", size),
    "hyphen_line_compounds": lambda size: _repeat("CSTO-\ntroepen massa-\narrestaties ", size),
}


def corpus(size: int = 10 * MB) -> list[tuple[str, str]]:
    """(name, article text) of every hostile input, each about `size` bytes of UTF-8."""
    return [(name, make(size)) for name, make in _SHAPES.items()]


def ordinary(size: int = 10 * MB) -> str:
    """An ordinary article of about `size` bytes: the seed articles' bodies repeated (they hold real hits)."""
    bodies = [_body(path) for path in sorted((ROOT / "seeds").glob("*.txt"))]
    unit = "\n\n".join(bodies) + "\n\n"
    return _repeat(unit, size)


def _body(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    return text.split(" ", 2)[2] if text.startswith("date ") else text


def shapes_rules_yaml() -> str:
    """A rules file with one rule per query shape (no webhook needed: a dummy one)."""
    rules: dict[str, tuple[str, dict[str, object]]] = {
        "word": ("hoogverraad", {}),
        "phrase": ('"aantal doden"', {}),
        "proximity": ('"masimov hoogverraad"~5', {}),
        "proximity_common": ('"de het"~3', {}),
        "leading_star": ("*verraad", {}),
        "trailing_star": ("arrest*", {}),
        "middle_star": ("*arresta*", {}),
        "inner_star": ("hoog*raad", {}),
        "multiple_stars": ("*ar*st*ie*", {}),
        "stars_and_question": ("a?r*s*t?", {}),
        "question": ("dode?tal", {}),
        "stem": ("arrestatie OR verdenking", {"stem": True}),
        "case_sensitive": ("CSTO OR Arrest*", {"case_sensitive": True}),
        "case_and_stem": ("Arrestatie", {"case_sensitive": True, "stem": True}),
        "compound": ("CSTO-troepen OR massa-arrestaties", {}),
        "not": ("(hoogverraad OR arrestaties) NOT landverraad", {}),
        "list": ("@arrest AND NOT @noise", {}),
        "min_hits": ("gearresteerd OR doden", {"min_hits": 3}),
    }
    lines = [
        "version: 1",
        "lists:",
        '  arrest: ["*arresta*", "*arrestee*", "*arrester*"]',
        '  noise: ["voetbal", "arrest"]',
        "webhooks:",
        "  dummy:",
        "    url: http://127.0.0.1:9/hooks/dummy",
        "rules:",
    ]
    for name, (query, options) in rules.items():
        lines.append(f"  - name: {name}")
        lines.append(f"    query: {json.dumps(query)}")
        lines.extend(f"    {key}: {json.dumps(value)}" for key, value in options.items())
    return "\n".join(lines) + "\n"


def _measure(name: str, size: int, rules: str) -> None:
    """In this (fresh) process: match one input once and print a JSON line with the figures."""
    import resource
    import time

    from monitor.config.rules import load_rules

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a runaway old engine must not swap the machine

    text = ordinary(size) if name == "ordinary" else _SHAPES[name](size)
    if rules == "shapes":
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(shapes_rules_yaml())
        engine = load_rules(Path(handle.name)).engine
    else:
        engine = load_rules(ROOT / "config" / "rules.yaml").engine
    begin = time.process_time()
    matches = engine.match_text(text)
    total = sum(getattr(m, "hits_total", None) or len(m.hits) for m in matches)  # the engine before hits_total
    longest = max((len(h.text) + len(h.snippet) for m in matches for h in m.hits), default=0)
    seconds = time.process_time() - begin
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu": seconds, "rss": peak, "matches": len(matches), "hits": total, "longest": longest}))


def _run(name: str, size: int, rules: str, code: str, timeout: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", name, "--size", str(size), "--rules", rules, "--code", code]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": 2.0, "cpu": float("nan"), "rss": float("nan"), "matches": 0, "hits": 0, "longest": 0}
    if done.returncode:
        return {"error": 1.0, "cpu": float("nan"), "rss": float("nan"), "matches": 0, "hits": 0, "longest": 0}
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _failure(got: dict[str, float]) -> str:
    return {1.0: "  FAILED (error or over 2 GB)", 2.0: "  TIMEOUT"}.get(got.get("error", 0.0), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10 * MB)
    parser.add_argument("--rules", choices=("shipped", "shapes", "both"), default="both")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--code", default=str(ROOT), help="the checkout whose monitor package to measure")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per input (wall clock)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.size, args.rules)
        return
    names = ["ordinary", *(args.only or _SHAPES)]
    for rules in ("shipped", "shapes") if args.rules == "both" else (args.rules,):
        print(f"rules: {rules}; size {args.size:,} bytes; CPU s of match_text, peak RSS of a fresh process")
        print(f"{'input':24} {'CPU s':>8} {'x ord':>7} {'RSS MB':>7} {'matches':>7} {'hits':>10} {'longest':>7}")
        base = None
        for name in names:
            got = _run(name, args.size, rules, args.code, args.timeout)
            base = base or got["cpu"]
            ratio = got["cpu"] / base if base else float("nan")
            print(
                f"{name:24} {got['cpu']:8.3f} {ratio:7.1f} {got['rss']:7.0f} {got['matches']:7.0f}"
                f" {got['hits']:10,.0f} {got['longest']:7.0f}" + _failure(got),
                flush=True,
            )


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else str(ROOT))
    main()
