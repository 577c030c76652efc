"""Test harness that plays the panel for simulated nodes: signs plans and commands, serves media over
HTTP with bearer tokens, and records what nodes publish. Real sockets and a real broker, no mocks."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from firmware_sim.node import NodeConfig
from imageio_ffmpeg import get_ffmpeg_exe

from devices.protocol import Topics, format_ts, public_key_b64, sign_payload


def ts(epoch: float) -> str:
    return format_ts(datetime.fromtimestamp(epoch, UTC))


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until truthy; return its value (or the last falsy value on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def make_mp3(seconds: float = 1.0) -> bytes:
    """A real MP3 (440 Hz sine) made with the ffmpeg binary of imageio-ffmpeg."""

    cmd = [get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
           f"sine=frequency=440:duration={seconds}", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k",
           "-f", "mp3", "pipe:1"]
    return subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout


class _HttpServer:
    """A stdlib HTTP server on 127.0.0.1 in a thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _MediaHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        owner: MediaServer = self.server.owner  # type: ignore[attr-defined]
        auth = self.headers.get("Authorization", "")
        owner.requests.append({"path": self.path, "auth": auth, "at": time.monotonic()})
        if not auth.startswith("Bearer ") or auth[7:] not in owner.tokens:
            self.send_response(401)
            self.end_headers()
            return
        body = owner.files.get(self.path)
        time.sleep(owner.delays.get(self.path, 0.0))  # a slow server (or a file still being uploaded)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class MediaServer(_HttpServer):
    """Serves ``files`` (path → bytes) to requests carrying one of ``tokens`` as a bearer token, each
    answered after ``delays[path]`` seconds if set."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delays: dict[str, float] = {}
        self.tokens: set[str] = set()
        super().__init__(_MediaHandler)


class Collector:
    """A subscriber that records every message on ``{root}/nodes/+/#`` (optionally a persistent session)."""

    def __init__(self, host: str, port: int, prefix: str = "loaphuong", client_id: str | None = None,
                 persistent: bool = False) -> None:
        self.topics = Topics(prefix)
        self.messages: list[tuple[str, bytes, bool]] = []
        #: Broker → subscriber redeliveries (DUP flag set by the broker, e.g. after its restart). QoS 1 is
        #: at-least-once on that hop too; they are kept apart so tests can check the node's own resends.
        self.dups: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"collector-{secrets.token_hex(4)}",
                                  clean_session=not persistent, protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(host, port, 30)
        self.client.loop_start()
        assert self._subscribed.wait(5), "collector did not subscribe"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(f"{self.topics.root}/nodes/+/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.dup:
                self.dups.append((msg.topic, bytes(msg.payload)))
            else:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, node_id: str, leaf: str) -> list[dict[str, Any]]:
        topic = self.topics.node(node_id, leaf)
        with self._lock:
            raws = [p for t, p, _ in self.messages if t == topic]
        return [json.loads(p) for p in raws if p]

    def events(self, node_id: str, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.payloads(node_id, "events") if name is None or e["event"] == name]

    def wait_events(self, node_id: str, name: str, count: int = 1,
                    timeout: float = 5.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.events(node_id, name)) >= count, timeout)
        return self.events(node_id, name)

    def acks(self, node_id: str) -> list[dict[str, Any]]:
        return self.payloads(node_id, "ack")

    def wait_ack(self, node_id: str, command_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        def find() -> dict[str, Any] | None:
            return next((a for a in self.acks(node_id) if a["command_id"] == command_id), None)

        return wait_until(find, timeout)

    def statuses(self, node_id: str) -> list[dict[str, Any]]:
        return self.payloads(node_id, "status")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_status(host: str, port: int, node_id: str, prefix: str = "loaphuong",
                    timeout: float = 3.0) -> dict[str, Any] | None:
    """What a fresh subscriber sees retained on a node's status topic."""
    got: list[dict[str, Any]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{secrets.token_hex(4)}",
                         protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe(Topics(prefix).status(node_id), qos=1)
    client.on_message = lambda c, u, m: got.append(json.loads(m.payload)) if m.retain and m.payload else None
    client.connect(host, port, 30)
    client.loop_start()
    try:
        wait_until(lambda: got, timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1] if got else None


class Panel:
    """The panel's side of protocol v1, for tests: key, signed plans/commands, media server, publisher."""

    def __init__(self, host: str, port: int, prefix: str = "loaphuong") -> None:
        self.host, self.port = host, port
        self.topics = Topics(prefix)
        self.key = Ed25519PrivateKey.generate()
        self.public_key = public_key_b64(self.key)
        self.media = MediaServer()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"panel-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv311)
        self.client.connect(host, port, 30)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.media.close()

    def node_config(self, node_id: str, data_dir: Path, **kw: Any) -> NodeConfig:
        token = secrets.token_urlsafe(16)
        self.media.tokens.add(token)
        return NodeConfig(node_id=node_id, token=token, broker_host=self.host, broker_port=self.port,
                          panel_public_key=self.public_key, data_dir=data_dir, **kw)

    def add_media(self, data: bytes, duration_ms: int = 300, name: str | None = None,
                  sha256: str | None = None) -> dict[str, Any]:
        """Serve ``data``; returns the plan's ``media`` object (``sha256`` may be forced to lie)."""
        path = f"/media/{name or secrets.token_hex(6)}.mp3"
        self.media.files[path] = data
        return {"url": self.media.base + path, "sha256": sha256 or hashlib.sha256(data).hexdigest(),
                "bytes": len(data), "duration_ms": duration_ms, "content_type": "audio/mpeg"}

    @staticmethod
    def item(item_id: str, start: float, media: dict[str, Any] | None, *, priority: str = "normal",
             max_late_ms: int = 60_000, duration_ms: int | None = None, **extra: Any) -> dict[str, Any]:
        """A plan item; ``extra`` adds v1 additions as they go on the wire (``end_at`` as epoch seconds,
        ``stream``, ``drill``, ``volume``). ``media=None`` for a stream item."""
        item: dict[str, Any] = {"id": item_id, "start": ts(start), "priority": priority, "title": item_id,
                                "max_late_ms": max_late_ms, "schedule_id": f"sch-{item_id}"}
        if media is not None:
            item["media"] = dict(media)
            if duration_ms is not None:
                item["media"]["duration_ms"] = duration_ms
        if "end_at" in extra:
            extra["end_at"] = ts(extra["end_at"])
        return {**item, **extra}

    def plan(self, node_id: str, version: int, items: list[dict[str, Any]],
             key: Ed25519PrivateKey | None = None, **extra: Any) -> dict[str, Any]:
        """A signed plan; ``extra`` adds plan-level fields (``tz``, ``quiet_hours``, ``volume_profile``)."""
        now = time.time()
        body = {"type": "plan", "protocol": 1, "node_id": node_id, "version": version,
                "generated_at": ts(now), "valid_until": ts(now + 48 * 3600), "items": items, **extra}
        return sign_payload(body, key or self.key)

    def command(self, node_id: str, name: str, args: dict[str, Any] | None = None, *, ttl: float = 30,
                command_id: str | None = None, key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = {"type": "command", "protocol": 1, "node_id": node_id,
                "id": command_id or secrets.token_hex(8), "name": name, "args": args or {},
                "issued_at": format_ts(now), "expires_at": format_ts(now + timedelta(seconds=ttl))}
        return sign_payload(body, key or self.key)

    def _publish(self, topic: str, payload: dict[str, Any] | bytes, retain: bool) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, raw, qos=1, retain=retain).wait_for_publish(5)

    def publish_plan(self, node_id: str, payload: dict[str, Any] | bytes) -> None:
        self._publish(self.topics.plan(node_id), payload, retain=True)

    def publish_cmd(self, node_id: str, payload: dict[str, Any] | bytes, retain: bool = False) -> None:
        """``retain=True`` only to test a node against a panel bug: the panel never retains commands."""
        self._publish(self.topics.cmd(node_id), payload, retain=retain)


class _PanelApiHandler(BaseHTTPRequestHandler):
    def _json(self, code: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802
        owner: PanelApiStub = self.server.owner  # type: ignore[attr-defined]
        if self.path == "/api/v1/panel-key":
            self._json(200, {"public_key": owner.public_key, "algorithm": "Ed25519"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        owner: PanelApiStub = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/api/v1/nodes":
            self._json(404, {"error": "not found"})
        elif self.headers.get("Authorization") != f"Bearer {owner.api_token}":
            self._json(401, {"error": "unauthorized"})
        elif body.get("node_id") in owner.registered:
            self._json(409, {"error": "exists"})
        else:
            token = secrets.token_urlsafe(16)
            owner.registered[body["node_id"]] = token
            self._json(201, {"node_id": body["node_id"], "token": token, "panel_public_key": owner.public_key,
                             "topic_prefix": owner.topic_prefix})

    def log_message(self, *args: Any) -> None:
        pass


class PanelApiStub(_HttpServer):
    """The two REST endpoints ``loaphuong sim`` uses: node registration and the panel key."""

    def __init__(self, public_key: str, api_token: str, topic_prefix: str = "loaphuong") -> None:
        self.public_key, self.api_token, self.topic_prefix = public_key, api_token, topic_prefix
        self.registered: dict[str, str] = {}
        super().__init__(_PanelApiHandler)
