"""Language detection: `monitor.matching.language.languages` (a text's first 1,000 characters and last 250, or
333 each of its start, middle and end, in chunks of 330 detected alone) against one detection of a sample of
1,000 characters (a text's first 1,000, or 333 each of its start, middle and end), the method before issue
19's seventh session, rebuilt here.

On each set of texts it prints how often the two agree (the language; the plausible languages), how often
each finds two or more languages plausible, and the CPU time of a detection (best of three passes, in turns):
- `generated nl`: 300 of the benchmarks' generated Dutch articles (about 2 kB, a third with a trigger);
- `seeds`: the two real articles;
- `long en` ... `long ru`: 30 texts each of five labelled articles of one language joined (tests/data/languages);
- `mixed`: 100 texts, each a generated Dutch article and as much text in English, German, French or Russian
  (four labelled articles), in either order.

    python benchmarks/languages.py
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.kit.corpus import Corpus  # noqa: E402
from monitor.ingest.articles import read_article  # noqa: E402
from monitor.matching import language  # noqa: E402
from monitor.matching.language import Languages  # noqa: E402

OLD_SAMPLE = 1000


def one_sample(text: str) -> Languages:
    """The method before: about 1,000 characters of words from the start, middle and end, one detection."""
    if len(text) <= OLD_SAMPLE and "  " not in text and not any(len(w) > 40 for w in text.split()):
        sample = text.strip()
    elif len(text) <= 3 * OLD_SAMPLE:
        sample = " ".join(language._words(text, 0, OLD_SAMPLE))
    else:
        third, middle = OLD_SAMPLE // 3, len(text) // 2
        pieces = (0, middle, len(text) - 2 * third)
        sample = " ".join(" ".join(language._words(text, start, third)) for start in pieces)
    return language._detected(sample)


def text_sets() -> dict[str, list[str]]:
    corpus = Corpus()
    generated = [corpus.article(i, rule, "lang") for i, rule in enumerate([None, "hoogverraad", "dodental"] * 100)]
    labelled: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests" / "data" / "languages" / "articles").glob("*.txt")):
        labelled.setdefault(path.name[:2], []).append(read_article(path).text)
    rng = random.Random(2)
    sets = {"generated nl": generated, "seeds": [read_article(p).text for p in sorted((ROOT / "seeds").glob("*.txt"))]}
    for code in ("en", "de", "fr", "ru"):
        sets[f"long {code}"] = [" ".join(rng.sample(labelled[code], 5)) for _ in range(30)]
    mixed = []
    for code in ("en", "de", "fr", "ru"):
        for _ in range(25):
            other = " ".join(rng.sample(labelled[code], 4))
            dutch = rng.choice(generated)[: len(other)]
            mixed.append(dutch + "\n\n" + other if rng.random() < 0.5 else other + "\n\n" + dutch)
    sets["mixed"] = mixed
    return sets


def cpu_ms(detect: Callable[[str], Languages], texts: list[str]) -> float:
    start = time.process_time()
    for text in texts:
        detect(text)
    return (time.process_time() - start) / len(texts) * 1000


def main() -> None:
    language.warm()
    print(f"{'texts':<13} {'n':>4} {'chars':>6} {'same language':>14} {'same plausible':>15}", end="")
    print(f" {'2+ plausible: before':>21} {'now':>4} {'ms before':>10} {'ms now':>7}")
    for name, texts in text_sets().items():
        before = [one_sample(text) for text in texts]
        now = [language.languages(text) for text in texts]
        same = sum(b.language == n.language for b, n in zip(before, now, strict=True))
        plausible = sum(b.plausible == n.plausible for b, n in zip(before, now, strict=True))
        two_before = sum(len(b.plausible) >= 2 for b in before)
        two_now = sum(len(n.plausible) >= 2 for n in now)
        old_ms = new_ms = float("inf")
        for _ in range(3):
            old_ms = min(old_ms, cpu_ms(one_sample, texts))
            new_ms = min(new_ms, cpu_ms(language.languages, texts))
        chars = sum(map(len, texts)) // len(texts)
        print(f"{name:<13} {len(texts):>4} {chars:>6} {same:>14} {plausible:>15}", end="")
        print(f" {two_before:>21} {two_now:>4} {old_ms:>10.2f} {new_ms:>7.2f}")


if __name__ == "__main__":
    main()
