"""The story index (monitor.matching.stories): features, signatures, assignment, eviction, rebuild, bounds."""

from __future__ import annotations

import hashlib
import time

import pytest

from monitor.matching.stories import (
    MAX_WORDS,
    NUM_PERM,
    THRESHOLD,
    StoryEntry,
    StoryIndex,
    features,
    signature,
    similarity,
)
from tests.story_texts import QUAKE_A, QUAKE_B, QUAKE_C, QUAKE_OTHER, TRIAL_A, TRIAL_B

HOUR = 3600.0
NOW = 1_800_000_000.0


def entry(
    text: str, path: str, created: float = NOW, rules: tuple[str, ...] = ("quake",), at: float = NOW
) -> StoryEntry:
    content = hashlib.sha256(text.encode()).hexdigest()
    return StoryEntry(content, "", path, 0, at, created, signature(text), rules)


def test_features_are_salient_folded_words() -> None:
    words = features("Het dodental in Türkiye is 164; de straße van Kahramanmaraş, 7 doden, 2023, the, über, und")
    assert words == ["dodental", "turkiye", "164", "strasse", "kahramanmaras", "doden", "2023"]


@pytest.mark.parametrize(
    ("one", "other", "low", "high"),
    [
        (QUAKE_A, QUAKE_B, 0.2, 1.0),
        (QUAKE_A, QUAKE_C, 0.2, 1.0),
        (QUAKE_B, QUAKE_C, 0.2, 1.0),
        (QUAKE_A, QUAKE_OTHER, 0.0, 0.21),
        (TRIAL_A, TRIAL_B, 0.0, 0.15),
        (QUAKE_A, TRIAL_A, 0.0, 0.1),
    ],
    ids=["quake-ab", "quake-ac", "quake-bc", "two-quakes", "two-trials", "quake-trial"],
)
def test_similarity_separates_same_event_from_shared_keywords(one: str, other: str, low: float, high: float) -> None:
    assert low <= similarity(signature(one), signature(other)) <= high


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
    assert copy.story == ref.story and copy.similarity > 0.8
    first = index.assign(entry(QUAKE_A, "a.txt"))[0]
    edited = entry(TRIAL_A, "a.txt")  # whatever the new text: the same file's story
    placed, version = index.assign(edited, previous=first)
    assert (version.story, version.version, version.previous_version) == (ref.story, 2, first.content_hash)
    _, third = index.assign(entry(QUAKE_B, "a.txt"), previous=placed)
    assert third.version == 3


def test_without_a_shared_rule_only_a_near_duplicate_joins() -> None:
    index = StoryIndex()
    index.assign(entry(QUAKE_A, "a.txt", rules=("quake",)))
    assert index.assign(entry(QUAKE_B, "b.txt", rules=("other",)))[1].started
    assert not index.assign(entry(QUAKE_A + " More.", "c.txt", rules=("other",)))[1].started


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
    assert len(value) in (0, NUM_PERM * 4)  # empty: too few salient words (the one huge word)
    assert time.process_time() - started < max(10 * small, 0.05)
    assert len(features(text)) <= MAX_WORDS


def test_articles_with_too_few_salient_words_join_no_story_by_similarity() -> None:
    """Review: every article without salient words (a Chinese text, stop words only) had the same MinHash,
    so all of them became one story."""
    from monitor.matching.stories import signature

    assert signature("地震造成至少一百人死亡救援人员仍在搜救") == b""
    assert signature("de het een en van in op te dat die") == b""
    assert signature("Aardbeving Turkije dodental reddingswerkers Gaziantep Kahramanmaras") != b""
