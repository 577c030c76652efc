"""Small helpers shared by the web pages (every feature blueprint of broadcaster/web) and the API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, request
from flask_login import current_user, login_required

from broadcaster import policy
from broadcaster.errors import ServiceError
from broadcaster.i18n import current_locale, error_message
from broadcaster.i18n import gettext as _


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        return token or None
    return None


def svc():
    return current_app.extensions["loaphuong"].service


def permission_required(action: policy.Action) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Logged in, and the release policy allows ``action`` (it decides and audits a refusal; never this view)."""

    def deco(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not policy.allowed(current_user, action):
                policy.audit_refusal(svc(), current_user, "forbidden", "page refused by the release policy",
                                     action=action.value, target=request.path)
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return deco


#: Registering, editing and re-provisioning nodes, zones and the registry import.
admin_required = permission_required(policy.Action.FLEET_MANAGE)


def error_text(exc: ServiceError) -> str:
    """The Vietnamese text for a service refusal (its code), else the English message; a refusal of the release
    policy also says who may do it."""
    text = error_message(exc.code, exc.message, current_locale())
    if isinstance(exc, policy.PolicyRefused):
        if exc.emergency_only:
            text += " " + _("Emergencies go through the Emergency broadcast page (two people).")
        elif exc.roles:
            text += " " + _("Who may: {roles}.", roles=", ".join(_("role." + r) for r in exc.roles))
    return text
