"""Rule tests and scores.

- `run_examples(ruleset)`: every rule's `examples` run through the compiled engine, each a pass or a failure.
- `evaluate(ruleset, folder, labels)`: the rules scored against a folder of labelled articles. The labels are a
  CSV file: a `file` column (names relative to the folder), then one column per rule holding 0 or 1, and
  optionally `count_RULE` (the count the article gives, or empty) and `negated_RULE` (1: every mention is
  denied, 0: one is affirmed, empty: no mention). Each labelled rule gets precision, recall and F1, count and
  negation accuracy, in all and per detected language; every false positive and false negative is listed with
  its hits (for a false negative, the hits of the rule's terms that did occur: the near misses), and so is every
  wrong count, wrong negation and negated hit.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from monitor.config.rules import RuleSet
from monitor.errors import ArticleError, ConfigError
from monitor.ingest.articles import read_article
from monitor.matching.engine import FACTS_LIMIT, Hit, Match
from monitor.matching.language import article_language


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
    language: str = ""  # "": every article; else the articles detected in this language
    counts_right: int = 0  # fired articles whose count label the match's count equals
    counts_labelled: int = 0  # fired articles with a count label
    negations_right: int = 0  # articles whose negation label the rule's hits agree with
    negations_labelled: int = 0  # articles with a negation label and a hit of the rule's terms

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

    @property
    def count_accuracy(self) -> float | None:
        """None when no fired article has a count label."""
        return self.counts_right / self.counts_labelled if self.counts_labelled else None

    @property
    def negation_accuracy(self) -> float | None:
        return self.negations_right / self.negations_labelled if self.negations_labelled else None


@dataclass(frozen=True, slots=True)
class Miss:
    kind: Literal["false_positive", "false_negative", "wrong_count", "wrong_negation", "negated"]
    rule: str
    file: str
    clause: str | None  # what made the rule fire (false positives)
    hits: tuple[Hit, ...]
    expected: str = ""  # wrong_count: the labelled count; wrong_negation: the label
    found: str = ""  # wrong_count: the match's count; wrong_negation: whether all hits are negated


@dataclass(frozen=True, slots=True)
class Evaluation:
    articles: int
    scores: tuple[Score, ...]
    misses: tuple[Miss, ...]

    def rows(self) -> list[tuple[str, ...]]:
        """One row per rule (and per rule and language, `rule · en`, when the articles are in several
        languages): rule, labelled, fired, TP, FP, FN, precision, recall, F1, counts right/labelled and
        negations right/labelled ("-": undefined)."""

        def ratio(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        def share(right: int, labelled: int) -> str:
            return f"{right}/{labelled}" if labelled else "-"

        return [
            (
                f"{s.rule} · {s.language}" if s.language else s.rule,
                str(s.true_positives + s.false_negatives),
                str(s.true_positives + s.false_positives),
                str(s.true_positives),
                str(s.false_positives),
                str(s.false_negatives),
                ratio(s.precision),
                ratio(s.recall),
                ratio(s.f1),
                share(s.counts_right, s.counts_labelled),
                share(s.negations_right, s.negations_labelled),
            )
            for s in self.scores
        ]

    def to_json(self) -> dict[str, Any]:
        scores = [
            {
                **asdict(s),
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "count_accuracy": s.count_accuracy,
                "negation_accuracy": s.negation_accuracy,
            }
            for s in self.scores
        ]
        kinds = ("false_positive", "false_negative", "wrong_count", "wrong_negation", "negated")
        misses = {kind: [_miss(m) for m in self.misses if m.kind == kind] for kind in kinds}
        return {
            "articles": self.articles,
            "scores": scores,
            "false_positives": misses["false_positive"],
            "false_negatives": misses["false_negative"],
            "wrong_counts": misses["wrong_count"],
            "wrong_negations": misses["wrong_negation"],
            "negated": misses["negated"],
        }


def _miss(miss: Miss) -> dict[str, Any]:
    fields = {name: getattr(miss, name) for name in ("kind", "rule", "file", "clause", "expected", "found")}
    return {**fields, "hits": [hit.as_json() for hit in miss.hits]}


@dataclass(frozen=True, slots=True)
class Labels:
    """A labels file: the labelled rules in column order, and per file each rule's label, count label
    (`count_RULE`: a number, or empty for none) and negation label (`negated_RULE`: 0, 1 or empty)."""

    rules: list[str]
    files: dict[str, dict[str, bool]]
    counts: dict[str, dict[str, float | None]]
    negations: dict[str, dict[str, bool | None]]


def read_labels(path: Path, rule_names: list[str]) -> Labels:
    """The labels file. ConfigError names the line at fault."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError(f"cannot read labels: {exc.strerror}", source=path) from None
    if not rows or not rows[0] or rows[0][0].strip() != "file":
        raise ConfigError("expected a header line starting with 'file', then one column per rule", source=path)
    columns = [c.strip() for c in rows[0][1:]]
    rules = [c for c in columns if not c.startswith(("count_", "negated_"))]
    unknown = [c for c in columns if c.removeprefix("count_").removeprefix("negated_") not in rule_names]
    if unknown or not rules:
        known = ", ".join(rule_names) or "none"
        raise ConfigError(
            f"line 1: no rule named {', '.join(unknown) or '(no rule columns)'} (rules: {known})", source=path
        )
    labels = Labels(rules, {}, {}, {})
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = dict(zip(columns, (cell.strip() for cell in row[1:]), strict=False))
        name = row[0].strip()
        if len(row) != len(columns) + 1 or any(values[rule] not in {"0", "1"} for rule in rules):
            raise ConfigError(
                f"line {number}: expected a file name and {len(columns)} values "
                f"(0 or 1 for {', '.join(rules)}; a number or nothing for count_*; 0, 1 or nothing for negated_*)",
                source=path,
            )
        if name in labels.files:
            raise ConfigError(f"line {number}: {name} is labelled twice", source=path)
        labels.files[name] = {rule: values[rule] == "1" for rule in rules}
        try:
            labels.counts[name] = {
                c.removeprefix("count_"): float(v) if v else None for c, v in values.items() if c.startswith("count_")
            }
        except ValueError:
            raise ConfigError(f"line {number}: a count_* column holds a number or nothing", source=path) from None
        negations = {c.removeprefix("negated_"): v for c, v in values.items() if c.startswith("negated_")}
        if any(v not in {"", "0", "1"} for v in negations.values()):
            raise ConfigError(f"line {number}: a negated_* column holds 0, 1 or nothing", source=path)
        labels.negations[name] = {rule: None if not v else v == "1" for rule, v in negations.items()}
    return labels


def evaluate(ruleset: RuleSet, folder: Path, labels_path: Path) -> Evaluation:
    """Score every labelled rule on the labelled articles in `folder` (dates are ignored: `max_age` is not),
    in all and, when the articles are in several languages, per language."""
    labels = read_labels(labels_path, [rule.name for rule in ruleset.rules])
    tallies: dict[tuple[str, str], list[int]] = {}  # (rule, language) -> tp, fp, fn, tn, counts, negations
    misses: list[Miss] = []
    languages = set()
    for name in labels.files:
        try:
            article = read_article(folder / name)
        except ArticleError as exc:
            raise ConfigError(f"labelled article {name}: {exc.reason}", source=labels_path) from None
        language = article_language(article.path, article.text)
        languages.add(language or "none")
        fired = {m.rule: m for m in ruleset.engine.match_text(article.text, language=language)}
        for rule in labels.rules:
            tally = _score(ruleset, labels, name, rule, article.text, language, fired.get(rule), misses)
            for key in ((rule, ""), (rule, language or "none")):
                total = tallies.setdefault(key, [0] * 8)
                total[:] = [a + b for a, b in zip(total, tally, strict=True)]
    keys = [(rule, "") for rule in labels.rules]
    if len(languages) > 1:
        keys += [(rule, language) for rule in labels.rules for language in sorted(languages)]
    scores = tuple(_score_of(rule, language, tallies[rule, language]) for rule, language in keys)
    return Evaluation(len(labels.files), scores, tuple(misses))


def _score(
    ruleset: RuleSet,
    labels: Labels,
    name: str,
    rule: str,
    text: str,
    language: str | None,
    match: Match | None,
    misses: list[Miss],
) -> list[int]:
    """One article's tally for one rule (tp, fp, fn, tn, count right, count labelled, negation right,
    negation labelled); its misses are added to `misses`."""
    wanted = labels.files[name][rule]
    tally = [0] * 8
    slot = (0 if wanted else 1) if match is not None else (2 if wanted else 3)
    tally[slot] = 1
    if slot == 1 and match is not None:
        misses.append(Miss("false_positive", rule, name, match.clause, match.hits))
    elif slot == 2:
        near = tuple(ruleset.engine.term_hits(rule, text, language=language))
        misses.append(Miss("false_negative", rule, name, None, near))
    expected = labels.counts[name].get(rule)
    if match is not None and expected is not None:
        found = match.count.value if match.count is not None else None
        tally[4:6] = [int(found == expected), 1]
        if found != expected:
            misses.append(Miss("wrong_count", rule, name, None, match.hits, f"{expected:g}", str(found)))
    hits = ruleset.engine.term_hits(rule, text, language=language, max_hits=FACTS_LIMIT)
    denied = tuple(hit for hit in hits if hit.negated)
    if denied:
        misses.append(Miss("negated", rule, name, None, denied[:20]))
    negation = labels.negations[name].get(rule)
    if negation is not None and hits:
        predicted = len(denied) == len(hits)
        tally[6:8] = [int(predicted == negation), 1]
        if predicted != negation:
            misses.append(Miss("wrong_negation", rule, name, None, tuple(hits[:20]), str(negation), str(predicted)))
    return tally


def _score_of(rule: str, language: str, tally: list[int]) -> Score:
    tp, fp, fn, tn, counts_right, counts, negations_right, negations = tally
    return Score(rule, tp, fp, fn, tn, language, counts_right, counts, negations_right, negations)
