"""Microsoft Teams through a Workflows webhook: a message with one Adaptive Card attachment.

Limit (learn.microsoft.com, Teams connector "Known issues and limitations", and "Create incoming
webhooks"): a message holds about 28 KB. Every text is bounded in bytes as sent, and the card is filled
item by item while the whole body stays within BUDGET bytes; what does not fit is counted in a last line.
Every text (title, facts, hits, footer) is escaped for Adaptive Card markdown (`text.escape_teams`): an
article's `[text](url)`, `**bold**` or list markers are shown as typed, never as a link or formatting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats.text import TEAMS, Rich, json_size, plain
from monitor.notify.formats.view import AlertView, more_alerts, more_hits, timestamp, view
from monitor.store import Delivery

LIMIT = 28 * 1024
BUDGET = 27_000  # bytes of the JSON body, a margin below LIMIT
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD = "application/vnd.microsoft.card.adaptive"
FACT = 1500  # bytes of the title or of one fact's value
ITEM = 4000  # bytes of one hit or one digest entry


def render(webhook: Webhook, delivery: Delivery) -> Any:
    shown = view(delivery)
    title = TEAMS.fit(plain(shown.title), FACT, json_size)
    facts = [
        {"title": TEAMS.text(name, FACT, json_size), "value": TEAMS.text(value, FACT, json_size)}
        for name, value in shown.facts
    ]
    head: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    foot = [_block(plain(f"news-monitor · {delivery.id} · {timestamp(delivery)}")) | {"size": "Small"}]
    hidden = 0
    if isinstance(shown, AlertView):
        items = [_block(hit) for hit in shown.hits]
        more, hidden = more_hits, shown.unshown
    else:
        items = [_block(alert.summary()) | {"separator": True} for alert in shown.alerts]
        more = more_alerts
    kept = _within(items, BUDGET - json_size(card(head + foot)), more, hidden)
    return card(head + kept + foot)


def _within(items: list[dict[str, Any]], room: int, more: Callable[[int], str], hidden: int) -> list[dict[str, Any]]:
    """The first items that fit `room` bytes, then a note counting those left out (and `hidden` ones)."""
    kept: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        left = len(items) - index - 1 + hidden
        reserve = json_size(_note(more(left))) + 1 if left else 0
        if json_size(item) + 1 + reserve > room:  # + 1: the comma before it
            break
        kept.append(item)
        room -= json_size(item) + 1
    left = len(items) - len(kept) + hidden
    return [*kept, _note(more(left))] if left else kept


def card(body: list[dict[str, Any]]) -> dict[str, Any]:
    content = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body, "msteams": {"width": "Full"}}
    return {"type": "message", "attachments": [{"contentType": CARD, "contentUrl": None, "content": content}]}


def _block(rich: Rich) -> dict[str, Any]:
    return {"type": "TextBlock", "text": TEAMS.fit(rich, ITEM, json_size), "wrap": True}


def _note(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, "isSubtle": True}
