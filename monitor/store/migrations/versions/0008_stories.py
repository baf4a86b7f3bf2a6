"""Stories: each claimed article's story and version, and the story of each alert.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

`story_articles` (new) holds, per claimed article (its content hash, unique), its story, the path and version
of the file it came from, its date and arrival, its MinHash signature (bytes) and matched rules, numbered in the
order the stories were assigned (`seq`, autoincrement: a replica loads the rows after the last number it has).
`alerts.story` (new, nullable) is the story of the alert's article; rows written before this revision have
NULL, as do alerts written with `stories.enabled: false`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "story_articles",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("story", sa.String(40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("article_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("story_articles_path", "story_articles", ["path", "version"])
    op.create_index("story_articles_created", "story_articles", ["created_at"])
    with op.batch_alter_table("alerts") as batch:  # SQLite: ADD COLUMN in place (no copy for a new column)
        batch.add_column(sa.Column("story", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:  # SQLite: the table is copied
        batch.drop_column("story")
    op.drop_table("story_articles")
