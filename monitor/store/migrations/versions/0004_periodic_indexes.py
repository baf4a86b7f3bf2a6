"""Indexes for the periodic queries, so that they cost the same with a year of history as with a day.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

`alerts_digest_pending`: a partial index on (rule, created_at) of the alerts still waiting for a digest,
for the digest flush's check and query and the start-up catch-up (`monitor.notify.alerts._pending`,
`oldest_pending`); its condition is the queries' own (`digest_pending IS true`, on SQLite `IS 1`).
`alerts_realert`: (rule, realert_key, created_at), for the realert lookup (`monitor.notify.alerts._recent`).
Realert keys are at most 256 bytes (a longer `term` key is stored as its digest), within PostgreSQL's
limit on an index entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pending = sa.column("digest_pending").is_(True)
    op.create_index(
        "alerts_digest_pending",
        "alerts",
        ["rule", "created_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_index("alerts_realert", "alerts", ["rule", "realert_key", "created_at"])


def downgrade() -> None:
    op.drop_index("alerts_realert", "alerts")
    op.drop_index("alerts_digest_pending", "alerts")
