"""``/api/v1/announcements``, ``/normalize`` and ``/abbreviations``: announcements (create, render, archive with
undo, their audio) and the readings of the ward's abbreviations. The rules live in broadcaster/services.py and
approval.py; these routes only parse and serialise. Approval (submit, approve, reject, edit) is in
routes_schedules.py, audio options and uploads in routes_audio.py."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request, send_file
from pydantic import Field, ValidationError

from broadcaster import approval, policy
from broadcaster import audio_settings as aset
from broadcaster.api import contract, openapi
from broadcaster.api import responses as out
from broadcaster.api.base import announcement_json, blueprint, body, err, svc, token_required, versions_json
from broadcaster.api.schemas import (
    LANGUAGE_PATTERN,
    AbbreviationIn,
    AnnouncementIn,
    NormalizeIn,
    RequestModel,
    VersionIn,
    codes,
)

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


@bp.get("/announcements/<int:announcement_id>/versions")
@token_required()
def list_versions(announcement_id: int):
    ann = svc().get_announcement(announcement_id, g.scope)
    if ann is None:
        return err("not_found", "no such announcement", 404)
    return jsonify(_versions(ann))


@bp.post("/announcements/<int:announcement_id>/versions")
@token_required()
def save_version(announcement_id: int):
    """A language version: JSON {language, text}, or multipart/form-data with ``language``, ``text`` and the
    recording ``file`` (every language but Vietnamese is a recording: no speech engine here speaks it)."""
    upload = request.files.get("file")
    if upload is not None or request.mimetype == "multipart/form-data":
        try:
            data = VersionIn(language=request.form.get("language", ""), text=request.form.get("text", ""))
        except ValidationError as exc:
            raise contract.invalid(exc, VersionIn) from exc
        try:
            svc().save_version(announcement_id, data.language, data.text, g.api_user,
                               recording=upload.read() if upload is not None else None,
                               filename=upload.filename or "" if upload is not None else "")
        except aset.UploadRefused as exc:
            message = exc.message_en if contract.api_locale() == "en" else exc.message_vi
            return contract.error_response(exc.code, message, exc.status, "file")
    else:
        data = body(VersionIn)
        approve = data.approve or data.approval == "approved"
        if approve:  # refused before anything is stored
            policy.require(svc(), g.api_user, policy.Action.ANNOUNCEMENT_APPROVE,
                           target=f"announcement:{announcement_id}", field="approve")
        sha = data.media if isinstance(data.media, str) or data.media is None else data.media.sha256
        svc().save_version(announcement_id, data.language, data.text, g.api_user, media_sha256=sha)
        if approve:
            svc().review_version(announcement_id, data.language, True, g.api_user, "approved on creation")
    return jsonify(_versions(svc().get_announcement(announcement_id, g.scope))), 201


@bp.post("/announcements/<int:announcement_id>/versions/<language>/approve")
@token_required()
def approve_version(announcement_id: int, language: str):
    data = body(VersionReviewIn) if request.get_data() else VersionReviewIn()
    svc().review_version(announcement_id, language, True, g.api_user, data.comment)
    return jsonify(_versions(svc().get_announcement(announcement_id, g.scope)))


@bp.post("/announcements/<int:announcement_id>/versions/<language>/reject")
@token_required()
def reject_version(announcement_id: int, language: str):
    data = body(RejectVersionIn)
    svc().review_version(announcement_id, language, False, g.api_user, data.comment)
    return jsonify(_versions(svc().get_announcement(announcement_id, g.scope)))


def _versions(ann) -> dict:
    return {"announcement_id": ann.id, "versions": versions_json(ann), "missing": svc().missing_versions(ann.id)}


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


class VersionReviewIn(RequestModel):
    comment: str = Field(default="", max_length=2000)


class RejectVersionIn(RequestModel):
    comment: str = Field(min_length=1, max_length=2000, description="Why this version is not approved",
                         json_schema_extra=codes("comment_required"))


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    ids = [path("announcement_id", "integer")]
    lang = [*ids, path("language")]
    save = op("Add or change a language version: JSON {language, text}, or multipart/form-data with language, text "
              "and the recording 'file' (a change of its audio sends it back for approval)", body=VersionIn, ok=201,
              params=ids, response=out.AnnouncementVersions, errors=(404, 503))
    save["requestBody"]["content"]["multipart/form-data"] = {"schema": {
        "type": "object", "required": ["language"],
        "properties": {"language": {"type": "string", "minLength": 2, "maxLength": 12,
                                    "pattern": LANGUAGE_PATTERN},
                       "text": {"type": "string", "maxLength": 5000},
                       "file": {"type": "string", "format": "binary"}}}}
    return {
        "/announcements/{announcement_id}/versions": {
            "get": op("The language versions ('vi' is the announcement) and what will not play, where",
                      params=ids, response=out.AnnouncementVersions, errors=(404,)),
            "post": save,
        },
        "/announcements/{announcement_id}/versions/{language}/approve": {"post": op(
            "Approve one language version (its exact audio)", body=VersionReviewIn, body_required=False, params=lang,
            response=out.AnnouncementVersions, errors=(404,))},
        "/announcements/{announcement_id}/versions/{language}/reject": {"post": op(
            "Reject one language version, saying why", body=RejectVersionIn, params=lang,
            response=out.AnnouncementVersions, errors=(404,))},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([VersionReviewIn, RejectVersionIn, VersionIn])
