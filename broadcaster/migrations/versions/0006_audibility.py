"""Proof of audibility (issue 17): what a node measured at its output over each airing.

- ``node_events.output_lufs``: integrated loudness the node measured (LUFS), on ``playback_finished`` /
  ``playback_stopped``; NULL when it sent none.
- ``node_events.output_sensor``: false when the node said it has no output sensor.

Revision ID: 0006_audibility
Revises: 0005_officer_day
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audibility"
down_revision = "0005_officer_day"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("node_events") as batch:
        batch.add_column(sa.Column("output_lufs", sa.Float(), nullable=True))
        batch.add_column(sa.Column("output_sensor", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_events") as batch:
        batch.drop_column("output_sensor")
        batch.drop_column("output_lufs")
