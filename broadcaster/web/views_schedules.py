"""Officer pages for scheduling: the schedules list (archive with undo), a new schedule in four sections (what,
where, when — times as people write them, "6h30" — and the advanced rest) with the clash choices at the top, the
calendar (week, month), what plays today, the timeline of a zone per day, quiet hours, the approval queue and the
audit log."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import airtime, approval, logins, policy, streams
from broadcaster.audit_log import audit_rows
from broadcaster.i18n import current_locale
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc
from schedules.recurrence import describe
from schedules.spoken import SpokenTimeError, format_time, parse_day, parse_time_of_day, parse_times, split_days
from schedules.timeutil import TimeParseError, parse_local

bp = Blueprint("schedules", __name__)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: What the form offers under "when"; the API's other kinds (daily, weekdays) come in as "weekly" with days.
KINDS = ("once", "weekly", "monthly", "hourly")
PROGRAMME_ROWS = 4
#: What a schedule's state is called where it is shown (R6: an unapproved one will not play).
STATE_BADGE = {"active": "active", airtime.AWAITING_APPROVAL: "draft", "cancelled": "cancelled"}


@bp.app_template_filter("recurrence_text")
def recurrence_text(sched: Any) -> str:
    """Human description of a schedule's rule (Vietnamese or English by the page's language)."""
    try:
        rec = airtime.schedule_recurrence(sched, svc().config.TIMEZONE)
    except ServiceError:
        return ""
    return describe(rec, "en" if current_locale() == "en" else "vi") if rec is not None else ""


@bp.app_template_filter("weekday")
def weekday_name(day: date | datetime) -> str:
    """'Thứ Hai' … 'Chủ nhật' (the page's language)."""
    return _("day." + WEEKDAYS[day.weekday()])


@bp.app_template_global("why_text")
def why_text(entry: dict[str, Any]) -> str:
    """A timeline entry's reason in words, from its state and the tokens of its ``why`` (schedules/timeline.py:
    ``scheduled``, ``appended_after:7``, ``resumed_after:42``, ``overrides:7``, ``preempted_by:42``,
    ``overridden_by:9``, ``quiet_hours``, ``expired``); never the raw tokens or the English explanation."""
    tokens = str(entry.get("why") or "").split(" (", 1)[0].split(";")
    said: list[str] = []
    for token in tokens:
        name, _sep, ref = token.strip().partition(":")
        if name == "scheduled":
            said.append(_("On time, as scheduled."))
        elif name == "appended_after":
            said.append(_("Waits until the emergency has finished.") if ref.startswith("-")
                        else _("Waits until schedule #{id} has finished.", id=ref))
        elif name == "resumed_after":
            said.append(_("Plays again after the emergency.") if ref.startswith("-")
                        else _("Plays again after the interruption by schedule #{id}.", id=ref))
        elif name == "overrides":
            said.append(_("Replaces schedule #{id} (override chosen).", id=ref.replace(",", ", #")))
        elif name == "preempted_by":
            said.append(_("Interrupted by schedule #{id}, which has a higher priority.", id=ref)
                        if ref and not ref.startswith("-") else _("Interrupted by an emergency."))
        elif name == "overridden_by":
            said.append(_("Replaced by schedule #{id} (override chosen).", id=ref))
        elif name == "quiet_hours":
            said.append(_("Not played: quiet hours."))
        elif name == "expired":
            said.append(_("Not played: expired."))
    if not said:
        said.append(_("tl." + str(entry.get("state") or "play")))
    return " ".join(said)


class FormProblem(Exception):
    """A field of the schedule form that cannot be read; the page says which and keeps what was typed."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field, self.text = field, text


def _split(text: str) -> list[str]:
    return [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]


def _today() -> date:
    return svc().local(datetime.now(UTC)).date()  # type: ignore[union-attr]


def _day(form: Any, name: str, label: str, required: bool = False) -> str | None:
    """A date field as people write it (30/04/2026, 30/4) → ISO, or a FormProblem naming the field."""
    text = (form.get(name) or "").strip()
    if not text:
        if required:
            raise FormProblem(name, _("{field}: enter a date like {example}.", field=label,
                                      example=_today().strftime("%d/%m/%Y")))
        return None
    try:
        return parse_day(text, _today()).isoformat()
    except SpokenTimeError as exc:
        raise FormProblem(name, _("{field} is not a valid date (“{typed}”): write it like {example}.", field=label,
                                  typed=text, example=_today().strftime("%d/%m/%Y"))) from exc


def _int(form: Any, name: str, label: str, default: int) -> int:
    text = (form.get(name) or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise FormProblem(name, _("{field} must be a whole number.", field=label)) from exc


def _number(form: Any, name: str, label: str) -> float:
    text = (form.get(name) or "").strip().replace(",", ".")
    try:
        return float(text) if text else 0.0
    except ValueError as exc:
        raise FormProblem(name, _("{field} must be a number.", field=label)) from exc


def _times(form: Any) -> list[str]:
    text, _days = split_days(form.get("times", ""))  # "6h30 thứ Hai–thứ Sáu": the days go to _recurrence
    if not text.strip():
        raise FormProblem("times", _("Time: write the time of day, like 6h30 or 18:00."))
    try:
        return [format_time(t) for t in parse_times(text)]
    except SpokenTimeError as exc:
        raise FormProblem("times", _("Time is not valid (“{typed}”): write it like 6h30 or 18:00.",
                                     typed=exc.text.strip())) from exc


def _recurrence(form: Any) -> dict[str, Any]:
    kind = form.get("kind") or "once"
    if kind not in KINDS + ("daily", "weekdays"):
        kind = "once"
    times = _times(form)
    weekdays = sorted({int(d) for d in form.getlist("weekdays") if d.isdigit() and int(d) < 7})
    said = split_days(form.get("times", ""))[1]
    if said:  # days said with the time ("6h30 thứ Hai–thứ Sáu") are what she means, whatever radio is on
        kind, weekdays = "weekly", sorted(set(weekdays) | set(said))
    rec: dict[str, Any] = {"kind": kind, "times": times,
                           "until": _day(form, "until", _("Until date")),
                           "exdates": [parse_day(d, _today()).isoformat() for d in _split(form.get("exdates", ""))
                                       if _valid_day(d)],
                           "interval": max(1, _int(form, "interval", _("Every n-th"), 1))}
    if form.get("exdates") and len(rec["exdates"]) != len(_split(form.get("exdates", ""))):
        raise FormProblem("exdates", _("Except on: write dates like {example}, separated by commas.",
                                       example=_today().strftime("%d/%m/%Y")))
    if kind == "once":
        # "day" is the form's field; "start_date" is accepted too (a form filled by a script, as the API says it)
        rec["start_date"] = _day(form, "day" if form.get("day") or not form.get("start_date") else "start_date",
                                 _("Date"), required=True)
        rec["until"], rec["interval"] = None, 1
        # "6h30" typed in the afternoon with today's date (the form's default): she means the next 6h30, tomorrow
        now = svc().local(datetime.now(UTC))
        if rec["start_date"] == now.date().isoformat() and all(t <= now.strftime("%H:%M") for t in times):
            tomorrow = now.date() + timedelta(days=1)
            rec["start_date"], g.rolled_to = tomorrow.isoformat(), tomorrow
        return rec
    rec["start_date"] = _day(form, "start_date", _("From date")) or _today().isoformat()
    if kind == "weekly":
        if not weekdays:
            raise FormProblem("weekdays", _("Choose at least one day of the week."))
        if len(weekdays) == 7 and rec["interval"] == 1:
            rec["kind"] = "daily"
        else:
            rec["weekdays"] = weekdays
    elif kind == "monthly":
        try:
            rec["month_days"] = [int(d) for d in _split(form.get("month_days", ""))]
        except ValueError as exc:
            raise FormProblem("month_days", _("Days of the month: numbers like 1, 15, -1 (the last day).")) from exc
        if not rec["month_days"]:
            raise FormProblem("month_days", _("Days of the month: numbers like 1, 15, -1 (the last day)."))
    elif kind == "hourly":
        rec["hour_range"] = [_int(form, "hour_from", _("Every hour from"), 0),
                             _int(form, "hour_to", _("to"), 0)]
    elif kind == "weekdays" and weekdays:
        rec["weekdays"] = weekdays
    return rec


def _valid_day(text: str) -> bool:
    try:
        parse_day(text, _today())
    except SpokenTimeError:
        return False
    return True


def _zones(form: Any) -> list[str]:
    if form.get("zones_all"):
        return [z.code for z in svc().list_zones(g.scope)]
    return form.getlist("zones")


def _spec_from_form(form: Any) -> airtime.ScheduleSpec:
    tz = svc().config.TIMEZONE
    recurrence = _recurrence(form)
    items: list[dict[str, Any]] = []
    for n in range(1, PROGRAMME_ROWS + 1):
        k = form.get(f"item_kind_{n}", "")
        if k == "announcement" and form.get(f"item_ann_{n}", "").isdigit():
            items.append({"kind": k, "announcement_id": int(form[f"item_ann_{n}"])})
        elif k == "stream":
            items.append({"kind": k, "source": form.get(f"item_source_{n}", ""),
                          "duration_ms": int(_number(form, f"item_min_{n}", _("Stream length (minutes)")) * 60_000),
                          "title": form.get(f"item_title_{n}", "")})
        elif k == "silence":
            items.append({"kind": k, "duration_ms": int(_number(form, f"item_sec_{n}", _("Silence (seconds)"))
                                                        * 1000)})
    ann_text = form.get("announcement_id") or ""
    ann = int(ann_text) if ann_text.isdigit() else None
    if items and ann:
        items.insert(0, {"kind": "announcement", "announcement_id": ann})
    if ann is None and not items:
        raise FormProblem("announcement_id", _("Choose the announcement to play."))
    expires = None
    if form.get("expires_at"):
        try:
            expires = parse_local(form["expires_at"], tz)
        except TimeParseError as exc:
            raise FormProblem("expires_at", _("Expires at: choose a date and a time.")) from exc
    zones = _zones(form)
    if not zones:
        raise FormProblem("zones", _("Choose at least one zone (or “All”)."))
    return airtime.ScheduleSpec(
        zones=list(zones),
        announcement_id=ann if not items else None,
        items=items or None,
        recurrence=recurrence,
        expires_at=expires,
        priority=form.get("priority", "normal"),
        on_preempt=form.get("on_preempt", "resume"),
        repeat=_int(form, "repeat", _("Play times (1–10)"), 1),
        gap_ms=int(_number(form, "gap_s", _("Gap between repeats (seconds)")) * 1000),
        conflict=form.get("conflict") or None,
        title=form.get("title") or None,
        sequence=_sequence(form, zones),
    )


def _sequence(form: Any, zones: list[str]) -> dict[str, Any] | None:
    """"Play the zones in turn": the order typed (names or codes, commas), else the zones as listed."""
    if not form.get("sequence"):
        return None
    names = {z.code: z.name for z in svc().list_zones(g.scope)}
    by_word = {**{n.strip().casefold(): c for c, n in names.items()}, **{c.casefold(): c for c in names}}
    typed = [w.strip() for w in (form.get("sequence_order") or "").split(",") if w.strip()]
    order = [by_word.get(w.casefold(), w) for w in typed] or [z for z in names if z in zones]
    gap = _int(form, "sequence_gap", _("Gap between zones (seconds)"), 0)
    return {"zones": order, "gap_s": gap}


#: Which section of the form a refused field is in (the page opens the advanced part when the problem is there).
ADVANCED_FIELDS = re.compile(r"^(title|until|start_date|exdates|expires_at|priority|on_preempt|repeat|gap|item|"
                             r"interval|recurrence\.until|recurrence\.exdates)")


def _form_page(form: Any, status: int = 200, **extra: Any):
    service = svc()
    anns = [a for a in service.list_announcements(g.scope) if a.media is not None]
    field = extra.get("error_field") or ""
    return render_template("schedule_new.html", form=form, zones=service.list_zones(g.scope), announcements=anns,
                           sources=streams.list_sources(service), weekdays=WEEKDAYS, kinds=KINDS,
                           rows=range(1, PROGRAMME_ROWS + 1), today=_today(),
                           approved_ids={a.id for a in anns if policy.playable(a)},
                           advanced_open=bool(ADVANCED_FIELDS.match(field)) or bool(form.get("item_kind_1")),
                           **extra), status


def _field_of(exc: ServiceError) -> str:
    """The form field a refusal of the service is about (its ``field`` names the API's)."""
    f = exc.field or ""
    if f in ("start_at", "recurrence", "recurrence.times") or exc.code in ("no_occurrence", "quiet_hours",
                                                                          "time_in_past"):
        return "times"
    return f.removeprefix("recurrence.")


@bp.route("/schedules/new", methods=["GET", "POST"])
@login_required
def new_schedule():
    service = svc()
    if request.method == "GET":
        form = {"kind": "once", "day": _today().strftime("%d/%m/%Y"), "priority": "normal", "repeat": "1",
                "announcement_id": request.args.get("announcement") or request.args.get("announcement_id", ""),
                "on_preempt": "resume"}
        return _form_page(form)
    try:
        sched = airtime.create_schedule(service, _spec_from_form(request.form), current_user)
    except FormProblem as exc:
        return _form_page(request.form, 400, error=exc.text, error_field=exc.field)
    except airtime.ConflictError as exc:
        # the clash choices: at the top of the page, next to the message (the form below keeps everything)
        return _form_page(request.form, 409, conflicts=exc.conflicts)
    except ServiceError as exc:
        if exc.code == "no_occurrence" and (request.form.get("kind") or "once") == "once":
            exc = ServiceError("time_in_past", "start time is in the past", "start_at", 409)  # a day and time gone
        return _form_page(request.form, exc.status, error=error_text(exc), error_field=_field_of(exc))
    flash(_("Schedule saved; the loudspeakers of its zones have their new plans."), "ok")
    if g.get("rolled_to"):
        flash(_("That time has passed today: it is scheduled for tomorrow, {day}.",
                day=g.rolled_to.strftime("%d/%m/%Y")), "warn")
    if airtime.schedule_states(service, [sched]).get(sched.id) == airtime.AWAITING_APPROVAL:
        flash(_("Awaiting approval — will not play unless approved."), "warn")
    first = service.local(sched.start_at).date()  # type: ignore[union-attr]
    return redirect(url_for("schedules.calendar_page", date=first.isoformat()))


# -------------------------------------------------------------------------------------- schedules
@bp.get("/schedules")
@login_required
def schedules():
    service = svc()
    rows = service.list_schedules(g.scope)
    undo = None
    undo_id = request.args.get("undo", type=int)
    if undo_id:
        sched = service.get_schedule(undo_id, g.scope)
        undo = sched if sched is not None and sched.archived_at is not None else None
    return render_template("schedules.html", schedules=rows, now=datetime.now(UTC), undo=undo,
                           states=airtime.schedule_states(service, rows), badge=STATE_BADGE)


@bp.post("/schedules/<int:schedule_id>/cancel")
@login_required
def cancel_schedule(schedule_id: int):
    try:
        svc().cancel_schedule(schedule_id, current_user)
        flash(_("Schedule cancelled."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("schedules.schedules"))


@bp.post("/schedules/<int:schedule_id>/archive")
@login_required
def archive_schedule(schedule_id: int):
    """"Xóa": out of the plans and the lists at once; the list then offers "Hoàn tác" (undo)."""
    try:
        svc().archive_schedule(schedule_id, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("schedules.schedules"))
    return redirect(url_for("schedules.schedules", undo=schedule_id))


@bp.post("/schedules/<int:schedule_id>/restore")
@login_required
def restore_schedule(schedule_id: int):
    try:
        svc().restore_schedule(schedule_id, current_user)
        flash(_("Schedule restored; its loudspeakers have their plans again."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("schedules.schedules"))


# --------------------------------------------------------------------------------------- calendar
def _asked_day() -> date:
    raw = request.args.get("date") or ""
    try:
        return date.fromisoformat(raw) if raw else _today()
    except ValueError:
        try:
            return parse_day(raw, _today())
        except SpokenTimeError:
            return _today()


@bp.get("/calendar")
@login_required
def calendar_page():
    """What will play, a week (Monday first) or a month at a time, per zone; clashes marked."""
    service = svc()
    view = "month" if request.args.get("view") == "month" else "week"
    day = _asked_day()
    zones = service.list_zones(g.scope)
    zone = request.args.get("zone") or ""
    if zone not in {z.code for z in zones}:
        zone = ""
    if view == "week":
        first = day - timedelta(days=day.weekday())
        days = 7
        prev_day, next_day = first - timedelta(days=7), first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        days = (following - first).days
        prev_day, next_day = (first - timedelta(days=1)).replace(day=1), following
    try:
        cal = airtime.calendar(service, first, days, zone or None, g.scope)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        cal = {}
    return render_template("calendar.html", view=view, cal=cal, first=first, last=first + timedelta(days=days - 1),
                           zones=zones, zone=zone, day=day, today=_today(), prev_day=prev_day, next_day=next_day,
                           clashes=sum(1 for items in cal.values() for a in items if a["clashes"]))


@bp.get("/today")
@login_required
def today_page():
    """Every airing of today per zone: time, title, approval state, and what has actually played so far."""
    service = svc()
    today = _today()
    zones = []
    plays = [p for p in service.plays(limit=500, scope=g.scope)
             if p.get("actual_start") is not None and service.local(p["actual_start"]).date() == today]
    for z in service.list_zones(g.scope):
        try:
            data = airtime.dry_run(service, zone=z.code, day=today, scope=g.scope)
        except ServiceError:
            continue
        zone_plays = [p for p in plays if p["zone"] == z.name]
        zones.append({"zone": z, "entries": [e for e in data["entries"] if e["item"]["kind"] != "silence"],
                      "awaiting": data["awaiting_approval"], "plays": zone_plays})
    return render_template("today.html", zones=zones, today=today, now=datetime.now(UTC))


# -------------------------------------------------------------------------------------------- timeline
@bp.get("/timeline")
@login_required
def timeline_page():
    service = svc()
    zones = service.list_zones(g.scope)
    zone = request.args.get("zone") or (zones[0].code if zones else "")
    day = _asked_day() if request.args.get("date") else None
    data = None
    if zone:
        try:
            data = airtime.dry_run(service, zone=zone, day=day, scope=g.scope)
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
        if request.form.get("off"):
            value = "off"
        else:  # "22h", "10 giờ tối", "05:00": times as people write them
            value = "-".join(format_time(parse_time_of_day(request.form.get(f, ""))) for f in ("start", "end"))
        airtime.set_ward_quiet(svc(), request.form.get("ward", ""), value, current_user)
        flash(_("Quiet hours saved."), "ok")
    except SpokenTimeError as exc:
        flash(_("Time is not valid (“{typed}”): write it like 6h30 or 18:00.", typed=exc.text.strip()), "error")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("schedules.timeline_page", zone=request.form.get("zone", "")))


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
    return render_template("audit.html", rows=audit_rows(svc(), 500, request.args.get("target") or None,
                                                         request.args.get("action") or None, g.scope))
