"""The story index (monitor.matching.stories): features, signatures, assignment, eviction, rebuild, bounds."""

from __future__ import annotations

import hashlib
import random
import string
import time
import tracemalloc

import pytest

from monitor.matching.stories import (
    MAGIC,
    MAX_TERMS,
    MAX_WORDS,
    THRESHOLD,
    StoryEntry,
    StoryIndex,
    decode,
    signature,
    terms,
    words,
)
from tests.story_texts import QUAKE_A, QUAKE_B, QUAKE_C, QUAKE_OTHER, TRIAL_A, TRIAL_B

HOUR = 3600.0
NOW = 1_800_000_000.0


def entry(
    text: str, path: str, created: float = NOW, rules: tuple[str, ...] = ("quake",), at: float = NOW
) -> StoryEntry:
    content = hashlib.sha256(text.encode()).hexdigest()
    return StoryEntry(content, "", path, 0, at, created, signature(text), rules)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "date 2023-02-06T04:30\nHet dodental in Türkiye is 164. De Straße van Kahramanmaraş: 7 doden in 2023",
            ["turki", "#164", "stras", "kahra", "#2023"],
            id="names-not-sentence-starts",
        ),
        pytest.param(
            "Een beving van 7,8 en 7.8 en 1,500 en 1.500 doden; 04.17 uur", ["#7.8", "#1500", "#04.17"], id="numbers"
        ),
        pytest.param(
            "De Minister zei dat De Vries en de ECB en Het kabinet", ["minis", "vries", "ecb"], id="stop-words"
        ),
    ],
)
def test_terms_are_names_and_numbers(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_words_are_salient_folded_words() -> None:
    assert words("Het dodental in Türkiye is 164; de straße, 7 doden, the, über, und") == [
        "dodental",
        "turkiye",
        "strasse",
        "doden",
    ]


def evidence(one: str, other: str, *window: str) -> float:
    """What `one` shares with `other` in a window of `other` and `window`."""
    index = StoryIndex()
    for number, text in enumerate((other, *window)):
        index.add(entry(text, f"{number}.txt"))
    probe = signature(one)
    found = set(decode(signature(other))[0])
    return sum(value for term, value in index.weights(probe).items() if term in found)


@pytest.mark.parametrize(
    ("one", "other", "joins"),
    [
        (QUAKE_A, QUAKE_B, True),
        (QUAKE_A, QUAKE_C, True),
        (QUAKE_B, QUAKE_C, True),
        (QUAKE_A, QUAKE_OTHER, False),
        (TRIAL_A, TRIAL_B, False),
        (QUAKE_A, TRIAL_A, False),
    ],
    ids=["quake-ab", "quake-ac", "quake-bc", "two-quakes", "two-trials", "quake-trial"],
)
def test_evidence_separates_same_event_from_shared_keywords(one: str, other: str, joins: bool) -> None:
    assert (evidence(one, other, QUAKE_OTHER, TRIAL_A, TRIAL_B) >= THRESHOLD) is joins


def test_a_term_common_in_the_window_weighs_less() -> None:
    rare = evidence(QUAKE_B, QUAKE_A, *[f"In Utrecht, news of day {n}." for n in range(300)])
    common = evidence(QUAKE_B, QUAKE_A, *[f"In Syria, Erdogan said on Monday, day {n}." for n in range(300)])
    assert common < rare - 0.5


def test_same_event_from_outlets_joins_one_story_and_other_events_start_their_own() -> None:
    index = StoryIndex()
    first, ref = index.assign(entry(QUAKE_A, "a.txt"))
    assert ref.started and ref.story == "story_" + first.content_hash[:16] and ref.version == 1
    for text, path in ((QUAKE_B, "b.txt"), (QUAKE_C, "c.txt")):
        _, joined = index.assign(entry(text, path, NOW + 60))
        assert (joined.story, joined.started, joined.version) == (ref.story, False, 1)
        assert joined.similarity >= THRESHOLD
    _, other = index.assign(entry(QUAKE_OTHER, "nepal.txt", NOW + 120))
    assert other.started and other.story != ref.story
    _, trial_a = index.assign(entry(TRIAL_A, "astana.txt", rules=("treason",)))
    _, trial_b = index.assign(entry(TRIAL_B, "minsk.txt", rules=("treason",)))
    assert trial_a.started and trial_b.started and trial_a.story != trial_b.story


def test_a_near_duplicate_joins_and_a_new_version_continues_its_file() -> None:
    index = StoryIndex()
    _, ref = index.assign(entry(QUAKE_A, "a.txt"))
    _, copy = index.assign(entry(QUAKE_A + " Updated at 10:00.", "mirror.txt"))
    assert copy.story == ref.story and copy.similarity >= THRESHOLD
    first = index.assign(entry(QUAKE_A, "a.txt"))[0]
    edited = entry(TRIAL_A, "a.txt")  # whatever the new text: the same file's story
    placed, version = index.assign(edited, previous=first)
    assert (version.story, version.version, version.previous_version) == (ref.story, 2, first.content_hash)
    _, third = index.assign(entry(QUAKE_B, "a.txt"), previous=placed)
    assert third.version == 3


def test_rules_that_disagree_double_the_evidence_needed_and_a_near_duplicate_joins_anyway() -> None:
    index = StoryIndex(threshold=3.0)  # QUAKE_B shares about 4.3 with QUAKE_A here
    index.assign(entry(QUAKE_A, "a.txt", rules=("quake",)))
    assert index.assign(entry(QUAKE_B, "b.txt", rules=("other",)))[1].started
    assert not index.assign(entry(QUAKE_C, "c.txt", rules=("quake", "other")))[1].started
    assert not index.assign(entry(QUAKE_A + " More.", "d.txt", rules=("other",)))[1].started


def test_dates_beyond_the_window_start_a_new_story() -> None:
    index = StoryIndex(window=72 * HOUR)
    index.assign(entry(QUAKE_A, "a.txt", at=NOW))
    assert index.assign(entry(QUAKE_B, "b.txt", at=NOW + 80 * HOUR))[1].started
    assert not index.assign(entry(QUAKE_C, "c.txt", at=NOW + 60 * HOUR))[1].started


def test_eviction_drops_what_arrived_before_the_window() -> None:
    index = StoryIndex(window=72 * HOUR)
    index.assign(entry(QUAKE_A, "a.txt", created=NOW))
    index.assign(entry(TRIAL_A, "t.txt", created=NOW + 10 * HOUR))
    assert index.evict(NOW + 73 * HOUR) == 1 and len(index) == 1
    assert index.assign(entry(QUAKE_B, "b.txt", created=NOW + 73 * HOUR))[1].started  # its story has gone
    assert index.evict(NOW + 1000 * HOUR) == 2 and len(index) == 0


def test_rebuild_from_rows_equals_incremental() -> None:
    texts = [QUAKE_A, QUAKE_OTHER, QUAKE_B, TRIAL_A, QUAKE_C, TRIAL_B]
    incremental = StoryIndex()
    rows = []
    for seq, text in enumerate(texts, 1):
        placed, _ = incremental.assign(entry(text, f"{seq}.txt", NOW + seq, ("quake", "treason")))
        rows.append(StoryEntry(*[getattr(placed, name) for name in StoryEntry.__slots__[:-1]], seq=seq))
    rebuilt = StoryIndex()
    rebuilt.load(rows)
    assert rebuilt.seq == len(texts)
    probe = entry(QUAKE_A + " Toll rises.", "new.txt", NOW + 100)
    assert incremental.assign(probe)[1] == rebuilt.assign(probe)[1]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("date 2024-01-01\n" + "x" * 10_000_000, id="one-10MB-word"),
        pytest.param(" ".join(f"w{n}ord" for n in range(1_000_000)), id="1M-distinct-words"),
    ],
)
def test_hostile_articles_cost_what_a_small_one_does(text: str) -> None:
    ordinary = " ".join([QUAKE_A, QUAKE_B, QUAKE_C] * 40)
    started = time.process_time()
    for _ in range(5):
        signature(ordinary)
    small = (time.process_time() - started) / 5
    started = time.process_time()
    value = signature(text)
    assert value == b"" or value.startswith(MAGIC)  # empty: too few salient words (the one huge word)
    assert time.process_time() - started < max(10 * small, 0.05)
    assert len(words(text)) <= MAX_WORDS and len(terms(text)) <= MAX_TERMS


def test_articles_with_too_few_salient_words_join_no_story_by_similarity() -> None:
    """Review: every article without salient words (a Chinese text, stop words only) had the same MinHash,
    so all of them became one story."""
    from monitor.matching.stories import signature

    assert signature("地震造成至少一百人死亡救援人员仍在搜救") == b""
    assert signature("de het een en van in op te dat die") == b""
    assert signature("Aardbeving Turkije dodental reddingswerkers Gaziantep Kahramanmaras") != b""


def test_signatures_of_the_older_format_have_no_terms() -> None:
    """Rows stored before the terms (MinHash values, 512 bytes) decode as no signature: they join by path only."""
    assert decode(bytes(range(256)) * 2) == ((), ())
    assert decode(b"") == ((), ())


def test_a_near_duplicate_without_names_joins_by_its_word_sketch() -> None:
    text = "de storm trekt over het land en bomen waaien om terwijl treinen stilstaan en vluchten worden geschrapt"
    index = StoryIndex()
    _, first = index.assign(entry(text, "a.txt", rules=()))
    _, copy = index.assign(entry(text + " vanavond", "b.txt", rules=("other",)))
    assert copy.story == first.story
    _, other = index.assign(entry("het kabinet overlegt vandaag met boeren over stikstof en natuur", "c.txt"))
    assert other.started


def test_postings_are_capped_so_a_common_term_costs_the_same() -> None:
    from monitor.matching.stories import POSTINGS

    index = StoryIndex()
    for number in range(POSTINGS * 3):
        index.add(
            entry(
                f"News of day {number}: Amsterdam, Utrecht and Rotterdam report {number + 100} cases.", f"{number}.txt"
            )
        )
    assert max(len(listed) for listed in index._postings.values()) == POSTINGS
    assert index.evict(NOW + 10 * 72 * HOUR) == POSTINGS * 3
    assert not index._postings and not index._counts


def test_an_articles_long_capitalised_words_are_no_terms_and_not_kept() -> None:
    """A hostile "name" of 59,000 letters per article: no term, and nothing of it kept in a cache."""
    rng = random.Random(1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            word = "Q" + "".join(rng.choices(string.ascii_lowercase, k=59_000))
            assert terms(f"date 2024-01-01\nThe report by {word} was filed on Monday in Almaty.") == ["monda", "almat"]
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 2_000_000, f"{retained / 1e6:.1f} MB kept after 100 articles"
