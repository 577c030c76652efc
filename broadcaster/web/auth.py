"""Log in / log out (Flask-Login, CSRF-protected form).

A login is a row of ``login_sessions`` (broadcaster/logins.py) whose random key the session and remember-me
cookies carry; logging out revokes it, so neither cookie works again. ``?next=`` is followed only to a path of
this site (``logins.safe_next``). Failed logins are rate-limited per username and per client (429, Retry-After;
broadcaster/web/sessions.py) and audited like successes and logouts.
"""

from __future__ import annotations

import math

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from broadcaster import logins
from broadcaster.i18n import gettext as _
from broadcaster.web import sessions
from devices.registry import token_hash

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        rt = current_app.extensions["loaphuong"]
        username, address = request.form.get("username", ""), request.remote_addr or ""
        user = rt.service.authenticate(username, request.form.get("password", ""))
        if user is None:
            logins.audit(rt.service, "user.login_failed", username, via="web", address=address)
            flash(_("Wrong username or password."), "error")
            return render_template("login.html", username=username), 401
        logins.start(rt.db, user, logins.WEB, user_agent=request.user_agent.string, address=address,
                     days=sessions.remember_days(rt.config))
        lang = session.get("lang")
        session.clear()  # nothing of before the login carries over (a new CSRF token too)
        if lang:
            session["lang"] = lang
        login_user(user, remember=True)
        logins.audit(rt.service, "user.login", user.username, user, via="web", address=address)
        return redirect(logins.safe_next(request.args.get("next")) or url_for("views.dashboard"))
    return render_template("login.html", username="")


@bp.errorhandler(429)
def _too_many(_exc):
    """Over a login rate limit: the login page again, with how long to wait (429, Retry-After)."""
    minutes = max(1, math.ceil(sessions.retry_after_s() / 60))
    flash(_("Too many failed logins. Try again in {minutes} minutes.", minutes=minutes), "error")
    return render_template("login.html", username=request.form.get("username", "")), 429


@bp.app_template_global("my_logins")
def my_logins() -> list[dict]:
    """The current user's live logins (web sessions and API tokens) for the account page; ``current`` = this one."""
    if not current_user.is_authenticated:
        return []
    mine = token_hash(current_user.session_key or "")
    rows = logins.live(current_app.extensions["loaphuong"].db, current_user)
    return [{"row": r, "current": r.secret_hash == mine} for r in rows]


@bp.post("/account/sessions/<int:login_id>/revoke")
@login_required
def revoke_login(login_id: int):
    """End one of one's own logins (a browser elsewhere, an API token) from the account page."""
    rt = current_app.extensions["loaphuong"]
    if logins.revoke_own(rt.db, current_user, login_id):
        logins.audit(rt.service, "user.session_revoked", current_user.username, current_user,
                     login_id=login_id)
        flash(_("Session ended."), "ok")
    else:
        flash(_("No such session."), "error")
    return redirect(url_for("users.account_password"))


@bp.post("/logout")
@login_required
def logout():
    rt = current_app.extensions["loaphuong"]
    logins.revoke_key(rt.db, current_user.session_key)  # the session and remember-me cookies stop working
    logins.audit(rt.service, "user.logout", current_user.username, current_user, via="web")
    logout_user()
    return redirect(url_for("auth.login"))
