"""The cue words of `facts`, per language: qualifiers, vague quantities, negations, clause ends; and the words
that make a number something other than a count (months, units, money, durations), for all languages at once.

Every word is lower-case, as the tokens of `facts` are compared. `lexicon(language)` gives one language's
table; an unknown language (None, or a code other than nl, en, de, fr, ru) gets the union of the five minus the
words that mean something else in another of them (`AMBIGUOUS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

LANGUAGES = ("nl", "en", "de", "fr", "ru")


@dataclass(frozen=True, slots=True)
class Lexicon:
    """One language's cue words (or the union of all of them)."""

    number_languages: tuple[str, ...]  # text2num languages for number words (Russian: none, digits only)
    articles: frozenset[str]  # number words that alone are no count: articles (een, one), ambiguous words
    qualifiers: Mapping[tuple[str, ...], str]  # token sequences right before a number: a `facts.Qualifier`
    vague: frozenset[str]  # quantities without a number ("honderden")
    negations: frozenset[str]  # cues before the hit
    negations_after: frozenset[str]  # cues after the hit (verb-second: nl, de)
    needs_ne: frozenset[str]  # cues only when "ne"/"n'" follows (French "personne")
    negation_prefixes: tuple[str, ...]  # French "n'a"
    negation_suffixes: tuple[str, ...]  # English "didn't"
    stops: frozenset[str]  # subordinating and contrast words: the clause ends there
    stop_prefixes: tuple[str, ...]  # French "qu'il"


def _q(**phrases: str) -> dict[tuple[str, ...], str]:
    """Qualifier tables: `almost="bijna|vrijwel"`, each phrase split in tokens ("ca ." is "ca." as tokenized)."""
    return {tuple(phrase.split()): qualifier for qualifier, group in phrases.items() for phrase in group.split("|")}


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TABLES: dict[str, Lexicon] = {
    "nl": Lexicon(
        number_languages=("nl",),
        articles=frozenset({"een"}),
        qualifiers=_q(
            almost="bijna|vrijwel|nagenoeg",
            at_least="ten minste|tenminste|minstens|minimaal|zeker|niet minder dan",
            more_than="meer dan|ruim|over",
            about="ongeveer|circa|ca .|ca|zo'n|zo’n|rond|omstreeks",
            less_than="minder dan",
            at_most="hooguit|maximaal",
        ),
        vague=_set("honderden duizenden tientallen tienduizenden honderdduizenden miljoenen miljarden"),
        negations=_set("geen niet nooit zonder noch niemand nergens"),
        negations_after=_set("geen niet nooit niemand nergens"),
        needs_ne=frozenset(),
        negation_prefixes=(),
        negation_suffixes=(),
        stops=_set("dat of hoeveel wie waar omdat maar want"),
        stop_prefixes=(),
    ),
    "en": Lexicon(
        number_languages=("en",),
        articles=frozenset({"one"}),
        qualifiers=_q(
            almost="almost|nearly",
            at_least="at least|no fewer than|no less than",
            more_than="more than|over",
            about="about|around|approximately|some|roughly",
            less_than="less than|fewer than",
            at_most="at most|up to|no more than",
        ),
        vague=_set("dozens hundreds thousands millions billions scores tens"),
        negations=_set("no not never without nobody none neither nor cannot"),
        negations_after=frozenset(),
        needs_ne=frozenset(),
        negation_prefixes=(),
        negation_suffixes=("n't", "n’t"),
        stops=_set("that whether how who but because"),
        stop_prefixes=(),
    ),
    "de": Lexicon(
        number_languages=("de",),
        articles=frozenset({"ein"}),
        qualifiers=_q(
            almost="fast|beinahe|nahezu|knapp",
            at_least="mindestens|wenigstens|nicht weniger als",
            more_than="mehr als|über",
            about="etwa|rund|ungefähr|circa|ca .|ca",
            less_than="weniger als",
            at_most="höchstens|bis zu",
        ),
        vague=_set(
            "dutzende dutzenden hunderte hunderten tausende tausenden zehntausende zehntausenden hunderttausende"
            " hunderttausenden millionen"
        ),
        negations=_set(
            "kein keine keinen keinem keiner keines nicht nie niemals ohne niemand niemanden niemandem weder"
        ),
        negations_after=_set("kein keine keinen keinem keiner keines nicht nie niemals niemand niemanden niemandem"),
        needs_ne=frozenset(),
        negation_prefixes=(),
        negation_suffixes=(),
        stops=_set("dass daß ob wie aber weil sondern"),
        stop_prefixes=(),
    ),
    "fr": Lexicon(
        number_languages=("fr",),
        articles=frozenset({"un", "une"}),
        qualifiers=_q(
            almost="presque|près de",
            at_least="au moins|pas moins de",
            more_than="plus de",
            about="environ|quelque",
            less_than="moins de",
            at_most="au plus|jusqu'à|jusqu’à",
        ),
        vague=_set("dizaines centaines milliers millions milliards"),
        negations=_set("ne pas aucun aucune sans jamais ni rien"),
        negations_after=frozenset(),
        needs_ne=frozenset({"personne"}),
        negation_prefixes=("n'", "n’"),
        negation_suffixes=(),
        stops=_set("que combien si mais car"),
        stop_prefixes=("qu'", "qu’"),
    ),
    "ru": Lexicon(
        number_languages=(),
        articles=frozenset(),
        qualifiers=_q(
            almost="почти",
            at_least="не менее|минимум|по меньшей мере",
            more_than="более|больше|свыше",
            about="около|примерно",
            less_than="менее|меньше",
            at_most="не более",
        ),
        vague=_set("десятки десятков десятками сотни сотен сотнями тысячи тысячами миллионы миллионов"),
        negations=_set("не нет без ни никто никого никаких ничего"),
        negations_after=frozenset(),
        needs_ne=frozenset(),
        negation_prefixes=(),
        negation_suffixes=(),
        stops=_set("что сколько но а"),
        stop_prefixes=(),
    ),
}

# Words that mean something else in another language: left out when the language is unknown.
AMBIGUOUS = frozenset(
    {
        "pas",  # French "not", Dutch "only just"
        "noch",  # Dutch "nor", German "still"
        "of",  # Dutch "whether", English "of"
        "want",  # Dutch "because", English "want"
        "car",  # French "because", English "car"
        "over",  # Dutch/English "more than", but also "about" (a report over 40 ...): kept per language
        "ten",  # English 10, Dutch "ten minste"
        "sept",  # French 7, English "Sept."
        "cent",  # French 100, English cent
        "cents",
        "mil",  # French 1000, Spanish
        "fast",  # German "almost", English "fast"
        "some",  # English "about", also "some of"
    }
)

# The words that make a number something other than a count, for all languages.
MONTHS = _set(
    "januari februari maart april mei juni juli augustus september oktober november december mrt"
    " january february march may june july august october"
    " januar jänner februar märz mai dezember"
    " janvier février mars avril juin juillet août septembre octobre novembre décembre"
    " января февраля марта апреля мая июня июля августа сентября октября ноября декабря"
    " январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь"
    " feb apr aug sep sept okt oct nov dec dez"
)
MONTHS_CAPITALISED = frozenset({"may", "march"})  # months only as "May", "March" (else a verb)
PERCENT = _set("% ‰ procent percent prozent pct процент процента процентов")
PERCENT_PAIRS = frozenset({("per", "cent"), ("pour", "cent")})
MONEY = _set(
    "€ $ £ ¥ ₽ euro euro's euros eur dollar dollars usd pond pound pounds gbp frank franken franc francs"
    " roebel roebels rubel ruble rubles rouble roubles yen yuan cent cents рубль рубля рублей долларов доллар"
    " доллара евро"
)
DURATIONS = _set(
    "jaar jaren maand maanden week weken dag dagen uur uren minuut minuten seconde seconden eeuw eeuwen jarige"
    " year years month months weeks day days hour hours minute minutes seconds decade decades"
    " jahr jahre jahren jahres monat monate monaten woche wochen tag tage tagen stunde stunden jährige jährigen"
    " an ans année années mois semaine semaines jour jours heure heures"
    " год года году лет месяц месяца месяцев неделя недели недель день дня дней час часа часов минут минуты"
    " km m kg kilometer kilometers kilometre kilometres meter meters metre metres mile miles"
)
REFERENCES = _set("artikel article art paragraaf nummer nr seite page pagina aged статья статьи статье пункт § #")
SCALES: Mapping[str, int] = MappingProxyType(
    {
        **dict.fromkeys(_set("duizend thousand tausend mille тысяча тысячи тысяч тысячу тыс"), 1000),
        **dict.fromkeys(_set("miljoen mln million millions millionen mio миллион миллиона миллионов млн"), 1_000_000),
        **dict.fromkeys(
            _set(
                "miljard mld mrd billion billions bn milliarde milliarden milliard milliards миллиард миллиарда"
                " миллиардов млрд"
            ),
            1_000_000_000,
        ),
    }
)
ABBREVIATIONS = _set("ca bijv bv resp o.a approx env bzw vgl nr art zgn")  # "." is no sentence end
NOT_NEGATING_NEXT = _set("alleen only nur seulement только менее более")  # "niet alleen"
COMPARATIVES = _set("more less fewer meer minder mehr weniger")  # "no more than": a qualifier
THAN = _set("than dan als")
FORWARD_STOPS = _set("en of und oder and et и")  # coordination ends the scan after the hit
FROM = _set("van from von de du с от")  # "van 30 naar 42": a change, whose count is the second number
TO = _set("naar tot to auf à a до bis")
THAT = _set("dat dass que qu")  # a clause after "zonder" / "ohne" / "sans" is denied as a whole
WITHOUT = _set("zonder ohne sans")


@cache
def lexicon(language: str | None) -> Lexicon:
    """The table of `language` (an ISO 639-1 code), or the union of all without the ambiguous words."""
    if language in _TABLES:
        return _TABLES[language]
    tables = [_TABLES[code] for code in LANGUAGES]

    def union(field: str) -> frozenset[str]:
        words: set[str] = set()
        for table in tables:
            words |= getattr(table, field)
        return frozenset(words - AMBIGUOUS)

    qualifiers: dict[tuple[str, ...], str] = {}
    for table in tables:
        qualifiers.update(
            (phrase, q) for phrase, q in table.qualifiers.items() if not (len(phrase) == 1 and phrase[0] in AMBIGUOUS)
        )
    return Lexicon(
        number_languages=tuple(code for table in tables for code in table.number_languages),
        articles=union("articles") | AMBIGUOUS,
        qualifiers=MappingProxyType(qualifiers),
        vague=union("vague"),
        negations=union("negations"),
        negations_after=union("negations_after"),
        needs_ne=union("needs_ne"),
        negation_prefixes=tuple(p for table in tables for p in table.negation_prefixes),
        negation_suffixes=tuple(s for table in tables for s in table.negation_suffixes),
        stops=union("stops"),
        stop_prefixes=tuple(p for table in tables for p in table.stop_prefixes),
    )


# Parts of which every number word of a language is made: a cheap filter before asking text2num.
NUMBER_ROOTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "nl": _set(
            "nul een één twee drie vier vijf zes zeven acht negen tien elf twaalf tig honderd duizend miljoen miljard"
        ),
        "en": _set(
            "zero one two thr four five fif six seven eigh nine ten eleven twel twen thir forty hundred thousand illion"
        ),
        "de": _set(
            "null ein zwei drei vier fünf sechs sieb acht neun zehn elf zwölf zig ßig hundert tausend illion illiard"
        ),
        "fr": _set(
            "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize vingt"
            " trente quarante cinquante soixante cent mil illion illiard"
        ),
    }
)
