"""Database tables (SQLAlchemy 2, SQLite by default, PostgreSQL-compatible).

All times are stored as timezone-aware UTC (``UtcDateTime``); conversion to Asia/Ho_Chi_Minh happens
only at the edges (forms, pages, API input without an offset).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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


class WireJSON(TypeDecorator[dict[str, Any]]):
    """A JSON object stored as the text it was sent as: binds a ``dict`` (serialised) or the payload's
    ``bytes``/``str`` as they are (no second serialisation of 10 000 signed plans), reads back a ``dict``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | bytes | str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> dict[str, Any] | None:
        return json.loads(value) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Ward(Base):
    """A ward or commune (phường / xã) of the province: the tenant. Zones, nodes, announcements, schedules,
    alerts and ward users belong to one (broadcaster/tenancy.py)."""

    __tablename__ = "wards"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    #: officer | leader | admin (of ``ward_id``) | province_leader | province_admin (no ward)
    role: Mapped[str] = mapped_column(String(20), default="officer")
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    #: Unused since 0004_login_sessions (the API tokens are rows of ``login_sessions``); always NULL.
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Where the notification centre also sends what she must act on (optional; NOTIFY_SMTP_* settings).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: The login this instance was loaded through (the web session's or the API token's secret; not a column):
    #: set by broadcaster/logins.py, it is what Flask-Login keeps in the session and the remember-me cookie.
    session_key = None

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
        # The random key of a login_sessions row, never the user id: logging out or revoking that row ends the
        # session cookie and the remember-me cookie that carry it (broadcaster/logins.py).
        if not self.session_key:
            raise RuntimeError("log a user in through broadcaster.logins.start_session")
        return self.session_key


class LoginSession(Base):
    """One login: a web session (its key is in the session and remember-me cookies) or an API token. Only the
    SHA-256 of the secret is stored; revoked or expired rows authenticate nobody (broadcaster/logins.py)."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # web | api
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")


class RateLimitCounter(Base):
    """A fixed-window counter of the login rate limits (broadcaster/ratelimit_storage.py): shared by every
    process of the panel through its database. ``expires_at`` is a UNIX time in seconds."""

    __tablename__ = "rate_limits"
    bucket: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float)


class Zone(Base):
    """A village (thôn) or residential group (tổ dân phố) of a ward: the unit officers target."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="residential_group")  # village | residential_group
    #: The code of ``ward_id``'s ward (kept equal; ward settings such as quiet hours are keyed by it).
    ward: Mapped[str] = mapped_column(String(200), default="")
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    nodes: Mapped[list[Node]] = relationship(back_populates="zone")
    #: The languages its residents need, in the order they are played (codes, broadcaster/languages.py);
    #: None: Vietnamese only.
    languages: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class Node(Base):
    """A loudspeaker cluster controller."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"), nullable=True)
    zone: Mapped[Zone | None] = relationship(back_populates="nodes")
    #: The ward the node belongs to: its zone's (a node without a zone keeps the ward it was registered in).
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
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
    plan_payload: Mapped[dict[str, Any] | None] = mapped_column(WireJSON, nullable=True)  # as sent, signed
    plan_published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Bumped when the node is re-provisioned (e.g. after a factory reset restarts its seq at 1).
    event_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # --- fleet registry (broadcaster/fleet.py): where the cluster is and what it is
    ward: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    hardware: Mapped[str | None] = mapped_column(String(100), nullable=True)
    language: Mapped[str | None] = mapped_column(String(35), nullable=True)  # BCP 47 tag, e.g. vi, vi-x-tay
    #: Mosquitto password-file hash (``$7$`` PBKDF2-SHA512) of the token, for ``loaphuong broker-config``.
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # --- presence, debounced (broadcaster/fleet.py); ``state`` above stays the raw last report
    presence: Mapped[str | None] = mapped_column(String(10), nullable=True)  # online | offline | None
    presence_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    raw_online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    raw_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    offline_alert_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    status_clock: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    clock_offset_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clock_samples: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    rssi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    free_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uptime_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    heartbeat_s: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Media(Base):
    __tablename__ = "media"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(50), default="audio/mpeg")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: EBU R128 measured on the encoded file (decoded back), see audio.processing.master_audio.
    integrated_lufs: Mapped[float | None] = mapped_column(Float, nullable=True)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float, nullable=True)


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
    #: "tts" (text → speech) | "upload" (a recording through the same chain); see broadcaster/audio_settings.py
    source: Mapped[str] = mapped_column(String(10), default="tts")
    #: Per-announcement overrides of the ward's audio defaults: engine, voice, speed, repeat, gap_ms,
    #: intro_chime, outro_chime (a missing key = the ward default).
    audio_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Cache key of the current audio (audio.render): unchanged text and settings render nothing.
    render_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The uploaded recording as received (``<sha256>.src`` in the media store), to re-master it later.
    recording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    #: Approval (see broadcaster/approval.py): draft | submitted | approved | rejected | published.
    #: Only approved (or published) content ever enters a plan.
    approval: Mapped[str] = mapped_column(String(20), default="draft")
    approval_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: The audio the approver approved (broadcaster/policy.py ``playable``): a different file never plays.
    approved_media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Render progress 0–100 while speech is produced in the background (None when no render runs).
    render_progress: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Archived ("deleted" in the officer's words): hidden from lists, restorable (undo) until purged.
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: Language versions besides Vietnamese (the announcement itself is the ``vi`` version): issue 17 §3.
    versions: Mapped[list[AnnouncementVersion]] = relationship(
        back_populates="announcement", lazy="selectin", order_by="AnnouncementVersion.id",
        cascade="all, delete-orphan")


class AnnouncementVersion(Base):
    """An ethnic-minority language version of an announcement (Tày, Nùng, H'Mông, Dao, Khmer, Chăm, Ê Đê…):
    its own text and audio — an uploaded recording where no speech engine speaks the language — and its own
    approval, exactly like the announcement's (``approved_media_sha256``: a different file never plays)."""

    __tablename__ = "announcement_versions"
    __table_args__ = (UniqueConstraint("announcement_id", "language"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"), index=True)
    announcement: Mapped[Announcement] = relationship(back_populates="versions")
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str | None] = mapped_column(String(10), nullable=True)  # upload | tts | None (no audio yet)
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media.sha256"), nullable=True)
    media: Mapped[Media | None] = relationship(lazy="selectin")
    approval: Mapped[str] = mapped_column(String(20), default="draft")  # draft | submitted | approved | rejected
    approval_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class StreamSource(Base):
    """A live stream the ward may relay (e.g. VOV1), kept by an admin: programme items name one of these;
    an officer picks a source and never types a URL (broadcaster/policy.py, R1)."""

    __tablename__ = "stream_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


schedule_zones = Table(
    "schedule_zones",
    Base.metadata,
    Column("schedule_id", ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
)


class Schedule(Base):
    """When a programme plays to one or more zones: once at ``start_at``, or by a recurrence rule.

    See broadcaster/airtime.py. ``start_at`` is the first airing (the only one without ``recurrence``);
    ``items`` (programme) is None for the classic single announcement ``announcement_id``.
    """

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: The (first) announcement of the programme; None for a programme of streams/silence only.
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), nullable=True)
    announcement: Mapped[Announcement | None] = relationship()
    start_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | cancelled
    zones: Mapped[list[Zone]] = relationship(secondary=schedule_zones)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    title: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: schedules.recurrence.Recurrence as JSON (kind, start_date, times, until, weekdays, …); None = once.
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rrule: Mapped[str | None] = mapped_column(Text, nullable=True)  # the same rule as RFC 5545 text
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: Programme: [{kind: announcement, announcement_id} | {kind: stream, url, duration_ms, title} |
    #: {kind: silence, duration_ms}]; None = just ``announcement_id``.
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    gap_ms: Mapped[int] = mapped_column(Integer, default=0)
    on_preempt: Mapped[str] = mapped_column(String(10), default="resume")  # resume | drop
    on_clash: Mapped[str] = mapped_column(String(10), default="append")  # append | override
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Sequenced zones (issue 17 §6): {"zone_ids": [...], "zones": [codes], "gap_s": N} — the zones play one after
    #: another in this order, ``gap_s`` apart, instead of all at once; None: all together.
    sequence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    #: Archived (deleted with undo): never in a plan, hidden from lists, restorable until purged.
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class WardSetting(Base):
    """Per-ward settings; ``ward`` matches ``Zone.ward`` ("" = the default for every ward)."""

    __tablename__ = "ward_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    ward: Mapped[str] = mapped_column(String(200), unique=True, default="")
    quiet_start: Mapped[str] = mapped_column(String(5), default="22:00")  # local HH:MM; start == end: none
    quiet_end: Mapped[str] = mapped_column(String(5), default="05:00")
    #: Emergencies and drills need a second leader/admin to release and to cancel them (broadcaster/policy.py R4).
    emergency_two_person: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class NodeEvent(Base):
    """Every event a node reported, deduplicated by (node, seq): the proof-of-play record."""

    __tablename__ = "node_events"
    # The unique (node_id, epoch, seq) index also serves lookups by node_id: no second index to keep up.
    __table_args__ = (UniqueConstraint("node_id", "epoch", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
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
    #: What the node measured at its output over the airing (LUFS), and whether it has a sensor at all.
    output_lufs: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_sensor: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class CommandRecord(Base):
    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(40))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|ok|error|rejected|timed_out
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
    #: The ward the entry concerns (the actor's ward, or the object's); None = province level.
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)


alert_zones = Table(
    "alert_zones",
    Base.metadata,
    Column("alert_id", ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
)


class Alert(Base):
    """An emergency ("phát ngay") or drill, delivered to nodes as ``play_now`` commands (broadcaster/emergency.py).

    ``kind`` is ``alert`` or ``cancel`` (the pre-built cancellation sent when ``cancels_id`` was cancelled).
    Status: pending_release (waits for a second person) or releasing → released → cancelled;
    pending_release → discarded.
    """

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="alert")  # alert | cancel
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"), nullable=True)
    media_sha256: Mapped[str] = mapped_column(ForeignKey("media.sha256"))
    media: Mapped[Media] = relationship()
    drill: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    all_zones: Mapped[bool] = mapped_column(Boolean, default=False)
    zones: Mapped[list[Zone]] = relationship(secondary=alert_zones)
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    gap_ms: Mapped[int] = mapped_column(Integer, default=3000)
    volume: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="released", index=True)
    cancels_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    cancel_alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: Two-person cancel: the first person asked; the cancel goes out when a second one confirms.
    cancel_requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: The ward of a ward's alert (``all_zones`` then means every zone of that ward); None for a province
    #: alert, whose wards are ``wards`` (every zone of each).
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    wards: Mapped[list[Ward]] = relationship(secondary="alert_wards")


alert_wards = Table(
    "alert_wards",
    Base.metadata,
    Column("alert_id", ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("ward_id", ForeignKey("wards.id", ondelete="CASCADE"), primary_key=True),
)


class AlertDelivery(Base):
    """One target node of an alert and the ``play_now`` command sent to it; its state is derived from the
    command's ack and the node's playback events (item ids ``alert:<id>:<n>``)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "node_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(String(64))
    command_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stop_command_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CannedMedia(Base):
    """Audio rendered once from a fixed text and reused (e.g. the emergency cancellation message)."""

    __tablename__ = "canned_media"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    media_sha256: Mapped[str] = mapped_column(ForeignKey("media.sha256"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RenderCache(Base):
    """Cache key of a render → the media it produced (audio.render.announcement_key / recording_key).

    Only renders by the first engine of the order are remembered, so a fallback engine's audio is never
    pinned to the preferred engine's key.
    """

    __tablename__ = "render_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_sha256: Mapped[str] = mapped_column(ForeignKey("media.sha256"))
    engine: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AudioSettings(Base):
    """The ward's speech and mastering defaults: one row (id 1), absent until first saved (the
    configuration's TTS_ENGINES, TTS_VOICE, LEAD_IN_MS, MP3_BITRATE apply then)."""

    __tablename__ = "audio_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    engine_order: Mapped[str] = mapped_column(String(100), default="gtts,espeak")
    voice: Mapped[str | None] = mapped_column(String(60), nullable=True)
    speed: Mapped[float] = mapped_column(Float, default=1.0)
    target_lufs: Mapped[float] = mapped_column(Float, default=-16.0)
    bitrate: Mapped[str] = mapped_column(String(8), default="64k")
    lead_in_ms: Mapped[int] = mapped_column(Integer, default=600)
    intro_chime: Mapped[bool] = mapped_column(Boolean, default=False)
    outro_chime: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Notification(Base):
    """Something a person must act on or know (approve an announcement, confirm an emergency): the notification
    centre (broadcaster/notifications.py). Stored as a kind + parameters so each reader sees it in her language."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    link: Mapped[str] = mapped_column(String(300), default="")
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class FormSubmission(Base):
    """One submitted web form, by its one-time key (broadcaster/web/idempotency.py): a double tap or a retried
    request gets the first answer again instead of a duplicate."""

    __tablename__ = "form_submissions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    #: Where the first submission led (a redirect), or empty while it is still being processed.
    location: Mapped[str] = mapped_column(String(500), default="")


# --------------------------------------------------------------------- CAP 1.2 (issue 17 §5, broadcaster/cap.py)
class CapSource(Base):
    """A source the panel takes CAP 1.2 alerts from (a province's warning centre, a hydro-meteorological station):
    it signs each request with its shared ``key`` (HMAC-SHA256 of the body). ``automatic``: its alerts are released
    at once for the zones their area names; otherwise each waits for the two-person release. ``ward_id``: the
    ward whose zones its alerts may name (a ward admin's source), or None for every ward (a province admin's)."""

    __tablename__ = "cap_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The shared secret, kept as given: HMAC needs it (the data dir and database are 0600, like the signing key).
    key: Mapped[str] = mapped_column(String(200))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), nullable=True, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CapMessage(Base):
    """A CAP message the panel accepted (its ``sender`` + ``identifier`` are taken once per source: another
    source claiming the same sender cannot take a real one's identifier in advance) and the alert it made."""

    __tablename__ = "cap_messages"
    __table_args__ = (UniqueConstraint("source_id", "sender", "identifier"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("cap_sources.id", ondelete="SET NULL"), nullable=True)
    sender: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str] = mapped_column(String(255))
    msg_type: Mapped[str] = mapped_column(String(10))
    sent: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20), default="Safety")
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    #: Every alert it made: one per ward its area names (``alert_id`` is the first).
    alert_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
