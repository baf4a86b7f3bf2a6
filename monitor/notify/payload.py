"""Alert payloads within limits: `alert_payload(alert_id, article, match, limits) -> dict`.

An alert's payload is compact JSON of at most `limits.max_payload_bytes - DIGEST_ROOM` bytes, whatever
the article, so that it also fits a digest part with the digest's own fields (docs/formats.md, "Caps"):

1. every field is cut to its own cap: at most `max_hits` hits, a hit's term and text to `hit_chars` (the
   engine has already cut a long text to its start and "…"; a text from elsewhere is cut around its
   middle), a snippet to CONTEXT characters each side of its hit, the clause to CLAUSE characters, the
   path to PATH (around its middle, so that the file name stays);
2. if the whole is still over the budget, hits are dropped from the end;
3. if it is over without any hit, the clause, path and lead are halved, longest first, until it fits.

`hits_total` is the match's real number of hits and `truncated` says whether anything was cut.

A rule with `realert_on_increase` gets `"count_increase": null`, filled in later (`with_count_increase`) when
the alert is a rise of the count within the realert window; the payload is fitted with the field at its
largest (COUNT_INCREASE_ROOM), so that the filled payload stays within the budget too.

Every alert's payload ends with `"story"`, `"version"`, `"previous_alert"`, `"update_of"` and `"update"`
(null until the batch transaction assigns the article's story: `with_story`); the payload is fitted with
them at their largest (STORY_ROOM), so the filled payload stays within the budget too. `update` says what
is new in a follow-up (monitor.notify.threads): its reasons, the counts, at most UPDATE_RULES of the rules
new to the story (and how many there were), the new outlet (at most OUTLET_BYTES of JSON) and the first
alert's title (at most TITLE_BYTES of JSON).

A digest is split into parts (`digest_parts`) so that each part's payload, with its alerts' payloads in
full, stays within `max_payload_bytes`: every alert is in exactly one part, in order.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from monitor.config.settings import LimitsSettings
from monitor.ingest.articles import Article
from monitor.matching.engine import Hit, Match
from monitor.matching.facts import Count
from monitor.notify.threads import Update
from monitor.store import DIGEST_REFS

ELLIPSIS = "…"
CONTEXT = 60  # characters of a snippet kept each side of its hit (the engine's own width)
CLAUSE = 1000
COUNT_TEXT = 80
PATH = 1024
LEAD = 280
DIGEST_ROOM = 512  # bytes kept free below max_payload_bytes for a digest part's own fields
SHORTEST = 16  # step 3 stops halving a string at this length
_HALVED = (("clause",), ("article", "path"), ("article", "lead"))
_EXACT = 2**53  # integral counts below this are written as integers
# `count_increase` at its largest: every number `_number` writes is at most as long as this one (24 characters)
COUNT_INCREASE_ROOM = {"previous": -sys.float_info.max, "value": -sys.float_info.max}
UPDATE_RULES = 3  # rule names listed in a follow-up's `update.rules` (each at most 80 ASCII characters)
OUTLET_BYTES = 160  # of JSON: a follow-up's `update.outlet`
TITLE_BYTES = 240  # of JSON: a follow-up's `update.title`, the first alert's title
_RULE_ROOM = "f" * 80
# A follow-up's `update` at its largest (the strings are cut to their JSON size: `cut_json`).
UPDATE_ROOM = {
    "reasons": ["count", "rule", "outlet"],
    "count": COUNT_INCREASE_ROOM,
    "rules": [_RULE_ROOM] * UPDATE_RULES,
    "rules_total": 2**31,
    "outlet": "f" * (OUTLET_BYTES - 2),
    "title": "f" * (TITLE_BYTES - 2),
}
# The story fields at their largest: a story id, a version number (the store's is 32-bit), an alert id.
STORY_ROOM = {
    "story": "story_" + "f" * 16,
    "version": 2**31,
    "previous_alert": "msg_" + "f" * 32,
    "update_of": "msg_" + "f" * 32,  # `story: first_then_updates`: the story's first alert of the rule
    "update": UPDATE_ROOM,  # ... and what is new
}
STORY_NULL = {"story": None, "version": None, "previous_alert": None, "update_of": None, "update": None}


def dumps(value: Any) -> str:
    """Compact JSON, as stored and as the formats send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_STORY_TAIL = dumps(STORY_NULL)[1:]  # how a payload whose story is not filled in ends: `"story":null,...}`


def json_size(value: Any) -> int:
    return len(dumps(value).encode())


def alert_budget(limits: LimitsSettings) -> int:
    """The most bytes an alert's payload may take."""
    return limits.max_payload_bytes - DIGEST_ROOM


def alert_payload(
    alert_id: str, article: Article, match: Match, limits: LimitsSettings | None = None, count_increase: bool = False
) -> dict[str, Any]:
    """The alert's payload, within `alert_budget(limits)` bytes (the module docstring says how); with
    `count_increase`, a `count_increase: null` that may be filled in without going over."""
    limits = limits or LimitsSettings()
    total = match.hits_total
    raw = match.hits[: limits.max_hits]
    hits = [_hit(hit, limits.hit_chars) for hit in raw]
    clause, path = cut_end(match.clause, CLAUSE), cut_middle(article.path, PATH)
    lead = " ".join(article.text[:LEAD].split())
    payload: dict[str, Any] = {
        "alert_id": alert_id,
        "rule": match.rule,
        "clause": clause,
        "article": {
            "path": path,
            "date": article.date.isoformat(),
            "date_precision": article.date.precision.value,
            "content_hash": article.content_hash,
            "size": article.size,
            "lead": lead,
            "language": match.language,
        },
        "count": _count(match.count),
        "hits_total": total,
        "truncated": False,  # measured as the longer of the two values (false: 5 bytes, true: 4)
        "hits": [],
    }
    if count_increase:
        payload["count_increase"] = COUNT_INCREASE_ROOM  # fitted at its largest, then null
    payload.update(STORY_ROOM)  # last, fitted at their largest, then null (`with_story` fills them in)
    kept = _fit_hits(payload, hits, alert_budget(limits))
    shortened = _fit_strings(payload, alert_budget(limits)) if not kept else False
    cut = clause != match.clause or path != article.path or any(map(_cut, hits, raw))
    payload["hits"] = kept
    if count_increase:
        payload["count_increase"] = None
    payload.update(STORY_NULL)
    payload["truncated"] = shortened or cut or len(kept) < total
    return payload


def with_count_increase(payload: str, previous: float | None, value: float) -> str:
    """The stored payload (JSON) of a rule with `realert_on_increase`, with its `count_increase` filled in:
    the largest count alerted before in the window (None: those alerts had none) and this match's."""
    data = json.loads(payload)
    data["count_increase"] = {"previous": None if previous is None else _number(previous), "value": _number(value)}
    return dumps(data)


def with_story(
    payload: str,
    story: str,
    version: int,
    previous_alert: str | None,
    update_of: str | None = None,
    update: dict[str, Any] | None = None,
) -> str:
    """The stored payload (JSON) with its story fields filled in: the payload's last fields, so that this
    replaces its end (a payload without them, as a caller's own, is parsed and extended). `update_of`: the
    first alert of the rule in the story, for a follow-up (`story: first_then_updates`), `update` what is
    new in it (`update_fields`)."""
    fields = {
        "story": story,
        "version": version,
        "previous_alert": previous_alert,
        "update_of": update_of,
        "update": update,
    }
    if payload.endswith(_STORY_TAIL):
        return payload[: -len(_STORY_TAIL)] + dumps(fields)[1:]
    return dumps(json.loads(payload) | fields)


def update_fields(update: Update, title: str) -> dict[str, Any]:
    """A follow-up's `update` field, within UPDATE_ROOM: what is new, and the first alert's title."""
    count = None
    if update.count is not None:
        previous = None if update.previous is None else _number(update.previous)
        count = {"previous": previous, "value": _number(update.count)}
    return {
        "reasons": list(update.reasons),
        "count": count,
        "rules": [cut_end(rule, len(_RULE_ROOM)) for rule in update.rules[:UPDATE_RULES]],
        "rules_total": len(update.rules),
        "outlet": None if update.outlet is None else cut_json(update.outlet, OUTLET_BYTES),
        "title": cut_json(title, TITLE_BYTES),
    }


def cut_json(text: str, limit: int) -> str:
    """`text`, or its start and end around an ellipsis, whose JSON string takes at most `limit` bytes."""
    chars = len(text)
    while chars > 1 and json_size(cut_middle(text, chars)) > limit:
        chars = min(chars - 1, chars * limit // json_size(cut_middle(text, chars)))
    return cut_middle(text, chars)


def _number(value: float) -> int | float:
    """A count as JSON writes it best: 164, not 164.0; a float where an integer would not be exact."""
    value = float(value)  # an int from a caller, too
    return int(value) if value.is_integer() and abs(value) < _EXACT else value


def _hit(hit: Hit, chars: int) -> dict[str, Any]:
    text = cut_middle(hit.text, chars)
    return {
        "term": cut_end(hit.term, chars),
        "text": text,
        "start": hit.start,
        "end": hit.end,
        "snippet": cut_snippet(hit.snippet, hit.text, text),
        "count": _count(hit.count),
        "negated": hit.negated,
    }


def _count(count: Count | None) -> dict[str, Any] | None:
    """A count as sent; its text (words of the article next to a hit: bounded by the facts analysis) cut too."""
    if count is None:
        return None
    return {**count.as_json(), "text": cut_end(count.text, COUNT_TEXT)}


def _cut(kept: dict[str, Any], hit: Hit) -> bool:
    """A hit was cut here, or by the engine (its text is shorter than its place in the article)."""
    changed = (kept["term"], kept["text"], kept["snippet"]) != (hit.term, hit.text, hit.snippet)
    return changed or len(hit.text) < hit.end - hit.start


def _fit_hits(payload: dict[str, Any], hits: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The first hits that fit the budget beside the rest of the payload (which has `hits: []`)."""
    used = json_size(payload)
    kept: list[dict[str, Any]] = []
    for hit in hits:
        step = json_size(hit) + (1 if kept else 0)  # the comma before it
        if used + step > budget:
            break
        kept.append(hit)
        used += step
    return kept


def _fit_strings(payload: dict[str, Any], budget: int) -> bool:
    """Halve the clause, path and lead, longest first, until the payload fits; True if any was cut."""
    cut = False
    while json_size(payload) > budget:
        sizes = [(json_size(_get(payload, keys)), keys) for keys in _HALVED if len(_get(payload, keys)) > SHORTEST]
        if not sizes:
            break  # cannot happen with max_payload_bytes >= 4096: the other fields are bounded
        _, keys = max(sizes)
        value = _get(payload, keys)
        shorten = cut_middle if keys[-1] == "path" else cut_end
        _set(payload, keys, shorten(value, max(len(value) // 2, SHORTEST)))
        cut = True
    return cut


def _get(payload: dict[str, Any], keys: tuple[str, ...]) -> str:
    value: Any = payload
    for key in keys:
        value = value[key]
    return str(value)


def _set(payload: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    target = payload
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


def cut_end(text: str, limit: int) -> str:
    """`text`, or its first characters and an ellipsis, within `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def cut_middle(text: str, limit: int) -> str:
    """`text`, or its start and its end around an ellipsis, within `limit` characters."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def cut_snippet(snippet: str, text: str, cut: str) -> str:
    """The snippet with its `[[hit]]` marker holding `cut` (the hit's text as kept) and at most CONTEXT
    characters of context each side; a snippet without the marker is cut at its end."""
    marker = f"[[{' '.join(text.split())}]]"
    at = snippet.find(marker)
    if at < 0:
        return cut_end(snippet, len(cut) + 2 * (CONTEXT + 1) + 4)
    before, after = snippet[:at], snippet[at + len(marker) :]
    if len(before) > CONTEXT + 1:
        before = ELLIPSIS + before[-CONTEXT:]
    if len(after) > CONTEXT + 1:
        after = after[:CONTEXT] + ELLIPSIS
    return f"{before}[[{' '.join(cut.split())}]]{after}"


def digest_parts(rule: str, slot: str, sizes: list[tuple[str, int]], budget: int) -> list[dict[str, Any]]:
    """The stored payloads of a digest's parts: the alerts (id, bytes of payload), in order, packed into
    parts whose full payload stays within `budget` bytes. An alert too large for any part (one stored by
    an older version) gets a part of its own. No alerts: one empty part."""
    total = len(sizes)
    room = budget - json_size(_part(rule, slot, total, total, total, [])) - len(str(total))  # count <= total
    groups: list[list[str]] = [[]]
    used = 0
    for alert_id, size in sizes:
        step = size + (1 if groups[-1] else 0)
        if groups[-1] and used + step > room:
            groups.append([])
            used, step = 0, size
        groups[-1].append(alert_id)
        used += step
    return [_part(rule, slot, number, len(groups), total, ids) for number, ids in enumerate(groups, 1)]


def _part(rule: str, slot: str, number: int, parts: int, total: int, ids: list[str]) -> dict[str, Any]:
    """A digest part as stored: the store puts the alerts' payloads in place of their ids, as `alerts`."""
    return {
        "rule": rule,
        "slot": slot,
        "part": number,
        "parts": parts,
        "total": total,
        "count": len(ids),
        DIGEST_REFS: ids,
    }
