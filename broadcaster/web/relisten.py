"""Citizen re-listen ("Nghe lại", issue 17 §4): public pages, no login.

* ``GET /nghe-lai/<ward>`` — the bulletins that aired in the ward in the last 30 days (HTML, phone-first, one
  ``<audio preload="none">`` per airing); ``GET /nghe-lai/<ward>.json`` — the same list as JSON. Both take
  ``?zone=CODE`` (a residential group / village of that ward). Unknown ward or zone: 404.
* ``GET /nghe-lai/<ward>/audio/<sha256>.mp3`` — the approved audio of an airing currently listed for the ward,
  without a token (else 404); ranges and conditional requests (``send_file(conditional=True)``).
* ``GET /nghe-lai/<ward>/poster`` — printable A4 posters, one per zone, with a QR code of the zone's page.

What is listed is decided by broadcaster/relisten.py (aired, approved now, exactly the approved audio, this ward,
last 30 days). A ward's list is computed again after ``RELISTEN_CACHE_S`` (app.config, default 60 s) or, when
the data behind it changed, after ``RELISTEN_RECHECK_S`` (2 s) — a zone's is narrowed from it — and sent with
``Cache-Control: public, max-age=60`` and an ETag (304 on ``If-None-Match``). Every route is rate-limited per
client address (``RELISTEN_RATE_LIMIT``, default 120 per minute; the audio ``RELISTEN_AUDIO_RATE_LIMIT``, 600
per minute: a player asks for ranges) through the panel's Flask-Limiter (broadcaster/web/sessions.py), whose
counters every worker shares; over it: 429 with ``Retry-After``, said in Vietnamese.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from broadcaster import relisten
from broadcaster.errors import ServiceError
from broadcaster.i18n import current_locale, error_message
from broadcaster.i18n import gettext as _
from broadcaster.web.common import svc
from broadcaster.web.sessions import over_limit
from broadcaster.web.views_fleet import qr_svg

bp = Blueprint("relisten", __name__)

PAGE_LIMIT = "120 per minute"
AUDIO_LIMIT = "600 per minute"
MAX_AGE_S = 60
AUDIO_MAX_AGE_S = 60
SHA_LEN = 64
#: Airings per HTML page (the JSON has them all): about 15 kB of HTML on 3G.
PAGE_SIZE = 20


def setting(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    return default if value in (None, "") else value


def is_json() -> bool:
    return request.endpoint == "relisten.page_json"


# ------------------------------------------------------------------------------------------ rate limit
@bp.before_request
def rate_limit() -> Response | None:
    """Per client address, in the panel's shared limiter storage; 429 + Retry-After over the limit."""
    audio = request.endpoint == "relisten.audio"
    retry = over_limit(str(setting("RELISTEN_AUDIO_RATE_LIMIT" if audio else "RELISTEN_RATE_LIMIT",
                                   AUDIO_LIMIT if audio else PAGE_LIMIT)), "relisten-audio" if audio else "relisten")
    if retry is None:
        return None
    message = _("Too many requests from your connection. Please wait {seconds} seconds and try again.",
                seconds=retry)
    if is_json():
        response = make_response({"error": {"code": "rate_limited", "message": message}}, 429)
    elif audio:
        response = make_response(message, 429)
        response.mimetype = "text/plain"
    else:
        response = make_response(render_template("relisten.html", listing=None, error_title=_("Too many requests"),
                                                 error_text=message, lang_links=lang_links()), 429)
    response.headers["Retry-After"] = str(retry)
    response.headers["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------------------------- helpers
def cache_times() -> tuple[float, float]:
    """(ttl, recheck) of the list cache (broadcaster/relisten.py ``ListingCache``)."""
    return (float(setting("RELISTEN_CACHE_S", relisten.DEFAULT_TTL_S)),
            float(setting("RELISTEN_RECHECK_S", relisten.DEFAULT_RECHECK_S)))


def lang_links() -> dict[str, str]:
    """The page in each language, keeping ``zone`` (the panel's own switch would drop it)."""
    args = {k: v for k, v in request.args.items() if k in ("zone", "page")}
    return {code: url_for(request.endpoint or "relisten.page", **(request.view_args or {}), **args, lang=code)
            for code in ("vi", "en")}


def local_text(moment: datetime) -> str:
    local = svc().local(moment)
    return local.strftime("%d/%m/%Y %H:%M")


def audio_path(ward_code: str, sha256: str) -> str:
    return url_for("relisten.audio", ward_code=ward_code, sha256=sha256)


def item_json(listing: relisten.Listing, a: relisten.Airing) -> dict[str, Any]:
    return {
        "title": a.title,
        "text": a.text,
        "zones": [z.code for z in a.zones],
        "zone_names": [z.name for z in a.zones],
        "aired_at": svc().local(a.aired_at).isoformat(timespec="seconds"),
        "audio_url": audio_path(listing.ward_code, a.sha256),
        "duration_ms": a.duration_ms,
        "announcement_id": a.announcement_id,
    }


def listing_json(listing: relisten.Listing) -> dict[str, Any]:
    return {"ward": listing.ward_code, "ward_name": listing.ward_name,
            "zone": listing.zone.code if listing.zone else None,
            "zone_name": listing.zone.name if listing.zone else None,
            "days": relisten.WINDOW.days,
            "items": [item_json(listing, a) for a in listing.items]}


def cached(body: bytes | str, mimetype: str, status: int = 200) -> Response:
    """A public, 60-second cacheable answer with a strong ETag of its bytes; 304 when the client has it."""
    data = body.encode() if isinstance(body, str) else body
    response = Response(data, status=status, mimetype=mimetype)
    response.set_etag(hashlib.sha256(data).hexdigest()[:32])
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    response.vary.add("Cookie")  # the language may come from the session cookie
    if session.modified:  # ?lang= sets the session cookie: never into a shared cache
        response.headers["Cache-Control"] = f"private, max-age={MAX_AGE_S}"
    return response.make_conditional(request)


def load(ward_code: str) -> relisten.Listing:
    return relisten.cached_listing(svc(), ward_code, request.args.get("zone") or None, *cache_times())


def not_found_page(exc: ServiceError) -> Response:
    title = _("No such ward") if exc.code == "unknown_ward" else _("No such residential group")
    text = error_message(exc.code, exc.message, current_locale())
    page = render_template("relisten.html", listing=None, error_title=title, error_text=text,
                           lang_links=lang_links())
    response = make_response(page, 404)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    return response


# ---------------------------------------------------------------------------------------------- routes
@bp.get("/nghe-lai/<ward_code>.json")
def page_json(ward_code: str) -> Response:
    try:
        listing = load(ward_code)
    except ServiceError as exc:
        body = {"error": {"code": exc.code, "message": error_message(exc.code, exc.message, current_locale()),
                          "field": exc.field}}
        response = make_response(body, exc.status)
        return response
    return cached(json.dumps(listing_json(listing), ensure_ascii=False), "application/json")


@bp.get("/nghe-lai/<ward_code>")
def page(ward_code: str) -> Response:
    try:
        listing = load(ward_code)
    except ServiceError as exc:
        return not_found_page(exc)
    pages = max(1, math.ceil(len(listing.items) / PAGE_SIZE))
    number = min(max(1, request.args.get("page", default=1, type=int) or 1), pages)
    shown = listing.items[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
    rows = [{"a": a, "when": local_text(a.aired_at), "audio": audio_path(listing.ward_code, a.sha256),
             "zones": ", ".join(z.name for z in a.zones)} for a in shown]
    zone = {"zone": listing.zone.code} if listing.zone else {}

    def page_url(n: int) -> str | None:
        if not 1 <= n <= pages or n == number:
            return None
        return url_for("relisten.page", ward_code=listing.ward_code, **zone, **({"page": n} if n > 1 else {}))

    page = render_template("relisten.html", listing=listing, rows=rows, lang_links=lang_links(),
                           number=number, pages=pages, prev_url=page_url(number - 1), next_url=page_url(number + 1),
                           json_url=url_for("relisten.page_json", ward_code=listing.ward_code,
                                            **({"zone": listing.zone.code} if listing.zone else {})),
                           all_url=url_for("relisten.page", ward_code=listing.ward_code))
    return cached(page, "text/html")


@bp.get("/nghe-lai/<ward_code>/audio/<sha256>.mp3")
def audio(ward_code: str, sha256: str) -> Response:
    """The audio of an airing listed now for the ward, else 404 (never any other file of the media store)."""
    if len(sha256) != SHA_LEN or any(c not in "0123456789abcdef" for c in sha256):
        abort(404)
    try:
        listing = relisten.cached_listing(svc(), ward_code, None, *cache_times())
    except ServiceError:
        abort(404)
    if sha256 not in listing.sha256s() or not svc().media.exists(sha256, "mp3"):
        abort(404)
    response = send_file(svc().media.path(sha256, "mp3"), mimetype="audio/mpeg", conditional=True, etag=sha256)
    response.headers["Cache-Control"] = f"public, max-age={AUDIO_MAX_AGE_S}"
    return response


#: How a zone's name may already begin (then it is not prefixed with its kind): "Tổ dân phố 3", "Thôn Đông".
NAMED_KINDS = ("tổ", "thôn", "khu", "ấp", "bản", "xóm", "buôn", "làng", "khóm", "phum", "sóc")


def poster_heading(zone: Any) -> str:
    """"Nghe lại bản tin của tổ dân phố 3": the zone's kind before its name unless the name already says it."""
    name = zone.name.strip()
    if name.split(" ", 1)[0].lower() in NAMED_KINDS:
        return _("Re-listen to the bulletins of {group}", group=name)
    kind = _("village") if zone.kind == "village" else _("residential group")
    return _("Re-listen to the bulletins of {group}", group=f"{kind} {name}")


@bp.get("/nghe-lai/<ward_code>/poster")
def poster(ward_code: str) -> Response:
    """Printable A4 posters, one per zone of the ward, each with the QR code of the zone's page (public: they hold
    nothing but the public address; ``?zone=CODE`` prints one)."""
    try:
        ward, zones = relisten.find_ward(svc(), ward_code)
    except ServiceError as exc:
        return not_found_page(exc)
    only = request.args.get("zone")
    if only:
        zones = [z for z in zones if z.code == only]
        if not zones:
            return not_found_page(ServiceError("unknown_zone", f"no zone {only!r} in ward {ward.code!r}", "zone",
                                               404))
    base = (svc().config.PUBLIC_URL or request.host_url).rstrip("/")
    posters = []
    for z in zones:
        url = base + url_for("relisten.page", ward_code=ward.code, zone=z.code)
        posters.append({"code": z.code, "name": z.name, "url": url, "heading": poster_heading(z),
                        "qr": qr_svg(url, _("QR code of the page of {zone}", zone=z.name))})
    page = render_template("relisten_poster.html", ward=ward, posters=posters, lang_links=lang_links())
    response = make_response(page)
    response.headers["Cache-Control"] = "no-cache"
    return response
