"""One release policy (commit bedc81b): approved audio, stream sources, two-person cancel.

- ``announcements.approved_media_sha256``: the audio a leader or admin approved (broadcaster/policy.py
  ``playable``). Data: every announcement already approved or published gets its current audio as the
  approved one, so what was on the air before the upgrade stays playable.
- ``stream_sources``: the admin's list of relay sources. ``create_all`` of bedc81b run on a 0b4b8a1 database
  added this table (and no column): such a database is recognised as the baseline and the table kept.
- ``alerts.cancel_requested_by_id`` / ``cancel_requested_at``: the first person of a two-person cancel.
- ``ward_settings.emergency_two_person`` now defaults to on (a default of the models, no DDL). Data: a row
  that says off without anybody having chosen it — no ``emergency.settings`` entry for its ward in the audit
  log; the row was made by saving quiet hours, with the old default — gets the new default; a ward whose admin
  switched it off keeps it off.

Revision ID: 0002_release_policy
Revises: 0001_baseline
Create Date: 2025-07-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_release_policy"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("stream_sources"):
        op.create_table(
            "stream_sources",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("code", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("url", sa.String(length=2000), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_by_id", sa.Integer(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("code"),
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_requested_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cancel_requested_at", sa.DateTime(), nullable=True))
        # PostgreSQL's own name for it, as create_all gets there (batch mode on SQLite needs a name).
        batch_op.create_foreign_key("alerts_cancel_requested_by_id_fkey", "users", ["cancel_requested_by_id"], ["id"])

    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_media_sha256", sa.String(length=64), nullable=True))

    # What was approved before the policy existed was approved with the audio it has now.
    op.execute(
        "UPDATE announcements SET approved_media_sha256 = media_sha256 "
        "WHERE approval IN ('approved', 'published') AND media_sha256 IS NOT NULL"
    )
    # Two-person release: on, unless an admin switched it off (audited as emergency.settings on "ward:<ward>").
    settings = sa.table("ward_settings", sa.column("ward", sa.String), sa.column("emergency_two_person", sa.Boolean))
    audit = sa.table("audit_log", sa.column("action", sa.String), sa.column("target", sa.String))
    chosen = sa.exists().where(audit.c.action == "emergency.settings",
                               audit.c.target == sa.literal("ward:") + settings.c.ward)
    op.execute(settings.update().where(settings.c.emergency_two_person == sa.false(), ~chosen)
               .values(emergency_two_person=True))


def downgrade() -> None:
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_column("approved_media_sha256")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("alerts_cancel_requested_by_id_fkey", type_="foreignkey")
        batch_op.drop_column("cancel_requested_at")
        batch_op.drop_column("cancel_requested_by_id")

    op.drop_table("stream_sources")
