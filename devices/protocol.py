"""Loa Phường MQTT protocol, version 1 — the wire contract between panel and loudspeaker nodes.

This module is the single source of truth for topics, payload models, canonical JSON and Ed25519
signatures. It imports neither Flask nor paho, so both the panel (``broadcaster``) and node firmware
(``firmware_sim``) use it. ``docs/protocol.md`` describes the same contract for vendors, and the JSON
Schemas under ``devices/schemas/`` are generated from these models (``loaphuong schemas --write``);
a test fails when they drift.

Rules every payload follows:

* UTF-8 JSON objects; receivers ignore unknown keys (additive changes keep version 1).
* Times are RFC 3339 UTC strings with a ``Z`` suffix and millisecond precision.
* No floating-point numbers anywhere in a signed payload, so canonical JSON is unambiguous.
* Panel → node payloads (plan, command) carry ``signature``: base64 of the Ed25519 signature over the
  canonical JSON of the object with ``signature`` removed.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "loaphuong"
PLAN_HORIZON_HOURS = 48
#: Node ids appear in topics: lowercase letters, digits, ``-`` and ``_`` only (never ``+ # /``).
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SHA256_RE = r"^[0-9a-f]{64}$"
#: Largest MQTT payload a node must accept; the panel never publishes more.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Node → panel bounds beyond the field tables (docs/protocol.md §4): 32-bit counters and offsets, the size of
#: an ack's ``data``.
MAX_INT32 = 2**31 - 1
#: The largest integer every JSON parser keeps exactly (IEEE 754 double).
MAX_SAFE_INTEGER = 2**53 - 1
MAX_ACK_DATA_KEYS = 16
MAX_ACK_DATA_BYTES = 4096
#: Range of an event's ``output_lufs`` (§7.10): a measured silence is about -70 LUFS, digital full scale 0.
OUTPUT_LUFS_MIN = -120.0
OUTPUT_LUFS_MAX = 0.0

M = TypeVar("M", bound=BaseModel)

NodeId = Annotated[str, Field(pattern=NODE_ID_RE.pattern, description="Node id: [a-z0-9][a-z0-9_-]{0,63}")]


def _real_instant(value: str) -> str:
    parse_ts(value)  # the pattern alone lets "2026-02-30T…" through
    return value


Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$",
        description="RFC 3339 UTC time with Z suffix, e.g. 2026-11-22T23:00:00.000Z",
    ),
    AfterValidator(_real_instant),
]


class ProtocolError(ValueError):
    """A payload that must be dropped: malformed, wrong schema, bad signature, expired or replayed."""


# --------------------------------------------------------------------------------------------- time


def format_ts(moment: datetime) -> str:
    """UTC RFC 3339 with millisecond precision and ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; protocol times are always timezone-aware")
    # isoformat truncates to milliseconds like the format says, and is C code: strftime was 13 µs a call, and a
    # node formats several timestamps per plan it applies.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_ts(value: str) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ProtocolError(f"not a UTC timestamp: {value!r}")
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError as exc:
        raise ProtocolError(f"not a UTC timestamp: {value!r}") from exc


# ------------------------------------------------------------------------------------------- topics


class Topics:
    """Topic names for one deployment. ``prefix`` is configurable; the ``v1`` segment is fixed.

    All node topics live under ``{prefix}/v1/nodes/{node_id}/``::

        plan     panel → node  retained, QoS 1, signed
        cmd      panel → node  not retained, QoS 1, signed, expires
        status   node → panel  retained, QoS 1, last-will "offline"
        events   node → panel  not retained, QoS 1, per-node sequence number
        ack      node → panel  not retained, QoS 1, answers one cmd
        plan_request  node → panel  not retained, QoS 1, "send me my current plan" (on connect)
    """

    NODE_TOPICS = ("plan", "cmd", "status", "events", "ack", "plan_request")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"invalid topic prefix {prefix!r}")
        self.prefix = prefix
        self.root = f"{prefix}/v{PROTOCOL_VERSION}"

    def node(self, node_id: str, leaf: str) -> str:
        if not NODE_ID_RE.fullmatch(node_id):
            raise ValueError(f"invalid node id {node_id!r}")
        if leaf not in self.NODE_TOPICS:
            raise ValueError(f"unknown node topic {leaf!r}")
        return f"{self.root}/nodes/{node_id}/{leaf}"

    def plan(self, node_id: str) -> str:
        return self.node(node_id, "plan")

    def cmd(self, node_id: str) -> str:
        return self.node(node_id, "cmd")

    def status(self, node_id: str) -> str:
        return self.node(node_id, "status")

    def events(self, node_id: str) -> str:
        return self.node(node_id, "events")

    def ack(self, node_id: str) -> str:
        return self.node(node_id, "ack")

    def plan_request(self, node_id: str) -> str:
        return self.node(node_id, "plan_request")

    def panel_status(self) -> str:
        return f"{self.root}/panel/status"

    def all_nodes(self, leaf: str) -> str:
        """Wildcard subscription the panel uses, e.g. ``loaphuong/v1/nodes/+/events``."""
        return f"{self.root}/nodes/+/{leaf}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(node_id, leaf)`` for a node topic of this deployment, else ``None``."""
        head = f"{self.root}/nodes/"
        if not topic.startswith(head):
            return None
        rest = topic[len(head) :].split("/")
        if len(rest) != 2 or rest[1] not in self.NODE_TOPICS or not NODE_ID_RE.fullmatch(rest[0]):
            return None
        return rest[0], rest[1]


# ----------------------------------------------------------------------------------------- models


def without_nulls(value: Any) -> Any:
    """A ``null`` member counts as absent (§4): remove them from every object, recursively."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class _Model(BaseModel):
    # Receivers ignore unknown keys so that additive changes keep protocol version 1.
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        # §4: a member whose value is null is treated exactly as if it were absent (it takes its default).
        # Only this object's own members: nested models do the same for theirs; free-form objects (``args``,
        # ``data``) are cleaned recursively by their field validators.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class Priority(StrEnum):
    """The three levels of Circular 39/2020/TT-BTTTT."""

    normal = "normal"
    priority = "priority"
    emergency = "emergency"


PRIORITY_RANK = {Priority.normal: 0, Priority.priority: 1, Priority.emergency: 2}

#: Default time zone of a plan's local times (quiet hours, volume profile). Vietnam: UTC+7, no DST.
DEFAULT_TZ = "Asia/Ho_Chi_Minh"
#: ``HH:MM``, 00:00–23:59, local to the plan's ``tz``.
LOCAL_TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
#: ``alert_id`` of play_now / stop: it becomes part of item ids ``alert:<alert_id>:<n>``.
ALERT_ID_RE = r"^[A-Za-z0-9_.-]{1,64}$"
#: Item ids of alerts played by ``play_now``: ``alert:<alert_id>:<n>``, n = 1 … repeat.
ALERT_ITEM_PREFIX = "alert:"
HTTP_URL_RE = r"^https?://"

LocalTime = Annotated[str, Field(pattern=LOCAL_TIME_RE, description="Local wall-clock time HH:MM (00:00–23:59)")]
Volume = Annotated[StrictInt, Field(ge=0, le=100, description="Output volume 0–100")]
AlertId = Annotated[str, Field(pattern=ALERT_ID_RE, description="Alert id: [A-Za-z0-9_.-]{1,64}")]


class Media(_Model):
    url: str = Field(pattern=HTTP_URL_RE,
                     description="HTTP(S) URL of the audio; fetch with header 'Authorization: Bearer <token>'")
    sha256: str = Field(pattern=SHA256_RE, description="Lowercase hex SHA-256 of the exact bytes")
    bytes: int = Field(ge=1, description="Exact size of the file in bytes")
    duration_ms: int = Field(ge=1, description="Playing time in milliseconds")
    content_type: str = Field(default="audio/mpeg", description="MIME type; v1 panels send audio/mpeg")


class Stream(_Model):
    """A live stream to relay (e.g. VOV1). No checksum: the node opens the URL when the item starts."""

    url: str = Field(pattern=HTTP_URL_RE, description="HTTP(S) URL of the live stream (e.g. Icecast MP3)")
    duration_ms: StrictInt = Field(ge=1, description="Relay the stream for this many milliseconds")


def _exactly_one_source(media: Media | None, stream: Stream | None) -> None:
    if (media is None) == (stream is None):
        raise ValueError("exactly one of media or stream is required")


_ONE_SOURCE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"required": ["media"]}, {"required": ["stream"]}],
    "not": {"required": ["media", "stream"]},
}


class PlanItem(_Model):
    model_config = ConfigDict(json_schema_extra=_ONE_SOURCE_SCHEMA)

    id: str = Field(min_length=1, max_length=128, description="Unique id of this play within the plan")
    start: Timestamp = Field(description="Absolute UTC start time; play from the node's own NTP clock")
    media: Media | None = Field(default=None, description="The audio file; exactly one of media or stream")
    stream: Stream | None = Field(default=None, description="A live stream to relay; exactly one of media or stream")
    priority: Priority = Priority.normal
    title: str = Field(default="", max_length=300, description="Human-readable title, for logs and displays")
    max_late_ms: int = Field(
        default=60_000,
        ge=0,
        description="Play only if the node can start within this many ms after `start`; later it is "
        "stale and must be skipped (reported as playback_failed reason=stale)",
    )
    schedule_id: str | None = Field(default=None, description="Panel schedule the item comes from")
    end_at: Timestamp | None = Field(
        default=None,
        description="Stop playing at this instant even if the audio is longer (playback_stopped reason=end_at); "
        "after `start`",
    )
    drill: StrictBool = Field(default=False, description="A drill: every event about the item carries drill=true")
    volume: Volume | None = Field(default=None, description="Volume for this item only, instead of the node's")

    @model_validator(mode="after")
    def _check(self) -> PlanItem:
        _exactly_one_source(self.media, self.stream)
        if self.end_at is not None and parse_ts(self.end_at) <= parse_ts(self.start):
            raise ValueError("end_at must be after start")
        return self

    @property
    def duration_ms(self) -> int:
        """Playing time of the source (before any ``end_at`` cut)."""
        source = self.media if self.media is not None else self.stream
        assert source is not None
        return source.duration_ms


class QuietHours(_Model):
    """``start``–``end`` local to the plan's ``tz``; wraps over midnight when ``end`` < ``start``."""

    start: LocalTime = Field(description="First minute of quiet, HH:MM local")
    end: LocalTime = Field(description="End of quiet (exclusive), HH:MM local")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class VolumeStep(_Model):
    at: LocalTime = Field(description="From this local time HH:MM on, the base volume is `volume`")
    volume: Volume


class Plan(_Model):
    type: Literal["plan"] = "plan"
    protocol: Literal[1] = 1
    node_id: NodeId
    version: int = Field(ge=1, description="Strictly increasing per node; refuse a plan older than the one held")
    generated_at: Timestamp
    valid_until: Timestamp = Field(description="End of the window this plan covers (≈48 h ahead)")
    items: list[PlanItem] = Field(default_factory=list, max_length=2000)
    tz: str = Field(default=DEFAULT_TZ, min_length=1, max_length=64,
                    description="IANA time zone of quiet_hours and volume_profile")
    quiet_hours: QuietHours | None = Field(
        default=None, description="No non-emergency (or drill) item may sound inside these local hours"
    )
    volume_profile: list[VolumeStep] = Field(
        default_factory=list, max_length=96,
        description="Base volume by local time of day: the last step at or before now applies (wraps midnight)",
    )
    signature: str = Field(default="", description="base64 Ed25519 signature; see 'Signatures'")

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[PlanItem]) -> list[PlanItem]:
        seen = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"duplicate item id {item.id!r}")
            seen.add(item.id)
        return items

    @field_validator("tz")
    @classmethod
    def _known_tz(cls, tz: str) -> str:
        _zone(tz)
        return tz

    @field_validator("volume_profile")
    @classmethod
    def _unique_steps(cls, steps: list[VolumeStep]) -> list[VolumeStep]:
        if len({s.at for s in steps}) != len(steps):
            raise ValueError("two volume steps at the same time")
        return steps


class CommandName(StrEnum):
    ping = "ping"
    resync = "resync"
    stop = "stop"
    set_volume = "set_volume"
    play_now = "play_now"
    reboot = "reboot"


class Command(_Model):
    type: Literal["command"] = "command"
    protocol: Literal[1] = 1
    node_id: NodeId
    id: str = Field(min_length=8, max_length=64, description="Unique id (nonce); a node executes an id once")
    name: str = Field(description="ping | resync | stop | set_volume | play_now | reboot; unknown names are "
                                  "acked 'rejected'")
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: Timestamp
    expires_at: Timestamp = Field(description="A node refuses a command received after this time")
    signature: str = ""

    @field_validator("args", mode="before")
    @classmethod
    def _argswithout_nulls(cls, args: Any) -> Any:
        return without_nulls(args)


class PlayNowArgs(_Model):
    """``args`` of ``play_now``: play an alert at once, ``repeat`` times, pre-empting priority ≤ its own."""

    model_config = ConfigDict(json_schema_extra=_ONE_SOURCE_SCHEMA)

    alert_id: AlertId = Field(description="Panel alert id; item ids become alert:<alert_id>:<n>")
    media: Media | None = Field(default=None, description="The audio file; exactly one of media or stream")
    stream: Stream | None = Field(default=None, description="A live stream; exactly one of media or stream")
    priority: Priority = Field(default=Priority.emergency,
                               description="Cuts what plays at this priority or lower")
    repeat: StrictInt = Field(default=1, ge=1, le=10, description="How many times to play it")
    gap_ms: StrictInt = Field(default=3000, ge=0, le=600_000, description="Silence between repeats, ms")
    volume: Volume | None = Field(default=None, description="Volume for this alert only")
    drill: StrictBool = Field(default=False, description="A drill: events carry drill=true")
    title: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _check(self) -> PlayNowArgs:
        _exactly_one_source(self.media, self.stream)
        return self

    def item_id(self, n: int) -> str:
        """Item id of the ``n``-th play (from 1) in events."""
        return alert_item_id(self.alert_id, n)

    @property
    def duration_ms(self) -> int:
        source = self.media if self.media is not None else self.stream
        assert source is not None
        return source.duration_ms


class StopArgs(_Model):
    """``args`` of ``stop``: without ``alert_id`` stop what plays now; with it, that alert only."""

    alert_id: AlertId | None = None


class SetVolumeArgs(_Model):
    volume: Volume


#: Argument model per command name (``ping``, ``resync`` and ``reboot`` take none).
COMMAND_ARGS: dict[str, type[_Model]] = {
    CommandName.play_now: PlayNowArgs,
    CommandName.stop: StopArgs,
    CommandName.set_volume: SetVolumeArgs,
}


def alert_item_id(alert_id: str, n: int) -> str:
    return f"{ALERT_ITEM_PREFIX}{alert_id}:{n}"


def parse_args(name: str, args: dict[str, Any]) -> _Model | None:
    """Validate a command's ``args`` for its ``name``; ``ProtocolError("args.<field>: <message>")`` if bad.

    ``None`` for names without arguments (unknown keys are ignored, like everywhere).
    """
    model = COMMAND_ARGS.get(name)
    if model is None:
        return None
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise ProtocolError(_first_error("args", exc)) from exc


class NodeState(StrEnum):
    online = "online"
    offline = "offline"
    stopped = "stopped"


#: Status republish period when a node is not told otherwise (seconds).
DEFAULT_HEARTBEAT_S = 60


class Status(_Model):
    type: Literal["status"] = "status"
    protocol: Literal[1] = 1
    node_id: NodeId
    state: NodeState
    session: int = Field(ge=0, le=MAX_INT32, description="Boot counter; the last-will carries the same number")
    at: Timestamp | None = None
    firmware: str | None = Field(default=None, max_length=100, description="Firmware version")
    plan_version: int | None = Field(default=None, ge=0, description="Version of the plan held")
    volume: int | None = Field(default=None, ge=0, le=100)
    playing: str | None = Field(default=None, max_length=128, description="Plan item id currently playing, if any")
    free_bytes: int | None = Field(default=None, ge=0, description="Free storage for media, bytes")
    clock: Timestamp | None = Field(
        default=None, description="Node clock when published; the panel's offset = clock − receive time"
    )
    rssi_dbm: StrictInt | None = Field(default=None, ge=-150, le=0, description="Radio signal strength, dBm")
    uptime_s: StrictInt | None = Field(default=None, ge=0, description="Seconds since boot")
    heartbeat_s: StrictInt | None = Field(
        default=None, ge=1, le=86_400, description="The node republishes status at least this often (seconds)"
    )


class EventName(StrEnum):
    plan_applied = "plan_applied"
    plan_rejected = "plan_rejected"
    media_ready = "media_ready"
    media_failed = "media_failed"
    playback_started = "playback_started"
    playback_finished = "playback_finished"
    playback_failed = "playback_failed"
    playback_stopped = "playback_stopped"
    command_rejected = "command_rejected"


class Event(_Model):
    type: Literal["event"] = "event"
    protocol: Literal[1] = 1
    node_id: NodeId
    seq: int = Field(ge=1, description="Per-node sequence, +1 per event, kept across reboots")
    at: Timestamp = Field(description="When it happened, node clock")
    event: EventName
    plan_version: int | None = Field(default=None, ge=0, description="Plan the event refers to")
    item_id: str | None = Field(default=None, max_length=128, description="Plan item (alert:<alert_id>:<n>)")
    schedule_id: str | None = Field(default=None, max_length=64, description="Copied from the plan item")
    sha256: str | None = Field(default=None, pattern=SHA256_RE)
    scheduled_start: Timestamp | None = None
    actual_start: Timestamp | None = None
    offset_ms: int | None = Field(default=None, ge=-MAX_INT32, le=MAX_INT32,
                                  description="actual_start − scheduled_start in ms")
    reason: str | None = Field(default=None, max_length=500)
    drill: StrictBool | None = Field(default=None, description="true for events about a drill item or alert")
    priority: Priority | None = Field(default=None, description="Priority of the item the event is about")
    command_id: str | None = Field(default=None, max_length=64,
                                   description="The command that caused it (play_now, stop)")
    alert_id: str | None = Field(default=None, max_length=64, description="The alert of a play_now item")
    output_lufs: StrictFloat | None = Field(
        default=None, ge=OUTPUT_LUFS_MIN, le=OUTPUT_LUFS_MAX,
        description="Loudness the node measured at its output over the airing (integrated, LUFS): on "
                    "playback_finished and playback_stopped; absent (null) when the node has no output sensor",
    )
    output_sensor: StrictBool | None = Field(
        default=None, description="false: the node has no output sensor (output_lufs is then absent)")

    #: Members that may be numbers with a fraction (§4 Numbers: the one exception to "integers only").
    DECIMAL_MEMBERS: ClassVar[frozenset[str]] = frozenset({"output_lufs"})


class AckStatus(StrEnum):
    ok = "ok"
    error = "error"
    rejected = "rejected"


class Ack(_Model):
    type: Literal["ack"] = "ack"
    protocol: Literal[1] = 1
    node_id: NodeId
    command_id: str = Field(min_length=1, max_length=64, description="The id of the command answered")
    status: AckStatus
    at: Timestamp
    error: str | None = Field(default=None, max_length=500, description="Why, when status is not ok")
    data: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ACK_DATA_KEYS,
                                 description=f"Result of the command; at most {MAX_ACK_DATA_KEYS} members and "
                                             f"{MAX_ACK_DATA_BYTES} bytes as JSON")

    @field_validator("data", mode="before")
    @classmethod
    def _datawithout_nulls(cls, data: Any) -> Any:
        return without_nulls(data)

    @field_validator("data")
    @classmethod
    def _data_small(cls, data: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_ACK_DATA_BYTES:
            raise ValueError(f"{size} bytes as JSON, over {MAX_ACK_DATA_BYTES}")
        return data


class PlanRequest(_Model):
    """A node asks for its current plan (§6.7): on every connect, so that it never depends on the broker having
    kept the retained plan (a clustered broker keeps retained messages per cluster member)."""

    type: Literal["plan_request"] = "plan_request"
    protocol: Literal[1] = 1
    node_id: NodeId
    at: Timestamp = Field(description="When it asked, node clock")
    have_version: int | None = Field(default=None, ge=0, le=MAX_SAFE_INTEGER,
                                     description="Version of the plan the node holds; null when it holds none")


#: Payload model per topic leaf.
TOPIC_MODELS: dict[str, type[_Model]] = {
    "plan": Plan,
    "cmd": Command,
    "status": Status,
    "events": Event,
    "ack": Ack,
    "plan_request": PlanRequest,
}


# ------------------------------------------------------------------------------- local times


@lru_cache(maxsize=32)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def quiet_overlap(quiet: QuietHours | None, tz: str, start: datetime, end: datetime) -> bool:
    """Whether any instant of ``[start, end)`` lies inside the quiet hours (local to ``tz``).

    Quiet hours are ``[quiet.start, quiet.end)`` on every local day, wrapping over midnight when
    ``end < start`` (22:00–05:00). Exact at DST changes too (each boundary is converted on its own day).
    """
    if quiet is None or end <= start:
        return False
    zone = _zone(tz)
    qs, qe = _minutes(quiet.start), _minutes(quiet.end)
    length = timedelta(minutes=(qe - qs) % 1440)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    day = first
    while day <= last:
        q_start = datetime.combine(day, time(qs // 60, qs % 60), zone).astimezone(UTC)
        q_end = (datetime.combine(day, time(qs // 60, qs % 60), zone) + length).astimezone(UTC)
        if q_start < end and start < q_end:
            return True
        day += timedelta(days=1)
    return False


def profile_step(
    profile: list[VolumeStep] | tuple[VolumeStep, ...], tz: str, at: datetime
) -> tuple[datetime, int] | None:
    """The step of the profile in force at instant ``at``: (the instant it began, its volume).

    The last step at or before the local time of day applies, wrapping over midnight (before the day's first
    step, the previous day's last step applies). ``None`` without steps.
    """
    if not profile:
        return None
    zone = _zone(tz)
    local = at.astimezone(zone)
    best: tuple[datetime, int] | None = None
    for offset in (0, -1):
        day = local.date() + timedelta(days=offset)
        for step in profile:
            m = _minutes(step.at)
            began = datetime.combine(day, time(m // 60, m % 60), zone).astimezone(UTC)
            if began <= at and (best is None or began > best[0]):
                best = (began, step.volume)
        if best is not None:
            return best
    return best


def profile_volume(profile: list[VolumeStep] | tuple[VolumeStep, ...], tz: str, at: datetime) -> int | None:
    """Base volume the profile gives at instant ``at`` (see :func:`profile_step`); ``None`` without steps."""
    step = profile_step(profile, tz, at)
    return step[1] if step else None


def next_profile_change(profile: list[VolumeStep] | tuple[VolumeStep, ...], tz: str, at: datetime) -> datetime | None:
    """The next instant after ``at`` at which a step of the profile begins (``None`` without steps)."""
    if not profile:
        return None
    zone = _zone(tz)
    local = at.astimezone(zone)
    candidates = []
    for offset in (0, 1, 2):
        day = local.date() + timedelta(days=offset)
        for step in profile:
            m = _minutes(step.at)
            moment = datetime.combine(day, time(m // 60, m % 60), zone).astimezone(UTC)
            if moment > at:
                candidates.append(moment)
    return min(candidates) if candidates else None


# ------------------------------------------------------------------------------ canonical JSON


def canonical_json(obj: Any, *, floats_checked: bool = False) -> bytes:
    """Canonical bytes that signatures cover.

    Equal to RFC 8785 (JCS) for the values v1 allows (objects, arrays, strings, integers, booleans,
    null — never floats): keys sorted, no insignificant whitespace, UTF-8, non-ASCII not escaped.
    ``floats_checked``: ``obj`` comes from :func:`decode_json`, which has already refused any float.
    """
    try:
        if not floats_checked:
            _reject_floats(obj)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except RecursionError as exc:
        raise ProtocolError("payload is nested too deeply") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" from a JSON escape
        raise ProtocolError("payload contains a string that is not valid Unicode") from exc


def _reject_floats(obj: Any) -> None:
    if isinstance(obj, float):
        raise ProtocolError("floating-point numbers are not allowed in signed payloads")
    if isinstance(obj, dict):
        for value in obj.values():
            _reject_floats(value)
    elif isinstance(obj, list):
        for value in obj:
            _reject_floats(value)


# ---------------------------------------------------------------------------------- signatures


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError("panel public key must be 32 raw bytes in base64") from exc


def sign_payload(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of ``payload`` with ``signature`` set."""
    body = {k: v for k, v in payload.items() if k != "signature"}
    signature = private_key.sign(canonical_json(body))
    return {**body, "signature": base64.b64encode(signature).decode()}


def sign_to_wire(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """``encode(sign_payload(payload, key))`` in one serialisation instead of two.

    The canonical bytes are a compact JSON object already: the signature is appended as its last member. Key
    order on the wire carries no meaning (a receiver recomputes the canonical form), so this is as valid a
    payload as ``encode`` would give, and the panel builds 10 000 of them per province-wide plan change.
    """
    body = {k: v for k, v in payload.items() if k != "signature"}
    canonical = canonical_json(body)
    signature = base64.b64encode(private_key.sign(canonical))
    member = b'"signature":"' + signature + b'"}'
    return canonical[:-1] + (b"," if body else b"") + member


def verify_signature(payload: dict[str, Any], public_key: Ed25519PublicKey, *, decoded: bool = False) -> None:
    """Raise :class:`ProtocolError` unless ``payload`` carries a valid signature of the panel.

    ``decoded``: the payload is the output of :func:`decode_json` (no float can be in it).
    """
    sig_b64 = payload.get("signature")
    if not isinstance(sig_b64, str) or not sig_b64:
        raise ProtocolError("unsigned payload")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError as exc:
        raise ProtocolError("signature is not base64") from exc
    body = {k: v for k, v in payload.items() if k != "signature"}
    try:
        public_key.verify(signature, canonical_json(body, floats_checked=decoded))
    except InvalidSignature as exc:
        raise ProtocolError("bad signature") from exc


# ------------------------------------------------------------------------------------ decoding

#: v1 payloads nest at most 4 levels (plan → items → item → media) plus command ``args``.
MAX_DEPTH = 64

FLOAT_REASON = "floating-point numbers are not allowed in signed payloads"
INTEGER_REASON = "payload contains an integer outside ±(2^53 - 1)"
UNICODE_REASON = "payload contains a string that is not valid Unicode"
DEPTH_REASON = "payload is nested too deeply"

#: A string literal (possibly unterminated) or a bracket: what the nesting check looks at.
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


def _nesting(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside string literals (the root object is 1), syntax errors or not."""
    depth = deepest = 0
    for token in _DEPTH_TOKEN.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _DecimalText(str):
    """The text of a number literal with a fraction or exponent, kept until check 6 decides on it."""

    __slots__ = ()


class _Literals:
    """Number hooks for one ``json.loads``: note literals the protocol refuses while the parse goes on, so the
    checks after it keep the order of §12 (syntax and "is an object" first) without walking the result."""

    __slots__ = ("big_ints", "floats")

    def __init__(self) -> None:
        self.floats = self.big_ints = 0

    def float(self, text: str) -> str:
        """A number literal with a fraction or exponent: refused by check 6 (unless it is the value of one of
        the few members allowed one), kept as text meanwhile."""
        self.floats += 1
        return _DecimalText(text)

    def int(self, text: str) -> int | str:
        # 2^53 − 1 has 16 digits: longer literals are out of range (and may exceed Python's 4300-digit limit).
        if len(text) > 15 and (len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER):
            self.big_ints += 1
            return text
        return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _walk(value: Any) -> list[Any]:
    """Every value inside ``value`` (and itself)."""
    out, stack = [], [value]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" from a JSON escape
        return False
    return True


def decode_json(raw: bytes | str, *, decimal_members: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Parse one payload with the byte-level checks 1–8 of docs/protocol.md §12, in that order.

    Size, UTF-8, nesting depth, JSON syntax (also ``NaN``/``Infinity``, a BOM and duplicate keys), a JSON
    object, numbers (no fraction or exponent; integers within ±(2^53 − 1)), strings (valid Unicode). The
    same rules hold for both directions: node → panel payloads are refused for the same reasons.

    ``decimal_members``: top-level members whose value may have a fraction (an event's measured
    ``output_lufs``, §7.10); anywhere else a fraction is still refused.
    """
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError(UNICODE_REASON) from exc
    raw = bytes(raw)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("payload is not UTF-8") from exc
    # Depth can never exceed the number of opening brackets: count them (C speed) before scanning.
    if text.count("{") + text.count("[") > MAX_DEPTH and _nesting(text) > MAX_DEPTH:
        raise ProtocolError(DEPTH_REASON)
    seen = _Literals()
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                          parse_float=seen.float, parse_int=seen.int)
    except RecursionError as exc:
        raise ProtocolError(DEPTH_REASON) from exc
    except ValueError as exc:  # JSONDecodeError (also a BOM), NaN / Infinity, a duplicate key
        raise ProtocolError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("payload is not a JSON object")
    if seen.floats:
        allowed = [k for k in decimal_members if isinstance(data.get(k), _DecimalText)]
        if len(allowed) < seen.floats:
            raise ProtocolError(FLOAT_REASON)
        for key in allowed:  # 1e999 becomes inf: the member's range (check 12) refuses it
            data[key] = float(data[key])
    if seen.big_ints:
        raise ProtocolError(INTEGER_REASON)
    # Text decoded from UTF-8 holds no lone surrogate; only a \u escape can produce one.
    if "\\u" in text:
        values = _walk(data)
        strings = [v for v in values if isinstance(v, str)]
        strings += [k for v in values if isinstance(v, dict) for k in v]
        if not all(_valid_unicode(s) for s in strings):
            raise ProtocolError(UNICODE_REASON)
    return data


def _first_error(prefix: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    where = f"{prefix}.{where}" if where else prefix
    return f"{where}: {first.get('msg')}"


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` (``null`` counts as absent, times must be real dates, unknown keys ignored)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise ProtocolError(f"invalid {model.__name__.lower()}: {where}: {first.get('msg')}") from exc


def decode_signed(
    model: type[M], raw: bytes | str, public_key: Ed25519PublicKey, *, node_id: str
) -> M:
    """Decode a panel → node payload in the order of §12: bytes (1–8), signature (9–11), fields (12),
    ``node_id`` (13). Version order and the retain flag (14) are the caller's."""
    data = decode_json(raw)
    verify_signature(data, public_key, decoded=True)
    obj = parse_model(model, data)
    if getattr(obj, "node_id", None) != node_id:
        raise ProtocolError(f"addressed to {getattr(obj, 'node_id', None)!r}, not {node_id!r}")
    return obj


def decode_from_node(model: type[M], raw: bytes | str, *, topic_node_id: str) -> M:
    """Decode a node → panel payload; the node id inside must match the topic."""
    decimals: frozenset[str] = getattr(model, "DECIMAL_MEMBERS", frozenset())
    obj = parse_model(model, decode_json(raw, decimal_members=decimals))
    if getattr(obj, "node_id", None) != topic_node_id:
        raise ProtocolError(f"node id {getattr(obj, 'node_id', None)!r} does not match topic {topic_node_id!r}")
    return obj


def encode(payload: BaseModel | dict[str, Any]) -> bytes:
    """Serialise a payload for the wire (compact UTF-8 JSON)."""
    data = payload.model_dump(mode="json", exclude_none=True) if isinstance(payload, BaseModel) else payload
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now_utc() -> datetime:
    return datetime.now(UTC)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema per topic leaf, generated from the models (checked in under devices/schemas/)."""
    out = {}
    for leaf, model in TOPIC_MODELS.items():
        schema = model.model_json_schema()
        if model is Command:
            _add_args_schemas(schema)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://loaphuong.example/protocol/v1/{leaf}.schema.json"
        out[leaf] = schema
    return out


def _add_args_schemas(schema: dict[str, Any]) -> None:
    """Let cmd.schema.json check ``args`` per ``name`` (if name is play_now, then args is PlayNowArgs …)."""
    defs = schema.setdefault("$defs", {})
    rules = []
    for name, model in COMMAND_ARGS.items():
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        rules.append({"if": {"properties": {"name": {"const": str(name)}}, "required": ["name"]},
                      "then": {"properties": {"args": {"$ref": f"#/$defs/{model.__name__}"}}}})
    schema["allOf"] = rules
