"""Idempotent web forms: a double tap or a retried request never makes a duplicate.

Every form that creates or changes something carries a one-time key (``{{ form_key() }}`` in the template, a
hidden field). The first POST with a key records it (``form_submissions``) and runs; when it answers with a
redirect (the pattern of every form here: post → redirect → page), the redirect is remembered. A second POST
with the same key — the second tap of a double tap, the browser retrying after a dropped connection, the back
button and "submit" again — does not run the view again: it is sent where the first one went. A second POST
that arrives while the first is still running (a double tap during speech rendering) waits for it briefly.

A form that comes back with an error (400/409 with the form filled in) forgets its key, so the corrected form
can be sent again; the page it renders carries a new key anyway. The API has its own ``Idempotency-Key``
(commands); this is for the pages.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

from flask import Flask, Response, current_app, flash, g, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from broadcaster.i18n import gettext as _
from broadcaster.models import FormSubmission, utcnow

FIELD = "form_key"
#: How long a key is remembered (a day covers any retry a person or a browser makes).
KEEP = timedelta(days=1)
#: How long a repeated POST waits for the first one to finish (speech rendering takes seconds).
WAIT_S = 20.0


def form_key() -> Markup:
    """The hidden one-time key field of a form (a template global)."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{secrets.token_urlsafe(18)}">')


def _db():
    return current_app.extensions["loaphuong"].db


def _storage_key(raw: str) -> str:
    user = current_user.get_id() if current_user.is_authenticated else "-"
    return hashlib.sha256(f"{user}\0{raw}".encode()).hexdigest()


def _claim(key: str) -> bool:
    """Record the key; False when it was already there (a repeat)."""
    db = _db()
    try:
        with db.session() as s:
            s.execute(delete(FormSubmission).where(FormSubmission.created_at < utcnow() - KEEP))
            user_id = int(current_user.id) if current_user.is_authenticated else None
            s.add(FormSubmission(key=key, user_id=user_id, location=""))
    except IntegrityError:
        return False
    return True


def _first_answer(key: str) -> str | None:
    """Where the first submission with this key led, waiting up to WAIT_S while it is still running."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with _db().session() as s:
            row = s.get(FormSubmission, key)
            location = row.location if row is not None else None
        if location or row is None or time.monotonic() >= deadline:
            return location or None
        time.sleep(0.2)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["form_key"] = form_key

    @app.before_request
    def _repeat_answers_like_the_first() -> Response | None:
        if request.method != "POST" or request.path.startswith("/api/") or request.blueprint == "auth":
            return None
        raw = request.form.get(FIELD, "") if request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data") else ""
        if not raw or len(raw) > 100:
            return None
        key = _storage_key(raw)
        if _claim(key):
            g.form_submission = key
            return None
        location = _first_answer(key)
        if location:
            flash(_("This form was already sent; nothing was done twice."), "ok")
            return redirect(location, 303)
        # the first is still running (or failed without an answer): say so rather than doing it twice
        flash(_("This form is still being processed; nothing was done twice."), "error")
        return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                        else url_for("views.dashboard"), 303)

    @app.after_request
    def _remember_the_answer(response: Response) -> Response:
        key = g.pop("form_submission", None)
        if key is None:
            return response
        with _db().session() as s:
            row = s.get(FormSubmission, key)
            if row is not None:
                if 300 <= response.status_code < 400 and response.location:
                    row.location = response.location[:500]
                else:  # an error page with the form filled in: the corrected form may be sent again
                    s.delete(row)
        return response

    @app.teardown_request
    def _forget_on_crash(exc: BaseException | None) -> None:
        key = g.pop("form_submission", None)
        if key is not None and exc is not None:
            with _db().session() as s:
                row = s.get(FormSubmission, key)
                if row is not None:
                    s.delete(row)
