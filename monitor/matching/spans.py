"""Where each term occurs in one article: `TermSpans.spans(term, doc) -> SpanList`.

Terms are interned by what they match (`Term.key`), so a term shared by many rules is worked out once per
article. In folded text every non-word character is a space, so a whole word `w` is the substring ` w ` of
`" " + folded + " "`: an exact word is present when it is one of the article's tokens (the words of the
article that are words of some term, `Presearch.scan`) and its spans are a `str.find` loop. A wildcard's
spans come from a `str.find` loop for its longest literal piece (`fragment`): each place is widened to the
enclosing word, the word is checked once (unless the pattern is one literal piece and a `*`: `arrest*`,
`*verraad`, where every place is a match) and the search goes on after the word. A phrase is its words'
spans, each next to the one before; proximity is the smallest windows that hold every word.

Cost: every loop here is linear in the text. A word is widened and checked once however often the fragment
occurs in it (`*arresta*` in one 256 kB word of `arrestaarresta...`), patterns with two or more `*` are
checked by `Glob` (greedy leftmost pieces, no backtracking), phrases merge sorted spans, and proximity slides
one window of bounded size. Spans are kept as machine integers (`SpanList`), 8 bytes a span.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from heapq import merge
from itertools import chain
from typing import Any, TypeAlias

from monitor.matching.analysis import WORD, Folded, chunks, keep_case
from monitor.matching.budget import NO_LIMIT, Deadline
from monitor.matching.language import Languages, languages
from monitor.matching.query import Stemmer, Term, word_regex

Span = tuple[int, int]  # folded-text offsets, end exclusive
# Spans in text order as one array of machine integers, start and end after each other: 8 bytes a span (a list
# of 2 million tuples would take 240 MB), and `len` and truth are C calls. `pairs` reads them as tuples.
SpanList: TypeAlias = "array[int]"
FullMatch = Callable[[str, int, int], object]  # truthy when text[pos:endpos] matches a word pattern
_SPACES = re.compile(" *")
_WILDCARDS = re.compile(r"[*?]")
_CHECK_EVERY = 4096  # loop iterations between two looks at the clock
_CHECK_CHARS = 1 << 16  # or characters of text
_COUNT_CHUNK = 1 << 16  # words are counted this many characters at a time (`findall` in C, a bounded list)
_STEM_SLACK = 64  # a word this much longer than every wanted stem cannot have one of them as its stem


def pairs(spans: SpanList) -> Iterator[Span]:
    """The (start, end) pairs of a span list, in order."""
    values = iter(spans)
    return zip(values, values, strict=True)


def span_list(found: Iterable[Span] = ()) -> SpanList:
    return array("i", chain.from_iterable(found))


EMPTY: SpanList = array("i")  # never extended


def is_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def fragment(pattern: str) -> str:
    """What identifies a folded word pattern in the padded folded text: its longest literal piece, with a
    space on the side where the pattern starts or ends (` w ` for an exact word `w`)."""
    pieces = _WILDCARDS.split(pattern)
    best = max(range(len(pieces)), key=lambda i: len(pieces[i]))
    return (" " if best == 0 else "") + pieces[best] + (" " if best == len(pieces) - 1 else "")


@dataclass(frozen=True, slots=True)
class Glob:
    """A word pattern with two or more `*`, matched in time linear in the word: the first piece at the start,
    the last at the end, each other piece at its leftmost place after the one before (a regex such as
    `\\w*a\\w*b\\w*` backtracks quadratically on a long word without `b`)."""

    head: re.Pattern[str]
    middle: tuple[re.Pattern[str], ...]
    tail: re.Pattern[str]
    head_size: int
    tail_size: int
    least: int  # the pattern's literal length: no shorter word matches

    def __call__(self, text: str, pos: int, endpos: int) -> bool:
        limit = endpos - self.tail_size
        if endpos - pos < self.least or not self.head.match(text, pos, endpos):
            return False
        if not self.tail.fullmatch(text, limit, endpos):
            return False
        pos += self.head_size
        for piece in self.middle:
            found = piece.search(text, pos, limit)
            if found is None:
                return False
            pos = found.end()
        return True


def full_match(pattern: str) -> FullMatch:
    """A test whether text[pos:endpos] (a word) matches a word pattern, in time linear in the word."""
    if pattern.count("*") < 2:  # one `\w*` backtracks over one word at most once: linear
        return re.compile(word_regex(pattern)).fullmatch
    pieces = pattern.split("*")
    head, tail = pieces[0], pieces[-1]
    middle = tuple(re.compile(word_regex(p)) for p in pieces[1:-1] if p)
    least = len(pattern) - pattern.count("*")
    return Glob(re.compile(word_regex(head)), middle, re.compile(word_regex(tail)), len(head), len(tail), least)


@dataclass(slots=True)
class Doc:
    """One article's text while it is matched; every expensive view is computed once, on demand."""

    folded: Folded
    tokens: set[str]  # the folded text's words that are words of some term (`Presearch.scan`)
    wanted: Mapping[Stemmer, frozenset[str]] = field(default_factory=dict)  # the stems some term looks up
    deadline: Deadline = field(default_factory=lambda: NO_LIMIT)
    cache: dict[int, SpanList] = field(default_factory=dict)
    hits: dict[tuple[int, int, str], Any] = field(default_factory=dict)  # (start, end, term) -> engine.Hit
    _padded: str | None = None
    # The wildcards' longest fragments that occur (`Presearch.candidates`); None: not looked for. A wildcard
    # whose fragment is not among them does not occur.
    fragments: set[str] | None = None
    _stems: dict[Stemmer, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # The article's language: given (a file's suffix), else detected from the text when first asked.
    given_language: str | None = None
    _languages: Languages | None = None

    @property
    def languages(self) -> Languages:
        """The article's language and the plausible ones, detected once, on demand (a given one is certain)."""
        if self._languages is None:
            given = self.given_language
            self._languages = languages(self.folded.original) if given is None else Languages(given, frozenset({given}))
        return self._languages

    @property
    def language(self) -> str | None:
        """The article's ISO 639-1 language code (None: unknown)."""
        return self.languages.language

    def detect(self) -> str | None:
        """`language`, as a method: what a match calls when its language is first read."""
        return self.language

    @property
    def text(self) -> str:
        return self.folded.text

    @property
    def padded(self) -> str:
        """`" " + text + " "`: a whole word `w` is the substring ` w `."""
        if self._padded is None:
            self._padded = " " + self.folded.text + " "
        return self._padded

    def stems(self, stemmer: Stemmer) -> dict[str, tuple[str, ...]]:
        """The wanted stems that occur, each with the article's words that have it. Each distinct word of a
        chunk of text is stemmed once (the stemmer caches), and words that cannot have a wanted stem not at
        all, so an article of a million words costs a few thousand stemmer calls."""
        index = self._stems.get(stemmer)
        if index is None:
            index = self._stems[stemmer] = self._stem_words(stemmer, self.wanted.get(stemmer, frozenset()))
        return index

    def _stem_words(self, stemmer: Stemmer, wanted: frozenset[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, set[str]] = {}
        longest = max(map(len, wanted), default=0) + _STEM_SLACK
        for chunk in chunks(self.text) if wanted else ():
            words = [word for word in set(chunk.split()) if len(word) <= longest]
            stems = list(map(stemmer, words))  # the stemmer's cache answers in C: no Python frame a word
            if not wanted.isdisjoint(stems):  # most articles have none of the wanted stems
                for word, stem in zip(words, stems, strict=True):
                    if stem in wanted:
                        found.setdefault(stem, set()).add(word)
            self.deadline.check()
        return {stem: tuple(sorted(words)) for stem, words in found.items()}


@dataclass(frozen=True, slots=True)
class _Word:
    """One word pattern: an exact word, or a wildcard with its fragment, (unless every place of the fragment
    is a match) its test for one word, and (when it starts with a letter and has at most one `*`) its regex for
    the padded text, which finds it in one C call (`re` looks for the literal start first, as fast as
    `str.find`, and one `\\w*` backtracks over one word at most once)."""

    text: str
    fragment: str | None = None
    test: FullMatch | None = None
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
        self._tests: dict[str, FullMatch] = {}
        self._patterns: dict[str, _Word] = {}  # many terms share words
        self.wanted: dict[Stemmer, frozenset[str]] = {}  # every stem of a stemmed term, per stemmer

    def add(self, term: Term) -> int:
        key = term.key
        tid = self._ids.get(key)
        if tid is None:
            tid = self._ids[key] = len(self._words)
            words = () if term.kind == "stem" else term.words
            self._words.append(tuple(self._word(w) for w in words))
            plain = term.kind == "word" and not term.case_sensitive
            self._plain.append(term.words[0] if plain else None)
            if term.kind == "stem" and term.stemmer is not None:
                self.wanted[term.stemmer] = self.wanted.get(term.stemmer, frozenset()) | {term.stem or ""}
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
            linear = pattern[0] not in "*?" and pattern.count("*") < 2
            search = f" {word_regex(pattern)}(?= )" if linear else None
            found = _Word(pattern, text, None if simple else self._test(pattern), search, others)
        self._patterns[pattern] = found
        return found

    def certain(self, term: Term) -> bool:
        """Whether the term occurs exactly when its presearch key does (see `presearch`): a plain word, or a
        wildcard that is one literal piece and a `*`, whose every fragment is a match."""
        words = self._words[self._of[term]]
        if term.case_sensitive or term.kind not in ("word", "wildcard") or len(words) != 1:
            return False
        return words[0].fragment is None or words[0].test is None

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
            elif not _may_occur(word, doc):
                return False
        if len(words) == 1 and words[0].fragment is not None and not term.case_sensitive:
            return self._wildcard_present(words[0], doc)
        return bool(self.spans(term, doc))

    def _wildcard_present(self, word: _Word, doc: Doc) -> bool:
        """Whether a wildcard occurs, without working out all its places."""
        if word.test is None:
            return word.fragment is not None and word.fragment in doc.padded
        if word.search is not None:
            return self._regex(word.search).search(doc.padded) is not None
        return bool(self._wildcard_spans(word, doc, first=True))

    def spans(self, term: Term, doc: Doc) -> SpanList:
        tid = self._of[term]
        cached = doc.cache.get(tid)
        if cached is None:
            words = self._words[tid]
            if len(words) == 1 and not term.case_sensitive:  # a word or wildcard: most terms
                cached = doc.cache[tid] = self._word_spans(words[0], None, doc)
            else:
                cached = doc.cache[tid] = self._work_out(term, words, doc)
        return cached

    def _work_out(self, term: Term, words: tuple[_Word, ...], doc: Doc) -> SpanList:
        if term.kind == "stem":
            found = self._stem_spans(term, doc)
            return (
                span_list(s for s in pairs(found) if self._stem_case_ok(term, doc, s)) if term.case_sensitive else found
            )
        written: tuple[str | None, ...] = term.written if term.case_sensitive else (None,) * len(words)
        if term.kind == "phrase":
            return self._phrase(words, written, doc)
        if term.kind == "near":
            return self._near(words, written, term.slop, doc)
        return self._word_spans(words[0], written[0], doc)

    def _stem_spans(self, term: Term, doc: Doc) -> SpanList:
        """The places of every word with the term's stem, in text order."""
        if term.stemmer is None:
            return EMPTY
        words = doc.stems(term.stemmer).get(term.stem or "", ())
        return span_list(merge(*(pairs(_word_spans(word, doc)) for word in words)))

    def _word_spans(self, word: _Word, written: str | None, doc: Doc) -> SpanList:
        if word.fragment is None:
            spans = _word_spans(word.text, doc) if word.text in doc.tokens else EMPTY
        else:
            spans = self._wildcard_spans(word, doc)
        if written is not None and spans:
            test = self._test(written)
            spans = span_list(span for span in pairs(spans) if _written_matches(test, _written(doc, span)))
        return spans

    def _wildcard_spans(self, word: _Word, doc: Doc, first: bool = False) -> SpanList:
        """The words that match a wildcard, in order (with `first`, the first one only)."""
        spans = array("i")
        if doc.fragments is not None and word.fragment not in doc.fragments:
            return spans
        if word.search is not None:  # the match starts at the space before the word and ends before the one after
            for count, found in enumerate(self._regex(word.search).finditer(doc.padded), 1):
                spans.extend((found.start(), found.end() - 1))
                if first:
                    break
                if not count % _CHECK_EVERY:
                    doc.deadline.check()
            return spans
        test, needle = word.test, word.fragment or ""
        padded, text, size = doc.padded, doc.text, len(needle)
        check = _CHECK_CHARS
        at = padded.find(needle)
        while at >= 0:  # the fragment is text[at - 1 : at - 1 + size]: out to the enclosing word
            start = text.rfind(" ", 0, max(at, 0)) + 1
            end = text.find(" ", at + size - 2)
            end = len(text) if end < 0 else end
            if test is None or test(text, start, end):
                spans.extend((start, end))
                if first:
                    break
            if end > check:
                doc.deadline.check()
                check = end + _CHECK_CHARS
            at = padded.find(needle, end + 1)  # on after the word: each word is widened and checked once
        return spans

    def _phrase(self, words: tuple[_Word, ...], written: tuple[str | None, ...], doc: Doc) -> SpanList:
        per_word = []
        for word, form in zip(words, written, strict=True):
            spans = self._word_spans(word, form, doc)
            if not spans:
                return EMPTY
            per_word.append(spans)
        found = per_word[0]
        for following in per_word[1:]:
            found = _followed_by(found, following, doc)
            if not found:
                break
        return found

    def _near(self, words: tuple[_Word, ...], written: tuple[str | None, ...], slop: int, doc: Doc) -> SpanList:
        need = Counter(zip(words, written, strict=True))
        per_word = {}
        for word, form in need:
            spans = self._word_spans(word, form, doc)
            if len(spans) // 2 < need[word, form]:
                return EMPTY
            per_word[word, form] = spans
        streams = [_tagged(per_word[w], order) for order, w in enumerate(need)]
        events = _positions(merge(*streams), doc)
        return _windows(events, list(need.values()), slop, doc.deadline)

    def _regex(self, pattern: str) -> re.Pattern[str]:
        compiled = self._compiled.get(pattern)
        if compiled is None:
            compiled = self._compiled[pattern] = re.compile(pattern)
        return compiled

    def _test(self, pattern: str) -> FullMatch:
        test = self._tests.get(pattern)
        if test is None:
            test = self._tests[pattern] = full_match(pattern)
        return test

    @staticmethod
    def _stem_case_ok(term: Term, doc: Doc, span: Span) -> bool:
        """The same case as written, as far as the stem goes."""
        common = _common_prefix(term.stem or "", term.words[0])
        return _written(doc, span)[:common] == term.written[0][:common]


def _may_occur(word: _Word, doc: Doc) -> bool:
    """Whether a wildcard's literal pieces all occur: its longest fragment among those the presearch found (a
    set lookup), then its other pieces in the text."""
    if doc.fragments is not None and word.fragment not in doc.fragments:
        return False
    return all(piece in doc.padded for piece in word.others)


def pieces(pattern: str) -> list[str]:
    """The fragments of every literal piece of a wildcard pattern: with a space on the side of an end."""
    pieces = _WILDCARDS.split(pattern)
    last = len(pieces) - 1
    return [(" " if i == 0 else "") + piece + (" " if i == last else "") for i, piece in enumerate(pieces) if piece]


def _word_spans(word: str, doc: Doc) -> SpanList:
    """Every place of the exact word `word` (one of the doc's tokens), by `str.find` in the padded text."""
    padded, needle, size = doc.padded, f" {word} ", len(word)
    spans = array("i")
    at = padded.find(needle)
    while at >= 0:  # padded offset of the space before = folded offset of the word
        spans.extend((at, at + size))
        if not len(spans) % _CHECK_EVERY:
            doc.deadline.check()
        at = padded.find(needle, at + size + 1)
    return spans


def _followed_by(first: SpanList, then: SpanList, doc: Doc) -> SpanList:
    """The spans of `first` each followed (after spaces) by a span of `then`, extended to its end. Both are in
    text order, and so are their ends: one pass over each."""
    text, found, j, size = doc.text, array("i"), 0, len(then)
    for count, (start, end) in enumerate(pairs(first), 1):
        target = _skip_spaces(text, end)
        while j < size and then[j] < target:
            j += 2
        if j == size:
            break
        if then[j] == target:
            found.extend((start, then[j + 1]))
        if not count % _CHECK_EVERY:
            doc.deadline.check()
    return found


def _skip_spaces(text: str, pos: int) -> int:
    if not text.startswith(" ", pos):
        return pos
    found = _SPACES.match(text, pos)
    return found.end() if found else pos


def _written(doc: Doc, span: Span) -> str:
    """The words of a span as written in the article (diacritics removed), one space between."""
    folded = doc.folded
    return " ".join(keep_case(folded.original[folded.to_original(span[0]) : folded.to_original(span[1])]).split())


def _written_matches(test: FullMatch, written: str) -> bool:
    return bool(test(written, 0, len(written)))


def _common_prefix(a: str, b: str) -> int:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return size


Event = tuple[int, int, Span]  # (word position in the text, which word of the query, its span)


def _tagged(spans: SpanList, order: int) -> Iterator[tuple[int, int, Span]]:
    return ((start, order, (start, end)) for start, end in pairs(spans))


def _positions(events: Iterable[tuple[int, int, Span]], doc: Doc) -> Iterator[Event]:
    """Events by text offset, with the offset replaced by the number of words before it: the words between
    two events are counted once, so the whole pass is linear (no list of every word start is kept)."""
    text, position, last = doc.text, 0, 0
    for count, (start, order, span) in enumerate(events, 1):
        if start != last:
            position += _count_words(text, last, start)
            last = start
        if not count % _CHECK_EVERY:
            doc.deadline.check()
        yield position, order, span


def _count_words(text: str, start: int, end: int) -> int:
    """The number of words that start in text[start:end] (`start` is a word start or 0), counted by `findall`
    in C a chunk (cut at a space) at a time, so that no list of every word of a long gap is built."""
    count = 0
    while end - start > _COUNT_CHUNK:
        cut = text.find(" ", start + _COUNT_CHUNK, end)
        if cut < 0:
            break
        count += len(WORD.findall(text, start, cut))
        start = cut
    return count + len(WORD.findall(text, start, end))


def _windows(events: Iterable[Event], need: list[int], slop: int, deadline: Deadline) -> SpanList:
    """Spans in the smallest stretches of words that hold every word `need` times, with at most `slop`
    other words between the first and the last.

    One window slides over the events; events too far back to be in any valid window are dropped at once, so
    the window holds at most the events of `slop + sum(need)` words, and spans are added in text order."""
    total = sum(need)
    found = array("i")
    added = -1  # the number of the last event added
    window: deque[tuple[int, Event]] = deque()
    counts = [0] * len(need)
    positions: Counter[int] = Counter()
    missing = len(need)

    def drop() -> None:
        nonlocal missing
        _, (first, old, _) = window.popleft()
        missing += counts[old] == need[old]
        counts[old] -= 1
        positions[first] -= 1
        if not positions[first]:
            del positions[first]

    for number, event in enumerate(events):
        position, word, _ = event
        window.append((number, event))
        counts[word] += 1
        positions[position] += 1
        missing -= counts[word] == need[word]
        while position - window[0][1][0] + 1 - total > slop and missing:
            drop()
        while missing == 0:
            first = window[0][1][0]
            if position - first + 1 - total <= slop and len(positions) >= total:
                added = _add_new(window, added, found)
            drop()
        if not number % _CHECK_EVERY:
            deadline.check()
    return found


def _add_new(window: deque[tuple[int, Event]], added: int, found: SpanList) -> int:
    """Add the window's events not added yet (they are its last ones), each span once; the last number."""
    new = []
    for number, (_, _, span) in reversed(window):
        if number <= added:
            break
        new.append(span)
    for start, end in reversed(new):
        if not found or found[-2] != start or found[-1] != end:
            found.extend((start, end))
    return window[-1][0]
