"""Whether a candidate rule holds on one article, without its hits: `Decisions.holds(index, doc) -> bool`.

Most candidates are decided by set lookups alone. Each rule's tree is compiled once into the cheapest test
that is exact for it:
- a term, or terms OR-ed together, each of which occurs exactly when its presearch key does (a plain word, or
  a wildcard that is one literal piece and a `*`): being a candidate is enough, nothing is tested;
- every other node becomes a function of the document in which the plain words (any case, no wildcard: they
  occur exactly when they are among the article's tokens) are C set operations: the plain words an AND needs
  (`tokens.issuperset(need)`), those its NOTs deny (`tokens.isdisjoint(deny)`, also for `NOT (a OR b)`), those
  of an OR (`not tokens.isdisjoint(some)`); only the other children (wildcards, phrases, proximity, stems, nested
  groups) are evaluated one by one, after the set tests. The order does not change the truth: a test has no
  effect but the document's caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial

from monitor.matching.query import AnyOf, Node, Not, Term
from monitor.matching.spans import Doc, TermSpans

Test = Callable[[Doc], bool]
Part = Test | Term  # in an AND's or OR's other children, a term stands for itself: `TermSpans.present` tests it


class Decisions:
    def __init__(self, nodes: Sequence[Node], spans: TermSpans) -> None:
        self._spans = spans
        self._present = spans.present  # one bound method for every test
        self.tests: list[Test | None] = [self._test(node) for node in nodes]  # None: holds when a candidate

    def holds(self, index: int, doc: Doc) -> bool:
        """Whether rule `index`'s tree is true: `_node(...) is not None` in the engine, without the hits."""
        test = self.tests[index]
        return test is None or test(doc)

    def _test(self, node: Node) -> Test | None:
        return None if self._certain(node) else self._compile(node)

    def _certain(self, node: Node) -> bool:
        """Whether one of the node's presearch keys occurring makes it true."""
        if isinstance(node, AnyOf):
            return all(self._certain(child) for child in node.children)
        return isinstance(node, Term) and self._spans.certain(node)

    def _compile(self, node: Node) -> Test:
        if isinstance(node, Term):
            word = _plain_word(node)
            return partial(_has_token, word) if word is not None else partial(self._present, node)
        if isinstance(node, Not):
            return partial(_not, self._compile(node.child))
        plain = _words(word for word in map(_plain_word, node.children) if word is not None)
        others = [child for child in node.children if _plain_word(child) is None]
        present = self._present
        if isinstance(node, AnyOf):
            return partial(_any, plain, tuple(map(self._part, others)), present)
        denied = {id(child): _plain_words(child.child) for child in others if isinstance(child, Not)}
        deny = _words(word for words in denied.values() for word in words)
        rest = tuple(self._part(child) for child in others if not denied.get(id(child)))
        return partial(_all, plain, deny, rest, present)

    def _part(self, node: Node) -> Part:
        return node if isinstance(node, Term) else self._compile(node)


Present = Callable[[Term, Doc], bool]


def _has_token(word: str, doc: Doc) -> bool:
    return word in doc.tokens


def _not(test: Test, doc: Doc) -> bool:
    return not test(doc)


def _any(some: tuple[str, ...], rest: tuple[Part, ...], present: Present, doc: Doc) -> bool:
    return not doc.tokens.isdisjoint(some) or any(_holds(part, present, doc) for part in rest)


def _all(need: tuple[str, ...], deny: tuple[str, ...], rest: tuple[Part, ...], present: Present, doc: Doc) -> bool:
    tokens = doc.tokens
    if not tokens.issuperset(need) or not tokens.isdisjoint(deny):
        return False
    return all(_holds(part, present, doc) for part in rest)


def _holds(part: Part, present: Present, doc: Doc) -> bool:
    return present(part, doc) if isinstance(part, Term) else part(doc)


def _words(words: Iterable[str]) -> tuple[str, ...]:
    """Distinct words as a tuple (a set test takes any iterable; a tuple of two words is a fifth of a set's size,
    and the empty one is shared)."""
    return tuple(dict.fromkeys(words))


def _plain_word(node: Node) -> str | None:
    """The word of a plain word term (no wildcard, any case: it occurs exactly when it is one of the article's
    tokens), else None."""
    if isinstance(node, Term) and node.kind == "word" and not node.case_sensitive:
        return node.words[0]
    return None


def _plain_words(node: Node) -> list[str]:
    """The words of a plain word or an OR of plain words (true exactly when one is a token), else []."""
    if isinstance(node, AnyOf):
        words = [_plain_word(child) for child in node.children]
        return [word for word in words if word is not None] if node.children and None not in words else []
    word = _plain_word(node)
    return [] if word is None else [word]
