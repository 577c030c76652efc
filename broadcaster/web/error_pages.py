"""The panel's error pages (403, 404, 500…) in the reader's language, inside the panel's frame with its menu.

The API answers its own errors as JSON (broadcaster/api/contract.py); every other path comes here.
"""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from broadcaster.i18n import gettext as _


def _texts(code: int, exc: HTTPException) -> tuple[str, str]:
    if isinstance(exc, CSRFError):
        return (_("The page had expired"),
                _("For your safety the form could not be sent: reload the page and send it again."))
    return {
        400: (_("The request could not be understood"), _("Go back, check what was entered and try again.")),
        403: (_("You may not open this page"),
              _("Your role does not allow this. Ask your ward's administrator if you need it.")),
        404: (_("Page not found"), _("The address is wrong or the item was deleted.")),
        405: (_("This cannot be done here"), _("Go back and use the page's buttons.")),
        413: (_("The file is too large"), _("Send a shorter recording or a smaller file.")),
        429: (_("Too many attempts"), _("Wait a few minutes and try again.")),
    }.get(code, (_("Something went wrong"), _("The error was recorded. Try again in a moment.")))


def error_page(exc: HTTPException):
    code = exc.code or 500
    title, advice = _texts(code, exc)
    response = exc.get_response()
    page = render_template("error.html", code=code, title=title, advice=advice)
    return page, code, {k: v for k, v in response.headers.items() if k in ("Allow", "Retry-After")}


def init_app(app: Flask) -> None:
    app.extensions["web_error_page"] = error_page
