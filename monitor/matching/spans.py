"""Where each term occurs in one article: `TermSpans.spans(term, doc) -> list[Span]`.

Terms are interned by what they match (`Term.key`), so a term shared by many rules is worked out once per
article. In folded text every non-word character is a space, so a whole word `w` is the substring ` w ` of
`" " + folded + " "`: an exact word is present when it is one of the article's tokens (the words of the
article that are words of some term, `Presearch.tokens`) and its spans are a `str.find` loop. A wildcard's
spans come from a `str.find` loop for its longest literal piece (`fragment`), each place widened to the
enclosing word and, unless the pattern is one literal piece and a `*` (`arrest*`, `*verraad`: every place is
a match), checked by a regex. Only the terms of candidate rules are worked out, each once per article. A
phrase is its words' spans, each next to the one before; proximity is the smallest windows that hold every word.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from monitor.matching.analysis import WORD, Folded, keep_case
from monitor.matching.query import Stemmer, Term, word_regex

Span = tuple[int, int]  # folded-text offsets, end exclusive
_SPACES = re.compile(" *")
_WILDCARDS = re.compile(r"[*?]")


def is_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def fragment(pattern: str) -> str:
    """What identifies a folded word pattern in the padded folded text: its longest literal piece, with a
    space on the side where the pattern starts or ends (` w ` for an exact word `w`)."""
    pieces = _WILDCARDS.split(pattern)
    best = max(range(len(pieces)), key=lambda i: len(pieces[i]))
    return (" " if best == 0 else "") + pieces[best] + (" " if best == len(pieces) - 1 else "")


@dataclass(slots=True)
class Doc:
    """One article's text while it is matched; every expensive view is computed once, on demand."""

    folded: Folded
    tokens: set[str]  # the folded text's words that are words of some term (`Presearch.tokens`)
    cache: dict[int, list[Span]] = field(default_factory=dict)
    hits: dict[tuple[int, int, str], Any] = field(default_factory=dict)  # (start, end, term) -> engine.Hit
    _padded: str | None = None
    _word_starts: list[int] | None = None
    _stems: dict[Stemmer, dict[str, list[Span]]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.folded.text

    @property
    def padded(self) -> str:
        """`" " + text + " "`: a whole word `w` is the substring ` w `."""
        if self._padded is None:
            self._padded = " " + self.folded.text + " "
        return self._padded

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
    """One word pattern: an exact word, or a wildcard with its fragment, (unless every place of the fragment
    is a match) its regex for one word, and (when it starts with a letter) its regex for the padded text, which
    finds it in one C call (`re` looks for the literal start first, as fast as `str.find`)."""

    text: str
    fragment: str | None = None
    regex: str | None = None
    search: str | None = None
    others: tuple[str, ...] = ()  # the fragments of its other literal pieces of two letters or more


class TermSpans:
    """The interned terms of an engine."""

    def __init__(self) -> None:
        self._ids: dict[tuple[object, ...], int] = {}
        self._of: dict[Term, int] = {}  # identity: Term compares by identity
        self._words: list[tuple[_Word, ...]] = []
        self._plain: list[str | None] = []  # per term id: the word of a plain word term (a token test suffices)
        self._compiled: dict[str, re.Pattern[str]] = {}
        self._patterns: dict[str, _Word] = {}  # many terms share words

    def add(self, term: Term) -> int:
        key = term.key
        tid = self._ids.get(key)
        if tid is None:
            tid = self._ids[key] = len(self._words)
            words = () if term.kind == "stem" else term.words
            self._words.append(tuple(self._word(w) for w in words))
            plain = term.kind == "word" and not term.case_sensitive
            self._plain.append(term.words[0] if plain else None)
        self._of[term] = tid
        return tid

    def _word(self, pattern: str) -> _Word:
        found = self._patterns.get(pattern)
        if found is not None:
            return found
        if not is_wildcard(pattern):
            found = _Word(pattern)
        else:
            text = fragment(pattern)
            simple = pattern.count("*") == 1 and "?" not in pattern and pattern.strip("*") == text.strip()
            others = tuple(piece for piece in pieces(pattern) if piece != text and len(piece.strip()) >= 2)
            search = None if pattern[0] in "*?" else f" {word_regex(pattern)}(?= )"
            found = _Word(pattern, text, None if simple else word_regex(pattern), search, others)
        self._patterns[pattern] = found
        return found

    def certain(self, term: Term) -> bool:
        """Whether the term occurs exactly when its presearch key does (see `presearch`): a plain word, or a
        wildcard that is one literal piece and a `*`, whose every fragment is a match."""
        words = self._words[self._of[term]]
        if term.case_sensitive or term.kind not in ("word", "wildcard") or len(words) != 1:
            return False
        return words[0].fragment is None or words[0].regex is None

    def present(self, term: Term, doc: Doc) -> bool:
        """Whether the term occurs: a set lookup for plain words, else whether it has spans."""
        tid = self._of[term]
        plain = self._plain[tid]
        if plain is not None:
            return plain in doc.tokens
        words = self._words[tid]
        for word in words:  # cheap tests first: each exact word occurs, each wildcard's pieces
            if word.fragment is None:
                if word.text not in doc.tokens:
                    return False
            elif word.others and not all(piece in doc.padded for piece in word.others):
                return False
        if len(words) == 1 and words[0].fragment is not None and not term.case_sensitive:
            return self._wildcard_present(words[0], doc)
        return bool(self.spans(term, doc))

    def _wildcard_present(self, word: _Word, doc: Doc) -> bool:
        """Whether a wildcard occurs, without working out all its places."""
        if word.regex is None:
            return word.fragment is not None and word.fragment in doc.padded
        if word.search is not None:
            return self._regex(word.search).search(doc.padded) is not None
        return bool(self._wildcard_spans(word, doc))

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
        if word.fragment is None:
            spans = _word_spans(word.text, doc) if word.text in doc.tokens else []
        else:
            spans = self._wildcard_spans(word, doc)
        if written is not None and spans:
            regex = self._regex(word_regex(written))
            spans = [span for span in spans if regex.fullmatch(_written(doc, span))]
        return spans

    def _wildcard_spans(self, word: _Word, doc: Doc) -> list[Span]:
        """The words that match a wildcard, in order."""
        if word.search is not None:  # the match starts at the space before the word and ends before the one after
            return [(m.start(), m.end() - 1) for m in self._regex(word.search).finditer(doc.padded)]
        regex = self._regex(word.regex) if word.regex is not None else None
        needle = word.fragment or ""
        padded, text, size = doc.padded, doc.text, len(needle)
        spans: list[Span] = []
        at = padded.find(needle)
        while at >= 0:  # the fragment is text[at - 1 : at - 1 + size]: out to the enclosing word
            start = text.rfind(" ", 0, max(at, 0)) + 1
            end = text.find(" ", at + size - 2)
            end = len(text) if end < 0 else end
            if (regex is None or regex.fullmatch(text, start, end)) and (not spans or spans[-1][0] != start):
                spans.append((start, end))
            at = padded.find(needle, at + 1)
        return spans

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


def pieces(pattern: str) -> list[str]:
    """The fragments of every literal piece of a wildcard pattern: with a space on the side of an end."""
    pieces = _WILDCARDS.split(pattern)
    last = len(pieces) - 1
    return [(" " if i == 0 else "") + piece + (" " if i == last else "") for i, piece in enumerate(pieces) if piece]


def _word_spans(word: str, doc: Doc) -> list[Span]:
    """Every place of the exact word `word` (one of the doc's tokens), by `str.find` in the padded text."""
    padded, needle, size = doc.padded, f" {word} ", len(word)
    spans = []
    at = padded.find(needle)
    while at >= 0:  # padded offset of the space before = folded offset of the word
        spans.append((at, at + size))
        at = padded.find(needle, at + size + 1)
    return spans


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
