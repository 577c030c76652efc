"""REST API ``/api/v1`` — every panel action as JSON, bearer-token auth per user.

This blueprint holds what belongs to no feature: the OpenAPI document and the panel's public key. Each feature
has its own blueprint (``routes_*.py``, built with :func:`broadcaster.api.base.blueprint`), and the app factory
(broadcaster/app.py) registers them one by one. One error shape everywhere:
``{"error": {"code": "...", "message": "...", "field": "..."}}``.
"""

from __future__ import annotations

from flask import jsonify, request

from broadcaster.api import openapi
from broadcaster.api.base import blueprint, svc

bp = blueprint("api", __name__)


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.spec(request.host_url.rstrip("/")))


@bp.get("/panel-key")
def panel_key():
    return jsonify({"public_key": svc().public_key_b64, "algorithm": "Ed25519"})
