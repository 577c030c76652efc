"""``/api/v1/users`` and ``/api/v1/auth/password``: user management and one's own password.

Who may do what is decided in the service layer (``PanelService.create_user`` / ``update_user``: the release
policy's ``users.manage`` plus the tenancy: a ward admin in her own ward with the ward roles only, a
province_admin everywhere); these routes only parse and serialise. Officers and leaders manage nobody:
``GET /users`` shows them only themselves. Hashes and tokens are never returned.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import g, jsonify, request
from pydantic import Field

from broadcaster import notifications, tenancy
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, svc, token_required, ts
from broadcaster.api.schemas import WS, RequestModel, codes

bp = blueprint("api_users", __name__)

Role = Literal["officer", "leader", "admin", "province_leader", "province_admin"]
USERNAME = rf"^[^{WS}/\\?#%\u0000]{{1,80}}$"
#: The password rules (accounts.check_password_strength) as JSON Schema; the service answers 400 weak_password.
PASSWORD_RULES: dict[str, Any] = {"minLength": 8, "allOf": [{"pattern": "[A-Za-z]"}, {"pattern": "[^A-Za-z]"}]}
ROLE_HELP = "officer | leader | admin (of a ward) | province_leader | province_admin (no ward)"



#: An e-mail address as broadcaster/notifications.py ``EMAIL_RE`` takes it (white space around it is stripped).
_NOT = rf"[^@{WS}\u0000]"
EMAIL_PATTERN = rf"[{WS}]*{_NOT}{{1,64}}@{_NOT}{{1,190}}\.{_NOT}{{2,63}}[{WS}]*"

class UserIn(RequestModel):
    username: str = Field(pattern=USERNAME, json_schema_extra=codes("invalid_username"),
                          description="Login name: 1–80 characters, no spaces or / \\ ? # %")
    password: str = Field(max_length=200, json_schema_extra=PASSWORD_RULES,
                          description="8–200 characters with a letter (a–z) and something else, not the username")
    role: Role = Field(default="officer", description=ROLE_HELP, json_schema_extra=codes("invalid_role"))
    ward: str | int | None = Field(default=None, description="Ward code for a ward role (a ward admin: her own, "
                                   "the default; a one-ward installation: that ward); none for province roles")
    display_name: str = Field(default="", max_length=200, description="Name shown in the panel (default: username)")
    email: str | None = Field(default=None, max_length=254, pattern=rf"^(?:[{WS}]*|{EMAIL_PATTERN})$",
                              json_schema_extra=codes("invalid_email"),
                              description="E-mail address for the notifications she must act on (optional)")


class UserPatchIn(RequestModel):
    role: Role | None = Field(default=None, json_schema_extra=codes("invalid_role"),
                              description=ROLE_HELP + "; a ward admin gives ward roles only")
    disabled: bool | None = Field(default=None, description="true: she cannot log in, her sessions and API token "
                                  "stop working at once; nobody disables herself")
    password: str | None = Field(default=None, max_length=200, json_schema_extra=PASSWORD_RULES,
                                 description="Reset her password (her API token is revoked)")
    ward: str | None = Field(default=None, max_length=64,
                             description="province_admin only: move a ward user to this ward")
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=rf"^(?:[{WS}]*|{EMAIL_PATTERN})$",
                              json_schema_extra=codes("invalid_email"),
                              description="E-mail address for notifications; empty string removes it")


class PasswordChangeIn(RequestModel):
    old_password: str = Field(max_length=200, description="The current password")
    new_password: str = Field(max_length=200, json_schema_extra=PASSWORD_RULES,
                              description="8–200 characters with a letter (a–z) and something else, not the username")


def user_json(u, codes: dict[int, str] | None = None) -> dict[str, Any]:
    if codes is None:
        codes = svc().user_ward_codes([u])
    return {
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "ward": codes.get(u.ward_id) if u.ward_id is not None else None,
        "disabled": not u.active,
        "email": u.email or None,
        "created_at": ts(u.created_at),
    }


@bp.get("/users")
@token_required()
def list_users():
    scope = tenancy.scope_of(svc(), g.api_user, request.args.get("ward"))
    users = svc().list_users(g.api_user, scope)
    codes = svc().user_ward_codes(users)
    return jsonify([user_json(u, codes) for u in users])


@bp.post("/users")
@token_required()
def create_user():
    data = body(UserIn)
    if data.email:  # checked before the user exists: a bad address creates nobody
        notifications.check_email(data.email)
    user = svc().create_user(data.username, data.password, data.role, data.display_name, ward=data.ward,
                             user=g.api_user)
    if data.email:
        user = notifications.set_email(svc(), g.api_user, user.username, data.email)
    return jsonify(user_json(user)), 201


@bp.patch("/users/<username>")
@token_required()
def update_user(username: str):
    data = body(UserPatchIn)
    if data.email is not None:
        notifications.check_email(data.email)
    user = svc().update_user(username, role=data.role, disabled=data.disabled, password=data.password,
                             ward=data.ward, display_name=data.display_name, user=g.api_user)
    if data.email is not None:
        user = notifications.set_email(svc(), g.api_user, username, data.email)
    return jsonify(user_json(user))


@bp.post("/auth/password")
@token_required()
def change_password():
    data = body(PasswordChangeIn)
    svc().change_password(g.api_user, data.old_password, data.new_password)
    return jsonify({"ok": True, "username": g.api_user.username})


def _paths() -> dict[str, Any]:
    op, path, query = openapi.op, openapi.path, openapi.query
    patch = op("Change a user (admin of her ward, or province_admin): role, disabled, password reset. A user of "
               "another ward answers 404; a ward admin cannot give a province role or move a user to another ward "
               "(403, audited); nobody disables herself (403) or, as the last admin, demotes herself (409)",
               body=UserPatchIn, params=[path("username")], response=out.User, errors=(409,))
    create = op("Create a user (admin: in her ward, roles officer / leader / admin; province_admin: any role, any "
                "ward). 400 invalid_role / weak_password (with field), 403 outside her ward or role, 404 unknown "
                "ward, 409 username_taken", body=UserIn, ok=201, response=out.User, errors=(409,))
    password = op("Change one's own password: 403 wrong_password when old_password is wrong, 400 weak_password",
                  body=PasswordChangeIn, response=out.PasswordChanged)
    return {
        "/users": {
            "get": op("Users of the caller's scope (a ward admin: her ward; province roles: everyone, ?ward=CODE "
                      "filters; officers and leaders: only themselves)", response=list[out.User],
                      params=[query("ward")]),
            "post": create,
        },
        "/users/{username}": {"patch": patch},
        "/auth/password": {"post": password},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([UserIn, UserPatchIn, PasswordChangeIn])
