"""A ``limits`` storage in the panel's own database (SQLite or PostgreSQL), for Flask-Limiter.

Login rate limits must hold across every worker of the panel, so they cannot live in process memory. Redis does
that (``LOAPHUONG_RATELIMIT_STORAGE_URI=redis://…``), but a ward's panel has no Redis: by default the counters are
rows of ``rate_limits`` (``broadcaster.models.RateLimitCounter``) in the database every worker already shares.

Registered under the scheme ``loaphuong-db://``; the engine comes as the storage option ``engine``
(``storage_from_string("loaphuong-db://", engine=db.engine)``). Fixed windows only (Flask-Limiter's default
strategy): one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per hit, on both backends.
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from broadcaster.models import RateLimitCounter

TABLE = RateLimitCounter.__table__
#: Expired rows are deleted once every this many hits (per process).
SWEEP_EVERY = 200


def _upsert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_limits`` table."""

    STORAGE_SCHEME = ["loaphuong-db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, engine: Engine | None = None,
                 **options: Any) -> None:
        if engine is None:
            raise ValueError("loaphuong-db:// needs the panel's engine (storage option 'engine')")
        self.engine = engine
        self._insert = _upsert(engine.dialect.name)
        self._hits = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        expired = TABLE.c.expires_at <= now
        stmt = self._insert(TABLE).values(bucket=key, hits=amount, expires_at=now + expiry)
        stmt = stmt.on_conflict_do_update(
            index_elements=[TABLE.c.bucket],
            set_={"hits": case((expired, amount), else_=TABLE.c.hits + amount),
                  "expires_at": case((expired, now + expiry), else_=TABLE.c.expires_at)},
        ).returning(TABLE.c.hits)
        with self.engine.begin() as conn:
            hits = int(conn.execute(stmt).scalar_one())
            self._hits += 1
            if self._hits % SWEEP_EVERY == 0:
                conn.execute(delete(TABLE).where(TABLE.c.expires_at <= now))
        return hits

    def _row(self, key: str) -> tuple[int, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(TABLE.c.hits, TABLE.c.expires_at).where(TABLE.c.bucket == key)).first()
        if row is None or row.expires_at <= time.time():
            return None
        return int(row.hits), float(row.expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            count = conn.execute(select(func.count()).select_from(TABLE)).scalar_one()
            conn.execute(delete(TABLE))
        return int(count)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(TABLE).where(TABLE.c.bucket == key))
