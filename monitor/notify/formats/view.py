"""What every chat format says about a delivery, before layout: `view(delivery) -> AlertView | DigestView`.

The payload is the one `monitor.notify.alerts` stores (an alert, or a part of a digest of alerts). Reading it
tolerates missing keys, so a delivery queued by an older version still renders. An alert's `hits` may be
fewer than its `hits_total` (the caps of monitor.notify.payload): the formats count the others as left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from monitor.notify.formats.text import Rich, Span, clip_start, marked
from monitor.store import Delivery, DeliveryKind

BEFORE_HIT = 200  # characters of a snippet kept before its hit


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: str
    rule: str
    path: str
    date: str
    clause: str
    hits: tuple[Rich, ...]  # one marked snippet per hit
    hits_total: int  # the match's hits, of which the payload holds the first
    count: str = ""  # the match's count as shown ("8000 (almost): bijna achtduizend"), "" without one
    language: str = ""
    update_of: str = ""  # a follow-up (`story: first_then_updates`): the first alert of its story
    update_title: str = ""  # ... that alert's title ("" from a payload of an older version)
    new: str = ""  # ... and what is new ("count 500 (was 76); rule mourning; outlet reuters")

    @property
    def unshown(self) -> int:
        """Hits the payload left out."""
        return max(self.hits_total - len(self.hits), 0)

    @property
    def name(self) -> str:
        return PurePath(self.path).name or self.path

    @property
    def title(self) -> str:
        title = f"{self.rule}: {self.name}"
        if self.update_of:
            return f"Update to {self.update_title}" if self.update_title else f"Update: {title}"
        return title

    @property
    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Rule", self.rule),
            ("Article", self.path),
            ("Date", self.date),
            ("Matched", self.clause),
            ("Hits", str(self.hits_total)),
            *((("Count", self.count),) if self.count else ()),
            *((("Language", self.language),) if self.language else ()),
            *((("Update to", self.updates),) if self.update_of else ()),
            *((("New", self.new),) if self.new else ()),
        ]

    @property
    def updates(self) -> str:
        """The first alert a follow-up updates: its title and id."""
        return f"{self.update_title} ({self.update_of})" if self.update_title else self.update_of

    def summary(self) -> Rich:
        """One line for a digest: name, date, the first hit, and how many more."""
        head: Rich = (Span(self.name, True), Span(f" ({self.date})"))
        if not self.hits:
            return head
        more = max(self.hits_total, len(self.hits)) - 1
        tail: Rich = (Span(f" (+{more} more {plural(more, 'hit')})"),) if more else ()
        return (*head, Span(": "), *self.hits[0], *tail)


@dataclass(frozen=True, slots=True)
class DigestView:
    rule: str
    slot: str
    count: int
    alerts: tuple[AlertView, ...]
    part: int = 1  # a digest over the payload cap goes out in parts, numbered from 1
    parts: int = 1
    total: int = 0  # the alerts of all parts

    @property
    def title(self) -> str:
        title = f"{self.rule}: {self.count} {plural(self.count, 'alert')}"
        return title if self.parts == 1 else f"{title} (part {self.part} of {self.parts})"

    @property
    def facts(self) -> list[tuple[str, str]]:
        facts = [("Rule", self.rule), ("Digest time", self.slot), ("Alerts", str(self.count))]
        if self.parts > 1:
            facts.append(("Part", f"{self.part} of {self.parts} ({self.total} alerts in all)"))
        return facts


def view(delivery: Delivery) -> AlertView | DigestView:
    payload = delivery.payload
    if delivery.kind == DeliveryKind.digest:
        alerts = tuple(alert_view(item, delivery.rule) for item in payload.get("alerts", []))
        count = int(payload.get("count", 0))
        return DigestView(
            str(payload.get("rule", delivery.rule)),
            str(payload.get("slot", "")),
            count,
            alerts,
            int(payload.get("part", 1)),
            int(payload.get("parts", 1)),
            int(payload.get("total", count)),
        )
    return alert_view(payload, delivery.rule)


def alert_view(payload: dict[str, Any], rule: str) -> AlertView:
    article = payload.get("article", {})
    date = str(article.get("date", ""))
    given = payload.get("hits", [])
    hits = tuple(clip_start(marked(str(hit.get("snippet", "")), hit.get("text")), BEFORE_HIT) for hit in given)
    return AlertView(
        str(payload.get("alert_id", "")),
        str(payload.get("rule", rule)),
        str(article.get("path", "")),
        date,
        str(payload.get("clause", "")),
        tuple(hit for hit in hits if hit),
        int(payload.get("hits_total", len(given))),
        shown_count(payload.get("count"), payload.get("count_increase")),
        str(article.get("language") or ""),
        str(payload.get("update_of") or ""),
        *_update(payload.get("update")),
    )


def _update(update: Any) -> tuple[str, str]:
    """A follow-up's (first alert's title, what is new), from its payload's `update` ("" without one)."""
    if not isinstance(update, dict):
        return "", ""
    new = []
    count = update.get("count")
    if isinstance(count, dict) and isinstance(count.get("value"), int | float):
        previous = count.get("previous")
        was = f" (was {figure(previous)})" if isinstance(previous, int | float) else ""
        new.append(f"count {figure(count['value'])}{was}")
    rules = [str(rule) for rule in update.get("rules") or []]
    if rules:
        more = int(update.get("rules_total") or len(rules)) - len(rules)
        new.append(
            f"{plural(len(rules) + more, 'rule')} {', '.join(rules)}" + (f" and {more} more" if more > 0 else "")
        )
    if update.get("outlet"):
        new.append(f"outlet {update['outlet']}")
    return str(update.get("title") or ""), "; ".join(new)


def shown_count(count: Any, increase: Any = None) -> str:
    """`8000 (almost): bijna achtduizend`, with `(was 164)` after an increase; "" without a count."""
    if not isinstance(count, dict):
        return ""
    value = count.get("value")
    text = "?" if not isinstance(value, int | float) else figure(value)
    if count.get("qualifier"):
        text += f" ({count['qualifier']})"
    if count.get("text"):
        text += f": {count['text']}"
    if isinstance(increase, dict) and isinstance(increase.get("previous"), int | float):
        text += f" (was {figure(increase['previous'])})"
    return text


def figure(value: float) -> str:
    """A count as written: `2500000`, `7.8` (not `2.5e+06`: `:g` keeps six digits)."""
    return f"{value:.15g}"


def event_type(delivery: Delivery) -> str:
    return "alert.digest" if delivery.kind == DeliveryKind.digest else "alert.matched"


def timestamp(delivery: Delivery) -> str:
    """The delivery's creation time, ISO 8601 in UTC: the same on every attempt."""
    return datetime.fromtimestamp(delivery.created_at, UTC).isoformat().replace("+00:00", "Z")


def more_hits(count: int) -> str:
    return f"… and {count} more {plural(count, 'hit')}"


def more_alerts(count: int) -> str:
    return f"… and {count} more {plural(count, 'alert')}"


def plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
