"""Media download for nodes: ``GET /media/<sha256>.mp3`` with ``Authorization: Bearer <node token>``.

Logged-in users and API tokens may fetch it too (to listen in the browser).
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, send_file
from flask_login import current_user

from broadcaster.web.common import bearer_token

bp = Blueprint("media", __name__)
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@bp.get("/media/<sha256>.mp3")
def media(sha256: str):
    service = current_app.extensions["loaphuong"].service
    token = bearer_token()
    allowed = bool(current_user.is_authenticated) or (
        token is not None and (service.node_for_token(token) or service.user_for_token(token))
    )
    if not allowed:
        return {"error": {"code": "unauthorized", "message": "node or user token required"}}, 401
    if not SHA_RE.match(sha256) or not service.media.exists(sha256, "mp3"):
        abort(404)
    response = send_file(service.media.path(sha256, "mp3"), mimetype="audio/mpeg", conditional=True, etag=sha256)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
