"""Emergency alerts in CAP 1.2 (issue 17 §5): trusted sources and the messages taken from them.

- ``cap_sources``: name, shared key (HMAC-SHA256 of the request body), automatic (released at once), ward (NULL:
  every ward).
- ``cap_messages``: sender + identifier taken once per source (a duplicate is refused), the alert it made.

Revision ID: 0009_cap
Revises: 0008_languages
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_cap"
down_revision = "0008_languages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cap_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name="cap_sources_ward_id_fkey"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name="cap_sources_created_by_id_fkey"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="cap_sources_name_key"),
    )
    op.create_index("ix_cap_sources_ward_id", "cap_sources", ["ward_id"], unique=False)
    op.create_table(
        "cap_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("msg_type", sa.String(length=10), nullable=False),
        sa.Column("sent", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["cap_sources.id"], ondelete="SET NULL",
                                name="cap_messages_source_id_fkey"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL", name="cap_messages_alert_id_fkey"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "sender", "identifier", name="cap_messages_source_id_sender_identifier_key"),
    )
    op.create_index("ix_cap_messages_alert_id", "cap_messages", ["alert_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cap_messages_alert_id", table_name="cap_messages")
    op.drop_table("cap_messages")
    op.drop_index("ix_cap_sources_ward_id", table_name="cap_sources")
    op.drop_table("cap_sources")
