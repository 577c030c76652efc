"""``/api/v1`` audio: the ward's speech and mastering defaults, per-announcement audio overrides, recorded
uploads and the media cleanup. Logic lives in broadcaster/audio_settings.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from flask import g, jsonify, request
from pydantic import Field

from broadcaster import audio_settings as aset
from broadcaster import policy
from broadcaster.api import contract, openapi
from broadcaster.api import responses as out
from broadcaster.api.base import announcement_json, blueprint, body, err, svc, token_required
from broadcaster.api.schemas import AudioOptionsIn, RequestModel

bp = blueprint("api_audio", __name__)


class AudioSettingsIn(RequestModel):
    """Ward defaults; omitted fields keep their value."""

    engine_order: list[Literal["gtts", "espeak", "http"]] | None = Field(
        default=None, min_length=1, description="Fallback order, first that works speaks (http needs TTS_HTTP_URL)")
    voice: Literal["north", "central", "south", "north+f3", "central+f3", "south+f3"] | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    target_lufs: float | None = Field(default=None, ge=-24, le=-12, description="Integrated loudness (±1 LU)")
    bitrate: Literal["32k", "48k", "64k", "96k", "128k"] | None = None
    lead_in_ms: int | None = Field(default=None, ge=0, le=5000, description="Silence for amplifier warm-up")
    intro_chime: bool | None = None
    outro_chime: bool | None = None


class CleanupIn(RequestModel):
    dry_run: bool = Field(default=True, description="Only report what would be deleted")
    min_age_hours: float = Field(default=24, ge=0, le=87_600, description="Keep files younger than this (at most "
                                 "ten years)")


def settings_json() -> dict[str, Any]:
    service = svc()
    ward = aset.get_ward_audio(service)
    return {
        **ward.as_dict(),
        "choices": {
            "engines": list(aset.ENGINE_NAMES),
            "available_engines": aset.available_engines(service),
            "voices": aset.VOICES,
            "bitrates": list(aset.BITRATES),
            "target_lufs": list(aset.TARGET_RANGE),
            "speed": list(aset.SPEED_RANGE),
        },
    }


@bp.get("/audio-settings")
@token_required()
def get_audio_settings():
    return jsonify(settings_json())


@bp.put("/audio-settings")
@token_required()
def put_audio_settings():
    data = body(AudioSettingsIn).model_dump(exclude_none=True)
    aset.set_ward_audio(svc(), data, g.api_user)
    return jsonify(settings_json())


@bp.put("/announcements/<int:announcement_id>/audio-options")
@token_required()
def put_audio_options(announcement_id: int):
    data = body(AudioOptionsIn).model_dump(exclude_none=True)
    return jsonify(announcement_json(aset.set_options(svc(), announcement_id, data, g.api_user)))


def _upload_error(exc: aset.UploadRefused):
    message = exc.message_en if contract.api_locale() == "en" else exc.message_vi
    return contract.error_response(exc.code, message, exc.status, "file")


@bp.post("/announcements/upload")
@token_required()
def upload_announcement():
    """multipart/form-data: ``file`` (the recording), ``title``, optional ``text`` (a description) and the
    audio overrides ``repeat``, ``gap_ms``, ``intro_chime``, ``outro_chime``."""
    upload = request.files.get("file")
    if upload is None:
        return err("file_required", "send the recording as multipart/form-data field 'file'", 400, "file")
    options = {k: request.form[k] for k in ("repeat", "gap_ms", "intro_chime", "outro_chime") if k in request.form}
    try:
        ann = aset.create_recording(svc(), request.form.get("title", ""), upload.read(), upload.filename or "",
                                    g.api_user, text=request.form.get("text", ""), options=options)
    except aset.UploadRefused as exc:
        return _upload_error(exc)
    return jsonify(announcement_json(ann)), 201


@bp.post("/media/cleanup")
@token_required(policy.Action.MEDIA_CLEANUP)
def media_cleanup():
    data = body(CleanupIn) if request.get_data() else CleanupIn()
    report = aset.cleanup_media(svc(), min_age=timedelta(hours=data.min_age_hours), dry_run=data.dry_run,
                                user=g.api_user)
    return jsonify(report.as_dict())


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    upload = op("Create an announcement from a recording (mp3, wav, m4a, ogg, webm; validated by decoding, "
                "bounded in size, length and concurrent decodes). A refused file answers {error: {code: "
                "upload_<reason>, message, field: file}} and nothing is stored; 503 busy when too many files are "
                "being decoded (Retry-After)", ok=201, response=out.Announcement, errors=(503,))
    upload["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "title"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "title": {"type": "string", "minLength": 1, "maxLength": 300},
            "text": {"type": "string", "maxLength": 5000}, "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
            "gap_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
            "intro_chime": {"type": "boolean"}, "outro_chime": {"type": "boolean"},
        }}}}}  # fmt: skip
    aid = [path("announcement_id", "integer")]
    return {
        "/audio-settings": {
            "get": op("The ward's audio defaults (engine order, voice, speed, loudness target, bitrate, lead-in, "
                      "chimes) and the allowed choices", response=out.AudioSettings),
            "put": op("Change the ward's audio defaults (leader/admin)", body=AudioSettingsIn,
                      response=out.AudioSettings),
        },
        "/announcements/{announcement_id}/audio-options": {
            "put": op("Set an announcement's audio overrides and render again (nothing is rendered when the "
                      "cache key is unchanged)", body=AudioOptionsIn, params=aid, response=out.Announcement,
                      errors=(409, 503)),
        },
        "/announcements/upload": {"post": upload},
        "/media/cleanup": {
            "post": op("Delete media nothing references (admin); media in any plan, announcement or alert is "
                       "never deleted; the body is optional", body=CleanupIn, body_required=False,
                       response=out.CleanupReport),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([AudioOptionsIn, AudioSettingsIn, CleanupIn])
