"""Officer-facing pages (Vietnamese first). Views parse input, call the service, render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user, login_required

from broadcaster import airtime, fleet, languages, logins, policy, tenancy
from broadcaster.audio_settings import UploadRefused, get_ward_audio, options_from_form
from broadcaster.i18n import current_locale
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import admin_required, error_text, svc
from schedules.spoken import SpokenTimeError, parse_day, parse_times
from schedules.timeutil import TimeParseError, parse_local

bp = Blueprint("views", __name__)


@bp.before_app_request
def _ward_scope() -> None:
    """The ward scope of a page (broadcaster/tenancy.py): a ward user's own ward; a province user's picker
    (``session["ward"]``, set at /scope) narrows the province to one ward."""
    if current_user.is_authenticated:
        try:
            g.scope = tenancy.scope_of(svc(), current_user, session.get("ward"))
        except ServiceError:  # the picked ward is gone
            session.pop("ward", None)
            g.scope = tenancy.scope_of(svc(), current_user)


@bp.get("/scope")
@login_required
def pick_ward():
    """The ward picker of the province roles: ``?ward=CODE`` (empty = the whole province)."""
    code = (request.args.get("ward") or "").strip()
    if code and tenancy.is_province(current_user):
        session["ward"] = code
    else:
        session.pop("ward", None)
    return redirect(logins.safe_next(request.args.get("next")) or url_for("views.dashboard"))


@bp.app_context_processor
def _release_policy() -> dict:
    """``can("announcement.approve")`` in templates: a button shows only when the policy would accept it."""

    def can(action: str, scope: str = "any") -> bool:
        return policy.allowed(current_user, policy.Action(action), policy.Scope(scope))

    wards: list = []
    if current_user.is_authenticated and tenancy.is_province(current_user):
        wards = tenancy.list_wards(svc())
    return {"can": can, "picker_wards": wards, "picked_ward": session.get("ward", "")}


@bp.app_template_filter("localtime")
def localtime_filter(moment: datetime | None, fmt: str = "%H:%M:%S %d/%m/%Y") -> str:
    if moment is None:
        return "—"
    return svc().local(moment).strftime(fmt)


@bp.app_template_filter("duration")
def duration_filter(ms: int | None) -> str:
    """A duration the way people say it: "1 giờ 5 phút", "1 phút 30 giây", "45 giây" (English: "1 min 30 s")."""
    if not ms:
        return "—"
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, _("{n} h")), (minutes, _("{n} min")), (secs, _("{n} s"))]
    if hours:  # to the minute when it is over an hour
        parts = parts[:2]
    said = [unit.format(n=n) for n, unit in parts if n]
    return " ".join(said) or _("{n} s").format(n=0)


@bp.app_template_filter("number")
def number_filter(value: float | int | None, digits: int = 1) -> str:
    """A number with the decimal separator of the page's language (Vietnamese: comma) and grouped thousands
    (Vietnamese: dot): 1.234,5."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    if current_locale() == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


@bp.get("/")
@login_required
def dashboard():
    service = svc()
    nodes = service.list_nodes(g.scope)
    now = datetime.now(UTC)
    upcoming = [s for s in service.list_schedules(g.scope) if s.status == "active" and s.start_at >= now]
    upcoming.sort(key=lambda s: s.start_at)
    upcoming = upcoming[:10]
    return render_template(
        "dashboard.html",
        nodes=nodes,
        online=sum(1 for n in nodes if n.state == "online"),
        upcoming=upcoming,
        states=airtime.schedule_states(service, upcoming),
        # R6: unapproved airings less than 24 h away — they will not play unless a leader approves them now
        awaiting=airtime.awaiting_soon(service, now),
        plays=service.plays(limit=10, scope=g.scope),
        # the province dashboard: every ward at a glance (province roles, whole province picked)
        province=fleet.province_today(service, g.scope) if g.scope.province else None,
    )


# ------------------------------------------------------------------------------------------ nodes
@bp.get("/nodes")
@login_required
def nodes():
    return render_template("nodes.html", nodes=svc().list_nodes(g.scope), zones=svc().list_zones(g.scope))


@bp.get("/nodes/<node_id>")
@login_required
def node_detail(node_id: str):
    service = svc()
    node = service.get_node(node_id, g.scope)
    if node is None:
        abort(404)
    return render_template("node_detail.html", node=node, plays=service.plays(node_id=node_id, limit=50, scope=g.scope),
                           commands=service.list_commands(node_id))


@bp.post("/nodes/<node_id>/delete")
@admin_required
def delete_node(node_id: str):
    try:
        svc().delete_node(node_id, current_user)
        flash(_("Loudspeaker deleted; its login no longer works."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.nodes"))


@bp.post("/zones")
@admin_required
def create_zone():
    try:
        svc().create_zone(request.form.get("code", ""), request.form.get("name", ""),
                          request.form.get("kind", "residential_group"), request.form.get("ward", ""),
                          user=current_user)
        flash(_("Zone created."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.nodes"))


@bp.post("/zones/<code>/languages")
@admin_required
def zone_languages(code: str):
    codes = [c.strip() for c in request.form.get("languages", "").split(",") if c.strip()]
    try:
        svc().set_zone_languages(code, codes, current_user)
        flash(_("Languages saved; the zone's loudspeakers have their new plans."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.nodes"))


# ---------------------------------------------------------------------------------- announcements
#: Approval states offered by the list's filter, in the order of the workflow.
APPROVAL_FILTER = ("draft", "submitted", "approved", "rejected", "published")


@bp.get("/announcements")
@login_required
def announcements():
    """The list: search (title and text), a filter by approval state, the archived ones apart; ``?undo=ID`` right
    after a delete shows the "Hoàn tác" (undo) box."""
    search = (request.args.get("q") or "").strip()[:200]
    wanted = request.args.get("approval") or ""
    wanted = wanted if wanted in APPROVAL_FILTER else ""
    archived = request.args.get("show") == "archived"
    rows = svc().list_announcements(g.scope, archived=archived, search=search, approval=wanted)
    undo = None
    if request.args.get("undo", "").isdigit():
        found = svc().get_announcement(int(request.args["undo"]), g.scope)
        undo = found if found is not None and found.archived_at is not None else None
    return render_template("announcements.html", announcements=rows, search=search, approval=wanted,
                           archived=archived, states=APPROVAL_FILTER, undo=undo,
                           render={a.id: svc().render_state(a) for a in rows})


def _render_now_or_soon(announcement_id: int):
    """Start speech production in the background and wait a moment for it (``RENDER_WAIT_S``, 2 s): a fast render
    (espeak, the render cache) shows its audio at once, a slow one (gTTS over a poor link) its progress bar."""
    service = svc()
    thread = service.render_in_background(announcement_id)
    wait = float(current_app.config.get("RENDER_WAIT_S", 2.0))
    if thread is not None and wait > 0:
        thread.join(wait)
    return service.get_announcement(announcement_id)


def render_problem(error: str | None) -> str:
    """Why speech could not be produced, in the page's language (the engines' own messages are technical English:
    they stay in the log and, for an administrator, under "Thông số kỹ thuật")."""
    text = (error or "").lower()
    if not text:
        return ""
    if "no speech engine" in text:
        return _("No speech engine is available; ask the administrator to check the audio settings.")
    if "no longer stored" in text:
        return _("The original recording is no longer stored; upload it again.")
    if "busy" in text:
        return _("The panel is busy with other recordings; try again in a moment.")
    if "timed out" in text or "timeout" in text or "connection" in text:
        return _("The speech service did not answer in time (is the internet connection down?).")
    if "empty" in text or "nothing to synthesize" in text or "no text" in text:
        return _("There is no text to read.")
    if "ffmpeg" in text:
        return _("The audio could not be processed.")
    return _("The speech engines could not read this text.")


def _flash_render_outcome(ann, saved: bool) -> None:
    state = svc().render_state(ann)["state"]
    if state == "ready":
        flash(_("Announcement saved and speech rendered.") if saved else _("Speech produced."), "ok")
    elif state == "failed":
        flash(_("Speech could not be produced; the draft is saved. Reason: {reason}",
                reason=render_problem(ann.render_error)), "error")
    elif saved:
        flash(_("Announcement saved. Speech is being produced; you can leave this page."), "ok")


@bp.route("/announcements/new", methods=["GET", "POST"])
@login_required
def new_announcement():
    if request.method == "GET":
        return render_template("announcement_new.html", form={})
    try:
        ann = svc().create_announcement(request.form.get("title", ""), request.form.get("text", ""), current_user,
                                        audio_options=options_from_form(request.form), render=False)
    except ServiceError as exc:
        # Nothing is lost: the form comes back filled in, with the error next to the field.
        return render_template("announcement_new.html", form=request.form, error=error_text(exc),
                               error_field=exc.field), exc.status
    # The draft is saved now; speech is produced in the background (the detail page shows the progress).
    _flash_render_outcome(_render_now_or_soon(ann.id), saved=True)
    return redirect(url_for("views.announcement_detail", announcement_id=ann.id))


@bp.post("/announcements/preview")
@login_required
def preview_announcement():
    """Show what will be said (normalized text) before anything is saved or rendered; the form keeps everything
    typed and "Lưu và tạo giọng đọc" on it saves (it posts to /announcements/new).

    With JavaScript (static/announcements.js) the button asks for JSON (``Accept: application/json``) and shows
    the answer in place: the page is never a POST result, so Back after saving never meets Chromium's "resend the
    form" error page. Without JavaScript the form posts here and this page comes back filled in."""
    text = request.form.get("text", "")
    preview = svc().normalize_text(text) if text.strip() else ""
    if _wants_json():
        return {"preview": preview}
    return render_template("announcement_new.html", form=request.form, preview=preview, previewed=True)


def _wants_json() -> bool:
    """The script of a page asking (``Accept: application/json`` first), not a browser navigating."""
    return request.accept_mimetypes["application/json"] > request.accept_mimetypes["text/html"]


@bp.get("/announcements/<int:announcement_id>")
@login_required
def announcement_detail(announcement_id: int):
    service = svc()
    ann = service.get_announcement(announcement_id, g.scope)
    if ann is None:
        abort(404)
    # "Lên lịch phát bản tin này": today's date to start from, or what was typed before a refusal
    typed = session.pop(SCHEDULE_FORM, None)
    sched_form = typed if isinstance(typed, dict) and typed.get("id") == announcement_id else {}
    sched_form["today"] = service.local(datetime.now(UTC)).strftime("%d/%m/%Y")  # type: ignore[union-attr]
    sched_form.setdefault("day", sched_form["today"])
    schedules = [s for s in service.list_schedules(g.scope) if s.announcement_id == announcement_id]
    render = service.render_state(ann)
    return render_template("announcement_detail.html", ann=ann, zones=service.list_zones(g.scope),
                           missing=service.missing_versions(announcement_id), lang_name=languages.name,
                           language_choices=[(c, n) for c, n in languages.NAMES.items()
                                             if c != languages.VIETNAMESE and c in LANGUAGE_CHOICES],
                           sched_form=sched_form, schedules=schedules,
                           states=airtime.schedule_states(service, schedules), playable=policy.playable(ann),
                           render=render, render_problem=render_problem(render["error"]),
                           own=current_user.id == ann.created_by_id, loudness=loudness_word(ann))


#: The languages offered in the form (one code per language; the API takes any ISO 639 code).
LANGUAGE_CHOICES = ("tyz", "nut", "hnj", "ium", "km", "cjm", "rad", "jra", "bdq", "mtq", "tdd", "zh")


@bp.post("/announcements/<int:announcement_id>/versions")
@login_required
def version_save(announcement_id: int):
    upload = request.files.get("file")
    data = upload.read() if upload is not None and upload.filename else None
    try:
        svc().save_version(announcement_id, request.form.get("language", ""), request.form.get("text", ""),
                           current_user, recording=data, filename=upload.filename if upload is not None else "")
        flash(_("Version saved; a leader approves it on its own."), "ok")
    except UploadRefused as exc:
        flash(exc.message_vi if current_locale() == "vi" else exc.message_en, "error")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id) + "#versions")


@bp.post("/announcements/<int:announcement_id>/versions/<language>/review")
@login_required
def version_review(announcement_id: int, language: str):
    approve = request.form.get("decision") == "approve"
    try:
        svc().review_version(announcement_id, language, approve, current_user, request.form.get("comment", ""))
        flash(_("Version approved.") if approve else _("Version sent back."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id) + "#versions")


@bp.get("/announcements/<int:announcement_id>/versions/<language>/audio")
@login_required
def version_audio(announcement_id: int, language: str):
    ann = svc().get_announcement(announcement_id, g.scope)
    version = next((v for v in ann.versions if v.language == language), None) if ann is not None else None
    if version is None or version.media is None:
        abort(404)
    return send_file(svc().media.path(version.media.sha256, "mp3"), mimetype="audio/mpeg", conditional=True)


def loudness_word(ann) -> str | None:
    """How loud the audio is, as an officer says it ("Độ to: chuẩn"): the measured loudness against the ward's
    target, within 2 LU counts as the standard. The figures themselves are for an administrator."""
    measured = ann.media.integrated_lufs if ann.media is not None else None
    if measured is None:
        return None
    off = measured - get_ward_audio(svc()).target_lufs
    return "quiet" if off < -2 else "loud" if off > 2 else "standard"


@bp.get("/announcements/<int:announcement_id>/status")
@login_required
def announcement_status(announcement_id: int):
    """Speech production of one announcement, for the detail page's progress bar (polled about once a second)."""
    ann = svc().get_announcement(announcement_id, g.scope)
    if ann is None:
        abort(404)
    state = svc().render_state(ann)
    return {"state": state["state"], "progress": state["progress"], "error": render_problem(state["error"]) or None,
            "approval": ann.approval or "draft"}


@bp.post("/announcements/<int:announcement_id>/render")
@login_required
def rerender(announcement_id: int):
    if svc().get_announcement(announcement_id, g.scope) is None:
        abort(404)
    try:
        policy.require(svc(), current_user, policy.Action.ANNOUNCEMENT_WRITE,
                       target=f"announcement:{announcement_id}")
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    ann = _render_now_or_soon(announcement_id)
    _flash_render_outcome(ann, saved=False)
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))


@bp.post("/announcements/<int:announcement_id>/archive")
@login_required
def archive_announcement(announcement_id: int):
    """"Xóa": archived, with "Hoàn tác" (undo) on the list it leads to."""
    if svc().get_announcement(announcement_id, g.scope) is None:
        abort(404)
    try:
        svc().archive_announcement(announcement_id, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    return redirect(url_for("views.announcements", undo=announcement_id))


@bp.post("/announcements/<int:announcement_id>/restore")
@login_required
def restore_announcement(announcement_id: int):
    if svc().get_announcement(announcement_id, g.scope) is None:
        abort(404)
    try:
        svc().restore_announcement(announcement_id, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.announcements", show="archived"))
    flash(_("Announcement restored."), "ok")
    return redirect(logins.safe_next(request.form.get("next"))
                    or url_for("views.announcement_detail", announcement_id=announcement_id))


@bp.get("/announcements/<int:announcement_id>/audio")
@login_required
def announcement_audio(announcement_id: int):
    service = svc()
    ann = service.get_announcement(announcement_id, g.scope)
    if ann is None or not ann.media_sha256:
        abort(404)
    return send_file(service.media.path(ann.media_sha256, "mp3"), mimetype="audio/mpeg", conditional=True)


#: The schedule card's fields as typed (a day, a time, zones, priority), kept in the session over the redirect
#: after a refusal: the card comes back filled in, and the page is never a POST result (Back stays harmless).
SCHEDULE_FORM = "announcement_schedule_form"


class PlayTimeProblem(ValueError):
    """A field of the schedule card that cannot be read; ``text`` says so in the page's language."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field, self.text = field, text


def one_play_start(day_text: str, time_text: str, now_local: datetime) -> tuple[datetime, bool]:
    """When a one-off play starts, from "Ngày phát" (30/04/2026, 30/4) and "Giờ phát" (6h30, 18h, 5 giờ chiều),
    as a local (aware) time; True when today's time had already gone and it moved to tomorrow. An officer who
    writes "6h30" at 07:00 means the next 6h30, not an error; a day before today is refused."""
    today = now_local.date()
    example = today.strftime("%d/%m/%Y")
    day_text, time_text = (day_text or "").strip(), (time_text or "").strip()
    if not day_text:
        raise PlayTimeProblem("day", _("Play date: write the day, like {example}.", example=example))
    try:
        day = parse_day(day_text, today)
    except SpokenTimeError as exc:
        raise PlayTimeProblem("day", _("Play date is not a valid date (“{typed}”): write it like {example}.",
                                     typed=day_text, example=example)) from exc
    if not time_text:
        raise PlayTimeProblem("time", _("Play time: write the time of day, like 6h30, 18h or 5 giờ chiều."))
    try:
        times = parse_times(time_text)
    except SpokenTimeError as exc:
        raise PlayTimeProblem("time", _("Play time is not valid (“{typed}”): write it like 6h30 or 18h.",
                                        typed=time_text)) from exc
    if len(times) > 1:
        raise PlayTimeProblem("time", _("Play time: one time only; for more use “Repeat weekly or at several times…”."))
    if day < today:
        raise PlayTimeProblem("day", _("Play date {day} has already passed.", day=day.strftime("%d/%m/%Y")))
    start = datetime.combine(day, times[0], tzinfo=now_local.tzinfo)
    if day == today and start <= now_local:
        return start + timedelta(days=1), True
    return start, False


@bp.post("/announcements/<int:announcement_id>/schedule")
@login_required
def schedule_announcement(announcement_id: int):
    """"Lên lịch phát bản tin này": one play of this announcement in the chosen zones at "Ngày phát" + "Giờ phát"
    (Vietnam time). A refusal (a field that cannot be read, no zone, a clash) comes back to the detail page with
    the reason naming the field and everything typed kept; nothing is created. (``start_at``, an ISO local time,
    is still taken from a client that sends it without the two fields.)"""
    service = svc()
    form = request.form
    back = redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    moved = False
    try:
        if "time" not in form and "day" not in form and form.get("start_at"):
            start = parse_local(form.get("start_at", ""), service.config.TIMEZONE)
        else:
            now_local = service.local(datetime.now(UTC))
            assert now_local is not None
            local_start, moved = one_play_start(form.get("day", ""), form.get("time", ""), now_local)
            start = local_start.astimezone(UTC)
        sched = service.create_schedule(announcement_id, form.getlist("zones"), start,
                                        form.get("priority", "normal"), current_user)
    except (TimeParseError, PlayTimeProblem, ServiceError) as exc:
        if isinstance(exc, PlayTimeProblem):
            text, field = exc.text, exc.field
        elif isinstance(exc, ServiceError):
            text, field = error_text(exc), ("zones" if exc.field == "zones" else "time"
                                            if exc.field == "start_at" else "")
        else:
            text, field = _("error.invalid_time"), "time"
        flash(text, "error")
        session[SCHEDULE_FORM] = {"id": announcement_id, "day": form.get("day", "")[:40],
                                  "time": form.get("time", "")[:60], "zones": form.getlist("zones")[:50],
                                  "priority": form.get("priority", "normal")[:20], "error_field": field}
        return back
    when = service.local(sched.start_at)
    assert when is not None
    if moved:
        flash(_("That time has already passed today: scheduled for tomorrow {day} at {time}.",
                day=when.strftime("%d/%m/%Y"), time=when.strftime("%H:%M")), "ok")
    else:
        flash(_("Scheduled for {time}.", time=localtime_filter(sched.start_at)), "ok")
    return redirect(url_for("schedules.schedules"))


# ---------------------------------------------------------------------------------- abbreviations
@bp.route("/abbreviations", methods=["GET", "POST"])
@login_required
def abbreviations():
    service = svc()
    status = 200
    if request.method == "POST":
        try:
            service.set_abbreviation(request.form.get("abbr", ""), request.form.get("expansion", ""), current_user)
            flash(_("Saved."), "ok")
            return redirect(url_for("views.abbreviations"))
        except ServiceError as exc:
            flash(error_text(exc), "error")
            status = exc.status
    defaults = sorted(service.default_abbreviations().items())
    return render_template("abbreviations.html", ward=service.list_abbreviations(), defaults=defaults,
                           form=request.form), status


@bp.post("/abbreviations/<path:abbr>/delete")
@login_required
def delete_abbreviation(abbr: str):
    try:
        svc().delete_abbreviation(abbr, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.abbreviations"))


# -------------------------------------------------------------------------------------- schedules
# /schedules, /schedules/<id>/cancel, /archive, /restore, /calendar and /today: broadcaster/web/views_schedules.py


# ----------------------------------------------------------------------------------- proof of play
@bp.get("/plays")
@login_required
def plays():
    schedule_id = request.args.get("schedule", type=int)
    node_id = request.args.get("node") or None
    rows = svc().plays(schedule_id=schedule_id, node_id=node_id, scope=g.scope)
    heard_filter = request.args.get("heard") if request.args.get("heard") in ("yes", "no") else None
    not_heard = sum(1 for p in rows if p["heard"] is False)
    if heard_filter:
        rows = [p for p in rows if p["heard"] is (heard_filter == "yes")]
    return render_template("plays.html", plays=rows, schedule_id=schedule_id, node_id=node_id,
                           heard_filter=heard_filter, not_heard=not_heard)
