"""Response bodies of the REST API: the contract the OpenAPI document publishes (``/api/v1/openapi.json``).

Every model forbids extra fields (``additionalProperties: false``): a serializer that grows a field without its
model here breaks the suite, because every JSON answer of ``/api/v1`` is validated against the document while
the tests run (``Config.VALIDATE_API_RESPONSES``; see broadcaster/api/contract.py), and the fuzzer checks it
from outside (tests/test_api_fuzz.py).

The serializers stay plain functions returning dicts (``base.py``, ``routes_*.py``, ``fleet.py``…); these models only
describe them. Timestamps are RFC 3339 strings: ``…Z`` in UTC, or ``…_local`` in the ward's time zone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A UTC instant as sent on the wire (``2026-11-23T23:00:00Z``).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
#: A local wall-clock time with its offset (``2026-11-24T06:00:00+07:00``).
LocalTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]


class ResponseModel(BaseModel):
    """The base of every documented answer: exactly the fields the panel sends."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------------ errors
class FieldError(ResponseModel):
    field: str = Field(description="Dotted path of the field at fault, e.g. 'recurrence.times.0'")
    code: str = Field(description="Stable code of the problem, e.g. 'missing', 'string_too_long'")
    message: str = Field(description="What is wrong, in the request's language")


class ErrorBody(ResponseModel):
    code: str = Field(description="Stable machine code, e.g. 'not_found', 'invalid_field', 'policy_refused'")
    message: str = Field(description="Human message in the request's language (Accept-Language: vi or en; "
                         "Vietnamese by default)")
    field: str | None = Field(default=None, description="The (first) field at fault, when there is one")
    fields: list[FieldError] = Field(default_factory=list, description="Every field at fault (bad input)")


class RowErrorOut(ResponseModel):
    row: int
    field: str | None
    code: str
    message: str


class Error(ResponseModel):
    """Every error of ``/api/v1`` (never HTML): ``{"error": {code, message, field, fields}}``. A schedule
    clash (409) adds ``conflicts``; a refused CSV import (400) adds ``errors`` (one per bad row)."""

    error: ErrorBody
    conflicts: list[dict[str, Any]] | None = Field(default=None, description="409 schedule clash: the airings "
                                                   "it clashes with {schedule_id, title, start, end, start_local, "
                                                   "end_local, priority, relation}")
    errors: list[RowErrorOut] | None = Field(default=None, description="400 import_refused: every bad row")


# --------------------------------------------------------------------------------------------- basics
class Token(ResponseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once")
    username: str
    role: str
    token_id: int | None = Field(default=None, description="Its id in GET /auth/tokens (to revoke it)")


class PanelKey(ResponseModel):
    public_key: str = Field(description="Ed25519 public key, base64")
    algorithm: Literal["Ed25519"]


class PublicationPass(ResponseModel):
    nodes: int | None = Field(description="Nodes whose plans are rebuilt; null: every node")
    started_at: str
    published: int | None = Field(default=None, description="Plans that changed and went out (finished passes)")
    finished_at: str | None = None
    seconds: float | None = None
    error: str | None = Field(default=None, description="Why the pass failed (the next change publishes again)")


class PublicationStatus(ResponseModel):
    state: Literal["idle", "queued", "publishing", "immediate"] = Field(
        description="immediate: this panel has no background queue (no broker attached): changes publish at once")
    queued_nodes: int | None = Field(description="Nodes waiting for the next pass; null: every node")
    current: PublicationPass | None
    last: PublicationPass | None


class Zone(ResponseModel):
    id: int
    code: str
    name: str
    kind: str = Field(description="village | residential_group")
    ward: str | None
    languages: list[str] = Field(description="The languages its residents need, in the order they are played "
                                             "(ISO 639 codes; 'vi' alone by default)")


class Ward(ResponseModel):
    id: int
    code: str
    name: str


class Node(ResponseModel):
    node_id: str
    name: str
    zone: str | None
    state: str = Field(description="online | offline | stopped | unknown (as the node last said)")
    last_seen: Timestamp | None
    firmware: str | None
    volume: int | None
    plan_version: int | None
    reported_plan_version: int | None


class NodeWithPlan(Node):
    plan: dict[str, Any] | None = Field(description="The current signed plan exactly as published (docs/protocol.md "
                                        "§5)")


class NodeCredentials(Node):
    token: str = Field(description="The node's MQTT password and media bearer token; shown once")
    panel_public_key: str
    topic_prefix: str
    broker_url: str | None
    media_base_url: str


class NodeToken(ResponseModel):
    node_id: str
    token: str
    panel_public_key: str
    topic_prefix: str


class Command(ResponseModel):
    id: str
    node_id: str
    name: str
    args: dict[str, Any]
    status: str = Field(description="pending | ok | error | rejected | timed_out")
    issued_at: Timestamp | None
    expires_at: Timestamp | None
    acked_at: Timestamp | None
    error: str | None


class MediaRef(ResponseModel):
    sha256: str
    bytes: int
    duration_ms: int
    content_type: str
    url: str


class AnnouncementAudio(ResponseModel):
    source: str = Field(description="tts | upload")
    options: dict[str, Any]
    render_key: str | None
    integrated_lufs: float | None
    true_peak_dbtp: float | None


class AnnouncementVersion(ResponseModel):
    language: str = Field(description="ISO 639 code")
    name: str = Field(description="The language's name in Vietnamese")
    text: str
    source: str | None = Field(description="tts | upload | null (no audio yet)")
    media: MediaRef | None
    approval: str = Field(description="draft | submitted | approved | rejected | published — each version on its own")
    approval_comment: str | None
    playable: bool = Field(description="Its current audio is exactly the approved audio of this version")


class MissingVersion(ResponseModel):
    language: str
    name: str
    zones: list[str] = Field(description="Zones of its active schedules that need this language")
    reason: str = Field(description="missing (no version) | no_audio (no recording yet) | not_approved")


class AnnouncementVersions(ResponseModel):
    announcement_id: int
    versions: list[AnnouncementVersion]
    missing: list[MissingVersion] = Field(description="What will not play before the airing, and where")


class Announcement(ResponseModel):
    id: int
    title: str
    text: str
    normalized_text: str | None
    status: str = Field(description="draft | ready | error | …")
    engine: str | None
    render_error: str | None
    media: MediaRef | None
    created_at: Timestamp | None
    approval: str = Field(description="draft | submitted | approved | rejected | published")
    approval_comment: str | None
    awaiting_approval: bool
    playable: bool = Field(description="Its current audio is exactly the approved audio: it may reach a loudspeaker")
    audio: AnnouncementAudio
    render_progress: int | None = Field(description="0–100 while speech is produced in the background; null otherwise")
    archived_at: Timestamp | None = Field(description="When it was deleted (archived, restorable); null when in use")
    versions: list[AnnouncementVersion] = Field(description="Language versions: 'vi' (the announcement itself) "
                                                            "first, then each other language")


class Normalized(ResponseModel):
    text: str
    normalized_text: str


class Abbreviations(ResponseModel):
    ward: dict[str, str]
    defaults: dict[str, str]


class Abbreviation(ResponseModel):
    abbr: str
    expansion: str


class ScheduleSequence(ResponseModel):
    zones: list[str] = Field(description="Zone codes in the order they play")
    gap_s: int = Field(description="Seconds between one zone's end and the next one's start")


class Schedule(ResponseModel):
    id: int
    announcement_id: int | None
    title: str | None
    start_at: Timestamp | None
    start_at_local: LocalTime | None
    priority: str
    status: str = Field(description="active | awaiting_approval (in no plan until approved) | cancelled | ended")
    zones: list[str]
    recurrence: dict[str, Any] | None
    rrule: str | None
    describe: str | None
    expires_at: Timestamp | None
    items: list[dict[str, Any]] | None
    repeat: int
    gap_ms: int
    on_preempt: str
    on_clash: str
    drill: bool
    sequence: ScheduleSequence | None = Field(default=None, description="Sequenced zones: the order they play "
                                                                        "in, gap_s apart; null: all together")


class Play(ResponseModel):
    node_id: str
    zone: str
    item_id: str | None
    schedule_id: int | None
    title: str
    sha256: str | None
    scheduled_start: Timestamp | None
    actual_start: Timestamp | None
    offset_ms: int | None
    result: str = Field(description="scheduled | started | played | failed | stopped")
    reason: str | None
    language: str | None = Field(default=None, description="The language version played (ISO 639; 'vi' is the "
                                                            "announcement itself)")
    output_lufs: float | None = Field(description="Loudness the node measured at its output over the airing "
                                                  "(LUFS, docs/protocol.md §7.10); null when it measured none")
    output_sensor: bool | None = Field(description="false: the node reported that it has no output sensor")
    heard: bool | None = Field(description="true: it played and its measured output reached HEARD_MIN_LUFS; "
                                           "false: played but not heard (silent or too low); null: not measured "
                                           "(no sensor) or not played")


# ------------------------------------------------------------------------------------------ scheduling
class QuietHours(ResponseModel):
    start: str
    end: str


class QuietHoursSetting(ResponseModel):
    ward: str
    quiet_hours: QuietHours | None
    tz: str | None = None
    republished: list[str] | None = Field(default=None, description="Nodes whose plans were republished")


class TimelineItem(ResponseModel):
    kind: str
    ref: Any = None
    title: str | None
    index: int | None
    repeat: int | None


class SequenceTurn(ResponseModel):
    turn: int = Field(description="This zone's turn, from 1")
    of: int = Field(description="How many zones play one after another")
    gap_s: int
    zones: list[str] = Field(description="Zone codes in the order they play")


class TimelineEntry(ResponseModel):
    start: Timestamp
    end: Timestamp
    start_local: LocalTime
    end_local: LocalTime
    duration_ms: int
    schedule_id: int
    schedule_title: str | None
    slot_start: Timestamp | None
    item: TimelineItem
    priority: str
    drill: bool
    state: str
    why: str | None
    audible: bool
    delivery: Literal["plan", "command"]
    plan_item_id: str | None
    sequence: SequenceTurn | None = Field(default=None, description="Sequenced zones: this zone's turn")


class Window(ResponseModel):
    start: Timestamp
    end: Timestamp


class WaitingAiring(ResponseModel):
    schedule_id: int
    start: Timestamp
    start_local: LocalTime
    title: str
    state: str


class Timeline(ResponseModel):
    zone: str
    zone_name: str
    node: str | None
    date: Day
    days: int
    tz: str
    window: Window
    quiet_hours: QuietHours | None
    entries: list[TimelineEntry]
    awaiting_approval: list[WaitingAiring]


class AuditEntry(ResponseModel):
    id: int
    at: Timestamp | None
    user: str | None
    action: str
    target: str
    detail: dict[str, Any]


# ------------------------------------------------------------------------------------------------ audio
class AudioChoices(ResponseModel):
    engines: list[str]
    available_engines: list[str]
    voices: list[str] | dict[str, Any]
    bitrates: list[str]
    target_lufs: list[float]
    speed: list[float]


class AudioSettings(ResponseModel):
    engine_order: list[str]
    voice: str | None
    speed: float
    target_lufs: float
    bitrate: str
    lead_in_ms: int
    intro_chime: bool
    outro_chime: bool
    saved: bool
    choices: AudioChoices


class CleanupReport(ResponseModel):
    deleted: list[str]
    kept_referenced: int
    kept_recent: int
    bytes_freed: int
    dry_run: bool


# ------------------------------------------------------------------------------------------------ fleet
class FleetNode(ResponseModel):
    node_id: str
    name: str
    zone: str | None
    zone_name: str | None
    ward: str | None
    lat: float | None
    lon: float | None
    address: str | None
    hardware: str | None
    firmware: str | None
    language: str | None
    state: str
    presence: str = Field(description="online | offline | unknown (debounced)")
    presence_since: Timestamp | None
    last_seen: Timestamp | None
    offline_alert: Timestamp | None
    clock_offset_ms: int | None
    drifting: bool
    rssi_dbm: int | None
    free_bytes: int | None
    uptime_s: int | None
    heartbeat_s: int | None
    volume: int | None
    plan_version: int | None
    reported_plan_version: int | None
    in_sync: bool


class FleetSummary(ResponseModel):
    total: int
    online: int
    offline: int
    unknown: int
    alerts: int
    drifting: int


class Fleet(ResponseModel):
    summary: FleetSummary
    nodes: list[FleetNode]


class Marker(ResponseModel):
    id: str
    name: str
    lat: float | None
    lon: float | None
    status: str = Field(description="online | drifting | offline | alert | unknown")
    zone: str | None


class PlanSummary(ResponseModel):
    version: int | None
    items: list[dict[str, Any]]


class NodeEvent(ResponseModel):
    seq: int
    event: str
    at: Timestamp | None
    item_id: str | None
    reason: str | None
    offset_ms: int | None


class FleetNodeDetail(FleetNode):
    plan: PlanSummary | None
    events: list[NodeEvent]
    commands: list[Command]


class ImportResult(ResponseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    credentials: dict[str, str] = Field(description="node id → token of each new node (shown once)")
    dry_run: bool


class ComplianceRow(ResponseModel):
    day: Day
    zone: str
    zone_name: str | None
    schedule_id: int | None
    title: str | None
    airings: int
    planned: int
    played: int
    failed: int
    stopped: int
    started: int
    missing: int
    missing_nodes: list[str]
    heard: int = Field(description="Node plays played and heard (measured output ≥ HEARD_MIN_LUFS)")
    not_heard: int = Field(description="Node plays played but not heard: the measured output was silent or too low")
    unmeasured: int = Field(description="Node plays played by nodes that measured no output (no sensor)")
    not_heard_nodes: list[str]
    compliance: float | None


class Compliance(ResponseModel):
    from_: Day = Field(alias="from")
    to: Day
    zone: str | None
    schedule_id: int | None
    rows: list[ComplianceRow]
    planned: int = Field(description="Node plays due: airings whose start time has passed")
    played: int
    heard: int
    not_heard: int
    unmeasured: int
    compliance: float | None
    upcoming: int = Field(description="Node plays of the period still to come (not counted as planned)")
    upcoming_airings: int


class Monthly(ResponseModel):
    month: str
    bulletins: int
    airings: int
    minutes: float
    loudspeaker_minutes: float
    emergencies: int
    drills: int
    planned_plays: int
    played: int
    heard: int = Field(description="Node plays played and heard (output_lufs ≥ HEARD_MIN_LUFS)")
    not_heard: int = Field(description="Node plays played but not heard (\"phát nhưng không nghe thấy\")")
    unmeasured: int = Field(description="Node plays played without an output measurement")
    success_rate: float | None
    heard_rate: float | None = Field(description="heard in % of the due node plays whose audibility is known "
                                                 "(planned − unmeasured)")
    zones: int
    nodes: int
    upcoming_airings: int = Field(description="Airings of the month still to come (not counted above)")


class ProvinceWard(ResponseModel):
    ward: str
    ward_name: str
    airings: int
    planned: int
    played: int
    heard: int
    not_heard: int
    missed: int
    success_rate: float | None
    nodes: int
    nodes_online: int
    emergencies: int


class ProvinceTotal(ResponseModel):
    airings: int
    planned: int
    played: int
    heard: int
    not_heard: int
    missed: int
    nodes: int
    nodes_online: int
    emergencies: int
    success_rate: float | None


class ProvinceReport(ResponseModel):
    month: str
    wards: list[ProvinceWard]
    total: ProvinceTotal


# --------------------------------------------------------------------------------------------- emergency
class AlertMedia(ResponseModel):
    sha256: str
    bytes: int
    duration_ms: int
    url: str


class Delivery(ResponseModel):
    node_id: str
    zone: str | None
    node_state: str
    state: str = Field(description="pending | acked | started | finished | stopped | failed | timeout")
    reason: str | None
    command_id: str | None
    command_status: str | None
    sent_at: Timestamp | None
    acked_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    repeats_started: int
    repeats_finished: int
    latency_ms: int | None


class Alert(ResponseModel):
    id: int
    kind: str = Field(description="alert | cancel")
    drill: bool
    title: str
    text: str | None
    announcement_id: int | None
    status: str = Field(description="pending_release | released | cancelled | discarded …")
    all_zones: bool
    zones: list[str]
    repeat: int
    gap_ms: int
    volume: int | None
    media: AlertMedia | None
    created_at: Timestamp | None
    created_by: str | None
    released_at: Timestamp | None
    released_at_local: LocalTime | None
    released_by: str | None
    cancelled_at: Timestamp | None
    cancelled_by: str | None
    cancels_id: int | None
    cancel_alert_id: int | None
    cancel_pending: bool
    cancel_requested_at: Timestamp | None
    cancel_requested_by: str | None
    can_confirm: list[str] = Field(description="Who can be the second person now (release or cancel)")
    ward: str | None
    wards: list[str]


class AlertDetail(Alert):
    deliveries: list[Delivery]
    summary: dict[str, int] = Field(description="Count of deliveries per state, and total")


class EmergencySettings(ResponseModel):
    two_person: bool
    ward: str
    cancel_text: str
    max_repeat: int


# ---------------------------------------------------------------------------------------------- others
class StreamSource(ResponseModel):
    id: int
    code: str
    name: str
    url: str
    active: bool


class User(ResponseModel):
    username: str
    display_name: str
    role: str
    ward: str | None
    disabled: bool
    email: str | None = Field(default=None, description="For the notifications she must act on")
    created_at: Timestamp | None


class PasswordChanged(ResponseModel):
    ok: bool
    username: str


# ------------------------------------------------------------------------------------ notifications
class NotificationOut(ResponseModel):
    """One item of the notification centre (broadcaster/notifications.py), for its recipient only."""

    id: int
    kind: Literal["approval_requested", "announcement_approved", "announcement_rejected", "emergency_confirm",
                  "emergency_cancel_confirm"]
    text: str = Field(description="What happened, in the request's language")
    params: dict[str, Any] = Field(description="The kind's parameters (announcement_id or alert_id, title, by…)")
    link: str = Field(description="The panel page where she acts, e.g. /announcements/12 or /emergency/3")
    created_at: Timestamp
    read: bool
    read_at: Timestamp | None


class NotificationsRead(ResponseModel):
    ok: bool
    marked: int = Field(description="How many were unread and are now read")


# -------------------------------------------------------------------------------------------- live paging
class LiveSession(ResponseModel):
    id: str
    state: str = Field(description="connecting | live | ended | failed")
    reason: str | None = Field(description="Why it failed or ended by itself")
    zones: list[str]
    priority: str
    nodes: list[str] = Field(description="The loudspeakers told to relay it")
    created_at: Timestamp | None
    client_started_at: Timestamp | None = Field(description="When the speaker's browser started sending")
    first_audio_at: Timestamp | None = Field(description="When the first audio reached the panel")
    ended_at: Timestamp | None
    bytes: int = Field(description="Audio received so far (WebM/Opus)")
    announcement_id: int | None = Field(description="The recording, kept as an announcement once it ended")
    alert_id: str = Field(description="The play_now alert id on the nodes (events: item alert:<alert_id>:1)")
    audio_url: str = Field(description="Where the speaker's client POSTs the recorder's chunks")
    stream_url: str = Field(description="The live stream the nodes relay (a capability URL)")


# ------------------------------------------------------------------------------------------ CAP 1.2 sources
class CapSource(ResponseModel):
    """A trusted CAP 1.2 source (broadcaster/cap.py); its shared key is never shown again."""

    id: int
    name: str
    automatic: bool = Field(description="Its alerts are released at once (marked by the province)")
    ward: str | None = Field(description="The ward whose zones its alerts may name; null: every ward")
    created_at: Timestamp | None
