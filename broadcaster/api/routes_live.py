"""``/api/v1/live``: live paging from a microphone (issue 17 §1, broadcaster/live.py).

``POST /api/v1/live`` {zones, priority} creates a session and tells the zones' nodes to relay its stream;
the speaker's client then POSTs the recorder's chunks (``audio/webm``, Opus) to ``…/{id}/audio`` as they come;
``DELETE /api/v1/live/{id}`` ends it. The release policy decides who may (``live.page``)."""

from __future__ import annotations

from typing import Any, Literal

from flask import g, jsonify, request
from pydantic import Field

from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, svc, token_required
from broadcaster.api.schemas import Code, RequestModel
from broadcaster.live import session_json

bp = blueprint("api_live", __name__)
#: Header of the first chunk: when the speaker's browser started sending (epoch milliseconds, its clock).
STARTED_HEADER = "X-Live-Started-At"


class LiveIn(RequestModel):
    zones: list[Code] = Field(min_length=1, max_length=200, description="Codes of the zones that hear it")
    priority: Literal["normal", "priority"] = Field(
        default="priority", description="Pre-empts what plays at this priority or lower (an emergency goes "
                                        "through POST /api/v1/emergencies)")


def started_ms() -> int | None:
    """The ``X-Live-Started-At`` header as epoch milliseconds, None when absent or not a number."""
    value = request.headers.get(STARTED_HEADER, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 16 else None


@bp.post("/live")
@token_required()
def start_live():
    data = body(LiveIn)
    session = svc().start_live(data.zones, data.priority, g.api_user)
    return jsonify(session_json(session, svc().config.public_url)), 201


@bp.get("/live/<session_id>")
@token_required()
def get_live(session_id: str):
    return jsonify(session_json(svc().get_live(session_id, g.api_user), svc().config.public_url))


@bp.post("/live/<session_id>/audio")
@token_required()
def live_audio(session_id: str):
    session = svc().live_audio(session_id, request.get_data(cache=False), g.api_user, started_ms())
    return jsonify(session_json(session, svc().config.public_url))


@bp.delete("/live/<session_id>")
@token_required()
def end_live(session_id: str):
    return jsonify(session_json(svc().end_live(session_id, g.api_user), svc().config.public_url))


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    sid = [path("session_id")]
    return {
        "/live": {"post": op("Start live paging to zones: their nodes relay the session's stream at once",
                             body=LiveIn, ok=201, response=out.LiveSession, errors=(404,))},
        "/live/{session_id}": {
            "get": op("A live session's state", params=sid, response=out.LiveSession, errors=(404,)),
            "delete": op("End a live session: the nodes stop, the recording is kept as an announcement",
                         params=sid, response=out.LiveSession, errors=(404,)),
        },
        "/live/{session_id}/audio": {"post": op(
            "One chunk of the speaker's recording (MediaRecorder WebM/Opus), relayed at once", params=sid,
            response=out.LiveSession, errors=(404, 409, 413),
            raw_body={"audio/webm": {"schema": {"type": "string", "format": "binary"}},
                      "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.append(LiveIn)
