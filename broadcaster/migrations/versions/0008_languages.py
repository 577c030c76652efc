"""Ethnic-minority language versions (issue 17 §3).

- ``zones.languages``: the languages a zone's residents need, in order (JSON list of codes; NULL: Vietnamese only).
- ``announcement_versions``: one per (announcement, language) besides Vietnamese, with its own text, audio and
  approval.

Revision ID: 0008_languages
Revises: 0007_sequence
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_languages"
down_revision = "0007_sequence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("languages", sa.JSON(), nullable=True))
    op.create_table(
        "announcement_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=True),
        sa.Column("media_sha256", sa.String(length=64), nullable=True),
        sa.Column("approval", sa.String(length=20), nullable=False),
        sa.Column("approval_comment", sa.Text(), nullable=True),
        sa.Column("approved_media_sha256", sa.String(length=64), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"], ondelete="CASCADE",
                                name="announcement_versions_announcement_id_fkey"),
        sa.ForeignKeyConstraint(["media_sha256"], ["media.sha256"], name="announcement_versions_media_sha256_fkey"),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"], name="announcement_versions_reviewed_by_id_fkey"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name="announcement_versions_created_by_id_fkey"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("announcement_id", "language",
                            name="announcement_versions_announcement_id_language_key"),
    )
    op.create_index("ix_announcement_versions_announcement_id", "announcement_versions", ["announcement_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_announcement_versions_announcement_id", table_name="announcement_versions")
    op.drop_table("announcement_versions")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("languages")
