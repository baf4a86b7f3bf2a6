"""Discord execute-webhook: `content` and one embed, with mentions switched off.

Limits (discord.com/developers/docs, Message resource, Embed limits; Webhook resource, Execute webhook):
content 2000 characters; at most 10 embeds; embed title 256, description 4096, at most 25 fields, field
name 256, field value 1024, footer text 2048; all embeds of a message together 6000 characters.
Markdown is written (and article text escaped) where Discord renders it: content, title, description and
field values; the field names (ours) and the footer go out as plain text. Mentions are off twice: the
escaping breaks them, and `allowed_mentions` parses none.

Threads (`route`): a webhook with `thread_id` posts every message into that thread (`?thread_id=`). One with
`thread: story` (a forum or media channel) starts a thread (`thread_name`: the message's title, at most
THREAD_NAME characters) with each alert that is not a follow-up, and asks for the message back
(`?wait=true`): its `channel_id` is the new thread (`thread_of`), stored per webhook under the alert. A
follow-up (`update_of`) goes into its first alert's thread; when that is not known (the first alert not
delivered yet, or delivered before the option was set), it starts a thread of its own, stored under the
first alert unless one is there by then. A digest starts a thread of its own (a forum takes no message
outside a thread).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.config.rules import Webhook
from monitor.notify.formats.text import MARKDOWN, PLAIN, Span, join_within, units
from monitor.notify.formats.view import AlertView, DigestView, more_alerts, more_hits, plural, timestamp, view
from monitor.store import Delivery, DeliveryKind

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
THREAD_NAME = 100  # characters of a thread's name (Channel resource, Start Thread in Forum or Media Channel)
SNOWFLAKE = re.compile(r"[0-9]{1,20}")  # a Discord id


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: into a thread (`thread_id`), starting one (`thread_name`; with `key`, the alert
    under which the new thread is stored, the post waits for the message to learn it), or to the channel."""

    thread_id: str | None = None
    thread_name: str | None = None
    key: str | None = None

    def url(self, base: str) -> str:
        """The webhook URL with this route's query parameters."""
        if self.thread_id is not None:
            return str(httpx.URL(base).copy_merge_params({"thread_id": self.thread_id}))
        if self.key is not None:
            return str(httpx.URL(base).copy_merge_params({"wait": "true"}))
        return base

    def body(self, message: Any) -> Any:
        """The rendered message with this route's `thread_name`, if it starts a thread."""
        if self.thread_name is None or not isinstance(message, dict):
            return message
        return {**message, "thread_name": self.thread_name}


CHANNEL = Route()


def story_key(webhook: Webhook, delivery: Delivery) -> str | None:
    """The alert whose story thread a delivery to a `thread: story` webhook belongs to: a follow-up's first
    alert (`update_of`), else the alert itself; None for a digest or another webhook."""
    if webhook.format != "discord" or webhook.thread != "story" or delivery.kind != DeliveryKind.alert:
        return None
    for name in ("update_of", "alert_id"):
        value = delivery.payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def route(webhook: Webhook, delivery: Delivery, known: str | None = None) -> Route:
    """Where a delivery goes (`known`: the thread of its story's first alert on this webhook, if stored)."""
    if webhook.format != "discord":
        return CHANNEL
    if webhook.thread_id is not None:
        return Route(thread_id=webhook.thread_id)
    if webhook.thread != "story":
        return CHANNEL
    if known is not None:
        return Route(thread_id=known)
    name = PLAIN.text(" ".join(view(delivery).title.split()), THREAD_NAME) or "news-monitor"  # one line
    return Route(thread_name=name, key=story_key(webhook, delivery))


def thread_of(reply: bytes | None) -> str | None:
    """The thread a message started, from Discord's answer to `?wait=true` (the message: its `channel_id`).
    The answer is untrusted: anything but a JSON object whose `channel_id` is a string of digits is none."""
    if not reply:
        return None
    try:
        message = json.loads(reply)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
        return None
    channel = message.get("channel_id") if isinstance(message, dict) else None
    return channel if isinstance(channel, str) and SNOWFLAKE.fullmatch(channel) else None


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
