"""Slack incoming webhook: `text` (the notification fallback) and Block Kit `blocks`.

Limits (docs.slack.dev, Block Kit reference): 50 blocks per message; header text 150 characters; section
text 3000; section fields at most 10, each 2000; context elements at most 10. Slack also refuses messages
whose blocks hold too much text in total (`msg_blocks_too_long`) at an undocumented size, reported near
13,000 characters: a digest's entries are kept within TOTAL, and an alert's blocks are far below it.
Article text is escaped (&, <, >) in mrkdwn, every mrkdwn object is `verbatim`, and the plain_text header
gets a word joiner in `<!…>`, `<@…>`, `<#…>`: no mention, channel or link comes from an article.
"""

from __future__ import annotations

from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats.text import SLACK, SLACK_PLAIN, join_within, plain, take
from monitor.notify.formats.view import AlertView, DigestView, more_alerts, more_hits, plural, timestamp, view
from monitor.store import Delivery

MAX_BLOCKS = 50
HEADER = 150
SECTION = 3000
FIELD = 2000
MAX_FIELDS = 10
CONTEXT = 3000
TOTAL = 10_000  # the digest entries together: a margin below the undocumented total
FACT = 500
LINE = 600  # one hit or one digest entry


def render(webhook: Webhook, delivery: Delivery) -> Any:
    shown = view(delivery)
    footer = f"news-monitor · {delivery.id} · {timestamp(delivery)}"
    blocks = [_header(shown.title), _facts(shown.facts)]
    if isinstance(shown, AlertView):
        blocks += _alert(shown)
    else:
        blocks += _digest(shown, MAX_BLOCKS - len(blocks) - 1)
    blocks.append({"type": "context", "elements": [_mrkdwn(SLACK.text(footer, CONTEXT))]})
    return {"text": SLACK.text(_fallback(shown), SECTION), "blocks": blocks}


def _alert(shown: AlertView) -> list[dict[str, Any]]:
    if not shown.hits and not shown.unshown:
        return []
    lines = ["> " + SLACK.fit(hit, LINE) for hit in shown.hits]
    return [_section(join_within(lines, SECTION, lambda n: f"_{more_hits(n)}_", hidden=shown.unshown))]


def _digest(shown: DigestView, room: int) -> list[dict[str, Any]]:
    entries = [SLACK.fit(alert.summary(), LINE) for alert in shown.alerts]
    kept, left = take(entries, room, TOTAL)
    blocks = [_section(entry) for entry in kept]
    if left:
        blocks.append(_section(f"_{more_alerts(left)}_"))
    return blocks


def _fallback(shown: AlertView | DigestView) -> str:
    if isinstance(shown, AlertView):
        return f"{shown.title} ({shown.hits_total} {plural(shown.hits_total, 'hit')})"
    return shown.title


def _header(title: str) -> dict[str, Any]:
    text = SLACK_PLAIN.fit(plain(title), HEADER)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": False}}


def _facts(facts: list[tuple[str, str]]) -> dict[str, Any]:
    fields = [_mrkdwn(f"*{name}*\n" + SLACK.text(value, min(FACT, FIELD - len(name) - 3))) for name, value in facts]
    return {"type": "section", "fields": fields[:MAX_FIELDS]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object; `verbatim`: Slack turns no URL, channel name or mention in it into a link."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}
