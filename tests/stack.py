"""A whole deployment on loopback for end-to-end tests: real broker, panel over HTTP, simulated nodes."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import requests
from firmware_sim.fleet import Fleet
from firmware_sim.node import NodeConfig
from werkzeug.serving import make_server

from broadcaster.app import create_app, runtime, start_services, stop_services
from broadcaster.broker import EmbeddedBroker, free_port
from broadcaster.config import TestConfig

ADMIN = ("admin", "admin-password-1")


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that); fail with ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


class PanelStack:
    def __init__(self, root: Path, broker: EmbeddedBroker, **config: Any) -> None:
        """``config``: further TestConfig settings, e.g. the panel's broker login (MQTT_USERNAME/PASSWORD)."""
        self.root = root
        self.broker = broker
        self.port = free_port()
        self.config = TestConfig(root / "panel", MQTT_URL=broker.url, PORT=self.port, HOST="127.0.0.1",
                                 MQTT_CLIENT_ID=f"panel-{self.port}", **config)
        self.app = create_app(self.config)
        self.service = runtime(self.app).service
        self.service.create_user(*ADMIN, role="admin")
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self._server = None
        self.fleet: Fleet | None = None
        self.tokens: dict[str, str] = {}
        self.zones: dict[str, str] = {}

    # ------------------------------------------------------------------ panel
    def start_panel(self) -> None:
        start_services(self.app)
        assert runtime(self.app).bridge.connected.wait(10), "panel did not connect to the broker"
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        token = self.http.post(f"{self.base}/api/v1/auth/token",
                               json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10).json()["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def stop_panel(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        stop_services(self.app)

    def api(self, method: str, path: str, expect: int | None = None, *, published: bool = True, **kw: Any) -> Any:
        """One API call. After a change, by default, wait until its plans are out as well: the panel answers at
        once and publishes in the background (``GET /api/v1/publication``), and the tests reason about nodes."""
        r = self.http.request(method, f"{self.base}/api/v1{path}", timeout=30, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        if published and method.upper() not in ("GET", "HEAD"):
            self.wait_published()
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def wait_published(self, timeout: float = 30) -> None:
        """Until the plans of every change made so far are published (the panel's background queue is idle)."""
        wait_for(lambda: self.api("GET", "/publication", 200)["state"] in ("idle", "immediate"), timeout,
                 "the plans of the last changes published")

    # ------------------------------------------------------------------ fleet
    def provision(self, layout: dict[str, list[str]]) -> None:
        """layout: zone code → node ids. Zones and nodes are registered over the API."""
        for zone, nodes in layout.items():
            self.api("POST", "/zones", 201, json={"code": zone, "name": f"Tổ dân phố {zone}"})
            for node_id in nodes:
                body = self.api("POST", "/nodes", 201, json={"node_id": node_id, "zone": zone})
                self.tokens[node_id] = body["token"]
                self.zones[node_id] = zone

    def node_config(self, node_id: str, **kw: Any) -> NodeConfig:
        host, port = self.broker.host, self.broker.port
        return NodeConfig(node_id=node_id, token=self.tokens[node_id], broker_host=host, broker_port=port,
                          panel_public_key=self.service.public_key_b64, data_dir=self.root / "nodes" / node_id,
                          topic_prefix=self.config.MQTT_PREFIX, **kw)

    def start_fleet(self) -> Fleet:
        self.fleet = Fleet([self.node_config(n) for n in self.tokens], playback_log=self.root / "plays.jsonl")
        self.fleet.start()
        return self.fleet

    def deploy(self, layout: dict[str, list[str]]) -> PanelStack:
        """Register ``layout`` (zone → node ids), start those nodes and wait until all are online."""
        self.provision(layout)
        self.start_fleet()
        self.wait_online()
        return self

    def wait_online(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = self.api("GET", "/nodes", 200)
            if all(n["state"] == "online" for n in nodes) and len(nodes) == len(self.tokens):
                return
            time.sleep(0.1)
        raise AssertionError(f"nodes not online: {self.api('GET', '/nodes')}")

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.stop_panel()
        runtime(self.app).db.dispose()

    # ------------------------------------------------------------------ web
    def web_login(self) -> requests.Session:
        web = requests.Session()
        page = web.get(f"{self.base}/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = web.post(f"{self.base}/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token},
                     timeout=10, allow_redirects=False)
        assert r.status_code == 302
        return web
