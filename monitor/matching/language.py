"""An article's language: `languages(text) -> Languages(language, plausible)`, and the override by suffix.

The detector is lingua (`lingua-language-detector`), whose models ship in its wheel: nothing is downloaded at
run time. It chooses among `LANGUAGES` (Dutch, English, German, French, Russian) plus any other language a
rules file names (`use`), in its low-accuracy mode (trigrams: about 15 MB of models, loaded in a few tens of
milliseconds when the detector is built; its full mode would take ~135 MB and half a second). The models are
loaded whole when the detector is built, not language by language as texts ask for them: a detection then
costs about 0.6 ms instead of 0.7 (1.6 in the first fifty, while lingua loaded models on the way), and the
daemon builds it at start-up (`warm`), so that its first alerts do not wait for the models.

The text is read in chunks of about CHUNK characters of its words, each detected alone (`_chunks`): a text
of up to CHUNK characters of plain words is one chunk. Of a longer one, the words of its first SAMPLE
characters are read, and of a text of more than SAMPLE + END characters also its last END (a statement or
summary in another language at the end); of a text of more than 3 * SAMPLE characters a third of SAMPLE each
from its start, middle and end (`_sample`). Words of more than 40 characters are skipped (a 10 MB token says
nothing of a language), and no more than 20 times a part is scanned for its words, so a 10 MB article costs
what a 1,000-character one does.

- A chunk's first choice is lingua's when its confidence is CONFIDENT or more. A chunk shorter than LONG
  characters, where trigrams are weak evidence ("Massa-arrestaties in Almaty." reads as French), needs
  SHORT_CONFIDENT; below that it says nothing.
- `plausible`: every language with a confidence of PLAUSIBLE or more in any chunk. A rule's query for one
  language applies to an article when that language is plausible, and every query applies to an article of
  unknown language (no chunk said anything), so that a doubtful detection costs a little precision rather than
  a lost alert.
- `language`: the first choice of every chunk that says something, when they all name the same; else None
  (unknown: its facts are then read with every language's words, and no boilerplate's language is taken for
  the article's).

Why chunks (issue 19, seventh session): on a sample of a few hundred characters lingua's confidences are all
but 1.0 and 0.0, so one detection of the whole sample, the method before, found one language of a mixed text;
a Dutch article ending in an English statement had only its Dutch queries applied. The chunks read everything
that sample read, and the end: 100 of 100 mixed texts of `benchmarks/languages.py` have both languages
plausible (0 before), and every monolingual text of it and of two reviews' sets gets the plausible languages
it got before. It costs more: 1,250 characters instead of 1,000 for a text of 1,250 to 3,000 (about 1.2 to
1.4 times the CPU there). Smaller samples (three pieces of 150 characters; 750 characters in chunks of 250)
were cheaper but lost the Dutch of articles inside English page text (the reviews' findings). A text without
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
SAMPLE = 1000  # characters of a text's words that are read: its first, or of a long text its start, middle, end
END = 250  # characters of words read from the end of a text of up to 3 * SAMPLE, besides its first SAMPLE
CHUNK = 330  # characters of each chunk, detected alone
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
    """The text's language and the plausible ones: those of its sample's chunks (`_chunks`), each detected
    alone; the language only when every chunk that says something names the same (None: they differ)."""
    found = [_detected(chunk) for chunk in _chunks(text)]
    plausible = frozenset().union(*(chunk.plausible for chunk in found))
    if not plausible:
        return UNKNOWN
    firsts = {chunk.language for chunk in found if chunk.plausible}  # None: a chunk that is not sure
    return Languages(firsts.pop() if len(firsts) == 1 else None, plausible)


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


def _chunks(text: str) -> list[str]:
    """The sample (`_sample`) in chunks of about CHUNK characters of words, each within one of its parts; a
    text of up to CHUNK characters of plain words is one chunk, itself."""
    if len(text) <= CHUNK and "  " not in text and not any(len(w) > 40 for w in text.split()):
        return [text.strip()]
    chunks: list[str] = []
    for part in _sample(text):
        words: list[str] = []
        used = 0
        for word in part:
            words.append(word)
            used += len(word) + 1
            if used >= CHUNK:
                chunks.append(" ".join(words))
                words, used = [], 0
        if not words:
            continue
        if used < CHUNK // 2 and chunks:  # a short rest joins the chunk before it
            chunks[-1] += " " + " ".join(words)
        else:
            chunks.append(" ".join(words))
    return chunks


def _sample(text: str) -> list[list[str]]:
    """The text's words of up to 40 characters that are read, in parts: its first SAMPLE characters' (all of a
    shorter text), and its last END characters' when it has more than SAMPLE + END; of a text of more than
    3 * SAMPLE characters a third of SAMPLE each from its start, middle and end (boilerplate in another language
    at the top does not decide alone)."""
    third = SAMPLE // 3
    if len(text) <= SAMPLE + END:  # the end would overlap the start: read from the start
        return [_words(text, 0, SAMPLE)]
    if len(text) <= 3 * SAMPLE:
        return [_words(text, 0, SAMPLE), _words(text, len(text) - END, END)]
    return [_words(text, start, third) for start in (0, len(text) // 2, len(text) - 2 * third)]


def _words(text: str, start: int, size: int) -> list[str]:
    """The words (runs of up to 40 non-space characters) from `start` until about `size` characters of them,
    looked for in no more than 20 times `size` characters; a run cut off by that bound is no word."""
    words: list[str] = []
    used = 0
    stop = min(len(text), start + 20 * size)
    for found in _WORD.finditer(text, start, stop):
        if found.end() == stop < len(text) and not text[stop].isspace():
            break  # the start of a longer run, cut off by the bound
        words.append(found.group())
        used += len(found.group()) + 1
        if used >= size:
            break
    return words


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
