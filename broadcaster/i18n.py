"""Translation catalogues: Vietnamese first, English second.

Source strings in code and templates are English (``_("Announcements")``); ``i18n/vi.json`` maps them
to Vietnamese. A missing entry falls back to English, and a test fails if a template string has no
Vietnamese translation.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Flask, g, request, session

LOCALES = ("vi", "en")
CATALOGUE_DIR = Path(__file__).parent / "i18n"


@cache
def catalogue(locale: str) -> dict[str, str]:
    """``i18n/{locale}.json`` merged with per-feature files ``i18n/{locale}-*.json`` (sorted by name)."""
    merged: dict[str, str] = {}
    main = CATALOGUE_DIR / f"{locale}.json"
    for path in [main, *sorted(CATALOGUE_DIR.glob(f"{locale}-*.json"))]:
        if path.exists():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translate(text: str, locale: str, **params: object) -> str:
    """``text`` in ``locale``. English is the source language: its catalogue only holds the words of codes
    (``role.officer``, ``audit.announcement.approve``), every other string is already English."""
    out = catalogue(locale).get(text, text)
    return out.format(**params) if params else out


def error_message(code: str, message: str, locale: str) -> str:
    """The catalogue's text for a refusal's code (``error.<code>``), else its message as given (English); the
    web pages and the API's error shape both say refusals this way."""
    if locale == "en":
        return message
    key = f"error.{code}"
    text = translate(key, locale)
    return message if text == key else text


def current_locale() -> str:
    return getattr(g, "locale", None) or "vi"


def gettext(text: str, **params: object) -> str:
    return translate(text, current_locale(), **params)


def init_app(app: Flask) -> None:
    default = app.config.get("DEFAULT_LOCALE", "vi")

    @app.before_request
    def _pick_locale() -> None:
        asked = request.args.get("lang")
        if asked in LOCALES:
            session["lang"] = asked
        g.locale = session.get("lang") or default

    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
