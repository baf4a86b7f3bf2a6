"""Digest claims: one row per (rule, schedule time), so that exactly one replica flushes each digest.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-20

`monitor.notify.alerts.flush_digest` inserts the claim (conflicts ignored) in the flush transaction; only the
replica whose insert took effect builds the digest and marks its alerts as sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_claims",
        sa.Column("rule", sa.String(80), primary_key=True),
        sa.Column("slot", sa.String(40), primary_key=True),  # the schedule time, ISO 8601 in UTC
        sa.Column("flushed_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("digest_claims")
