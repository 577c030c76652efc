"""Officer-facing pages (Vietnamese first). Views parse input, call the service, render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import wraps

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

from broadcaster import fleet, logins, policy, scheduling, tenancy
from broadcaster.i18n import current_locale, error_message
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from schedules.timeutil import TimeParseError, parse_local

bp = Blueprint("views", __name__)


def svc():
    return current_app.extensions["loaphuong"].service


def permission_required(action: policy.Action):
    """Logged in, and the release policy allows ``action`` (it decides and audits a refusal; never this view)."""

    def deco(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not policy.allowed(current_user, action):
                policy.audit_refusal(svc(), current_user, "forbidden", "page refused by the release policy",
                                     action=action.value, target=request.path)
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return deco


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


#: Registering, editing and re-provisioning nodes, zones and the registry import.
admin_required = permission_required(policy.Action.FLEET_MANAGE)


def error_text(exc: ServiceError) -> str:
    """The Vietnamese text for a service refusal (its code), else the English message; a refusal of the release
    policy also says who may do it."""
    text = error_message(exc.code, exc.message, current_locale())
    if isinstance(exc, policy.PolicyRefused):
        if exc.emergency_only:
            text += " " + _("Emergencies go through the Emergency broadcast page (two people).")
        elif exc.roles:
            text += " " + _("Who may: {roles}.", roles=", ".join(_("role." + r) for r in exc.roles))
    return text


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
        states=scheduling.schedule_states(service, upcoming),
        # R6: unapproved airings less than 24 h away — they will not play unless a leader approves them now
        awaiting=scheduling.awaiting_soon(service, now),
        plays=service.plays(limit=10, scope=g.scope),
        # the province dashboard: every ward at a glance (province roles, whole province picked)
        province=fleet.province_today(service, g.scope) if g.scope.province else None,
    )


# ------------------------------------------------------------------------------------------ nodes
@bp.get("/nodes")
@login_required
def nodes():
    return render_template("nodes.html", nodes=svc().list_nodes(g.scope), zones=svc().list_zones(g.scope))


@bp.post("/nodes")
@admin_required
def register_node():
    service = svc()
    try:
        node, token = service.register_node(
            request.form.get("node_id", ""), request.form.get("name", ""), request.form.get("zone") or None,
            user=current_user,
        )
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return render_template("nodes.html", nodes=service.list_nodes(g.scope), zones=service.list_zones(g.scope),
                               form=request.form), exc.status
    # Shown once: only the token's hash is stored.
    return render_template("node_credentials.html", node=node, token=token,
                           public_key=service.public_key_b64, config=service.config,
                           broker_url=current_app.config.get("MQTT_URL") or service.config.MQTT_URL)


@bp.get("/nodes/<node_id>")
@login_required
def node_detail(node_id: str):
    service = svc()
    node = service.get_node(node_id, g.scope)
    if node is None:
        abort(404)
    return render_template("node_detail.html", node=node, plays=service.plays(node_id=node_id, limit=50, scope=g.scope),
                           commands=service.list_commands(node_id))


@bp.post("/nodes/<node_id>/token")
@admin_required
def rotate_token(node_id: str):
    service = svc()
    try:
        token = service.rotate_node_token(node_id, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.nodes"))
    return render_template("node_credentials.html", node=service.get_node(node_id), token=token,
                           public_key=service.public_key_b64, config=service.config,
                           broker_url=service.config.MQTT_URL)


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


# ---------------------------------------------------------------------------------- announcements
@bp.get("/announcements")
@login_required
def announcements():
    return render_template("announcements.html", announcements=svc().list_announcements(g.scope))


@bp.route("/announcements/new", methods=["GET", "POST"])
@login_required
def new_announcement():
    if request.method == "GET":
        return render_template("announcement_new.html", form={})
    try:
        from broadcaster.audio_settings import options_from_form  # the "Audio options" fields of the form

        ann = svc().create_announcement(request.form.get("title", ""), request.form.get("text", ""), current_user,
                                        audio_options=options_from_form(request.form))
    except ServiceError as exc:
        # Nothing is lost: the form comes back filled in, with the error next to the field.
        return render_template("announcement_new.html", form=request.form, error=error_text(exc),
                               error_field=exc.field), exc.status
    if ann.status != "ready":
        flash(_("Speech could not be produced; the draft is saved. Reason: {reason}", reason=ann.render_error),
              "error")
    else:
        flash(_("Announcement saved and speech rendered."), "ok")
    return redirect(url_for("views.announcement_detail", announcement_id=ann.id))


@bp.post("/announcements/preview")
@login_required
def preview_announcement():
    """Show what will be said (normalized text) before anything is saved or rendered."""
    text = request.form.get("text", "")
    return render_template("announcement_new.html", form=request.form,
                           preview=svc().normalize_text(text) if text.strip() else "")


@bp.get("/announcements/<int:announcement_id>")
@login_required
def announcement_detail(announcement_id: int):
    service = svc()
    ann = service.get_announcement(announcement_id, g.scope)
    if ann is None:
        abort(404)
    default_start = service.local(datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    schedules = [s for s in service.list_schedules(g.scope) if s.announcement_id == announcement_id]
    return render_template("announcement_detail.html", ann=ann, zones=service.list_zones(g.scope),
                           default_start=default_start, schedules=schedules,
                           states=scheduling.schedule_states(service, schedules), playable=policy.playable(ann))


@bp.post("/announcements/<int:announcement_id>/render")
@login_required
def rerender(announcement_id: int):
    ann = svc().render_announcement(announcement_id)
    if ann.status != "ready":
        flash(_("Speech could not be produced; the draft is saved. Reason: {reason}", reason=ann.render_error),
              "error")
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))


@bp.get("/announcements/<int:announcement_id>/audio")
@login_required
def announcement_audio(announcement_id: int):
    service = svc()
    ann = service.get_announcement(announcement_id, g.scope)
    if ann is None or not ann.media_sha256:
        abort(404)
    return send_file(service.media.path(ann.media_sha256, "mp3"), mimetype="audio/mpeg", conditional=True)


@bp.post("/announcements/<int:announcement_id>/schedule")
@login_required
def schedule_announcement(announcement_id: int):
    service = svc()
    try:
        start = parse_local(request.form.get("start_at", ""), service.config.TIMEZONE)
    except TimeParseError:
        flash(_("error.invalid_time"), "error")
        return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    try:
        sched = service.create_schedule(
            announcement_id, request.form.getlist("zones"), start,
            request.form.get("priority", "normal"), current_user,
        )
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    flash(_("Scheduled for {time}.", time=localtime_filter(sched.start_at)), "ok")
    return redirect(url_for("views.schedules"))


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
@bp.get("/schedules")
@login_required
def schedules():
    rows = svc().list_schedules(g.scope)
    return render_template("schedules.html", schedules=rows, now=datetime.now(UTC),
                           states=scheduling.schedule_states(svc(), rows))


@bp.post("/schedules/<int:schedule_id>/cancel")
@login_required
def cancel_schedule(schedule_id: int):
    try:
        svc().cancel_schedule(schedule_id, current_user)
        flash(_("Schedule cancelled."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("views.schedules"))


# ----------------------------------------------------------------------------------- proof of play
@bp.get("/plays")
@login_required
def plays():
    schedule_id = request.args.get("schedule", type=int)
    node_id = request.args.get("node") or None
    return render_template("plays.html", plays=svc().plays(schedule_id=schedule_id, node_id=node_id, scope=g.scope),
                           schedule_id=schedule_id, node_id=node_id)


def _load_feature_modules() -> None:
    """Import ``broadcaster/web/views_*.py``: each feature adds its routes to ``bp`` in its own file."""
    import importlib
    import pkgutil

    import broadcaster.web as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("views_"):
            importlib.import_module(f"broadcaster.web.{info.name}")


_load_feature_modules()
