"""Emergency pages ("Phát khẩn cấp"): a phone-sized form, live and drill lists, per-node live status."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import emergency, policy, tenancy
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc

bp = Blueprint("emergency", __name__)


@bp.app_template_global("em_label")
def em_label(kind: str, value: str) -> str:
    """``emergency.<kind>.<value>`` translated; in English (no catalogue) the value itself, readable."""
    key = f"emergency.{kind}.{value}"
    text = _(key)
    return value.replace("_", " ") if text == key else text


def _int(name: str, default: int | None, code: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(code, f"{name} must be a whole number", name) from None


def _approved_announcements() -> list:
    return [a for a in svc().list_announcements(g.scope) if policy.playable(a)]


def _page(form: dict | None = None, error: str | None = None, error_field: str | None = None, status: int = 200):
    service = svc()
    return render_template(
        "emergency.html",
        zones=service.list_zones(g.scope),
        announcements=_approved_announcements(),
        live=emergency.list_alerts(service, drill=False, limit=20, scope=g.scope),
        drills=emergency.list_alerts(service, drill=True, limit=20, scope=g.scope),
        two_person=emergency.two_person_required(service, wards=[]),
        confirmers=[u.display_name or u.username for u in policy.confirmers(
            service, current_user.id, ward_id=current_user.ward_id,
            province=tenancy.is_province(current_user))],
        max_repeat=emergency.MAX_REPEAT,
        form=form or {},
        error=error,
        error_field=error_field,
    ), status


@bp.get("/emergency")
@login_required
def emergency_page():
    return _page()


@bp.post("/emergency")
@login_required
def emergency_create():
    form = request.form
    drill = form.get("mode") == "drill"
    all_zones = form.get("all_zones") == "1"
    try:
        source = form.get("source", "text")
        ann_id = _int("announcement_id", None, "unknown_announcement") if source == "announcement" else None
        alert = emergency.create_alert(
            svc(),
            title=form.get("title", ""),
            text=None if source == "announcement" else form.get("text", ""),
            announcement_id=ann_id,
            zones=[] if all_zones else form.getlist("zones"),
            all_zones=all_zones,
            repeat=_int("repeat", 1, "emergency_bad_repeat"),  # type: ignore[arg-type]
            gap_ms=(_int("gap_s", 3, "emergency_bad_gap") or 0) * 1000,
            volume=_int("volume", None, "emergency_bad_volume"),
            drill=drill,
            wards=form.getlist("wards"),
            user=current_user,
        )
    except ServiceError as exc:
        # Nothing is lost: the form comes back as it was, with the reason.
        return _page(form=form, error=error_text(exc), error_field=exc.field, status=exc.status)
    if alert.status == "pending_release":
        flash(_("Waiting for a second leader or admin to release this emergency."), "warn")
    elif alert.drill:
        flash(_("Drill sent to the loudspeakers."), "ok")
    else:
        flash(_("Emergency sent to the loudspeakers."), "ok")
    return redirect(url_for("emergency.emergency_detail", alert_id=alert.id))


def _detail_context(alert_id: int) -> dict:
    service = svc()
    alert = emergency.get_alert(service, alert_id, g.scope)
    if alert is None:
        abort(404)
    rows = emergency.deliveries(service, alert)
    cancel = emergency.get_alert(service, alert.cancel_alert_id) if alert.cancel_alert_id else None
    names = emergency.user_names(service, (alert.created_by_id, alert.released_by_id, alert.cancelled_by_id,
                                           alert.cancel_requested_by_id))
    cancel_pending = emergency.cancel_pending(alert)
    # Who the second person can be (the policy decides; the page only says it).
    first = alert.cancel_requested_by_id if cancel_pending else alert.created_by_id
    confirmers = [u.display_name or u.username for u in policy.confirmers(
        service, first, ward_id=alert.ward_id, province=alert.ward_id is None)]
    may_confirm = policy.allowed(current_user, policy.Action.EMERGENCY_CONFIRM) and current_user.id != first
    return {"alert": alert, "rows": rows, "summary": emergency.summary(rows), "cancel": cancel, "names": names,
            "cancel_rows": emergency.deliveries(service, cancel) if cancel else [],
            "can_release": alert.status == "pending_release" and may_confirm,
            "can_cancel": policy.allowed(current_user, policy.Action.EMERGENCY_CANCEL),
            "cancel_pending": cancel_pending, "can_confirm_cancel": cancel_pending and may_confirm,
            "confirmers": confirmers, "two_person": emergency.two_person_required(service, None)}


@bp.get("/emergency/<int:alert_id>")
@login_required
def emergency_detail(alert_id: int):
    return render_template("emergency_detail.html", **_detail_context(alert_id))


@bp.get("/emergency/<int:alert_id>/status")
@login_required
def emergency_status(alert_id: int):
    """The live part of the detail page (fetched every second by the page)."""
    return render_template("emergency_status.html", **_detail_context(alert_id))


@bp.post("/emergency/<int:alert_id>/release")
@login_required
def emergency_release(alert_id: int):
    try:
        alert = emergency.release_alert(svc(), alert_id, current_user)
        if alert.status == "pending_release":  # a CAP source's draft: she is its first person (broadcaster/cap.py)
            flash(_("Confirmed. A second leader or admin must release it."), "ok")
        else:
            flash(_("Emergency released."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("emergency.emergency_detail", alert_id=alert_id))


@bp.post("/emergency/<int:alert_id>/cancel")
@login_required
def emergency_cancel(alert_id: int):
    try:
        alert = emergency.cancel_alert(svc(), alert_id, current_user)
        if alert.cancel_alert_id:
            flash(_("Emergency cancelled; the cancellation is being broadcast."), "ok")
        elif alert.status == "discarded":
            flash(_("Emergency discarded before release."), "ok")
        else:
            flash(_("Cancel requested: a second leader or admin must confirm it."), "warn")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("emergency.emergency_detail", alert_id=alert_id))


@bp.post("/emergency/settings")
@login_required
def emergency_settings():
    try:
        emergency.set_two_person(svc(), request.form.get("two_person") == "1", current_user)
        flash(_("Saved."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("emergency.emergency_page"))
