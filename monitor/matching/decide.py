"""Whether a candidate rule holds on one article, without its hits: `Decisions.holds(index, doc) -> bool`.

Most candidates are decided by set lookups alone. Each rule's tree is compiled once into the cheapest test
that is exact for it:
- a term, or terms OR-ed together, each of which occurs exactly when its presearch key does (a plain word, or
  a wildcard that is one literal piece and a `*`): being a candidate is enough, nothing is tested;
- every other node becomes a function of the document in which the plain words (any case, no wildcard: they
  occur exactly when they are among the article's tokens) are C set operations: the plain words an AND needs
  (`need <= tokens`), those its NOTs deny (`deny.isdisjoint(tokens)`, also for `NOT (a OR b)`), those of an
  OR (`not some.isdisjoint(tokens)`); only the other children (wildcards, phrases, proximity, stems, nested
  groups) are evaluated one by one, after the set tests. The order does not change the truth: a test has no
  effect but the document's caches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from monitor.matching.query import AnyOf, Node, Not, Term
from monitor.matching.spans import Doc, TermSpans

Test = Callable[[Doc], bool]


class Decisions:
    def __init__(self, nodes: Sequence[Node], spans: TermSpans) -> None:
        self._spans = spans
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
            return partial(_has_token, word) if word is not None else partial(self._spans.present, node)
        if isinstance(node, Not):
            return partial(_not, self._compile(node.child))
        plain = frozenset(word for word in map(_plain_word, node.children) if word is not None)
        others = [child for child in node.children if _plain_word(child) is None]
        if isinstance(node, AnyOf):
            return partial(_any, plain, tuple(map(self._compile, others)))
        denied = {id(child): _plain_words(child.child) for child in others if isinstance(child, Not)}
        deny = frozenset(word for words in denied.values() for word in words)
        rest = [child for child in others if not denied.get(id(child))]
        return partial(_all, plain, deny, tuple(map(self._compile, rest)))


def _has_token(word: str, doc: Doc) -> bool:
    return word in doc.tokens


def _not(test: Test, doc: Doc) -> bool:
    return not test(doc)


def _any(some: frozenset[str], rest: tuple[Test, ...], doc: Doc) -> bool:
    if not some.isdisjoint(doc.tokens):
        return True
    for test in rest:  # noqa: SIM110 (a loop: no generator object per call)
        if test(doc):
            return True
    return False


def _all(need: frozenset[str], deny: frozenset[str], rest: tuple[Test, ...], doc: Doc) -> bool:
    tokens = doc.tokens
    if not need <= tokens or not deny.isdisjoint(tokens):
        return False
    for test in rest:  # noqa: SIM110 (a loop: no generator object per call)
        if not test(doc):
            return False
    return True


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
