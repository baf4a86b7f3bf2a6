"""The initial schema: the file ledger, article claims, alerts, the delivery outbox, webhook state, meta.

Revision ID: 0001
Revises: -
Create Date: 2025-01-20

This is the schema news-monitor created before it had migrations; a database made then counts as 0001.
Sizes and nanosecond mtimes are 64-bit (BIGINT; on SQLite every INTEGER already is).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32)),
        sa.Column("reason", sa.Text()),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "articles",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("article_date", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("realert_key", sa.Text(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("digest_pending", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("alerts_rule_created", "alerts", ["rule", "created_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("webhook", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float()),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float()),
    )
    op.create_index("deliveries_due", "deliveries", ["state", "due_at"])
    op.create_table(
        "webhook_state",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("last_delivery_at", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", sa.Float()),
    )
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.bulk_insert(meta, [{"key": "schema", "value": "1"}])


def downgrade() -> None:
    for table in ("meta", "webhook_state", "deliveries", "alerts", "articles", "files"):
        op.drop_table(table)
