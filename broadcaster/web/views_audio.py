"""Audio pages: the ward's audio defaults, uploading a recording, an announcement's audio overrides.

Its own blueprint (``audio``, registered by broadcaster/app.py); logic lives in broadcaster/audio_settings.py.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import audio_settings as aset
from broadcaster import policy
from broadcaster.i18n import current_locale
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc

bp = Blueprint("audio", __name__)


def _settings_page(form=None, status: int = 200):
    service = svc()
    return render_template(
        "audio_settings.html", ward=aset.get_ward_audio(service), form=form or {}, voices=aset.VOICES,
        engines=aset.ENGINE_NAMES, available=aset.available_engines(service), bitrates=aset.BITRATES,
        can_edit=policy.allowed(current_user, policy.Action.AUDIO_SETTINGS),
    ), status  # fmt: skip


@bp.route("/audio-settings", methods=["GET", "POST"])
@login_required
def audio_settings():
    if request.method == "GET":
        return _settings_page()
    form = request.form
    order = [n for n in form.getlist("engine_order") if n]
    data = {
        "engine_order": order, "voice": form.get("voice", ""), "speed": form.get("speed", ""),
        "target_lufs": form.get("target_lufs", ""), "bitrate": form.get("bitrate", ""),
        "lead_in_ms": form.get("lead_in_ms", ""), "intro_chime": "intro_chime" in form,
        "outro_chime": "outro_chime" in form,
    }  # fmt: skip
    try:
        aset.set_ward_audio(svc(), data, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return _settings_page(form, exc.status)
    flash(_("Audio settings saved. New and re-rendered announcements use them."), "ok")
    return redirect(url_for("audio.audio_settings"))


def upload_message(exc: aset.UploadRefused) -> str:
    return exc.message_vi if current_locale() == "vi" else exc.message_en


@bp.route("/announcements/upload", methods=["GET", "POST"])
@login_required
def upload_announcement():
    if request.method == "GET":
        return render_template("announcement_upload.html", form={})
    upload = request.files.get("file")
    form = request.form
    try:
        if upload is None or not upload.filename:
            raise ServiceError("file_required", "choose a recording", "file")
        options = aset.options_from_form(form)
        ann = aset.create_recording(svc(), form.get("title", ""), upload.read(), upload.filename, current_user,
                                    text=form.get("text", ""), options=options)
    except aset.UploadRefused as exc:
        # Nothing is stored; the form comes back with the title and options, and the reason.
        return render_template("announcement_upload.html", form=form, error=upload_message(exc),
                               error_field="file"), exc.status
    except ServiceError as exc:
        return render_template("announcement_upload.html", form=form, error=error_text(exc),
                               error_field=exc.field), exc.status
    flash(_("Recording saved and prepared for the loudspeakers."), "ok")
    return redirect(url_for("views.announcement_detail", announcement_id=ann.id))


@bp.post("/announcements/<int:announcement_id>/audio-options")
@login_required
def announcement_audio_options(announcement_id: int):
    try:
        ann = aset.set_options(svc(), announcement_id, aset.options_from_form(request.form), current_user)
    except ServiceError as exc:
        if exc.status == 404:
            abort(404)
        flash(error_text(exc), "error")
        return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
    if ann.status != "ready":
        flash(_("Speech could not be produced; the draft is saved. Reason: {reason}", reason=ann.render_error),
              "error")
    else:
        flash(_("Audio options saved."), "ok")
    return redirect(url_for("views.announcement_detail", announcement_id=announcement_id))
