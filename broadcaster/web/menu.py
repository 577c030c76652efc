"""The panel's menu, fitted to the person: what her role may do (the release policy decides, not the menu), the
daily work first, the settings of the ward last. On a phone it folds behind one "Menu" button."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request, url_for
from flask_login import current_user

from broadcaster import policy
from broadcaster.i18n import gettext as _


@dataclass(frozen=True)
class Item:
    endpoint: str
    label: str
    #: the release-policy action that must be allowed (None: every logged-in user)
    action: str | None = None
    scope: str = "any"
    group: str = "work"  # work | ward (the ward's settings and records)
    css: str = ""


def _items() -> list[Item]:
    return [
        Item("emergency.emergency_page", _("Emergency broadcast"), css="nav-emergency"),
        Item("live.live_page", _("Live paging"), "live.page"),
        Item("views.announcements", _("Announcements")),
        Item("schedules.approvals", _("Approvals"), "announcement.approve"),
        Item("schedules.schedules", _("Schedules")),
        Item("schedules.calendar_page", _("Calendar")),
        Item("schedules.today_page", _("Today")),
        Item("views.plays", _("Proof of play")),
        Item("fleet.reports_page", _("Reports")),
        Item("views.nodes", _("Loudspeakers")),
        Item("notifications.notifications_page", _("Notifications"), group="hidden"),  # in the header already
        Item("schedules.timeline_page", _("Timeline"), group="ward"),
        Item("fleet.fleet_page", _("Fleet"), "fleet.manage", "ward", "ward"),
        Item("views.abbreviations", _("Abbreviations"), group="ward"),
        Item("schedules.audit_log", _("Audit log"), group="ward"),
        Item("audio.audio_settings", _("Audio settings"), "audio_settings.set", "ward", "ward"),
        Item("streams.stream_sources", _("Stream sources"), "stream_sources.manage", "ward", "ward"),
        Item("users.users_page", _("Users"), "users.manage", "ward", "ward"),
    ]


def menu() -> dict[str, list[dict[str, object]]]:
    """``{"work": [...], "ward": [...]}``: each ``{"href", "label", "current", "css"}`` the user may open."""
    if not current_user.is_authenticated:
        return {"work": [], "ward": []}
    endpoints = current_app.view_functions
    groups: dict[str, list[dict[str, object]]] = {"work": [], "ward": []}
    for item in _items():
        if item.group not in groups or item.endpoint not in endpoints:
            continue
        if item.action and not policy.allowed(current_user, policy.Action(item.action), policy.Scope(item.scope)):
            continue
        entry = {"href": url_for(item.endpoint), "label": item.label, "css": item.css,
                 "current": request.endpoint == item.endpoint}
        if item.css == "nav-emergency" and not policy.allowed(current_user, policy.Action.EMERGENCY_CREATE):
            # she follows emergencies, she does not start them: no red button first, a plain link last
            entry["css"], entry["last"] = "", True
        groups[item.group].append(entry)
    groups["work"].sort(key=lambda e: bool(e.get("last")))
    return groups


def init_app(app: Flask) -> None:
    app.jinja_env.globals["menu"] = menu
