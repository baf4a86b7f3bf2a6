"""The query language: what each query compiles to, what `required` selects, and every error's position."""

from __future__ import annotations

import random
import re

import pytest
import yaml
from luqum import tree
from luqum.parser import parser

from benchmarks.kit.rules import generated_rules_text
from monitor.config.rules import stemmer_for
from monitor.errors import QueryError
from monitor.matching import lucene
from monitor.matching.analysis import fold, fold_term
from monitor.matching.query import AllOf, AnyOf, Compiler, Not, Term, render, required, terms

LISTS = {
    "arrest": ["*arresta*", "gearresteerd", "onder arrest"],
    "outer": ["@arrest", "opgepakt"],
    "loop": ["@loop2"],
    "loop2": ["@loop"],
    "empty": [],
    "bad": ["a*"],
}


def compile_query(query: str, **options: object) -> AllOf | AnyOf | Not | Term:
    return Compiler(LISTS, **options).compile(query)  # type: ignore[arg-type]


def shape(node: object) -> object:
    """The tree as nested tuples: ("AND", ...), ("OR", ...), ("NOT", x), or (kind, words[, slop])."""
    if isinstance(node, Term):
        return (node.kind, *node.words, node.slop) if node.kind == "near" else (node.kind, *node.words)
    if isinstance(node, Not):
        return ("NOT", shape(node.child))
    assert isinstance(node, AllOf | AnyOf)
    return ("AND" if isinstance(node, AllOf) else "OR", *(shape(c) for c in node.children))


W = "word"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("Masimov", (W, "masimov"), id="word-folded"),
        pytest.param("Oekraïne", (W, "oekraine"), id="word-diacritics"),
        pytest.param("Ĳsselmeer", (W, "ijsselmeer"), id="word-ij-ligature"),
        pytest.param('"Hoge Raad"', ("phrase", "hoge", "raad"), id="phrase"),
        pytest.param('"arrest"', (W, "arrest"), id="one-word-phrase-is-word"),
        pytest.param("arrest*", ("wildcard", "arrest*"), id="wildcard-end"),
        pytest.param("*verraad", ("wildcard", "*verraad"), id="wildcard-start"),
        pytest.param("dode?tal", ("wildcard", "dode?tal"), id="wildcard-middle"),
        pytest.param("CSTO-troepen", ("phrase", "csto", "troepen"), id="hyphenated-compound-as-phrase"),
        pytest.param('"masimov hoogverraad"~5', ("near", "masimov", "hoogverraad", 5), id="proximity"),
        pytest.param('"hoge raad"~0', ("phrase", "hoge", "raad"), id="proximity-0-is-phrase"),
        pytest.param('"hoge raad"~', ("near", "hoge", "raad", 1), id="proximity-default-1"),
        pytest.param("a1 AND b2", ("AND", (W, "a1"), (W, "b2")), id="and"),
        pytest.param("a1 OR b2", ("OR", (W, "a1"), (W, "b2")), id="or"),
        pytest.param("a1 NOT b2", ("AND", (W, "a1"), ("NOT", (W, "b2"))), id="not"),
        pytest.param("a1 AND NOT b2", ("AND", (W, "a1"), ("NOT", (W, "b2"))), id="and-not"),
        pytest.param("+a1 -b2", ("AND", (W, "a1"), ("NOT", (W, "b2"))), id="plus-minus"),
        pytest.param("a1 b2", ("AND", (W, "a1"), (W, "b2")), id="implicit-and"),
        pytest.param("a1 OR b2 AND c3", ("OR", (W, "a1"), ("AND", (W, "b2"), (W, "c3"))), id="and-binds-tighter"),
        pytest.param("a1 b2 OR c3", ("AND", (W, "a1"), ("OR", (W, "b2"), (W, "c3"))), id="implicit-binds-loosest"),
        pytest.param("(a1 OR b2) AND c3", ("AND", ("OR", (W, "a1"), (W, "b2")), (W, "c3")), id="parentheses"),
        pytest.param(
            "@arrest",
            ("OR", ("wildcard", "*arresta*"), (W, "gearresteerd"), ("phrase", "onder", "arrest")),
            id="list",
        ),
        pytest.param(
            "@outer",
            (
                "OR",
                ("OR", ("wildcard", "*arresta*"), (W, "gearresteerd"), ("phrase", "onder", "arrest")),
                (W, "opgepakt"),
            ),
            id="nested-list",
        ),
    ],
)
def test_compiles_to(query: str, expected: object) -> None:
    assert shape(compile_query(query)) == expected


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        pytest.param("masimov AND )", "unexpected ')'", 12, id="stray-parenthesis"),
        pytest.param("(masimov OR tokajev", "unexpected end", 19, id="unclosed-parenthesis"),
        pytest.param("masimov AND", "unexpected end", 11, id="dangling-and"),
        pytest.param("a1 OR OR b2", "unexpected 'OR'", 6, id="double-or"),
        pytest.param('masimov "hoog', "Illegal character", 8, id="unclosed-quote"),
        pytest.param("   ", "empty query", 0, id="empty"),
        pytest.param("NOT voetbal", "no term that must occur", 0, id="only-not"),
        pytest.param("-voetbal -tennis", "no term that must occur", 0, id="only-prohibit"),
        pytest.param("masimov && tokajev", "write AND", 8, id="lucene-and"),
        pytest.param("masimov || tokajev", "write OR", 8, id="lucene-or"),
        pytest.param("masimov !tokajev", "write NOT", 8, id="lucene-not"),
        pytest.param("masimov and tokajev", "capitals", 8, id="lowercase-operator"),
        pytest.param("masimov title:tokajev", "field:value", 8, id="field"),
        pytest.param("masimov tokajev~2", "fuzzy", 8, id="fuzzy"),
        pytest.param("masimov^2", "boost", 0, id="boost"),
        pytest.param("masimov [a TO b]", "range", 8, id="range"),
        pytest.param("masimov /ma.*/", "regex", 8, id="regex"),
        pytest.param("masimov *", "at least two letters", 8, id="bare-star"),
        pytest.param("masimov d?", "at least two letters", 8, id="short-wildcard"),
        pytest.param('masimov "csto *"', "at least two letters", 8, id="star-in-phrase"),
        pytest.param("masimov CSTO-*", "at least two letters", 8, id="star-in-compound"),
        pytest.param("masimov ...", "no letters or digits", 8, id="no-letters"),
        pytest.param('masimov "..."', "has no words", 8, id="empty-phrase"),
        pytest.param("masimov @nope", "unknown list @nope (lists: arrest", 8, id="unknown-list"),
        pytest.param("masimov @loop", "refers to itself", 8, id="list-cycle"),
        pytest.param("masimov @empty", "list @empty is empty", 8, id="empty-list"),
        pytest.param("masimov @bad", "in list @bad: wildcard 'a*'", 8, id="bad-list-item"),
    ],
)
def test_errors_have_positions(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(query)
    assert message in str(caught.value)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("masimov", ["masimov"], id="term"),
        pytest.param("masimov OR tokajev", ["masimov", "tokajev"], id="or-needs-any"),
        pytest.param("masimov AND hoogverraadzaak", ["hoogverraadzaak"], id="and-needs-the-longest"),
        pytest.param("masimov NOT tokajev", ["masimov"], id="not-is-never-required"),
        pytest.param("masimov OR NOT tokajev", ["masimov"], id="or-not-needs-the-positive"),
        pytest.param("(a1 OR b2) AND c3", ["c3"], id="and-prefers-fewer-terms"),
        pytest.param("(a1 OR NOT b2) AND (c3 OR NOT d4)", ["a1", "c3"], id="hits-come-from-some-side"),
        pytest.param('"hoge raad"', ['"hoge raad"'], id="phrase"),
    ],
)
def test_required(query: str, expected: list[str]) -> None:
    assert [t.text for t in required(compile_query(query))] == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("a1 AND (b2 OR c3)", "(a1 AND (b2 OR c3))", id="nested"),
        pytest.param("a1 -b2", "(a1 AND NOT b2)", id="not"),
        pytest.param("@arrest", "@arrest", id="list-label"),
    ],
)
def test_render(query: str, expected: str) -> None:
    assert render(compile_query(query)) == expected


def test_stemmed_words_keep_their_stem_and_quotes_turn_stemming_off() -> None:
    node = compile_query('arrestaties "arrestaties" arrest*', stemmer=stemmer_for("nl"))
    assert [(t.kind, t.stem) for t in terms(node)] == [("stem", "arresteer"), ("word", None), ("wildcard", None)]


def test_case_sensitive_terms_keep_the_written_form() -> None:
    node = compile_query("CSTO-Troepen OR Oekraïne", case_sensitive=True)
    assert [t.written for t in terms(node)] == [("CSTO", "Troepen"), ("Oekraine",)]
    assert all(t.case_sensitive for t in terms(node))


def test_ascii_terms_fold_as_the_pieces_do() -> None:
    """`fold_term` takes ASCII terms at once: the same as folding each piece between wildcards."""
    rng = random.Random(3)
    characters = [chr(c) for c in range(128)]
    for term in ["Masimov", "CSTO-troepen", "dode?tal", "*Arresta*", "a_b", "x\ty\r", "arres-\ntaties", "A-\nB"] + [
        "".join(rng.choice(characters) for _ in range(rng.randint(0, 12))) for _ in range(3000)
    ]:
        pieces = re.split(r"([*?])", term)
        assert fold_term.__wrapped__(term) == "".join(p if p in "*?" else fold(p).text for p in pieces), term


def full(node: object) -> object:
    """Everything a compiled tree holds, for comparing two compilations of one query."""
    if isinstance(node, Term):
        return (node.text, node.kind, node.words, node.slop, node.case_sensitive, node.stem, node.stemmer, node.written)
    if isinstance(node, Not):
        return ("NOT", full(node.child))
    assert isinstance(node, AllOf | AnyOf)
    return (type(node).__name__, getattr(node, "label", ""), *(full(c) for c in node.children))


def leaves(item: tree.Item) -> list[tuple[str, object, int | None]]:
    """The items of a luqum tree whose positions the compiler reads, with those positions."""
    found = [(type(item).__name__, getattr(item, "value", None), item.pos)] if not item.children else []
    if isinstance(item, tree.Proximity | tree.Not | tree.Group):
        found.append((type(item).__name__, None, item.pos))
    return found + [leaf for child in item.children for leaf in leaves(child)]


def assert_same_as_luqum(query: str, lists: dict[str, list[str]] = LISTS) -> None:
    """The fast parser gives luqum's tree (positions too), and the compiler the same terms from both."""
    fast = lucene.parse(query)
    assert fast is not None, f"{query!r} is left to luqum"
    slow = parser.parse(query)
    assert fast == slow
    assert leaves(fast) == leaves(slow)
    for options in ({}, {"case_sensitive": True}, {"stemmer": stemmer_for("nl")}):
        compiler = Compiler(lists, **options)  # type: ignore[arg-type]
        assert full(compiler._fast(query)) == full(compiler._parsed(query))


@pytest.mark.parametrize(
    "query",
    [
        "masimov",
        "Oekraïne",
        "CSTO-troepen",
        "arrest*",
        "*verraad",
        "dode?tal",
        "masimov hoogverraad landverraad",
        "masimov OR tokajev OR nazarbajev",
        "masimov AND tokajev AND CSTO-troepen",
        "  masimov   OR\ttokajev ",
        '"Hoge Raad"',
        '"hoge raad"~5',
        '"hoge raad"~',
        '"hoge raad"~0',
        '"hoge raad"~05 masimov',
        '"hoge raad"~5masimov',
        "a1 OR b2 AND c3",
        "a1 AND b2 OR c3 AND d4",
        "a1 b2 OR c3",
        "a1 OR b2 c3 OR d4",
        "a1 AND b2 c3",
        "NOT a1 b2",
        "a1 NOT b2",
        "a1 AND NOT b2 OR c3",
        "NOT NOT a1 b2",
        "a1 OR NOT (b2 AND c3)",
        "(a1)",
        "((a1 OR b2)) c3",
        "(a1 OR b2) OR c3",
        "a1 AND (b2 AND c3)",
        '("hoge raad" OR arrest*) AND NOT (voetbal OR Amsterdam)',
        "@arrest AND Utrecht",
        "@outer OR masimov",
        "a'b c\"d e=f g&h",
        "Ĳsselmeer OR café",
    ],
)
def test_fast_parser_gives_luqums_tree(query: str) -> None:
    assert_same_as_luqum(query)


@pytest.mark.parametrize(
    "query",
    [
        "+a1 b2",
        "a1 -b2",
        "a1 OR b2 -c3",
        "title:masimov",
        "masimov^2",
        "(a1 OR b2)^2",
        "masimov~2",
        '"hoge raad"~1.5',
        "[a TO b]",
        "a1 TO b2",
        "/ma.*/",
        "masimov\\ tokajev",
        '"hoge \\"raad"',
        "T12:30",
        "a1 {b2}",
        "<a1",
        "'a1'",
        'masimov "hoog',
        "masimov AND )",
        "(masimov OR tokajev",
        "masimov AND",
        "a1 OR OR b2",
        "AND a1",
        "()",
        '"a"~2~3',
        "",
        "   ",
    ],
)
def test_fast_parser_leaves_the_rest_to_luqum(query: str) -> None:
    assert lucene.parse(query) is None


@pytest.mark.parametrize(
    "query",
    ["masimov && tokajev", "masimov and tokajev", "masimov @nope", "masimov @loop", "masimov d?", 'masimov ""'],
)
def test_queries_that_do_not_compile_are_compiled_again_by_luqum(query: str) -> None:
    assert lucene.parse(query) is not None
    assert Compiler(LISTS)._fast(query) is None


def test_fast_parser_on_random_queries() -> None:
    """Every query the fast parser takes, of thousands put together from tokens, gives luqum's tree."""
    rng = random.Random(5)
    tokens = ["a1", "b2", "c3*", "@arrest", '"x y"', '"z"', "AND", "OR", "NOT", "(", ")", "~2", "~"]
    others = ["+", "-", "TO", "x:y", "^2", "\\", "[", "}", "/r/", "'", '"', "~1.5", "&&", "and"]
    taken = 0
    for _ in range(4000):
        pool = tokens + (others if rng.random() < 0.3 else [])
        words = [rng.choice(pool) for _ in range(rng.randint(1, 8))]
        query = "".join(word + rng.choice([" ", " ", "  ", ""]) for word in words)
        if lucene.parse(query) is None:
            continue
        taken += 1
        assert lucene.parse(query) == parser.parse(query), query
        assert leaves(lucene.parse(query)) == leaves(parser.parse(query)), query
    assert taken > 500


def test_fast_parser_on_the_benchmark_rules() -> None:
    """The generated rules of the benchmarks (`benchmarks.kit`): every shape users write takes the fast path."""
    document = yaml.safe_load(generated_rules_text(1000, "http://127.0.0.1:9/hooks"))
    for rule in document["rules"]:
        queries = rule["query"].values() if isinstance(rule["query"], dict) else [rule["query"]]
        lists = {name: items for name, items in document["lists"].items() if isinstance(items, list)}
        for query in queries:
            assert_same_as_luqum(query, lists)


def test_benchmark_rules_that_cannot_fire_do_not(tmp_path) -> None:
    """`generated_rules_text(firing=N)`: the first N rules are those of `count=N`; the others fire on no
    article of the benchmarks' corpus (the startup benchmark's "100 can fire" row rests on this)."""
    from benchmarks.kit.corpus import Corpus, plan
    from monitor.config.rules import load_rules

    def rules_of(text: str) -> list[dict]:
        return yaml.safe_load(text)["rules"]

    url = "http://127.0.0.1:9/hooks"
    mixed = generated_rules_text(2000, url, firing=100)
    assert rules_of(mixed)[:100] == rules_of(generated_rules_text(100, url))
    (tmp_path / "rules.yaml").write_text(mixed, encoding="utf-8")
    engine = load_rules(tmp_path / "rules.yaml").engine
    corpus = Corpus()
    fired = {m.rule for i, rule in enumerate(plan(120)) for m in engine.match_text(corpus.article(i, rule, "t"))}
    firing = {rule["name"] for rule in rules_of(mixed)[:100]}
    assert fired and fired <= firing
    assert len(rules_of(mixed)) == 2000


def test_matching_benchmark_silent_rules_fire_on_none_of_its_text() -> None:
    """matching.py's "100,000 (100 can fire)" row: `silent_rules` keeps only rules that fire on no article of
    the text. Words of the text passed off as compounds make rules that do fire: they are left out."""
    from benchmarks.matching import RuleMaker, build, corpus, silent_rules, vocabulary

    texts = corpus(40_000)
    seen, words = vocabulary(texts, size=5_000)
    posing = [(word, 5) for word in seen if len(word) >= 10][:50]  # in the text, yet "compounds"
    assert posing
    mixed = [w for w in words if w[1]] + posing
    unfiltered, _ = build(RuleMaker(mixed, seed=5).rules(500))
    assert any(unfiltered.match_text(text) for text in texts)  # the filter has something to leave out
    kept = silent_rules(mixed, texts, 500)
    assert len(kept) == 500
    engine, _ = build(kept)
    assert not any(engine.match_text(text) for text in texts)
