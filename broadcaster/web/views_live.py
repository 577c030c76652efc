"""The live paging page (``/live``) and the stream the nodes relay (``/live/<id>/<key>.webm``).

The page captures the microphone in the browser (static/live.js: ``getUserMedia`` + ``MediaRecorder``) and
talks to the JSON endpoints below with the web session and its CSRF token; broadcaster/live.py does the work and
the release policy decides who may (``live.page``)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, render_template, request, stream_with_context
from flask_login import current_user, login_required

from broadcaster import policy
from broadcaster.api.routes_live import started_ms
from broadcaster.live import MAX_LIVE_MS, PRIORITIES, session_json
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, permission_required, svc

bp = Blueprint("live", __name__)


def _refusal(exc: ServiceError) -> tuple[Response, int]:
    return jsonify({"error": {"code": exc.code, "message": error_text(exc)}}), exc.status


@bp.get("/live")
@login_required
@permission_required(policy.Action.LIVE_PAGE)
def live_page():
    return render_template("live.html", zones=svc().list_zones(scope=g.scope), priorities=PRIORITIES,
                           max_minutes=MAX_LIVE_MS // 60000)


@bp.post("/live/start")
@login_required
def live_start():
    data = request.get_json(silent=True) or {}
    try:
        session = svc().start_live(data.get("zones") or [], data.get("priority") or "priority", current_user)
    except ServiceError as exc:
        return _refusal(exc)
    return jsonify(session_json(session)), 201


@bp.get("/live/<session_id>.json")
@login_required
def live_state(session_id: str):
    try:
        return jsonify(session_json(svc().get_live(session_id, current_user)))
    except ServiceError as exc:
        return _refusal(exc)


@bp.post("/live/<session_id>/audio")
@login_required
def live_audio(session_id: str):
    try:
        session = svc().live_audio(session_id, request.get_data(cache=False), current_user, started_ms())
    except ServiceError as exc:
        return _refusal(exc)
    return jsonify({"state": session.state, "bytes": session.size})


@bp.post("/live/<session_id>/end")
@login_required
def live_end(session_id: str):
    try:
        return jsonify(session_json(svc().end_live(session_id, current_user)))
    except ServiceError as exc:
        return _refusal(exc)


@bp.get("/live/<session_id>/<key>.webm")
def live_stream(session_id: str, key: str):
    """What the nodes relay: no login (nodes send no credentials to a stream, docs/protocol.md §7.6); the URL's
    key is the session's secret. Chunked, unbuffered, from the first byte of the session."""
    try:
        chunks = svc().live_stream(session_id, key)
    except ServiceError:
        return Response("no such live stream\n", status=404, mimetype="text/plain")
    response = Response(stream_with_context(chunks), mimetype="audio/webm", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not hold the live audio back
    return response
