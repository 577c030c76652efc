"""``/api/v1/notifications``: the caller's own notification centre (broadcaster/notifications.py decides who is
told what). Everyone sees only her own notifications; another person's id answers 404."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from broadcaster import notifications
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, svc, token_required, ts
from broadcaster.i18n import current_locale

bp = blueprint("api_notifications", __name__)


def notification_json(n: Any) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "text": notifications.text(n, current_locale()),
        "params": dict(n.params or {}),
        "link": n.link,
        "created_at": ts(n.created_at),
        "read": n.read_at is not None,
        "read_at": ts(n.read_at),
    }


@bp.get("/notifications")
@token_required()
def list_notifications():
    unread = (request.args.get("unread") or "false").strip().lower() in ("1", "true", "yes")
    rows = notifications.list_for(svc(), g.api_user, unread_only=unread)
    return jsonify([notification_json(n) for n in rows])


@bp.post("/notifications/<int:notification_id>/read")
@token_required()
def read_notification(notification_id: int):
    return jsonify(notification_json(notifications.mark_read(svc(), g.api_user, notification_id)))


@bp.post("/notifications/read-all")
@token_required()
def read_all_notifications():
    return jsonify({"ok": True, "marked": notifications.mark_all_read(svc(), g.api_user)})


def _paths() -> dict[str, Any]:
    op, path, query = openapi.op, openapi.path, openapi.query
    return {
        "/notifications": {
            "get": op("The caller's notifications, newest first (at most 100): announcements to approve, "
                      "emergencies to confirm as the second person, answers to what she sent. ?unread=true: only "
                      "the unread ones", response=list[out.NotificationOut], params=[query("unread", "boolean")]),
        },
        "/notifications/{notification_id}/read": {
            "post": op("Mark one of the caller's notifications read (another person's: 404)",
                       params=[path("notification_id", "integer")], response=out.NotificationOut,
                       errors=(404,)),
        },
        "/notifications/read-all": {
            "post": op("Mark every notification of the caller read", response=out.NotificationsRead),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
