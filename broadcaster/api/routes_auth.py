"""``/api/v1/auth/token(s)``: API login, one's own tokens, API logout (broadcaster/logins.py).

Every ``POST /auth/token`` gives a new token; the others keep working until revoked here, by a password change
or reset, a role change or a disabled account. Only hashes are stored and a token is shown once: the list shows
ids, times and where each was made, never a token. Failed logins are rate-limited per username and per client
(429 ``rate_limited`` with Retry-After; broadcaster/web/sessions.py) and audited.
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from pydantic import Field

from broadcaster import logins
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, err, svc, token_required, ts
from broadcaster.api.schemas import LoginIn
from devices.registry import token_hash

bp = blueprint("api_auth", __name__)


class AuthToken(out.ResponseModel):
    id: int = Field(description="Revoke it with DELETE /auth/tokens/{id}")
    created_at: out.Timestamp
    last_used_at: out.Timestamp | None = Field(description="Last request with it (to the minute)")
    label: str = Field(description="The User-Agent it was made with")
    address: str = Field(description="The client address it was made from")
    current: bool = Field(description="The token of this request")


@bp.post("/auth/token")
def login_token():
    """A new token per login, or 401 (audited); rate-limited (broadcaster/web/sessions.py)."""
    data = body(LoginIn)
    address = request.remote_addr or ""
    user = svc().authenticate(data.username, data.password)
    if user is None:
        logins.audit(svc(), "user.login_failed", data.username, via="api", address=address)
        return err("invalid_credentials", "wrong username or password", 401)
    token = svc().issue_api_token(user, user_agent=request.user_agent.string, address=address)
    return jsonify({"token": token, "username": user.username, "role": user.role,
                    "token_id": logins.current_id(svc().db, token)}), 201


def token_json(row, current_hash: str) -> dict[str, Any]:
    return {"id": row.id, "created_at": ts(row.created_at), "last_used_at": ts(row.last_seen_at),
            "label": row.user_agent, "address": row.address, "current": row.secret_hash == current_hash}


@bp.get("/auth/tokens")
@token_required()
def list_tokens():
    current = token_hash(g.api_user.session_key)
    return jsonify([token_json(r, current) for r in logins.live(svc().db, g.api_user, logins.API)])


@bp.delete("/auth/tokens/<int:token_id>")
@token_required()
def revoke_token(token_id: int):
    if not logins.revoke_own(svc().db, g.api_user, token_id, logins.API):
        return err("not_found", "no such token of yours", 404)
    logins.audit(svc(), "user.api_token_revoked", g.api_user.username, g.api_user, token_id=token_id)
    return "", 204


@bp.delete("/auth/token")
@token_required()
def logout_token():
    token_id = logins.current_id(svc().db, g.api_user.session_key)
    logins.revoke_key(svc().db, g.api_user.session_key)
    logins.audit(svc(), "user.logout", g.api_user.username, g.api_user, via="api", token_id=token_id)
    return "", 204


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    return {
        "/auth/tokens": {
            "get": op("The caller's live API tokens (never the tokens themselves): id, created_at, last_used_at, "
                      "label (User-Agent), address, current", response=list[AuthToken]),
        },
        "/auth/tokens/{token_id}": {
            "delete": op("Revoke one of one's own API tokens; another user's or an unknown one is 404",
                         params=[path("token_id", "integer")], ok=204, ok_text="Revoked"),
        },
        "/auth/token": {
            "delete": op("Log out of the API: revoke the token of this request", ok=204, ok_text="Revoked"),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
