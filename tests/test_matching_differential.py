"""Random queries on random texts: the engine's fast paths (presearch keys, the decisions of plain rules) give
exactly what the rule trees say, rule by rule, with no presearch and no decision shortcut."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from monitor.errors import QueryError
from monitor.matching.engine import Engine, Match, MatchRule
from monitor.matching.query import Compiler

# Words that share prefixes, suffixes and inner pieces, so that wildcards find some and miss others.
WORDS = [
    "dodental",
    "doden",
    "dode",
    "tal",
    "talen",
    "dodentalen",
    "arrest",
    "arrestatie",
    "arrestaties",
    "gearresteerd",
    "verraad",
    "hoogverraad",
    "raad",
    "raadsman",
    "hoge",
    "politie",
    "politieagent",
    "agent",
    "agenten",
    "zaak",
    "zaken",
    "zakenman",
    "en",
    "de",
    "het",
    "van",
    "geen",
    "niet",
    "café",
    "één",
    "oud-premier",
    "premier",
    "masimov",
    "tokajev",
    "knb",
    "opgepakt",
    "opgepakte",
    "pakt",
    "woningmarkt",
    "markt",
    "grondwater",
    "water",
]
NOT_WORDS = ("dode", "zaak", "geen", "markt", "agent")


def _wildcard(rng: random.Random) -> str:
    word = rng.choice([w for w in WORDS if len(w) >= 4 and w.isalpha()])
    cut = rng.randrange(1, len(word) - 1)
    shape = rng.randrange(5)
    if shape == 0:
        return word[: cut + 1] + "*"
    if shape == 1:
        return "*" + word[cut:]
    if shape == 2:
        return word[:cut] + "?" + word[cut + 1 :]
    if shape == 3:
        return "*" + word[1:-1] + "*" if len(word) > 4 else word[:cut] + "*"
    return word[:cut] + "*" + word[-2:]


def _query(rng: random.Random) -> str:
    def term() -> str:
        return _wildcard(rng) if rng.random() < 0.35 else rng.choice(WORDS)

    def word() -> str:
        return rng.choice(WORDS)

    def denied() -> str:
        return rng.choice(NOT_WORDS)

    shapes: list[Callable[[], str]] = [
        term,
        lambda: " OR ".join(term() for _ in range(rng.randint(2, 4))),
        lambda: f"{term()} AND {term()}",
        lambda: f'"{word()} {word()}"',
        lambda: f"{term()} NOT {denied()}",
        lambda: f'"{word()} {word()}"~3',
        lambda: f"({term()} OR {term()}) AND {term()} NOT {denied()}",
        lambda: f"{term()} OR ({term()} AND NOT {denied()})",
        lambda: f"@lijst AND {term()}",
        lambda: f'"{word()} {_wildcard(rng)}" AND ({term()} OR "{word()} {word()}")',
    ]
    return rng.choice(shapes)()


def _text(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 30))]
    words = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w for w in words]
    return " ".join(w + rng.choice(["", "", "", ",", ".", " -"]) for w in words)


def _rules(seed: int, count: int) -> list[MatchRule]:
    """`count` rules of random queries (those the compiler refuses, such as a wildcard of one letter, left out)."""
    rng = random.Random(seed)
    compiler = Compiler({"lijst": ["arrest*", "opgepakt", "hoge raad", "*verraad"]})
    rules: list[MatchRule] = []
    while len(rules) < count:
        query = _query(rng)
        try:
            rules.append(MatchRule(f"r{len(rules)}", query, compiler.compile(query)))
        except QueryError:
            continue
    return rules


def _reference(engine: Engine, text: str) -> list[str]:
    """The rules whose tree finds hits in the text, each worked out alone from its tree (no presearch): the
    document's words by `str.split`, and no fragments found, so that each wildcard is looked for in the text."""
    doc = engine._doc(text)
    doc.tokens = engine._presearch.vocabulary.keys() & doc.text.split()
    doc.fragments = None
    return [rule.name for rule in engine.rules if engine._node(rule.node, doc) is not None]


def _seen(matches: list[Match]) -> list[tuple[str, tuple[tuple[str, int, int], ...], str, int]]:
    return [(m.rule, tuple((h.term, h.start, h.end) for h in m.hits), m.clause, m.hits_total) for m in matches]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_engine_fires_exactly_the_rules_whose_tree_holds(seed: int) -> None:
    engine = Engine(_rules(seed, 300))
    rng = random.Random(seed + 100)
    for _ in range(150):
        text = _text(rng)
        assert [m.rule for m in engine.match_text(text)] == _reference(engine, text), text


@pytest.mark.parametrize("seed", [4, 5])
def test_plain_rules_match_as_the_general_path_does(seed: int) -> None:
    """A date limit makes every rule take the general path (`match_text` ignores the date): the same matches,
    hits and clauses as the plain rules' fast path."""
    rules = _rules(seed, 300)
    plain = Engine(rules)
    general = Engine([MatchRule(r.name, r.query, r.node, max_age=timedelta(days=1)) for r in rules])
    assert not any(general._plain) and all(plain._plain)
    rng = random.Random(seed + 100)
    for _ in range(150):
        text = _text(rng)
        assert _seen(plain.match_text(text)) == _seen(general.match_text(text)), text


def test_fragments_across_the_scan_windows_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long text is scanned for words and fragments in overlapping windows: with windows of a few dozen
    characters (four times the longest pattern), each pattern that straddles a window's end is still found."""
    whole_engine = Engine(_rules(4, 300))
    rng = random.Random(104)
    texts = [_text(rng) for _ in range(150)]
    whole = {text: [m.rule for m in whole_engine.match_text(text)] for text in texts}
    monkeypatch.setattr("monitor.matching.presearch._WINDOW", 24)
    engine = Engine(_rules(4, 300))  # its windows are sized when it is built
    window = engine._presearch._window
    assert window < 64
    assert sum(len(" " + text + " ") > window for text in texts) > 50
    for text in texts:
        assert [m.rule for m in engine.match_text(text)] == whole[text] == _reference(engine, text), text


@pytest.mark.parametrize("letters", [60_000, 65_535, 65_536, 200_000])
def test_a_term_longer_than_the_scan_window_leaves_matching_intact(letters: int) -> None:
    """A rules file may hold a word longer than the scan's window (64 k characters): the windows grow with it,
    so a long article is still scanned whole (once: a step of 0 raised, a negative step found nothing)."""
    long_word = "a" * letters
    compiler = Compiler({})
    engine = Engine([MatchRule("r", f"foo OR {long_word}", compiler.compile(f"foo OR {long_word}"))])
    text = "b " * 40_000 + "foo " + "b " * 40_000
    assert [m.rule for m in engine.match_text(text)] == ["r"]
    assert [m.rule for m in engine.match_text(text + long_word)] == ["r"]
    assert engine.match_text("b " * 80_000 + long_word[1:]) == []
