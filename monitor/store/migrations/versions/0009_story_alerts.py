"""Story alerts: an index for the first alert of a rule in a story (`story: first_then_updates`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

`alerts_story` on (story, rule, created_at) makes `Transaction.story_firsts` one index range per (story, rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("alerts_story", "alerts", ["story", "rule", "created_at"])


def downgrade() -> None:
    op.drop_index("alerts_story", table_name="alerts")
