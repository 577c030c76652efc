"""Users page (admins: create, change role, disable / enable, reset password) and "change my password" (everyone).

Who may manage whom is decided by the service (``PanelService.create_user`` / ``update_user``: the release policy
and the tenancy); the page asks the policy only to show itself, and shows a ward admin her ward's users only.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from broadcaster import notifications, policy, tenancy
from broadcaster.i18n import gettext as _
from broadcaster.models import User
from broadcaster.services import ServiceError
from broadcaster.web.common import error_text, svc

bp = Blueprint("users", __name__)


@bp.app_template_global("role_label")
def role_label(role: str | None) -> str:
    """``role.<role>`` translated (Vietnamese names of the roles); the role itself when there is none."""
    key = f"role.{role}"
    text = _(key)
    return (role or "").replace("_", " ") if text == key else text


#: Browsers by the token their User-Agent carries, most specific first (Edge and Opera also say "Chrome/", Chrome
#: also says "Safari/"): (token, name). Names are the products' own; the same in every language.
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg", "Edge"), ("OPR/", "Opera"), ("Opera", "Opera"), ("coc_coc", "Cốc Cốc"), ("CocCoc", "Cốc Cốc"),
    ("SamsungBrowser/", "Samsung Internet"), ("Zalo", "Zalo"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"),
)
#: Systems, most specific first (an iPhone also says "like Mac OS X", Android also says "Linux").
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"), ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"),
)
#: Programs that log in to the API, by the start of their User-Agent (lower case).
_PROGRAMS: tuple[tuple[str, str], ...] = (
    ("curl/", "curl"), ("wget/", "Wget"), ("python", "Python"), ("postman", "Postman"), ("loaphuong", "Loa Phường"),
)


def describe_user_agent(user_agent: str | None) -> str:
    """A login's User-Agent as a person would say it: "Chrome trên Linux", "Safari trên iPhone", "Chương trình
    Python"; "Trình duyệt khác" for a browser this does not know. A few substring rules, not a full parser: it only
    has to let an officer recognise her own phone in the list of her sessions."""
    ua = (user_agent or "").strip()
    if not ua:
        return _("Unknown device")
    low = ua.lower()
    for prefix, program in _PROGRAMS:
        if low.startswith(prefix):
            return _("{program} program", program=program)
    if not ua.startswith("Mozilla/"):
        return _("Other program")
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser is None and "Safari/" in ua and "Version/" in ua:
        browser = "Safari"
    if browser is None:
        return _("Other browser on {system}", system=system) if system else _("Other browser")
    return _("{browser} on {system}", browser=browser, system=system) if system else browser


@bp.app_template_filter("device")
def device_filter(user_agent: str | None) -> str:
    """``row.user_agent|device`` (describe_user_agent)."""
    return describe_user_agent(user_agent)


def _require_manage() -> None:
    if not policy.allowed(current_user, policy.Action.USERS_MANAGE, policy.Scope.WARD):
        policy.audit_refusal(svc(), current_user, "forbidden", "page refused by the release policy",
                             action=policy.Action.USERS_MANAGE.value, target=request.path)
        abort(403)


def _ward_filter() -> str:
    return (request.args.get("ward") or "").strip()


def _page(form: dict | None = None, error_field: str | None = None, status: int = 200):
    """The list follows the ward picker of the header (``g.scope``); ``?ward=CODE`` overrides it."""
    service = svc()
    ward = _ward_filter()
    try:
        scope = tenancy.scope_of(service, current_user, ward) if ward else getattr(g, "scope", None)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        ward, scope, status = "", getattr(g, "scope", None), exc.status
    ward = ward or session.get("ward", "")
    users = service.list_users(current_user, scope)
    wards = tenancy.list_wards(service, tenancy.user_scope(current_user))
    return render_template("users.html", users=users, codes=service.user_ward_codes(users), wards=wards,
                           ward_names={w.code: w.name for w in wards}, roles=service.assignable_roles(current_user),
                           province=tenancy.is_province(current_user), ward_filter=ward, form=form or {},
                           error_field=error_field), status


@bp.get("/users")
@login_required
def users_page():
    _require_manage()
    return _page()


@bp.post("/users")
@login_required
def users_create():
    _require_manage()
    form = request.form
    try:
        email = notifications.check_email(form.get("email", ""))  # before the user exists: a bad one creates nobody
        created = svc().create_user(form.get("username", ""), form.get("password", ""), form.get("role", "officer"),
                                    form.get("display_name", ""), ward=form.get("ward") or None, user=current_user)
        if email:
            notifications.set_email(svc(), current_user, created.username, email)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        kept = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        return _page(kept, exc.field, exc.status)
    flash(_("User {name} created.", name=form.get("username", "").strip()), "ok")
    return redirect(url_for("users.users_page", ward=_ward_filter() or None))


def _change(username: str, ok: str, **change):
    _require_manage()
    try:
        svc().update_user(username, user=current_user, **change)
    except ServiceError as exc:
        flash(f"{username}: {error_text(exc)}", "error")
        return _page(error_field=exc.field, status=exc.status)
    flash(ok, "ok")
    return redirect(url_for("users.users_page", ward=_ward_filter() or None))


@bp.post("/users/<username>/role")
@login_required
def users_role(username: str):
    return _change(username, _("Role changed."), role=request.form.get("role", ""))


@bp.post("/users/<username>/disable")
@login_required
def users_disable(username: str):
    return _change(username, _("Account disabled: this user is logged out everywhere."), disabled=True)


@bp.post("/users/<username>/enable")
@login_required
def users_enable(username: str):
    return _change(username, _("Account enabled."), disabled=False)


@bp.post("/users/<username>/email")
@login_required
def users_email(username: str):
    _require_manage()
    try:
        notifications.set_email(svc(), current_user, username, request.form.get("email", ""))
    except ServiceError as exc:
        flash(f"{username}: {error_text(exc)}", "error")
        return _page(error_field=exc.field, status=exc.status)
    flash(_("E-mail address saved."), "ok")
    return redirect(url_for("users.users_page", ward=_ward_filter() or None))


@bp.post("/users/<username>/password")
@login_required
def users_password(username: str):
    return _change(username, _("Password reset: give the new password to this user."),
                   password=request.form.get("password", ""))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def account_password():
    status, error_field = 200, None
    if request.method == "POST":
        form = request.form
        try:
            if form.get("new_password", "") != form.get("confirm_password", ""):
                raise ServiceError("password_mismatch", "the two new passwords differ", "confirm_password")
            svc().change_password(current_user, form.get("old_password", ""), form.get("new_password", ""))
        except ServiceError as exc:
            flash(error_text(exc), "error")
            status, error_field = exc.status, exc.field
        else:
            flash(_("Your password was changed."), "ok")
            return redirect(url_for("users.account_password"))
    return render_template("account_password.html", error_field=error_field, email=_my_email()), status


def _my_email() -> str:
    with svc().db.session() as s:
        me = s.get(User, current_user.id)
        return (me.email or "") if me is not None else ""


@bp.post("/account/email")
@login_required
def account_email():
    """Her own e-mail address, for the notifications she must act on (empty removes it)."""
    try:
        notifications.set_email(svc(), current_user, current_user.username, request.form.get("email", ""))
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return render_template("account_password.html", error_field=exc.field,
                               email=request.form.get("email", "")), exc.status
    flash(_("E-mail address saved."), "ok")
    return redirect(url_for("users.account_password"))
