"""Payloads stored once: an alert's deliveries refer to the alert instead of copying its payload.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

`deliveries.alert_id` (new, nullable) names the alert whose payload an alert delivery sends, and
`deliveries.payload` may be NULL for such a row. A digest part stores a compact payload that lists its
alerts by id. `monitor.store.outbox.compose` builds the full payload when it hands a delivery out. Rows written
before this revision keep their full payload and no alert_id, and are sent as stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:  # SQLite: the table is copied
        batch.add_column(sa.Column("alert_id", sa.String(64)))
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    """Copy the payloads back into the rows that refer to them, then drop the column."""
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE deliveries SET payload = (SELECT payload FROM alerts WHERE alerts.id = deliveries.alert_id)"
            " WHERE payload IS NULL AND alert_id IS NOT NULL"
        )
    )
    for delivery_id, stored in conn.execute(sa.text("SELECT id, payload FROM deliveries WHERE kind = 'digest'")).all():
        part = json.loads(stored)
        if "alert_ids" in part:
            update = sa.text("UPDATE deliveries SET payload = :payload WHERE id = :id")
            conn.execute(update, {"payload": json.dumps(_full(conn, part)), "id": delivery_id})
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=False)
        batch.drop_column("alert_id")


def _full(conn: sa.Connection, part: dict[str, Any]) -> dict[str, Any]:
    """A digest part as revision 0002 stored it: its alerts' payloads in full."""
    ids = part.pop("alert_ids")
    query = sa.text("SELECT id, payload FROM alerts WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
    found: dict[str, str] = {i: p for i, p in conn.execute(query, {"ids": ids})} if ids else {}
    return part | {"alerts": [json.loads(found[i]) if i in found else {"alert_id": i} for i in ids]}
