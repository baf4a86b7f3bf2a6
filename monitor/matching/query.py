"""The query language: Lucene syntax parsed by luqum, compiled into our own small tree.

    word  "a phrase"  arrest*  *verraad  dode?tal  "tokajev masimov"~5  @list
    a AND b   a OR b   NOT a   +a  -a   (groups)   a b  (implicit operator: AND)

Leaves are `Term`s; inner nodes are `All`, `Any` and `Not`. Compilation checks everything a user can get
wrong and raises QueryError with the 0-based position in the query.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any as AnyType
from typing import Literal

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser

from monitor.matching.analysis import WORD, fold_term

TermKind = Literal["word", "wildcard", "phrase", "near", "stem"]
Stemmer = Callable[[str], str]


_PATTERN_WORD = re.compile(r"[\w*?]+")


class QueryError(ValueError):
    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)


@dataclass(frozen=True, slots=True, eq=False)
class Term:
    """One leaf. `words` are folded word patterns (with * and ? for wildcards)."""

    text: str  # as the user wrote it, for hits and explanations
    kind: TermKind
    words: tuple[str, ...]
    slop: int = 0  # for `near`: all words within `slop` words of each other
    case_sensitive: bool = False
    stem: str | None = None  # for `stem`: the stem to look up
    stemmer: Stemmer | None = field(default=None, repr=False)
    written: tuple[str, ...] = ()  # for case-sensitive terms: the words as written, diacritics removed

    @property
    def key(self) -> tuple[object, ...]:
        return (self.kind, self.words, self.slop, self.stem, self.stemmer, self.written)


@dataclass(frozen=True, slots=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Any:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | All | Any | Not


def word_regex(pattern: str) -> str:
    """A folded word pattern as a regular expression; `*` and `?` stay inside one word (or part)."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(r"\w*")
        elif char == "?":
            out.append(r"\w")
        else:
            out.append(re.escape(char))
    return "".join(out)


def strip_marks(text: str) -> str:
    """NFKC without diacritics, case kept: what case-sensitive terms compare against."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(slots=True)
class Compiler:
    """Compiles one rule's query; `lists` are the rules file's named term lists."""

    lists: Mapping[str, Sequence[str]]
    case_sensitive: bool = False
    stemmer: Stemmer | None = None

    def compile(self, query: str) -> Node:
        if not query.strip():
            raise QueryError("empty query", 0)
        try:
            parsed = parser.parse(query)
        except IllegalCharacterError as exc:
            raise QueryError(str(exc), _position(str(exc))) from None
        except ParseError as exc:
            message = str(exc).replace("Syntax error in input : ", "")
            raise QueryError(message.rstrip("!"), _position(str(exc), default=len(query))) from None
        return self._node(parsed)

    def _node(self, item: tree.Item) -> Node:
        if isinstance(item, tree.Group | tree.FieldGroup | tree.Plus):
            return self._node(item.children[0])
        if isinstance(item, tree.AndOperation | tree.UnknownOperation):
            return All(tuple(self._node(child) for child in item.children))
        if isinstance(item, tree.OrOperation):
            return Any(tuple(self._node(child) for child in item.children))
        if isinstance(item, tree.Not | tree.Prohibit):
            return Not(self._node(item.children[0]))
        if isinstance(item, tree.Proximity):
            return self._phrase(item.term.value, item.pos, slop=int(item.degree))
        if isinstance(item, tree.Phrase):
            return self._phrase(item.value, item.pos)
        if isinstance(item, tree.Word):
            return self._word(item.value, item.pos)
        raise QueryError(f"{type(item).__name__.lower()} syntax is not supported here", item.pos)

    def _word(self, value: str, pos: int | None) -> Node:
        if value.startswith("@"):
            return self._list(value[1:], pos)
        if value.upper() in {"AND", "OR", "NOT"}:
            raise QueryError(f"operator {value} has nothing on one side", pos)
        folded = fold_term(value)
        parts = WORD.findall(folded.replace("*", "a").replace("?", "a"))
        if not parts:
            raise QueryError(f"{value!r} has no letters or digits to match", pos)
        if len(parts) > 1:
            # A hyphenated compound or other punctuation: the parts in sequence, as a phrase.
            return self._phrase(f'"{value}"', pos)
        wildcard = any(c in value for c in "*?")
        if wildcard and len(folded.replace("*", "").replace("?", "")) < 2:
            raise QueryError(f"wildcard {value!r} needs at least two letters that are not wildcards", pos)
        if self.stemmer is not None and not wildcard:
            stem = self.stemmer(folded)
            return Term(value, "stem", (folded,), stem=stem, stemmer=self.stemmer, **self._case(value))
        return Term(value, "wildcard" if wildcard else "word", (folded,), **self._case(value))

    def _case(self, text: str) -> dict[str, AnyType]:
        if not self.case_sensitive:
            return {}
        return {"case_sensitive": True, "written": tuple(_PATTERN_WORD.findall(strip_marks(text)))}

    def _phrase(self, quoted: str, pos: int | None, slop: int | None = None) -> Term:
        text = quoted.strip('"')
        words = tuple(_PATTERN_WORD.findall(fold_term(text)))
        if not words:
            raise QueryError(f"phrase {quoted} has no words", pos)
        label = quoted if slop is None else f"{quoted}~{slop}"
        if slop is not None:
            if slop < 1:
                raise QueryError(f"proximity {label} needs a distance of at least 1", pos)
            return Term(label, "near", words, slop=slop, **self._case(text))
        if len(words) == 1:
            return Term(label, "wildcard" if "*" in text or "?" in text else "word", words, **self._case(text))
        return Term(label, "phrase", words, **self._case(text))

    def _list(self, name: str, pos: int | None) -> Node:
        if name not in self.lists:
            known = ", ".join(sorted(self.lists)) or "none defined"
            raise QueryError(f"unknown list @{name} (lists: {known})", pos)
        items = self.lists[name]
        return Any(
            tuple(self._word(item, pos) if " " not in item else self._phrase(f'"{item}"', pos) for item in items)
        )


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


def required(node: Node) -> list[Term] | None:
    """Terms of which at least one must occur for the node to be true, or None if no such set exists."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return None
    if isinstance(node, All):
        options = [r for r in (required(child) for child in node.children) if r is not None]
        return min(options, key=len) if options else None
    collected: list[Term] = []
    for child in node.children:
        sub = required(child)
        if sub is None:
            return None
        collected.extend(sub)
    return collected


def render(node: Node) -> str:
    """The node as query text, for explanations."""
    if isinstance(node, Term):
        return node.text
    if isinstance(node, Not):
        return f"NOT {render(node.child)}"
    joiner = " AND " if isinstance(node, All) else " OR "
    inner = joiner.join(render(child) for child in node.children)
    return f"({inner})" if len(node.children) > 1 else inner
