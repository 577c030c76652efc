"""Alembic environment of the panel: the models' metadata, on the connection ``broadcaster.db`` hands over.

``broadcaster.db.alembic_config`` builds the configuration in code (no alembic.ini): ``script_location`` is
this directory, found from the installed package, so migrations run from any working directory. The
connection comes from ``config.attributes["connection"]`` (``Database.upgrade``) or, when alembic is driven
without one, from the ``sqlalchemy.url`` option.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.types import TypeDecorator

from broadcaster.db import FOREIGN_TABLES  # tables that are not the models' (APScheduler's job store)
from broadcaster.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render the models' own column types (UtcDateTime, WireJSON) as what they store, so that a revision
    never imports broadcaster.models (which keeps changing after the revision is written)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _configure(**kw: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        render_item=render_item,
        compare_type=True,
        **kw,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, render_as_batch=str(url).startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Any) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch operations rebuild a table (copy, drop, rename): with foreign keys on, dropping ``alerts``
        # would cascade into alert_zones and alert_deliveries. The pragma is ignored inside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    # render_as_batch: SQLite alters most things only by rebuilding the table (alembic's batch mode).
    _configure(connection=connection, render_as_batch=sqlite)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
