"""``/api/v1`` scheduling: schedules (one-off, recurring, programmes), dry-run timeline, quiet hours,
approval of announcements and the audit log. Logic lives in broadcaster/scheduling.py and approval.py."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import g, jsonify, request
from pydantic import Field

from broadcaster import approval, scheduling, tenancy
from broadcaster.api import openapi
from broadcaster.api.routes import announcement_json, body, bp, err, schedule_json, svc, token_required, ts
from broadcaster.api.schemas import _In
from broadcaster.services import ServiceError
from schedules.timeutil import TimeParseError, parse_local


class RecurrenceIn(_In):
    kind: Literal["once", "daily", "weekdays", "weekly", "monthly", "hourly"]
    start_date: str = Field(description="Local date YYYY-MM-DD of the first day")
    times: list[str] = Field(default_factory=list, description="Local times 'HH:MM' (hourly: the minute of the "
                             "first, e.g. ['07:00'])")
    until: str | None = Field(default=None, description="Last local date (inclusive)")
    weekdays: list[int | str] = Field(default_factory=list, description="0 = Monday … 6 = Sunday, or mon…sun")
    month_days: list[int] = Field(default_factory=list, description="monthly: 1…31, -1 = last day")
    interval: int = Field(default=1, description="Every n-th day/week/month/hour")
    hour_range: list[int] | None = Field(default=None, description="hourly: [first, last] hour, e.g. [7, 17]")
    exdates: list[str] = Field(default_factory=list, description="Local dates that are skipped (holidays)")


class ProgrammeItemIn(_In):
    kind: Literal["announcement", "stream", "silence"]
    announcement_id: int | None = None
    source: str | int | None = Field(default=None, description="stream: a source of the ward's list (code or id, "
                                     "GET /stream-sources), e.g. 'vov1'")
    url: str | None = Field(default=None, description="stream: accepted only when it is the URL of a listed source "
                            "(an admin keeps the list); any other URL is refused")
    duration_ms: int | None = Field(default=None, description="stream / silence length")
    title: str | None = None


class ScheduleCreateIn(_In):
    announcement_id: int | None = Field(default=None, description="One announcement (or give items)")
    items: list[ProgrammeItemIn] | None = Field(default=None, description="Programme: played in order")
    zones: list[str | int] = Field(min_length=1, description="Zone codes or ids")
    start_at: str | None = Field(default=None, description="One-off: ISO 8601; without an offset it is local "
                                 "time (Asia/Ho_Chi_Minh), e.g. '2026-11-23T06:00:00'")
    recurrence: RecurrenceIn | None = Field(default=None, description="Recurring (computed in local time)")
    rrule: str | None = Field(default=None, description="Recurring, as RFC 5545 text (DTSTART;TZID=…, RRULE, "
                              "EXDATE)")
    expires_at: str | None = Field(default=None, description="Nothing plays at or after this instant")
    priority: Literal["normal", "priority", "emergency"] = "normal"
    on_preempt: Literal["resume", "drop"] = Field(default="resume", description="When cut by a higher level")
    repeat: int = Field(default=1, ge=1, le=10)
    gap_ms: int = Field(default=0, ge=0, le=3_600_000, description="Silence between repeats")
    conflict: Literal["override", "append"] | None = Field(
        default=None, description="Required when the planned airings clash with existing ones (else 409)")
    title: str | None = Field(default=None, max_length=300)
    drill: bool = False


class ReviewIn(_In):
    comment: str = Field(default="", max_length=2000)


class AnnouncementEditIn(_In):
    title: str = Field(max_length=300)
    text: str


class QuietHoursIn(_In):
    ward: str = Field(default="", description="Zone.ward ('' = the default of every ward)")
    quiet_hours: str = Field(description="Local 'HH:MM-HH:MM' (e.g. '22:00-05:00') or 'off'")


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
    states = scheduling.schedule_states(svc(), rows)
    return jsonify([schedule_json(s, states[s.id]) for s in rows])


@bp.post("/schedules")
@token_required()
def create_schedule():
    data = body(ScheduleCreateIn)
    spec = scheduling.ScheduleSpec(
        zones=list(data.zones),
        announcement_id=data.announcement_id,
        items=[i.model_dump(exclude_none=True) for i in data.items] if data.items is not None else None,
        start_at=_time(data.start_at, "start_at"),
        recurrence=data.recurrence.model_dump() if data.recurrence is not None else None,
        rrule=data.rrule,
        expires_at=_time(data.expires_at, "expires_at"),
        priority=data.priority, on_preempt=data.on_preempt, repeat=data.repeat, gap_ms=data.gap_ms,
        conflict=data.conflict, title=data.title, drill=data.drill,
    )
    try:
        sched = scheduling.create_schedule(svc(), spec, g.api_user)
    except scheduling.ConflictError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message, "field": exc.field},
                        "conflicts": exc.conflicts}), 409
    return jsonify(schedule_json(sched)), 201


@bp.get("/schedules/<int:schedule_id>")
@token_required()
def get_schedule(schedule_id: int):
    sched = svc().get_schedule(schedule_id, g.scope)
    if sched is None:
        return err("not_found", "no such schedule", 404)
    return jsonify(schedule_json(sched))


@bp.post("/schedules/<int:schedule_id>/cancel")
@token_required()
def cancel_schedule(schedule_id: int):
    return jsonify(schedule_json(svc().cancel_schedule(schedule_id, g.api_user)))


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
    return jsonify(scheduling.dry_run(svc(), zone=request.args.get("zone"), node=request.args.get("node"),
                                      day=day, days=days, scope=g.scope))


# ----------------------------------------------------------------------------------------- quiet hours
@bp.get("/settings/quiet-hours")
@token_required()
def get_quiet_hours():
    service = svc()
    ward = scheduling.settings_ward(service, g.api_user, request.args.get("ward", ""))
    with service.db.session() as s:
        q = scheduling.ward_quiet(s, service.config, ward)
    return jsonify({"ward": ward, "quiet_hours": scheduling.quiet_json(q), "tz": service.config.TIMEZONE})


@bp.put("/settings/quiet-hours")
@token_required()
def set_quiet_hours():
    data = body(QuietHoursIn)
    service = svc()
    republished = scheduling.set_ward_quiet(service, data.ward, data.quiet_hours, g.api_user)
    ward = scheduling.settings_ward(service, g.api_user, data.ward)
    with service.db.session() as s:
        q = scheduling.ward_quiet(s, service.config, ward)
    return jsonify({"ward": ward, "quiet_hours": scheduling.quiet_json(q), "republished": republished})


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
    data = body(ReviewIn)
    return jsonify(announcement_json(approval.reject(svc(), announcement_id, g.api_user, data.comment)))


@bp.put("/announcements/<int:announcement_id>")
@token_required()
def edit_announcement(announcement_id: int):
    data = body(AnnouncementEditIn)
    return jsonify(announcement_json(approval.edit(svc(), announcement_id, data.title, data.text, g.api_user)))


# ----------------------------------------------------------------------------------------------- audit
def audit_rows(service, limit: int = 200, target: str | None = None, action: str | None = None,
               scope: tenancy.Scope | None = None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from broadcaster.models import AuditEntry, User

    with service.db.session() as s:
        q = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
        if scope is not None:
            q = scope.restrict(q, AuditEntry)
        if target:
            q = q.where(AuditEntry.target == target)
        if action:
            q = q.where(AuditEntry.action.startswith(action))
        rows = s.execute(q.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 2000)))).all()
        return [{"id": e.id, "at": e.at, "user": username, "action": e.action, "target": e.target,
                 "detail": e.detail} for e, username in rows]


@bp.get("/audit")
@token_required()
def audit():
    rows = audit_rows(svc(), request.args.get("limit", default=200, type=int), request.args.get("target"),
                      request.args.get("action"), g.scope)
    return jsonify([{**r, "at": ts(r["at"])} for r in rows])


# -------------------------------------------------------------------------------------------- OpenAPI
def _paths() -> dict[str, Any]:
    op, path, query = openapi._op, openapi._path, openapi._query
    sid = [path("schedule_id", "integer")]
    aid = [path("announcement_id", "integer")]
    conflict_409 = {"description": "Clashes with existing schedules: {error, conflicts: [{schedule_id, start, "
                    "end, priority, relation}]}; send again with conflict 'override' or 'append'"}
    create = op("Schedule a programme to zones: once (start_at) or recurring (recurrence / rrule), with "
                "priority, pre-emption, repeat and expiry; refused in quiet hours (except emergencies)",
                body=ScheduleCreateIn, ok=201)
    create["responses"]["409"] = conflict_409
    return {
        "/schedules": {"get": op("List schedules", response="array"), "post": create},
        "/schedules/{schedule_id}": {"get": op("One schedule", params=sid)},
        "/schedules/{schedule_id}/cancel": {"post": op("Cancel a schedule", params=sid)},
        "/timeline": {"get": op(
            "Dry-run timeline of a zone or node for local day(s): entries {start, end, item, schedule_id, "
            "priority, state, why} — the same computation as the plans",
            params=[query("zone"), query("node"), query("date"), query("days", "integer")])},
        "/settings/quiet-hours": {
            "get": op("Quiet hours of a ward (local time)", params=[query("ward")]),
            "put": op("Set a ward's quiet hours (leader/admin); republishes its nodes", body=QuietHoursIn),
        },
        "/approvals": {"get": op("Announcements waiting for approval", response="array")},
        "/announcements/{announcement_id}/submit": {"post": op("Submit for approval (officer)", params=aid)},
        "/announcements/{announcement_id}/approve": {"post": op("Approve (leader/admin)", params=aid)},
        "/announcements/{announcement_id}/reject": {"post": op("Reject with a comment (leader/admin)", body=ReviewIn,
                                                              params=aid)},
        "/announcements/{announcement_id}": {"put": op("Edit the text; approved content goes back for approval",
                                                       body=AnnouncementEditIn, params=aid)},
        "/audit": {"get": op("Audit log: who did what, when", params=[query("limit", "integer"), query("target"),
                                                                      query("action")], response="array")},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([ScheduleCreateIn, RecurrenceIn, ProgrammeItemIn, ReviewIn, AnnouncementEditIn,
                             QuietHoursIn])
