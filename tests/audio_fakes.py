"""A local stand-in for Google Translate's TTS endpoint: the only fake in the audio tests.

It speaks gTTS's wire format (the ``batchexecute`` RPC) over real HTTP on 127.0.0.1, so gTTS, requests
and our engine run unmodified; only the far end of the network is replaced.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGoogleTTS:
    """Serve ``mp3`` for each TTS request, or misbehave according to ``mode``.

    Modes: ``"ok"``; an HTTP status code such as ``429`` or ``500``; ``"hang"`` (accept, read the
    request, never answer); ``"garbage"`` (well-formed response whose "audio" is not audio); ``"empty"``
    (HTTP 200 without an audio payload).
    """

    def __init__(self, mp3: bytes, mode: str | int = "ok") -> None:
        self.mp3 = mp3
        self.mode: str | int = mode
        self.requests: list[list[Any]] = []  # decoded RPC parameters: [text, lang, slow, "null"]
        self._release = threading.Event()
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
        self._release.set()  # let hanging handlers finish
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
                mode = fake.mode
                if mode == "hang":
                    fake._release.wait(timeout=30)
                    return
                if isinstance(mode, int):
                    self._reply(mode, b"error")
                elif mode == "garbage":
                    self._reply(200, fake.response_body(b"this is not an mp3 file" * 20))
                elif mode == "empty":
                    self._reply(200, b")]}'\n\n12\n[[\"di\",42]]\n")
                else:
                    self._reply(200, fake.response_body(fake.mp3))

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
