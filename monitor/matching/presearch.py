"""Which rules to evaluate on one article: `Presearch.scan(doc)`, then `Presearch.candidates(doc) -> set[int]`.

`Presearch.vocabulary` holds every exact word (no wildcard) of every term. `scan(doc)` finds, in one
ahocorasick-rs pass over the padded folded text, both the vocabulary's words that occur (`Doc.tokens`: in
folded text every non-word character is a space, so a word `w` occurs exactly where ` w ` does) and the
wildcards' fragments (`Doc.fragments`, below). The tokens are every word the engine can ask about that occurs:
what decides most rules. (They were `vocabulary.keys() & text.split()`, a hash lookup per word of the article;
one pass for both measured 18 instead of 34 ms for matching.py's 1 MB at 10,000 rules, 52 instead of 66 at
100,000.)

A rule is a candidate only when one of its required terms (`query.required`) may occur. Each required term is
indexed by one key, its most selective word, so that finding the candidates costs about the same for 100 rules
as for 100,000:
- a term with an exact word: the longest one, among those tokens;
- a term of wildcards only: the longest fragment of its words (`spans.fragment`), found with one
  ahocorasick-rs pass over the padded folded text, and that word's other literal pieces of four letters or
  more (`dode?tal` needs "tal " once " dode" is found). Of the wildcards, the automaton holds only these
  fragments (besides the vocabulary's ` word `s). Shorter pieces (" zi", "en ") are left to the rule's decision:
  they occur in nearly every article, and in the automaton they made most of its matches, each a Python tuple.
  ahocorasick-rs (Rust) scans about 1.7 times as fast as pyahocorasick on these fragments, and returns the
  patterns found as the very string objects it was given; a long text is scanned in windows of `_WINDOW`
  characters that overlap by the longest pattern, so that no list of millions of matches is ever built;
- a stemmed term: its stem, among the stems of the article's distinct words (`Doc.stems`).

The automaton holds the longest fragment of every wildcard, key or not: the fragments found (`Doc.fragments`)
tell the decisions at once that a wildcard whose fragment is not among them does not occur.

A rule that needs two things (`a AND b`, `@list AND Utrecht`, a phrase's two words) has a second key set: one
of the words or wildcard fragments of its most selective other requirement (`second_clause`), and it is a
candidate only when a key of both occurs. `@list AND Utrecht` is then decided only on articles that have
Utrecht and one of the list's words, not on every article about Utrecht.

The keys found are turned into rule numbers by C set operations (`keys & found`, `chain`), so that a key that
does not occur costs nothing and one that does costs one dict lookup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import chain, compress

import ahocorasick_rs

from monitor.matching.query import AllOf, AnyOf, Node, Not, Stemmer, Term, literal_length
from monitor.matching.spans import Doc, fragment, is_wildcard, pieces

_WINDOW = 1 << 16  # characters of padded text scanned for words and fragments at a time
_PIECE = 4  # a wildcard's other literal pieces are keys too when they have this many letters or more


class Presearch:
    """The index from keys to rule numbers; `add` every rule, then `freeze` once."""

    def __init__(self) -> None:
        self._words: dict[str, list[int]] = defaultdict(list)  # every exact word -> the rules it is a key of
        self.vocabulary: dict[str, tuple[int, ...]] = {}  # the same, frozen
        # (the longest fragment, the word's other pieces) -> rules: a wildcard occurs only where all occur
        self._fragments: dict[tuple[str, frozenset[str]], list[int]] = defaultdict(list)
        self._automaton: ahocorasick_rs.AhoCorasick | None = None  # " word " and every fragment, overlapping
        self._longest = 0  # characters of the longest pattern: how much the scan's windows overlap
        self._window = _WINDOW  # characters scanned at a time: `_WINDOW`, or more for a very long pattern
        self._padded_words: dict[str, str] = {}  # " word " -> word, for each word of the vocabulary
        self._fragment_texts: frozenset[str] = frozenset()  # the automaton's fragments
        self._whole: dict[str, tuple[int, ...]] = {}  # longest fragment -> the rules for which it is enough
        self._groups: dict[str, list[tuple[frozenset[str], tuple[int, ...]]]] = {}  # longest -> (others, rules)
        self._probes: set[str] = set()  # every wildcard's longest fragment, key or not: `Doc.fragments`
        self._stems: dict[Stemmer, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        # Rule -> its second clause's words and fragments (equal clauses shared), and the rules that have one.
        self._second: dict[int, tuple[str, ...]] = {}
        self._shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._seconds: frozenset[int] = frozenset()

    def add(self, index: int, terms: Iterable[Term], required: Iterable[Term], node: Node | None = None) -> None:
        """Rule `index` has these terms; it is a candidate when one of the `required` terms' keys occurs, and
        (given its `node`) one of its second clause's keys."""
        words = self._words
        for term in terms:
            if term.kind != "stem":
                for word in term.words:
                    if not is_wildcard(word):
                        words.setdefault(word, [])
                    else:
                        self._probes.add(fragment(word))
        required = list(required)
        for term in required:
            rules = self._rules_of(term)
            if not rules or rules[-1] != index:
                rules.append(index)
        if node is not None:
            self._add_second(index, node, frozenset(map(_key, required)))

    def _add_second(self, index: int, node: Node, first: frozenset[Key]) -> None:
        clause = second_clause(node, first)
        if clause is not None:
            texts = tuple(sorted({text for _, text in clause}))
            self._second[index] = self._shared.setdefault(texts, texts)

    def _rules_of(self, term: Term) -> list[int]:
        if term.kind == "stem" and term.stemmer is not None:
            return self._stems[term.stemmer][term.stem or ""]
        exact = [word for word in term.words if not is_wildcard(word)]
        if exact:  # every word of a phrase must occur: the longest is likely the rarest
            return self._words[max(exact, key=len)]
        word = max(term.words, key=lambda w: len(fragment(w)))
        main = fragment(word)
        return self._fragments[main, frozenset(p for p in pieces(word) if p != main and len(p.strip()) >= _PIECE)]

    def freeze(self) -> None:
        """Plain dicts: a lookup of a missing key must not add it."""
        self.vocabulary = {word: tuple(rules) for word, rules in self._words.items()}
        self._words = {}
        whole: dict[str, list[int]] = defaultdict(list)
        groups: dict[str, list[tuple[frozenset[str], tuple[int, ...]]]] = defaultdict(list)
        for (main, others), rules in self._fragments.items():
            if others:
                groups[main].append((others, tuple(rules)))
            else:
                whole[main].extend(rules)
        texts = self._probes | {other for found in groups.values() for others, _ in found for other in others}
        self._fragment_texts = frozenset(texts)
        # A word with white space in it (a folded term such as "oud premier") is never one of `str.split`'s words.
        self._padded_words = {f" {word} ": word for word in self.vocabulary if word and word.split() == [word]}
        patterns = texts | self._padded_words.keys()
        if patterns:
            self._automaton = ahocorasick_rs.AhoCorasick(
                sorted(patterns), matchkind=ahocorasick_rs.MatchKind.Standard, store_patterns=True
            )
            self._longest = max(map(len, patterns))
            self._window = max(_WINDOW, 4 * self._longest)  # a term of 100,000 letters still leaves a step
        self._whole = {main: tuple(sorted(set(rules))) for main, rules in whole.items()}
        self._groups = dict(groups)
        self._fragments = {}
        self._stems = {stemmer: dict(stems) for stemmer, stems in self._stems.items()}
        self._seconds = frozenset(self._second)
        self._shared = {}

    def scan(self, doc: Doc) -> None:
        """Set `doc.tokens`, the vocabulary's words that occur, and (when some rule has a wildcard)
        `doc.fragments`, the wildcards' fragments that occur: one pass of the automaton."""
        found = self._found(doc) if self._automaton is not None else set()
        padded_words = self._padded_words
        doc.tokens = set(map(padded_words.__getitem__, padded_words.keys() & found))
        if self._fragment_texts:
            doc.fragments = found & self._fragment_texts

    def candidates(self, doc: Doc) -> set[int]:
        """The rules to decide on a document that `scan` has seen."""
        found = set(chain.from_iterable(map(self.vocabulary.__getitem__, doc.tokens)))  # tokens: vocabulary words
        if doc.fragments is not None:
            seen = doc.fragments
            whole = self._whole
            found.update(chain.from_iterable(map(whole.__getitem__, whole.keys() & seen)))
            groups = self._groups
            for text in groups.keys() & seen:
                for others, rules in groups[text]:
                    if others <= seen:
                        found.update(rules)
        for stemmer, by_stem in self._stems.items():
            for stem in doc.stems(stemmer).keys() & by_stem.keys():
                found.update(by_stem[stem])
        if self._seconds:
            found = self._both(found, doc)
        return found

    def _found(self, doc: Doc) -> set[str]:
        """The patterns that occur in the padded text, a window at a time (`_window`)."""
        assert self._automaton is not None
        scan, padded, window = self._automaton.find_matches_as_strings, doc.padded, self._window
        if len(padded) <= window:
            return set(scan(padded, overlapping=True))
        found: set[str] = set()
        step = window - self._longest + 1  # a pattern that starts in one window ends within the next one
        for start in range(0, len(padded) - self._longest + 1, step):
            found.update(scan(padded[start : start + window], overlapping=True))
            doc.deadline.check()
        return found

    def _both(self, found: set[int], doc: Doc) -> set[int]:
        """The rules found whose second clause (if they have one) has a key that occurs too. A clause's words and
        fragments are looked up among both the tokens and the fragments found: a word found as a fragment (a
        piece of a longer word) only keeps a candidate that its decision then refuses."""
        tested = list(found & self._seconds)  # most of them, at 10,000 rules: tested in C, one map each
        if not tested:  # most articles with few rules: no union of the tokens and fragments to build
            return found
        present = doc.tokens | doc.fragments if doc.fragments else doc.tokens
        found.difference_update(compress(tested, map(present.isdisjoint, map(self._second.__getitem__, tested))))
        return found


Key = tuple[str, str]  # ("w", an exact word) or ("f", a wildcard's longest fragment): what must occur


def _key(term: Term) -> Key:
    """The key by which a required term is found (`Presearch._rules_of`); a stemmed term's is never in a clause."""
    if term.kind == "stem":
        return ("s", term.stem or "")
    exact = [word for word in term.words if not is_wildcard(word)]
    if exact:
        return ("w", max(exact, key=len))
    return ("f", fragment(max(term.words, key=lambda w: len(fragment(w)))))


def second_clause(node: Node, first: frozenset[Key]) -> frozenset[Key] | None:
    """Keys one of which occurs in every text where the node is true, chosen to say the most beyond `first` (the
    keys that make the rule a candidate): a clause with no key of `first`, of the fewest keys, the longest
    literal. None when no clause adds anything (every clause holds wherever a key of `first` occurs)."""
    if isinstance(node, Term) and len(node.words) < 2:
        return None  # one word: its key is all there is (most rules)
    options = [clause for clause in _clauses(node, first) if not first <= clause]
    if not options:
        return None
    return min(options, key=lambda clause: (bool(clause & first), len(clause), -_weakest(clause)))


def _weakest(clause: frozenset[Key]) -> int:
    return min(literal_length(text.strip()) for _, text in clause)


def _clauses(node: Node, first: frozenset[Key]) -> list[frozenset[Key]]:
    """Clauses (sets of keys one of which occurs) that all hold where the node is true: each word of a term
    (a phrase needs all its words), each child's of an AND, for an OR one clause of each child joined."""
    if isinstance(node, Term):
        if node.kind == "stem":
            return []
        return [frozenset({("f", fragment(w)) if is_wildcard(w) else ("w", w)}) for w in node.words]
    if isinstance(node, Not):
        return []
    parts = [_clauses(child, first) for child in node.children]
    if isinstance(node, AllOf):
        return [clause for part in parts for clause in part]
    assert isinstance(node, AnyOf)
    if not all(parts):
        return []
    picked = [min(part, key=lambda clause: (len(clause & first), len(clause), -_weakest(clause))) for part in parts]
    return [frozenset().union(*picked)]
