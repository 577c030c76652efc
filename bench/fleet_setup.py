"""Real parts for the fleet benchmarks: Mosquitto sized for 10 000 clients, a panel on HTTP, bulk provisioning.

Registering 10 000 nodes through ``POST /api/v1/nodes`` publishes one plan per request; a province is
provisioned once, from a CSV, so the benchmarks insert the node rows directly (the same columns and token hash
as ``PanelService.register_node``) and publish all plans in one go.
"""

from __future__ import annotations

import re
import resource
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert, select
from werkzeug.serving import make_server

from broadcaster.app import create_app, runtime, start_services, stop_services
from broadcaster.broker import EmbeddedBroker, free_port
from broadcaster.config import TestConfig
from broadcaster.models import Node, Zone
from devices.registry import new_token, token_hash

ADMIN = ("admin", "admin-password-1")

#: Mosquitto 2.0 accepts unlimited connections by default, but only as many as its fd limit; say it explicitly.
MOSQUITTO_SCALE_CONFIG = "max_connections -1\n"


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (inherited by the broker and the simulator)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_mosquitto(data_dir: Path, extra_hosts: tuple[str, ...] = ()) -> EmbeddedBroker:
    broker = EmbeddedBroker(kind="mosquitto", data_dir=data_dir, extra_config=MOSQUITTO_SCALE_CONFIG,
                            extra_hosts=extra_hosts)
    broker.start()
    return broker


class Panel:
    """create_app + start_services + a threaded HTTP server on a free port, with an admin API token."""

    def __init__(self, root: Path, broker: EmbeddedBroker, **config: Any) -> None:
        self.port = free_port()
        self.config = TestConfig(root / "panel", MQTT_URL=broker.url, PORT=self.port, HOST="127.0.0.1",
                                 MQTT_CLIENT_ID=f"panel-{self.port}",
                                 # production answers: the tests' check of every answer against the document
                                 # costs time that is not the panel's
                                 VALIDATE_API_RESPONSES=False, **config)
        self.app = create_app(self.config)
        self.rt = runtime(self.app)
        self.service = self.rt.service
        self.admin = self.service.create_user(*ADMIN, role="admin")
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self._server: Any = None

    def start(self) -> None:
        start_services(self.app)
        assert self.rt.bridge.connected.wait(20), "panel did not connect to the broker"
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        token = self.http.post(f"{self.base}/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]},
                               timeout=30).json()["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def web_session(self) -> requests.Session:
        """A browser's session: logged in through the login form (with its CSRF token), as the admin."""
        session = requests.Session()
        page = session.get(f"{self.base}/login", timeout=30).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token is not None, "no CSRF token on the login page"
        r = session.post(f"{self.base}/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                                      "csrf_token": token.group(1)}, timeout=30)
        assert r.status_code == 200 and "/login" not in r.url, (r.status_code, r.url)
        return session

    def second_person(self, username: str = "lanh-dao-2", password: str = "leader-password-2") -> Panel:
        """The same panel as a second leader (two-person release is on by default): ``.api`` calls as her."""
        self.service.create_user(username, password, role="leader")
        other = object.__new__(Panel)
        other.__dict__.update(self.__dict__)
        other.http = requests.Session()
        token = other.http.post(f"{self.base}/api/v1/auth/token", json={"username": username, "password": password},
                                timeout=30).json()["token"]
        other.http.headers["Authorization"] = f"Bearer {token}"
        return other

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        r = self.http.request(method, f"{self.base}/api/v1{path}", timeout=300, **kw)
        if expect is not None and r.status_code != expect:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        stop_services(self.app)
        self.rt.db.dispose()


def bulk_register(service: Any, zone: str, count: int, prefix: str = "loa") -> list[dict[str, str]]:
    """Create ``zone`` and ``count`` nodes in it with fresh tokens; publish their plans. Returns credentials."""
    service.create_zone(zone, f"Cụm loa {zone}")
    creds = [{"node_id": f"{prefix}-{i:05d}", "token": new_token()} for i in range(1, count + 1)]
    with service.db.session() as s:
        zone_id, ward_id = s.execute(select(Zone.id, Zone.ward_id).where(Zone.code == zone)).one()
        rows = [{"node_id": c["node_id"], "name": c["node_id"], "zone_id": zone_id, "ward_id": ward_id,
                 "token_hash": token_hash(c["token"])} for c in creds]
        for i in range(0, len(rows), 2000):
            s.execute(insert(Node), rows[i : i + 2000])
    t = time.monotonic()
    service.publish_plans([c["node_id"] for c in creds])
    print(f"  registered {count} nodes in zone {zone}; first plans published in {time.monotonic() - t:.1f} s",
          flush=True)
    return creds
