"""The Standard Webhooks envelope `{type, timestamp, data}`: types `alert.matched` and `alert.digest`,
`data` the stored payload unchanged. The body is the same on every attempt of a delivery."""

from __future__ import annotations

from typing import Any

from monitor.config.rules import Webhook
from monitor.notify.formats.view import event_type, timestamp
from monitor.store import Delivery


def render(webhook: Webhook, delivery: Delivery) -> Any:
    return {"type": event_type(delivery), "timestamp": timestamp(delivery), "data": delivery.payload}
