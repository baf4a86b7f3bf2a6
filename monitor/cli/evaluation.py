"""Rule tests and scores.

- `run_examples(ruleset)`: every rule's `examples` run through the compiled engine, each a pass or a failure.
- `evaluate(ruleset, folder, labels)`: the rules scored against a folder of labelled articles. The labels are a
  CSV file: a `file` column (names relative to the folder), then one column per rule holding 0 or 1. Each
  labelled rule gets precision, recall and F1, and every false positive and false negative is listed with its
  hits (for a false negative, the hits of the rule's terms that did occur: the near misses).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from monitor.config.rules import RuleSet
from monitor.errors import ArticleError, ConfigError
from monitor.ingest.articles import read_article
from monitor.matching.engine import Hit


@dataclass(frozen=True, slots=True)
class ExampleResult:
    rule: str
    text: str
    expected: bool  # True: should match
    matched: bool

    @property
    def passed(self) -> bool:
        return self.expected == self.matched


def run_examples(ruleset: RuleSet) -> list[ExampleResult]:
    results = []
    for rule in ruleset.rules:
        for expected, texts in ((True, rule.examples.match), (False, rule.examples.no_match)):
            for text in texts:
                matched = any(m.rule == rule.name for m in ruleset.engine.match_text(text))
                results.append(ExampleResult(rule.name, text, expected, matched))
    return results


@dataclass(frozen=True, slots=True)
class Score:
    rule: str
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float | None:
        """None when the rule fired on no article."""
        fired = self.true_positives + self.false_positives
        return self.true_positives / fired if fired else None

    @property
    def recall(self) -> float | None:
        """None when no article is labelled 1 for the rule."""
        relevant = self.true_positives + self.false_negatives
        return self.true_positives / relevant if relevant else None

    @property
    def f1(self) -> float | None:
        wrong_or_right = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / wrong_or_right if wrong_or_right else None


@dataclass(frozen=True, slots=True)
class Miss:
    kind: Literal["false_positive", "false_negative"]
    rule: str
    file: str
    clause: str | None  # what made the rule fire (false positives)
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    articles: int
    scores: tuple[Score, ...]
    misses: tuple[Miss, ...]

    def rows(self) -> list[tuple[str, ...]]:
        """One row per rule: rule, labelled, fired, TP, FP, FN, precision, recall, F1 ("-": undefined)."""

        def ratio(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        return [
            (
                s.rule,
                str(s.true_positives + s.false_negatives),
                str(s.true_positives + s.false_positives),
                str(s.true_positives),
                str(s.false_positives),
                str(s.false_negatives),
                ratio(s.precision),
                ratio(s.recall),
                ratio(s.f1),
            )
            for s in self.scores
        ]

    def to_json(self) -> dict[str, Any]:
        scores = [{**asdict(s), "precision": s.precision, "recall": s.recall, "f1": s.f1} for s in self.scores]
        misses = {
            kind: [asdict(m) for m in self.misses if m.kind == kind] for kind in ("false_positive", "false_negative")
        }
        return {
            "articles": self.articles,
            "scores": scores,
            "false_positives": misses["false_positive"],
            "false_negatives": misses["false_negative"],
        }


def read_labels(path: Path, rule_names: list[str]) -> tuple[list[str], dict[str, dict[str, bool]]]:
    """The labelled rules (in column order) and each file's labels. ConfigError names the line at fault."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError(f"cannot read labels: {exc.strerror}", source=path) from None
    if not rows or not rows[0] or rows[0][0].strip() != "file":
        raise ConfigError("expected a header line starting with 'file', then one column per rule", source=path)
    columns = [c.strip() for c in rows[0][1:]]
    unknown = [c for c in columns if c not in rule_names]
    if unknown or not columns:
        known = ", ".join(rule_names) or "none"
        raise ConfigError(
            f"line 1: no rule named {', '.join(unknown) or '(no rule columns)'} (rules: {known})", source=path
        )
    labels: dict[str, dict[str, bool]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = [cell.strip() for cell in row]
        if len(values) != len(columns) + 1 or any(v not in {"0", "1"} for v in values[1:]):
            raise ConfigError(f"line {number}: expected a file name and {len(columns)} values of 0 or 1", source=path)
        if values[0] in labels:
            raise ConfigError(f"line {number}: {values[0]} is labelled twice", source=path)
        labels[values[0]] = {rule: value == "1" for rule, value in zip(columns, values[1:], strict=True)}
    return columns, labels


def evaluate(ruleset: RuleSet, folder: Path, labels_path: Path) -> Evaluation:
    """Score every labelled rule on the labelled articles in `folder` (dates are ignored: `max_age` is not)."""
    columns, labels = read_labels(labels_path, [rule.name for rule in ruleset.rules])
    counts = {rule: [0, 0, 0, 0] for rule in columns}  # tp, fp, fn, tn
    misses = []
    for name, wanted in labels.items():
        try:
            article = read_article(folder / name)
        except ArticleError as exc:
            raise ConfigError(f"labelled article {name}: {exc.reason}", source=labels_path) from None
        fired = {m.rule: m for m in ruleset.engine.match_text(article.text)}
        for rule in columns:
            match = fired.get(rule)
            slot = (0 if wanted[rule] else 1) if match is not None else (2 if wanted[rule] else 3)
            counts[rule][slot] += 1
            if slot == 1 and match is not None:
                misses.append(Miss("false_positive", rule, name, match.clause, match.hits))
            elif slot == 2:
                near = tuple(ruleset.engine.term_hits(rule, article.text))
                misses.append(Miss("false_negative", rule, name, None, near))
    scores = tuple(Score(rule, *counts[rule]) for rule in columns)
    return Evaluation(len(labels), scores, tuple(misses))
