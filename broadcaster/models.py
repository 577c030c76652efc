"""Database tables (SQLAlchemy 2, SQLite by default, PostgreSQL-compatible).

All times are stored as timezone-aware UTC (``UtcDateTime``); conversion to Asia/Ho_Chi_Minh happens
only at the edges (forms, pages, API input without an offset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns aware datetimes (SQLite drops tzinfo otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="officer")  # officer | leader | admin
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class Zone(Base):
    """A village (thôn) or residential group (tổ dân phố) of a ward: the unit officers target."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="residential_group")  # village | residential_group
    ward: Mapped[str] = mapped_column(String(200), default="")
    nodes: Mapped[list[Node]] = relationship(back_populates="zone")


class Node(Base):
    """A loudspeaker cluster controller."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"), nullable=True)
    zone: Mapped[Zone | None] = relationship(back_populates="nodes")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # presence, from the retained status topic
    state: Mapped[str] = mapped_column(String(20), default="unknown")  # online | offline | stopped | unknown
    session: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    firmware: Mapped[str | None] = mapped_column(String(100), nullable=True)
    volume: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reported_plan_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the plan the panel last published (kept to republish after a broker restart)
    plan_version: Mapped[int] = mapped_column(BigInteger, default=0)
    plan_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    plan_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    plan_published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Bumped when the node is re-provisioned (e.g. after a factory reset restarts its seq at 1).
    event_epoch: Mapped[int] = mapped_column(Integer, default=0)


class Media(Base):
    __tablename__ = "media"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(50), default="audio/mpeg")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Announcement(Base):
    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text, default="")
    #: What the speech engine is given (after Vietnamese normalization) — leaders approve this.
    normalized_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: draft (no audio yet, or rendering failed) | ready (audio rendered)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media.sha256"), nullable=True)
    media: Mapped[Media | None] = relationship()
    engine: Mapped[str | None] = mapped_column(String(30), nullable=True)
    render_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_by: Mapped[User | None] = relationship()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


schedule_zones = Table(
    "schedule_zones",
    Base.metadata,
    Column("schedule_id", ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
)


class Schedule(Base):
    """A one-off play of an announcement to one or more zones at an absolute time."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id"))
    announcement: Mapped[Announcement] = relationship()
    start_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | cancelled
    zones: Mapped[list[Zone]] = relationship(secondary=schedule_zones)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class NodeEvent(Base):
    """Every event a node reported, deduplicated by (node, seq): the proof-of-play record."""

    __tablename__ = "node_events"
    __table_args__ = (UniqueConstraint("node_id", "epoch", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    plan_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scheduled_start: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    actual_start: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    offset_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class CommandRecord(Base):
    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(40))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | ok | error | rejected
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Abbreviation(Base):
    """A ward's own reading of an abbreviation, on top of (and overriding) the default dictionary."""

    __tablename__ = "abbreviations"
    id: Mapped[int] = mapped_column(primary_key=True)
    abbr: Mapped[str] = mapped_column(String(40), unique=True)
    expansion: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
