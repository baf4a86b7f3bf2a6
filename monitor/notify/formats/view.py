"""What every chat format says about a delivery, before layout: `view(delivery) -> AlertView | DigestView`.

The payload is the one `monitor.alerts` stores (an alert, or a digest of alerts). Reading it tolerates
missing keys, so a delivery queued by an older version still renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from monitor.notify.formats.text import Rich, Span, clip_start, marked
from monitor.store import Delivery

BEFORE_HIT = 200  # characters of a snippet kept before its hit


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: str
    rule: str
    path: str
    date: str
    clause: str
    hits: tuple[Rich, ...]  # one marked snippet per hit

    @property
    def name(self) -> str:
        return PurePath(self.path).name or self.path

    @property
    def title(self) -> str:
        return f"{self.rule}: {self.name}"

    @property
    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Rule", self.rule),
            ("Article", self.path),
            ("Date", self.date),
            ("Matched", self.clause),
            ("Hits", str(len(self.hits))),
        ]

    def summary(self) -> Rich:
        """One line for a digest: name, date, the first hit, and how many more."""
        head: Rich = (Span(self.name, True), Span(f" ({self.date})"))
        if not self.hits:
            return head
        more = len(self.hits) - 1
        tail: Rich = (Span(f" (+{more} more {plural(more, 'hit')})"),) if more else ()
        return (*head, Span(": "), *self.hits[0], *tail)


@dataclass(frozen=True, slots=True)
class DigestView:
    rule: str
    slot: str
    count: int
    alerts: tuple[AlertView, ...]

    @property
    def title(self) -> str:
        return f"{self.rule}: {self.count} {plural(self.count, 'alert')}"

    @property
    def facts(self) -> list[tuple[str, str]]:
        return [("Rule", self.rule), ("Digest time", self.slot), ("Alerts", str(self.count))]


def view(delivery: Delivery) -> AlertView | DigestView:
    payload = delivery.payload
    if delivery.kind == "digest":
        alerts = tuple(alert_view(item, delivery.rule) for item in payload.get("alerts", []))
        return DigestView(
            str(payload.get("rule", delivery.rule)), str(payload.get("slot", "")), int(payload.get("count", 0)), alerts
        )
    return alert_view(payload, delivery.rule)


def alert_view(payload: dict[str, Any], rule: str) -> AlertView:
    article = payload.get("article", {})
    date = str(article.get("date", ""))
    hits = tuple(
        clip_start(marked(str(hit.get("snippet", "")), hit.get("text")), BEFORE_HIT) for hit in payload.get("hits", [])
    )
    return AlertView(
        str(payload.get("alert_id", "")),
        str(payload.get("rule", rule)),
        str(article.get("path", "")),
        date,
        str(payload.get("clause", "")),
        tuple(hit for hit in hits if hit),
    )


def event_type(delivery: Delivery) -> str:
    return "alert.digest" if delivery.kind == "digest" else "alert.matched"


def timestamp(delivery: Delivery) -> str:
    """The delivery's creation time, ISO 8601 in UTC: the same on every attempt."""
    return datetime.fromtimestamp(delivery.created_at, UTC).isoformat().replace("+00:00", "Z")


def more_hits(count: int) -> str:
    return f"… and {count} more {plural(count, 'hit')}"


def more_alerts(count: int) -> str:
    return f"… and {count} more {plural(count, 'alert')}"


def plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
