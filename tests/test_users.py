"""User management (issue 14): who may create, change, disable and reset whom, ward by ward, through the API
(``/api/v1/users``, ``/api/v1/auth/password``) and the panel (``/users``, ``/account/password``).

Two wards: ``phuong`` (the default ward; the ``api`` fixture's admin is its ward admin) and ``xa-b``. Every
cross-ward attempt must be refused with nothing changed and the refusal audited; a disabled user is locked out
of the API and the panel at once."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from test_panel import csrf as page_csrf
from test_panel import login

from broadcaster import tenancy
from broadcaster.app import create_app, runtime
from broadcaster.cli import ensure_admin, main
from broadcaster.config import Config
from broadcaster.models import AuditEntry, User, Ward
from broadcaster.services import ServiceError

#: Every panel test here also runs on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_backends

PASSWORD = "password-123"
USER_KEYS = {"username", "display_name", "role", "ward", "disabled", "email", "created_at"}


class As:
    """API calls as one user (bearer token)."""

    def __init__(self, client, username: str, password: str = PASSWORD) -> None:
        r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 201, r.json
        self.client, self.username, self.token = client, username, r.json["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, url, **kw):
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url, **kw):
        return self.client.post(url, headers=self.headers, **kw)

    def patch(self, url, **kw):
        return self.client.patch(url, headers=self.headers, **kw)


def add_ward(service, code: str, name: str) -> None:
    with service.db.session() as s:
        s.add(Ward(code=code, name=name))


@pytest.fixture
def wards(service):
    """The default ward ``phuong`` and a second ward ``xa-b`` with a ward admin, an officer, and a province_admin
    and province_leader."""
    add_ward(service, "xa-b", "Xã B")
    service.create_user("admin-b", PASSWORD, role="admin", ward="xa-b")
    service.create_user("canbo-b", PASSWORD, role="officer", ward="xa-b")
    service.create_user("tinh", PASSWORD, role="province_admin")
    service.create_user("lanh-dao-tinh", PASSWORD, role="province_leader")
    service.create_user("canbo-a", PASSWORD, role="officer", ward="phuong")
    service.create_user("lanhdao-a", PASSWORD, role="leader", ward="phuong")
    return {"a": "phuong", "b": "xa-b"}


def user_row(service, username: str) -> User | None:
    with service.db.session() as s:
        return s.scalar(select(User).where(User.username == username))


def audit(service, action: str | None = None) -> list[AuditEntry]:
    with service.db.session() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            q = q.where(AuditEntry.action == action)
        return list(s.scalars(q))


def refusals(service) -> list[AuditEntry]:
    return [e for e in audit(service, "policy.refused") if e.detail.get("action") == "users.manage"]


def api_patch(client, who, username: str, **body):
    return client.patch(f"/api/v1/users/{username}", headers=who.headers, json=body)


# --------------------------------------------------------------------------------------------- create
def test_province_admin_creates_any_role_in_any_ward(client, service, wards):
    tinh = As(client, "tinh")
    r = tinh.post("/api/v1/users", json={"username": "admin-c", "password": PASSWORD, "role": "admin",
                                         "ward": "xa-b"})
    assert r.status_code == 201, r.json
    assert set(r.json) == USER_KEYS
    assert r.json["ward"] == "xa-b" and r.json["role"] == "admin" and r.json["disabled"] is False
    assert r.json["display_name"] == "admin-c" and r.json["created_at"]
    r = tinh.post("/api/v1/users", json={"username": "tinh-2", "password": PASSWORD, "role": "province_leader",
                                         "ward": None, "display_name": "Lãnh đạo tỉnh 2"})
    assert r.status_code == 201 and r.json["ward"] is None and r.json["display_name"] == "Lãnh đạo tỉnh 2"
    r = tinh.post("/api/v1/users", json={"username": "tinh-3", "password": PASSWORD, "role": "province_admin"})
    assert r.status_code == 201 and r.json["ward"] is None
    # several wards: a ward role needs its ward; a province role has none; an unknown ward is 404
    r = tinh.post("/api/v1/users", json={"username": "x1", "password": PASSWORD, "role": "officer"})
    assert r.status_code == 409 and r.json["error"]["code"] == "ward_required"
    r = tinh.post("/api/v1/users", json={"username": "x1", "password": PASSWORD, "role": "province_leader",
                                         "ward": "xa-b"})
    assert r.status_code == 400 and r.json["error"]["field"] == "ward"
    r = tinh.post("/api/v1/users", json={"username": "x1", "password": PASSWORD, "role": "officer", "ward": "zz"})
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_ward"
    assert user_row(service, "x1") is None
    created = [e for e in audit(service, "user.create") if e.target == "admin-c"]
    assert created and created[0].user_id == user_row(service, "tinh").id
    assert created[0].ward_id == user_row(service, "admin-c").ward_id


def test_province_roles_list_everyone_and_filter_by_ward(client, wards):
    for who in ("tinh", "lanh-dao-tinh"):
        r = As(client, who).get("/api/v1/users")
        assert r.status_code == 200
        names = {u["username"] for u in r.json}
        assert {"admin", "canbo-a", "admin-b", "canbo-b", "tinh", "lanh-dao-tinh"} <= names
        assert all(set(u) == USER_KEYS for u in r.json)
        assert "password_hash" not in r.text and "api_token" not in r.text
    tinh = As(client, "tinh")
    b = tinh.get("/api/v1/users?ward=xa-b").json
    assert {u["username"] for u in b} == {"admin-b", "canbo-b"} and {u["ward"] for u in b} == {"xa-b"}
    assert tinh.get("/api/v1/users?ward=nowhere").status_code == 404
    # a province leader reads every ward's users but manages nobody
    leader = As(client, "lanh-dao-tinh")
    r = leader.post("/api/v1/users", json={"username": "x", "password": PASSWORD, "role": "officer", "ward": "xa-b"})
    assert r.status_code == 403
    assert api_patch(client, leader, "canbo-b", disabled=True).status_code == 403
    assert [u["disabled"] for u in leader.get("/api/v1/users?ward=xa-b").json] == [False, False]


def test_ward_admin_creates_in_her_ward_only(client, api, service, wards):
    r = api.post("/api/v1/users", json={"username": "canbo-2", "password": PASSWORD, "role": "officer"})
    assert r.status_code == 201 and r.json["ward"] == "phuong"
    r = api.post("/api/v1/users", json={"username": "lanhdao-2", "password": PASSWORD, "role": "leader",
                                        "ward": "phuong"})
    assert r.status_code == 201 and r.json["ward"] == "phuong" and r.json["role"] == "leader"
    r = api.post("/api/v1/users", json={"username": "admin-2", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 201 and r.json["role"] == "admin"
    before = len(refusals(service))
    # another ward, a province role: 403, nothing created, audited
    for body in ({"username": "spy", "password": PASSWORD, "role": "officer", "ward": "xa-b"},
                 {"username": "spy", "password": PASSWORD, "role": "admin", "ward": "xa-b"},
                 {"username": "spy", "password": PASSWORD, "role": "province_admin"},
                 {"username": "spy", "password": PASSWORD, "role": "province_leader", "ward": None},
                 {"username": "spy", "password": PASSWORD, "role": "province_admin", "ward": "phuong"}):
        r = api.post("/api/v1/users", json=body)
        assert r.status_code == 403, (body, r.json)
        assert r.json["error"]["code"] == "forbidden"
    assert user_row(service, "spy") is None
    assert len(refusals(service)) == before + 5
    # bad input
    r = api.post("/api/v1/users", json={"username": "x", "password": PASSWORD, "role": "boss"})
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_role" and r.json["error"]["field"] == "role"
    r = api.post("/api/v1/users", json={"username": "x", "password": "short", "role": "officer"})
    assert r.status_code == 400 and r.json["error"]["code"] == "weak_password"
    assert r.json["error"]["field"] == "password"
    r = api.post("/api/v1/users", json={"username": "x-long-name", "password": "x-long-name", "role": "officer"})
    assert r.status_code == 400 and r.json["error"]["code"] == "weak_password"
    r = api.post("/api/v1/users", json={"username": "a b", "password": PASSWORD, "role": "officer"})
    assert r.status_code == 400 and r.json["error"]["field"] == "username"
    r = api.post("/api/v1/users", json={"username": "x", "password": PASSWORD, "role": "officer", "ward": "zz"})
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_ward"
    r = api.post("/api/v1/users", json={"username": "canbo-b", "password": PASSWORD, "role": "officer"})
    assert r.status_code == 409 and r.json["error"]["code"] == "username_taken"
    assert user_row(service, "x") is None and user_row(service, "canbo-b").ward_id != user_row(service, "admin").ward_id


def test_ward_admin_lists_only_her_ward(api, wards):
    r = api.get("/api/v1/users")
    assert r.status_code == 200
    names = {u["username"] for u in r.json}
    assert names == {"admin", "canbo-a", "lanhdao-a"}
    assert {u["ward"] for u in r.json} == {"phuong"}
    assert api.get("/api/v1/users?ward=phuong").json == r.json
    assert api.get("/api/v1/users?ward=xa-b").json == []


def test_officers_and_leaders_see_only_themselves_and_manage_nobody(client, service, wards):
    for name in ("canbo-a", "lanhdao-a"):
        who = As(client, name)
        r = who.get("/api/v1/users")
        assert r.status_code == 200 and [u["username"] for u in r.json] == [name]
        r = who.post("/api/v1/users", json={"username": "new-" + name, "password": PASSWORD, "role": "officer",
                                            "ward": "phuong"})
        assert r.status_code == 403 and user_row(service, "new-" + name) is None
        r = api_patch(client, who, "canbo-a", disabled=True)
        assert r.status_code == 403
        r = api_patch(client, who, name, role="admin")
        assert r.status_code == 403
    assert user_row(service, "canbo-a").active and user_row(service, "lanhdao-a").role == "leader"


# ---------------------------------------------------------------------------------------------- patch
def test_ward_admin_patches_her_ward_only(client, api, service, wards):
    b_before = {n: (user_row(service, n).role, user_row(service, n).active) for n in ("canbo-b", "admin-b", "tinh")}
    for name in ("canbo-b", "admin-b", "tinh", "lanh-dao-tinh", "nobody"):
        for body in ({"disabled": True}, {"role": "leader"}, {"password": "new-password-9"}):
            r = api_patch(client, api, name, **body)
            assert r.status_code == 404, (name, body, r.json)
            assert r.json["error"]["code"] == "not_found"
    assert {n: (user_row(service, n).role, user_row(service, n).active) for n in b_before} == b_before
    As(client, "canbo-b")  # her password is unchanged
    before = len(refusals(service))
    for body in ({"role": "province_admin"}, {"role": "province_leader"}, {"ward": "xa-b"}):
        r = api_patch(client, api, "canbo-a", **body)
        assert r.status_code == 403, (body, r.json)
    assert len(refusals(service)) == before + 3
    row = user_row(service, "canbo-a")
    assert row.role == "officer" and row.ward_id == user_row(service, "admin").ward_id
    r = api_patch(client, api, "canbo-a", role="boss")
    assert r.status_code == 400 and r.json["error"]["field"] == "role"
    r = api_patch(client, api, "canbo-a", role="leader")
    assert r.status_code == 200 and r.json["role"] == "leader" and r.json["ward"] == "phuong"
    assert set(r.json) == USER_KEYS
    r = api_patch(client, api, "canbo-a", password="short")
    assert r.status_code == 400 and r.json["error"]["code"] == "weak_password"
    r = api_patch(client, api, "canbo-a", password="reset-password-1")
    assert r.status_code == 200
    As(client, "canbo-a", "reset-password-1")
    entries = audit(service)
    assert any(e.action == "user.role" and e.target == "canbo-a" and e.detail["role"] == "leader" for e in entries)
    assert any(e.action == "user.password_reset" and e.target == "canbo-a" for e in entries)
    assert "reset-password-1" not in json.dumps([e.detail for e in entries])


def test_nobody_disables_herself_or_leaves_no_admin(client, api, service, wards):
    r = api_patch(client, api, "admin", disabled=True)
    assert r.status_code == 403 and r.json["error"]["code"] == "cannot_disable_self"
    assert user_row(service, "admin").active
    assert api.get("/api/v1/users").status_code == 200
    # the only admin of her ward cannot demote herself
    r = api_patch(client, api, "admin", role="officer")
    assert r.status_code == 409 and r.json["error"]["code"] == "last_admin"
    assert user_row(service, "admin").role == "admin"
    tinh = As(client, "tinh")
    r = api_patch(client, tinh, "tinh", disabled=True)
    assert r.status_code == 403 and user_row(service, "tinh").active
    r = api_patch(client, tinh, "tinh", role="admin", ward="phuong")
    assert r.status_code == 409 and user_row(service, "tinh").role == "province_admin"
    # with a second admin, she may step down
    assert api.post("/api/v1/users", json={"username": "admin-2", "password": PASSWORD, "role": "admin"}
                    ).status_code == 201
    r = api_patch(client, api, "admin", role="leader")
    assert r.status_code == 200 and r.json["role"] == "leader"
    assert api.get("/api/v1/users").json == [api.get("/api/v1/users").json[0]]  # now only herself


def test_province_admin_patches_anyone(client, service, wards):
    tinh = As(client, "tinh")
    r = api_patch(client, tinh, "canbo-a", ward="xa-b")
    assert r.status_code == 200 and r.json["ward"] == "xa-b" and r.json["role"] == "officer"
    r = api_patch(client, tinh, "canbo-a", role="province_leader")
    assert r.status_code == 200 and r.json["ward"] is None and r.json["role"] == "province_leader"
    r = api_patch(client, tinh, "canbo-a", role="officer")  # back to a ward role: several wards, say which
    assert r.status_code == 409 and r.json["error"]["code"] == "ward_required"
    r = api_patch(client, tinh, "canbo-a", role="officer", ward="phuong")
    assert r.status_code == 200 and r.json["ward"] == "phuong"
    r = api_patch(client, tinh, "admin-b", disabled=True)
    assert r.status_code == 200 and r.json["disabled"] is True
    r = api_patch(client, tinh, "admin-b", disabled=False, password="fresh-password-2")
    assert r.status_code == 200 and r.json["disabled"] is False
    As(client, "admin-b", "fresh-password-2")
    r = api_patch(client, tinh, "lanh-dao-tinh", role="province_admin")
    assert r.status_code == 200 and r.json["role"] == "province_admin"
    r = api_patch(client, tinh, "nobody", disabled=True)
    assert r.status_code == 404
    actions = [e.action for e in audit(service) if e.target in ("canbo-a", "admin-b", "lanh-dao-tinh")]
    assert {"user.role", "user.disable", "user.enable", "user.password_reset"} <= set(actions)


# ------------------------------------------------------------------------------------------- disabled
def test_disabled_user_is_locked_out_at_once(app, client, api, service, wards):
    officer = As(client, "canbo-a")
    assert officer.get("/api/v1/zones").status_code == 200
    web = app.test_client()
    assert login(web, "canbo-a", PASSWORD).status_code == 302
    assert web.get("/").status_code == 200
    r = api_patch(client, api, "canbo-a", disabled=True)
    assert r.status_code == 200 and r.json["disabled"] is True
    assert user_row(service, "canbo-a").api_token_hash is None
    # API token: refused at once
    r = officer.get("/api/v1/zones")
    assert r.status_code == 401
    # open web session: logged out at its next request
    r = web.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # no new login, neither web nor API
    assert login(web, "canbo-a", PASSWORD).status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "canbo-a", "password": PASSWORD})
    assert r.status_code == 401
    assert service.authenticate("canbo-a", PASSWORD) is None
    (entry,) = [e for e in audit(service, "user.disable") if e.target == "canbo-a"]
    assert entry.user_id == user_row(service, "admin").id and PASSWORD not in json.dumps(entry.detail)
    # enabled again: she logs in again (the old token stays revoked)
    assert api_patch(client, api, "canbo-a", disabled=False).status_code == 200
    assert officer.get("/api/v1/zones").status_code == 401
    assert login(web, "canbo-a", PASSWORD).status_code == 302
    assert web.get("/").status_code == 200
    assert any(e.target == "canbo-a" for e in audit(service, "user.enable"))


# ------------------------------------------------------------------------------------------ own password
def test_change_own_password(client, service, wards):
    officer = As(client, "canbo-a")
    r = officer.post("/api/v1/auth/password", json={"old_password": "wrong-password", "new_password": "new-pass-77"})
    assert r.status_code == 403 and r.json["error"]["code"] == "wrong_password"
    assert r.json["error"]["field"] == "old_password"
    r = officer.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 400 and r.json["error"]["code"] == "weak_password"
    assert r.json["error"]["field"] == "new_password"
    r = officer.post("/api/v1/auth/password", json={"old_password": PASSWORD})
    assert r.status_code == 400
    r = officer.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "new-pass-77"})
    assert r.status_code == 200 and r.json["ok"] is True
    assert officer.get("/api/v1/zones").status_code == 200  # her token keeps working
    assert client.post("/api/v1/auth/token", json={"username": "canbo-a", "password": PASSWORD}).status_code == 401
    As(client, "canbo-a", "new-pass-77")
    assert client.post("/api/v1/auth/password", json={"old_password": "a", "new_password": "b"}).status_code == 401
    entries = audit(service)
    assert any(e.action == "user.password_change" and e.target == "canbo-a" for e in entries)
    assert "new-pass-77" not in json.dumps([e.detail for e in entries])


# ------------------------------------------------------------------------------------- service and CLI
def test_service_create_user_keeps_its_old_signature(service):
    user = service.create_user("lanh-dao", PASSWORD, role="leader")  # one ward: that ward
    with service.db.session() as s:
        only = tenancy.default_ward(s)
    assert user.ward_id == only.id and user.role == "leader"
    add_ward(service, "xa-b", "Xã B")
    with pytest.raises(ServiceError) as exc:
        service.create_user("can-bo", PASSWORD, role="officer")
    assert exc.value.code == "ward_required"
    assert service.create_user("can-bo", PASSWORD, role="officer", ward="xa-b").ward_id != only.id
    assert service.create_user("tinh", PASSWORD, role="province_admin").ward_id is None


def test_bootstrap_admin_is_a_province_admin(service, tmp_path, monkeypatch):
    monkeypatch.setattr(service.config, "ADMIN_USER", "quan-tri")  # LOAPHUONG_ADMIN_USER
    monkeypatch.setattr(service.config, "ADMIN_PASSWORD", None)
    username, password = ensure_admin(service, tmp_path)
    row = user_row(service, "quan-tri")
    assert username == "quan-tri" and password and row.role == "province_admin" and row.ward_id is None
    assert ensure_admin(service, tmp_path) == (username, password)
    # a bootstrap admin from before the province roles is promoted
    monkeypatch.setattr(service.config, "ADMIN_USER", "admin")
    monkeypatch.setattr(service.config, "ADMIN_PASSWORD", "admin-password-2")
    assert ensure_admin(service, tmp_path) == ("admin", "admin-password-2")
    row = user_row(service, "admin")
    assert row.role == "province_admin" and row.ward_id is None
    assert service.authenticate("admin", "admin-password-2") is not None


def test_cli_create_user_takes_ward_and_province_roles(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOAPHUONG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LOAPHUONG_DATABASE_URL", raising=False)
    assert main(["create-user", "lanh-dao", "--role", "leader", "--password", PASSWORD]) == 0
    assert main(["create-user", "tinh", "--role", "province_leader", "--password", PASSWORD]) == 0
    assert main(["create-user", "can-bo", "--ward", "khong-co", "--password", PASSWORD]) == 2
    app = create_app(Config())
    try:
        service = runtime(app).service
        assert user_row(service, "lanh-dao").ward_id is not None
        assert user_row(service, "tinh").role == "province_leader" and user_row(service, "tinh").ward_id is None
        assert user_row(service, "can-bo") is None
    finally:
        runtime(app).db.dispose()


def test_openapi_documents_user_management(client):
    doc = client.get("/api/v1/openapi.json").json
    assert {"get", "post"} <= set(doc["paths"]["/users"])
    assert "patch" in doc["paths"]["/users/{username}"]
    assert "post" in doc["paths"]["/auth/password"] and "post" in doc["paths"]["/auth/token"]
    schemas = doc["components"]["schemas"]
    assert {"username", "password", "role", "ward"} <= set(schemas["UserIn"]["properties"])
    assert {"role", "disabled", "password"} <= set(schemas["UserPatchIn"]["properties"])
    assert {"old_password", "new_password"} <= set(schemas["PasswordChangeIn"]["properties"])


# ------------------------------------------------------------------------------------------------ web
def web_login(app, username: str, password: str = PASSWORD):
    web = app.test_client()
    assert login(web, username, password).status_code == 302
    return web


def token_of(web, url: str) -> str:
    return page_csrf(web, url)


def test_users_page_for_a_ward_admin(app, service, wards):
    web = web_login(app, "admin", "admin-password-1")
    page = web.get("/users")
    assert page.status_code == 200
    assert 'href="/users"' in web.get("/").text  # the menu shows it to admins
    assert "canbo-a" in page.text and "lanhdao-a" in page.text
    assert "canbo-b" not in page.text and "admin-b" not in page.text and "tinh" not in page.text
    assert "cán bộ" in page.text and "lãnh đạo" in page.text  # Vietnamese role names
    assert "province_admin" not in page.text  # she cannot give province roles
    assert 'data-label="Vai trò"' in page.text
    csrf = token_of(web, "/users")
    # an error keeps the input and speaks Vietnamese
    r = web.post("/users", data={"username": "can-bo-moi", "display_name": "Nguyễn Văn A", "password": "short",
                                 "role": "officer", "csrf_token": csrf})
    assert r.status_code == 400
    assert "Mật khẩu quá yếu" in r.text and 'value="can-bo-moi"' in r.text and 'value="Nguyễn Văn A"' in r.text
    r = web.post("/users", data={"username": "canbo-b", "password": PASSWORD, "role": "officer", "csrf_token": csrf})
    assert r.status_code == 409 and "Tên đăng nhập này đã có người dùng" in r.text
    # a province role through a hand-made form: refused, nothing created
    r = web.post("/users", data={"username": "spy", "password": PASSWORD, "role": "province_admin",
                                 "csrf_token": csrf})
    assert r.status_code == 403 and user_row(service, "spy") is None
    r = web.post("/users", data={"username": "spy", "password": PASSWORD, "role": "officer", "ward": "xa-b",
                                 "csrf_token": csrf})
    assert r.status_code == 403 and user_row(service, "spy") is None
    r = web.post("/users", data={"username": "can-bo-moi", "display_name": "Nguyễn Văn A", "password": PASSWORD,
                                 "role": "officer", "csrf_token": csrf})
    assert r.status_code == 302
    row = user_row(service, "can-bo-moi")
    assert row.display_name == "Nguyễn Văn A" and row.ward_id == user_row(service, "admin").ward_id
    # change role, reset password, disable, enable
    assert web.post("/users/can-bo-moi/role", data={"role": "leader", "csrf_token": csrf}).status_code == 302
    assert user_row(service, "can-bo-moi").role == "leader"
    r = web.post("/users/can-bo-moi/role", data={"role": "province_admin", "csrf_token": csrf})
    assert r.status_code == 403 and user_row(service, "can-bo-moi").role == "leader"
    assert web.post("/users/can-bo-moi/password", data={"password": "reset-pass-3", "csrf_token": csrf}
                    ).status_code == 302
    assert service.authenticate("can-bo-moi", "reset-pass-3") is not None
    assert web.post("/users/can-bo-moi/disable", data={"csrf_token": csrf}).status_code == 302
    assert not user_row(service, "can-bo-moi").active
    assert "Đã khóa" in web.get("/users").text
    assert web.post("/users/can-bo-moi/enable", data={"csrf_token": csrf}).status_code == 302
    assert user_row(service, "can-bo-moi").active
    # another ward's user: not found, unchanged
    r = web.post("/users/canbo-b/disable", data={"csrf_token": csrf})
    assert r.status_code == 404 and user_row(service, "canbo-b").active
    r = web.post("/users/admin/disable", data={"csrf_token": csrf})
    assert r.status_code == 403 and "tự khóa" in r.text and user_row(service, "admin").active


def test_users_page_for_a_province_admin(app, service, wards):
    web = web_login(app, "tinh")
    page = web.get("/users")
    assert page.status_code == 200
    assert all(n in page.text for n in ("canbo-a", "canbo-b", "admin-b", "lanh-dao-tinh"))
    assert "quản trị viên tỉnh" in page.text and "Xã B" in page.text
    filtered = web.get("/users?ward=xa-b").text
    assert "canbo-b" in filtered and "canbo-a" not in filtered
    web.get("/scope?ward=xa-b")  # the header's ward picker
    picked = web.get("/users").text
    assert "canbo-b" in picked and "canbo-a" not in picked and 'value="xa-b" selected' in picked
    web.get("/scope?ward=")
    csrf = token_of(web, "/users")
    r = web.post("/users", data={"username": "admin-c", "password": PASSWORD, "role": "admin", "ward": "xa-b",
                                 "csrf_token": csrf})
    assert r.status_code == 302
    assert user_row(service, "admin-c").ward_id == user_row(service, "admin-b").ward_id
    r = web.post("/users", data={"username": "tinh-2", "password": PASSWORD, "role": "province_leader", "ward": "",
                                 "csrf_token": csrf})
    assert r.status_code == 302 and user_row(service, "tinh-2").ward_id is None
    assert web.post("/users/canbo-b/disable", data={"csrf_token": csrf}).status_code == 302
    assert not user_row(service, "canbo-b").active


def test_officers_get_no_users_page_but_change_their_password(app, service, wards):
    web = web_login(app, "canbo-a")
    home = web.get("/").text
    assert 'href="/users"' not in home and 'href="/account/password"' in home
    assert web.get("/users").status_code == 403
    csrf = token_of(web, "/account/password")
    assert web.post("/users", data={"username": "x", "password": PASSWORD, "role": "officer",
                                    "csrf_token": csrf}).status_code == 403
    assert user_row(service, "x") is None
    r = web.post("/account/password", data={"old_password": "wrong-one", "new_password": "new-pass-88",
                                            "confirm_password": "new-pass-88", "csrf_token": csrf})
    assert r.status_code == 403 and "Mật khẩu hiện tại không đúng" in r.text
    r = web.post("/account/password", data={"old_password": PASSWORD, "new_password": "new-pass-88",
                                            "confirm_password": "new-pass-89", "csrf_token": csrf})
    assert r.status_code == 400 and "không khớp" in r.text
    r = web.post("/account/password", data={"old_password": PASSWORD, "new_password": "abc",
                                            "confirm_password": "abc", "csrf_token": csrf})
    assert r.status_code == 400 and "Mật khẩu quá yếu" in r.text
    r = web.post("/account/password", data={"old_password": PASSWORD, "new_password": "new-pass-88",
                                            "confirm_password": "new-pass-88", "csrf_token": csrf})
    assert r.status_code == 302
    assert "Đã đổi mật khẩu" in web.get("/account/password").text
    assert service.authenticate("canbo-a", "new-pass-88") is not None
    assert service.authenticate("canbo-a", PASSWORD) is None
    assert re.search(r"Đổi mật khẩu", web.get("/").text)
