"""The matching engine on hostile articles: capped hits with exact totals, bounded excerpts, the budget, and
the linear algorithms (wildcards, phrases, proximity, folding) against simple references on small inputs.
Speed itself is measured by benchmarks/hostile_corpus.py, not here."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from benchmarks.hostile_corpus import corpus, ordinary, shapes_rules_yaml
from monitor.config.rules import load_rules, stemmer_for
from monitor.errors import ArticleError, MatchBudgetExceeded
from monitor.matching.analysis import Folded, _fold_general, _fold_removals, fold, fold_char, keep_case
from monitor.matching.engine import Engine, MatchRule
from monitor.matching.query import Compiler, word_regex
from monitor.matching.spans import full_match

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = load_rules(ROOT / "config" / "rules.yaml", environ={}).engine


def engine(*queries: str, stem: str | None = None, **options: object) -> Engine:
    compiler = Compiler({}, stemmer=stemmer_for(stem) if stem else None)
    rules = [MatchRule(f"r{i}", q, compiler.compile(q), **options) for i, q in enumerate(queries)]  # type: ignore[arg-type]
    return Engine(rules)


def test_hits_are_capped_in_text_order_and_counted_exactly() -> None:
    (found,) = SHIPPED.match_text("Er volgden arrestaties. " + "gearresteerd " * 1000)
    assert found.hits_total == 1001
    assert len(found.hits) == 20
    assert [h.text for h in found.hits] == ["arrestaties"] + ["gearresteerd"] * 19
    assert [h.start for h in found.hits] == sorted(h.start for h in found.hits)
    (few,) = SHIPPED.match_text("gearresteerd " * 50, max_hits=3)
    assert (len(few.hits), few.hits_total) == (3, 50)


def test_total_counts_a_place_of_two_groups_with_one_term_text_once() -> None:
    rules = engine("masimov OR (masimov AND knb) OR knb*")
    text = "masimov knb " * 30 + "masimov"
    (capped,) = rules.match_text(text)
    (everything,) = rules.match_text(text, max_hits=10**6)
    assert capped.hits_total == everything.hits_total == len(everything.hits) == 31 + 30 + 30  # knb and knb* twice
    assert capped.hits == everything.hits[:20]


def test_min_hits_counts_every_place_not_just_the_kept_ones() -> None:
    rules = engine("gearresteerd", min_hits=30)
    assert rules.match_text("gearresteerd " * 29, max_hits=5) == []
    (found,) = rules.match_text("gearresteerd " * 30, max_hits=5)
    assert (len(found.hits), found.hits_total) == (5, 30)


def test_a_huge_word_gives_a_short_excerpt_with_the_full_offsets() -> None:
    word = "x" * 50_000 + "hoogverraad" + "x" * 50_000
    text = f"Een {word} hier."
    (found,) = SHIPPED.match_text(text, hit_chars=100)
    (hit,) = found.hits
    assert (hit.start, hit.end) == (4, 4 + len(word))
    assert len(hit.text) == 100 and hit.text.endswith("…") and hit.text.startswith("xxx")
    assert len(hit.snippet) <= 100 + 2 * 60 + 10
    (near,) = SHIPPED.term_hits("hoogverraad", text, hit_chars=50)
    assert len(near.text) == 50


def test_term_hits_are_capped_too() -> None:
    assert len(SHIPPED.term_hits("arrestaties", "gearresteerd " * 100, max_hits=7)) == 7


@pytest.mark.parametrize("budget", [0.0, timedelta(0)], ids=["seconds", "timedelta"])
def test_a_spent_budget_raises_too_costly(budget: float | timedelta) -> None:
    with pytest.raises(MatchBudgetExceeded) as raised:
        SHIPPED.match_text("gearresteerd " * 20_000, budget=budget)
    assert isinstance(raised.value, ArticleError)
    assert raised.value.code == "too_costly"
    assert raised.value.with_path("a.txt").path == "a.txt"


def test_within_the_budget_the_matches_are_complete() -> None:
    (found,) = SHIPPED.match_text("gearresteerd " * 100, budget=60.0)
    assert found.hits_total == 100 and found.clause == "@arrest (*arrestee*)"


def _reference_words(pattern: str, text: str) -> list[tuple[int, int]]:
    """The words of folded `text` that match a word pattern: one regex fullmatch per word."""
    regex = re.compile(word_regex(pattern))
    return [m.span() for m in re.finditer(r"\w+", text) if regex.fullmatch(m.group())]


@pytest.mark.parametrize(
    "pattern", ["*ab*", "*a*b*", "a*b*a", "?b*a*", "ab*", "*ba", "a?b", "*a?b*a*", "b*a*b*a", "aa*"]
)
def test_wildcards_equal_a_regex_per_word(pattern: str) -> None:
    rng = random.Random(pattern)
    rules = engine(pattern)
    for _ in range(30):
        text = " ".join("".join(rng.choices("ab", k=rng.randint(1, 9))) for _ in range(rng.randint(1, 30)))
        expected = _reference_words(pattern, text)
        got = [(h.start, h.end) for h in rules.term_hits("r0", text, max_hits=10**6)]
        assert got == expected, text


@pytest.mark.parametrize("pattern", ["*a*b*", "a*b*c", "*ab*ba*", "a?*?b*c?"])
def test_glob_equals_the_regex(pattern: str) -> None:
    rng = random.Random(pattern)
    test, regex = full_match(pattern), re.compile(word_regex(pattern))
    for _ in range(300):
        word = "".join(rng.choices("abc", k=rng.randint(0, 12)))
        assert bool(test(word, 0, len(word))) == bool(regex.fullmatch(word)), word


def test_glob_is_linear_on_a_long_word_without_its_last_piece() -> None:
    test = full_match("*a*b*")
    word = "a" * 200_000  # the regex \w*a\w*b\w* backtracks over every a: minutes
    assert not test(word, 0, len(word))


def _reference_phrase(words: list[str], text: str) -> list[tuple[int, int]]:
    found = re.finditer(r"(?<!\w)(?=(" + r" +".join(map(re.escape, words)) + r")(?!\w))", text)
    return [(m.start(1), m.end(1)) for m in found]


def test_phrases_equal_a_regex() -> None:
    rng = random.Random(5)
    rules = engine('"a b a"', '"a a"')
    for _ in range(50):
        text = "  ".join(rng.choices(["a", "b", "c"], k=rng.randint(1, 40)))
        for rule, words in (("r0", ["a", "b", "a"]), ("r1", ["a", "a"])):
            got = [(h.start, h.end) for h in rules.term_hits(rule, text, max_hits=10**6)]
            assert got == _reference_phrase(words, text), text


def _reference_near(words: list[str], slop: int, text: str) -> list[tuple[int, int]]:
    """The windows of the engine before it was made linear: every event kept, the window never dropped early."""
    need = Counter(words)
    order = list(need)
    events = sorted(
        (i, order.index(w), m.span()) for i, m in enumerate(re.finditer(r"\w+", text)) for w in order if m.group() == w
    )
    found: set[tuple[int, int]] = set()
    positions: Counter[int] = Counter()
    total, counts, missing, left = sum(need.values()), [0] * len(order), len(order), 0
    for right, (position, word, _) in enumerate(events):
        counts[word] += 1
        positions[position] += 1
        missing -= counts[word] == need[order[word]]
        while missing == 0:
            first = events[left][0]
            if position - first + 1 - total <= slop and len(positions) >= total:
                found.update(e[2] for e in events[left : right + 1])
            old = events[left][1]
            missing += counts[old] == need[order[old]]
            counts[old] -= 1
            positions[first] -= 1
            if not positions[first]:
                del positions[first]
            left += 1
    return sorted(found)


@pytest.mark.parametrize(
    ("words", "slop"), [(["a", "b"], 1), (["a", "b"], 3), (["a", "a", "b"], 2), (["b", "c", "a"], 4)]
)
def test_proximity_equals_the_old_windows(words: list[str], slop: int) -> None:
    rng = random.Random(f"{words}{slop}")
    rules = engine(f'"{" ".join(words)}"~{slop}')
    for _ in range(60):
        text = " ".join(rng.choices(["a", "b", "c", "d", "e"], k=rng.randint(1, 40)))
        got = [(h.start, h.end) for h in rules.term_hits("r0", text, max_hits=10**6)]
        assert got == _reference_near(words, slop, text), text


@pytest.mark.parametrize(
    "text",
    [
        "ab-\ncd" * 50,
        "a\u200b" * 100,
        "e\u0301" * 40 + " x",
        "\u200b" * 30 + "hoog\u00adverraad",
        "a-\n\u00adb c\u0301\u0302d",
        "x-\nY ab-\n cd",
    ],
)
def test_fast_removal_fold_equals_the_general_path(text: str) -> None:
    general = _fold_general(text)
    folds = [_fold_removals(text, accents=False), _fold_removals(text, accents=True)]
    assert folds[1] is not None
    for fast in filter(None, folds):
        assert fast.text == general.text
        for word in re.finditer(r"\w+", general.text):
            assert [fast.to_original(o) for o in word.span()] == [general.to_original(o) for o in word.span()]


def test_keep_case_keeps_capitals_and_removes_what_fold_removes() -> None:
    assert keep_case("CSTO-troepen, Oekraïne’s do\u00adden") == "CSTO troepen  Oekraine s doden"


def test_only_wanted_stems_are_kept() -> None:
    rules = engine("arrestatie", stem="nl")
    doc = rules._doc("De arrestaties en de gearresteerden, en nog veel meer woorden " * 3)
    stemmer = rules.rules[0].node.stemmer  # type: ignore[union-attr]
    assert stemmer is not None
    assert doc.stems(stemmer) == {"arresteer": ("arrestaties", "gearresteerden")}  # not "woord", "veel", ...


def test_the_corpus_and_the_shapes_rules_run_on_small_sizes(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(shapes_rules_yaml(), encoding="utf-8")
    shapes = load_rules(path).engine
    inputs = corpus(16 * 1024)
    assert len(inputs) >= 12
    assert {m.rule for m in shapes.match_text(ordinary(16 * 1024))} >= {"word", "phrase", "stem", "list"}
    for name, text in inputs:
        assert text.startswith("date 2022-01 "), name
        assert 8 * 1024 <= len(text.encode()) <= 20 * 1024, name
        for rules in (SHIPPED, shapes):
            for found in rules.match_text(text, max_hits=5, hit_chars=50):
                assert len(found.hits) <= 5 and found.hits_total >= len(found.hits)
                assert all(len(h.text) <= 50 and len(h.snippet) <= 50 + 130 for h in found.hits), name


def _per_character(text: str) -> tuple[str, list[int], list[int]]:
    """The fold of the engine before it grouped characters: every character on its own, a break point pair
    for each one whose length changes."""
    pieces, folded_marks, original_marks, out = [], [], [], 0
    for at, char in enumerate(text):
        piece = fold_char(char) if not char.isascii() else fold(char).text
        if len(piece) != 1:
            folded_marks += [out, out + len(piece)]
            original_marks += [at, at + 1]
        pieces.append(piece)
        out += len(piece)
    return "".join(pieces), folded_marks, original_marks


@pytest.mark.parametrize("seed", range(5))
def test_grouped_folding_maps_every_word_back_like_one_character_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["ß", "a", " ", "é", "e\u0301", "½", "ﬁ", "\u200e", "Ĳ", "…", "\u200b", "Ж", "ǅ"]
    for _ in range(40):
        text = "".join(rng.choices(alphabet, k=rng.randint(1, 30)))
        got = fold(text)
        folded, folded_marks, original_marks = _per_character(text)
        reference = Folded(text, folded, folded_marks, original_marks)
        assert got.text == folded, text
        for word in re.finditer(r"\w+", folded):
            for offset in word.span():
                assert got.to_original(offset) == reference.to_original(offset), (text, offset)
