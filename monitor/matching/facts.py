"""The facts of a hit beyond its words: the number the text attaches to it, and whether it is denied.

`Count` is what a hit's count looks like in matches and payloads (`Count.as_json()`);
`hit_facts(text, start, end, language)` finds both facts of one hit in the article's original text.

Where it looks. Only the sentence around the hit, and of it at most 400 characters on each side (cut at the
last white space inside that window): the cost of one hit is bounded whatever the article. A sentence ends at
`.`, `!`, `?`, `;` or `…` followed by white space (not the `.` of "8.000" or "1.5", nor after "ca." or "o.a.",
nor before a lower-case word, nor in a German date "5. Januar"), and at a blank line (a heading is its own
sentence). A single newline is no boundary: articles are hard-wrapped.

Counts. The number nearest to the hit in words (a tie goes to the one before it) within the sentence:
- digits "164", "8.000", "8,000", "8 000", "1.000.000" (a separator followed by exactly three digits, repeated,
  groups thousands: "1.500" and "1,500" are 1500), decimals "1.5", "1,5", times a following scale word
  ("1,5 miljoen", "1.5 million", "2 Millionen", "3 milliards", "5 тысяч", "mln", "Mio"): int when whole;
- number words in Dutch, English, German and French, parsed by `text2num` ("achtduizend", "twee miljoen",
  "one hundred and twenty", "quarante-deux"). Russian counts are digits only (text2num has no Russian).
  An article alone is no number (een, one, un, une, ein); with the language unknown, nor are words that mean
  something else in another language (English "ten", French "sept", "cent", "mil");
- vague quantities (honderden, dozens, Tausende, milliers, сотни, ...): value None, qualifier "vague".
Not counts: years (1800-2100 written as four digits), dates (a number next to a month name), times ("12:30"),
percentages, money (€, $, euro, dollar, roebel, рублей, ...), durations, ages and measures ("36 jaar",
"years", "Jahre", "ans", "лет", "km") right after the number, references ("artikel 109", "§ 5"), and digits
glued to letters or in a compound ("36-jarige", "G7", "COVID-19"). A four-digit count in 1800-2100
("2000 doden") is therefore taken for a year.
The qualifier comes from the words right before the number (bijna, ten minste, meer dan, ongeveer, at least,
up to, mindestens, bis zu, au moins, près de, не менее, около, ...: see `lexicon`); `Count.text` is the
article's words from the qualifier to the end of the number. "over" counts as "more than" in Dutch and English
(also where it means "about the"); with the language unknown it is left out.

Negation. The hit is negated when a cue word stands up to four words before it, or (Dutch and German, verb
second: "De politie arresteerde hem niet") up to three words after it, in the same clause. Cues: nl geen,
niet, nooit, zonder, noch, niemand, nergens; en no, not, never, without, nobody, none, neither, nor, cannot and
the n't forms; de kein*, nicht, nie, niemals, ohne, niemand, weder; fr ne, n', pas, aucun(e), sans, jamais, ni,
rien, personne (only before ne/n'); ru не, нет, без, ни, никто, никого, никаких, ничего. After the hit only
geen, niet, nooit, niemand, nergens, kein*, nicht, nie, niemals count ("gearresteerd zonder aanklacht" is an
arrest). A clause ends at the sentence's ends, at `,` `;` `:` brackets and dashes, and at subordinating and
contrast words (nl dat, of, hoeveel, wie, waar, omdat, maar, want; en that, whether, how, who, but, because;
de dass, ob, wie, aber, weil, sondern; fr que, qu', combien, si, mais, car; ru что, сколько, но, а): "Het is niet
bekend hoeveel mensen zijn gearresteerd" is not negated. After the hit, "en/and/und/oder/et/и" end it too.
With the language unknown, the cues of all languages count except the ambiguous ones (French "pas" is Dutch
"only just", Dutch "noch" is German "still"; the stop words "of", "want", "car" are English words).
Limits:
- "niet alleen", "not only", "nicht nur", "non seulement", "не только" are no negation, nor are the
  qualifiers "no more than", "niet meer dan", "не менее", "не более";
- double negation is not resolved ("niet zonder arrestaties" is negated), nor is negation by meaning
  ("ontkende", "denied", "freigelassen"), nor a cue further than four words away ("none of the five suspects
  was arrested");
- coordination is not parsed: "geen doden en gewonden" negates "doden" only when the hit stands within the
  four words after "geen".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, cast

from text_to_num import text2num  # type: ignore[import-untyped]

from monitor.matching import lexicon as words
from monitor.matching.lexicon import Lexicon, lexicon

# None: the number as written; the others say how the text qualifies it ("bijna achtduizend": almost).
Qualifier = Literal["almost", "at_least", "more_than", "about", "less_than", "at_most", "vague"]


@dataclass(frozen=True, slots=True)
class Count:
    """A number attached to a hit: `value` None for a vague quantity ("honderden", "dozens")."""

    value: int | float | None
    qualifier: Qualifier | None
    text: str  # the words in the article, e.g. "bijna achtduizend"

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "qualifier": self.qualifier, "text": self.text}


_WINDOW = 400  # characters looked at on each side of the hit
_LONGEST_WORD = 60  # longer words are never number words
_LONGEST_NUMBER = 30  # longer digit runs are never counts
_RUN = 8  # number words in one number at most ("one hundred and twenty": 4)
_QUALIFIER_WORDS = 3

_TOKEN = re.compile(
    r"(?P<num>\d{1,3}([.,\u00a0\u202f ])\d{3}(?!\d)(?:\2\d{3}(?!\d))*(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:['’\-][^\W\d_]+)*)"
    r"|(?P<punct>[^\w\s])"
)
_GROUPED = re.compile(r"(?P<whole>\d{1,3}(?:[.,\s]\d{3})+)(?:[.,](?P<frac>\d+))?")
_BOUNDARY = re.compile(r"[.!?;…][\"'”’»)]*(?=\s)|\n[^\S\n]*\n")
_NEXT_CHAR = re.compile(r"\s{1,20}(\S)")
_WORD_AT = re.compile(r"[^\W\d_]{1,20}")
_TIME = re.compile(r"\d:\d")
_CLAUSE_PUNCT = frozenset(",;:()[]–—-")  # a hyphen only between spaces (a glued one's token is "")
_HYPHENS = frozenset("-‐")
_CONNECTORS = frozenset({"and", "et"})  # "one hundred and twenty", "vingt et un"
_ROOTS = {language: re.compile("|".join(roots)) for language, roots in words.NUMBER_ROOTS.items()}


_Value = int | float | None  # a count's value; None: vague
_Kind = Literal["num", "word", "punct", "hit"]
_KINDS: dict[str | None, _Kind] = {"num": "num", "word": "word", "punct": "punct"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    start: int
    end: int
    low: str  # lower-cased text ("" for a glued hyphen or an overlong hit)
    word: int  # the index among words, numbers and the hit (punctuation: the next one's)


def hit_facts(text: str, start: int, end: int, language: str | None) -> tuple[Count | None, bool]:
    """(the count the text attaches to text[start:end], whether the hit is negated). `text` is the article
    body as it stands (original, not folded); `language` an ISO 639-1 code (nl, en, de, fr, ru, ...) or None
    (unknown: use the cue words of all languages except the ambiguous ones, e.g. French 'pas' which is Dutch
    'only just')."""
    start = min(max(start, 0), len(text))
    end = min(max(end, start), len(text))
    tokens, hit = _tokens(text, start, end)
    table = lexicon(language)
    return _count(text, tokens, hit, table), _negated(tokens, hit, table)


# --- the sentence and its tokens -------------------------------------------------------------------------


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around text[start:end], within the window, not cutting a word at its edges."""
    lo, hi = max(0, start - _WINDOW), min(len(text), end + _WINDOW)
    if lo > 0 and not text[lo - 1].isspace():
        found = [i for i in (text.find(c, lo, start) for c in " \n\t") if i >= 0]
        lo = min(found, default=start)
    if hi < len(text) and not text[hi].isspace():
        hi = max((text.rfind(c, end, hi) for c in " \n\t"), default=-1)
        hi = end if hi < 0 else hi
    for match in _BOUNDARY.finditer(text, lo, start):
        if _ends_sentence(text, match):
            lo = match.end()
    for match in _BOUNDARY.finditer(text, end, hi):
        if _ends_sentence(text, match):
            return lo, match.start()
    return lo, hi


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether a boundary candidate ends a sentence: not the '.' of "ca.", "o.a. de", "5. Januar"."""
    if text[match.start()] != ".":
        return True
    following = _NEXT_CHAR.match(text, match.end())
    if following is None:
        return True
    if following.group(1).islower():
        return False
    before = text[max(0, match.start() - 8) : match.start()].split()
    word = before[-1].lstrip("(\"'“‘«").lower() if before else ""
    if word in words.ABBREVIATIONS:
        return False
    after = _WORD_AT.match(text, following.start(1))
    return not (word.isdigit() and len(word) <= 2 and after is not None and after.group().lower() in words.MONTHS)


def _tokens(text: str, start: int, end: int) -> tuple[list[_Token], int]:
    """The tokens of the hit's sentence, the hit being one token of its own; and the hit's index."""
    lo, hi = _sentence(text, start, end)
    tokens: list[_Token] = []
    word = _scan(text, lo, start, tokens, 0)
    hit = len(tokens)
    tokens.append(_Token("hit", start, end, text[start:end].lower() if end - start <= _LONGEST_WORD else "", word))
    _scan(text, end, hi, tokens, word + 1)
    return tokens, hit


def _scan(text: str, lo: int, hi: int, tokens: list[_Token], word: int) -> int:
    """Append the tokens of text[lo:hi], numbering words from `word`; the next word's number."""
    for match in _TOKEN.finditer(text, lo, hi):
        kind, low = _KINDS[match.lastgroup], match.group().lower()
        if kind == "punct":
            if low in _HYPHENS and match.start() > 0 and not text[match.start() - 1].isspace():
                low = ""  # a hyphen glued to a word ("36-jarige") is no dash
            tokens.append(_Token(kind, match.start(), match.end(), low, word))
        else:
            tokens.append(_Token(kind, match.start(), match.end(), low, word))
            word += 1
    return word


# --- counts ----------------------------------------------------------------------------------------------


def _count(text: str, tokens: list[_Token], hit: int, table: Lexicon) -> Count | None:
    """The count nearest to the hit in words (a tie: the one before it), or None."""
    before = _nearest_before(text, tokens, hit, table)
    after = _nearest_after(text, tokens, hit, table)
    if before is None or after is None:
        return _counted(text, tokens, _changed(text, tokens, before or after, table), table)
    where = tokens[hit].word
    if where - tokens[before[1]].word <= tokens[after[0]].word - where:
        return _counted(text, tokens, _changed(text, tokens, before, table), table)
    return _counted(text, tokens, _changed(text, tokens, after, table), table)


def _changed(
    text: str, tokens: list[_Token], found: tuple[int, int, _Value] | None, table: Lexicon
) -> tuple[int, int, _Value] | None:
    """The second number of a change ("van 30 naar 42", "from 30 to 42", "von 30 auf 42", "de 30 à 42",
    "с 30 до 42"): the count now, not the one before."""
    if found is None:
        return None
    first, last, _ = found
    if first == 0 or last + 2 >= len(tokens):
        return found
    if tokens[first - 1].low not in words.FROM or tokens[last + 1].low not in words.TO:
        return found
    then = _number_at(tokens, last + 2, table)
    if then is None or _not_a_count(text, tokens, last + 2, then[0]):
        return found
    return last + 2, then[0], then[1]


def _nearest_after(text: str, tokens: list[_Token], hit: int, table: Lexicon) -> tuple[int, int, _Value] | None:
    """The first count after the hit: (its first token, its last token, its value)."""
    i = hit + 1
    while i < len(tokens):
        found = _number_at(tokens, i, table)
        if found is None:
            i += 1
            continue
        if not _not_a_count(text, tokens, i, found[0]):
            return i, found[0], found[1]
        i = found[0] + 1
    return None


def _nearest_before(text: str, tokens: list[_Token], hit: int, table: Lexicon) -> tuple[int, int, _Value] | None:
    """The last count before the hit (or taking the hit as its scale word): (first token, last token, value)."""
    k = hit - 1
    while k >= 0:
        found = _number_at(tokens, k, table)
        if found is None:
            k -= 1
            continue
        first, (last, value) = _number_start(tokens, k, found, table)
        if not _not_a_count(text, tokens, first, last):
            return first, last, value
        k = first - 1
    return None


def _number_start(
    tokens: list[_Token], k: int, found: tuple[int, _Value], table: Lexicon
) -> tuple[int, tuple[int, _Value]]:
    """Where the number that covers token k starts ("twee" for "miljoen" in "twee miljoen"), and its extent."""
    first = k
    j = k - 1
    while j >= 0 and k - j <= _RUN + 1:
        if tokens[j].low in _CONNECTORS:
            j -= 1
            continue
        longer = _number_at(tokens, j, table)
        if longer is None or longer[0] < first:
            break
        first, found = j, longer
        j -= 1
    return first, found


def _counted(text: str, tokens: list[_Token], found: tuple[int, int, _Value] | None, table: Lexicon) -> Count | None:
    if found is None:
        return None
    first, last, value = found
    qualifier, begin = ("vague", first) if value is None else _qualifier(tokens, first, table)
    return Count(value, cast(Qualifier, qualifier), text[tokens[begin].start : tokens[last].end])


def _number_at(tokens: list[_Token], i: int, table: Lexicon) -> tuple[int, _Value] | None:
    """The number that starts at token i: (its last token, its value; None: vague), or None."""
    token = tokens[i]
    if token.kind == "num":
        value = _digits(token.low)
        if value is None:
            return None
        scale = words.SCALES.get(tokens[i + 1].low) if i + 1 < len(tokens) else None
        return (i + 1, _plain(value * scale)) if scale else (i, _plain(value))
    if token.kind != "word":
        return None
    if token.low in table.vague:
        return i, None
    return _number_words(tokens, i, table)


def _digits(raw: str) -> Decimal | None:
    """The value of "8.000", "8 000", "1,5", "164"; None for a digit run too long to be a count."""
    if len(raw) > _LONGEST_NUMBER:
        return None
    grouped = _GROUPED.fullmatch(raw)
    if grouped:
        whole, fraction = re.sub(r"\D", "", grouped["whole"]), grouped["frac"] or "0"
    else:
        whole, _, fraction = raw.replace(",", ".").partition(".")
    return Decimal(f"{whole}.{fraction or '0'}")


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _number_words(tokens: list[_Token], i: int, table: Lexicon) -> tuple[int, int] | None:
    """The number written in words from token i ("bijna achtduizend", "twee miljoen"), or None."""
    for language in table.number_languages:
        if _phrase_value(tokens[i].low, language) is None:
            continue
        last = i
        while last + 1 < len(tokens) and last - i < _RUN:
            if _is_number_word(tokens[last + 1], language):
                last += 1
            elif tokens[last + 1].low in _CONNECTORS and last + 2 < len(tokens):
                if not _is_number_word(tokens[last + 2], language):
                    break
                last += 2
            else:
                break
        for end in range(last, i - 1, -1):  # the longest run that parses
            value = _phrase_value(" ".join(token.low for token in tokens[i : end + 1]), language)
            if value is not None:
                return None if end == i and tokens[i].low in table.articles else (end, value)
    return None


def _is_number_word(token: _Token, language: str) -> bool:
    return token.kind == "word" and _phrase_value(token.low, language) is not None


@lru_cache(maxsize=65536)
def _phrase_value(phrase: str, language: str) -> int | None:
    """text2num's value of a phrase in one language, or None (cached: each word is parsed once)."""
    if len(phrase) > _LONGEST_WORD * 2 or len(phrase) < 2 or not _ROOTS[language].search(phrase):
        return None
    try:
        return int(text2num(phrase, language))
    except ValueError:
        return None


def _not_a_count(text: str, tokens: list[_Token], first: int, last: int) -> bool:
    """Whether the number in tokens first..last is a year, date, time, percentage, amount, duration, ..."""
    token = tokens[first]
    if token.kind == "num" and (_glued(text, token) or (first == last and _year(token.low))):
        return True
    before = tokens[first - 1] if first > 0 else None
    after = tokens[last + 1 : last + 3]
    if before is not None and (before.low in words.MONEY or before.low in words.REFERENCES or _month(text, before)):
        return True
    if not after:
        return False
    if after[0].low in words.PERCENT or after[0].low in words.MONEY or after[0].low in words.DURATIONS:
        return True
    if len(after) == 2 and (after[0].low, after[1].low) in words.PERCENT_PAIRS:
        return True
    return _month(text, after[0]) or (len(after) == 2 and after[0].low == "." and _month(text, after[1]))


def _glued(text: str, token: _Token) -> bool:
    """Digits in a word or compound ("G7", "COVID-19", "36-jarige", "10km") or a time ("12:30")."""
    before = text[max(0, token.start - 2) : token.start]
    after = text[token.end : token.end + 2]
    if before[-1:].isalpha() or (len(before) == 2 and before[1] in "-/" and before[0].isalpha()):
        return True
    if after[:1].isalpha() or (len(after) == 2 and after[0] == "-" and after[1].isalpha()):
        return True
    return bool(_TIME.fullmatch(text, max(0, token.start - 2), token.start + 1)) or bool(
        _TIME.fullmatch(text, token.end - 1, token.end + 2)
    )


def _year(raw: str) -> bool:
    return len(raw) == 4 and raw.isascii() and raw.isdigit() and 1800 <= int(raw) <= 2100


def _month(text: str, token: _Token) -> bool:
    if token.low not in words.MONTHS:
        return False
    return token.low not in words.MONTHS_CAPITALISED or text[token.start].isupper()


def _qualifier(tokens: list[_Token], i: int, table: Lexicon) -> tuple[str | None, int]:
    """The qualifier right before the number at token i ("bijna", "ten minste") and the token it starts at."""
    for size in range(_QUALIFIER_WORDS, 0, -1):
        if i >= size:
            qualifier = table.qualifiers.get(tuple(token.low for token in tokens[i - size : i]))
            if qualifier is not None:
                return qualifier, i - size
    return None, i


# --- negation --------------------------------------------------------------------------------------------


def _negated(tokens: list[_Token], hit: int, table: Lexicon) -> bool:
    """Whether a cue denies the hit: up to 4 words before it, or (nl, de) 3 words after, in its clause."""
    return _cue_before(tokens, hit, table) or _cue_after(tokens, hit, table)


def _cue_before(tokens: list[_Token], hit: int, table: Lexicon) -> bool:
    seen = 0
    for k in range(hit - 1, -1, -1):
        token = tokens[k]
        if token.kind == "punct":
            if token.low in _CLAUSE_PUNCT:
                return False
            continue
        if token.low in table.stops or token.low.startswith(table.stop_prefixes):
            # "zonder dat er iemand werd gearresteerd", "ohne dass", "sans que": the clause is denied
            that = token.low in words.THAT or token.low.startswith(("qu'", "qu’"))
            return that and k > 0 and tokens[k - 1].low in words.WITHOUT
        if _is_cue(tokens, k, table) and not _cancelled(tokens, k):
            return True
        seen += 1
        if seen == 4:
            return False
    return False


def _cue_after(tokens: list[_Token], hit: int, table: Lexicon) -> bool:
    if not table.negations_after:
        return False
    seen = 0
    for k in range(hit + 1, len(tokens)):
        token = tokens[k]
        if token.kind == "punct":
            if token.low in _CLAUSE_PUNCT:
                return False
            continue
        if token.low in table.stops or token.low in words.FORWARD_STOPS:
            return False
        if token.low in table.negations_after:
            return not _cancelled(tokens, k)  # "arresteerde niet alleen de chauffeur"
        seen += 1
        if seen == 3:
            return False
    return False


def _is_cue(tokens: list[_Token], k: int, table: Lexicon) -> bool:
    low = tokens[k].low
    if low in table.negations or low.endswith(table.negation_suffixes):
        return True
    if len(low) > 2 and low.startswith(table.negation_prefixes):
        return True
    if low in table.needs_ne and k + 1 < len(tokens):
        following = tokens[k + 1].low
        return following == "ne" or following.startswith(("n'", "n’"))
    return False


def _cancelled(tokens: list[_Token], k: int) -> bool:
    """A cue that is no negation: "niet alleen", "not only", "no more than", "не менее"."""
    following = [token.low for token in tokens[k + 1 : k + 3]]
    if following and following[0] in words.NOT_NEGATING_NEXT:
        return True
    return len(following) == 2 and following[0] in words.COMPARATIVES and following[1] in words.THAN
