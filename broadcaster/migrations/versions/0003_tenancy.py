"""A province of wards (issue "a province of wards"): the ``wards`` table and a ward on every tenant object.

- ``wards``: the tenants. The first one is created at the first start (broadcaster/tenancy.py
  ``ensure_default_ward``), which also moves the data of a one-ward installation into it (``ward_id`` NULL →
  the first ward): this revision only adds the columns, so it never needs the configuration.
- ``ward_id`` on users (ward roles; the province roles have none), zones, nodes, announcements, schedules,
  alerts (a ward's alert; a province alert has none and names its wards in ``alert_wards``) and audit_log.

Revision ID: 0003_tenancy
Revises: 0002_release_policy
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_tenancy"
down_revision = "0002_release_policy"
branch_labels = None
depends_on = None

TABLES = ("users", "zones", "nodes", "announcements", "schedules", "audit_log", "alerts")


def upgrade() -> None:
    op.create_table(
        "wards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("ward_id", sa.Integer(), nullable=True))
            batch_op.create_index(f"ix_{table}_ward_id", ["ward_id"], unique=False)
            batch_op.create_foreign_key(f"{table}_ward_id_fkey", "wards", ["ward_id"], ["id"])
    op.create_table(
        "alert_wards",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id", "ward_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_wards")
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"{table}_ward_id_fkey", type_="foreignkey")
            batch_op.drop_index(f"ix_{table}_ward_id")
            batch_op.drop_column("ward_id")
    op.drop_table("wards")
