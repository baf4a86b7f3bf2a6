"""Story grouping's thresholds, chosen on half the labelled stories and scored on the other half.

    python scripts/story_split.py [tests/data/stories]

The stories of tests/data/stories/labels.csv are numbered in order of their first article's date; the
odd-numbered ones are one half, the even-numbered the other. For each half, the `stories.threshold` values
of a grid that reach issue 18's target (pairwise precision >= 0.95, recall >= 0.9) on it are listed, the
middle one is taken (the one with the best pairwise F1 when none does), and that threshold is scored on the
other half and on the whole set. Each half is grouped on its own (its articles only: a smaller window).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from monitor.cli import evaluation
from monitor.config.rules import load_rules
from monitor.matching import stories

GRID = [round(0.5 + 0.1 * step, 1) for step in range(26)]  # 0.5 ... 3.0


def score(folder: Path, labels: dict[str, str], threshold: float) -> tuple[float, float]:
    """Pairwise precision and recall of the index with `threshold` on the labelled articles given."""
    original = stories.THRESHOLD
    stories.StoryIndex.__init__.__defaults__ = (stories.WINDOW, threshold)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "labels.csv"
            path.write_text("file,story\n" + "".join(f"{f},{s}\n" for f, s in labels.items()), encoding="utf-8")
            rules = load_rules(Path("config/rules.yaml"), environ={})
            grouping = evaluation.evaluate(rules, folder, path).grouping
    finally:
        stories.StoryIndex.__init__.__defaults__ = (stories.WINDOW, original)
    assert grouping is not None
    return grouping.precision or 0.0, grouping.recall or 0.0


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/stories")
    with (root / "labels.csv").open(encoding="utf-8", newline="") as handle:
        labels = {row["file"]: row["story"] for row in csv.DictReader(handle)}
    dates = {name: (root / "articles" / name).read_text(encoding="utf-8").split()[1] for name in labels}
    order = sorted(dict.fromkeys(labels[name] for name in sorted(labels, key=lambda n: (dates[n], n))))
    first = {story: min(dates[n] for n in labels if labels[n] == story) for story in order}
    order.sort(key=lambda story: (first[story], story))
    halves = {"odd": set(order[0::2]), "even": set(order[1::2])}
    folder = root / "articles"
    print(f"full set, default threshold {stories.THRESHOLD}: P/R {score(folder, labels, stories.THRESHOLD)}")
    for name, train in halves.items():
        test = set(order) - train
        part = {f: s for f, s in labels.items() if s in train}
        rest = {f: s for f, s in labels.items() if s in test}
        grid = {value: score(folder, part, value) for value in GRID}
        good = [value for value, (p, r) in grid.items() if p >= 0.95 and r >= 0.9]
        chosen = (
            good[len(good) // 2] if good else max(grid, key=lambda v: 2 * grid[v][0] * grid[v][1] / (sum(grid[v]) or 1))
        )
        print(f"chosen on the {name} half ({len(train)} stories): targets met at {good or 'none'}; chosen {chosen}")
        print(f"  on the other half ({len(test)} stories): P/R {score(folder, rest, chosen)}")
        print(f"  on the whole set: P/R {score(folder, labels, chosen)}")
        print("  grid on this half:", " ".join(f"{v}:{p:.2f}/{r:.2f}" for v, (p, r) in grid.items()))
        grid_rest = {value: score(folder, rest, value) for value in GRID}
        print("  grid on the other half:", " ".join(f"{v}:{p:.2f}/{r:.2f}" for v, (p, r) in grid_rest.items()))
    full = {value: score(folder, labels, value) for value in GRID}
    print("grid on the whole set:", " ".join(f"{v}:{p:.2f}/{r:.2f}" for v, (p, r) in full.items()))


if __name__ == "__main__":
    main()
