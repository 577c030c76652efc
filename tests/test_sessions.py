"""Sessions, login and API tokens (issue 13, "a panel that holds up to a hostile internet").

Regression tests for an outside probe's findings: an open redirect after login, sessions and remember-me cookies
that outlived logout, cookie flags, unlimited password guessing (web and API, per username and per client, in a
storage every worker shares), a timing difference between known and unknown usernames, and a new API login that
revoked the previous token. See broadcaster/logins.py, broadcaster/web/sessions.py, broadcaster/api/routes_auth.py.
"""

from __future__ import annotations

import statistics
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits.storage import storage_from_string
from people import PASSWORD, As
from sqlalchemy import select, text
from test_panel import csrf

from broadcaster import logins
from broadcaster.api import openapi
from broadcaster.app import create_app, runtime
from broadcaster.config import Config, TestConfig
from broadcaster.db import Database
from broadcaster.models import AuditEntry, LoginSession, User
from broadcaster.ratelimit_storage import DatabaseStorage
from broadcaster.web.sessions import limiter_of
from devices.registry import token_hash

ADMIN = ("admin", "admin-password-1")
DAYS_30 = 30 * 24 * 3600


@pytest.fixture
def officer(service):
    service.create_user("canbo-a", PASSWORD, role="officer")
    return "canbo-a"


def make_app(tmp_path, database_url, name: str = "panel", **overrides):
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    app = create_app(TestConfig(tmp_path / name, DATABASE_URL=database_url, **overrides))
    if runtime(app).service.get_user_by_name(ADMIN[0]) is None:
        runtime(app).service.create_user(*ADMIN, role="admin")
    return app


def audit(service, action: str) -> list[AuditEntry]:
    with service.db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the whole header, flags included)."""
    return {next(iter(SimpleCookie(h))): h for h in response.headers.getlist("Set-Cookie")}


def web_login(client, username=ADMIN[0], password=ADMIN[1], next_url: str | None = None, **kw):
    token = csrf(client, "/login")
    url = "/login" if next_url is None else "/login?next=" + next_url
    return client.post(url, data={"username": username, "password": password, "csrf_token": token}, **kw)


def api_login(client, username=ADMIN[0], password=ADMIN[1], **kw):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password}, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------------------ open redirect
@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%5Cevil", "https://evil", "//evil", "/%0A/evil.example",
                                    "%20//evil", "/%0D%0A/evil", "http:evil", "\\\\evil", "/\\evil"])
def test_login_never_redirects_off_site(client, target):
    r = web_login(client, next_url=target)
    assert r.status_code == 302
    assert r.headers["Location"] == "/", target


def test_login_follows_a_same_site_next(client):
    r = web_login(client, next_url="/schedules%3Fday%3D2")
    assert r.status_code == 302 and r.headers["Location"] == "/schedules?day=2"


def test_safe_next_examples():
    assert logins.safe_next("/\t/evil.example/") is None
    assert logins.safe_next("/\\evil") is None
    assert logins.safe_next("https://evil") is None
    assert logins.safe_next("//evil") is None
    assert logins.safe_next(" \x00//evil") is None
    assert logins.safe_next("") is None and logins.safe_next(None) is None
    assert logins.safe_next("/timeline?zone=to-3") == "/timeline?zone=to-3"


_URLISH = st.text(alphabet=st.sampled_from(list("/\\:.@?#%\t\n\r \x00\x0b\x0c\x7fahttpsevil") + ["\u3000", "\uff0f"]),
                  max_size=24)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_URLISH, st.text(max_size=40), _URLISH.map(lambda s: "/" + s)))
def test_no_accepted_next_resolves_to_another_host(value):
    accepted = logins.safe_next(value)
    if accepted is None:
        return
    for candidate in (accepted, accepted.strip()):
        resolved = urlsplit(urljoin("http://panel/", candidate))
        assert (resolved.scheme, resolved.netloc) == ("http", "panel"), (value, accepted)
    assert accepted.startswith("/") and not accepted.startswith("//") and "\\" not in accepted


# ------------------------------------------------------------------------------------------ logout
def test_logout_invalidates_the_session_cookie_and_the_remember_cookie(app, service):
    browser = app.test_client()
    assert web_login(browser).status_code == 302
    assert browser.get("/").status_code == 200
    old_session = browser.get_cookie("session").value
    old_remember = browser.get_cookie("remember_token").value

    # before logout, the remember-me cookie alone logs in (so the replays below prove something)
    other = app.test_client()
    other.set_cookie("remember_token", old_remember)
    assert other.get("/").status_code == 200

    r = browser.post("/logout", data={"csrf_token": csrf(browser, "/")})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert browser.get("/").status_code == 302

    replay = app.test_client()
    replay.set_cookie("session", old_session)
    r = replay.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    replay = app.test_client()
    replay.set_cookie("remember_token", old_remember)
    r = replay.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # the browser that logged in with the remember cookie before the logout is out too
    assert other.get("/").status_code == 302
    assert [e.target for e in audit(service, "user.logout")] == ["admin"]
    assert [e.target for e in audit(service, "user.login")] == ["admin"]


def test_an_old_numeric_session_id_logs_nobody_in(app):
    """Sessions made before 0004 carried the user id: they load nobody now (users log in once again)."""
    browser = app.test_client()
    with browser.session_transaction() as sess:
        sess["_user_id"] = "1"
        sess["_fresh"] = True
    assert browser.get("/").status_code == 302


# ------------------------------------------------------------------------------------------ cookie flags
def test_cookie_flags_over_http(client):
    r = web_login(client)
    cookies = set_cookies(r)
    session, remember = cookies["session"], cookies["remember_token"]
    for header in (session, remember):
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    max_age = int(SimpleCookie(remember)["remember_token"]["max-age"])
    assert 0 < max_age <= DAYS_30


def test_cookies_are_secure_over_https(client):
    r = web_login(client, base_url="https://localhost")
    for header in set_cookies(r).values():
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(tmp_path, database_url):
    # (Flask-WTF wants a same-site Referer on HTTPS, as browsers send it under Referrer-Policy: same-origin)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "Referer": "https://localhost/login"}
    untrusted = make_app(tmp_path, database_url, "untrusted").test_client()
    r = web_login(untrusted, headers=forwarded)
    assert all("Secure" not in h for h in set_cookies(r).values())
    trusted_app = make_app(tmp_path, database_url, "trusted", TRUSTED_PROXIES=1)
    trusted = trusted_app.test_client()
    r = web_login(trusted, headers=forwarded)
    assert r.status_code == 302 and all("Secure" in h for h in set_cookies(r).values())

    (entry,) = audit(runtime(trusted_app).service, "user.login")[-1:]
    assert entry.detail["address"] == "203.0.113.9"  # the client behind the proxy


def test_secure_cookies_always(tmp_path, database_url):
    client = make_app(tmp_path, database_url, SECURE_COOKIES="1").test_client()
    assert all("Secure" in h for h in set_cookies(web_login(client)).values())


def test_remember_me_lasts_at_most_30_days(tmp_path, database_url, service):
    client = make_app(tmp_path, database_url, "long", REMEMBER_DAYS=365).test_client()
    remember = set_cookies(web_login(client))["remember_token"]
    assert int(SimpleCookie(remember)["remember_token"]["max-age"]) == DAYS_30
    with service.db.session() as s:
        row = s.scalars(select(LoginSession).where(LoginSession.kind == "web")).one()
    assert (row.expires_at - row.created_at).days == 30


# ------------------------------------------------------------------------------------------ rate limits
def test_web_login_is_rate_limited_per_username(client, service):
    for _ in range(10):
        assert web_login(client, password="wrong-password").status_code == 401
    r = web_login(client)  # the right password: still refused while locked
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert "Đăng nhập sai quá nhiều lần" in r.text
    assert web_login(client).status_code == 429
    # another username from the same address is not locked by this
    service.create_user("canbo-b", PASSWORD, role="officer")
    assert web_login(client, "canbo-b", PASSWORD).status_code == 302
    locked = audit(service, "user.login_locked")
    assert len(locked) == 1 and locked[0].target == "admin" and locked[0].detail["per"] == "username"
    assert len(audit(service, "user.login_failed")) == 10
    assert all("wrong-password" not in str(e.detail) for e in audit(service, "user.login_failed"))


def test_api_login_is_rate_limited_per_username_and_shares_the_count_with_the_web(client):
    for _ in range(5):
        assert web_login(client, password="wrong-password").status_code == 401
    for _ in range(5):
        assert api_login(client, password="wrong-password").status_code == 401
    r = api_login(client)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json["error"]["code"] == "rate_limited" and r.json["error"]["message"]


def test_login_is_rate_limited_per_client(tmp_path, database_url):
    app = make_app(tmp_path, database_url, LOGIN_LIMIT_PER_CLIENT="6 per 15 minutes")
    client = app.test_client()
    for n in range(3):
        assert api_login(client, f"khong-co-{n}", "x").status_code == 401
        assert web_login(client, f"khong-co-web-{n}", "x").status_code == 401
    r = api_login(client, "khong-co-9", "x")
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited" and "Retry-After" in r.headers
    r = web_login(client)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # another client address is not affected
    elsewhere = app.test_client()
    assert api_login(elsewhere, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 201


def test_successful_logins_are_not_counted(client):
    for _ in range(25):
        assert api_login(client).status_code == 201


def test_the_limiter_is_on_in_the_default_configuration(tmp_path, monkeypatch):
    for name in ("LOGIN_LIMIT_PER_USER", "LOGIN_LIMIT_PER_CLIENT", "RATELIMIT_STORAGE_URI", "DATABASE_URL",
                 "START_SERVICES"):
        monkeypatch.delenv(f"LOAPHUONG_{name}", raising=False)
    app = create_app(Config(DATA_DIR=tmp_path / "default"))
    limiter = limiter_of(app)
    assert limiter.enabled and isinstance(limiter.storage, DatabaseStorage)
    runtime(app).service.create_user("lan", PASSWORD, role="officer")
    client = app.test_client()
    for _ in range(10):
        assert api_login(client, "lan", "wrong-password").status_code == 401
    assert api_login(client, "lan", PASSWORD).status_code == 429
    runtime(app).db.dispose()


@pytest.mark.both_backends
def test_two_panels_on_one_database_share_the_counters(tmp_path, database_url):
    """Two app instances (two workers) on the same database: the limit is one, so not in-process memory."""

    first = make_app(tmp_path, database_url, "worker-1")
    second = make_app(tmp_path, database_url, "worker-2")
    assert isinstance(limiter_of(first).storage, DatabaseStorage)
    a, b = first.test_client(), second.test_client()
    for _ in range(5):
        assert api_login(a, password="wrong-password").status_code == 401
        assert api_login(b, password="wrong-password").status_code == 401
    assert api_login(a).status_code == 429
    assert api_login(b).status_code == 429
    for app in (first, second):
        runtime(app).db.dispose()


@pytest.mark.both_backends
def test_database_storage_counts_expires_and_clears(service):
    storage = storage_from_string("loaphuong-db://", engine=service.db.engine)
    assert storage.check()
    assert storage.get("k") == 0
    assert [storage.incr("k", 1) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 1, amount=2) == 5 and storage.get("k") == 5
    assert time.time() < storage.get_expiry("k") <= time.time() + 1
    time.sleep(1.1)
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1  # a new window
    storage.incr("other", 60)
    storage.clear("k")
    assert storage.get("k") == 0 and storage.get("other") == 1
    assert storage.reset() >= 1 and storage.get("other") == 0


# ------------------------------------------------------------------------------------------ timing
def test_an_unknown_username_costs_the_same_as_a_known_one(service, officer):
    def median_s(username: str) -> float:
        times = []
        for _ in range(20):
            start = time.perf_counter()
            assert service.authenticate(username, "wrong-password") is None
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    service.authenticate("warm-up", "x")  # the dummy hash is made once per process
    known, unknown = median_s(officer), median_s("khong-ai-ca")
    assert 0.5 < unknown / known < 2.0, (known, unknown)
    assert known > 0.001  # a real password hash was computed for both


# ------------------------------------------------------------------------------------------ API tokens
def test_a_second_login_keeps_the_first_token_and_tokens_are_listed_and_revoked(client, service, officer):
    first, second = As(client, officer), As(client, officer)
    assert first.get("/api/v1/zones").status_code == 200 and second.get("/api/v1/zones").status_code == 200
    listed = first.get("/api/v1/auth/tokens").json
    assert len(listed) == 2
    assert {t["current"] for t in listed} == {True, False}
    assert set(listed[0]) == {"id", "created_at", "last_used_at", "label", "address", "current"}
    tokens = {first.headers["Authorization"][7:], second.headers["Authorization"][7:]}
    assert not any(tok in str(listed) for tok in tokens)
    with service.db.session() as s:
        stored = set(s.scalars(select(LoginSession.secret_hash).where(LoginSession.kind == "api")))
    assert stored == {token_hash(t) for t in tokens}  # only hashes

    mine = next(t["id"] for t in listed if t["current"])
    other = next(t["id"] for t in listed if not t["current"])
    assert first.delete(f"/api/v1/auth/tokens/{other}").status_code == 204
    assert second.get("/api/v1/zones").status_code == 401
    assert first.get("/api/v1/zones").status_code == 200
    assert first.delete(f"/api/v1/auth/tokens/{other}").status_code == 404  # already revoked
    assert [t["id"] for t in first.get("/api/v1/auth/tokens").json] == [mine]
    assert any(e.detail.get("token_id") == other for e in audit(service, "user.api_token_revoked"))


def test_nobody_revokes_another_users_token(client, officer):
    admin, lan = As(client, ADMIN[0], ADMIN[1]), As(client, officer)
    admins = admin.get("/api/v1/auth/tokens").json
    r = lan.delete(f"/api/v1/auth/tokens/{admins[0]['id']}")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    assert admin.get("/api/v1/zones").status_code == 200


def test_api_logout_revokes_the_token_of_the_request(client, service, officer):
    r = api_login(client, officer, PASSWORD)
    assert r.status_code == 201 and r.json["token_id"]
    token = r.json["token"]
    keep = As(client, officer)
    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/zones", headers=bearer(token)).status_code == 401
    assert client.delete("/api/v1/auth/token", headers=bearer(token)).status_code == 401
    assert keep.get("/api/v1/zones").status_code == 200
    assert [e.target for e in audit(service, "user.logout")] == [officer]


def test_openapi_documents_the_token_routes(app):
    doc = openapi.spec()
    assert "get" in doc["paths"]["/auth/tokens"]
    assert {"204", "404"} <= set(doc["paths"]["/auth/tokens/{token_id}"]["delete"]["responses"])
    assert "204" in doc["paths"]["/auth/token"]["delete"]["responses"]
    assert "post" in doc["paths"]["/auth/token"]


# ------------------------------------------------------------------------------------------ lock-outs
def _patch(client, admin, username, **body):
    return client.patch(f"/api/v1/users/{username}", headers=admin.headers, json=body)


@pytest.mark.parametrize("change", [{"disabled": True}, {"password": "reset-pass-42"}, {"role": "leader"}])
def test_disable_reset_or_role_change_ends_every_token_and_session(app, client, service, officer, change):
    admin = As(client, *ADMIN)
    tokens = [As(client, officer), As(client, officer)]
    browser = app.test_client()
    assert web_login(browser, officer, PASSWORD).status_code == 302 and browser.get("/").status_code == 200
    remember = browser.get_cookie("remember_token").value
    assert _patch(client, admin, officer, **change).status_code == 200
    for t in tokens:
        assert t.get("/api/v1/zones").status_code == 401
    assert browser.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("remember_token", remember)
    assert replay.get("/").status_code == 302
    assert admin.get("/api/v1/zones").status_code == 200  # the admin's own login is untouched
    with service.db.session() as s:
        live = s.scalar(select(LoginSession.id).where(LoginSession.user_id == service.get_user_by_name(officer).id,
                                                      LoginSession.revoked_at.is_(None)))
    assert live is None


def test_own_password_change_keeps_only_the_login_it_was_made_from(client, officer):
    here, elsewhere = As(client, officer), As(client, officer)
    r = here.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "new-pass-77"})
    assert r.status_code == 200
    assert here.get("/api/v1/zones").status_code == 200
    assert elsewhere.get("/api/v1/zones").status_code == 401


# ------------------------------------------------------------------------------------------ migration
def test_a_token_from_before_0004_keeps_working_after_the_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    db.upgrade("0003_tenancy")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, display_name, password_hash, role, api_token_hash, active, "
                          "created_at) VALUES ('lan', 'Lan', 'x', 'officer', :h, 1, '2026-01-01 00:00:00')"),
                     {"h": token_hash("old-token-of-lan")})
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT api_token_hash FROM users")).scalar_one() is None
    db.dispose()
    app = create_app(TestConfig(tmp_path / "panel", DATABASE_URL=url))
    client = app.test_client()
    assert client.get("/api/v1/zones", headers=bearer("old-token-of-lan")).status_code == 200
    listed = client.get("/api/v1/auth/tokens", headers=bearer("old-token-of-lan")).json
    assert len(listed) == 1 and listed[0]["current"] and "before 0004" in listed[0]["label"]
    assert client.get("/api/v1/zones", headers=bearer("another")).status_code == 401


def test_user_rows_keep_no_token(client, service):
    As(client, *ADMIN)
    with service.db.session() as s:
        assert s.scalar(select(User.api_token_hash).where(User.username == "admin")) is None


# ------------------------------------------------------------------------------------------ account page
def test_the_account_page_lists_my_sessions_and_ends_one(app, client, service, officer):
    here, there = app.test_client(), app.test_client()
    assert web_login(here, officer, PASSWORD).status_code == 302
    assert web_login(there, officer, PASSWORD, headers={"User-Agent": "Firefox-on-the-other-PC"}).status_code == 302
    As(client, officer)
    admin = As(client, *ADMIN)
    page = here.get("/account/password").text
    assert "Phiên đăng nhập của tôi" in page and "Firefox-on-the-other-PC" in page and "(phiên này)" in page
    assert page.count("/revoke") == 3  # two browsers and one API token (not the admin's)
    with service.db.session() as s:
        other = s.scalar(select(LoginSession.id).where(LoginSession.user_agent == "Firefox-on-the-other-PC"))
        admins = s.scalar(select(LoginSession.id).where(LoginSession.user_id == service.get_user_by_name("admin").id))
    token = csrf(here, "/account/password")
    r = here.post(f"/account/sessions/{other}/revoke", data={"csrf_token": token})
    assert r.status_code == 302 and "Đã kết thúc phiên" in here.get("/account/password").text
    assert there.get("/").status_code == 302 and here.get("/").status_code == 200
    here.post(f"/account/sessions/{admins}/revoke", data={"csrf_token": token})
    assert "Không có phiên này" in here.get("/account/password").text
    assert admin.get("/api/v1/zones").status_code == 200
    assert [e.detail["login_id"] for e in audit(service, "user.session_revoked")] == [other]


def test_a_stranger_cannot_lock_the_admin_out_but_many_addresses_do(tmp_path, database_url):
    """Per username *and* client address: ten wrong passwords from one address lock that address out of that
    account only (the admin logs in from her office); the account as a whole locks after LOGIN_LIMIT_PER_ACCOUNT
    failures from everywhere (distributed guessing)."""
    app = make_app(tmp_path, database_url, LOGIN_LIMIT_PER_ACCOUNT="30 per hour")
    client = app.test_client()
    stranger = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    office = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
    for _ in range(10):
        assert api_login(client, password="wrong-password", **stranger).status_code == 401
    assert api_login(client, password="wrong-password", **stranger).status_code == 429
    assert api_login(client, **office).status_code == 201  # the admin is not locked out by the stranger
    for n in range(2, 4):  # two more addresses, ten failures each: 30 for the account
        for _ in range(10):
            assert api_login(client, password="wrong-password",
                             environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}).status_code == 401
    assert api_login(client, **office).status_code == 429  # now the account itself waits
