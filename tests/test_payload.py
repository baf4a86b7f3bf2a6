"""Alert payloads within limits whatever the article, and digests split into parts within them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from monitor.config.settings import LimitsSettings
from monitor.ingest.articles import Article, parse_date
from monitor.matching.engine import Hit, Match
from monitor.notify.payload import (
    CONTEXT,
    COUNT_INCREASE_ROOM,
    DIGEST_ROOM,
    STORY_ROOM,
    UPDATE_ROOM,
    alert_budget,
    alert_payload,
    cut_end,
    cut_middle,
    cut_snippet,
    digest_parts,
    dumps,
    json_size,
    update_fields,
    with_count_increase,
    with_story,
)
from monitor.notify.threads import Update
from monitor.store import DIGEST_REFS

DEFAULT = LimitsSettings()
SMALL = LimitsSettings(max_payload_bytes=4096)


class CappedMatch(Match):
    """A match as the capping engine gives it: at most max_hits hits, and the real count."""

    __slots__ = ("_total",)

    def __init__(self, rule: str, hits: tuple[Hit, ...], clause: str, total: int) -> None:
        super().__init__(rule, hits, clause)
        self._total = total

    @property
    def hits_total(self) -> int:
        return self._total


def article(text: str = "Een officier wordt verdacht van hoogverraad.", path: str = "/srv/news/a.txt") -> Article:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Article(path, parse_date("2022-01-07"), text, digest, len(text.encode()))


def hit(text: str, start: int = 0, before: str = "verdacht van ", after: str = " gearresteerd") -> Hit:
    return Hit(text.lower()[:40], text, start, start + len(text), f"{before}[[{' '.join(text.split())}]]{after}")


def many(count: int, text: str = "gearresteerd") -> tuple[Hit, ...]:
    return tuple(hit(text, i * 13) for i in range(count))


# Hostile matches: each must end within the budget, whatever the limits.
HOSTILE = {
    "806k-hits": lambda: (article(), Match("hv", many(5000), "gearresteerd")),
    "capped-engine": lambda: (article(), CappedMatch("hv", many(20), "gearresteerd", 806_595)),
    "10MB-word": lambda: (
        article(),
        Match("hv", (hit("x" * 5_000_000 + "hoogverraad" + "y" * 5_000_000),), "*hoogverraad*"),
    ),
    "long-path-and-clause": lambda: (
        article(path="/srv/" + "diep/" * 820 + "a.txt"),
        Match("hv", many(20, "📰 hoogverraad " * 14), " OR ".join(["hoogverraad"] * 800)),
    ),
    "escaped-path": lambda: (article(path="/srv/" + "\x01" * 4000), Match("hv", many(20), "x" * 10_000)),
    "astral": lambda: (
        article("📰" * 5000, path="/srv/" + "📰" * 2000),
        Match("hv", tuple(hit("📰" * 300, i, "📰" * 500, "📰" * 500) for i in range(40)), "📰" * 3000),
    ),
}


@pytest.mark.parametrize("limits", [DEFAULT, SMALL], ids=["64KiB", "4KiB"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_match_gives_a_payload_within_the_budget(case: str, limits: LimitsSettings) -> None:
    found, match = HOSTILE[case]()
    payload = alert_payload("msg_x", found, match, limits)
    assert json_size(payload) <= alert_budget(limits) == limits.max_payload_bytes - DIGEST_ROOM
    assert payload["truncated"] is True
    assert payload["hits_total"] == match.hits_total
    assert len(payload["hits"]) <= limits.max_hits
    for kept in payload["hits"]:
        assert len(kept["text"]) <= limits.hit_chars and len(kept["term"]) <= limits.hit_chars
        assert len(kept["snippet"]) <= limits.hit_chars + 2 * (CONTEXT + 1) + 4
        assert f"[[{' '.join(kept['text'].split())}]]" in kept["snippet"], "the snippet still marks its hit"
    json.loads(dumps(payload))


LONGEST = -COUNT_INCREASE_ROOM["value"]  # -1.7976931348623157e+308: as long as a JSON number of ours gets


def largest_story(payload: str) -> str:
    room = STORY_ROOM
    return with_story(
        payload, room["story"], room["version"], room["previous_alert"], room["update_of"], room["update"]
    )


def test_a_filled_count_increase_and_story_stay_within_the_budget() -> None:
    """`count_increase` and the story fields are fitted at their largest: however close to its budget a
    payload ends (the path's length sweeps the room the last hit leaves), filling them in with the longest
    values stays within."""
    closest = alert_budget(SMALL)
    for length in range(400, 800):
        payload = alert_payload("msg_x", article(path="/" + "p" * length), Match("hv", many(20), "x"), SMALL, True)
        assert payload["count_increase"] is None and payload["hits"] and payload["story"] is None
        stored = dumps(payload)
        for previous, value in [(LONGEST, LONGEST), (None, 1e300), (2.0**53 - 1, 1.2345678901234567e-100)]:
            filled = largest_story(with_count_increase(stored, previous, value))
            assert len(filled.encode()) <= alert_budget(SMALL), (length, previous, value)
        filled = largest_story(with_count_increase(stored, LONGEST, LONGEST))
        closest = min(closest, alert_budget(SMALL) - len(filled.encode()))
    assert closest < 10, "some payload ends within a few bytes of its budget"


def test_the_story_fields_end_the_payload_and_are_filled_in_place() -> None:
    stored = dumps(alert_payload("msg_x", article(), Match("hv", many(2), "x"), SMALL))
    filled = json.loads(with_story(stored, "story_0123456789abcdef", 2, "msg_" + "a" * 32))
    assert list(filled)[-5:] == ["story", "version", "previous_alert", "update_of", "update"]
    assert filled["update_of"] is None and filled["update"] is None
    assert (filled["story"], filled["version"], filled["previous_alert"]) == (
        "story_0123456789abcdef",
        2,
        "msg_" + "a" * 32,
    )
    assert json.loads(with_story('{"a":1}', "story_x", 1, None)) == {
        "a": 1,
        "story": "story_x",
        "version": 1,
        "previous_alert": None,
        "update_of": None,
        "update": None,
    }


@pytest.mark.parametrize(
    ("update", "title"),
    [
        (Update(("count",), LONGEST, LONGEST), "r: a.txt"),
        (
            Update(("count", "rule", "outlet"), None, 1.0, tuple("r" * 80 + str(i) for i in range(50)), "\x00" * 500),
            "t",
        ),
        (Update(("outlet",), outlet="é" * 1000), "\x01" * 2000),
        (Update(("outlet",), outlet="😀" * 1000), "😀" * 2000),
    ],
    ids=["count", "all-long", "escaped", "four-byte"],
)
def test_an_update_is_never_larger_than_its_room(update: Update, title: str) -> None:
    """A follow-up's `update` (its rules, outlet and title cut) fits the room the payload was fitted with."""
    fields = update_fields(update, title)
    assert json_size(fields) <= json_size(UPDATE_ROOM)
    assert fields["reasons"] == list(update.reasons) and fields["rules_total"] == len(update.rules)
    assert len(fields["rules"]) <= 3 and fields["title"]


def test_a_short_update_is_kept_whole() -> None:
    fields = update_fields(Update(("count", "rule"), 76, 500, ("mourning",)), "quake: a.txt")
    assert fields == {
        "reasons": ["count", "rule"],
        "count": {"previous": 76, "value": 500},
        "rules": ["mourning"],
        "rules_total": 1,
        "outlet": None,
        "title": "quake: a.txt",
    }


@pytest.mark.parametrize(
    ("previous", "value", "expected"),
    [
        (164.0, 347.0, '{"previous":164,"value":347}'),
        (None, 5, '{"previous":null,"value":5}'),
        (7.5, 1e300, '{"previous":7.5,"value":1e+300}'),
        (2.0**53, 2.0**53 + 2, '{"previous":9007199254740992.0,"value":9007199254740994.0}'),
    ],
    ids=["integers", "no-previous", "float", "beyond-exact-integers"],
)
def test_count_increase_numbers(previous: float | None, value: float, expected: str) -> None:
    filled = with_count_increase(dumps({"alert_id": "msg_x", "count_increase": None}), previous, value)
    assert filled == '{"alert_id":"msg_x","count_increase":' + expected + "}"


def test_a_small_match_is_sent_whole() -> None:
    hits = (hit("hoogverraad", 32),)
    payload = alert_payload("msg_x", article(), Match("hv", hits, "hoogverraad"))
    assert payload["truncated"] is False and payload["hits_total"] == 1
    assert payload["hits"] == [hits[0].as_json()]
    assert payload["clause"] == "hoogverraad" and payload["article"]["path"] == "/srv/news/a.txt"


def test_the_default_budget_keeps_twenty_maximal_hits() -> None:
    """20 hits of 200 characters with full snippets and long facts fit 64 KiB: nothing but the text is cut."""
    text = "hoogverraad " * 30
    match = Match("hv", many(25, text), "hoogverraad OR " * 100)
    payload = alert_payload("msg_x", article(path="/srv/" + "a/" * 600), match)
    assert len(payload["hits"]) == 20 and payload["hits_total"] == 25
    assert {len(kept["text"]) for kept in payload["hits"]} == {200}
    assert len(payload["article"]["path"]) == 1024 and len(payload["clause"]) == 1000


def test_hits_are_dropped_from_the_end_first() -> None:
    match = Match("hv", many(20, "hoogverraad " * 16), "hoogverraad")
    payload = alert_payload("msg_x", article(), match, SMALL)
    kept = payload["hits"]
    assert 0 < len(kept) < 20 and [h["start"] for h in kept] == [h.start for h in match.hits[: len(kept)]]
    assert payload["article"]["path"] == "/srv/news/a.txt" and payload["clause"] == "hoogverraad"
    one_more = dict(payload, hits=[*kept, match.hits[len(kept)].as_json()]) | STORY_ROOM  # as it was fitted
    assert json_size(one_more) > alert_budget(SMALL), "as many hits as fit are kept"


def test_an_engine_cut_hit_counts_as_truncated() -> None:
    cut = Hit("x", "ab…yz", 0, 5000, "[[ab…yz]]")
    assert alert_payload("msg_x", article(), Match("hv", (cut,), "x"))["truncated"] is True


@pytest.mark.parametrize(
    ("function", "text", "limit", "expected"),
    [
        (cut_end, "abcdef", 6, "abcdef"),
        (cut_end, "abcdefg", 6, "abcde…"),
        (cut_middle, "abcdefg", 6, "ab…efg"),
        (cut_middle, "/srv/long/name.txt", 11, "/srv/…e.txt"),
    ],
    ids=["end-fits", "end-cut", "middle-cut", "middle-keeps-the-name"],
)
def test_cuts(function: Any, text: str, limit: int, expected: str) -> None:
    assert function(text, limit) == expected
    assert len(function(text, limit)) <= limit


def test_a_snippet_keeps_its_marker_and_some_context() -> None:
    word = "x" * 1000
    snippet = "a " * 200 + f"[[{word}]]" + " b" * 200
    out = cut_snippet(snippet, word, cut_middle(word, 200))
    before, rest = out.split("[[")
    inside, after = rest.split("]]")
    assert inside == cut_middle(word, 200)
    assert len(before) == len(after) == CONTEXT + 1 and before.startswith("…") and after.endswith("…")
    assert cut_snippet("no marker " * 100, "hit", "hit").endswith("…")


# Digest parts -------------------------------------------------------------------------------------------


def compose(part: dict[str, Any], payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the store hands out for a part: the alerts' payloads in place of their ids."""
    ids = part[DIGEST_REFS]
    return {k: v for k, v in part.items() if k != DIGEST_REFS} | {"alerts": [payloads[i] for i in ids]}


@pytest.mark.parametrize(
    "sizes", [[300] * 1000, [3000, 50, 3500, 40, 3584, 3584, 32] * 20, [100]], ids=["1000-alike", "mixed", "one"]
)
def test_digest_parts_hold_every_alert_once_in_order_within_the_budget(sizes: list[int]) -> None:
    payloads = {f"msg_{i:04d}": {"alert_id": f"msg_{i:04d}", "pad": "p" * (size - 32)} for i, size in enumerate(sizes)}
    assert [json_size(p) for p in payloads.values()] == sizes
    parts = digest_parts("hv", "2026-01-01T12:00:00+00:00", [(i, json_size(p)) for i, p in payloads.items()], 4096)
    assert [i for part in parts for i in part[DIGEST_REFS]] == list(payloads), "every alert once, in order"
    assert [(p["part"], p["parts"], p["total"]) for p in parts] == [
        (n, len(parts), len(sizes)) for n in range(1, len(parts) + 1)
    ]
    assert all(p["count"] == len(p[DIGEST_REFS]) for p in parts)
    assert max(json_size(compose(part, payloads)) for part in parts) <= 4096
    if len(sizes) == 1000:
        assert 70 <= len(parts) <= 80, "parts are filled, not one alert each"


def test_an_empty_digest_is_one_empty_part_and_an_oversized_alert_a_part_of_its_own() -> None:
    assert digest_parts("hv", "t", [], 4096) == [
        {"rule": "hv", "slot": "t", "part": 1, "parts": 1, "total": 0, "count": 0, DIGEST_REFS: []}
    ]
    parts = digest_parts("hv", "t", [("a", 10), ("old", 100_000), ("b", 10)], 4096)
    assert [p[DIGEST_REFS] for p in parts] == [["a"], ["old"], ["b"]]
