"""An article's language: `languages(text) -> Languages(language, plausible)`, and the override by suffix.

The detector is lingua (`lingua-language-detector`), whose models ship in its wheel: nothing is downloaded at
run time. It chooses among `LANGUAGES` (Dutch, English, German, French, Russian) plus any other language a
rules file names (`use`), in its low-accuracy mode (trigrams: about 15 MB of models, loaded in a few tens of
milliseconds when the detector is built; its full mode would take ~135 MB and half a second). The models are
loaded whole when the detector is built, not language by language as texts ask for them: a detection then
costs about 0.6 ms instead of 0.7 (1.6 in the first fifty, while lingua loaded models on the way), and the
daemon builds it at start-up (`warm`), so that its first alerts do not wait for the models.

- A sample's first choice is lingua's when its confidence is CONFIDENT or more. A sample shorter than LONG
  characters, where trigrams are weak evidence ("Massa-arrestaties in Almaty." reads as French), needs
  SHORT_CONFIDENT; below that it says nothing (unknown).
- `language`: the first choice of the text, or the one that most of its pieces share (two of three); else None
  (unknown).
- `plausible`: every language with a confidence of PLAUSIBLE or more, in the text or in any of its pieces. A
  rule's query for one language applies to an article when that language is plausible, and every query
  applies to an article of unknown language, so that a doubtful detection costs a little precision rather
  than a lost alert.

A text of up to `SAMPLE` characters is read whole. Of a longer one, three pieces of about `PIECE` characters
of words are read, from its start, middle and end, and each is detected alone (words of more than 40
characters are skipped: a 10 MB token says nothing of a language; no more than 20 times a piece is scanned
for its words), so a 10 MB article costs what a 450-character one does. An article with a long quotation or
summary in another language therefore has both languages' queries applied: lingua's confidences are all but
1.0 and 0.0 on a sample of a few hundred characters, so one detection of a mixed sample (the method before:
1,000 characters from the same three places) found only one of the two. Three pieces of 150 characters also
cost about 0.55 of that one sample (`benchmarks/languages.py`, issue 19's seventh session). A text without
letters is of unknown language. A file named `NAME.LANG.txt` (`bericht.de.txt`) is in that language whatever
its text says (`suffix_language`), for the languages the detector chooses among.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

LANGUAGES = ("nl", "en", "de", "fr", "ru")
LONG = 200
SAMPLE = 450  # characters of a clean text read whole; a longer one is read as three pieces of PIECE
PIECE = 150  # characters of words of each piece (under LONG: a piece counts only when SHORT_CONFIDENT)
CONFIDENT = 0.5  # lingua's confidence in its first choice below which the language is unknown (None)
PLAUSIBLE = 0.2  # a language with this confidence or more may be the text's: its queries apply
SHORT_CONFIDENT = 0.9  # a text under LONG characters has a language only when lingua is this sure
_WORD = re.compile(r"(?<!\S)\S{1,40}(?!\S)")  # longer "words" (a 10 MB token) say nothing of a language

_lock = threading.Lock()
_codes: set[str] = set(LANGUAGES)
_detectors: list[LanguageDetector] = []  # the one detector, once built


@cache
def known(code: str) -> bool:
    """Whether lingua knows the ISO 639-1 code (`nl`, `en`, `es`, ...)."""
    from lingua import IsoCode639_1

    try:
        IsoCode639_1.from_str(code)
    except ValueError:
        return False
    return True


def use(codes: Iterable[str]) -> None:
    """Add languages that rules name to those the detector chooses among (rebuilt when first used again)."""
    new = set(codes) - _codes
    if new:
        with _lock:
            _codes.update(new)
            _detectors.clear()


@dataclass(frozen=True, slots=True)
class Languages:
    """What the detector says of a text: its language (None when unsure) and every language it finds
    plausible (confidence of PLAUSIBLE or more: a rule's query for any of them applies; none: unknown, every
    query applies)."""

    language: str | None
    plausible: frozenset[str]

    def admits(self, code: str) -> bool:
        return not self.plausible or code in self.plausible


UNKNOWN = Languages(None, frozenset())


def detect(text: str) -> str | None:
    """The ISO 639-1 code of the text's language; None when the detector is unsure (its first choice has a
    confidence under CONFIDENT) or the text has no letters."""
    return languages(text).language


def languages(text: str) -> Languages:
    """The text's language and the plausible ones: of the whole text, or of its three pieces (`_pieces`)."""
    found = [_detected(piece) for piece in _pieces(text)]
    plausible = frozenset().union(*(piece.plausible for piece in found))
    if not plausible:
        return UNKNOWN
    firsts = [piece.language for piece in found if piece.plausible and piece.language is not None]
    voted = [piece for piece in found if piece.plausible]  # the pieces that said something
    language = next((code for code in firsts if 2 * firsts.count(code) > len(voted)), None)
    return Languages(language, plausible)


def _detected(sample: str) -> Languages:
    """lingua's answer for one sample: unknown without letters, or when a short one is not SHORT_CONFIDENT."""
    if not any(map(str.isalpha, sample)):
        return UNKNOWN
    values = _detector().compute_language_confidence_values(sample)
    if not values:
        return UNKNOWN
    codes = [(str(v.language.iso_code_639_1.name.lower()), v.value) for v in values]
    first, confidence = codes[0]
    if len(sample) < LONG and confidence < SHORT_CONFIDENT:
        return UNKNOWN  # a short text ("Massa-arrestaties in Almaty." reads as French): every query applies
    plausible = frozenset(code for code, value in codes if value >= PLAUSIBLE)
    return Languages(first if confidence >= CONFIDENT else None, plausible)


def _pieces(text: str) -> list[str]:
    """The text itself when it is at most SAMPLE characters of plain words; else about PIECE characters of its
    words of up to 40 characters from its start, middle and end (boilerplate in another language at the top
    does not decide alone, and a quotation in another language is seen)."""
    if len(text) <= SAMPLE and "  " not in text and not any(len(w) > 40 for w in text.split()):
        return [text.strip()]
    if len(text) <= SAMPLE:
        return [_words(text, 0, SAMPLE)]
    return [
        _words(text, 0, PIECE),
        _words(text, max(PIECE, len(text) // 2 - PIECE // 2), PIECE),
        _words(text, max(2 * PIECE, len(text) - PIECE - PIECE // 2), PIECE),
    ]


def _words(text: str, start: int, size: int) -> str:
    words: list[str] = []
    used = 0
    for found in _WORD.finditer(text, start, start + 20 * size):
        words.append(found.group())
        used += len(found.group()) + 1
        if used >= size:
            break
    return " ".join(words)


def warm() -> None:
    """Build the detector now (its models loaded), off the path of the first article that needs it."""
    _detector()


def _detector() -> LanguageDetector:
    """lingua's low-accuracy detector for the languages in use, built when first needed (and again after `use`,
    which empties the list under the lock)."""
    try:
        return _detectors[0]
    except IndexError:
        pass
    with _lock:
        if not _detectors:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            builder = LanguageDetectorBuilder.from_iso_codes_639_1(*map(IsoCode639_1.from_str, sorted(_codes)))
            _detectors.append(builder.with_low_accuracy_mode().with_preloaded_language_models().build())
        return _detectors[0]


def suffix_language(path: str) -> str | None:
    """`de` for `bericht.de.txt`: the code of a language the detector chooses among (LANGUAGES and those the
    rules name) before the last suffix overrides detection."""
    suffixes = PurePath(path).suffixes
    if len(suffixes) < 2:
        return None
    code = suffixes[-2][1:].lower()
    return code if code in _codes else None  # not any of lingua's codes: "wat.is.txt" is no Icelandic


def article_language(path: str, text: str) -> str | None:
    """The language of an article file: its suffix's, else its text's."""
    return suffix_language(path) or detect(text)
