"""An article's language: `detect(text) -> "nl" | "en" | ... | None`, and the per-file override by suffix.

The detector is lingua (`lingua-language-detector`), whose models ship in its wheel: nothing is downloaded at
run time. It chooses among `LANGUAGES` (Dutch, English, German, French, Russian) plus any other language a
rules file names (`use`). Two detectors are built, each when first needed and then kept:

- texts of `LONG` characters or more (nearly every article) go to lingua's low-accuracy mode, which reads
  trigrams only: about 15 MB of models, loaded in a few tens of milliseconds, and as accurate as the full
  mode on texts of that length (lingua's own evaluation);
- shorter texts (a rule's examples, a one-line article) go to the full mode: it is right on single short
  sentences where trigrams alone are not ("Er vielen 164 doden." is Dutch), but its models take ~135 MB and
  half a second to load.

Only about `SAMPLE` characters of a text's words are read, from its start, middle and end (words of more than
40 characters are skipped: a 10 MB token says nothing of a language), and no more than 20 times that is
scanned for them, so a 10 MB article costs about what a 2,000-character one does. When lingua's confidence
in its first choice is under CONFIDENT (nonsense, a mix, a very short text), or the text has no letters, the
language is unknown (None): a rule with queries per language then applies all of them. A file named
`NAME.LANG.txt` (`bericht.de.txt`) is in that language whatever its text says (`suffix_language`), for the
languages the detector chooses among.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

LANGUAGES = ("nl", "en", "de", "fr", "ru")
LONG = 200
SAMPLE = 2000
CONFIDENT = 0.5  # lingua's confidence in its first choice below which the language is unknown (None)
_WORD = re.compile(r"(?<!\S)\S{1,40}(?!\S)")  # longer "words" (a 10 MB token) say nothing of a language

_lock = threading.Lock()
_codes: set[str] = set(LANGUAGES)
_detectors: dict[bool, LanguageDetector] = {}  # low accuracy? -> detector


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


def detect(text: str) -> str | None:
    """The ISO 639-1 code of the text's language; None when the detector is unsure (its first choice has a
    confidence under CONFIDENT) or the text has no letters."""
    sample = _sample(text)
    if not any(map(str.isalpha, sample)):
        return None
    values = _detector(len(sample) >= LONG).compute_language_confidence_values(sample)
    if not values or values[0].value < CONFIDENT:
        return None
    return str(values[0].language.iso_code_639_1.name.lower())


def _sample(text: str) -> str:
    """About SAMPLE characters of the text's words of up to 40 characters: from its start, and for a longer
    text a third each from its start, middle and end (boilerplate in another language at the top does not
    decide alone)."""
    if len(text) <= SAMPLE and "  " not in text and not any(len(w) > 40 for w in text.split()):
        return text.strip()
    if len(text) <= 3 * SAMPLE:
        return _words(text, 0, SAMPLE)
    third = SAMPLE // 3
    middle = len(text) // 2
    return " ".join((_words(text, 0, third), _words(text, middle, third), _words(text, len(text) - 2 * third, third)))


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
    """Load the low-accuracy models now (the daemon calls this in a thread after start-up)."""
    _detector(True).detect_language_of("warm")


def _detector(low_accuracy: bool) -> LanguageDetector:
    detector = _detectors.get(low_accuracy)
    if detector is None:
        with _lock:
            detector = _detectors.get(low_accuracy)
            if detector is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                builder = LanguageDetectorBuilder.from_iso_codes_639_1(*map(IsoCode639_1.from_str, sorted(_codes)))
                detector = _detectors[low_accuracy] = (
                    builder.with_low_accuracy_mode() if low_accuracy else builder
                ).build()
    return detector


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
