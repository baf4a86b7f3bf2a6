"""Rule tests and scores.

- `run_examples(ruleset)`: every rule's `examples` run through the compiled engine, each a pass or a failure.
- `evaluate(ruleset, folder, labels)`: the rules scored against a folder of labelled articles. The labels are a
  CSV file: a `file` column (names relative to the folder), then one column per rule holding 0 or 1, and
  optionally `count_RULE` (the count the article gives, or empty) and `negated_RULE` (1: every mention is
  denied, 0: one is affirmed, empty: no mention). Each labelled rule gets precision, recall and F1, count and
  negation accuracy, in all and per detected language; every false positive and false negative is listed with
  its hits (for a false negative, the hits of the rule's terms that did occur: the near misses), and so is every
  wrong count, wrong negation and negated hit. With a `story` column (a label per article: articles of one
  event share it), the articles are also given to the story index in the order of their dates and the grouping
  it makes is scored (`grouping_scores`: pairwise and B-cubed precision and recall).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from monitor.config.rules import RuleSet
from monitor.errors import ArticleError, ConfigError
from monitor.ingest.articles import Article, read_article
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
class GroupingScore:
    """How a predicted grouping of articles into stories agrees with the labelled one.

    Pairwise: of the pairs of articles put in one story, the share that the labels put in one story
    (precision), and of the pairs labelled as one story, the share put in one (recall). B-cubed: per article,
    the share of its predicted story that belongs to its labelled story (precision) and the share of its
    labelled story that is in its predicted story (recall), averaged over the articles."""

    articles: int
    stories_labelled: int
    stories_predicted: int
    pairs_right: int  # pairs of articles in one story both predicted and labelled
    pairs_predicted: int
    pairs_labelled: int
    bcubed_precision: float | None  # None when there are no articles
    bcubed_recall: float | None

    @property
    def precision(self) -> float | None:
        """None when every predicted story holds one article (no pair was put together)."""
        return self.pairs_right / self.pairs_predicted if self.pairs_predicted else None

    @property
    def recall(self) -> float | None:
        """None when every labelled story holds one article (no pair belongs together)."""
        return self.pairs_right / self.pairs_labelled if self.pairs_labelled else None

    @property
    def bcubed_f1(self) -> float | None:
        p, r = self.bcubed_precision, self.bcubed_recall
        return None if p is None or r is None else 2 * p * r / (p + r) if p + r else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "bcubed_f1": self.bcubed_f1}


def grouping_scores(predicted: Mapping[str, str], labelled: Mapping[str, str]) -> GroupingScore:
    """The scores of `predicted` (file -> story id) against `labelled` (file -> story label), over the files of
    `labelled`; a file that `predicted` lacks counts as a story of its own."""
    guess = {name: (predicted[name], "") if name in predicted else ("", name) for name in labelled}
    guessed, truth = Counter(guess.values()), Counter(labelled.values())
    cells = Counter((guess[name], story) for name, story in labelled.items())
    n = len(labelled)
    return GroupingScore(
        articles=n,
        stories_labelled=len(truth),
        stories_predicted=len(guessed),
        pairs_right=sum(_pairs(size) for size in cells.values()),
        pairs_predicted=sum(_pairs(size) for size in guessed.values()),
        pairs_labelled=sum(_pairs(size) for size in truth.values()),
        bcubed_precision=sum(k * k / guessed[g] for (g, _), k in cells.items()) / n if n else None,
        bcubed_recall=sum(k * k / truth[t] for (_, t), k in cells.items()) / n if n else None,
    )


def _pairs(size: int) -> int:
    return size * (size - 1) // 2


@dataclass(frozen=True, slots=True)
class GroupingMiss:
    """A labelled story split over several predicted stories, or a predicted story that merges labelled ones:
    the parts, each the other side's story and its files."""

    kind: Literal["split", "merged"]
    story: str  # split: the labelled story; merged: the predicted story id
    parts: tuple[tuple[str, tuple[str, ...]], ...]


def grouping_misses(predicted: Mapping[str, str], labelled: Mapping[str, str]) -> list[GroupingMiss]:
    """Every split labelled story and every merging predicted story (files in the order of `labelled`)."""
    guess = {name: predicted.get(name, name) for name in labelled}
    splits = _spread(labelled, guess)
    merges = _spread(guess, labelled)
    return [GroupingMiss("split", s, parts) for s, parts in splits] + [
        GroupingMiss("merged", s, parts) for s, parts in merges
    ]


def _spread(
    mine: Mapping[str, str], theirs: Mapping[str, str]
) -> list[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]]:
    """The stories of `mine` whose files `theirs` puts in several stories, with those parts."""
    groups: dict[str, dict[str, list[str]]] = {}
    for name, story in mine.items():
        groups.setdefault(story, {}).setdefault(theirs[name], []).append(name)
    return [
        (story, tuple((other, tuple(files)) for other, files in parts.items()))
        for story, parts in groups.items()
        if len(parts) > 1
    ]


@dataclass(frozen=True, slots=True)
class Evaluation:
    articles: int
    scores: tuple[Score, ...]
    misses: tuple[Miss, ...]
    grouping: GroupingScore | None = None  # with a `story` column
    stories: tuple[tuple[str, str, str], ...] = ()  # file, labelled story, predicted story; in assignment order
    grouping_misses: tuple[GroupingMiss, ...] = ()

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
            "grouping": None if self.grouping is None else self.grouping.to_json(),
            "stories": [{"file": f, "labelled": label, "predicted": story} for f, label, story in self.stories],
            "grouping_misses": [asdict(m) for m in self.grouping_misses],
        }


def _miss(miss: Miss) -> dict[str, Any]:
    fields = {name: getattr(miss, name) for name in ("kind", "rule", "file", "clause", "expected", "found")}
    return {**fields, "hits": [hit.as_json() for hit in miss.hits]}


@dataclass(frozen=True, slots=True)
class Labels:
    """A labels file: the labelled rules in column order, and per file each rule's label, count label
    (`count_RULE`: a number, or empty for none), negation label (`negated_RULE`: 0, 1 or empty) and, with a
    `story` column, its story label."""

    rules: list[str]
    files: dict[str, dict[str, bool]]
    counts: dict[str, dict[str, float | None]]
    negations: dict[str, dict[str, bool | None]]
    stories: dict[str, str] = field(default_factory=dict)


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
    rules = [c for c in columns if c != "story" and not c.startswith(("count_", "negated_"))]
    unknown = [
        c for c in columns if c != "story" and c.removeprefix("count_").removeprefix("negated_") not in rule_names
    ]
    if unknown or not (rules or "story" in columns):
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
        if "story" in values:
            if not values["story"]:
                raise ConfigError(f"line {number}: the story column holds a label for every article", source=path)
            labels.stories[name] = values["story"]
        labels.counts[name], labels.negations[name] = _fact_labels(values, number, path)
    return labels


def _fact_labels(
    values: dict[str, str], number: int, path: Path
) -> tuple[dict[str, float | None], dict[str, bool | None]]:
    """One row's count labels and negation labels, per rule."""
    try:
        counts = {
            c.removeprefix("count_"): float(v) if v else None for c, v in values.items() if c.startswith("count_")
        }
    except ValueError:
        raise ConfigError(f"line {number}: a count_* column holds a number or nothing", source=path) from None
    negations = {c.removeprefix("negated_"): v for c, v in values.items() if c.startswith("negated_")}
    if any(v not in {"", "0", "1"} for v in negations.values()):
        raise ConfigError(f"line {number}: a negated_* column holds 0, 1 or nothing", source=path)
    return counts, {rule: None if not v else v == "1" for rule, v in negations.items()}


def evaluate(ruleset: RuleSet, folder: Path, labels_path: Path, assign: StoryAssigner | None = None) -> Evaluation:
    """Score every labelled rule on the labelled articles in `folder` (dates are ignored: `max_age` is not),
    in all and, when the articles are in several languages, per language; with a `story` column, score the
    grouping that `assign` (default: `assign_stories`, the story index) makes."""
    labels = read_labels(labels_path, [rule.name for rule in ruleset.rules])
    tallies: dict[tuple[str, str], list[int]] = {}  # (rule, language) -> tp, fp, fn, tn, counts, negations
    misses: list[Miss] = []
    languages = set()
    matched: dict[str, tuple[Article, list[str]]] = {}
    for name in labels.files:
        try:
            article = read_article(folder / name)
        except ArticleError as exc:
            raise ConfigError(f"labelled article {name}: {exc.reason}", source=labels_path) from None
        language = article_language(article.path, article.text)
        languages.add(language or "none")
        fired = {m.rule: m for m in ruleset.engine.match_text(article.text, language=language)}
        matched[name] = (article, list(fired))
        for rule in labels.rules:
            tally = _score(ruleset, labels, name, rule, article.text, language, fired.get(rule), misses)
            for key in ((rule, ""), (rule, language or "none")):
                total = tallies.setdefault(key, [0] * 8)
                total[:] = [a + b for a, b in zip(total, tally, strict=True)]
    keys = [(rule, "") for rule in labels.rules]
    if len(languages) > 1:
        keys += [(rule, language) for rule in labels.rules for language in sorted(languages)]
    scores = tuple(_score_of(rule, language, tallies[rule, language]) for rule, language in keys)
    result = Evaluation(len(labels.files), scores, tuple(misses))
    if not labels.stories:
        return result
    return _grouped(result, folder, labels.stories, matched, assign or assign_stories)


# The story index's assignment: articles (each with the names of the rules it matched), in order -> story ids.
StoryAssigner = Callable[[Sequence[tuple[Article, Sequence[str]]]], list[str]]
STORY_WINDOW = timedelta(hours=72)
_VERSION = re.compile(r"-v\d+(?=\.[^.]*$|$)")


def assign_stories(articles: Sequence[tuple[Article, Sequence[str]]]) -> list[str]:
    """Each article's story from a fresh story index, the articles given in order (the one place that knows
    the index's interface)."""
    from monitor.ingest.storyline import new_entry
    from monitor.matching.stories import StoryEntry, StoryIndex, signature

    index = StoryIndex(window=STORY_WINDOW.total_seconds())
    latest: dict[str, StoryEntry] = {}  # path -> its latest version, as the store's `latest_versions`
    stories = []
    for number, (article, rules) in enumerate(articles):
        entry = new_entry(article, signature(article.text), rules, float(number))
        placed, ref = index.assign(entry, latest.get(article.path))
        latest[article.path] = placed
        stories.append(ref.story)
    return stories


def _grouped(
    result: Evaluation,
    folder: Path,
    labelled: dict[str, str],
    matched: dict[str, tuple[Article, list[str]]],
    assign: StoryAssigner,
) -> Evaluation:
    """The evaluation with the grouping scored: the labelled articles go to `assign` in the order of their
    header dates (ties by file name), `NAME-vN.txt` as a version of `NAME.txt` (the same path)."""
    order = sorted(labelled, key=lambda name: (matched[name][0].date.value, name))
    given = [(replace(matched[name][0], path=str(folder / _VERSION.sub("", name))), matched[name][1]) for name in order]
    predicted = dict(zip(order, assign(given), strict=True))
    ordered = {name: labelled[name] for name in order}
    return replace(
        result,
        grouping=grouping_scores(predicted, ordered),
        stories=tuple((name, labelled[name], predicted[name]) for name in order),
        grouping_misses=tuple(grouping_misses(predicted, ordered)),
    )


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
