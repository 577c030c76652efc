"""Public CAP 1.2 feeds (issue 17 §5, broadcaster/cap.py): no login, like any public warning feed.

* ``GET /cap/<ward>.xml`` — the ward's feed: an Atom feed (``application/cap+xml``) whose entries each carry one
  CAP 1.2 ``<alert>``: alerts that went out (released, or cancelled since) and their cancellations, drills as
  ``<status>Exercise</status>``; never one waiting for release or discarded.
* ``GET /cap/province.xml`` — the same for every ward of the installation (the province).
* ``GET /cap/<ward>/<id>.xml`` — one alert of the ward's feed as a CAP 1.2 document (else 404).

Sent with ``Cache-Control: public, max-age=60``; rate-limited per client address (``CAP_FEED_RATE_LIMIT`` in
app.config, default 120 per minute): over it 429 with ``Retry-After``.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, url_for

from broadcaster import cap
from broadcaster.i18n import gettext as _
from broadcaster.models import Alert, Ward
from broadcaster.web.common import svc
from broadcaster.web.sessions import over_limit

bp = Blueprint("cap_feed", __name__)

MAX_AGE_S = 60
#: Per client address (``CAP_FEED_RATE_LIMIT`` in app.config overrides it), in the panel's shared limiter storage.
FEED_LIMIT = "120 per minute"
#: The province feed's name in the URL (a ward with this code would be shadowed by it).
PROVINCE = "province"


@bp.before_request
def rate_limit() -> Response | None:
    """A public feed is polled by machines: 429 + Retry-After over the limit (like the re-listen pages)."""
    retry = over_limit(str(current_app.config.get("CAP_FEED_RATE_LIMIT") or FEED_LIMIT), "cap-feed")
    if retry is None:
        return None
    response = Response(_("Too many requests from your connection. Please wait {seconds} seconds and try again.",
                          seconds=retry), 429, mimetype="text/plain")
    response.headers["Retry-After"] = str(retry)
    return response


def _xml(data: bytes) -> Response:
    response = Response(data, content_type=cap.CONTENT_TYPE)  # exactly: the XML declaration names UTF-8
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    return response


def _ward(code: str) -> Ward:
    ward = cap.find_ward(svc(), code)
    if ward is None:
        abort(404)
    return ward


def _alert_url(alert: Alert, ward_code: str | None) -> str:
    code = ward_code
    if code is None:  # the province feed: the alert's own ward, or the first it targeted
        code = cap.alert_ward_code(svc(), alert)
    return url_for("cap_feed.alert", ward=code, alert_id=alert.id, _external=True)


@bp.get(f"/cap/{PROVINCE}.xml")
def province_feed():
    self_url = url_for("cap_feed.province_feed", _external=True)
    return _xml(cap.feed_document(svc(), None, self_url, lambda a: _alert_url(a, None)))


@bp.get("/cap/<ward>.xml")
def ward_feed(ward: str):
    found = _ward(ward)
    self_url = url_for("cap_feed.ward_feed", ward=found.code, _external=True)
    return _xml(cap.feed_document(svc(), found, self_url, lambda a: _alert_url(a, found.code)))


@bp.get("/cap/<ward>/<int:alert_id>.xml")
def alert(ward: str, alert_id: int):
    found = _ward(ward)
    listed = cap.public_alert(svc(), found, alert_id)
    if listed is None:
        abort(404)
    return _xml(cap.alert_document(svc(), listed))
