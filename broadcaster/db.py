"""Engine, sessions and the schema. One ``Database`` per app, kept in ``app.extensions`` (never a module global).

The schema is owned by the Alembic migrations in ``broadcaster/migrations`` (SQLite and PostgreSQL):

- ``Database.upgrade()`` (``loaphuong db upgrade``) creates or upgrades it. A database made by ``create_all``
  before migrations existed (no ``alembic_version``) is recognised by its tables and columns, stamped with the
  revision it matches, then upgraded; one that matches no known revision is refused, never guessed at.
- ``Database.prepare(...)`` is what ``create_app`` calls: SQLite upgrades by itself; PostgreSQL (run by a DBA,
  upgraded on purpose) is only checked, and an old or unversioned schema raises ``SchemaError`` naming
  ``loaphuong db upgrade``.
- ``Database.create_all()`` is the tests' fast path: the models' tables at once, stamped at head (the
  migrations give the same schema: tests/test_migrations.py compares them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine, event, inspect, pool
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.migrations.legacy import LEGACY_OPTIONAL_TABLES, LEGACY_SCHEMAS
from broadcaster.models import Base

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "loaphuong db upgrade"
#: Tables in the database that the models do not describe (APScheduler's job store creates its own).
FOREIGN_TABLES = frozenset({"apscheduler_jobs", "alembic_version"})


class SchemaError(RuntimeError):
    """The database's schema is not the one this version of the panel runs on."""


def alembic_config(connection: Connection | None = None, url: str | None = None) -> AlembicConfig:
    """Alembic's configuration built in code: the migrations are found from the package, from any cwd."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # The MQTT bridge and the scheduler write from their own threads.
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, **_engine_kwargs(url))
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # ------------------------------------------------------------------------------------------ schema
    def create_all(self) -> None:
        """The models' tables as they are now, stamped at the head revision (tests' fast path)."""
        Base.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if self._revision(conn) is None:
                self._stamp(conn, head_revision())

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return self._revision(conn)

    def status(self) -> str:
        """One line: where the schema stands against this version's migrations."""
        with self.engine.connect() as conn:
            rev = self._revision(conn)
            tables = _model_tables(conn)
        head = head_revision()
        if rev is None:
            return "empty database (no tables yet)" if not tables else "unversioned (created before migrations)"
        if rev == head:
            return f"{rev} (head)"
        if _known(rev):
            return f"{rev} (head is {head}: run `{UPGRADE_COMMAND}`)"
        return f"{rev} (unknown to this version: migrated by a newer one?)"

    def check(self) -> None:
        """Raise SchemaError unless the schema is at this version's head revision."""
        with self.engine.connect() as conn:
            rev = self._revision(conn)
            empty = rev is None and not _model_tables(conn)
        head = head_revision()
        if rev == head:
            return
        where = self.engine.url.render_as_string(hide_password=True)
        if empty:
            raise SchemaError(f"the database {where} has no tables yet: run `{UPGRADE_COMMAND}` to create them")
        if rev is None:
            raise SchemaError(f"the database {where} was created before migrations existed (no alembic_version): "
                              f"run `{UPGRADE_COMMAND}` to recognise and upgrade it")
        if not _known(rev):
            raise SchemaError(f"the database {where} is at revision {rev}, unknown to this version of the panel "
                              "(migrated by a newer one?)")
        raise SchemaError(f"the database {where} is at revision {rev}, this version needs {head}: "
                          f"run `{UPGRADE_COMMAND}`")

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Create or upgrade the schema, keeping every row. Returns (revision before, revision after)."""
        # A connection of its own (not pooled): migrations switch SQLite's foreign keys off while they run.
        kwargs = {k: v for k, v in _engine_kwargs(self.url).items() if k == "connect_args"}
        engine = create_engine(self.url, poolclass=pool.NullPool, **kwargs)
        try:
            with engine.connect() as conn:
                before = self._revision(conn)
                if before is None and _model_tables(conn):
                    legacy = recognise_legacy(conn)
                    self._stamp(conn, legacy)
                    conn.commit()
                    before = legacy
                elif before is not None and not _known(before):
                    raise SchemaError(f"the database is at revision {before}, unknown to this version of the panel "
                                      "(migrated by a newer one?): not touched")
                command.upgrade(alembic_config(conn), revision)
                conn.commit()
                after = self._revision(conn)
        finally:
            engine.dispose()
        assert after is not None
        return before, after

    def prepare(self, *, auto_upgrade: bool | None = None, fast: bool = False) -> None:
        """What the app runs at start: ``fast`` → create_all (tests); SQLite (or ``auto_upgrade``) → upgrade;
        otherwise (PostgreSQL) → check only."""
        if fast:
            self.create_all()
            return
        if self.is_sqlite if auto_upgrade is None else auto_upgrade:
            before, after = self.upgrade()
            if before != after:
                log.info("database schema upgraded: %s → %s", before or "empty", after)
        else:
            self.check()

    @staticmethod
    def _revision(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def _stamp(conn: Connection, revision: str) -> None:
        ctx = MigrationContext.configure(conn)
        ctx.stamp(_scripts(), revision)

    # ------------------------------------------------------------------------------------------ sessions
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _model_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - FOREIGN_TABLES


def recognise_legacy(conn: Connection) -> str:
    """The revision an unversioned database (made by ``create_all`` before migrations) matches, by its tables
    and columns; SchemaError if it matches none (then nothing is stamped and nothing changes)."""
    insp = inspect(conn)
    actual = {t: {c["name"] for c in insp.get_columns(t)} for t in _model_tables(conn)}
    best: tuple[int, str, list[str]] | None = None
    for revision, schema in LEGACY_SCHEMAS.items():
        optional = LEGACY_OPTIONAL_TABLES.get(revision, frozenset())
        diffs = _schema_diffs(schema, {t: c for t, c in actual.items() if t not in optional})
        if not diffs:
            return revision
        if best is None or len(diffs) < best[0]:
            best = (len(diffs), revision, diffs)
    assert best is not None
    raise SchemaError(f"the database has no alembic_version and its tables match no known schema (closest: "
                      f"revision {best[1]}, differing in: {'; '.join(best[2][:10])}); not upgraded")


def _schema_diffs(expected: dict[str, frozenset[str]], actual: dict[str, set[str]]) -> list[str]:
    diffs = [f"table {t} missing" for t in sorted(expected.keys() - actual.keys())]
    diffs += [f"unexpected table {t}" for t in sorted(actual.keys() - expected.keys())]
    for t in sorted(expected.keys() & actual.keys()):
        diffs += [f"{t}.{c} missing" for c in sorted(expected[t] - actual[t])]
        diffs += [f"unexpected column {t}.{c}" for c in sorted(actual[t] - expected[t])]
    return diffs


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()

