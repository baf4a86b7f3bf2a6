"""Payload formats: `render(webhook, delivery) -> bytes`. One function per format, one signature.

`generic` is the Standard Webhooks envelope `{type, timestamp, data}` with types `alert.matched` and
`alert.digest`; its body is the same on every attempt of a delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.rules import Webhook
from monitor.store import Delivery

Renderer = Callable[[Webhook, Delivery], Any]


def event_type(delivery: Delivery) -> str:
    return "alert.digest" if delivery.kind == "digest" else "alert.matched"


def generic(webhook: Webhook, delivery: Delivery) -> Any:
    moment = datetime.fromtimestamp(delivery.created_at, UTC).isoformat().replace("+00:00", "Z")
    return {"type": event_type(delivery), "timestamp": moment, "data": delivery.payload}


RENDERERS: dict[str, Renderer] = {"generic": generic}


def render(webhook: Webhook, delivery: Delivery) -> bytes:
    renderer = RENDERERS.get(webhook.format)
    if renderer is None:
        raise ValueError(f"format {webhook.format!r} is not available in this version")
    return json.dumps(renderer(webhook, delivery), ensure_ascii=False, separators=(",", ":")).encode()
