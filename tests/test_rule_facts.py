"""Rules that decide on their hits' facts (issue 17): `min_count` and `negated: include | exclude | only`."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.rules import RuleSet, load_rules
from monitor.ingest.articles import read_article
from monitor.matching.engine import FACTS_LIMIT

SEED = Path(__file__).resolve().parent.parent / "seeds" / "003_1649dd4e54c446b5.txt"


def load(tmp_path: Path, rules: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text('version: 1\nlists:\n  arrest: ["*arresta*", "*arrestee*", "*arrester*"]\nrules:\n' + rules)
    return load_rules(path, environ={})


def fired(ruleset: RuleSet, text: str) -> dict[str, list[str]]:
    return {m.rule: [h.text for h in m.hits] for m in ruleset.engine.match_text(text, language="nl")}


def test_min_count_on_the_seed(tmp_path: Path) -> None:
    """Issue 17, done when: the seed's arrests are "bijna achtduizend"; min_count 10000 does not match it."""
    rules = load(
        tmp_path,
        "  - {name: ten-thousand, query: '@arrest', min_count: 10000}\n"
        "  - {name: five-thousand, query: '@arrest', min_count: 5000}\n"
        "  - {name: toll, query: '*dodental*', min_count: 100}\n",
    )
    matches = {m.rule: m for m in rules.engine.match(read_article(SEED))}
    assert sorted(matches) == ["five-thousand", "toll"]
    count = matches["five-thousand"].count
    assert count is not None and (count.value, count.qualifier, count.text) == (8000, "almost", "bijna achtduizend")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Het dodental is opgelopen tot 347.", True),
        ("Het dodental is opgelopen tot 36.", False),
        ("Het dodental liep op tot honderden.", False),  # a vague quantity has no number
        ("Het dodental is niet bekend.", False),  # no number at all
        ("Het dodental steeg tot 12. Het dodental van vorig jaar was 150.", True),  # the largest counts
    ],
)
def test_min_count_takes_the_largest_number(tmp_path: Path, text: str, expected: bool) -> None:
    rules = load(tmp_path, "  - {name: toll, query: '*dodental*', min_count: 100}\n")
    assert ("toll" in fired(rules, text)) is expected


DENIED = "Er werden geen arrestaties verricht."
BOTH = "Er werden geen arrestaties verricht. Later volgden toch arrestaties."


def test_negated_include_exclude_only(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "  - {name: include, query: '*arresta*'}\n"
        "  - {name: exclude, query: '*arresta*', negated: exclude}\n"
        "  - {name: only, query: '*arresta*', negated: only}\n",
    )
    assert fired(rules, DENIED) == {"include": ["arrestaties"], "only": ["arrestaties"]}
    assert fired(rules, "Later volgden arrestaties.") == {"include": ["arrestaties"], "exclude": ["arrestaties"]}
    matches = {m.rule: m for m in rules.engine.match_text(BOTH, language="nl")}
    assert [h.negated for h in matches["include"].hits] == [True, False]
    assert [(h.start, h.negated) for h in matches["exclude"].hits] == [(BOTH.rindex("arrestaties"), False)]
    assert [(h.start, h.negated) for h in matches["only"].hits] == [(BOTH.index("arrestaties"), True)]
    assert (matches["include"].hits_total, matches["exclude"].hits_total, matches["only"].hits_total) == (2, 1, 1)


def test_min_hits_counts_only_the_hits_negated_keeps(tmp_path: Path) -> None:
    rules = load(tmp_path, "  - {name: twice, query: '*arresta*', negated: exclude, min_hits: 2}\n")
    assert fired(rules, BOTH) == {}
    assert fired(rules, BOTH + " En nog meer arrestaties.") == {"twice": ["arrestaties", "arrestaties"]}


def test_facts_are_looked_at_for_a_bounded_number_of_hits(tmp_path: Path) -> None:
    """A million denied hits cost FACTS_LIMIT hits' facts: a later affirmed hit is not looked for (a documented
    limit), and the call returns."""
    rules = load(tmp_path, "  - {name: exclude, query: '*arresta*', negated: exclude}\n")
    denied = "Geen arrestaties. " * (FACTS_LIMIT + 10)
    assert fired(rules, denied + "Toen volgden arrestaties.") == {}
    assert fired(rules, "Toen volgden arrestaties. " + denied) == {"exclude": ["arrestaties"]}


def test_rule_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="negated: Input should be 'include', 'exclude' or 'only'"):
        load(tmp_path, "  - {name: r, query: a, negated: maybe}\n")
    with pytest.raises(Exception, match="min_count: Input should be greater than or equal to 0"):
        load(tmp_path, "  - {name: r, query: a, min_count: -1}\n")


def test_the_count_of_a_facts_rule_comes_from_every_hit_looked_at(tmp_path: Path) -> None:
    """Review: min_count fired on a count beyond the 20 hits kept, and the match then said `count: null`."""
    rules = load(tmp_path, "  - {name: toll, query: '*dodental*', min_count: 100}\n")
    text = "Het dodental is onbekend. " * 25 + "Het dodental is opgelopen tot 347."
    (match,) = rules.engine.match_text(text, language="nl")
    assert (len(match.hits), match.hits_total) == (20, 26)
    assert match.count is not None and match.count.value == 347


def test_min_hits_counts_places_once_with_facts(tmp_path: Path) -> None:
    """Review: with `negated`, one word matched by two terms counted as two hits for min_hits."""
    rules = load(
        tmp_path,
        "  - {name: plain, query: '*arrestee* OR gearresteerd', min_hits: 2}\n"
        "  - {name: facts, query: '*arrestee* OR gearresteerd', min_hits: 2, negated: exclude}\n",
    )
    assert fired(rules, "Tien betogers zijn gisteren gearresteerd.") == {}
    assert set(fired(rules, "Tien betogers zijn gearresteerd en vandaag nog eens gearresteerd.")) == {"plain", "facts"}


def test_realert_on_increase_counts_every_hit(tmp_path: Path) -> None:
    rules = load(tmp_path, "  - {name: toll, query: '*dodental*', realert: 1h, realert_on_increase: true}\n")
    text = "Het dodental is onbekend. " * 25 + "Het dodental is opgelopen tot 347."
    (match,) = rules.engine.match_text(text, language="nl")
    assert match.count is not None and match.count.value == 347
