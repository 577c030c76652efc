"""What every feature blueprint of ``/api/v1`` shares: the blueprint itself (prefix, error shape, query check),
the bearer-token check against the release policy, request bodies and the serialisers.

Each feature (``routes_*.py``) makes its own blueprint with :func:`blueprint`; the app factory
(broadcaster/app.py) registers them one by one. One error shape everywhere:
``{"error": {"code": "...", "message": "...", "field": "..."}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ValidationError

from broadcaster import languages, policy, tenancy
from broadcaster.airtime import schedule_recurrence, schedule_states
from broadcaster.api import contract
from broadcaster.audio_settings import announcement_audio_json
from broadcaster.services import ServiceError
from broadcaster.versions import version_json
from broadcaster.web.common import bearer_token
from devices.protocol import format_ts
from schedules.recurrence import describe

M = TypeVar("M", bound=BaseModel)


def blueprint(name: str, import_name: str) -> Blueprint:
    """A feature's blueprint under ``/api/v1``: service refusals answered in the one error shape, documented
    query parameters checked against the OpenAPI document before the view runs (400 otherwise)."""
    bp = Blueprint(name, import_name, url_prefix=contract.PREFIX)
    bp.register_error_handler(ServiceError, contract.service_error_response)
    bp.before_request(contract.check_query)
    return bp


def svc():
    return current_app.extensions["loaphuong"].service


def err(code: str, message: str, status: int, field: str | None = None):
    """The one error shape (broadcaster/api/contract.py): the message in the request's language."""
    return contract.error_response(code, message, status, field)


def body(model: type[M]) -> M:
    """The request body as ``model``: a JSON object, no strings a database cannot store, every field checked
    (400 ``invalid_field`` naming each field at fault)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError("invalid_json", "request body must be a JSON object")
    data = contract.clean_json(data)
    try:  # JSON mode: strict types, dates as ISO strings
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise contract.invalid(exc, model) from exc


def token_required(action: policy.Action | str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A valid API token; with ``action``, the release policy must allow it (broadcaster/policy.py decides,
    never this route). ``"admin"`` is the registry's own action (fleet.manage)."""
    if action == "admin":
        action = policy.Action.FLEET_MANAGE

    def deco(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = svc().user_for_token(bearer_token() or "")
            if user is None:
                if request.method not in ("GET", "HEAD", "OPTIONS"):  # an attempt to change something: audited
                    policy.audit_refusal(svc(), None, "unauthorized", "no valid API token",
                                         action=f"{request.method} {request.path}"[:100], target=request.path)
                return err("unauthorized", "Authorization: Bearer <API token> required", 401)
            if action is not None:
                policy.require(svc(), user, policy.Action(action), target=request.path)
            g.api_user = user
            # The one ward scope of this request (broadcaster/tenancy.py); ?ward=CODE narrows it.
            g.scope = tenancy.scope_of(svc(), user, request.args.get("ward"))
            return view(*args, **kwargs)

        return wrapper

    return deco


def csv_response(text: str, filename: str) -> Response:
    """A CSV download (the text comes from the service layer, formula cells already neutralised)."""
    return Response(text, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def ts(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment else None


def local_iso(moment: datetime | None) -> str | None:
    return svc().local(moment).isoformat(timespec="seconds") if moment else None


# ---------------------------------------------------------------------------------- serialisers
def zone_json(z) -> dict:
    return {"id": z.id, "code": z.code, "name": z.name, "kind": z.kind, "ward": z.ward,
            "languages": languages.of_zone(z.languages)}


def node_json(n, with_plan: bool = False) -> dict:
    out = {
        "node_id": n.node_id,
        "name": n.name,
        "zone": n.zone.code if n.zone else None,
        "state": n.state,
        "last_seen": ts(n.last_seen),
        "firmware": n.firmware,
        "volume": n.volume,
        "plan_version": n.plan_version or None,
        "reported_plan_version": n.reported_plan_version,
    }
    if with_plan:
        out["plan"] = n.plan_payload
    return out


def announcement_json(a) -> dict:
    return {
        "id": a.id,
        "title": a.title,
        "text": a.text,
        "normalized_text": a.normalized_text,
        "status": a.status,
        "engine": a.engine,
        "render_error": a.render_error,
        "media": (
            {"sha256": a.media.sha256, "bytes": a.media.size, "duration_ms": a.media.duration_ms,
             "content_type": a.media.content_type, "url": svc().media_url(a.media.sha256)}
            if a.media else None
        ),
        "created_at": ts(a.created_at),
        "approval": a.approval,
        "approval_comment": a.approval_comment,
        # R5/R6: true while a leader's approval is missing (also after a change of text, voice, options or file)
        "awaiting_approval": (a.approval or "draft") == "submitted",
        # its current audio is exactly the approved audio: it may reach a loudspeaker
        "playable": policy.playable(a),
        "audio": announcement_audio_json(a),  # source, overrides, measured loudness (audio_settings.py)
        "render_progress": a.render_progress,  # 0–100 while a background render (the web page's) runs
        "archived_at": ts(a.archived_at),  # "deleted" with undo: never played, cannot be scheduled
        "versions": versions_json(a),  # Vietnamese (the announcement itself) first, then the other languages
    }


def versions_json(a) -> list[dict]:
    """The language versions of an announcement: ``vi`` is the announcement itself, then each other language
    with its own text, audio and approval (broadcaster/versions.py)."""
    media = a.media
    own = {"language": languages.VIETNAMESE, "name": languages.name(languages.VIETNAMESE), "text": a.text,
           "source": a.source,
           "media": ({"sha256": media.sha256, "bytes": media.size, "duration_ms": media.duration_ms,
                      "content_type": media.content_type, "url": svc().media_url(media.sha256)} if media else None),
           "approval": a.approval, "approval_comment": a.approval_comment, "playable": policy.playable(a)}
    return [own, *(version_json(v, svc().media_url) for v in a.versions)]


def schedule_json(s, state: str | None = None) -> dict:
    """``status``: active | awaiting_approval (its content is not approved yet: it is in no plan) | cancelled."""
    rec = schedule_recurrence(s, svc().config.TIMEZONE) if s.recurrence else None
    return {
        "id": s.id,
        "announcement_id": s.announcement_id,
        "title": s.title or (s.announcement.title if s.announcement else None),
        "start_at": ts(s.start_at),
        "start_at_local": local_iso(s.start_at),
        "priority": s.priority,
        "status": state or schedule_states(svc(), [s])[s.id],
        "zones": [z.code for z in s.zones],
        "recurrence": s.recurrence,
        "rrule": s.rrule,
        "describe": describe(rec) if rec is not None else None,
        "expires_at": ts(s.expires_at),
        "items": s.items,
        "repeat": s.repeat or 1,
        "gap_ms": s.gap_ms or 0,
        "on_preempt": s.on_preempt or "resume",
        "on_clash": s.on_clash or "append",
        "drill": bool(s.drill),
        "sequence": ({"zones": s.sequence.get("zones", []), "gap_s": s.sequence.get("gap_s", 0)}
                     if s.sequence else None),
    }


def command_json(c) -> dict:
    return {"id": c.id, "node_id": c.node_id, "name": c.name, "args": c.args, "status": c.status,
            "issued_at": ts(c.issued_at), "expires_at": ts(c.expires_at), "acked_at": ts(c.acked_at),
            "error": c.error}


def play_json(p: dict) -> dict:
    return {**p, "scheduled_start": ts(p["scheduled_start"]), "actual_start": ts(p["actual_start"])}
