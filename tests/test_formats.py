"""Formats: a golden file per format and kind, the platforms' limits under long texts, cuts that never
break markup, and the template format's errors.

Rewrite the golden files after an intended change with `UPDATE_GOLDEN=1 pytest tests/test_formats.py`,
then review the diff of tests/golden/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest

from monitor.config.rules import Format, Webhook
from monitor.config.settings import LimitsSettings
from monitor.ingest.articles import Article, parse_date
from monitor.matching.engine import Hit, Match
from monitor.matching.facts import Count
from monitor.notify.alerts import alert_payload, make_id
from monitor.notify.formats import RENDERERS, discord, render, teams
from monitor.notify.formats import template as template_format
from monitor.notify.formats.text import (
    ELLIPSIS,
    MARKDOWN,
    PLAIN,
    SLACK,
    TEAMS,
    WORD_JOINER,
    Markup,
    Span,
    join_within,
    marked,
)
from monitor.notify.payload import digest_parts, json_size, update_fields
from monitor.notify.threads import Update
from monitor.store import DIGEST_REFS, Delivery, State
from tests.hostile import WJ, hostile_problems
from tests.test_payload import CappedMatch

GOLDEN = Path(__file__).parent / "golden"
TEMPLATE = GOLDEN / "template.json.j2"
CREATED = 1714557600.0  # 2024-05-01T10:00:00Z
FORMATS = get_args(Format)

TEXT = (
    "De onlusten in Kazachstan lijken uit te lopen op een zuivering. De KNB meldde dat oud-premier Karim "
    "Masimov is opgepakt op verdenking van hoogverraad. Ook R&D-chef <Jan> *Sultanov* is wegens hoogverraad "
    'gearresteerd, schrijft "Vlast" (@everyone).'
)


# Fixed deliveries, built through the real alert payload -------------------------------------------------


def make_article(name: str, text: str = TEXT, date: str = "2022-01-07") -> Article:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Article(f"/srv/news/2022/{name}", parse_date(date), text, digest, len(text.encode()))


def make_hit(text: str, snippet: str, term: str | None = None, start: int = 0, count: Count | None = None) -> Hit:
    return Hit(term or text.lower(), text, start, start + len(text), snippet, count)


def make_alert(rule: str, article: Article, hits: list[Hit], clause: str | None = None) -> dict[str, Any]:
    match = Match(rule, tuple(hits), clause or rule, language="nl")
    payload = alert_payload(make_id(rule, article.content_hash), article, match)
    return payload | {"story": "story_" + article.content_hash[:16], "version": 1}  # as the daemon stores it


def old_alert(rule: str, article: Article, hits: list[Hit], clause: str | None = None) -> dict[str, Any]:
    """An alert as versions before the caps stored it: every hit, whole, and no hits_total or truncated."""
    payload = make_alert(rule, article, [], clause)
    del payload["hits_total"], payload["truncated"]
    payload["clause"], payload["article"]["path"] = clause or rule, article.path
    return payload | {"hits": [hit.as_json() for hit in hits]}


def make_delivery(kind: str, rule: str, payload: dict[str, Any]) -> Delivery:
    return Delivery(
        id=make_id(kind, rule, "newsroom"),
        webhook="newsroom",
        kind=kind,
        rule=rule,
        payload=payload,
        state=State.pending,
        attempts=0,
        due_at=CREATED,
        last_status=None,
        last_error=None,
        created_at=CREATED,
        delivered_at=None,
    )


def digest_payload(rule: str, alerts: list[dict[str, Any]], part: int = 1, parts: int = 1) -> dict[str, Any]:
    """A digest part as the store hands it out."""
    head = {"rule": rule, "slot": "2024-05-01T12:00:00+02:00", "part": part, "parts": parts, "total": len(alerts)}
    return head | {"count": len(alerts), "alerts": alerts}


def alert_delivery() -> Delivery:
    hits = [
        make_hit(
            "hoogverraad", "…Masimov is opgepakt op verdenking van [[hoogverraad]]. Ook R&D-chef <Jan>…", start=139
        ),
        make_hit(
            "hoogverraad", "…R&D-chef <Jan> *Sultanov* is wegens [[hoogverraad]] gearresteerd, schrijft…", start=195
        ),
    ]
    return make_delivery(
        "alert", "hoogverraad", make_alert("hoogverraad", make_article("000_3107e6f82356df66.txt"), hits)
    )


def digest_delivery() -> Delivery:
    first = make_article("003_1649dd4e54c446b5.txt", "Bij de onlusten zijn 164 mensen omgekomen; 9900 zijn opgepakt.")
    second = make_article("004_9a0c.txt", "Ook in Almaty werden 12 demonstranten gearresteerd.", date="2022-01")
    alerts = [
        make_alert(
            "arrestaties",
            first,
            [
                make_hit(
                    "opgepakt",
                    "…164 mensen omgekomen; 9900 zijn [[opgepakt]].",
                    term="@arrest",
                    start=54,
                    count=Count(9900, None, "9900"),
                ),
                make_hit("onlusten", "Bij de [[onlusten]] zijn 164…", term="onlusten", start=7),
            ],
            "@arrest AND (Kazachstan OR Almaty)",
        ),
        make_alert(
            "arrestaties",
            second,
            [make_hit("gearresteerd", "…werden 12 demonstranten [[gearresteerd]].", term="@arrest", start=38)],
            "@arrest AND (Kazachstan OR Almaty)",
        ),
    ]
    return make_delivery("digest", "arrestaties", digest_payload("arrestaties", alerts))


# A hostile article (issue 13): markup, mentions and JSON breakers in its name, its lead and its hits.
HOSTILE_PARTS = (
    "[Reset je wachtwoord](https://evil.example/login)",
    '**URGENT** X", "link_names": 1, "z": "',
    "@alice @devs @channel ~town-square @everyone @here",
    "<!channel> <@U123> <#C1> <https://evil.example|click>",
    "<img src=x> ![pixel](https://evil.example/p.png)",
    "`code` _schuin_ # kop {{DATE(2024-05-01T10:00:00Z)}}",
    "regel\n- lijst\n1. item\n# kop",
)
HOSTILE_TEXT = " hoogverraad ".join(HOSTILE_PARTS)
HOSTILE_NAME = "**URGENT** [x](javascript:alert) @alice ~town-square <!here>\n- lijst\n1. item.txt"


def hostile_delivery() -> Delivery:
    """One alert whose file name, lead and every hit's context are hostile (the snippet as stored: a hit's
    context is within 60 characters of it, so each hit carries one part)."""
    hits = []
    for i, part in enumerate(HOSTILE_PARTS[:-1]):
        after = HOSTILE_PARTS[i + 1]
        start = HOSTILE_TEXT.index(part) + len(part) + 1
        # the count's text is the article's words too
        count = Count(5, "about", part[:40])
        hits.append(make_hit("hoogverraad", f"{part} [[hoogverraad]] {after}", start=start, count=count))
    article = make_article(HOSTILE_NAME, HOSTILE_TEXT)
    return make_delivery("alert", "hoogverraad", make_alert("hoogverraad", article, hits))


def update_delivery() -> Delivery:
    """A follow-up (`story: first_then_updates`): a higher count, a new rule and a new outlet at once."""
    article = make_article("reuters/005_7f3a.txt", "Bij de onlusten zijn 225 mensen omgekomen.")
    hits = [
        make_hit(
            "omgekomen", "…zijn 225 mensen [[omgekomen]].", term="omgekomen", start=30, count=Count(225, None, "225")
        )
    ]
    payload = make_alert("dodental", article, hits) | {"version": 1, "update_of": make_id("dodental", "first")}
    update = Update(("count", "rule", "outlet"), 164, 225, ("arrestaties", "csto", "kazachstan", "tokajev"), "reuters")
    return make_delivery(
        "alert", "dodental", payload | {"update": update_fields(update, "dodental: 003_1649dd4e54c446b5.txt")}
    )


KINDS = {"alert": alert_delivery, "digest": digest_delivery, "hostile": hostile_delivery, "update": update_delivery}


def webhook(fmt: str, **extra: Any) -> Webhook:
    if fmt == "template":
        extra.setdefault("template", TEMPLATE)
    return Webhook.model_validate({"url": "https://hooks.example.invalid/news", "format": fmt, **extra})


def rendered(fmt: str, delivery: Delivery) -> Any:
    body = render(webhook(fmt), delivery)
    assert isinstance(body, bytes)
    return json.loads(body)


def utf16(text: str) -> int:
    """Length in UTF-16 code units, the strictest count a platform may use (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


# Golden files -------------------------------------------------------------------------------------------


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(FORMATS)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_golden(fmt: str, kind: str) -> None:
    text = json.dumps(rendered(fmt, KINDS[kind]()), indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{fmt}-{kind}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"rewrote {path.name}")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    assert text == path.read_text(encoding="utf-8"), f"{fmt} {kind} differs from {path.name}"


def test_render_is_stable_across_attempts() -> None:
    delivery = alert_delivery()
    for fmt in FORMATS:
        assert render(webhook(fmt), delivery) == render(webhook(fmt), delivery), fmt


def test_unknown_format_is_refused() -> None:
    hook = webhook("generic").model_copy(update={"format": "carrier-pigeon"})
    with pytest.raises(ValueError, match="carrier-pigeon"):
        render(hook, alert_delivery())


# Limits -------------------------------------------------------------------------------------------------


def slack_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    blocks = body["blocks"]
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    texts = [("text", body["text"], 3000)]
    for block in blocks:
        if block["type"] == "header":
            texts.append(("header", block["text"]["text"], 150))
        elif block["type"] == "section":
            if "text" in block:
                texts.append(("section", block["text"]["text"], 3000))
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"{len(fields)} fields > 10")
            texts += [("field", field["text"], 2000) for field in fields]
        elif block["type"] == "context":
            if len(block["elements"]) > 10:
                problems.append("context elements > 10")
            texts += [("context", element["text"], 3000) for element in block["elements"]]
    problems += [f"{where} is empty" for where, text, _ in texts if not text.strip()]
    blocks_text = sum(utf16(text) for where, text, _ in texts if where != "text")
    if blocks_text > 12_000:  # Slack's undocumented msg_blocks_too_long, reported near 13,000
        problems.append(f"blocks hold {blocks_text} characters in all")
    return problems + too_long(texts) + unbalanced(texts, "*", r"\*")


def discord_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    embeds = body["embeds"]
    if len(embeds) > 10:
        problems.append(f"{len(embeds)} embeds > 10")
    if body.get("allowed_mentions") != {"parse": []}:
        problems.append("mentions are not switched off")
    texts = [("content", body["content"], 2000)]
    for embed in embeds:
        texts += [("title", embed["title"], 256), ("description", embed.get("description", ""), 4096)]
        texts.append(("footer", embed["footer"]["text"], 2048))
        if len(embed["fields"]) > 25:
            problems.append("fields > 25")
        for field in embed["fields"]:
            texts += [("field name", field["name"], 256), ("field value", field["value"], 1024)]
    problems += [f"{where} is empty" for where, text, _ in texts if not text.strip() and where != "description"]
    total = sum(discord.embed_chars(embed) for embed in embeds)
    if total > 6000:
        problems.append(f"embeds hold {total} characters > 6000")
    markdown = [t for t in texts if t[0] in ("content", "description", "field value")]
    return problems + too_long(texts) + unbalanced(markdown, "**", r"\*\*")


def mattermost_problems(body: dict[str, Any]) -> list[str]:
    texts = [("text", body["text"], 16383)]
    return too_long(texts) + unbalanced(texts, "**", r"\*\*")


def teams_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    size = len(render_body(body))
    if size > 28 * 1024:
        problems.append(f"{size} bytes > 28 KB")
    attachment = body["attachments"][0]
    content = attachment["content"]
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" or content["type"] != "AdaptiveCard":
        problems.append("not an Adaptive Card attachment")
    if "$schema" not in content or content["version"] != "1.4":
        problems.append("no $schema or version")
    texts = [("block", block["text"], 28 * 1024) for block in content["body"] if block["type"] == "TextBlock"]
    return problems + unbalanced(texts, "**", r"\*\*")


def render_body(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def too_long(texts: list[tuple[str, str, int]]) -> list[str]:
    return [f"{where}: {utf16(text)} > {limit}" for where, text, limit in texts if utf16(text) > limit]


def unbalanced(texts: list[tuple[str, str, int]], delimiter: str, escaped: str) -> list[str]:
    """A delimiter left open: what a cut inside a marker would produce."""
    problems = []
    for where, text, _ in texts:
        bare = re.sub(escaped, "", text.replace("\\\\", ""))
        if bare.count(delimiter) % 2:
            problems.append(f"{where}: odd number of {delimiter!r} in {text[-80:]!r}")
        if "[[" in text or "]]" in text:
            problems.append(f"{where}: a [[hit]] marker was left in")
    return problems


CHECKS = {
    "slack": slack_problems,
    "discord": discord_problems,
    "mattermost": mattermost_problems,
    "teams": teams_problems,
}
LIMITED = list(CHECKS)


def many_hits(count: int = 200, build: Any = old_alert) -> Delivery:
    hits = [
        make_hit(
            "hoogverraad",
            f"…op verdenking {i} van [[hoogverraad]] 📰📰📰📰📰📰📰📰 & <meer> tekst, genoeg om Mattermost te vullen…",
            start=i,
        )
        for i in range(count)
    ]
    article = make_article("many.txt")
    return make_delivery("alert", "hoogverraad", build("hoogverraad", article, hits))


def huge_snippet() -> Delivery:
    context = "📰 tekst & <ruis> " * 1400  # about 25,000 characters each side, astral characters included
    hit = make_hit("hoogverraad", f"{context}[[hoogverraad]] {context}", start=25_000)
    article = make_article("huge.txt")
    payload = old_alert("hoogverraad", article, [hit], clause="hoogverraad OR " * 700 + "verraad")
    payload["article"]["path"] = "/srv/" + "diep/" * 1000 + "huge.txt"
    return make_delivery("alert", "hoogverraad", payload)


def long_everything() -> Delivery:
    """Many hits and facts at their longest: the parts must share what is left of a total."""
    delivery = many_hits()
    delivery.payload["article"]["path"] = "/srv/" + "📰/" * 3000 + "huge.txt"
    delivery.payload["clause"] = "hoogverraad OR " * 700 + "verraad"
    delivery.payload["rule"] = "r" * 300
    return delivery


def big_digest(count: int = 500) -> Delivery:
    alerts = [
        old_alert(
            "arrestaties",
            make_article(f"{i:04d}_{'x' * 40}.txt", f"tekst {i}"),
            [make_hit("opgepakt", f"…{i} demonstranten zijn [[opgepakt]] in Almaty 📰 & <meer>…")] * (1 + i % 3),
        )
        for i in range(count)
    ]
    return make_delivery("digest", "arrestaties", digest_payload("arrestaties", alerts))


def long_digest() -> Delivery:
    """Fewer alerts, each with a snippet longer than any one field."""
    context = "📰 tekst & <ruis> " * 300
    alerts = [
        old_alert("arrestaties", make_article(f"{i}.txt", f"t{i}"), [make_hit("opgepakt", f"{context}[[opgepakt]]")])
        for i in range(60)
    ]
    return make_delivery("digest", "arrestaties", digest_payload("arrestaties", alerts))


LONG = {
    "200-hits": many_hits,
    "50k-snippet": huge_snippet,
    "long-everything": long_everything,
    "500-alert-digest": big_digest,
    "long-digest": long_digest,
}


@pytest.mark.parametrize("case", list(LONG))
@pytest.mark.parametrize("fmt", LIMITED)
def test_long_texts_stay_within_limits(fmt: str, case: str) -> None:
    body = rendered(fmt, LONG[case]())
    assert CHECKS[fmt](body) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_digest_and_an_alert_without_hits_render(fmt: str) -> None:
    empty = make_delivery("digest", "arrestaties", digest_payload("arrestaties", []))
    bare = make_delivery("alert", "csto", make_alert("csto", make_article("bare.txt"), []))
    for delivery in (empty, bare):
        body = rendered(fmt, delivery)
        if fmt in CHECKS:
            assert CHECKS[fmt](body) == []


@pytest.mark.parametrize("fmt", LIMITED)
def test_the_checks_catch_an_oversized_payload(fmt: str) -> None:
    """The limit checks above can fail: an untruncated payload breaks them."""
    body = rendered(fmt, many_hits())
    flood = "**x** " * 6000
    if fmt == "slack":
        body["blocks"].append({"type": "section", "text": {"type": "mrkdwn", "text": flood}})
    elif fmt == "discord":
        body["embeds"][0]["description"] = flood
    elif fmt == "mattermost":
        body["text"] += flood
    else:
        body["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": flood})
    assert CHECKS[fmt](body) != []


# Caps: the largest payloads the caps let through (docs/formats.md, "Caps") -------------------------------

LIMITS = LimitsSettings()
ENVELOPE = 200  # generic's {type, timestamp, data} around the payload


def maximal_alert(number: int = 0, total: int = 806_595) -> dict[str, Any]:
    """An alert at its caps: 20 hits of 200-character texts in astral and escaped characters, ~320-character
    snippets, a 4 KB path, a 10,000-character clause, an 80-character rule, and 806,595 hits in all."""
    word = ("📰" * 18 + " *_<@everyone>& ") * 20
    context = ("📰" * 16 + " *_<@here>& ") * 10
    hits = tuple(
        Hit(word, word, i * 400, i * 400 + len(word), f"{context}[[{' '.join(word.split())}]]{context}")
        for i in range(20)
    )
    article = make_article(f"{number:04d}_{'📰' * 40}.txt", f"{TEXT} {number}")
    article = replace(article, path="/srv/" + "diep/📰/" * 600 + article.path.rsplit("/", 1)[1])
    rule = "r" * 80
    match = CappedMatch(rule, hits, " OR ".join(["hoogverraad"] * 800), total)
    return alert_payload(make_id(rule, article.content_hash), article, match, LIMITS)


def maximal_parts(count: int = 30) -> list[Delivery]:
    """A digest of maximal alerts, in parts as the store hands them out."""
    alerts = {payload["alert_id"]: payload for payload in (maximal_alert(n) for n in range(count))}
    sizes = [(alert_id, json_size(payload)) for alert_id, payload in alerts.items()]
    parts = digest_parts("r" * 80, "2024-05-01T12:00:00+02:00", sizes, LIMITS.max_payload_bytes)
    composed = [
        {k: v for k, v in part.items() if k != DIGEST_REFS} | {"alerts": [alerts[i] for i in part[DIGEST_REFS]]}
        for part in parts
    ]
    return [make_delivery("digest", "r" * 80, payload) for payload in composed]


def test_the_maximal_alert_is_at_its_caps() -> None:
    payload = maximal_alert()
    assert (len(payload["hits"]), payload["hits_total"], payload["truncated"]) == (20, 806_595, True)
    assert {len(hit["text"]) for hit in payload["hits"]} == {LIMITS.hit_chars}
    assert 300 <= min(len(hit["snippet"]) for hit in payload["hits"]) <= 330
    assert len(payload["article"]["path"]) == 1024 and len(payload["clause"]) == 1000
    assert 40_000 < json_size(payload) <= LIMITS.max_payload_bytes - 512


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_maximal_alert_stays_within_every_limit(fmt: str) -> None:
    delivery = make_delivery("alert", "r" * 80, maximal_alert())
    body = render(webhook(fmt), delivery)
    assert len(body) <= LIMITS.max_payload_bytes + ENVELOPE
    if fmt in CHECKS:
        assert CHECKS[fmt](json.loads(body)) == []
    if fmt == "generic":
        assert json.loads(body)["data"] == delivery.payload, "generic sends the payload whole"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_part_of_a_maximal_digest_stays_within_every_limit(fmt: str) -> None:
    parts = maximal_parts()
    assert len(parts) >= 10 and sum(len(p.payload["alerts"]) for p in parts) == 30
    for delivery in parts:
        body = render(webhook(fmt), delivery)
        assert len(body) <= LIMITS.max_payload_bytes + ENVELOPE
        if fmt in CHECKS:
            assert CHECKS[fmt](json.loads(body)) == []


@pytest.mark.parametrize("fmt", LIMITED)
def test_a_part_says_which_part_it_is(fmt: str) -> None:
    parts = maximal_parts()
    text = json.dumps(rendered(fmt, parts[1]), ensure_ascii=False)
    assert f"(part 2 of {len(parts)})" in text


@pytest.mark.parametrize("fmt", LIMITED)
def test_hits_a_capped_payload_left_out_are_counted(fmt: str) -> None:
    text = json.dumps(rendered(fmt, many_hits(build=make_alert)), ensure_ascii=False)
    found = re.search(r"… and (\d+) more hits", text)
    assert found, text[-300:]
    shown = text.count(BOLD[fmt] + " 📰")
    assert 0 < shown <= LIMITS.max_hits
    assert shown + int(found.group(1)) == 200, "the hits the payload left out are counted with the others"


BOLD = {
    "slack": "*hoogverraad*",
    "discord": "**hoogverraad**",
    "mattermost": "**hoogverraad**",
    "teams": "**hoogverraad**",
}


@pytest.mark.parametrize("fmt", LIMITED)
def test_left_out_hits_are_counted(fmt: str) -> None:
    text = json.dumps(rendered(fmt, many_hits()), ensure_ascii=False)
    found = re.search(r"… and (\d+) more hits", text)
    assert found, text[-300:]
    shown = text.count(BOLD[fmt] + " 📰")  # hits only, not the title
    assert 0 < shown < 200
    assert shown + int(found.group(1)) == 200


@pytest.mark.parametrize("fmt", LIMITED)
def test_left_out_alerts_are_counted(fmt: str) -> None:
    text = json.dumps(rendered(fmt, big_digest()), ensure_ascii=False)
    found = re.search(r"… and (\d+) more alerts", text)
    assert found
    assert text.count("demonstranten zijn") + int(found.group(1)) == 500


@pytest.mark.parametrize("fmt", LIMITED)
def test_a_huge_snippet_keeps_its_hit(fmt: str) -> None:
    assert BOLD[fmt] in json.dumps(rendered(fmt, huge_snippet()), ensure_ascii=False)


def test_teams_fills_the_card_up_to_its_budget() -> None:
    size = len(render(webhook("teams"), big_digest()))
    assert teams.BUDGET - 1000 < size <= teams.BUDGET


# Cutting never breaks markup ----------------------------------------------------------------------------


RICH = marked("…R&D <Jan> zegt: [[hoogverraad]] is_een misdaad 📰 [[x]] en meer tekst hier…")
UNESCAPE = {
    "slack": lambda s: s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("*", ""),
    "markdown": lambda s: re.sub(r"\\(.)", r"\1", s.replace("**", "")).replace(WORD_JOINER, ""),
    "teams": lambda s: re.sub(r"\\(.)", r"\1", s.replace("**", "")).replace(WORD_JOINER, ""),
    "plain": lambda s: s,
}


@pytest.mark.parametrize(
    ("name", "markup"), [("slack", SLACK), ("markdown", MARKDOWN), ("teams", TEAMS), ("plain", PLAIN)]
)
def test_every_cut_is_within_the_limit_and_well_formed(name: str, markup: Markup) -> None:
    whole = markup.render(RICH)
    source = "".join(span.text for span in RICH)
    for limit in range(utf16(whole) + 2):
        out = markup.fit(RICH, limit)
        assert utf16(out) <= limit, (limit, out)
        if out == whole:
            continue
        assert out.endswith(ELLIPSIS) or out == "", (limit, out)
        if name == "slack":
            assert not re.search(r"&(?!amp;|lt;|gt;)", out), out
            assert out.count("*") % 2 == 0, out
        if name in ("markdown", "teams"):
            assert out.replace("\\*", "").count("**") % 2 == 0, out
        if name in ("markdown", "teams"):
            assert not re.search(r"(?<!\\)(?:\\\\)*\\(?![\\*_~`|<>\[\]#.)=+-])", out), out  # no dangling backslash
        assert source.startswith(UNESCAPE[name](out.removesuffix(ELLIPSIS)).rstrip()), (limit, out)


def test_a_marker_is_only_the_hit_given() -> None:
    rich = marked("zie [[noot]] over [[hoogverraad]] vandaag", "hoogverraad")
    assert [span for span in rich if span.bold] == [Span("hoogverraad", True)]
    assert marked("eerst [[a]] dan [[b]]") == (Span("eerst "), Span("a", True), Span(" dan "), Span("b", True))


def test_join_within_counts_what_it_leaves_out() -> None:
    out = join_within([f"regel {i}" for i in range(100)], 100, lambda n: f"+{n}")
    assert utf16(out) <= 100
    kept = out.splitlines()
    assert kept[-1] == f"+{100 - len(kept) + 1}"


def test_markdown_escapes_formatting_and_mentions() -> None:
    out = MARKDOWN.render((Span("*x* _y_ @everyone <@1> "), Span("hit", True)))
    assert out == "\\*x\\* \\_y\\_ @\u2060everyone \\<@\u20601\\> **hit**"


# Template format ----------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_template_that_renders_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.j2", '{"rule": {{ rule }}}')  # unquoted: not JSON
    with pytest.raises(ValueError, match=r"broken\.j2: the rendered text is not valid JSON: .* line 1 column"):
        render(webhook("template", template=path), alert_delivery())


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('{"rule": {{ rule }', r"bad\.j2:1: "),
        ('{"x": {{ nope | tojson }}}', r"bad\.j2: UndefinedError: 'nope' is undefined"),
        ('{"x": {{ rule.__class__.__mro__ | tojson }}}', r"bad\.j2: .*unsafe"),
    ],
    ids=["syntax", "undefined", "sandbox"],
)
def test_a_broken_template_gives_a_clear_error(tmp_path: Path, source: str, error: str) -> None:
    path = write(tmp_path / "bad.j2", source)
    with pytest.raises(ValueError, match=error):
        render(webhook("template", template=path), alert_delivery())


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"gone\.j2: cannot be read"):
        render(webhook("template", template=tmp_path / "gone.j2"), alert_delivery())
    with pytest.raises(ValueError, match="needs `template: PATH`"):  # refused when the rules load
        webhook("template", template=None)


def test_templates_are_cached_by_path_and_mtime(tmp_path: Path) -> None:
    path = write(tmp_path / "t.j2", '{"v": 1}')
    hook = webhook("template", template=path)
    assert json.loads(render(hook, alert_delivery())) == {"v": 1}
    before = template_format._compile.cache_info().hits
    render(hook, alert_delivery())
    assert template_format._compile.cache_info().hits == before + 1
    write(path, '{"v": 2}')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert json.loads(render(hook, alert_delivery())) == {"v": 2}


def test_template_output_is_not_html_escaped(tmp_path: Path) -> None:
    path = write(tmp_path / "t.j2", '{"path": "{{ data.article.path }}", "lead": {{ data.article.lead | tojson }}}')
    out = json.loads(render(webhook("template", template=path), alert_delivery()))
    assert out["lead"].endswith('schrijft "Vlast" (@everyone).')
    assert "R&D-chef <Jan>" in out["lead"]


def test_template_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.j2", "[{{ type|tojson }}, {{ delivery_id|tojson }}, {{ rule|tojson }}, {{ timestamp|tojson }}]"
    )
    delivery = digest_delivery()
    out = json.loads(render(webhook("template", template=path), delivery))
    assert out == ["alert.digest", delivery.id, "arrestaties", "2024-05-01T10:00:00Z"]


# Hostile article text is rendered as text (issue 13) --------------------------------------------------------


def hostile_digest() -> Delivery:
    return make_delivery("digest", "hoogverraad", digest_payload("hoogverraad", [hostile_delivery().payload] * 2))


@pytest.mark.parametrize("build", [hostile_delivery, hostile_digest], ids=["alert", "digest"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hostile_article_is_rendered_as_text(fmt: str, build: Any) -> None:
    body = rendered(fmt, build())
    assert hostile_problems(fmt, body) == []
    if fmt in CHECKS:
        assert CHECKS[fmt](body) == []
    shown = json.dumps(body, ensure_ascii=False).replace(WJ, "").replace("\\\\", "")
    words = ("Reset je wachtwoord", "URGENT", "alice", "town-square", "U123", "evil.example", "img src=x")
    for word in () if build is hostile_digest else words:
        assert word in shown, f"{fmt} dropped {word!r}: the text is shown, escaped, not removed"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_hostile_checks_catch_unescaped_text(fmt: str) -> None:
    """The checks above can fail: the hostile text pasted raw into each body trips them."""
    body = rendered(fmt, hostile_delivery())
    raw = f"{HOSTILE_TEXT} @alice"
    if fmt in ("generic", "template"):
        body = json.loads(f'{{"lead": "{raw}"}}'.replace("\n", " "))
    elif fmt == "slack":
        body["blocks"][2]["text"]["text"] = raw
    elif fmt == "discord":
        body["embeds"][0]["description"] = raw
    elif fmt == "mattermost":
        body["text"] = raw
    else:
        body["attachments"][0]["content"]["body"][2]["text"] = raw
    assert hostile_problems(fmt, body) != []


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("[Reset](https://evil.example)", f"\\[Reset\\]{WJ}(https://evil.example)"),
        ("**URGENT**", "\\*\\*URGENT\\*\\*"),
        ("_schuin_ file_name", "\\_schuin\\_ file_name"),
        ("- lijst\n1. item\n2) item\n+ plus", "\\- lijst\n1\\. item\n2\\) item\n\\+ plus"),
        ("2022-01-07. Ook -5 graden", "2022-01-07. Ook -5 graden"),
        ("# kop `code` <img> a|b ~x", "\\# kop \\`code\\` \\<img\\> a\\|b \\~x"),
        ("{{DATE(2024-05-01T10:00:00Z)}}", f"{{{WJ}{{{WJ}DATE(2024-05-01T10:00:00Z)}}}}"),
        ("C:\\pad", "C:\\\\pad"),
    ],
    ids=["link", "bold", "underscore", "lists", "no-list", "others", "date-function", "backslash"],
)
def test_teams_escaping(text: str, escaped: str) -> None:
    assert TEAMS.render(marked(text)) == escaped


def test_template_values_cannot_inject_keys(tmp_path: Path) -> None:
    """A bare `{{ value }}` is text escaped for a JSON string: quoted, the lead is one string; unquoted, a
    lead with a quote is invalid JSON (the delivery fails), never new keys."""
    quoted = write(tmp_path / "quoted.j2", '{"lead": "{{ data.article.lead }}", "n": {{ data.hits_total }}}')
    out = json.loads(render(webhook("template", template=quoted), hostile_delivery()))
    assert out == {"lead": hostile_delivery().payload["article"]["lead"], "n": 6}
    bare = write(tmp_path / "bare.j2", '{"lead": {{ data.article.lead }}}')
    with pytest.raises(ValueError, match="not valid JSON"):
        render(webhook("template", template=bare), hostile_delivery())


def test_template_tojson_and_constants_are_written_as_is(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.j2",
        '{"a": {{ data.article | tojson }}, "b": [1{{ ", 2" if true }}], "c": {{ true }}, "d": "{{ none }}"}',
    )
    out = json.loads(render(webhook("template", template=path), hostile_delivery()))
    assert out == {"a": hostile_delivery().payload["article"], "b": [1, 2], "c": True, "d": "null"}


@pytest.mark.parametrize(
    ("count", "update", "shown", "new"),
    [
        (
            {"value": 2_500_000.0},
            {"count": {"previous": 164, "value": 2_500_000.0}},
            "2500000",
            "count 2500000 (was 164)",
        ),
        ({"value": 7.8}, {"count": {"previous": 6.1, "value": 7.8}}, "7.8", "count 7.8 (was 6.1)"),
    ],
    ids=["millions", "fraction"],
)
def test_counts_are_written_out_not_in_exponent_form(count: dict, update: dict, shown: str, new: str) -> None:
    from monitor.notify.formats.view import _update, shown_count

    assert shown_count(count) == shown
    assert _update(update)[1] == new
