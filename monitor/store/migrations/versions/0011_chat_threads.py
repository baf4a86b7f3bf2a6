"""Chat threads: the Discord thread each story's first alert started, per webhook (`thread: story`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A new table `chat_threads` (webhook, alert_id) -> thread_id, with an index on created_at for the prune.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_threads",
        sa.Column("webhook", sa.String(80), primary_key=True),
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("thread_id", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("chat_threads_created", "chat_threads", ["created_at"])


def downgrade() -> None:
    op.drop_index("chat_threads_created", table_name="chat_threads")
    op.drop_table("chat_threads")
