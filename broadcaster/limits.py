"""Resource limits of the panel (issue 13): request body sizes per route and the recording decode queue.

Two parts:

* :class:`DecodeSlots` (the service layer's, outside any request): at most ``MAX_CONCURRENT_DECODES`` recordings
  are decoded and mastered at once (ffmpeg + the chain hold up to ~100 MB each); a further upload waits in a
  queue of at most ``DECODE_QUEUE_LENGTH`` for ``DECODE_QUEUE_WAIT_S`` seconds, then is refused with
  :class:`Busy` (``busy``, 503, ``Retry-After``). Web and API share it: both go through
  ``audio_settings.create_recording``.
* :func:`init_app` (the Flask hook, called once from ``create_app``): ``MAX_CONTENT_LENGTH`` sized for the
  biggest upload, and a smaller bound per route, set before anything reads the body (also before the CSRF
  check parses a form): uploads ``MAX_UPLOAD_BYTES`` + 64 KiB of multipart fields, the registry CSV import
  ``MAX_IMPORT_BYTES``, every other request ``MAX_REQUEST_BYTES`` (1 MiB). Over the bound: ``413`` — in
  ``/api/v1`` the JSON error ``too_large`` (``upload_too_large``, field ``file``, on the upload route), on a web page a
  flash message and the page again (the form's input is lost: the body was never read).

README.md "Resource limits" lists the settings.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, flash, jsonify, redirect, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from audio.upload import MAX_UPLOAD_BYTES
from broadcaster.config import Config
from broadcaster.errors import ServiceError
from broadcaster.i18n import gettext, translate

log = logging.getLogger(__name__)

#: Multipart fields beside the file (title, description, options) and the part headers.
MULTIPART_SLACK = 64 * 1024
#: What a refused upload is told to wait before trying again (the ``Retry-After`` header).
RETRY_AFTER_S = 30

#: The defaults of the settings read here, from the configuration model (broadcaster/config.py), for a
#: configuration object that leaves one unset.
DEFAULTS: dict[str, int | float] = {
    name: Config.model_fields[name].default
    for name in ("MAX_CONCURRENT_DECODES", "DECODE_QUEUE_WAIT_S", "DECODE_QUEUE_LENGTH", "MAX_REQUEST_BYTES",
                 "MAX_IMPORT_BYTES")
}

#: Endpoints whose body is an uploaded recording / the registry CSV; every other route gets MAX_REQUEST_BYTES.
UPLOAD_ENDPOINTS = frozenset({"api_audio.upload_announcement", "audio.upload_announcement"})
IMPORT_ENDPOINTS = frozenset({"api_fleet.fleet_import", "fleet.fleet_import"})


def setting(config: Any, name: str) -> Any:
    value = getattr(config, name, None)
    return DEFAULTS[name] if value in (None, "") else value


class Busy(ServiceError):
    """Too many recordings are being processed: try again later (503 + ``Retry-After``)."""

    def __init__(self, retry_after: int = RETRY_AFTER_S) -> None:
        # English here; the API and the pages say it in Vietnamese from the catalogue (i18n/vi-limits.json).
        super().__init__(code="busy", message="the panel is busy processing other recordings; try again in a minute",
                         status=503)
        self.retry_after = retry_after  # sent as Retry-After (broadcaster/api/contract.py)


class DecodeSlots:
    """A counting semaphore with a bounded, time-limited queue."""

    def __init__(self, slots: int, queue_length: int, wait_s: float) -> None:
        self.slots = max(1, int(slots))
        self.queue_length = max(0, int(queue_length))
        self.wait_s = max(0.0, float(wait_s))
        self._cond = threading.Condition()
        self.active = 0
        self.waiting = 0
        self.refused = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one decode slot for the ``with`` block, or raise :class:`Busy`."""
        with self._cond:
            if self.active >= self.slots:
                if self.waiting >= self.queue_length:
                    self.refused += 1
                    log.warning("recording refused: %d decoding, %d waiting", self.active, self.waiting)
                    raise Busy()
                self.waiting += 1
                deadline = time.monotonic() + self.wait_s
                try:
                    while self.active >= self.slots:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            self.refused += 1
                            log.warning("recording refused after %.1f s in the queue (%d decoding)",
                                        self.wait_s, self.active)
                            raise Busy()
                        self._cond.wait(left)
                finally:
                    self.waiting -= 1
            self.active += 1
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify()


_create_lock = threading.Lock()
#: The one queue of each panel, keyed by its PanelService (gone with it: several panels live in one test process).
_queues: weakref.WeakKeyDictionary[Any, DecodeSlots] = weakref.WeakKeyDictionary()


def decode_slots(service: Any) -> DecodeSlots:
    """The one queue of a panel, sized from its configuration at first use."""
    slots = _queues.get(service)
    if slots is None:
        with _create_lock:
            slots = _queues.get(service)
            if slots is None:
                cfg = service.config
                slots = DecodeSlots(setting(cfg, "MAX_CONCURRENT_DECODES"), setting(cfg, "DECODE_QUEUE_LENGTH"),
                                    setting(cfg, "DECODE_QUEUE_WAIT_S"))
                _queues[service] = slots
    return slots


# ------------------------------------------------------------------------------------- request bodies
def upload_body_limit(config: Any) -> int:
    return int(getattr(config, "MAX_UPLOAD_BYTES", None) or MAX_UPLOAD_BYTES) + MULTIPART_SLACK


def global_body_limit(config: Any) -> int:
    """``MAX_CONTENT_LENGTH``: the biggest body any route takes."""
    return max(upload_body_limit(config), int(setting(config, "MAX_IMPORT_BYTES")),
               int(setting(config, "MAX_REQUEST_BYTES")))


def route_body_limit(config: Any, endpoint: str | None) -> int:
    if endpoint in UPLOAD_ENDPOINTS:
        return upload_body_limit(config)
    if endpoint in IMPORT_ENDPOINTS:
        return int(setting(config, "MAX_IMPORT_BYTES"))
    return int(setting(config, "MAX_REQUEST_BYTES"))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} kB"


def init_app(app: Flask) -> None:
    """Body bounds per route and the web's 413 answer; called once by ``create_app``."""
    config = app.extensions["loaphuong"].config
    app.config["MAX_CONTENT_LENGTH"] = global_body_limit(config)

    def bound_body() -> None:
        if request.routing_exception is not None:
            return  # no such page: 404 / 405 without reading the body
        limit = route_body_limit(config, request.endpoint)
        ceiling = app.config.get("MAX_CONTENT_LENGTH")
        if ceiling:
            limit = min(limit, int(ceiling))
        request.max_content_length = limit
        size = request.content_length
        if size is None and request.environ.get("wsgi.input_terminated"):
            # Chunked, no Content-Length: werkzeug reads at most the limit and stops there without a word, so
            # read it now (cached for the view and the form parser) and call a body that reaches the limit too
            # large — never a silently cut body (bad JSON, a truncated file).
            size = len(request.get_data(cache=True, parse_form_data=False))
            size = size + 1 if size >= limit else size
        if size is not None and size > limit:
            if request.endpoint == "api_audio.upload_announcement":  # the recording's own code (upload_<reason>)
                raise ServiceError("upload_too_large", f"the file is too large: the limit is {_size(limit)}",
                                   "file", 413)
            raise RequestEntityTooLarge(f"the request body is larger than this route accepts ({limit} bytes)")

    # First of all before_request functions: the CSRF check reads the form and must meet the bound already.
    app.before_request_funcs.setdefault(None, []).insert(0, bound_body)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        if request.path.startswith("/api/"):
            # The API's own HTTP error answer (broadcaster/api/contract.py: code too_large), else a plain one.
            api_handler = app.error_handler_spec.get(None, {}).get(None, {}).get(HTTPException)
            if api_handler is not None:
                return api_handler(exc)
            return jsonify({"error": {"code": "too_large", "message": translate("error.too_large", "vi")}}), 413
        limit = request.max_content_length or app.config.get("MAX_CONTENT_LENGTH") or 0
        flash(gettext("error.too_large_web", limit=_size(int(limit))), "error")
        # Back to the page the form was on (as a GET), never to another site; the form's input is lost.
        back = request.referrer or ""
        if not back.startswith(request.host_url):
            back = request.path if request.endpoint in UPLOAD_ENDPOINTS | IMPORT_ENDPOINTS else "/"
        return redirect(back, 303)
