"""Webhook state (`webhook_state`): disabled or not and why, each webhook's latest delivery and error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from monitor.store.engine import Database
from monitor.store.schema import webhook_state
from monitor.store.statements import upsert


class Webhooks(Database):
    """The store's statements on webhook state."""

    def set_webhook_disabled(self, name: str, disabled: bool, reason: str | None = None) -> None:
        with self.begin() as conn:
            upsert(conn, webhook_state, {"name": name, "disabled": disabled, "disabled_reason": reason}, key="name")

    def webhook_states(self) -> list[dict[str, Any]]:
        """Every webhook's row, by name: disabled, disabled_reason, last_delivery_at, last_error(_at)."""
        with self.engine.connect() as conn:
            return webhook_rows(conn)


def webhook_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(select(webhook_state).order_by(webhook_state.c.name)).mappings()]


def note_webhooks(conn: Connection, statuses: Iterable[dict[str, Any]]) -> None:
    """Write each webhook's latest delivery and latest error, one row per webhook (`name` and the values)."""
    for status in statuses:
        upsert(conn, webhook_state, status, key="name")
