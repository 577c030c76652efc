"""Security headers on every response, and an HTTP server that does not announce its version.

``init_app(app)`` (called once by ``create_app``) adds to every response — web pages, ``/api/v1``, static files,
media, errors — a Content-Security-Policy without inline script or inline style (the pages' behaviour lives in
``static/*.js``, their looks in ``static/*.css``; a JSON data island ``<script type="application/json">`` is
data, not script), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: same-origin``. A header a view set itself is kept.

Images may also come from the fleet map's tile server (``MAP_TILES_URL``): its origin is added to ``img-src``
(a ``{s}`` subdomain becomes ``*``); tiles served by the panel itself are covered by ``'self'``.

``make_panel_server`` is werkzeug's ``make_server`` with a request handler whose ``Server`` header is just
``Loa Phuong`` (werkzeug's says ``Werkzeug/x Python/y``); ``loaphuong serve`` / ``demo`` use it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

#: What the ``Server`` header says: no product version, no Python version.
SERVER_NAME = "Loa Phuong"


def tile_origin(url: str | None) -> str | None:
    """The CSP source of a Leaflet tile URL template: ``https://{s}.tile.example/{z}/{x}/{y}.png`` →
    ``https://*.tile.example``; None for a template on the panel itself (relative) or none at all."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None  # relative: served by the panel ('self')
    host = re.sub(r"\{[^}]*\}", "*", parts.netloc)
    if not re.fullmatch(r"[A-Za-z0-9.*:\[\]-]+", host):
        return None  # not something a CSP source may name: no tiles rather than a broken header
    return f"{parts.scheme}://{host}"


def content_security_policy(tiles_url: str | None = None) -> str:
    img = ["'self'"]
    origin = tile_origin(tiles_url)
    if origin:
        img.append(origin)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": img,
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(tiles_url: str | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(tiles_url),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def init_app(app: Flask) -> None:
    headers = security_headers(app.config.get("MAP_TILES_URL"))

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response


class PanelRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, saying ``Server: Loa Phuong`` (also on errors werkzeug answers itself)."""

    server_version = SERVER_NAME  # type: ignore[assignment]  # werkzeug: a property "Werkzeug/x"
    sys_version = ""

    def version_string(self) -> str:
        return SERVER_NAME


def make_panel_server(host: str, port: int, app: Any, fd: int | None = None) -> BaseWSGIServer:
    """The threaded HTTP server of ``serve`` / ``demo``; ``fd``: a listening socket inherited from the parent of
    ``serve --workers N`` (broadcaster/cli.py), shared by the workers."""
    return make_server(host, port, app, threaded=True, request_handler=PanelRequestHandler, fd=fd)
