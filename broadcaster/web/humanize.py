"""The audit log and other records said in words: "Lãnh đạo duyệt bản tin số 5", never ``announcement.approve``.

Records keep their codes (the API and the CSV give them as they are); pages translate them here, through the
catalogues, so a new code shows as a sensible sentence ("Bản tin — thao tác khác") and never as raw text.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from broadcaster.i18n import current_locale, error_message, translate
from broadcaster.i18n import gettext as _

#: What the records are about (first part of an action, kind of a target).
OBJECTS = ("abbreviation", "alert", "announcement", "audio_settings", "command", "emergency", "media", "node",
           "policy", "schedule", "stream_source", "user", "ward", "zone")
#: Fields of an entry's detail worth a person's eye, in order; the rest stay in the raw record.
FIELDS = ("from", "to", "role", "comment", "zones", "title", "name", "reason", "code", "why", "action", "command",
          "count", "drill")


def _t(key: str, default: str | None = None) -> str | None:
    """The catalogue's text for ``key`` in the page's language, or ``default`` when it has none."""
    text = translate(key, current_locale())
    return text if text != key else default


def action_text(action: str) -> str:
    """``announcement.approve`` → "Duyệt bản tin"; ``emergency.live.release`` → "Tin khẩn cấp: xác nhận phát"."""
    whole = _t(f"audit.{action}")
    if whole:
        return whole
    parts = action.split(".")
    noun = _t(f"audit.object.{parts[0]}") or _("Other record")
    verb = _t(f"audit.verb.{parts[-1]}") if len(parts) > 1 else None
    if len(parts) == 3 and parts[0] == "emergency":
        noun = _t(f"audit.object.{parts[0]}.{parts[1]}") or noun
    return f"{noun}: {verb or _('other action')}"


def target_text(target: str, action: str = "") -> str:
    """``alert:3`` → "Tin khẩn cấp số 3"; a bare number is named after the action's object ("Bản tin 5"); a
    name is shown as it is."""
    if not target:
        return "—"
    kind, sep, ident = target.partition(":")
    if not sep:
        if not target.isdigit() or not action:
            return target
        kind, ident = action.split(".")[0], target
    noun = _t(f"audit.object.{kind}")
    return _("{what} {id}", what=noun, id=ident) if noun else ident


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_value(key, v) for v in value)
    text = str(value)
    if key in ("from", "to"):
        return _t(f"approval.{text}") or _t(f"status.{text}") or text
    if key == "role":
        return _t(f"role.{text}") or text
    if key == "action":
        return _t(f"policy.{text}") or action_text(text)
    if key == "code":
        return error_message(text, text, current_locale())
    if key == "command":
        return _t(f"command.{text}") or text
    if key in ("comment", "why", "reason"):  # the panel's own words in a record (a person's comment stays as is)
        return translate(text, current_locale())
    return text


def detail_items(action: str, detail: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The entry's details worth showing, as (label, value) in the page's language."""
    detail = detail or {}
    items: list[tuple[str, str]] = []
    for key in FIELDS:
        value = detail.get(key)
        if value in (None, "", [], {}):
            continue
        if key == "why" and "code" in detail:
            continue  # the code's own words say it in the page's language
        if key == "drill" and not value:
            continue
        label = _t(f"audit.field.{key}")
        if label:
            items.append((label, _value(key, value)))
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.filters["audit_action"] = action_text
    app.jinja_env.filters["audit_target"] = target_text
    app.jinja_env.globals["audit_details"] = detail_items
