"""Reading claims: one row per file a replica is reading, so that a file is read and matched by one replica.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

On PostgreSQL `monitor.ingest.pipeline.Pipeline` claims each file version (ledger key, size, mtime) in `reading`
before it reads it, with its owner (host:pid:token) and a lease; the row is deleted in the transaction that writes
the file's ledger row. A claim whose lease ran out (its replica died mid-read) is taken over. SQLite (one
daemon) never uses the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reading",
        sa.Column("path", sa.Text(), primary_key=True),  # the ledger key (`files.path`)
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),  # host:pid:token of the replica reading it
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reading")
