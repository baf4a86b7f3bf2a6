"""The facts of a hit (issue 17): the count the text attaches to it and whether it is negated.

Each case gives a text, the hit (its first occurrence in the text: `text.index(hit)`), the article's language,
and the expected fact. The seed cases use the real article of seeds/003.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.matching.facts import Count, hit_facts

SEED = next((Path(__file__).resolve().parent.parent / "seeds").glob("003_*.txt")).read_text(encoding="utf-8")


def facts(text: str, hit: str, language: str | None) -> tuple[Count | None, bool]:
    start = text.index(hit)
    return hit_facts(text, start, start + len(hit), language)


def count(text: str, hit: str, language: str | None) -> tuple[int | float | None, str | None, str] | None:
    found, _ = facts(text, hit, language)
    return None if found is None else (found.value, found.qualifier, found.text)


COUNTS = [
    # a change gives the count now (review of issue 17)
    ("Het dodental is gestegen van 30 naar 42.", "dodental", "nl", (42, None, "42")),
    ("The death toll rose from 30 to 42.", "toll", "en", (42, None, "42")),
    ("Die Zahl der Todesopfer stieg von 30 auf 42.", "Todesopfer", "de", (42, None, "42")),
    ("Le bilan est passé de 30 à 42 morts.", "bilan", "fr", (42, None, "42")),
    ("Число погибших выросло с 30 до 42.", "погибших", "ru", (42, None, "42")),
    (
        "De politie arresteerde niet minder dan 40 mensen.",
        "arresteerde",
        "nl",
        (40, "at_least", "niet minder dan 40"),
    ),
    (
        "Die Polizei nahm nicht weniger als 40 Menschen fest.",
        "Polizei",
        "de",
        (40, "at_least", "nicht weniger als 40"),
    ),
    # Dutch
    ("ten minste veertig doden", "doden", "nl", (40, "at_least", "ten minste veertig")),
    ("Het dodental is opgelopen tot 347.", "dodental", "nl", (347, None, "347")),
    ("Bij de aanslag vielen 36 doden.", "doden", "nl", (36, None, "36")),
    ("64 mensen kwamen om het leven", "om het leven", "nl", (64, None, "64")),
    ("Er werden honderden arrestaties verricht", "arrestaties", "nl", (None, "vague", "honderden")),
    ("Er werden op 5 januari 2022 arrestaties verricht", "arrestaties", "nl", None),
    ("Volgens de politie zijn ruim 8.000 mensen opgepakt", "opgepakt", "nl", (8000, "more_than", "ruim 8.000")),
    ("Er zijn 1,5 miljoen mensen gevlucht", "gevlucht", "nl", (1_500_000, None, "1,5 miljoen")),
    ("Het dodental steeg tot vierhonderdzevenenzestig", "dodental", "nl", (467, None, "vierhonderdzevenenzestig")),
    ("zo'n twee miljoen mensen demonstreerden", "demonstreerden", "nl", (2_000_000, "about", "zo'n twee miljoen")),
    ("Er vielen ca. 40 doden bij de rellen", "doden", "nl", (40, "about", "ca. 40")),
    ("Er werden bijna\nachtduizend mensen gearresteerd", "gearresteerd", "nl", (8000, "almost", "bijna\nachtduizend")),
    ("Zaterdag 12 arrestaties, 30 agenten gewond", "arrestaties", "nl", (12, None, "12")),
    ("Bij 3 aanslagen vielen 12 doden", "doden", "nl", (12, None, "12")),
    ("Er werd 2,5 ton drugs in beslag genomen", "drugs", "nl", (2.5, None, "2,5")),
    ("Er zijn 1.000.000 mensen gevlucht", "gevlucht", "nl", (1_000_000, None, "1.000.000")),
    ("Er werden 8 000 mensen opgepakt", "opgepakt", "nl", (8000, None, "8 000")),
    ("De politie heeft tweehonderdvijftig mensen opgepakt", "opgepakt", "nl", (250, None, "tweehonderdvijftig")),
    ("Er vielen 40 doden en 120 gewonden", "gewonden", "nl", (120, None, "120")),
    ("Een man werd gearresteerd", "gearresteerd", "nl", None),
    ("Een 36-jarige man werd gearresteerd", "gearresteerd", "nl", None),
    ("De partij kreeg 40 procent van de stemmen", "stemmen", "nl", None),
    ("Hij kreeg 12 jaar cel voor de aanslag", "aanslag", "nl", None),
    ("Om 12:30 werden betogers opgepakt", "opgepakt", "nl", None),
    ("De boete van 500 euro na de arrestatie", "arrestatie", "nl", None),
    ("Op de G7-top werden betogers gearresteerd", "gearresteerd", "nl", None),
    ("Er vielen 40 doden. De politie verrichtte arrestaties.", "arrestaties", "nl", None),
    ("Er vielen 40 doden; de politie verrichtte arrestaties", "arrestaties", "nl", None),
    ("Er vielen 40 doden\n\nDe politie verrichtte arrestaties", "arrestaties", "nl", None),
    ("Er vielen 40 doden\nbij de arrestaties", "arrestaties", "nl", (40, None, "40")),
    # English
    ("The death toll has risen to 1,200", "death toll", "en", (1200, None, "1,200")),
    ("Nearly 2 million people fled the city", "fled", "en", (2_000_000, "almost", "Nearly 2 million")),
    ("At least twenty-five people were arrested", "arrested", "en", (25, "at_least", "At least twenty-five")),
    ("Police arrested one hundred and twenty protesters", "arrested", "en", (120, None, "one hundred and twenty")),
    ("Up to 300 people were detained", "detained", "en", (300, "at_most", "Up to 300")),
    ("The toll rose to 1.5 million", "toll", "en", (1_500_000, None, "1.5 million")),
    ("Dozens were arrested", "arrested", "en", (None, "vague", "Dozens")),
    ("One man was arrested", "arrested", "en", None),
    ("On January 5 police made arrests", "arrests", "en", None),
    ("The May 5 arrests", "arrests", "en", None),
    ("COVID-19 arrests rose", "arrests", "en", None),
    ("$1.5 million was seized in the arrests", "arrests", "en", None),
    ("He was arrested in 1999", "arrested", "en", None),
    ("Turnout was 55 per cent after the arrests", "arrests", "en", None),
    # German
    ("mindestens dreihundert Todesopfer", "Todesopfer", "de", (300, "at_least", "mindestens dreihundert")),
    ("Mehr als 1.000 Menschen wurden festgenommen", "festgenommen", "de", (1000, "more_than", "Mehr als 1.000")),
    ("Rund 2,5 Millionen Menschen flohen", "flohen", "de", (2_500_000, "about", "Rund 2,5 Millionen")),
    ("Bis zu zwei Millionen Menschen flohen", "flohen", "de", (2_000_000, "at_most", "Bis zu zwei Millionen")),
    ("Tausende wurden verhaftet", "verhaftet", "de", (None, "vague", "Tausende")),
    ("Am 5. Januar wurden Demonstranten festgenommen", "festgenommen", "de", None),
    ("Ein Mann wurde verhaftet", "verhaftet", "de", None),
    ("Der 36 Jahre alte Mann wurde verhaftet", "verhaftet", "de", None),
    ("40 Menschen starben am 5. Januar bei Protesten", "Protesten", "de", (40, None, "40")),  # "5." ends nothing
    ("Bei dem Erdbeben gab es 1.200 Todesopfer", "Todesopfer", "de", (1200, None, "1.200")),
    # French
    ("au moins quarante morts", "morts", "fr", (40, "at_least", "au moins quarante")),
    ("Près de 8 000 personnes ont été arrêtées", "arrêtées", "fr", (8000, "almost", "Près de 8 000")),
    ("Le bilan est de quarante-deux morts", "morts", "fr", (42, None, "quarante-deux")),
    ("Des centaines d'arrestations", "arrestations", "fr", (None, "vague", "centaines")),
    ("Un homme a été arrêté", "arrêté", "fr", None),
    ("Le 5 janvier, des manifestants ont été arrêtés", "arrêtés", "fr", None),
    ("Il a été condamné à 20 ans pour haute trahison", "trahison", "fr", None),
    # Russian (digits only)
    ("Число погибших достигло 42", "погибших", "ru", (42, None, "42")),
    ("Около 1,5 миллиона человек бежали", "бежали", "ru", (1_500_000, "about", "Около 1,5 миллиона")),
    ("Не менее 40 человек погибли", "погибли", "ru", (40, "at_least", "Не менее 40")),
    ("Задержаны сотни человек", "Задержаны", "ru", (None, "vague", "сотни")),
    ("5 января были задержаны люди", "задержаны", "ru", None),
    ("Погибли 5 тысяч человек", "Погибли", "ru", (5000, None, "5 тысяч")),
    # language unknown: the cues of all languages, without the ambiguous ones
    ("ten minste veertig doden", "doden", None, (40, "at_least", "ten minste veertig")),
    ("at least 40 people were killed", "killed", None, (40, "at_least", "at least 40")),
    ("Er waren ten doden", "doden", None, None),
    ("au moins quarante morts", "morts", None, (40, "at_least", "au moins quarante")),
    ("Число погибших достигло 42", "погибших", None, (42, None, "42")),
]


@pytest.mark.parametrize(
    ("text", "hit", "language", "expected"), COUNTS, ids=[f"{case[2]}:{case[0][:40]}" for case in COUNTS]
)
def test_count(text: str, hit: str, language: str | None, expected: object) -> None:
    assert count(text, hit, language) == expected


def test_count_values_are_int_when_whole() -> None:
    found, _ = facts("Er zijn 1,5 miljoen mensen gevlucht", "gevlucht", "nl")
    assert found is not None and type(found.value) is int
    found, _ = facts("Er werd 2,5 ton drugs in beslag genomen", "drugs", "nl")
    assert found is not None and type(found.value) is float


SEED_COUNTS = [
    ("gearresteerd", Count(8000, "almost", "bijna achtduizend")),
    ("dodental", Count(164, None, "164")),
    ("Aantal doden", None),  # the heading is its own sentence
    ("soldaten", Count(16, None, "zestien")),
    ("inwoners", Count(19_000_000, None, "negentien miljoen")),
    ("relschoppers", None),
]


@pytest.mark.parametrize(("hit", "expected"), SEED_COUNTS, ids=[case[0] for case in SEED_COUNTS])
def test_seed_counts(hit: str, expected: Count | None) -> None:
    assert facts(SEED, hit, "nl") == (expected, False)
    assert facts(SEED, hit, None) == (expected, False)


NEGATIONS = [
    # negated
    ("Er werden geen arrestaties verricht", "arrestaties", "nl", True),
    ("Hij werd gewaarschuwd Guaidó niet te arresteren", "arresteren", "nl", True),
    ("Er vielen geen doden", "doden", "nl", True),
    ("De politie arresteerde hem niet", "arresteerde", "nl", True),
    ("Hij is nooit gearresteerd", "gearresteerd", "nl", True),
    ("no one was arrested", "arrested", "en", True),
    ("The police didn't arrest anyone", "arrest", "en", True),
    ("He wasn’t arrested", "arrested", "en", True),
    ("Nobody was killed", "killed", "en", True),
    ("De actievoerders verlieten het pand zonder dat er iemand werd gearresteerd", "gearresteerd", "nl", True),
    ("Die Demonstration endete, ohne dass jemand verhaftet wurde", "verhaftet", "de", True),
    ("La manifestation s'est terminée sans qu'aucun militant soit arrêté", "arrêté", "fr", True),
    ("Niemand wurde verhaftet", "verhaftet", "de", True),
    ("Die Polizei verhaftete ihn nicht", "verhaftete", "de", True),
    ("Es gab keine Toten", "Toten", "de", True),
    ("„Wir haben niemanden festgenommen“", "festgenommen", "de", True),
    ("Personne n'a été arrêté", "arrêté", "fr", True),
    ("Il n'a jamais été arrêté", "arrêté", "fr", True),
    ("Aucune arrestation n'a eu lieu", "arrestation", "fr", True),
    ("Никто не был арестован", "арестован", "ru", True),
    ("Обошлось без жертв", "жертв", "ru", True),
    ("Er werden geen arrestaties verricht", "arrestaties", None, True),
    ("no one was arrested", "arrested", None, True),
    ("Die Polizei verhaftete ihn nicht", "verhaftete", None, True),
    ("Il n'a pas été arrêté", "arrêté", "fr", True),
    ("Hij werd niet zonder arrestaties", "arrestaties", "nl", True),  # double negation is not resolved
    # not negated
    ("Het is niet bekend hoeveel mensen zijn gearresteerd", "gearresteerd", "nl", False),
    ("Er vielen geen doden, tal van mensen raakten gewond", "tal", "nl", False),
    ("Er vielen geen doden, tal van mensen raakten gewond", "gewond", "nl", False),
    ("Hij werd niet alleen gearresteerd maar ook veroordeeld", "gearresteerd", "nl", False),
    ("Hij werd gearresteerd zonder aanklacht", "gearresteerd", "nl", False),
    ("Hij werd gearresteerd en niet vrijgelaten", "gearresteerd", "nl", False),
    ("Hij werd pas gisteren gearresteerd", "gearresteerd", "nl", False),
    ("Hij werd pas gisteren gearresteerd", "gearresteerd", None, False),
    ("Not only was he arrested", "arrested", "en", False),
    ("Police did not say how many were arrested", "arrested", "en", False),
    ("No fewer than 40 people were arrested", "arrested", "en", False),
    ("Nicht nur Demonstranten wurden verhaftet", "verhaftet", "de", False),
    ("Die Polizei hat noch 40 Menschen verhaftet", "verhaftet", None, False),
    ("Il n'est pas certain que des manifestants ont été arrêtés", "arrêtés", "fr", False),
    ("Des manifestants ont été arrêtés", "arrêtés", "fr", False),
    ("Не менее 40 человек погибли", "погибли", "ru", False),
    ("Неизвестно, сколько человек арестовано", "арестовано", "ru", False),
    ("Geen van de vijf verdachten werd gearresteerd", "gearresteerd", "nl", False),  # the cue is too far
    ("De politie arresteerde niet alleen de chauffeur, maar ook twee passagiers", "arresteerde", "nl", False),
    ("Die Polizei verhaftete nicht nur den Fahrer", "verhaftete", "de", False),
    ("Volgens de politie zijn 40 mensen gearresteerd. Niemand werd vrijgelaten.", "gearresteerd", "nl", False),
]


@pytest.mark.parametrize(
    ("text", "hit", "language", "expected"),
    NEGATIONS,
    ids=[f"{case[2]}:{case[1]}:{case[0][:40]}" for case in NEGATIONS],
)
def test_negated(text: str, hit: str, language: str | None, expected: bool) -> None:
    assert facts(text, hit, language)[1] is expected


SEED_NEGATIONS = [
    ("gearresteerd", False),
    ("demonstranten", True),  # "om zonder waarschuwing op demonstranten te schieten"
    ("vreedzame betogers", True),  # "nooit op vreedzame betogers zouden schieten"
    ("groeperingen", False),  # "lid van radicaalislamitische groeperingen"
    ("welke groeperingen", True),  # "zegt niet om welke groeperingen": a known false negation
    ("dodental", False),
]


@pytest.mark.parametrize(("hit", "expected"), SEED_NEGATIONS, ids=[case[0] for case in SEED_NEGATIONS])
def test_seed_negations(hit: str, expected: bool) -> None:
    assert facts(SEED, hit, "nl")[1] is expected


def test_offsets_out_of_range_and_empty() -> None:
    assert hit_facts("", 0, 0, "nl") == (None, False)
    assert hit_facts("40 doden", 50, 60, "nl") == (Count(40, None, "40"), False)  # clamped: an empty hit at the end
    assert hit_facts("40 doden", -5, 2, None) == (None, False)  # the hit is the number itself
    assert hit_facts("40 doden", 3, 8, "xx") == (Count(40, None, "40"), False)


def test_hostile_one_word_article() -> None:
    text = "a" * 10_000_000
    assert hit_facts(text, 5_000_000, 5_000_010, None) == (None, False)
    assert hit_facts(text, 0, len(text), "nl") == (None, False)


def test_hostile_long_sentence_of_number_words() -> None:
    half = "veertig " * 600_000
    text = f"{half}doden {half}"
    assert facts(text, "doden", "nl") == (Count(40, None, "veertig"), False)
    assert facts(text, "doden", None) == (Count(40, None, "veertig"), False)


def test_hostile_long_sentence_of_digits_and_separators() -> None:
    text = "1.000." * 1_000_000 + " doden " + "000 " * 1_000_000
    assert facts(text, "doden", "nl") == (None, False)
    text = "1 " * 2_000_000 + "doden " + "1 " * 2_000_000
    assert facts(text, "doden", "en") == (Count(1, None, "1"), False)


def test_hostile_blank_lines_and_cues() -> None:
    text = "\n \n" * 1_000_000 + "geen doden" + " niet" * 1_000_000
    assert facts(text, "doden", "nl") == (None, True)
    text = "ten " * 1_000_000 + "doden"
    assert facts(text, "doden", None) == (None, False)
