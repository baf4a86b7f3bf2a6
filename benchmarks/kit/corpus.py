"""Deterministic Dutch articles for tests and benchmarks: a pool of generated sentences recombined into
articles of about 2.5 KB, some carrying one shipped rule's trigger sentence (`plan`), written into a folder."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.kit.rules import SHIPPED_RULES
from benchmarks.kit.words import CONTENT, FIRST, FUNCTION, LAST, PLACES, TRIGGERS, compounds
from monitor.config.rules import load_rules


@dataclass
class Corpus:
    """Deterministic Dutch articles of about 2.5 KB, like the seeds: a pool of sentences, recombined."""

    seed: int = 7
    pool_size: int = 4000
    sentences: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        rare = compounds()
        for _ in range(self.pool_size):
            words = [rng.choice(FUNCTION if rng.random() < 0.45 else CONTENT) for _ in range(rng.randint(7, 18))]
            for pool, chance in ((PLACES, 0.35), (rare, 0.12)):
                if rng.random() < chance:
                    words.insert(rng.randrange(1, len(words)), rng.choice(pool))
            if rng.random() < 0.03:
                words.insert(rng.randrange(1, len(words)), f"{rng.choice(FIRST)} {rng.choice(LAST)}")
            sentence = " ".join(words)
            self.sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))

    def article(self, number: int, rule: str | None, run: str = "") -> str:
        """Article `number`; with `rule`, it carries that shipped rule's trigger sentence once."""
        rng = random.Random(f"{self.seed}-{run}-{number}")
        picked = [rng.choice(self.sentences) for _ in range(rng.randint(16, 26))]
        picked.insert(
            rng.randrange(1, len(picked)),
            f"Het bericht met volgnummer {run}{number} werd om "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} verstuurd.",
        )
        if rule is not None:
            trigger = TRIGGERS[rule].format(n=rng.randint(5, 400), place=rng.choice(PLACES))
            picked.insert(rng.randrange(1, len(picked)), trigger)
        paragraphs, i = [], 0
        while i < len(picked):
            step = rng.randint(3, 5)
            paragraphs.append(" ".join(picked[i : i + step]))
            i += step
        day = 1 + number % 28
        header = rng.choice(
            [
                f"date 2022-01-{day:02d}",
                f"date 2022-01-{day:02d}",
                "date 2022-01",
                f"date 2022-01-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            ]
        )
        return header + "\n" + "\n\n".join(paragraphs) + "\n"

    def check(self) -> None:
        """The shipped rules match no pool sentence and each trigger exactly its own rule."""
        engine = load_rules(SHIPPED_RULES, environ={}).engine
        for sentence in self.sentences:
            found = [m.rule for m in engine.match_text(sentence)]
            assert not found, f"pool sentence matches {found}: {sentence}"
        for rule, trigger in TRIGGERS.items():
            found = [m.rule for m in engine.match_text(trigger.format(n=12, place="Almaty"))]
            assert found == [rule], f"trigger of {rule} matches {found}"


def plan(count: int, match_every: int = 3) -> list[str | None]:
    """Which shipped rule each article triggers: every `match_every`-th one, the rules in turn."""
    rules = list(TRIGGERS)
    return [rules[(i // match_every) % len(rules)] if i % match_every == 0 else None for i in range(count)]


def write_corpus(
    corpus: Corpus, folder: Path, count: int, run: str, start: int = 0, per_folder: int | None = None
) -> dict[str, str | None]:
    """Write `count` articles into `folder` (in subfolders of `per_folder` if given); {file name: rule}."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str | None] = {}
    for i, rule in enumerate(plan(count), start):
        name = f"{run}{i:06d}.txt"
        target = folder if per_folder is None else folder / f"part{i // per_folder:03d}"
        if per_folder is not None and i % per_folder == 0:
            target.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(corpus.article(i, rule, run), encoding="utf-8")
        made[name] = rule
    return made
