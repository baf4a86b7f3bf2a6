"""All rules compiled into one engine: `engine.match(article) -> list[Match]`.

One pass of an Aho-Corasick automaton over the folded text finds every fragment of every term. A rule is a
candidate only when a fragment of one of its required terms occurs (see `query.required`); only candidates
are evaluated, and each distinct term's spans are worked out at most once per article, however many rules
share it.

Fragments, in the padded folded text `" " + folded + " "` where every non-word character is a space:
- word `w`: ` w `, so an automaton hit is already a whole-word hit;
- wildcard: its longest literal piece, with a space on the side where the pattern starts or ends;
- phrase and proximity: the fragments of their words;
- stem: no fragment; the article's tokens are stemmed once when any rule stems.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.articles import Article, ArticleDate
from monitor.matching.analysis import fold, snippet
from monitor.matching.query import All, Any, Node, Not, Stemmer, Term, positive_terms, render, required, terms
from monitor.matching.spans import Doc, Span, TermSpans, fragment


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


Outcome = tuple[list[tuple[Term, list[Span]]], str] | None  # (each term's spans, the clause)


class Engine:
    """The compiled rule set. Immutable after construction; safe to share between threads."""

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self.rules = tuple(rules)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._spans = TermSpans()
        self._fragment_rules: dict[int, list[int]] = defaultdict(list)
        self._stem_rules: dict[Stemmer, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for index, rule in enumerate(self.rules):
            self._add(index, rule)
        self._fragment_rules = dict(self._fragment_rules)
        self._stem_rules = {stemmer: dict(stems) for stemmer, stems in self._stem_rules.items()}
        self._automaton = self._spans.automaton()

    def _add(self, index: int, rule: MatchRule) -> None:
        for term in terms(rule.node):
            self._spans.add(term)
        for term in _unique(required(rule.node)):
            if term.kind == "stem" and term.stemmer is not None:
                self._stem_rules[term.stemmer][term.stem or ""].append(index)
                continue
            # Every word of a phrase must occur: the longest one's fragment is the most selective.
            word = max(term.words, key=lambda w: len(fragment(w)))
            rules = self._fragment_rules[self._spans.fragment_id(fragment(word))]
            if not rules or rules[-1] != index:
                rules.append(index)

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

    def _doc(self, text: str) -> Doc:
        folded = fold(text)
        ends: dict[int, list[int]] = defaultdict(list)
        if self._automaton is not None:
            for end, fid in self._automaton.iter(" " + folded.text + " "):
                ends[fid].append(end)
        return Doc(folded, ends)

    def _matches(self, text: str, keep: Callable[[MatchRule], bool] | None) -> list[Match]:
        """The matches in the order of the rules; `keep` says which candidates to evaluate at all."""
        doc = self._doc(text)
        matches = []
        for index in sorted(self._candidates(doc)):
            rule = self.rules[index]
            if keep is None or keep(rule):
                found = self._evaluate(rule, doc)
                if found is not None:
                    matches.append(found)
        return matches

    def _candidates(self, doc: Doc) -> set[int]:
        """The rules one of whose required terms may occur: only these are evaluated."""
        candidates: set[int] = set()
        fragment_rules = self._fragment_rules
        for fid in doc.fragment_ends:
            rules = fragment_rules.get(fid)
            if rules is not None:
                candidates.update(rules)
        for stemmer, by_stem in self._stem_rules.items():
            for stem in doc.stems(stemmer).keys() & by_stem.keys():
                candidates.update(by_stem[stem])
        return candidates

    def _evaluate(self, rule: MatchRule, doc: Doc) -> Match | None:
        outcome = self._node(rule.node, doc)
        if outcome is None:
            return None
        groups, clause = outcome
        if rule.min_hits > 1 and len({span for _, spans in groups for span in spans}) < rule.min_hits:
            return None
        return Match(rule.name, self._hits(groups, doc), clause)

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
