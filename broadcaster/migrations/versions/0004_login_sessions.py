"""Sessions, login and API tokens (issue 13): ``login_sessions`` and ``rate_limits``.

- ``login_sessions``: one row per web login (its random key is what the session and remember-me cookies carry)
  and per API token (several per user); only SHA-256 hashes of the secrets, revocable one by one or all at once
  (logout, a disabled user, a password reset, a role change).
- ``rate_limits``: the fixed-window counters of the login rate limits, shared by every worker through the
  database (broadcaster/ratelimit_storage.py).
- Data: each user's single API token of before (``users.api_token_hash``) becomes one of her tokens, so it
  keeps working; the old column is left NULL (kept so that an older panel can still open the database).

Revision ID: 0004_login_sessions
Revises: 0003_tenancy
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_login_sessions"
down_revision = "0003_tenancy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="login_sessions_user_id_fkey"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash", name="login_sessions_secret_hash_key"),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"], unique=False)
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    # The one API token each user had keeps working: it becomes a row of her tokens list.
    op.execute(
        "INSERT INTO login_sessions (kind, secret_hash, user_id, created_at, user_agent, address) "
        "SELECT 'api', api_token_hash, id, created_at, 'API token from before 0004', '' FROM users "
        "WHERE api_token_hash IS NOT NULL"
    )
    op.execute("UPDATE users SET api_token_hash = NULL WHERE api_token_hash IS NOT NULL")


def downgrade() -> None:
    # The newest active API token of each user becomes her single token again.
    op.execute(
        "UPDATE users SET api_token_hash = (SELECT secret_hash FROM login_sessions l WHERE l.user_id = users.id "
        "AND l.kind = 'api' AND l.revoked_at IS NULL ORDER BY l.id DESC LIMIT 1)"
    )
    op.drop_table("rate_limits")
    op.drop_index("ix_login_sessions_user_id", table_name="login_sessions")
    op.drop_table("login_sessions")
