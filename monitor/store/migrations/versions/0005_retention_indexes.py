"""Indexes for the prune (monitor/store/retention.py), so that its checks cost an index probe per row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

`files_content_hash`: the ledger rows of a content, for "no ledger row refers to this claim" before a claim
(`articles`) is pruned. `deliveries_alert`: the deliveries of an alert, for "no delivery refers to this
alert" before an alert is pruned.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("files_content_hash", "files", ["content_hash"])
    op.create_index("deliveries_alert", "deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_index("deliveries_alert", "deliveries")
    op.drop_index("files_content_hash", "files")
