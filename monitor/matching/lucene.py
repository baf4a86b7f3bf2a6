"""The common part of the query language parsed without PLY: `parse(query) -> luqum tree | None`.

Words, "phrases", "phrases"~N, AND, OR, NOT, parentheses and juxtaposition (luqum's UnknownOperation), with
luqum's precedence: juxtaposition binds loosest, then OR, then AND, then NOT. The tree is the one luqum's
parser builds: the same classes, operands and values, and the positions of terms, NOTs and groups. Anything
else (+ and -, fields, ranges, boosts, fuzzy terms, regexes, escapes, TO, every syntax error) gives None:
luqum parses it and reports the error. luqum's parser (PLY, pure Python) takes three to four times as long.
"""

from __future__ import annotations

import re

from luqum import tree

# luqum's tokens, in luqum's order, less escapes and time values in terms, escapes in phrases and the tokens
# we leave to luqum: a query with one of those has a character that no alternative here matches.
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<term>[^\s:^~(){}\[\]/"'+\-\\<>][^\s:^\\~(){}\[\]]*)
    |(?P<lparen>\()
    |(?P<rparen>\))
    |(?P<phrase>"[^\\"]*")
    |(?P<approx>~[0-9.]*)""",
    re.VERBOSE,
)
_KEYWORDS = {"AND": "and", "OR": "or", "NOT": "not", "TO": "to"}
_OPERAND_START = {"term", "phrase", "lparen", "not"}
Token = tuple[str, str, int]  # (kind, text, position)


class _Unsupported(Exception):
    """Not in the part of the grammar parsed here."""


def parse(query: str) -> tree.Item | None:
    """luqum's tree of `query`, or None when the query is not in the part of the grammar parsed here."""
    tokens = _tokens(query)
    if tokens is None:
        return None
    parser = _Parser(tokens)
    try:
        item = parser.juxtaposed()
    except _Unsupported:
        return None
    return item if parser.at == len(tokens) else None


def _tokens(query: str) -> list[Token] | None:
    tokens: list[Token] = []
    pos, end = 0, len(query)
    while pos < end:
        found = _TOKEN.match(query, pos)
        if found is None:
            return None
        kind, text = found.lastgroup or "", found.group()
        if kind == "term":
            kind = _KEYWORDS.get(text, kind)
        if kind != "space":
            tokens.append((kind, text, pos))
        pos = found.end()
    return tokens


class _Parser:
    """Recursive descent, one method per precedence level."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def _peek(self) -> str:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else ""

    def _take(self) -> Token:
        if self.at >= len(self.tokens):
            raise _Unsupported
        self.at += 1
        return self.tokens[self.at - 1]

    def juxtaposed(self) -> tree.Item:
        operands = [self._or()]
        while self._peek() in _OPERAND_START:
            operands.append(self._or())
        return operands[0] if len(operands) == 1 else tree.UnknownOperation(*operands)

    def _or(self) -> tree.Item:
        operands = [self._and()]
        while self._peek() == "or":
            self.at += 1
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else tree.OrOperation(*operands)

    def _and(self) -> tree.Item:
        operands = [self._unary()]
        while self._peek() == "and":
            self.at += 1
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else tree.AndOperation(*operands)

    def _unary(self) -> tree.Item:
        kind, text, pos = self._take()
        if kind == "not":
            return tree.Not(self._unary(), pos=pos)
        if kind == "lparen":
            inner = self.juxtaposed()
            if self._take()[0] != "rparen":
                raise _Unsupported
            return tree.Group(inner, pos=pos)
        if kind == "term" and self._peek() != "approx":
            return tree.Word(text, pos=pos)
        if kind == "phrase":
            phrase = tree.Phrase(text, pos=pos)
            if self._peek() != "approx":
                return phrase
            degree = self._take()[1][1:]
            if "." in degree:
                raise _Unsupported
            return tree.Proximity(phrase, degree or None, pos=pos)
        raise _Unsupported
