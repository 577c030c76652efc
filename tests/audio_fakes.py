"""Local stand-ins for the online speech services: the only fakes in the audio tests.

:class:`FakeGoogleTTS` speaks gTTS's wire format (the ``batchexecute`` RPC) and :class:`FakeCloudTTS` the
HTTP engine's contract (a Vietnamese cloud provider), both over real HTTP on 127.0.0.1, so gTTS, requests
and our engines run unmodified; only the far end of the network is replaced.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGoogleTTS:
    """Serve ``mp3`` for each TTS request, or misbehave according to ``mode``.

    Modes: ``"ok"``; an HTTP status code such as ``429`` or ``500``; ``"hang"`` (accept, read the
    request, never answer); ``"garbage"`` (well-formed response whose "audio" is not audio); ``"empty"``
    (HTTP 200 without an audio payload). ``script`` is consumed first, one mode per request (e.g.
    ``[429, 429]`` then ``mode``); ``retry_after`` is sent as a ``Retry-After`` header with error statuses.
    ``times`` records when each request arrived (``time.monotonic()``).
    """

    def __init__(self, mp3: bytes, mode: str | int = "ok") -> None:
        self.mp3 = mp3
        self.mode: str | int = mode
        self.script: list[str | int] = []
        self.retry_after: str | None = None
        self.requests: list[list[Any]] = []  # decoded RPC parameters: [text, lang, slow, "null"]
        self.times: list[float] = []
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gtts", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGoogleTTS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # let hanging handlers finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def response_body(self, audio: bytes) -> bytes:
        """A batchexecute response as Google sends it (gTTS only looks at the ``jQ1olc`` line)."""
        payload = json.dumps([base64.b64encode(audio).decode("ascii")])
        envelope = json.dumps(
            [["wrb.fr", "jQ1olc", payload, None, None, None, "generic"], ["di", 42]],
            separators=(",", ":"),
        )
        return f")]}}'\n\n{len(envelope)}\n{envelope}\n25\n[[\"e\",4,null,null,{len(envelope)}]]\n".encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.endswith("/_/TranslateWebserverUi/data/batchexecute"):
                    self._reply(404, b"not found")
                    return
                freq = urllib.parse.parse_qs(body.decode())["f.req"][0]
                rpc = json.loads(freq)[0][0]
                fake.requests.append(json.loads(rpc[1]))
                fake.times.append(time.monotonic())
                mode = fake.script.pop(0) if fake.script else fake.mode
                if mode == "hang":
                    fake.release.wait(timeout=30)
                    return
                if isinstance(mode, int):
                    extra = {"Retry-After": fake.retry_after} if fake.retry_after else {}
                    self._reply(mode, b"error", extra)
                elif mode == "garbage":
                    self._reply(200, fake.response_body(b"this is not an mp3 file" * 20))
                elif mode == "empty":
                    self._reply(200, b")]}'\n\n12\n[[\"di\",42]]\n")
                else:
                    self._reply(200, fake.response_body(fake.mp3))

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FakeCloudTTS:
    """A Vietnamese cloud TTS provider speaking :class:`audio.tts.HttpEngine`'s contract.

    ``POST /v1/tts`` with ``Authorization: Bearer <key>`` and JSON ``{text, voice, speed}``. A wrong or
    missing key answers 401 with a JSON error. ``mode`` chooses the answer:

    ``"raw"``       the audio itself (``audio/mpeg``);
    ``"url"``       JSON ``{"error": 0, "async": "<base>/files/<n>.mp3"}``; the file answers 404 for the
                    first ``pending_polls`` GETs (still rendering), then the audio;
    ``"url_other_host"`` the same link but on ``localhost`` instead of ``127.0.0.1``;
    ``"base64"``    JSON ``{"audio_base64": "..."}``;
    ``"error_json"`` HTTP 200 with ``{"error": 1, "message": "Quota exceeded"}``;
    ``"html"``      HTTP 200 ``text/html`` (a captive portal, say);
    ``"garbage"``   HTTP 200 ``audio/mpeg`` whose body is not audio;
    ``"hang"``      read the request, never answer.

    ``requests`` keeps ``(method, path, authorization header, JSON body or None)`` for every request.
    """

    def __init__(self, audio: bytes, key: str = "secret-key", mode: str = "raw") -> None:
        self.audio = audio
        self.key = key
        self.mode = mode
        self.pending_polls = 0
        self.requests: list[tuple[str, str, str | None, Any]] = []
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-cloud-tts", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/v1/tts"

    def __enter__(self) -> FakeCloudTTS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(raw.decode("utf-8"))
                except ValueError:
                    payload = None
                auth = self.headers.get("Authorization")
                fake.requests.append(("POST", self.path, auth, payload))
                if self.path != "/v1/tts":
                    self._json(404, {"error": 404, "message": "no such endpoint"})
                    return
                if auth != f"Bearer {fake.key}":
                    self._json(401, {"error": 401, "message": "Invalid API key"})
                    return
                mode = fake.mode
                if mode == "hang":
                    fake.release.wait(timeout=30)
                    return
                if mode == "raw":
                    self._reply(200, "audio/mpeg", fake.audio)
                elif mode in ("url", "url_other_host"):
                    host = "localhost" if mode == "url_other_host" else "127.0.0.1"
                    link = f"http://{host}:{fake.port}/files/{len(fake.requests)}.mp3"
                    self._json(200, {"error": 0, "async": link, "message": "rendering"})
                elif mode == "base64":
                    self._json(200, {"audio_base64": base64.b64encode(fake.audio).decode("ascii")})
                elif mode == "error_json":
                    self._json(200, {"error": 1, "message": "Quota exceeded"})
                elif mode == "html":
                    self._reply(200, "text/html", b"<html><body>Login to Wi-Fi</body></html>")
                else:  # garbage
                    self._reply(200, "audio/mpeg", b"definitely not an mp3 " * 40)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, self.headers.get("Authorization"), None))
                if not self.path.startswith("/files/"):
                    self._json(404, {"error": 404, "message": "not found"})
                    return
                if fake.pending_polls > 0:
                    fake.pending_polls -= 1
                    self._json(404, {"error": 404, "message": "not ready"})
                    return
                self._reply(200, "audio/mpeg", fake.audio)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self._reply(status, "application/json", json.dumps(body).encode())

            def _reply(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
