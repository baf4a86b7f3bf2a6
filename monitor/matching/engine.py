"""All rules compiled into one engine: `engine.match(article) -> list[Match]`.

Per article: fold the text (C speed), intersect the words of all rules with the article's words (one C set
operation) and run one automaton pass for the wildcards that rules need; from these `Presearch` gives the
candidate rules. Only candidates are decided (`Decisions`), most by set lookups alone. Each distinct term's
spans are worked out at most once per article, however many rules share it.

A `Match` works out its hits (offsets in the original text, snippets) and its clause only when they are
first read: deciding costs microseconds, explaining costs more, and a caller may drop matches unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from heapq import merge
from itertools import islice, repeat
from typing import Any, Literal

from monitor.ingest.articles import Article, ArticleDate
from monitor.matching.analysis import Folded, excerpt, fold, snippet
from monitor.matching.budget import NO_LIMIT, Budget, Deadline
from monitor.matching.decide import Decisions
from monitor.matching.facts import Count, hit_facts
from monitor.matching.language import suffix_language, use
from monitor.matching.presearch import Presearch
from monitor.matching.query import AllOf, AnyOf, Node, Not, Term, positive_terms, render, required, terms
from monitor.matching.spans import Doc, SpanList, TermSpans, pairs


@dataclass(frozen=True, slots=True)
class MatchRule:
    """A rule as the engine needs it; `rules.py` builds these from the YAML."""

    name: str
    query: str
    node: Node
    min_hits: int = 1
    max_age: timedelta | None = None
    language: str | None = None  # the query applies to articles in this language only; None: any
    min_count: float | None = None  # the largest count among the hits must be at least this
    negated: Negated = "include"  # which hits count: all, those not denied (exclude), or only denied ones
    counts: bool = False  # the match's count is the largest of its first FACTS_LIMIT hits, not of those kept


Facts = Callable[[], tuple[Count | None, bool]]


class Hit:
    """One place a term matched: the rule's `term` as written, the matched `text` as it stands in the article,
    character offsets in the article body, and the hit in context (`snippet`, marked [[like this]]).

    `count` (the number the text attaches to the hit) and `negated` (whether its clause denies it) are the
    hit's facts (`monitor.matching.facts`): the engine's hits work them out when first read, so that matching
    pays for them only where they are read (payloads, `check`, rules with `min_count` or `negated`). Equal
    when term, text, offsets and snippet are (the facts follow from these).
    """

    __slots__ = ("_facts", "end", "snippet", "start", "term", "text")

    def __init__(
        self,
        term: str,
        text: str,
        start: int,
        end: int,
        snippet: str,
        count: Count | None = None,
        negated: bool = False,
        *,
        facts: Facts | None = None,
    ) -> None:
        self.term = term
        self.text = text
        self.start = start
        self.end = end
        self.snippet = snippet
        self._facts: tuple[Count | None, bool] | Facts = (count, negated) if facts is None else facts

    @property
    def count(self) -> Count | None:
        return self._known()[0]

    @property
    def negated(self) -> bool:
        return self._known()[1]

    def _known(self) -> tuple[Count | None, bool]:
        facts = self._facts
        if callable(facts):
            facts = self._facts = facts()  # two threads at worst work out the same facts
        return facts

    def as_json(self) -> dict[str, Any]:
        count = self.count
        return {
            "term": self.term,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "snippet": self.snippet,
            "count": None if count is None else count.as_json(),
            "negated": self.negated,
        }

    def _key(self) -> tuple[str, str, int, int, str]:
        return (self.term, self.text, self.start, self.end, self.snippet)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hit):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Hit(term={self.term!r}, text={self.text!r}, start={self.start}, end={self.end})"


Explain = Callable[[], tuple[tuple[Hit, ...], str, int]]  # (the first hits, the clause, how many hits in all)
Negated = Literal["include", "exclude", "only"]
FACTS_LIMIT = 1000  # a rule with `min_count` or `negated` looks at the facts of this many hits at most


class Match:
    """A rule that fired: its name, the `hits` and the `clause` that made it fire.

    `hits` are the first `max_hits` hits in text order and `hits_total` counts them all. The engine's matches
    work `hits` and `clause` out when first read (once; safe between threads, where at worst two threads work
    out the same values). Equal when rule, hits and clause are.
    """

    __slots__ = ("_clause", "_count", "_explain", "_hits", "_language", "_rule", "_total")

    def __init__(
        self,
        rule: str,
        hits: tuple[Hit, ...] = (),
        clause: str = "",
        explain: Explain | None = None,
        total: int | None = None,
        language: str | Callable[[], str | None] | None = None,
        count: Count | None = None,
    ) -> None:
        self._rule = rule
        self._hits = hits
        self._clause = clause
        self._total = len(hits) if total is None else total
        self._language = language
        self._count = count  # None: the largest of the hits' counts
        self._explain = explain

    @property
    def rule(self) -> str:
        return self._rule

    @property
    def hits(self) -> tuple[Hit, ...]:
        if self._explain is not None:
            self._materialise()
        return self._hits

    @property
    def hits_total(self) -> int:
        """How many distinct hits the match has, however many `hits` keeps."""
        if self._explain is not None:
            self._materialise()
        return self._total

    @property
    def language(self) -> str | None:
        """The article's language (ISO 639-1), as given by the file's suffix or detected (when first read)."""
        language = self._language
        if callable(language):
            language = self._language = language()
        return language

    @property
    def count(self) -> Count | None:
        """The largest count among the hits (a number before a vague quantity), or None. For a rule with
        `min_count`, `negated` or `realert_on_increase`: among the first FACTS_LIMIT hits, not only those kept."""
        return self._count if self._count is not None else largest_count(hit.count for hit in self.hits)

    @property
    def clause(self) -> str:
        """The part of the query that made the rule fire."""
        if self._explain is not None:
            self._materialise()
        return self._clause

    def _materialise(self) -> None:
        explain = self._explain
        if explain is not None:
            self._hits, self._clause, self._total = explain()
            self._explain = None  # last: another thread sees either the function or all values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.rule, self.hits, self.clause) == (other.rule, other.hits, other.clause)

    def __hash__(self) -> int:
        return hash((self.rule, self.hits, self.clause))

    def __repr__(self) -> str:
        return f"Match(rule={self.rule!r}, hits={self.hits!r}, clause={self.clause!r})"


def largest_count(counts: Iterable[Count | None]) -> Count | None:
    """The count with the largest value; a vague one only when none has a value."""
    best: Count | None = None
    for count in counts:
        if count is None:
            continue
        if best is None or (count.value is not None and (best.value is None or count.value > best.value)):
            best = count
    return best


# What a query node found in a document: each term's spans and the clause that held, or None if it did not hold.
NodeMatch = tuple[list[tuple[Term, SpanList]], str] | None


@dataclass(frozen=True, slots=True)
class _Limits:
    max_hits: int = 20
    hit_chars: int = 200


_DEFAULT_LIMITS = _Limits()
# With a budget, the clock (a system call) is read before every candidate of a long text, and before every
# `_CLOCK_STRIDE`-th of a text of at most `_SHORT` characters, on which no candidate's decision takes long.
_SHORT = 1 << 16
_CLOCK_STRIDE = 32


def _limits(max_hits: int, hit_chars: int) -> _Limits:
    if max_hits == _DEFAULT_LIMITS.max_hits and hit_chars == _DEFAULT_LIMITS.hit_chars:
        return _DEFAULT_LIMITS
    return _Limits(max_hits, hit_chars)


class Engine:
    """The compiled rule set. Immutable after construction; safe to share between threads.

    Limits of every call: `max_hits` hits kept per match (the first in text order; `Match.hits_total` counts
    them all), a hit's text and snippet cut to about `hit_chars` characters, and `budget`, the CPU seconds (a
    float or a timedelta) matching one article may take, past which it raises `MatchBudgetExceeded` (code
    "too_costly", no path: a caller that knows the file re-raises `exc.with_path(path)`). With a budget, the
    matches' hits and clauses are worked out within it, before the call returns.
    """

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self.rules = tuple(rules)
        self._by_name: dict[str, list[MatchRule]] = {}
        for rule in self.rules:
            self._by_name.setdefault(rule.name, []).append(rule)
        use(rule.language for rule in self.rules if rule.language is not None)
        self._spans = TermSpans()
        self._presearch = Presearch()
        leaves = [terms(rule.node) for rule in self.rules]
        for found in leaves:
            for term in found:
                self._spans.add(term)
        for index, rule in enumerate(self.rules):
            self._presearch.add(index, leaves[index], _unique_terms(required(rule.node)), rule.node)
        self._presearch.freeze()
        self._decisions = Decisions([rule.node for rule in self.rules], self._spans)
        self._plain = [self._is_plain(rule) for rule in self.rules]

    def _is_plain(self, rule: MatchRule) -> bool:
        """Whether the rule fires exactly when its tree holds, whatever the article's date and language, and
        its match is lazy: then `_matches` needs nothing else of it (the fast path)."""
        return (
            rule.max_age is None
            and rule.language is None
            and len(self._by_name[rule.name]) == 1
            and rule.min_hits <= 1
            and rule.min_count is None
            and rule.negated == "include"
            and not rule.counts
        )

    def match(
        self,
        article: Article,
        now: datetime | None = None,
        *,
        max_hits: int = 20,
        hit_chars: int = 200,
        budget: Budget = None,
    ) -> list[Match]:
        """The matches of every rule whose `max_age` the article's date is within."""
        now = now or datetime.now(UTC)
        keep = partial(_fresh, when=article.date, now=now)
        language = suffix_language(article.path)
        return self._matches(article.text, keep, _limits(max_hits, hit_chars), budget, language)

    def match_text(
        self,
        text: str,
        *,
        max_hits: int = 20,
        hit_chars: int = 200,
        budget: Budget = None,
        language: str | None = None,
    ) -> list[Match]:
        """The matches of every rule, whatever the text's date; `language` None: detected from the text."""
        return self._matches(text, None, _limits(max_hits, hit_chars), budget, language)

    def term_hits(
        self, rule_name: str, text: str, *, max_hits: int = 20, hit_chars: int = 200, language: str | None = None
    ) -> list[Hit]:
        """The first hits of the rule's terms outside NOT, whether or not the rule fires: for near misses (of
        the rule's query for the text's language, or its first query when none is for that language)."""
        doc = self._doc(text, language=language)
        versions = self._by_name[rule_name]
        rule = next((r for r in versions if r.language is None or doc.languages.admits(r.language)), versions[0])
        groups = [(t, self._spans.spans(t, doc)) for t in positive_terms(rule.node)]
        return list(self._hits(groups, doc, _limits(max_hits, hit_chars)))

    def candidates(self, text: str) -> set[int]:
        """The numbers of the rules that would be decided on this text (for benchmarks and tests)."""
        return self._presearch.candidates(self._doc(text))

    def _doc(self, text: str, deadline: Deadline | None = None, language: str | None = None) -> Doc:
        doc = Doc(fold(text), set(), self._spans.wanted, deadline or NO_LIMIT, given_language=language)
        self._presearch.scan(doc)
        return doc

    def _matches(
        self,
        text: str,
        keep: Callable[[MatchRule], bool] | None,
        limits: _Limits,
        budget: Budget,
        language: str | None = None,
    ) -> list[Match]:
        """The matches in the order of the rules; `keep` says which candidates to decide at all. A rule's
        query for one language is decided only on articles in that language (detected when first needed).
        A plain rule (`_is_plain`: most) costs one decision and, when it holds, one lazy `Match`."""
        deadline = Deadline.after(budget)
        doc = self._doc(text, deadline, language)
        rules, tests, plain, explain = self.rules, self._decisions.tests, self._plain, self._explain
        detect = doc.detect
        matches = []
        named: set[str] = set()
        stride = 1 if len(text) > _SHORT else _CLOCK_STRIDE
        for number, index in enumerate(sorted(self._presearch.candidates(doc))):
            if budget is not None and not number % stride:
                deadline.check()
            rule = rules[index]
            if plain[index]:
                test = tests[index]
                if test is None or test(doc):
                    matches.append(Match(rule.name, explain=partial(explain, rule.node, doc, limits), language=detect))
                continue
            found = self._decide(index, doc, keep, limits, named)
            if found is not None:
                matches.append(found)
                named.add(rule.name)
        if budget is not None:  # the explanations too are worked out within the budget, then lazy reads are free
            for found in matches:
                _ = found.hits_total
            deadline.lift()
        return matches

    def _decide(
        self, index: int, doc: Doc, keep: Callable[[MatchRule], bool] | None, limits: _Limits, named: set[str]
    ) -> Match | None:
        """The match of a rule that is not plain, or None: one with a date limit, a language, more versions
        under its name, or conditions on its hits."""
        rule = self.rules[index]
        if keep is not None and not keep(rule):
            return None
        if rule.language is not None and rule.name in named:
            return None  # the rule's query for another language matched already: the first match counts
        if not self._decisions.holds(index, doc):
            return None  # decided before the language: a detection costs more than any decision
        if rule.language is not None and not doc.languages.admits(rule.language):
            return None  # every plausible language's query applies (all when unknown)
        return self._match(rule, doc, limits)

    def _match(self, rule: MatchRule, doc: Doc, limits: _Limits) -> Match | None:
        """The match of a rule whose tree holds: lazy, unless `min_hits`, `min_count` or `negated` need the
        hits now."""
        if rule.min_count is not None or rule.negated != "include" or rule.counts:
            return self._match_facts(rule, doc, limits)
        if rule.min_hits <= 1:
            return Match(rule.name, explain=partial(self._explain, rule.node, doc, limits), language=doc.detect)
        outcome = self._node(rule.node, doc)
        if outcome is None:
            return None
        groups, clause = outcome
        if _distinct([spans for _, spans in groups], rule.min_hits) < rule.min_hits:
            return None
        hits = self._hits(groups, doc, limits)
        return Match(rule.name, hits, clause, total=_total(groups), language=doc.detect)

    def _match_facts(self, rule: MatchRule, doc: Doc, limits: _Limits) -> Match | None:
        """The match of a rule that looks at its hits' facts: the hits that `negated` keeps (of the first
        FACTS_LIMIT), at least `min_hits` of them (distinct places, as elsewhere), and a largest count of at
        least `min_count`. The match's count is the largest among all the hits looked at, not only those kept."""
        outcome = self._node(rule.node, doc)
        if outcome is None:
            return None
        groups, clause = outcome
        total = _total(groups)
        kept: list[Hit] = []
        counts: list[Count | None] = []
        places: set[tuple[int, int]] = set()
        examined = dropped = 0
        for hit in self._hit_stream(groups, doc, limits, FACTS_LIMIT):
            examined += 1
            if (rule.negated == "exclude" and hit.negated) or (rule.negated == "only" and not hit.negated):
                dropped += 1
                continue
            counts.append(hit.count)
            places.add((hit.start, hit.end))
            if len(kept) < limits.max_hits:
                kept.append(hit)
            doc.deadline.check()
        if not kept or len(places) + max(total - examined, 0) < rule.min_hits:
            return None
        largest = largest_count(counts)
        if rule.min_count is not None and (largest is None or largest.value is None or largest.value < rule.min_count):
            return None
        return Match(rule.name, tuple(kept), clause, total=total - dropped, language=doc.detect, count=largest)

    def _explain(self, node: Node, doc: Doc, limits: _Limits) -> tuple[tuple[Hit, ...], str, int]:
        outcome = self._node(node, doc)
        if outcome is None:  # cannot happen: `Decisions.holds` found the node true
            return (), "", 0
        groups, clause = outcome
        return self._hits(groups, doc, limits), clause, _total(groups)

    def _hits(self, groups: list[tuple[Term, SpanList]], doc: Doc, limits: _Limits) -> tuple[Hit, ...]:
        """The first `max_hits` hits in text order, each (term, place) once."""
        return tuple(self._hit_stream(groups, doc, limits, limits.max_hits))

    def _hit_stream(self, groups: list[tuple[Term, SpanList]], doc: Doc, limits: _Limits, limit: int) -> Iterator[Hit]:
        """The first `limit` hits in text order, each (term, place) once, with their facts; equal hits are
        shared between rules. The groups' spans are merged lazily: the cost is that of the hits read, not of
        all."""
        folded = doc.folded
        shared = doc.hits
        if len(groups) == 1:  # most matches: one term, its spans distinct and in order
            term, spans = groups[0]
            keys: Iterable[tuple[int, int, str]] = _keys(spans, term.text, folded, limit)
        else:
            keys = _unique(merge(*(_keys(spans, term.text, folded, limit) for term, spans in groups)))
        for key in islice(keys, limit):
            hit = shared.get(key)
            if hit is None:
                hit = shared[key] = _hit(key, folded.original, limits.hit_chars, doc)
            yield hit

    def _node(self, node: Node, doc: Doc) -> NodeMatch:
        if type(node) is Term:
            spans = self._spans.spans(node, doc)
            return ([(node, spans)], node.text) if spans else None
        if type(node) is Not:
            return None if self._node(node.child, doc) is not None else ([], render(node))
        assert isinstance(node, AllOf | AnyOf)
        is_all = isinstance(node, AllOf)
        label = node.label if isinstance(node, AnyOf) else ""
        kept = []
        for child in node.children:
            found = self._node(child, doc)
            if found is not None:
                kept.append(found)
            elif is_all:
                return None
        if not kept:
            return None
        if len(kept) == 1:
            groups, clause = kept[0]
        else:
            groups = [group for found, _ in kept for group in found]
            clause = "(" + (" AND " if is_all else " OR ").join(c for _, c in kept) + ")"
        if label:
            clause = f"{label} {clause}" if len(kept) > 1 else f"{label} ({clause})"
        return groups, clause


def _keys(spans: SpanList, term: str, folded: Folded, limit: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, term) of the first `limit` spans in original offsets, in text order (`to_original` keeps
    the order; no group gives more than `limit` of the first `limit` hits)."""
    starts: Iterable[int] = spans[0 : 2 * limit : 2]
    ends: Iterable[int] = spans[1 : 2 * limit : 2]
    if not folded.same_offsets:
        starts, ends = map(folded.to_original, starts), map(folded.to_original, ends)
    return zip(starts, ends, repeat(term))


def _hit(key: tuple[int, int, str], original: str, hit_chars: int, doc: Doc) -> Hit:
    start, end, term = key
    text = original[start:end] if end - start <= hit_chars else excerpt(original, start, end, hit_chars)
    return Hit(
        term, text, start, end, snippet(original, start, end, 60, hit_chars), facts=partial(_facts, doc, start, end)
    )


def _facts(doc: Doc, start: int, end: int) -> tuple[Count | None, bool]:
    """A hit's facts, in the article's language (detected now if no rule needed it before)."""
    return hit_facts(doc.folded.original, start, end, doc.language)


def _total(groups: list[tuple[Term, SpanList]]) -> int:
    """How many distinct (place, term) hits the groups hold, without a Hit or a set entry per hit: a term
    text with one group has as many as its spans (which are distinct); only where groups share a term text
    are their spans merged and counted."""
    if len(groups) == 1:
        return len(groups[0][1]) // 2
    by_text: dict[str, list[SpanList]] = {}
    for term, spans in groups:
        by_text.setdefault(term.text, []).append(spans)
    return sum(_distinct(lists) for lists in by_text.values())


def _distinct(lists: list[SpanList], enough: int | None = None) -> int:
    """How many distinct spans the lists (each in text order, without repeats) hold, up to `enough`."""
    lists = [spans for spans in lists if spans]
    if len(lists) == 1:
        return len(lists[0]) // 2
    count, last = 0, None
    for span in merge(*map(pairs, lists)):
        if span != last:
            count += 1
            last = span
            if enough is not None and count >= enough:
                break
    return count


def _unique(keys: Iterable[tuple[int, int, str]]) -> Iterator[tuple[int, int, str]]:
    """Sorted keys without repeats."""
    last = None
    for key in keys:
        if key != last:
            yield key
            last = key


def _unique_terms(items: list[Term]) -> list[Term]:
    seen: dict[int, Term] = {}
    for item in items:
        seen.setdefault(id(item), item)
    return list(seen.values())


def _fresh(rule: MatchRule, *, when: ArticleDate, now: datetime) -> bool:
    return rule.max_age is None or when.latest() >= now - rule.max_age
