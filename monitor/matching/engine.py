"""All rules compiled into one engine: `engine.match(article) -> list[Match]`.

Per article: fold the text (C speed), intersect the words of all rules with the article's words (one C set
operation) and run one automaton pass for the wildcards that rules need; from these `Presearch` gives the
candidate rules. Only candidates are decided (`Decisions`), most by set lookups alone. Each distinct term's
spans are worked out at most once per article, however many rules share it.

A `Match` works out its hits (offsets in the original text, snippets) and its clause only when they are
first read: deciding costs microseconds, explaining costs more, and a caller may drop matches unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from monitor.articles import Article, ArticleDate
from monitor.matching.analysis import fold, snippet
from monitor.matching.decide import Decisions
from monitor.matching.presearch import Presearch
from monitor.matching.query import All, Any, Node, Not, Term, positive_terms, render, required, terms
from monitor.matching.spans import Doc, Span, TermSpans


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


Explain = Callable[[], tuple[tuple[Hit, ...], str]]


class Match:
    """A rule that fired: its name, the `hits` and the `clause` that made it fire.

    The engine's matches work `hits` and `clause` out when first read (once; safe between threads, where at
    worst two threads work out the same values). Equal when rule, hits and clause are.
    """

    __slots__ = ("_clause", "_explain", "_hits", "_rule")

    def __init__(self, rule: str, hits: tuple[Hit, ...] = (), clause: str = "", explain: Explain | None = None):
        self._rule = rule
        self._hits = hits
        self._clause = clause
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
        return len(self.hits)

    @property
    def clause(self) -> str:
        """The part of the query that made the rule fire."""
        if self._explain is not None:
            self._materialise()
        return self._clause

    def _materialise(self) -> None:
        explain = self._explain
        if explain is not None:
            self._hits, self._clause = explain()
            self._explain = None  # last: another thread sees either the function or both values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.rule, self.hits, self.clause) == (other.rule, other.hits, other.clause)

    def __hash__(self) -> int:
        return hash((self.rule, self.hits, self.clause))

    def __repr__(self) -> str:
        return f"Match(rule={self.rule!r}, hits={self.hits!r}, clause={self.clause!r})"


Outcome = tuple[list[tuple[Term, list[Span]]], str] | None  # (each term's spans, the clause)


class Engine:
    """The compiled rule set. Immutable after construction; safe to share between threads."""

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self.rules = tuple(rules)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._spans = TermSpans()
        self._presearch = Presearch()
        leaves = [terms(rule.node) for rule in self.rules]
        for found in leaves:
            for term in found:
                self._spans.add(term)
        for index, rule in enumerate(self.rules):
            self._presearch.add(index, leaves[index], _unique(required(rule.node)))
        self._presearch.freeze()
        self._decisions = Decisions([rule.node for rule in self.rules], self._spans)

    def match(self, article: Article, now: datetime | None = None) -> list[Match]:
        """The matches of every rule whose `max_age` the article's date is within."""
        now = now or datetime.now(UTC)
        return self._matches(article.text, lambda rule: _fresh(rule, article.date, now))

    def match_text(self, text: str) -> list[Match]:
        """The matches of every rule, whatever the text's date."""
        return self._matches(text, None)

    def term_hits(self, rule_name: str, text: str) -> list[Hit]:
        """Every hit of the rule's terms outside NOT, whether or not the rule fires: for near misses."""
        doc = self._doc(text)
        groups = [(t, self._spans.spans(t, doc)) for t in positive_terms(self._by_name[rule_name].node)]
        return list(self._hits(groups, doc))

    def candidates(self, text: str) -> set[int]:
        """The numbers of the rules that would be decided on this text (for benchmarks and tests)."""
        return self._presearch.candidates(self._doc(text))

    def _doc(self, text: str) -> Doc:
        folded = fold(text)
        return Doc(folded, self._presearch.tokens(folded.text))

    def _matches(self, text: str, keep: Callable[[MatchRule], bool] | None) -> list[Match]:
        """The matches in the order of the rules; `keep` says which candidates to decide at all."""
        doc = self._doc(text)
        rules, holds = self.rules, self._decisions.holds
        matches = []
        for index in sorted(self._presearch.candidates(doc)):
            rule = rules[index]
            if keep is not None and not keep(rule):
                continue
            if holds(index, doc):
                found = self._match(rule, doc)
                if found is not None:
                    matches.append(found)
        return matches

    def _match(self, rule: MatchRule, doc: Doc) -> Match | None:
        """The match of a rule whose tree holds: lazy, unless `min_hits` needs the hits counted now."""
        if rule.min_hits <= 1:
            return Match(rule.name, explain=partial(self._explain, rule.node, doc))
        outcome = self._node(rule.node, doc)
        if outcome is None:
            return None
        groups, clause = outcome
        if len({span for _, spans in groups for span in spans}) < rule.min_hits:
            return None
        return Match(rule.name, self._hits(groups, doc), clause)

    def _explain(self, node: Node, doc: Doc) -> tuple[tuple[Hit, ...], str]:
        outcome = self._node(node, doc)
        if outcome is None:  # cannot happen: `Decisions.holds` found the node true
            return (), ""
        groups, clause = outcome
        return self._hits(groups, doc), clause

    def _hits(self, groups: Iterable[tuple[Term, list[Span]]], doc: Doc) -> tuple[Hit, ...]:
        """Hits in text order, each (term, place) once; equal hits are shared between rules."""
        folded = doc.folded
        shared = doc.hits
        hits: dict[tuple[int, int, str], Hit] = {}
        for term, spans in groups:
            for start, end in spans:
                if not folded.same_offsets:
                    start, end = folded.to_original(start), folded.to_original(end)
                key = (start, end, term.text)
                if key not in hits:
                    hit = shared.get(key)
                    if hit is None:
                        original = folded.original
                        hit = shared[key] = Hit(
                            term.text, original[start:end], start, end, snippet(original, start, end)
                        )
                    hits[key] = hit
        if len(hits) == 1:
            return tuple(hits.values())
        return tuple(hits[key] for key in sorted(hits))

    def _node(self, node: Node, doc: Doc) -> Outcome:
        if type(node) is Term:
            spans = self._spans.spans(node, doc)
            return ([(node, spans)], node.text) if spans else None
        if type(node) is Not:
            return None if self._node(node.child, doc) is not None else ([], render(node))
        assert isinstance(node, All | Any)
        is_all = isinstance(node, All)
        label = node.label if isinstance(node, Any) else ""
        kept = []
        for child in node.children:
            outcome = self._node(child, doc)
            if outcome is not None:
                kept.append(outcome)
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


def _unique(items: list[Term]) -> list[Term]:
    seen: dict[int, Term] = {}
    for item in items:
        seen.setdefault(id(item), item)
    return list(seen.values())


def _fresh(rule: MatchRule, when: ArticleDate, now: datetime) -> bool:
    return rule.max_age is None or when.latest() >= now - rule.max_age
