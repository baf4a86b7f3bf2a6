"""The query language: Lucene syntax parsed by luqum, compiled into our own small tree.

The common queries (words, phrases, proximity, AND, OR, NOT, parentheses) are parsed by `lucene.parse` into
the very tree luqum builds, in a third of the time; luqum parses the rest and reports every error.

    word  "a phrase"  arrest*  *verraad  dode?tal  "tokajev masimov"~5  @list
    a AND b   a OR b   NOT a   +a  -a   (groups)   a b  (implicit operator: AND)

Leaves are `Term`s; inner nodes are `AllOf`, `AnyOf` and `Not`. Compilation checks everything a user can get
wrong and raises QueryError with the 0-based position in the query. See docs/rules.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser

from monitor.errors import QueryError
from monitor.matching import lucene
from monitor.matching.analysis import WORD, fold_term, keep_case

TermKind = Literal["word", "wildcard", "phrase", "near", "stem"]
Stemmer = Callable[[str], str]

_PATTERN_WORD = re.compile(r"[\w*?]+")
_LUCENE_OPERATORS = {"&&": "AND", "||": "OR", "!": "NOT"}


@dataclass(frozen=True, slots=True, eq=False)
class Term:
    """One leaf. `words` are folded word patterns (with * and ? for wildcards)."""

    text: str  # as the user wrote it, for hits and explanations
    kind: TermKind
    words: tuple[str, ...]
    slop: int = 0  # for `near`: at most `slop` other words between the first and the last
    case_sensitive: bool = False
    stem: str | None = None  # for `stem`: the stem to look up
    stemmer: Stemmer | None = field(default=None, repr=False)
    written: tuple[str, ...] = ()  # for case-sensitive terms: the words as written, diacritics removed

    @property
    def key(self) -> tuple[object, ...]:
        """Equal keys match the same spans: the engine works each key out once per article."""
        return (self.kind, self.words, self.slop, self.stem, self.stemmer, self.written)


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]
    label: str = ""  # "@name" for a list reference, shown in explanations


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | AllOf | AnyOf | Not


def word_regex(pattern: str) -> str:
    """A word pattern as a regular expression; `*` and `?` stay inside one word (or part)."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(r"\w*")
        elif char == "?":
            out.append(r"\w")
        else:
            out.append(re.escape(char))
    return "".join(out)


def literal_length(pattern: str) -> int:
    return len(pattern) - pattern.count("*") - pattern.count("?")


@dataclass(slots=True)
class Compiler:
    """Compiles one rule's query; `lists` are the rules file's named term lists."""

    lists: Mapping[str, Sequence[str]]
    case_sensitive: bool = False
    stemmer: Stemmer | None = None
    _open_lists: list[str] = field(default_factory=list, init=False, repr=False)

    def compile(self, query: str) -> Node:
        if not query.strip():
            raise QueryError("empty query", 0)
        node = self._fast(query) or self._parsed(query)
        if not positive_terms(node):
            raise QueryError("the query has no term that must occur: NOT alone matches no article", 0)
        return node

    def _parsed(self, query: str) -> Node:
        try:
            parsed = parser.parse(query)
        except IllegalCharacterError as exc:
            raise QueryError(str(exc), _position(str(exc))) from None
        except ParseError as exc:
            message = str(exc).replace("Syntax error in input : ", "").replace("  ", " ")
            raise QueryError(message.rstrip("!"), _position(str(exc), default=len(query))) from None
        return self._node(parsed)

    def _fast(self, query: str) -> Node | None:
        """The tree of a query in the common part of the grammar (`lucene.parse`), or None: then luqum parses it.

        A query that does not compile is parsed again by luqum, so that every error comes from one path.
        """
        item = lucene.parse(query)
        if item is None:
            return None
        try:
            return self._node(item)
        except QueryError:
            return None

    def _node(self, item: tree.Item) -> Node:
        if isinstance(item, tree.Word):  # the commonest first
            return self._word(item.value, item.pos)
        if isinstance(item, tree.Group | tree.FieldGroup | tree.Plus):
            return self._node(item.children[0])
        if isinstance(item, tree.AndOperation | tree.UnknownOperation):
            return AllOf(tuple(self._node(child) for child in item.children))
        if isinstance(item, tree.OrOperation):
            return AnyOf(tuple(self._node(child) for child in item.children))
        if isinstance(item, tree.Not | tree.Prohibit):
            return Not(self._node(item.children[0]))
        if isinstance(item, tree.Proximity):
            return self._phrase(item.term.value, item.pos, slop=int(item.degree))
        if isinstance(item, tree.Phrase):
            return self._phrase(item.value, item.pos)
        raise QueryError(_unsupported(item), item.pos)

    def _word(self, value: str, pos: int | None) -> Node:
        if value.startswith("@"):
            return self._list(value[1:], pos)
        for theirs, ours in _LUCENE_OPERATORS.items():
            if value.startswith(theirs):
                raise QueryError(f"{theirs} is not an operator here: write {ours}", pos)
        if value.upper() in {"AND", "OR", "NOT"}:
            raise QueryError(f'{value!r}: write operators in capitals, or "{value}" in quotes for the word', pos)
        folded = fold_term(value)
        parts = WORD.findall(folded.replace("*", "a").replace("?", "a"))
        if not parts:
            raise QueryError(f"{value!r} has no letters or digits to match", pos)
        if len(parts) > 1:
            # A hyphenated compound or other punctuation: the parts in sequence, as a phrase.
            return self._phrase(f'"{value}"', pos)
        wildcard = "*" in value or "?" in value
        _check_wildcard(folded, value, pos)
        if self.stemmer is not None and not wildcard:
            stem = self.stemmer(folded)
            return Term(value, "stem", (folded,), stem=stem, stemmer=self.stemmer, **self._case(value))
        return Term(value, "wildcard" if wildcard else "word", (folded,), **self._case(value))

    def _case(self, text: str) -> dict[str, Any]:
        if not self.case_sensitive:
            return {}
        written = "".join(p if p in "*?" else keep_case(p) for p in re.split(r"([*?])", text))
        return {"case_sensitive": True, "written": tuple(_PATTERN_WORD.findall(written))}

    def _phrase(self, quoted: str, pos: int | None, slop: int | None = None) -> Term:
        text = quoted.strip('"')
        words = tuple(_PATTERN_WORD.findall(fold_term(text)))
        if not words:
            raise QueryError(f"phrase {quoted} has no words", pos)
        for word in words:
            _check_wildcard(word, quoted, pos)
        label = quoted if slop is None else f"{quoted}~{slop}"
        if len(words) == 1:
            kind: TermKind = "wildcard" if "*" in text or "?" in text else "word"
            return Term(label, kind, words, **self._case(text))
        if slop:
            return Term(label, "near", words, slop=slop, **self._case(text))
        return Term(label, "phrase", words, **self._case(text))

    def _list(self, name: str, pos: int | None) -> Node:
        if name not in self.lists:
            known = ", ".join(sorted(self.lists)) or "none defined"
            raise QueryError(f"unknown list @{name} (lists: {known})", pos)
        if name in self._open_lists:
            raise QueryError(f"list @{name} refers to itself (through {' -> '.join(self._open_lists)})", pos)
        self._open_lists.append(name)
        try:
            items = tuple(self._item(item, name, pos) for item in self.lists[name])
        finally:
            self._open_lists.pop()
        if not items:
            raise QueryError(f"list @{name} is empty", pos)
        return AnyOf(items, label=f"@{name}")

    def _item(self, item: str, name: str, pos: int | None) -> Node:
        try:
            if item.startswith('"') and item.endswith('"') and len(item) > 1:
                return self._phrase(item, pos)
            return self._word(item, pos) if " " not in item.strip() else self._phrase(f'"{item}"', pos)
        except QueryError as exc:
            raise QueryError(f"in list @{name}: {exc}", pos) from None


def _check_wildcard(pattern: str, written: str, pos: int | None) -> None:
    if ("*" in pattern or "?" in pattern) and literal_length(pattern) < 2:
        raise QueryError(f"wildcard {written!r} needs at least two letters that are not wildcards", pos)


def _unsupported(item: tree.Item) -> str:
    if isinstance(item, tree.SearchField):
        return f"field:value syntax is not supported ({item}); put text with a colon in quotes"
    if isinstance(item, tree.Fuzzy):
        return f'fuzzy terms are not supported ({item}); proximity is for phrases: "a b"~5'
    return f"{type(item).__name__.lower()} syntax is not supported here ({item})"


def _position(message: str, default: int | None = None) -> int | None:
    found = re.search(r"position (\d+)", message)
    return int(found.group(1)) if found else default


def terms(node: Node) -> list[Term]:
    """Every leaf of the tree, in order."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return terms(node.child)
    return [t for child in node.children for t in terms(child)]


def positive_terms(node: Node) -> list[Term]:
    """The leaves that can give hits: those not under a NOT."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for child in node.children for t in positive_terms(child)]


def required(node: Node) -> list[Term]:
    """Terms of which at least one occurs in any text where the node is true and has a hit.

    A rule fires only with at least one hit, and only terms outside NOT give hits, so this set always
    exists; it is empty when the node can never fire. The engine evaluates a rule only when one occurs.
    """
    return _required(node)[1]


def _required(node: Node) -> tuple[list[Term] | None, list[Term]]:
    """(terms one of which a true node needs or None, terms one of which a true node with hits needs)."""
    if isinstance(node, Term):
        return [node], [node]
    if isinstance(node, Not):
        return None, []
    parts = [_required(child) for child in node.children]
    if isinstance(node, AnyOf):
        truth = [t for sub, _ in parts if sub is not None for t in sub]
        return (None if any(sub is None for sub, _ in parts) else truth), [t for _, hit in parts for t in hit]
    options = [sub for sub, _ in parts if sub is not None]
    hits = [t for _, hit in parts for t in hit]
    if not options:
        return None, hits
    truth_best = min(options, key=_cost)
    return truth_best, truth_best if _cost(truth_best) <= _cost(hits) else hits  # the first cheapest of both


def _cost(option: list[Term]) -> tuple[int, int]:
    """Fewer terms first, then the one whose weakest term has the longest literal (likely the rarest)."""
    weakest = min((max(map(literal_length, t.words)) for t in option), default=0)
    return (len(option), -weakest)


def render(node: Node) -> str:
    """The node as query text, for explanations."""
    if isinstance(node, Term):
        return node.text
    if isinstance(node, Not):
        return f"NOT {render(node.child)}"
    if isinstance(node, AnyOf) and node.label:
        return node.label
    joiner = " AND " if isinstance(node, AllOf) else " OR "
    inner = joiner.join(render(child) for child in node.children)
    return f"({inner})" if len(node.children) > 1 else inner
