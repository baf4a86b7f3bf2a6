"""Alert counts: the number an alert's match carried, for `realert_on_increase`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

`alerts.count_value` (new, nullable) is the largest count among the match's hits (`Match.count.value`), or NULL
when the match had none. The realert lookup of a rule with `realert_on_increase` reads the largest count of
the alerts sent in the window (`Transaction.alerted_since`). Rows written before this revision have NULL: an
alert without a count, so the first later match with a count in its window counts as an increase.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:  # SQLite: ADD COLUMN in place (no copy for a new column)
        batch.add_column(sa.Column("count_value", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:  # SQLite: the table is copied
        batch.drop_column("count_value")
