"""Story signatures of terms: the MinHash signatures stored before are emptied.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

`story_articles.signature` held an article's MinHash (128 little-endian uint32 values: 512 bytes); it now holds
its terms and word sketch (`monitor.matching.stories.signature`: a 4-byte mark, at most a few hundred bytes).
The rows of the old form are emptied (an empty signature: the article joins other articles by its path only);
they leave with the story window. Downgrading empties the rows of the new form, which the old code cannot read.
No table changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MINHASH_BYTES = 512


def _empty(where: str) -> None:
    statement = sa.text(f"UPDATE story_articles SET signature = :empty WHERE length(signature) {where} :size")
    op.execute(statement.bindparams(sa.bindparam("empty", b"", sa.LargeBinary()), size=_MINHASH_BYTES))


def upgrade() -> None:
    _empty("=")


def downgrade() -> None:
    _empty("<>")
