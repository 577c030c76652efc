"""An officer's day on her phone (issue 15): archive with undo, render progress, notifications, idempotent forms.

- ``announcements.render_progress``: 0–100 while speech is produced in the background.
- ``announcements.archived_at/archived_by_id`` and the same on ``schedules``: "delete" with undo.
- ``users.email``: where the notification centre may also write (optional).
- ``notifications``: what a person must act on (approve, confirm an emergency), per recipient.
- ``form_submissions``: the one-time key of each submitted web form, so a double tap never duplicates.

Revision ID: 0005_officer_day
Revises: 0004_login_sessions
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_officer_day"
down_revision = "0004_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("announcements") as batch:
        batch.add_column(sa.Column("render_progress", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("archived_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("announcements_archived_by_id_fkey", "users", ["archived_by_id"], ["id"])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("archived_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("schedules_archived_by_id_fkey", "users", ["archived_by_id"], ["id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="notifications_user_id_fkey"),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name="notifications_ward_id_fkey"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"], unique=False)
    op.create_table(
        "form_submissions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="form_submissions_user_id_fkey"),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_form_submissions_created_at", "form_submissions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_form_submissions_created_at", table_name="form_submissions")
    op.drop_table("form_submissions")
    op.drop_index("ix_notifications_user_id", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_constraint("schedules_archived_by_id_fkey", type_="foreignkey")
        batch.drop_column("archived_by_id")
        batch.drop_column("archived_at")
    with op.batch_alter_table("announcements") as batch:
        batch.drop_constraint("announcements_archived_by_id_fkey", type_="foreignkey")
        batch.drop_column("archived_by_id")
        batch.drop_column("archived_at")
        batch.drop_column("render_progress")
