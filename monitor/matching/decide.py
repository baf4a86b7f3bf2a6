"""Whether a candidate rule holds on one article, without its hits: `Decisions.holds(index, doc) -> bool`.

Most candidates are decided by set lookups alone. Each rule gets the cheapest test that is exact for it:
- a term, or terms OR-ed together, each of which occurs exactly when its presearch key does (a plain word, or
  a wildcard that is one literal piece and a `*`): being a candidate is enough, nothing is tested;
- plain words AND-ed together: whether all are among the article's tokens, one C subset test;
- anything else: the tree, with the cheap tests (plain words, NOT of plain words) first in every AND and OR.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.matching.query import AllOf, AnyOf, Node, Not, Term
from monitor.matching.spans import Doc, TermSpans

# None: holds whenever it is a candidate; a set: these words must all occur; a node: the tree to evaluate.
Test = frozenset[str] | Node | None


class Decisions:
    def __init__(self, nodes: Sequence[Node], spans: TermSpans) -> None:
        self._spans = spans
        self._tests: list[Test] = [self._test(node) for node in nodes]

    def holds(self, index: int, doc: Doc) -> bool:
        """Whether rule `index`'s tree is true: `_node(...) is not None` in the engine, without the hits."""
        test = self._tests[index]
        if test is None:
            return True
        if type(test) is frozenset:
            return test <= doc.tokens
        assert not isinstance(test, frozenset)
        return self._true(test, doc)

    def _test(self, node: Node) -> Test:
        if self._certain(node):
            return None
        if isinstance(node, AllOf) and all(_plain(child) for child in node.children):
            return frozenset(child.words[0] for child in node.children if isinstance(child, Term))
        return _cheap_first(node)

    def _certain(self, node: Node) -> bool:
        """Whether one of the node's presearch keys occurring makes it true."""
        if isinstance(node, AnyOf):
            return all(self._certain(child) for child in node.children)
        return isinstance(node, Term) and self._spans.certain(node)

    def _true(self, node: Node, doc: Doc) -> bool:
        if type(node) is Term:
            return self._spans.present(node, doc)
        if type(node) is Not:
            return not self._true(node.child, doc)
        if type(node) is AllOf:
            return all(self._true(child, doc) for child in node.children)
        assert isinstance(node, AnyOf)
        return any(self._true(child, doc) for child in node.children)


def _plain(node: Node) -> bool:
    """A word without wildcards, any case: present exactly when it is one of the article's tokens."""
    return isinstance(node, Term) and node.kind == "word" and not node.case_sensitive


def _cheap_first(node: Node) -> Node:
    """The same tree with plain words and their NOTs first in every AND and OR (their order does not matter
    to the truth)."""
    if isinstance(node, Not):
        return Not(_cheap_first(node.child))
    if isinstance(node, Term):
        return node
    children = sorted((_cheap_first(child) for child in node.children), key=_expensive)
    return AllOf(tuple(children)) if isinstance(node, AllOf) else AnyOf(tuple(children))


def _expensive(node: Node) -> bool:
    return not (_plain(node) or (isinstance(node, Not) and _plain(node.child)))
