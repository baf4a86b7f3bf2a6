"""Text analysis shared by queries and articles.

`fold(text)` gives the searchable form of a text: Unicode NFKC (so the Dutch ĳ ligature is "ij"), case
folded, diacritics removed, soft hyphens removed, and a word broken by a hyphen at a line end joined again.
ASCII stretches are only lower-cased, so the common case costs one C-level call per stretch; the
`Folded` result maps offsets in the folded text back to the original for hits and snippets.

Every character that is not a word character becomes a space of the same length, so that in folded text
word boundaries are spaces and a whole word `w` is the substring ` w ` of `" " + text + " "`.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# Runs that need more than lower-casing: non-ASCII text, and a hyphen at a line end before a lower-case
# letter ("arres-\ntaties"). A capital after the break keeps the hyphen: "CSTO-\nTroepen" is a compound.
_SPECIAL = re.compile(r"[^\x00-\x7f]+|-[ \t]*\r?\n[ \t]*(?=[a-z])")
_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_WORD = re.compile(r"\W")
WORD = re.compile(r"\w+")
# ASCII punctuation and white space to spaces: str.translate has a fast path for ASCII-only text.
_ASCII_SPACES = {c: " " for c in range(128) if not chr(c).isalnum() and chr(c) != "_"}


@lru_cache(maxsize=4096)
def fold_run(run: str) -> str:
    """Fold a run of non-ASCII characters (or a line-end hyphen break)."""
    if run[0] == "-":
        return ""
    text = unicodedata.normalize("NFKC", run).casefold().replace("\u00ad", "")
    text = _MARKS.sub("", unicodedata.normalize("NFD", text))
    return _NON_WORD.sub(" ", unicodedata.normalize("NFC", text))


def fold_term(term: str) -> str:
    """Fold a query term the way article text is folded, keeping the wildcards `*` and `?`."""
    return "".join(piece if piece in "*?" else fold(piece).text for piece in re.split(r"([*?])", term))


@dataclass(frozen=True, slots=True)
class Folded:
    original: str
    text: str
    # Break points (folded offset, original offset), ascending; empty when offsets are equal.
    _folded: list[int] = field(default_factory=list)
    _original: list[int] = field(default_factory=list)

    def to_original(self, offset: int) -> int:
        """The offset in the original text of a character offset in the folded text."""
        if not self._folded:
            return offset
        i = bisect.bisect_right(self._folded, offset) - 1
        if i < 0:
            return offset
        base_folded, base_original = self._folded[i], self._original[i]
        # Inside a run whose folded length differs, clamp to the run's original end.
        if i + 1 < len(self._folded):
            return min(base_original + offset - base_folded, self._original[i + 1])
        return base_original + offset - base_folded


def fold(text: str) -> Folded:
    if text.isascii() and "-" not in text:
        return Folded(text, text.lower().translate(_ASCII_SPACES))
    pieces: list[str] = []
    folded_marks: list[int] = []
    original_marks: list[int] = []
    pos = 0
    out = 0
    for special in _SPECIAL.finditer(text):
        start, end = special.span()
        if start > pos:
            pieces.append(text[pos:start].lower().translate(_ASCII_SPACES))
            out += start - pos
        replacement = fold_run(special.group())
        folded_marks.append(out)
        original_marks.append(start)
        pieces.append(replacement)
        out += len(replacement)
        folded_marks.append(out)
        original_marks.append(end)
        pos = end
    pieces.append(text[pos:].lower().translate(_ASCII_SPACES))
    return Folded(text, "".join(pieces), folded_marks, original_marks)


def snippet(text: str, start: int, end: int, width: int = 60) -> str:
    """The hit with up to `width` characters each side, marked with [[ ]], on one line."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    before = text[left:start]
    after = text[end:right]
    if left > 0:
        before = "…" + before.split(" ", 1)[-1] if " " in before else "…" + before
    if right < len(text):
        after = after.rsplit(" ", 1)[0] + "…" if " " in after else after + "…"
    return " ".join(f"{before}[[{text[start:end]}]]{after}".split())
