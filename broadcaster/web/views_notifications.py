"""The notification centre's pages: ``/notifications`` (the list), the header link with the unread count on every
page, and ``/notifications/count`` (JSON polled by static/notifications.js: the badge, and the banner of an
emergency that waits for this person). Who is told what is broadcaster/notifications.py's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required

from broadcaster import notifications
from broadcaster.i18n import current_locale
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc

bp = Blueprint("notifications", __name__)


@bp.app_template_global("notification_poll_ms")
def notification_poll_ms() -> int:
    """How often a page asks for the count (``NOTIFY_POLL_S``; static/notifications.js reads it from the link)."""
    return max(1000, int(float(getattr(svc().config, "NOTIFY_POLL_S", 15)) * 1000))


@bp.app_template_global("notification_count")
def notification_count() -> int:
    """Unread notifications of the person logged in (the header badge); 0 when nobody is or on any error."""
    if not current_user.is_authenticated:
        return 0
    try:
        return notifications.unread_count(svc(), current_user)
    except Exception:  # noqa: BLE001 — a page must never fail because of its badge
        return 0


def _item(n: Any) -> dict[str, Any]:
    locale = current_locale()
    return {"id": n.id, "text": notifications.text(n, locale), "action": notifications.action_text(n, locale),
            "link": url_for("notifications.notification_open", notification_id=n.id), "urgent": notifications.urgent(n),
            "read": n.read_at is not None, "created_at": n.created_at, "kind": n.kind}


@bp.get("/notifications")
@login_required
def notifications_page():
    rows = notifications.list_for(svc(), current_user)
    return render_template("notifications.html", items=[_item(n) for n in rows],
                           unread=sum(1 for n in rows if n.read_at is None))


@bp.get("/notifications/count")
@login_required
def notifications_count():
    """For the poll: the unread count, its words, and the emergencies waiting for this person."""
    service = svc()
    count = notifications.unread_count(service, current_user)
    waiting = notifications.waiting_emergencies(service, current_user)
    return jsonify({
        "unread": count,
        "emergencies": [{"id": n.id, "text": notifications.text(n, current_locale()),
                         "action": notifications.action_text(n, current_locale()),
                         "link": url_for("notifications.notification_open", notification_id=n.id),
                         "target": n.link} for n in waiting],
    })


@bp.get("/notifications/<int:notification_id>/open")
@login_required
def notification_open(notification_id: int):
    """Follow a notification to where she acts. An emergency stays unread (the banner keeps saying it waits)
    until it is confirmed or discarded; any other is read once opened."""
    try:
        n = notifications.get_own(svc(), current_user, notification_id)
        if n.kind not in notifications.URGENT_KINDS:
            notifications.mark_read(svc(), current_user, notification_id)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("notifications.notifications_page"))
    link = n.link if n.link.startswith("/") and not n.link.startswith("//") else ""
    return redirect(link or url_for("notifications.notifications_page"))


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def notification_read(notification_id: int):
    try:
        notifications.mark_read(svc(), current_user, notification_id)
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("notifications.notifications_page"))


@bp.post("/notifications/read-all")
@login_required
def notifications_read_all():
    marked = notifications.mark_all_read(svc(), current_user)
    flash(_("{n} notifications marked as read.", n=marked) if marked else _("Nothing was unread."), "ok")
    return redirect(url_for("notifications.notifications_page"))
