"""Where each term occurs in one article: `TermSpans.spans(term, doc) -> list[Span]`.

Terms are interned by what they match (`Term.key`), so a term shared by many rules is worked out once per
article. Word and wildcard spans come straight from the automaton's fragment hits; a phrase is its words'
spans, each next to the one before; proximity is the smallest windows that hold every word.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from monitor.matching.analysis import WORD, Folded, keep_case
from monitor.matching.query import Stemmer, Term, word_regex

Span = tuple[int, int]  # folded-text offsets, end exclusive
_SPACES = re.compile(" *")


def fragment(pattern: str) -> str:
    """The automaton pattern for one folded word pattern (see the engine's docstring)."""
    pieces = re.split(r"[*?]", pattern)
    best = max(range(len(pieces)), key=lambda i: len(pieces[i]))
    literal = pieces[best]
    if best == 0:
        literal = " " + literal
    if best == len(pieces) - 1:
        literal = literal + " "
    return literal


def _pieces(pattern: str) -> list[str]:
    """The fragments of every literal piece of a wildcard pattern of two letters or more."""
    pieces = re.split(r"[*?]", pattern)
    last = len(pieces) - 1
    return [(" " if i == 0 else "") + p + (" " if i == last else "") for i, p in enumerate(pieces) if len(p) >= 2]


@dataclass(slots=True)
class Doc:
    """One article's text while it is matched; every expensive view is computed once, on demand."""

    folded: Folded
    fragment_ends: dict[int, list[int]]  # fragment id -> end offsets (inclusive) in the padded text
    cache: dict[int, list[Span]] = field(default_factory=dict)
    hits: dict[tuple[int, int, str], Any] = field(default_factory=dict)  # (start, end, term) -> engine.Hit
    _word_starts: list[int] | None = None
    _stems: dict[Stemmer, dict[str, list[Span]]] = field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class _Word:
    """One word pattern: its fragment's id and length; for wildcards, the regex and its other pieces' fragments."""

    fid: int
    length: int
    regex: str | None
    others: tuple[int, ...] = ()  # fragment ids of the other literal pieces: all must occur


class TermSpans:
    """The interned terms of an engine and the fragments the automaton looks for."""

    def __init__(self) -> None:
        self._fragments: dict[str, int] = {}
        self._ids: dict[tuple[object, ...], int] = {}
        self._of: dict[Term, int] = {}  # identity: Term compares by identity
        self._words: list[tuple[_Word, ...]] = []
        self._compiled: dict[str, re.Pattern[str]] = {}

    def fragment_id(self, text: str) -> int:
        fid = self._fragments.get(text)
        if fid is None:
            fid = self._fragments[text] = len(self._fragments)
        return fid

    def add(self, term: Term) -> int:
        tid = self._ids.get(term.key)
        if tid is None:
            tid = self._ids[term.key] = len(self._words)
            words = () if term.kind == "stem" else term.words
            self._words.append(tuple(self._word(w) for w in words))
        self._of[term] = tid
        return tid

    def _word(self, pattern: str) -> _Word:
        text = fragment(pattern)
        if "*" not in pattern and "?" not in pattern:
            return _Word(self.fragment_id(text), len(text), None)
        others = tuple(self.fragment_id(piece) for piece in _pieces(pattern) if piece != text)
        return _Word(self.fragment_id(text), len(text), word_regex(pattern), others)

    def automaton(self) -> ahocorasick.Automaton | None:
        if not self._fragments:
            return None
        automaton = ahocorasick.Automaton()
        for text, fid in self._fragments.items():
            automaton.add_word(text, fid)
        automaton.make_automaton()
        return automaton

    def spans(self, term: Term, doc: Doc) -> list[Span]:
        tid = self._of[term]
        cached = doc.cache.get(tid)
        if cached is None:
            words = self._words[tid]
            if len(words) == 1 and not term.case_sensitive:  # a word or wildcard: most terms
                cached = doc.cache[tid] = self._word_spans(words[0], None, doc)
            else:
                cached = doc.cache[tid] = self._work_out(term, words, doc)
        return cached

    def _work_out(self, term: Term, words: tuple[_Word, ...], doc: Doc) -> list[Span]:
        if term.kind == "stem":
            found = doc.stems(term.stemmer).get(term.stem or "", []) if term.stemmer else []
            return [s for s in found if self._stem_case_ok(term, doc, s)] if term.case_sensitive else found
        written: tuple[str | None, ...] = term.written if term.case_sensitive else (None,) * len(words)
        if term.kind == "phrase":
            return self._phrase(words, written, doc)
        if term.kind == "near":
            return self._near(words, written, term.slop, doc)
        return self._word_spans(words[0], written[0], doc)

    def _word_spans(self, word: _Word, written: str | None, doc: Doc) -> list[Span]:
        ends = doc.fragment_ends.get(word.fid)
        if not ends:
            return []
        for other in word.others:
            if other not in doc.fragment_ends:
                return []
        length = word.length
        if word.regex is None:
            spans = [(end - length + 1, end - 1) for end in ends]
        else:
            spans = self._wildcard_spans(self._regex(word.regex), length, ends, doc.text)
        if written is not None:
            regex = self._regex(word_regex(written))
            spans = [span for span in spans if regex.fullmatch(_written(doc, span))]
        return spans

    @staticmethod
    def _wildcard_spans(regex: re.Pattern[str], length: int, ends: list[int], text: str) -> list[Span]:
        spans = set()
        for end in ends:
            # Padded end (inclusive) -> folded offsets of the literal, then out to the enclosing word.
            start = end - length
            word_start = text.rfind(" ", 0, max(start + 1, 0)) + 1
            word_end = text.find(" ", end - 1)
            word_end = len(text) if word_end < 0 else word_end
            if regex.fullmatch(text, word_start, word_end):
                spans.add((word_start, word_end))
        return sorted(spans)

    def _phrase(self, words: tuple[_Word, ...], written: tuple[str | None, ...], doc: Doc) -> list[Span]:
        per_word = []
        for word, form in zip(words, written, strict=True):
            spans = self._word_spans(word, form, doc)
            if not spans:
                return []
            per_word.append(spans)
        text = doc.text
        following = [dict(spans) for spans in per_word[1:]]
        found = []
        for start, end in per_word[0]:
            for starts in following:
                end = starts.get(_skip_spaces(text, end), -1)
                if end < 0:
                    break
            else:
                found.append((start, end))
        return found

    def _near(self, words: tuple[_Word, ...], written: tuple[str | None, ...], slop: int, doc: Doc) -> list[Span]:
        need = Counter(zip(words, written, strict=True))
        per_word = {}
        for word, form in need:
            spans = self._word_spans(word, form, doc)
            if len(spans) < need[word, form]:
                return []
            per_word[word, form] = spans
        order = list(need)
        events = sorted((doc.word_index(s[0]), order.index(w), s) for w, spans in per_word.items() for s in spans)
        return _windows(events, [need[w] for w in order], slop)

    def _regex(self, pattern: str) -> re.Pattern[str]:
        compiled = self._compiled.get(pattern)
        if compiled is None:
            compiled = self._compiled[pattern] = re.compile(pattern)
        return compiled

    @staticmethod
    def _stem_case_ok(term: Term, doc: Doc, span: Span) -> bool:
        """The same case as written, as far as the stem goes."""
        common = _common_prefix(term.stem or "", term.words[0])
        return _written(doc, span)[:common] == term.written[0][:common]


def _written(doc: Doc, span: Span) -> str:
    """The words of a span as written in the article (diacritics removed), one space between."""
    folded = doc.folded
    return " ".join(keep_case(folded.original[folded.to_original(span[0]) : folded.to_original(span[1])]).split())


def _skip_spaces(text: str, pos: int) -> int:
    found = _SPACES.match(text, pos)
    return found.end() if found else pos


def _common_prefix(a: str, b: str) -> int:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return size


def _windows(events: list[tuple[int, int, Span]], need: list[int], slop: int) -> list[Span]:
    """Spans in the smallest stretches of words that hold every word `need` times, with at most `slop`
    other words between the first and the last."""
    total = sum(need)
    found: set[Span] = set()
    counts = [0] * len(need)
    positions: Counter[int] = Counter()
    missing = len(need)
    left = 0
    for right, (position, word, _) in enumerate(events):
        counts[word] += 1
        positions[position] += 1
        missing -= counts[word] == need[word]
        while missing == 0:
            first = events[left][0]
            if position - first + 1 - total <= slop and len(positions) >= total:
                found.update(e[2] for e in events[left : right + 1])
            old = events[left][1]
            missing += counts[old] == need[old]
            counts[old] -= 1
            positions[first] -= 1
            if not positions[first]:
                del positions[first]
            left += 1
    return sorted(found)
