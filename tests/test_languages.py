"""Languages: detection (lingua), the per-file override, per-language queries and lists (docs/rules.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.rules import load_rules
from monitor.errors import RulesError
from monitor.ingest.articles import read_article
from monitor.matching.language import _words, article_language, detect, languages, suffix_language

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
LABELLED = ROOT / "tests" / "data" / "languages" / "articles"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Er vielen 164 doden.", None),  # a short text the detector is not sure of: unknown, every query applies
        ("Het OVVO-verdrag.", "nl"),
        ("He was placed under arrest on Monday.", "en"),
        ("Die OVKS schickt Truppen nach Kasachstan.", "de"),
        ("Un arrêté préfectoral interdit la manifestation.", "fr"),
        ("Никто не был арестован.", "ru"),
        # long texts go to the low-accuracy models
        ("In Kazachstan zijn volgens de autoriteiten inmiddels bijna achtduizend mensen gearresteerd. " * 4, "nl"),
        ("The death toll from the earthquake has risen to 347, the authorities said on Tuesday. " * 4, "en"),
        ("Die Zahl der Todesopfer nach dem Erdbeben ist auf mindestens dreihundert gestiegen. " * 4, "de"),
    ],
)
def test_detects_the_five_languages(text: str, language: str | None) -> None:
    assert detect(text) == language


def test_plausible_languages_all_apply() -> None:
    """A short Dutch sentence that reads as French to the detector is of unknown language: the Dutch query of a
    rule still applies (review: such an article lost its alert)."""
    found = languages("Massa-arrestaties in Almaty.")
    assert found.language is None and found.admits("nl") and found.admits("fr")
    mixed = languages("Die Polizei hat in Almaty mehr als hundert Menschen festgenommen, meldet die Regierung. " * 4)
    assert mixed.language == "de" and mixed.admits("de") and not mixed.admits("ru")


def test_a_text_without_letters_has_no_language() -> None:
    assert detect("164 — 2022-01-05 (12:30)") is None
    assert detect("") is None


def test_a_huge_text_is_read_at_its_start_middle_and_end() -> None:
    """A 10 MB article costs what 1,000 characters do (333 each of its start, middle and end): the Dutch start
    is seen, and its Dutch queries apply, though most of the file is English. Its chunks differ: its language
    is unknown (its facts are read with every language's words)."""
    text = "Bijna achtduizend mensen zijn gearresteerd in Almaty, meldt de regering. " * 30
    found = languages(text + "The rest of this file is English. " * 300_000)
    assert found.admits("nl") and found.admits("en") and found.language is None
    assert not found.admits("de")


HEADER = (
    "Skip to main content. Sign in | Subscribe now | World News Business Sport Opinion Culture. "
    "Breaking news live updates, share this article on Facebook, Twitter and LinkedIn.\n\n"
)
FOOTER = (
    "\n\nRead more: latest news from around the world. Sign up for our daily newsletter and get the top "
    "stories delivered to your inbox every morning. Cookies help us deliver our services. By using our "
    "services you agree to our use of cookies. Privacy policy. Terms of use. Contact us. Advertise with us. "
    "Careers. Accessibility statement. Manage your subscription. Download our app for iPhone and Android. "
    "Follow us on social media. Most read this week: Storm hits coast; Markets rally after rate decision."
)

COOKIES = (
    "We value your privacy. We and our partners use cookies and similar technologies to store and access "
    "information on your device, to show you personalised ads and content, for ad and content measurement, "
    "audience research and services development. You can accept all cookies or manage your preferences at "
    "any time by clicking Cookie settings at the bottom of the page.\nAccept all | Reject all | Manage "
    "preferences\n\nSkip to main content | Home | News | World | Business | Sport | Weather\n\n"
)
SHARE = (
    "\n\nShare this article: Facebook Twitter Email. Related stories. Most popular. Sign up for our newsletter "
    "to get the top stories in your inbox. About us | Contact | Terms and conditions | Privacy notice | "
    "Cookie policy. Copyright 2024. All rights reserved."
)


@pytest.mark.parametrize("body", sorted((ROOT / "tests/data/articles").glob("*.txt"))[:12], ids=lambda p: p.name)
def test_a_short_article_inside_english_page_text_keeps_its_language(body: Path) -> None:
    """Review: with three pieces of 150 characters from the start, middle and end, all three could land in an
    English header and footer, and the Dutch article between them lost its Dutch queries."""
    found = languages(HEADER + read_article(body).text + FOOTER)
    assert found.admits("nl") and found.admits("en")
    assert found.language in {"nl", None}
    banner = COOKIES + read_article(body).text + SHARE  # a second review: a banner of ~500 characters
    assert 1000 < len(banner) <= 3000
    assert languages(banner).admits("nl") and languages(banner).language != "en"


def test_an_article_between_a_header_and_a_footer_is_never_of_the_header_s_language() -> None:
    """Review: a vote of the pieces made a seed between an English header and footer English, and its Dutch
    counts were read as English words (a `min_count` alert lost). Its chunks differ: its language is unknown,
    and its facts are read with every language's words."""
    text = HEADER + read_article(SEEDS / "003_1649dd4e54c446b5.txt").text + FOOTER * 2
    found = languages(text)
    assert found.language is None and found.plausible == {"nl", "en"}


def test_a_run_cut_off_by_the_scan_bound_is_no_word() -> None:
    """Review: the scan for words stops 20 times a part's size into the text, and the end of that window let
    the start of a longer run pass as a word of 40 characters."""
    assert _words("a " * 5 + "x" * 10_000, 0, 20) == ["a"] * 5


def test_a_quotation_in_another_language_makes_both_plausible() -> None:
    """A Dutch article that ends with an English statement: both languages' queries apply (its language is
    unknown: its chunks differ). One detection of a 1,000-character sample found one of the two: lingua's
    confidences on such a sample are 1.0 and 0.0."""
    dutch = read_article(SEEDS / "003_1649dd4e54c446b5.txt").text
    english = " ".join(read_article(path).text for path in sorted(LABELLED.glob("en_*.txt"))[:3])
    found = languages(dutch + "\n\n" + english)
    assert found.language is None
    assert found.plausible == {"nl", "en"}


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("in/bericht.de.txt", "de"),
        ("in/bericht.EN.txt", "en"),
        ("in/bericht.txt", None),
        ("in/v1.2.txt", None),
        ("in/bericht.xx.txt", None),  # not a language code
        ("in/feed.nl/bericht.txt", None),  # a folder's suffix does not count
    ],
)
def test_a_language_suffix_overrides_detection(path: str, language: str | None) -> None:
    assert suffix_language(path) == language


def load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\n" + body, encoding="utf-8")
    return load_rules(path, environ={})


RULES = """\
lists:
  arrest:
    nl: ["*arresta*", "*arrestee*"]
    en: [arrested, arrests]
  plain: [CSTO]
rules:
  - name: arrests
    query:
      nl: "@arrest"
      en: "@arrest OR \\"under arrest\\""
  - name: csto
    query: "@plain"
  - name: any-arrest
    query: "@arrest"
  - name: stemmed
    stem: true
    query:
      en: arrest
      nl: arrestatie
"""


def fired(ruleset: object, text: str, language: str | None = None) -> list[str]:
    return [m.rule for m in ruleset.engine.match_text(text, language=language)]  # type: ignore[attr-defined]


def test_a_query_per_language_applies_to_articles_in_that_language(tmp_path: Path) -> None:
    rules = load(tmp_path, RULES)
    assert fired(rules, "Bijna achtduizend mensen zijn gearresteerd in Almaty.") == ["arrests", "any-arrest", "stemmed"]
    assert fired(rules, "Police arrested eighty protesters in Almaty on Monday.") == [
        "arrests",
        "any-arrest",
        "stemmed",
    ]
    # English words in a Dutch article: the Dutch query decides, and it has none of them
    assert fired(rules, "De krant kopte 'Masimov under arrest' boven het artikel over Kazachstan.") == []
    # a plain query applies to every language; a list in it holds all of its languages' items
    assert fired(rules, "Die CSTO schickt Truppen; Polizisten arrested Demonstranten.") == ["csto", "any-arrest"]


def test_the_language_can_be_given(tmp_path: Path) -> None:
    rules = load(tmp_path, RULES)
    text = "Police arrested eighty protesters in Almaty on Monday."
    assert fired(rules, text, language="nl") == ["any-arrest"]
    article = tmp_path / "bericht.nl.txt"
    article.write_text("date 2022-01-05 " + text, encoding="utf-8")
    parsed = read_article(article)
    assert article_language(parsed.path, parsed.text) == "nl"
    assert [m.rule for m in rules.engine.match(parsed)] == ["any-arrest"]  # type: ignore[attr-defined]
    (match,) = rules.engine.match(parsed)  # type: ignore[attr-defined]
    assert match.language == "nl"


def test_stem_true_stems_with_the_query_language(tmp_path: Path) -> None:
    rules = load(tmp_path, RULES)
    assert "stemmed" in fired(rules, "The police kept arresting students in Almaty on Monday.")
    assert "stemmed" in fired(rules, "De politie meldt tientallen arrestaties in Almaty.")
    assert "stemmed" not in fired(rules, "Het arrest van de Hoge Raad werd maandag uitgesproken.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "rules:\n  - name: r\n    query: {xx: a}\n",
            "rules.yaml:4:5: rule 'r': query: unknown language code 'xx'",
            id="unknown-language",
        ),
        pytest.param(
            "rules:\n  - name: r\n    query: {}\n",
            "rules.yaml:4:5: rule 'r': query: expected a query, or a mapping of language codes",
            id="empty-mapping",
        ),
        pytest.param(
            "rules:\n  - name: r\n    query:\n      nl: a\n      en: 'b AND )'\n",
            "rules.yaml:6:18: rule 'r' (en): unexpected ')'",
            id="query-error-names-the-language",
        ),
        pytest.param(
            "lists:\n  l: {zz: [a]}\nrules:\n  - name: r\n    query: '@l'\n",
            "rules.yaml:3:3: lists.l: unknown language code 'zz'",
            id="list-language",
        ),
        pytest.param(
            "lists:\n  l: {en: [a]}\nrules:\n  - name: r\n    query: {nl: '@l'}\n",
            "rules.yaml:6:18: rule 'r' (nl): list @l is empty",
            id="list-without-the-language",
        ),
    ],
)
def test_language_mistakes_are_reported_with_their_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        load(tmp_path, body)
    assert message in str(caught.value), str(caught.value)


def test_an_upper_case_language_code_is_refused(tmp_path: Path) -> None:
    """Review: `{NL: ...}` loaded and never matched (detection gives "nl")."""
    with pytest.raises(RulesError, match="unknown language code 'NL' \\(write 'nl'\\)"):
        load(tmp_path, "rules:\n  - name: r\n    query: {NL: gearresteerd}\n")


@pytest.mark.parametrize("name", ["wat.is.txt", "item.id.txt", "report.so.txt"])
def test_a_suffix_of_another_language_is_no_override(name: str) -> None:
    """Review: any of lingua's codes as a suffix turned off every per-language rule for the file."""
    assert suffix_language(f"in/{name}") is None


def test_boilerplate_at_the_top_does_not_decide_alone() -> None:
    english = "Please accept our cookies and privacy policy to continue reading this page. " * 30
    dutch = "In Kazachstan zijn bijna achtduizend mensen gearresteerd na de onlusten van vorige week. " * 60
    found = languages(english + dutch)
    assert found.admits("nl") and found.language != "en"
