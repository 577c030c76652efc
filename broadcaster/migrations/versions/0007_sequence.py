"""Sequenced zones (issue 17 §6): a schedule may play its zones one after another.

- ``schedules.sequence``: {"zone_ids": [...], "zones": [codes], "gap_s": N}, or NULL (all zones together).

Revision ID: 0007_sequence
Revises: 0006_audibility
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sequence"
down_revision = "0006_audibility"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("sequence", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("sequence")
