"""Officer pages for scheduling: new schedule (once / recurring / programme, with the clash dialog),
the timeline of a zone per day, quiet hours, the approval queue and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import approval, logins, scheduling, streams
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.views import bp, error_text, svc
from schedules.recurrence import describe
from schedules.timeutil import TimeParseError, parse_local

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
KINDS = ("once", "daily", "weekdays", "weekly", "monthly", "hourly")
PROGRAMME_ROWS = 4


@bp.app_template_filter("recurrence_text")
def recurrence_text(sched: Any) -> str:
    """Human description of a schedule's rule (Vietnamese or English by the page's language)."""
    from broadcaster.i18n import current_locale

    try:
        rec = scheduling.schedule_recurrence(sched, svc().config.TIMEZONE)
    except ServiceError:
        return ""
    return describe(rec, "en" if current_locale() == "en" else "vi") if rec is not None else ""


def _split(text: str) -> list[str]:
    return [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]


def _date(text: str) -> str:
    """Accept 30/04/2026 as well as 2026-04-30."""
    text = text.strip()
    if "/" in text:
        d, m, y = text.split("/")
        return date(int(y), int(m), int(d)).isoformat()
    return text


def _spec_from_form(form: Any) -> scheduling.ScheduleSpec:
    tz = svc().config.TIMEZONE
    kind = form.get("kind", "once")
    try:
        recurrence: dict[str, Any] = {
            "kind": kind,
            "start_date": form.get("start_date", ""),
            "times": _split(form.get("times", "")),
            "until": form.get("until") or None,
            "weekdays": [int(d) for d in form.getlist("weekdays")],
            "month_days": [int(d) for d in _split(form.get("month_days", ""))],
            "interval": int(form.get("interval") or 1),
            "exdates": [_date(d) for d in _split(form.get("exdates", ""))],
        }
        if kind == "hourly":
            recurrence["hour_range"] = [int(form.get("hour_from") or 0), int(form.get("hour_to") or 0)]
    except ValueError as exc:
        raise ServiceError("invalid_recurrence", str(exc), "recurrence") from exc
    items: list[dict[str, Any]] = []
    for n in range(1, PROGRAMME_ROWS + 1):
        k = form.get(f"item_kind_{n}", "")
        try:
            if k == "announcement" and form.get(f"item_ann_{n}"):
                items.append({"kind": k, "announcement_id": int(form[f"item_ann_{n}"])})
            elif k == "stream":
                items.append({"kind": k, "source": form.get(f"item_source_{n}", ""),
                              "duration_ms": int(float(form.get(f"item_min_{n}") or 0) * 60_000),
                              "title": form.get(f"item_title_{n}", "")})
            elif k == "silence":
                items.append({"kind": k, "duration_ms": int(float(form.get(f"item_sec_{n}") or 0) * 1000)})
        except ValueError as exc:
            raise ServiceError("invalid_item", str(exc), f"items.{n}") from exc
    ann = form.get("announcement_id") or None
    if items and ann:
        items.insert(0, {"kind": "announcement", "announcement_id": int(ann)})
    expires = None
    if form.get("expires_at"):
        try:
            expires = parse_local(form["expires_at"], tz)
        except TimeParseError as exc:
            raise ServiceError("invalid_time", str(exc), "expires_at") from exc
    return scheduling.ScheduleSpec(
        zones=form.getlist("zones"),
        announcement_id=int(ann) if ann and not items else None,
        items=items or None,
        recurrence=recurrence,
        expires_at=expires,
        priority=form.get("priority", "normal"),
        on_preempt=form.get("on_preempt", "resume"),
        repeat=int(form.get("repeat") or 1),
        gap_ms=int(float(form.get("gap_s") or 0) * 1000),
        conflict=form.get("conflict") or None,
        title=form.get("title") or None,
    )


def _form_page(form: Any, status: int = 200, **extra: Any):
    service = svc()
    anns = [a for a in service.list_announcements(g.scope) if a.media is not None]
    return render_template("schedule_new.html", form=form, zones=service.list_zones(g.scope), announcements=anns,
                           sources=streams.list_sources(service),
                           weekdays=WEEKDAYS, kinds=KINDS, rows=range(1, PROGRAMME_ROWS + 1), **extra), status


@bp.route("/schedules/new", methods=["GET", "POST"])
@login_required
def new_schedule():
    service = svc()
    if request.method == "GET":
        today = service.local(datetime.now(UTC)).date()  # type: ignore[union-attr]
        form = {"kind": "once", "start_date": today.isoformat(), "priority": "normal", "repeat": "1",
                "announcement_id": request.args.get("announcement", ""), "on_preempt": "resume"}
        return _form_page(form)
    try:
        sched = scheduling.create_schedule(service, _spec_from_form(request.form), current_user)
    except scheduling.ConflictError as exc:
        # the clash dialog: the officer sees what overlaps and chooses override or append after
        return _form_page(request.form, 409, conflicts=exc.conflicts)
    except ServiceError as exc:
        return _form_page(request.form, exc.status, error=error_text(exc), error_field=exc.field)
    flash(_("Schedule saved; the loudspeakers of its zones have their new plans."), "ok")
    first = service.local(sched.start_at).date().isoformat()  # type: ignore[union-attr]
    return redirect(url_for("views.timeline_page", zone=sched.zones[0].code if sched.zones else "", date=first))


# -------------------------------------------------------------------------------------------- timeline
@bp.get("/timeline")
@login_required
def timeline_page():
    service = svc()
    zones = service.list_zones(g.scope)
    zone = request.args.get("zone") or (zones[0].code if zones else "")
    try:
        day = date.fromisoformat(request.args.get("date", "")) if request.args.get("date") else None
    except ValueError:
        day = None
    data = None
    if zone:
        try:
            data = scheduling.dry_run(service, zone=zone, day=day, scope=g.scope)
        except ServiceError as exc:
            flash(error_text(exc), "error")
    current = date.fromisoformat(data["date"]) if data else (day or date.today())
    return render_template("timeline.html", zones=zones, zone=zone, data=data, day=current,
                           prev_day=(current - timedelta(days=1)).isoformat(),
                           next_day=(current + timedelta(days=1)).isoformat())


@bp.post("/settings/quiet-hours")
@login_required
def set_quiet_hours():
    try:
        value = f"{request.form.get('start', '')}-{request.form.get('end', '')}"
        if request.form.get("off"):
            value = "off"
        scheduling.set_ward_quiet(svc(), request.form.get("ward", ""), value, current_user)
        flash(_("Quiet hours saved."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.timeline_page", zone=request.form.get("zone", "")))


# -------------------------------------------------------------------------------------------- approval
@bp.get("/approvals")
@login_required
def approvals():
    return render_template("approvals.html", queue=approval.queue(svc(), g.scope))


def _review(action: str, announcement_id: int):
    service = svc()
    try:
        if action == "submit":
            approval.submit(service, announcement_id, current_user)
            flash(_("Sent for approval."), "ok")
        elif action == "approve":
            approval.approve(service, announcement_id, current_user, request.form.get("comment", ""))
            flash(_("Approved."), "ok")
        else:
            approval.reject(service, announcement_id, current_user, request.form.get("comment", ""))
            flash(_("Rejected."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(logins.safe_next(request.form.get("next"))
                    or url_for("views.announcement_detail", announcement_id=announcement_id))


@bp.post("/announcements/<int:announcement_id>/submit")
@login_required
def submit_announcement(announcement_id: int):
    return _review("submit", announcement_id)


@bp.post("/announcements/<int:announcement_id>/approve")
@login_required
def approve_announcement(announcement_id: int):
    return _review("approve", announcement_id)


@bp.post("/announcements/<int:announcement_id>/reject")
@login_required
def reject_announcement(announcement_id: int):
    return _review("reject", announcement_id)


@bp.route("/announcements/<int:announcement_id>/edit", methods=["GET", "POST"])
@login_required
def edit_announcement(announcement_id: int):
    service = svc()
    ann = service.get_announcement(announcement_id, g.scope)
    if ann is None:
        abort(404)
    if request.method == "GET":
        return render_template("announcement_edit.html", ann=ann, form={"title": ann.title, "text": ann.text})
    try:
        approval.edit(service, announcement_id, request.form.get("title", ""), request.form.get("text", ""),
                      current_user)
    except ServiceError as exc:
        return render_template("announcement_edit.html", ann=ann, form=request.form,
                               error=error_text(exc)), exc.status
    flash(_("Saved. Approved content goes back for approval when its text changes."), "ok")
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))


# ----------------------------------------------------------------------------------------------- audit
@bp.get("/audit")
@login_required
def audit_log():
    from broadcaster.api.routes_schedules import audit_rows

    return render_template("audit.html", rows=audit_rows(svc(), 500, request.args.get("target") or None,
                                                         request.args.get("action") or None, g.scope))
