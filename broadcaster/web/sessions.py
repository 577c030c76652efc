"""Cookies, the trusted proxy and the login rate limits of one app (``init_app``, called by ``create_app``).

- Session and remember-me cookies: HttpOnly, SameSite=Lax, remember-me for ``REMEMBER_DAYS`` (≤ 30), ``Secure``
  per ``SECURE_COOKIES``: ``auto`` (default) on requests that came over HTTPS, ``1`` always, ``0`` never.
  Behind a TLS proxy, ``TRUSTED_PROXIES`` = N makes the panel believe the last N proxies' X-Forwarded-For and
  X-Forwarded-Proto (werkzeug's ProxyFix); without it those headers are ignored.
- Login rate limits (Flask-Limiter, one ``Limiter`` per app): ``POST /login`` and ``POST /api/v1/auth/token``
  share three fixed-window limits: ``LOGIN_LIMIT_PER_USER`` per username from one client address (the guessing
  bound), ``LOGIN_LIMIT_PER_ACCOUNT`` per username from every address together (distributed guessing; high
  enough that one stranger cannot lock the admin out), ``LOGIN_LIMIT_PER_CLIENT`` per client address whatever
  the usernames (credential stuffing); only failed attempts (401) count, and over a limit every attempt is
  refused (429 with Retry-After) until the window ends. The counters live in ``RATELIMIT_STORAGE_URI`` (Redis,
  …) or by default in the panel's database (``loaphuong-db://``, broadcaster/ratelimit_storage.py), so every
  worker shares them.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter, RequestLimit
from flask_login import LoginManager
from flask_login.utils import encode_cookie
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix

import broadcaster.ratelimit_storage  # noqa: F401  (registers the loaphuong-db:// scheme)
from broadcaster import logins

LOGIN_ENDPOINTS = ("auth.login", "api_auth.login_token")
#: The API's 429 message (``rate_limited``; Vietnamese in i18n/vi-auth.json); the web page says it in its words.
LOCKED_MESSAGE = "too many failed logins: try again after the Retry-After header's seconds"
_TRUE = ("1", "true", "yes", "on", "always")
_FALSE = ("0", "false", "no", "off", "never")


def cookies_secure() -> bool:
    """Whether this response's cookies get ``Secure`` (``SECURE_COOKIES``: auto | 1 | 0)."""
    mode = str(current_app.config.get("SECURE_COOKIES", "auto")).strip().lower()
    if mode in _TRUE:
        return True
    if mode in _FALSE:
        return False
    return has_request_context() and request.is_secure


class PanelSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return cookies_secure()


class PanelLoginManager(LoginManager):
    """Flask-Login with the remember-me cookie's ``Secure`` decided per request, like the session cookie's."""

    def _set_cookie(self, response: Any) -> None:
        config = current_app.config
        duration = config["REMEMBER_COOKIE_DURATION"]
        response.set_cookie(
            config.get("REMEMBER_COOKIE_NAME", "remember_token"),
            value=encode_cookie(str(session["_user_id"])),
            max_age=int(duration.total_seconds()),
            expires=datetime.now(UTC) + duration,
            domain=config.get("REMEMBER_COOKIE_DOMAIN"),
            path=config.get("REMEMBER_COOKIE_PATH", "/"),
            secure=cookies_secure(),
            httponly=True,
            samesite=config.get("REMEMBER_COOKIE_SAMESITE", "Lax"),
        )


def remember_days(config: Any) -> int:
    return max(1, min(int(getattr(config, "REMEMBER_DAYS", logins.MAX_REMEMBER_DAYS)), logins.MAX_REMEMBER_DAYS))


# --------------------------------------------------------------------------------------------- rate limits
def attempted_username() -> str:
    """The username a login request names (form or JSON), stripped."""
    name: Any = request.form.get("username") if request.form else None
    if name is None:
        data = request.get_json(silent=True)
        name = data.get("username") if isinstance(data, dict) else ""
    return str(name or "").strip()


def _username_key() -> str:
    # Hashed: a bounded key whatever an attacker sends; one bucket for every empty username. Per client address:
    # ten wrong passwords from one stranger do not lock the admin out of her own office.
    name = hashlib.sha256(attempted_username().encode()).hexdigest()[:40]
    return f"user:{name}:{request.remote_addr or '-'}"


def _account_key() -> str:
    return "account:" + hashlib.sha256(attempted_username().encode()).hexdigest()[:40]


def _client_key() -> str:
    return "client:" + (request.remote_addr or "-")


def _failed(response: Any) -> bool:
    return response.status_code == 401


def limiter_of(app: Flask) -> Limiter:
    return app.extensions["loaphuong"].extras["limiter"]


def over_limit(limit: str, *ids: str) -> int | None:
    """Count one hit of a per-client limit (``"120 per minute"``) in the panel's shared limiter storage: None while
    within it, else the seconds until it lets the client through again (for ``Retry-After``). The public pages
    and machine endpoints that have no login to rate-limit by share it."""
    item = parse(limit)
    keys = ("loaphuong", *ids, request.remote_addr or "-")
    strategy = limiter_of(current_app).limiter
    if strategy.hit(item, *keys):
        return None
    return max(1, math.ceil(strategy.get_window_stats(item, *keys).reset_time - time.time()))


def retry_after_s() -> int:
    """Seconds until the limit this request broke lets it through again."""
    current = limiter_of(current_app).current_limit
    return max(1, math.ceil(current.reset_at - time.time())) if current is not None else 60


def init_app(app: Flask, rt: Any) -> None:
    cfg = rt.config
    days = remember_days(cfg)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=timedelta(days=days),
    )
    app.session_interface = PanelSessionInterface()
    proxies = int(getattr(cfg, "TRUSTED_PROXIES", 0) or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    uri = (getattr(cfg, "RATELIMIT_STORAGE_URI", "") or "").strip() or "loaphuong-db://"
    options: dict[str, Any] = {"engine": rt.db.engine} if uri.startswith("loaphuong-db:") else {}
    limiter = Limiter(_client_key, app=app, storage_uri=uri, storage_options=options, strategy="fixed-window",
                      headers_enabled=True, key_prefix="loaphuong")
    rt.extras["limiter"] = limiter

    def on_breach(breached: RequestLimit) -> None:
        # One audit entry per locked bucket and window, not one per refused attempt.
        once = parse(f"1 per {breached.limit.get_expiry()} seconds")
        if limiter.limiter.hit(once, "lockout-audited", breached.key):
            logins.audit(rt.service, "user.login_locked", attempted_username(), via=_via(),
                         address=request.remote_addr or "", limit=str(breached.limit),
                         per="username" if "/user:" in breached.key
                         else "account" if "/account:" in breached.key else "client")

    per_user = limiter.shared_limit(cfg.LOGIN_LIMIT_PER_USER, "login-username", key_func=_username_key,
                                    methods=["POST"], deduct_when=_failed, on_breach=on_breach,
                                    error_message=LOCKED_MESSAGE)
    per_account = limiter.shared_limit(cfg.LOGIN_LIMIT_PER_ACCOUNT, "login-account", key_func=_account_key,
                                       methods=["POST"], deduct_when=_failed, on_breach=on_breach,
                                       error_message=LOCKED_MESSAGE)
    per_client = limiter.shared_limit(cfg.LOGIN_LIMIT_PER_CLIENT, "login-client", key_func=_client_key,
                                      methods=["POST"], deduct_when=_failed, on_breach=on_breach,
                                      error_message=LOCKED_MESSAGE)
    for endpoint in LOGIN_ENDPOINTS:  # the views of this app, wrapped: Flask-Limiter checks when they are called
        app.view_functions[endpoint] = per_client(per_account(per_user(app.view_functions[endpoint])))


def _via() -> str:
    return "api" if request.endpoint == "api_auth.login_token" else "web"
