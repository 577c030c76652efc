"""REST API ``/api/v1`` — every panel action as JSON, bearer-token auth per user.

One error shape everywhere: ``{"error": {"code": "...", "message": "...", "field": "..."}}``.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import wraps

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file
from pydantic import ValidationError

from broadcaster import policy, tenancy
from broadcaster.api import contract
from broadcaster.api.schemas import (
    AbbreviationIn,
    AnnouncementIn,
    CommandIn,
    LoginIn,
    NodeIn,
    NormalizeIn,
    ZoneIn,
)
from broadcaster.audio_settings import announcement_audio_json
from broadcaster.services import ServiceError
from broadcaster.web.common import bearer_token
from devices.protocol import format_ts

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def svc():
    return current_app.extensions["loaphuong"].service


def err(code: str, message: str, status: int, field: str | None = None):
    """The one error shape (broadcaster/api/contract.py): the message in the request's language."""
    return contract.error_response(code, message, status, field)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError):
    return contract.service_error_response(exc)


@bp.before_request
def _check_query() -> None:
    contract.check_query()  # documented query parameters must fit their schema (400 otherwise)


def body(model):
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


def token_required(action: policy.Action | str | None = None):
    """A valid API token; with ``action``, the release policy must allow it (broadcaster/policy.py decides,
    never this route). ``"admin"`` is the registry's own action (fleet.manage)."""
    if action == "admin":
        action = policy.Action.FLEET_MANAGE

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
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
    return {"id": z.id, "code": z.code, "name": z.name, "kind": z.kind, "ward": z.ward}


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
    }


def schedule_json(s, state: str | None = None) -> dict:
    """``status``: active | awaiting_approval (its content is not approved yet: it is in no plan) | cancelled."""
    from schedules.recurrence import describe

    rec = None
    if s.recurrence:
        from broadcaster.scheduling import schedule_recurrence

        rec = schedule_recurrence(s, svc().config.TIMEZONE)
    return {
        "id": s.id,
        "announcement_id": s.announcement_id,
        "title": s.title or (s.announcement.title if s.announcement else None),
        "start_at": ts(s.start_at),
        "start_at_local": local_iso(s.start_at),
        "priority": s.priority,
        "status": state or _schedule_state(s),
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
    }


def _schedule_state(s) -> str:
    from broadcaster.scheduling import schedule_states

    return schedule_states(svc(), [s])[s.id]


def command_json(c) -> dict:
    return {"id": c.id, "node_id": c.node_id, "name": c.name, "args": c.args, "status": c.status,
            "issued_at": ts(c.issued_at), "expires_at": ts(c.expires_at), "acked_at": ts(c.acked_at),
            "error": c.error}


def play_json(p: dict) -> dict:
    return {**p, "scheduled_start": ts(p["scheduled_start"]), "actual_start": ts(p["actual_start"])}


# --------------------------------------------------------------------------------------- routes
@bp.get("/openapi.json")
def openapi():
    from broadcaster.api.openapi import spec

    return jsonify(spec(request.host_url.rstrip("/")))


@bp.post("/auth/token")
def login_token():
    from broadcaster.api.routes_auth import login_for_token  # a new token per login, audited, rate-limited

    return login_for_token(body(LoginIn))


@bp.get("/panel-key")
def panel_key():
    return jsonify({"public_key": svc().public_key_b64, "algorithm": "Ed25519"})


@bp.get("/zones")
@token_required()
def list_zones():
    return jsonify([zone_json(z) for z in svc().list_zones(g.scope)])


@bp.post("/zones")
@token_required("admin")
def create_zone():
    data = body(ZoneIn)
    zone = svc().create_zone(data.code, data.name, data.kind, data.ward, user=g.api_user)
    return jsonify(zone_json(zone)), 201


@bp.get("/nodes")
@token_required()
def list_nodes():
    return jsonify([node_json(n) for n in svc().list_nodes(g.scope)])


@bp.post("/nodes")
@token_required("admin")
def register_node():
    data = body(NodeIn)
    service = svc()
    node, token = service.register_node(data.node_id, data.name, data.zone, user=g.api_user)
    return jsonify({
        **node_json(node),
        "token": token,
        "panel_public_key": service.public_key_b64,
        "topic_prefix": service.config.MQTT_PREFIX,
        "broker_url": service.config.MQTT_URL or None,
        "media_base_url": service.config.public_url,
    }), 201


@bp.get("/nodes/<node_id>")
@token_required()
def get_node(node_id: str):
    node = svc().get_node(node_id, g.scope)
    if node is None:
        return err("not_found", f"no node {node_id!r}", 404)
    return jsonify(node_json(node, with_plan=True))


@bp.post("/nodes/<node_id>/token")
@token_required("admin")
def rotate_token(node_id: str):
    """Re-provision a node: a new token (shown once) and a new event epoch (its seq restarts at 1)."""
    service = svc()
    token = service.rotate_node_token(node_id, g.api_user)
    return jsonify({"node_id": node_id, "token": token, "panel_public_key": service.public_key_b64,
                    "topic_prefix": service.config.MQTT_PREFIX}), 201


@bp.delete("/nodes/<node_id>")
@token_required("admin")
def delete_node(node_id: str):
    """Remove a node: the broker refuses its login and drops its session, its retained plan is cleared."""
    svc().delete_node(node_id, g.api_user)
    return "", 204


@bp.get("/nodes/<node_id>/commands")
@token_required()
def list_commands(node_id: str):
    if svc().get_node(node_id, g.scope) is None:
        return err("not_found", f"no node {node_id!r}", 404)
    return jsonify([command_json(c) for c in svc().list_commands(node_id)])


@bp.post("/nodes/<node_id>/commands")
@token_required()
def send_command(node_id: str):
    from broadcaster import fleet  # the one command path: validated arguments, the release policy

    data = body(CommandIn)
    args = contract.command_args(data.name, data.args)  # its own schema; JSON: "50" is not the number 50
    if svc().get_node(node_id, g.scope) is None:
        return err("not_found", f"no node {node_id!r}", 404)
    (record,) = fleet.send(svc(), data.name, args, node_ids=[node_id], user=g.api_user)
    return jsonify(command_json(record)), 202


@bp.get("/announcements")
@token_required()
def list_announcements():
    """The announcements in use; ``?archived=true`` the archived ("deleted") ones instead; ``?q=`` words of the
    title or text; ``?approval=`` one approval state."""
    archived = (request.args.get("archived") or "").strip().lower() in ("1", "true", "yes", "on")
    rows = svc().list_announcements(g.scope, archived=archived, search=request.args.get("q") or "",
                                    approval=request.args.get("approval") or "")
    return jsonify([announcement_json(a) for a in rows])


@bp.post("/announcements")
@token_required()
def create_announcement():
    data = body(AnnouncementIn)
    if data.approve:  # refused before anything is stored
        policy.require(svc(), g.api_user, policy.Action.ANNOUNCEMENT_APPROVE, target="announcement:new",
                       field="approve")
    audio = data.audio.model_dump(exclude_none=True) if data.audio else None
    ann = svc().create_announcement(data.title, data.text, g.api_user, audio_options=audio, ward=data.ward)
    if data.approve:
        from broadcaster import approval

        ann = approval.approve(svc(), ann.id, g.api_user, "approved on creation")
    return jsonify(announcement_json(ann)), 201


@bp.get("/announcements/<int:announcement_id>")
@token_required()
def get_announcement(announcement_id: int):
    ann = svc().get_announcement(announcement_id, g.scope)
    if ann is None:
        return err("not_found", "no such announcement", 404)
    return jsonify(announcement_json(ann))


@bp.post("/announcements/<int:announcement_id>/render")
@token_required()
def render_announcement(announcement_id: int):
    if svc().get_announcement(announcement_id, g.scope) is None:
        return err("not_found", "no such announcement", 404)
    return jsonify(announcement_json(svc().render_announcement(announcement_id)))


@bp.post("/announcements/<int:announcement_id>/archive")
@token_required()
def archive_announcement(announcement_id: int):
    """Delete with undo: archived (404 unknown, 403 not its author nor a leader, 409 a schedule will still play it)."""
    if svc().get_announcement(announcement_id, g.scope) is None:
        return err("not_found", "no such announcement", 404)
    return jsonify(announcement_json(svc().archive_announcement(announcement_id, g.api_user)))


@bp.post("/announcements/<int:announcement_id>/restore")
@token_required()
def restore_announcement(announcement_id: int):
    if svc().get_announcement(announcement_id, g.scope) is None:
        return err("not_found", "no such announcement", 404)
    return jsonify(announcement_json(svc().restore_announcement(announcement_id, g.api_user)))


@bp.get("/announcements/<int:announcement_id>/audio")
@token_required()
def announcement_audio(announcement_id: int):
    ann = svc().get_announcement(announcement_id, g.scope)
    if ann is None or not ann.media_sha256:
        return err("not_found", "no audio for this announcement", 404)
    return send_file(svc().media.path(ann.media_sha256, "mp3"), mimetype="audio/mpeg")


@bp.post("/normalize")
@token_required()
def normalize_text():
    data = body(NormalizeIn)
    return jsonify({"text": data.text, "normalized_text": svc().normalize_text(data.text)})


@bp.get("/abbreviations")
@token_required()
def list_abbreviations():
    return jsonify({"ward": {a.abbr: a.expansion for a in svc().list_abbreviations()},
                    "defaults": svc().default_abbreviations()})


@bp.post("/abbreviations")
@token_required(policy.Action.ABBREVIATIONS)
def set_abbreviation():
    data = body(AbbreviationIn)
    row = svc().set_abbreviation(data.abbr, data.expansion, g.api_user)
    return jsonify({"abbr": row.abbr, "expansion": row.expansion}), 201


@bp.delete("/abbreviations/<path:abbr>")
@token_required(policy.Action.ABBREVIATIONS)
def delete_abbreviation(abbr: str):
    svc().delete_abbreviation(abbr, g.api_user)
    return "", 204


# /schedules, /timeline, approvals, audit: broadcaster/api/routes_schedules.py


@bp.get("/plays")
@token_required()
def plays():
    schedule_id = request.args.get("schedule_id", type=int)
    node_id = request.args.get("node_id") or None
    return jsonify([play_json(p) for p in svc().plays(schedule_id=schedule_id, node_id=node_id, scope=g.scope)])


def _load_feature_modules() -> None:
    """Import ``broadcaster/api/routes_*.py``: each feature adds its routes to ``bp`` in its own file."""
    import importlib
    import pkgutil

    import broadcaster.api as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("routes_"):
            importlib.import_module(f"broadcaster.api.{info.name}")


_load_feature_modules()
