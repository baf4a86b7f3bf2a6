"""Text analysis shared by queries and articles.

`fold(text)` gives the searchable form of a text: Unicode NFKC (so the Dutch ĳ ligature is "ij"), case
folded, diacritics removed, soft hyphens and other invisible format characters removed, and a word broken
by a hyphen at a line end joined again. Every other character that is not a word character becomes one
space, so that in folded text word boundaries are spaces and a whole word `w` is the substring ` w ` of
`" " + text + " "`.

Speed: most text is ASCII plus the accented letters and typographic punctuation of Dutch news, each of which
folds to one character; such text folds in C (`codecs.charmap_encode` with a one-byte-per-character map, then
`bytes.translate`), about as fast as `str.lower`, and has the offsets of the original; other scripts fold by
one `str.translate` with a table of the text's distinct characters. Where characters fold to more or fewer
characters (ĳ, ß, ﬁ, soft hyphens, combining accents, a joined line-end hyphen), `Folded` keeps break points
to map folded offsets back to the original. No step costs Python work per character: removals are cut out
by regex passes, and runs of resized characters fold a group of one kind at a time (`_fold_run_mapped`).
"""

from __future__ import annotations

import bisect
import codecs
import operator
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from heapq import merge
from itertools import accumulate, chain

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# A hyphen at a line end before a word character: a word broken across lines, or a compound.
_BREAK = re.compile(r"-[ \t]*\r?\n[ \t]*(?=\w)")
# What folds to nothing: line-end hyphens that join, and invisible format characters (soft hyphen, zero widths).
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# Runs of what folds to nothing anyway (invisible characters, combining accents): cut out in one step each.
_INVISIBLE_RUN = re.compile(f"[{_INVISIBLE}\u0300-\u036f]+")
_INVISIBLE_ONLY_RUN = re.compile(f"[{_INVISIBLE}]+")
# Offsets in arrays are 32-bit: 4 bytes each (texts of 2**31 characters or more raise OverflowError).
_OFFSETS = "i"
_FEW = 64  # up to this many invisible characters are found by `str.find`, more by one regex pass
_NON_WORD = re.compile(r"\W")
WORD = re.compile(r"\w+")
# ASCII punctuation and white space to spaces: str.translate has a fast path for ASCII-only text.
_ASCII_SPACES = {c: " " for c in range(128) if not chr(c).isalnum() and chr(c) != "_"}
_ASCII_FOLD = {c: chr(c).lower() if chr(c).isalnum() or chr(c) == "_" else " " for c in range(128)}
_ASCII_TERM_SPACES = {c: space for c, space in _ASCII_SPACES.items() if chr(c) not in "*?"}
_KIND_GROUPS = re.compile(rb"\x00+|\x01+|\x02+|\x03")  # see `_kind`
_VOWELS = frozenset("aeiou")
# Non-ASCII characters common in Dutch news that fold to one ASCII character: the fast path (`_fold_simple`).
_COMMON = (
    "\u00a0«»°·ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ"
    "‘’‚‛“”„‟–—―‐‑…•€−′″\u2002\u2003\u2009\u200a\u202f"
    "ĆćČčĘęĞğİŃńŁŘřŚśŞşŠšŹźŻżŽžĚěŮůŐőŰű"
)


@lru_cache(maxsize=8192)
def fold_char(char: str) -> str:
    """One non-ASCII character folded: usually one character, "" for marks and format characters."""
    if unicodedata.category(char) in {"Mn", "Me", "Cf"}:  # accents on their own, soft hyphen, zero widths
        return ""
    text = unicodedata.normalize("NFKC", char).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) not in {"Mn", "Me"})
    text = _NON_WORD.sub(" ", unicodedata.normalize("NFC", text))
    return " " if text and text.isspace() else text  # punctuation ("…", "—") is one space


def _charmap() -> tuple[object, bytes]:
    """A codec map from ASCII and the `_COMMON` characters to one byte each, and those bytes' folded form.

    `codecs.charmap_encode` with such a map runs in C, so text made of these characters folds at the speed of
    `str.lower`; a character outside the map makes it raise, and the text takes the general path.
    """
    common = [c for c in dict.fromkeys(_COMMON) if len(fold_char(c)) == 1 and fold_char(c).isascii()][:128]
    decoding = "".join(map(chr, range(128))) + "".join(common) + "\ufffe" * (128 - len(common))
    table = bytearray(ord(c.lower()) if c.isalnum() or c == "_" else 32 for c in map(chr, range(128)))
    table += bytes(ord(fold_char(c)) for c in common) + b" " * (128 - len(common))
    return codecs.charmap_build(decoding), bytes(table)


_CHARMAP, _FOLDED_BYTES = _charmap()


def _fold_simple(text: str) -> str | None:
    """`text` folded when every character folds to exactly one (the common case), else None."""
    if text.isascii():
        return text.lower().translate(_ASCII_SPACES)
    try:
        encoded = codecs.charmap_encode(text, "strict", _CHARMAP)[0]  # type: ignore[arg-type]
    except UnicodeEncodeError:
        return _fold_runs(text)
    return encoded.translate(_FOLDED_BYTES).decode("ascii")


def _fold_runs(text: str) -> str | None:
    """The non-ASCII characters folded by one `str.translate` with a table of the text's distinct ones; None
    when one of them changes length."""
    distinct = [char for char in set(text) if not char.isascii()]
    if any(map(_kind, distinct)):
        return None
    return text.translate(_ASCII_FOLD | {ord(char): fold_char(char).lower() for char in distinct})


@lru_cache(maxsize=65536)
def fold_term(term: str) -> str:
    """Fold a query term the way article text is folded, keeping the wildcards `*` and `?` (cached: rules
    share many terms, and every rule that names a list folds the list's items)."""
    if term.isascii() and "\n" not in term:  # what `fold` does to each piece, at once
        return term.lower().translate(_ASCII_TERM_SPACES)
    return "".join(piece if piece in "*?" else fold(piece).text for piece in re.split(r"([*?])", term))


def joins(text: str, start: int, end: int) -> bool:
    """Whether the line-end hyphen text[start:end] breaks one word (joined) rather than a compound (kept).

    Joined between two lower-case letters; kept after a capital or a digit ("CSTO-\\ntroepen") and between
    the same two vowels, where Dutch writes a hyphen in compounds ("massa-\\narrestaties", "zee-\\negel").
    """
    if start == 0 or end >= len(text):
        return False
    before, after = text[start - 1], text[end]
    if not (before.isalpha() and before.islower() and after.isalpha() and after.islower()):
        return False
    return not (before == after and before in _VOWELS)


@dataclass(frozen=True, slots=True)
class Folded:
    original: str
    text: str
    # Break points (folded offset, original offset), ascending, in pairs around each stretch whose folded
    # length differs from its original length; empty when every offset is the same in both.
    _folded: Sequence[int] = field(default_factory=list)
    _original: Sequence[int] = field(default_factory=list)

    @property
    def same_offsets(self) -> bool:
        """Whether every offset in the folded text is the same in the original."""
        return not self._folded

    def to_original(self, offset: int) -> int:
        """The offset in the original text of a character offset in the folded text."""
        if not self._folded:
            return offset
        i = bisect.bisect_right(self._folded, offset) - 1
        if i < 0:
            return offset
        base_folded, base_original = self._folded[i], self._original[i]
        # Inside a stretch whose folded length differs, clamp to the stretch's original end.
        if i + 1 < len(self._folded):
            return min(base_original + offset - base_folded, self._original[i + 1])
        return base_original + offset - base_folded


def fold(text: str) -> Folded:
    """The searchable form of `text`, with the way back to the original's offsets."""
    if _removes(text):
        return _fold_mapped(text)
    folded = _fold_simple(text)
    return Folded(text, folded) if folded is not None else _fold_mapped(text)


def _removes(text: str) -> bool:
    """Whether some characters of `text` fold to nothing (a few `in` tests: much faster than a regex)."""
    if "-" in text and "\n" in text and _BREAK.search(text):
        return True
    return not text.isascii() and any(c in text for c in _INVISIBLE)


def _fold_mapped(text: str) -> Folded:
    """The general case: some characters fold to more or fewer characters, so keep break points."""
    return _fold_removals(text, accents=False) or _fold_removals(text, accents=True) or _fold_general(text)


def _fold_removals(text: str, accents: bool) -> Folded | None:
    """The common general case, fast: characters are only removed (joined line-end hyphens, invisible
    characters, with `accents` combining accents too), every other one folds to one. The removed runs are cut
    out and the rest folds in C; None when some other character changes length."""
    breaks = "-" in text and "\n" in text and _BREAK.search(text) is not None
    invisible = 0 if text.isascii() else sum(map(text.count, _INVISIBLE))
    if (accents or invisible > _FEW) and not breaks:
        return _fold_invisible(text, _INVISIBLE_RUN if accents else _INVISIBLE_ONLY_RUN)
    kept: list[str] = []
    done: list[str] = []
    folded_marks, original_marks = array(_OFFSETS), array(_OFFSETS)
    pos = removed = 0
    for start, end in _removals(text, breaks, _INVISIBLE_RUN if accents else _INVISIBLE_ONLY_RUN, invisible):
        if text[start] == "-" and not joins(text, start, end):
            continue  # a compound's hyphen: its characters fold to spaces, one each
        kept.append(text[pos:start])
        if len(kept) >= 1024:
            done.append("".join(kept))
            kept.clear()
        folded_marks.extend((start - removed, start - removed))
        original_marks.extend((start, end))
        removed += end - start
        pos = end
    kept.append(text[pos:])
    folded = _fold_simple("".join(done) + "".join(kept))
    return None if folded is None else Folded(text, folded, folded_marks, original_marks)


def _fold_invisible(text: str, runs: re.Pattern[str]) -> Folded | None:
    """`_fold_removals` without line-end hyphens and with many removals: their break points are worked out by
    iterators and slices in C (a text of a million accents or zero-width spaces has no Python loop)."""
    folded = _fold_simple(runs.sub("", text))
    if folded is None:
        return None
    original_marks = array(_OFFSETS, chain.from_iterable(map(re.Match.span, runs.finditer(text))))
    starts, ends = original_marks[0::2], original_marks[1::2]
    at = array(_OFFSETS, map(operator.sub, starts, accumulate(map(operator.sub, ends, starts), initial=0)))
    del starts, ends
    folded_marks = original_marks[:]
    folded_marks[0::2] = folded_marks[1::2] = at
    return Folded(text, folded, folded_marks, original_marks)


def _removals(text: str, breaks: bool, runs: re.Pattern[str], invisible: int = _FEW + 1) -> Iterator[tuple[int, int]]:
    """Spans of line-end hyphens and of `runs` of removed characters, in order. A few (`invisible`) invisible
    characters, the usual soft hyphens, are found by `str.find`, much faster than a regex scan for a class."""
    hyphens = (found.span() for found in _BREAK.finditer(text)) if breaks else iter(())
    if text.isascii() or (runs is _INVISIBLE_ONLY_RUN and not invisible):
        return hyphens
    if runs is _INVISIBLE_ONLY_RUN and invisible <= _FEW:
        return merge(hyphens, _runs(sorted(at for char in _INVISIBLE for at in _finds(text, char))))
    return merge(hyphens, (found.span() for found in runs.finditer(text)))


def _finds(text: str, char: str) -> Iterator[int]:
    at = text.find(char)
    while at >= 0:
        yield at
        at = text.find(char, at + 1)


def _runs(positions: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive positions as (start, end) runs."""
    start = end = -1
    for at in positions:
        if at != end:
            if end > start:
                yield start, end
            start = at
        end = at + 1
    if end > start:
        yield start, end


def _fold_general(text: str) -> Folded:
    out = _Builder()
    pos = 0
    for start, end in _removals(text, "-" in text, _INVISIBLE_RUN):
        _fold_segment(text, pos, start, out.add)
        pos = end
        if text[start] != "-" or joins(text, start, end):
            out.add("", start, end)
        else:
            out.add(" " * (end - start))
    _fold_segment(text, pos, len(text), out.add)
    return out.folded(text)


class _Builder:
    """Folded text built piece by piece, with its break points in machine integers: a text of a million
    line-end hyphens has two million of them, which as lists of Python ints would take hundreds of MB."""

    __slots__ = ("_done", "_folded", "_original", "_out", "_pieces", "_solid")

    def __init__(self) -> None:
        self._done: list[str] = []  # pieces joined a thousand at a time, so that few small strings live long
        self._pieces: list[str] = []
        self._folded = array(_OFFSETS)
        self._original = array(_OFFSETS)
        self._out = 0
        self._solid = False  # whether the last stretch is non-empty and without a space

    def add(self, piece: str, start: int = 0, end: int = 0) -> None:
        """A piece of folded text; with a span of the original when its length differs from the span's.

        A stretch right after another, both non-empty and without a space, extends it: no word starts or ends
        inside, so offsets at word boundaries map back the same, and a run of a million "ß" is one stretch."""
        size = len(piece)
        if end > start:
            folded, original, out = self._folded, self._original, self._out
            if folded and folded[-1] == out and original[-1] == start and size and _solid(piece) and self._solid:
                folded[-1], original[-1] = out + size, end
            else:
                folded.extend((out, out + size))
                original.extend((start, end))
            self._solid = bool(size) and _solid(piece)
        if piece:
            self._pieces.append(piece)
            if len(self._pieces) >= 1024:
                self._done.append("".join(self._pieces))
                self._pieces.clear()
        self._out += size

    def folded(self, original: str) -> Folded:
        return Folded(original, "".join(self._done) + "".join(self._pieces), self._folded, self._original)


def _solid(piece: str) -> bool:
    return " " not in piece


def _fold_segment(text: str, start: int, end: int, add: Callable[[str, int, int], None]) -> None:
    segment = text[start:end]
    folded = _fold_simple(segment)
    if folded is not None:
        add(folded, 0, 0)
        return
    pos = 0
    for run in _NON_ASCII.finditer(segment):
        add(_fold_simple(segment[pos : run.start()]) or "", 0, 0)
        _fold_run_mapped(run.group(), start + run.start(), add)
        pos = run.end()
    add(_fold_simple(segment[pos:]) or "", 0, 0)


def _fold_run_mapped(run: str, offset: int, add: Callable[[str, int, int], None]) -> None:
    """A run of non-ASCII characters, some of which change length, folded a group of characters of one kind
    (`_kind`) at a time: the kinds are found in C, so a run of a million "ß" is one step, not a million."""
    kinds = bytes(map(_kind, run))
    for group in _KIND_GROUPS.finditer(kinds):
        first, last = group.span()
        piece = "".join(map(fold_char, run[first:last]))
        if kinds[first] == 0:
            add(piece, 0, 0)
        else:
            add(piece, offset + first, offset + last)


@lru_cache(maxsize=8192)
def _kind(char: str) -> int:
    """0: folds to one character; 1: to several, none a space; 2: to nothing; 3: anything else (one at a
    time: a stretch with a space inside must keep its own break points)."""
    piece = fold_char(char)
    if len(piece) == 1:
        return 0
    if not piece:
        return 2
    return 1 if " " not in piece else 3


def keep_case(text: str) -> str:
    """`text` analysed like `fold` but with its case kept: what case-sensitive terms compare against."""
    out = []
    pos = 0
    for brk in _BREAK.finditer(text) if "-" in text else ():
        out.append(text[pos : brk.start()])
        out.append("" if joins(text, brk.start(), brk.end()) else " ")
        pos = brk.end()
    out.append(text[pos:])
    joined = "".join(out)
    if not joined.isascii():
        joined = _NON_ASCII.sub(lambda run: "".join(map(_keep_char, run.group())), joined)
    return joined.translate(_ASCII_SPACES)


@lru_cache(maxsize=8192)
def _keep_char(char: str) -> str:
    """One non-ASCII character analysed with its case kept (cached: `keep_case` calls it per character)."""
    if unicodedata.category(char) in {"Mn", "Me", "Cf"}:
        return ""
    nfkc = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", char))
    return _NON_WORD.sub(" ", "".join(c for c in nfkc if unicodedata.category(c) not in {"Mn", "Me"}))


def chunks(text: str, size: int = 1 << 18) -> Iterator[str]:
    """`text` in pieces of about `size` characters cut at spaces: what splitting a long folded text into words
    a piece at a time needs, so that no list of all its words is ever built."""
    start = 0
    while start < len(text):
        end = text.find(" ", start + size)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def snippet(text: str, start: int, end: int, width: int = 60, hit_chars: int | None = None) -> str:
    """The hit with up to `width` characters each side, marked with [[ ]], on one line; a hit longer than
    `hit_chars` is shown as its `excerpt`."""
    left, right = start - width, end + width
    if left > 0:  # start at a word: drop the cut one
        cut = text.find(" ", left, start)
        before = "…" + text[cut + 1 if cut >= 0 else left : start]
    else:
        before = text[:start]
    if right < len(text):
        cut = text.rfind(" ", end, right)
        after = text[end : cut if cut >= 0 else right] + "…"
    else:
        after = text[end:]
    hit = text[start:end] if hit_chars is None or end - start <= hit_chars else excerpt(text, start, end, hit_chars)
    marked = f"{before}[[{hit}]]{after}"
    if "\n" in marked or "  " in marked or "\t" in marked or "\r" in marked or marked[0] == " " or marked[-1] == " ":
        return " ".join(marked.split())
    return marked


def excerpt(text: str, start: int, end: int, hit_chars: int | None = None) -> str:
    """text[start:end], or when longer than `hit_chars` its first `hit_chars - 1` characters and "…"."""
    if hit_chars is None or end - start <= hit_chars:
        return text[start:end]
    return text[start : start + max(hit_chars - 1, 0)] + "…"
