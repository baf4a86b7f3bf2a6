"""Mattermost incoming webhook: one markdown `text`.

Limit (developers.mattermost.com, incoming webhooks): a post's text holds at most 16383 characters
(Mattermost 5.0 and later); longer text is cut here, with an ellipsis and a count of what was left out.
"""

from __future__ import annotations

from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats.text import MARKDOWN, join_within, units
from monitor.notify.formats.view import AlertView, more_alerts, more_hits, timestamp, view
from monitor.store import Delivery

TEXT = 16383
FACT = 1000
LINE = 600  # one hit or one digest entry


def render(webhook: Webhook, delivery: Delivery) -> Any:
    shown = view(delivery)
    head = [f"#### {MARKDOWN.text(shown.title, FACT)}"]
    head += [f"**{name}:** {MARKDOWN.text(value, FACT)}" for name, value in shown.facts]
    foot = "_" + MARKDOWN.text(f"news-monitor · {delivery.id} · {timestamp(delivery)}", FACT) + "_"
    top = "\n".join(head)
    room = TEXT - units(top) - units(foot) - 4  # the two blank lines around the list
    if isinstance(shown, AlertView):
        lines = ["> " + MARKDOWN.fit(hit, LINE) for hit in shown.hits]
        body = join_within(lines, room, lambda n: f"_{more_hits(n)}_", hidden=shown.unshown)
    else:
        lines = ["- " + MARKDOWN.fit(alert.summary(), LINE) for alert in shown.alerts]
        body = join_within(lines, room, lambda n: f"_{more_alerts(n)}_")
    return {"text": "\n\n".join(part for part in (top, body, foot) if part)}
