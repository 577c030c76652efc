"""The ward's list of stream sources (admin): what officers may relay in a programme (broadcaster/streams.py)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import streams
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc

bp = Blueprint("streams", __name__)


@bp.route("/stream-sources", methods=["GET", "POST"])
@login_required
def stream_sources():
    status = 200
    if request.method == "POST":
        form = request.form
        try:
            streams.create_source(svc(), form.get("code", ""), form.get("name", ""), form.get("url", ""),
                                  current_user)
            flash(_("Saved."), "ok")
            return redirect(url_for("streams.stream_sources"))
        except ServiceError as exc:
            flash(error_text(exc), "error")
            status = exc.status
    return render_template("stream_sources.html", sources=streams.list_sources(svc()), form=request.form), status


@bp.post("/stream-sources/<code>/delete")
@login_required
def delete_stream_source(code: str):
    try:
        streams.remove_source(svc(), code, current_user)
        flash(_("Removed."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("streams.stream_sources"))
