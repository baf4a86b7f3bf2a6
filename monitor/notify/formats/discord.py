"""Discord execute-webhook: `content` and one embed, with mentions switched off.

Limits (discord.com/developers/docs, Message resource, Embed limits; Webhook resource, Execute webhook):
content 2000 characters; at most 10 embeds; embed title 256, description 4096, at most 25 fields, field
name 256, field value 1024, footer text 2048; all embeds of a message together 6000 characters.
Markdown is written (and article text escaped) where Discord renders it: content, title, description and
field values; the field names (ours) and the footer go out as plain text. Mentions are off twice: the
escaping breaks them, and `allowed_mentions` parses none.
"""

from __future__ import annotations

from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats.text import MARKDOWN, PLAIN, Span, join_within, units
from monitor.notify.formats.view import AlertView, DigestView, more_alerts, more_hits, plural, timestamp, view
from monitor.store import Delivery

CONTENT = 2000
MAX_EMBEDS = 10
TITLE = 256
DESCRIPTION = 4096
MAX_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
EMBED_TOTAL = 6000
LINE = 600  # one hit or one digest entry
INLINE = 40  # shorter values share a row
COLOUR = 0xD97706


def render(webhook: Webhook, delivery: Delivery) -> Any:
    shown = view(delivery)
    embed: dict[str, Any] = {
        "title": MARKDOWN.text(shown.title, TITLE),
        "fields": [_field(name, value) for name, value in shown.facts][:MAX_FIELDS],
        "footer": {"text": PLAIN.text(f"news-monitor · {delivery.id}", FOOTER)},
        "timestamp": timestamp(delivery),
        "color": COLOUR,
    }
    room = min(DESCRIPTION, EMBED_TOTAL - embed_chars(embed))
    if isinstance(shown, AlertView):
        lines = ["> " + MARKDOWN.fit(hit, min(LINE, room)) for hit in shown.hits]
        embed["description"] = join_within(lines, room, lambda n: f"*{more_hits(n)}*", hidden=shown.unshown)
    else:
        lines = ["- " + MARKDOWN.fit(alert.summary(), min(LINE, room)) for alert in shown.alerts]
        embed["description"] = join_within(lines, room, lambda n: f"*{more_alerts(n)}*")
    if not embed["description"]:
        del embed["description"]
    return {"content": _content(shown), "embeds": [embed], "allowed_mentions": {"parse": []}}


def embed_chars(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward its 6000 per message: title, description, field names and
    values, footer text, author name."""
    texts = [embed.get("title", ""), embed.get("description", "")]
    texts += [embed.get("footer", {}).get("text", ""), embed.get("author", {}).get("name", "")]
    for field in embed.get("fields", []):
        texts += [field["name"], field["value"]]
    return sum(units(text) for text in texts)


def _content(shown: AlertView | DigestView) -> str:
    if isinstance(shown, AlertView):
        count = shown.hits_total
        spans = (Span(shown.rule, True), Span(f": {count} {plural(count, 'hit')} in {shown.name}"))
    else:
        spans = (Span(shown.rule, True), Span(f": digest of {shown.count} {plural(shown.count, 'alert')}"))
    return MARKDOWN.fit(spans, CONTENT)


def _field(name: str, value: str) -> dict[str, Any]:
    text = MARKDOWN.text(value or "-", FIELD_VALUE)
    return {"name": PLAIN.text(name, FIELD_NAME), "value": text, "inline": units(text) <= INLINE}
