"""``/api/v1`` scheduling: schedules (one-off, recurring, programmes), dry-run timeline, quiet hours,
approval of announcements and the audit log. Logic lives in broadcaster/airtime.py and approval.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from flask import g, jsonify, request
from pydantic import ConfigDict, Field

from broadcaster import airtime, approval
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import announcement_json, blueprint, body, err, schedule_json, svc, token_required, ts
from broadcaster.api.schemas import Code, Id, RequestModel, ZoneRef, codes, text
from broadcaster.audit_log import audit_rows
from broadcaster.services import ServiceError
from schedules.timeutil import TimeParseError, parse_local

bp = blueprint("api_schedules", __name__)

TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
#: An instant: RFC 3339 with its offset, or a local wall-clock time without one (the ward's time zone).
WHEN: dict[str, Any] = {"anyOf": [
    {"type": "string", "format": "date-time"},
    {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]"
                                  r"(:[0-5][0-9])?$"},
    {"type": "null"}]}


class RecurrenceIn(RequestModel):
    """``times`` is required (the service says which rule is broken, 400 invalid_recurrence); an hourly rule
    needs its ``hour_range``."""

    model_config = ConfigDict(json_schema_extra={
        "required": ["kind", "start_date", "times"],
        "allOf": [{"if": {"properties": {"kind": {"const": "hourly"}}, "required": ["kind"]},
                   "then": {"required": ["hour_range"], "properties": {"hour_range": {"type": "array"}}}}]})
    kind: Literal["once", "daily", "weekdays", "weekly", "monthly", "hourly"]
    start_date: date = Field(description="Local date YYYY-MM-DD of the first day")
    # the service checks these (400 invalid_recurrence, naming the rule); the document states them
    times: list[str] = Field(
        default_factory=list, max_length=48, json_schema_extra={"minItems": 1, "items": {"pattern": TIME}},
        description="Local times 'HH:MM' (hourly: the minute of the first, e.g. ['07:00'])")
    until: date | None = Field(default=None, description="Last local date (inclusive)")
    weekdays: list[Annotated[int, Field(ge=0, le=6)] | Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = (
        Field(default_factory=list, max_length=7, description="0 = Monday … 6 = Sunday, or mon…sun"))
    month_days: list[int] = Field(default_factory=list, max_length=62, json_schema_extra={"items": {"anyOf": [
        {"minimum": 1, "maximum": 31}, {"minimum": -31, "maximum": -1}]}},
        description="monthly: 1…31, -1 = last day, -2 the one before…")
    interval: int = Field(default=1, json_schema_extra={"minimum": 1, "maximum": 1000},
                          description="Every n-th day/week/month/hour")
    hour_range: list[int] | None = Field(
        default=None, json_schema_extra={"minItems": 2, "maxItems": 2, "items": {"minimum": 0, "maximum": 23}},
        description="hourly: [first, last] hour, e.g. [7, 17] (first ≤ last)")
    exdates: list[date] = Field(default_factory=list, max_length=366,
                                                               description="Local dates that are skipped (holidays)")


class ProgrammeItemIn(RequestModel):
    """An announcement (its id), a stream (a source of the list, or its exact URL; 1 s … 6 h) or a silence
    (1 ms … 1 h)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"properties": {"kind": {"const": "announcement"}}, "required": ["announcement_id"]},
        {"properties": {"kind": {"const": "stream"}, "duration_ms": {"minimum": 1000, "maximum": 6 * 3600_000}},
         "required": ["duration_ms"], "anyOf": [{"required": ["source"], "properties": {"source": {"not": {
             "type": "null"}}}}, {"required": ["url"], "properties": {"url": {"type": "string"}}}]},
        {"properties": {"kind": {"const": "silence"}, "duration_ms": {"maximum": 3600_000}},
         "required": ["duration_ms"]}]})
    kind: Literal["announcement", "stream", "silence"]
    announcement_id: Id | None = None
    source: Code | Id | None = Field(default=None, description="stream: a source of the ward's list (code or id, "
                                     "GET /stream-sources), e.g. 'vov1'")
    url: str | None = Field(default=None, max_length=2000, description="stream: accepted only when it is the URL "
                            "of a listed source (an admin keeps the list); any other URL is refused")
    duration_ms: int | None = Field(default=None, ge=1, le=6 * 3600 * 1000, description="stream (1 s … 6 h) / "
                                    "silence (1 ms … 1 h) length")
    title: str | None = Field(default=None, max_length=300)


class SequenceIn(RequestModel):
    zones: list[ZoneRef] = Field(min_length=1, max_length=500, description="The schedule's zones, each once, in "
                                                                          "the order they play")
    gap_s: int = Field(default=0, ge=0, le=3600, description="Silence between one zone's end and the next's start")


class ScheduleCreateIn(RequestModel):
    """Exactly one of announcement_id / items, and exactly one of start_at / recurrence / rrule."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"oneOf": [{"required": ["announcement_id"], "properties": {"announcement_id": {"type": "integer"}}},
                   {"required": ["items"], "properties": {"items": {"type": "array"}}}]},
        {"oneOf": [{"required": ["start_at"], "properties": {"start_at": {"type": "string"}}},
                   {"required": ["recurrence"], "properties": {"recurrence": {"type": "object"}}},
                   {"required": ["rrule"], "properties": {"rrule": {"type": "string"}}}]}]})
    announcement_id: Id | None = Field(default=None, description="One announcement (or give items)")
    items: list[ProgrammeItemIn] | None = Field(default=None, min_length=1, max_length=50,
                                                description="Programme: played in order")
    zones: list[ZoneRef] | None = Field(default=None, min_length=1, max_length=500,
                                        description="Zone codes or ids (may be left out when sequence names them)")
    start_at: str | None = Field(default=None, max_length=40, json_schema_extra=WHEN, description="One-off: ISO "
                                 "8601; without an offset it is local time (Asia/Ho_Chi_Minh), e.g. "
                                 "'2026-11-23T06:00:00'; in the past: 409 time_in_past")
    recurrence: RecurrenceIn | None = Field(default=None, description="Recurring (computed in local time)")
    rrule: str | None = Field(default=None, max_length=4000, description="Recurring, as RFC 5545 text "
                              "(DTSTART;TZID=…, RRULE, EXDATE)")
    expires_at: str | None = Field(default=None, max_length=40, json_schema_extra=WHEN,
                                   description="Nothing plays at or after this instant")
    priority: Literal["normal", "priority", "emergency"] = "normal"
    on_preempt: Literal["resume", "drop"] = Field(default="resume", description="When cut by a higher level")
    repeat: int = Field(default=1, ge=1, le=10)
    gap_ms: int = Field(default=0, ge=0, le=3_600_000, description="Silence between repeats")
    conflict: Literal["override", "append"] | None = Field(
        default=None, description="Required when the planned airings clash with existing ones (else 409)")
    title: str | None = Field(default=None, max_length=300)
    drill: bool = False
    sequence: SequenceIn | None = Field(
        default=None, description="Sequenced zones: play zone after zone (neighbouring clusters would echo) in "
                                  "this order, gap_s apart; without it every zone starts together")


class ReviewIn(RequestModel):
    comment: str = Field(default="", max_length=2000)


class RejectIn(RequestModel):
    comment: str = text(2000, "comment_required", description="Why it is not approved (the officer reads it)")


class AnnouncementEditIn(RequestModel):
    title: str = text(300, "title_required", "title_too_long")
    text: str = text(5000, "text_required", "text_too_long")


class QuietHoursIn(RequestModel):
    ward: str = Field(default="", max_length=64, description="Ward code ('' = the default of every ward)")
    quiet_hours: str = Field(pattern=r"^(off|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$",
                             json_schema_extra=codes("invalid_quiet_hours"),
                             description="Local 'HH:MM-HH:MM' (e.g. '22:00-05:00') or 'off'")


def _time(value: str | None, field: str):
    if value is None:
        return None
    try:
        return parse_local(value, svc().config.TIMEZONE)
    except TimeParseError as exc:
        raise ServiceError("invalid_time", str(exc), field) from exc


# ------------------------------------------------------------------------------------------- schedules
@bp.get("/schedules")
@token_required()
def list_schedules():
    rows = svc().list_schedules(g.scope)
    states = airtime.schedule_states(svc(), rows)
    return jsonify([schedule_json(s, states[s.id]) for s in rows])


@bp.post("/schedules")
@token_required()
def create_schedule():
    data = body(ScheduleCreateIn)
    zones = data.zones if data.zones is not None else (list(data.sequence.zones) if data.sequence else [])
    spec = airtime.ScheduleSpec(
        zones=list(zones),
        announcement_id=data.announcement_id,
        items=[i.model_dump(exclude_none=True) for i in data.items] if data.items is not None else None,
        start_at=_time(data.start_at, "start_at"),
        recurrence=data.recurrence.model_dump(mode="json") if data.recurrence is not None else None,
        rrule=data.rrule,
        expires_at=_time(data.expires_at, "expires_at"),
        priority=data.priority, on_preempt=data.on_preempt, repeat=data.repeat, gap_ms=data.gap_ms,
        conflict=data.conflict, title=data.title, drill=data.drill,
        sequence=data.sequence.model_dump() if data.sequence is not None else None,
    )
    try:
        sched = airtime.create_schedule(svc(), spec, g.api_user)
    except airtime.ConflictError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message, "field": exc.field},
                        "conflicts": exc.conflicts}), 409
    return jsonify(schedule_json(sched)), 201


@bp.get("/schedules/<int:schedule_id>")
@token_required()
def get_schedule(schedule_id: int):
    sched = svc().get_schedule(schedule_id, g.scope)
    if sched is None:
        return err("not_found", "no such schedule", 404)
    return jsonify(schedule_json(sched, "archived" if sched.archived_at is not None else None))


@bp.post("/schedules/<int:schedule_id>/cancel")
@token_required()
def cancel_schedule(schedule_id: int):
    return jsonify(schedule_json(svc().cancel_schedule(schedule_id, g.api_user)))


@bp.post("/schedules/<int:schedule_id>/archive")
@token_required()
def archive_schedule(schedule_id: int):
    """"Xóa" with undo: out of every plan and list at once; ``/restore`` brings it back."""
    return jsonify(schedule_json(svc().archive_schedule(schedule_id, g.api_user), "archived"))


@bp.post("/schedules/<int:schedule_id>/restore")
@token_required()
def restore_schedule(schedule_id: int):
    sched = svc().restore_schedule(schedule_id, g.api_user)
    return jsonify(schedule_json(sched, airtime.schedule_states(svc(), [sched])[sched.id]))


# -------------------------------------------------------------------------------------------- timeline
@bp.get("/timeline")
@token_required()
def timeline():
    """Dry run: what the loudspeakers of a zone (or a node's zone) will do on a local day, and why."""
    raw_day = request.args.get("date")
    try:
        day = date.fromisoformat(raw_day) if raw_day else None
    except ValueError:
        return err("invalid_date", "date: YYYY-MM-DD", 400, "date")
    days = request.args.get("days", default=1, type=int)
    return jsonify(airtime.dry_run(svc(), zone=request.args.get("zone"), node=request.args.get("node"),
                                      day=day, days=days, scope=g.scope))


# ----------------------------------------------------------------------------------------- publication
@bp.get("/publication")
@token_required()
def publication_status():
    """How far the plans of the last changes are (they are published in the background)."""
    queue = svc().publication_queue
    if queue is None:
        return jsonify({"state": "immediate", "queued_nodes": 0, "current": None, "last": None})
    return jsonify(queue.status())


# ----------------------------------------------------------------------------------------- quiet hours
@bp.get("/settings/quiet-hours")
@token_required()
def get_quiet_hours():
    service = svc()
    ward = airtime.settings_ward(service, g.api_user, request.args.get("ward", ""))
    with service.db.session() as s:
        q = airtime.ward_quiet(s, service.config, ward)
    return jsonify({"ward": ward, "quiet_hours": airtime.quiet_json(q), "tz": service.config.TIMEZONE})


@bp.put("/settings/quiet-hours")
@token_required()
def set_quiet_hours():
    data = body(QuietHoursIn)
    service = svc()
    republished = airtime.set_ward_quiet(service, data.ward, data.quiet_hours, g.api_user)
    ward = airtime.settings_ward(service, g.api_user, data.ward)
    with service.db.session() as s:
        q = airtime.ward_quiet(s, service.config, ward)
    return jsonify({"ward": ward, "quiet_hours": airtime.quiet_json(q), "republished": republished})


# -------------------------------------------------------------------------------------------- approval
@bp.get("/approvals")
@token_required()
def approval_queue():
    return jsonify([announcement_json(a) for a in approval.queue(svc(), g.scope)])


@bp.post("/announcements/<int:announcement_id>/submit")
@token_required()
def submit_announcement(announcement_id: int):
    return jsonify(announcement_json(approval.submit(svc(), announcement_id, g.api_user)))


@bp.post("/announcements/<int:announcement_id>/approve")
@token_required()
def approve_announcement(announcement_id: int):
    data = body(ReviewIn) if request.get_data() else ReviewIn()
    return jsonify(announcement_json(approval.approve(svc(), announcement_id, g.api_user, data.comment)))


@bp.post("/announcements/<int:announcement_id>/reject")
@token_required()
def reject_announcement(announcement_id: int):
    data = body(RejectIn)
    return jsonify(announcement_json(approval.reject(svc(), announcement_id, g.api_user, data.comment)))


@bp.put("/announcements/<int:announcement_id>")
@token_required()
def edit_announcement(announcement_id: int):
    data = body(AnnouncementEditIn)
    return jsonify(announcement_json(approval.edit(svc(), announcement_id, data.title, data.text, g.api_user)))


# ----------------------------------------------------------------------------------------------- audit
@bp.get("/audit")
@token_required()
def audit():
    rows = audit_rows(svc(), request.args.get("limit", default=200, type=int), request.args.get("target"),
                      request.args.get("action"), g.scope)
    return jsonify([{**r, "at": ts(r["at"])} for r in rows])


# -------------------------------------------------------------------------------------------- OpenAPI
def _paths() -> dict[str, Any]:
    op, path, query = openapi.op, openapi.path, openapi.query
    sid = [path("schedule_id", "integer")]
    aid = [path("announcement_id", "integer")]
    create = op("Schedule a programme to zones: once (start_at) or recurring (recurrence / rrule), with "
                "priority, pre-emption, repeat and expiry; refused in quiet hours (except emergencies). 409 when it "
                "clashes with existing airings: {error, conflicts: [{schedule_id, start, end, priority, relation}]} "
                "— send again with conflict 'override' or 'append'",
                body=ScheduleCreateIn, ok=201, response=out.Schedule, errors=(409,))
    return {
        "/schedules": {"get": op("List schedules", response=list[out.Schedule], params=[query("ward")]),
                       "post": create},
        "/schedules/{schedule_id}": {"get": op("One schedule (a deleted one, until restored: status 'archived')",
                                                params=sid, response=out.Schedule)},
        "/schedules/{schedule_id}/cancel": {"post": op("Cancel a schedule", params=sid, response=out.Schedule,
                                                       errors=(409,))},
        "/schedules/{schedule_id}/archive": {"post": op(
            "Delete (archive) a schedule, with undo: it leaves the nodes' plans at once and the lists; status "
            "'archived'", params=sid, response=out.Schedule)},
        "/schedules/{schedule_id}/restore": {"post": op(
            "Undo the deletion of a schedule (plans republished); 409 not_archived, or schedule_passed when its "
            "time has gone", params=sid, response=out.Schedule, errors=(409,))},
        "/publication": {"get": op(
            "Where the publication of plans stands: a change (schedule, approval) answers at once and its nodes' "
            "plans are built and published in the background; state idle / queued / publishing, the pass in "
            "progress and the last one. With several panel processes (`serve --workers`), each has its own queue: "
            "this is the queue of the process that answers", response=out.PublicationStatus)},
        "/timeline": {"get": op(
            "Dry-run timeline of a zone or node for local day(s): entries {start, end, item, schedule_id, "
            "priority, state, why} — the same computation as the plans",
            params=[query("zone"), query("node"), query("date", format="date", pattern=openapi.YEARS),
                    query("days", "integer", minimum=1, maximum=14)], response=out.Timeline)},
        "/settings/quiet-hours": {
            "get": op("Quiet hours of a ward (local time)", params=[query("ward")], response=out.QuietHoursSetting),
            "put": op("Set a ward's quiet hours (leader/admin); republishes its nodes", body=QuietHoursIn,
                      response=out.QuietHoursSetting),
        },
        "/approvals": {"get": op("Announcements waiting for approval", response=list[out.Announcement])},
        "/announcements/{announcement_id}/submit": {"post": op("Submit for approval (officer)", params=aid,
                                                               response=out.Announcement, errors=(409,))},
        "/announcements/{announcement_id}/approve": {"post": op("Approve (leader/admin); the body is optional",
                                                                params=aid, body=ReviewIn, body_required=False,
                                                                response=out.Announcement, errors=(409,))},
        "/announcements/{announcement_id}/reject": {"post": op("Reject with a comment (leader/admin)", body=RejectIn,
                                                               params=aid, response=out.Announcement,
                                                               errors=(409,))},
        "/announcements/{announcement_id}": {"put": op("Edit the text; approved content goes back for approval",
                                                       body=AnnouncementEditIn, params=aid,
                                                       response=out.Announcement, errors=(409, 503))},
        "/audit": {"get": op("Audit log: who did what, when",
                             params=[query("limit", "integer", minimum=1, maximum=2000), query("target"),
                                     query("action")], response=list[out.AuditEntry])},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([ScheduleCreateIn, RecurrenceIn, ProgrammeItemIn, ReviewIn, RejectIn, AnnouncementEditIn,
                             QuietHoursIn])
