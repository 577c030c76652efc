"""``/api/v1/announcements``, ``/normalize`` and ``/abbreviations``: announcements (create, render, archive with
undo, their audio) and the readings of the ward's abbreviations. The rules live in broadcaster/services.py and
approval.py; these routes only parse and serialise. Approval (submit, approve, reject, edit) is in
routes_schedules.py, audio options and uploads in routes_audio.py."""

from __future__ import annotations

from flask import g, jsonify, request, send_file

from broadcaster import approval, policy
from broadcaster.api.base import announcement_json, blueprint, body, err, svc, token_required
from broadcaster.api.schemas import AbbreviationIn, AnnouncementIn, NormalizeIn

bp = blueprint("api_announcements", __name__)


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
