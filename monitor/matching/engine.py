"""All rules compiled into one engine: `engine.match(article) -> list[Match]`.

One pass of an Aho-Corasick automaton over the folded text finds every fragment of every term. A rule is a
candidate only when a fragment of one of its required terms occurs (see `query.required`); only candidates
are evaluated, and each term's hits are worked out once per article, however many rules share it.

Fragments, in the padded folded text `" " + folded + " "` where every non-word character is a space:
- word `w`: ` w `, so an automaton hit is already a whole-word hit;
- wildcard: its longest literal piece, with a space on the side where the pattern starts or ends;
- phrase and proximity: the fragments of their words;
- stem: no fragment; the article's tokens are stemmed once when any rule stems.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import ahocorasick

from monitor.articles import Article, ArticleDate
from monitor.matching.analysis import WORD, Folded, fold, snippet
from monitor.matching.query import (
    All,
    Node,
    Not,
    Stemmer,
    Term,
    render,
    required,
    strip_marks,
    terms,
    word_regex,
)

Span = tuple[int, int]  # folded-text offsets, end exclusive


@dataclass(frozen=True, slots=True)
class MatchRule:
    """A rule as the engine needs it; `rules.py` builds these from the YAML."""

    name: str
    query: str
    node: Node
    min_hits: int = 1
    max_age: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    term: str  # the rule's term as written
    text: str  # the matched text as it stands in the article
    start: int  # character offsets in the article body
    end: int
    snippet: str  # the hit in context, marked [[like this]]


@dataclass(frozen=True, slots=True)
class Match:
    rule: str
    hits: tuple[Hit, ...]
    clause: str  # the part of the query that made the rule fire


def _fragment(pattern: str) -> str:
    """The automaton pattern for one folded word pattern (see the module docstring)."""
    pieces = re.split(r"[*?]", pattern)
    best = max(range(len(pieces)), key=lambda i: len(pieces[i]))
    literal = pieces[best]
    if best == 0:
        literal = " " + literal
    if best == len(pieces) - 1:
        literal = literal + " "
    return literal


@dataclass(slots=True)
class Doc:
    """One article's text while it is matched; every expensive view is computed once, on demand."""

    folded: Folded
    fragment_ends: dict[int, list[int]]
    _word_starts: list[int] | None = None
    _stems: dict[Stemmer, dict[str, list[Span]]] = field(default_factory=dict)
    cache: dict[tuple[object, ...], list[Span]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.folded.text

    def word_index(self, offset: int) -> int:
        if self._word_starts is None:
            self._word_starts = [m.start() for m in WORD.finditer(self.text)]
        return bisect.bisect_right(self._word_starts, offset) - 1

    def stems(self, stemmer: Stemmer) -> dict[str, list[Span]]:
        index = self._stems.get(stemmer)
        if index is None:
            index = self._stems[stemmer] = defaultdict(list)
            for token in WORD.finditer(self.text):
                index[stemmer(token.group())].append(token.span())
        return index


class Engine:
    """The compiled rule set. Immutable after construction; safe to share between threads."""

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self.rules = tuple(rules)
        self._fragments: dict[str, int] = {}
        self._fragment_rules: list[set[int]] = []
        self._always: set[int] = set()
        self._stem_rules: dict[Stemmer, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        self._patterns: dict[str, re.Pattern[str]] = {}
        for index, rule in enumerate(self.rules):
            self._add(index, rule)
        self._automaton = ahocorasick.Automaton()
        for fragment, fid in self._fragments.items():
            self._automaton.add_word(fragment, fid)
        if self._fragments:
            self._automaton.make_automaton()

    def _fragment_id(self, fragment: str) -> int:
        fid = self._fragments.get(fragment)
        if fid is None:
            fid = self._fragments[fragment] = len(self._fragment_rules)
            self._fragment_rules.append(set())
        return fid

    def _add(self, index: int, rule: MatchRule) -> None:
        for term in terms(rule.node):
            for word in term.words if term.kind != "stem" else ():
                self._fragment_id(_fragment(word))
        needed = required(rule.node)
        if needed is None:
            self._always.add(index)
            return
        for term in needed:
            if term.stemmer is not None:
                self._stem_rules[term.stemmer][term.stem or ""].add(index)
                continue
            # Every word of a phrase must occur: the longest one's fragment is the most selective.
            word = max(term.words, key=lambda w: len(w.replace("*", "").replace("?", "")))
            self._fragment_rules[self._fragment_id(_fragment(word))].add(index)

    def match(self, article: Article, now: datetime | None = None) -> list[Match]:
        """The matches of every rule whose `max_age` the article's date is within."""
        now = now or datetime.now(UTC)
        return [m for i, m in self._matches(article.text) if _fresh(self.rules[i], article.date, now)]

    def match_text(self, text: str) -> list[Match]:
        """The matches of every rule, whatever the text's date."""
        return [m for _, m in self._matches(text)]

    def _matches(self, text: str) -> list[tuple[int, Match]]:
        folded = fold(text)
        ends: dict[int, list[int]] = defaultdict(list)
        if self._fragments:
            for end, fid in self._automaton.iter(" " + folded.text + " "):
                ends[fid].append(end)
        candidates = set(self._always)
        for fid in ends:
            candidates.update(self._fragment_rules[fid])
        doc = Doc(folded, ends)
        for stemmer, by_stem in self._stem_rules.items():
            for stem in doc.stems(stemmer).keys() & by_stem.keys():
                candidates.update(by_stem[stem])
        matches = []
        for index in sorted(candidates):
            found = self._evaluate(self.rules[index], doc)
            if found is not None:
                matches.append((index, found))
        return matches

    def _evaluate(self, rule: MatchRule, doc: Doc) -> Match | None:
        outcome = self._node(rule.node, doc)
        if outcome is None:
            return None
        spans, clause = outcome
        if len(spans) < rule.min_hits:
            return None
        return Match(rule.name, tuple(self._hits(spans, doc)), clause)

    def _hits(self, spans: Iterable[tuple[Term, Span]], doc: Doc) -> list[Hit]:
        original = doc.folded.original
        hits = {}
        for term, (start, end) in spans:
            o_start, o_end = doc.folded.to_original(start), doc.folded.to_original(end)
            hits[(o_start, o_end, term.text)] = Hit(
                term.text, original[o_start:o_end], o_start, o_end, snippet(original, o_start, o_end)
            )
        return sorted(hits.values(), key=lambda h: (h.start, h.term))

    def _node(self, node: Node, doc: Doc) -> tuple[list[tuple[Term, Span]], str] | None:
        if isinstance(node, Term):
            spans = self.term_spans(node, doc)
            return ([(node, s) for s in spans], node.text) if spans else None
        if isinstance(node, Not):
            return None if self._node(node.child, doc) is not None else ([], render(node))
        outcomes = [self._node(child, doc) for child in node.children]
        if isinstance(node, All):
            if any(o is None for o in outcomes):
                return None
            kept = [o for o in outcomes if o is not None]
        else:
            kept = [o for o in outcomes if o is not None]
            if not kept:
                return None
        joiner = " AND " if isinstance(node, All) else " OR "
        clause = joiner.join(c for _, c in kept)
        return [s for spans, _ in kept for s in spans], f"({clause})" if len(kept) > 1 else clause

    def term_spans(self, term: Term, doc: Doc) -> list[Span]:
        cached = doc.cache.get(term.key)
        if cached is None:
            cached = doc.cache[term.key] = self._spans(term, doc)
        return cached

    def _spans(self, term: Term, doc: Doc) -> list[Span]:
        if term.kind == "stem":
            spans = doc.stems(term.stemmer).get(term.stem or "", []) if term.stemmer else []
        elif term.kind == "phrase":
            spans = self._phrase_spans(term, doc)
        elif term.kind == "near":
            spans = self._near_spans(term, doc)
        else:
            spans = self._word_spans(term.words[0], doc)
        if term.case_sensitive:
            spans = [s for s in spans if self._case_ok(term, doc, s)]
        return spans

    def _word_spans(self, pattern: str, doc: Doc) -> list[Span]:
        fragment = _fragment(pattern)
        ends = doc.fragment_ends.get(self._fragments[fragment], [])
        if "*" not in pattern and "?" not in pattern:
            return [(end - len(fragment) + 1, end - 1) for end in ends]
        regex = self._compiled(word_regex(pattern))
        text = doc.text
        spans = set()
        for end in ends:
            # Padded end (inclusive) -> folded offsets of the literal, then out to the enclosing word.
            start = end - len(fragment)
            word_start = text.rfind(" ", 0, max(start + 1, 0)) + 1
            word_end = text.find(" ", end - 1)
            word_end = len(text) if word_end < 0 else word_end
            if regex.fullmatch(text, word_start, word_end):
                spans.add((word_start, word_end))
        return sorted(spans)

    def _phrase_spans(self, term: Term, doc: Doc) -> list[Span]:
        if any(not self._word_spans(w, doc) for w in term.words):
            return []
        body = " +".join(word_regex(w) for w in term.words)
        return [m.span() for m in self._compiled(rf"(?<!\w){body}(?!\w)").finditer(doc.text)]

    def _near_spans(self, term: Term, doc: Doc) -> list[Span]:
        per_word = [self._word_spans(w, doc) for w in term.words]
        if any(not spans for spans in per_word):
            return []
        events = sorted((doc.word_index(s[0]), k, s) for k, spans in enumerate(per_word) for s in spans)
        return _windows(events, len(term.words), term.slop)

    def _compiled(self, pattern: str) -> re.Pattern[str]:
        compiled = self._patterns.get(pattern)
        if compiled is None:
            compiled = self._patterns[pattern] = re.compile(pattern)
        return compiled

    def _case_ok(self, term: Term, doc: Doc, span: Span) -> bool:
        original = doc.folded.original[doc.folded.to_original(span[0]) : doc.folded.to_original(span[1])]
        if term.kind == "near":  # each word of the span separately
            return any(self._compiled(word_regex(w)).fullmatch(strip_marks(original)) for w in term.written)
        body = r"\W+".join(word_regex(w) for w in term.written)
        return self._compiled(body).fullmatch(strip_marks(original)) is not None


def _fresh(rule: MatchRule, when: ArticleDate, now: datetime) -> bool:
    return rule.max_age is None or when.latest() >= now - rule.max_age


def _windows(events: list[tuple[int, int, Span]], needed: int, slop: int) -> list[Span]:
    """Spans of the smallest stretches in which every word occurs within `slop` words of each other."""
    found: list[Span] = []
    counts = [0] * needed
    covered = 0
    left = 0
    for right, (position, word, _) in enumerate(events):
        counts[word] += 1
        covered += counts[word] == 1
        while covered == needed:
            if position - events[left][0] <= slop:
                spans = [e[2] for e in events[left : right + 1]]
                found.extend(spans)
            counts[events[left][1]] -= 1
            covered -= counts[events[left][1]] == 0
            left += 1
    return sorted(set(found))
