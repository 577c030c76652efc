"""A live panel for the API fuzzer: HTTP on a free port, its embedded Mosquitto (dynamic security, per-node
logins, exactly what ``make run`` starts), simulated nodes online, and some data to fuzz against.

Used by tests/test_api_fuzz.py (modest example count, in ``make test-all``) and ``make fuzz`` (long run):
``FUZZ_EXAMPLES=200 pytest tests/test_api_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from firmware_sim.fleet import Fleet
from firmware_sim.node import NodeConfig
from werkzeug.serving import make_server

from broadcaster.app import create_app, runtime, start_services, stop_services
from broadcaster.broker import free_port
from broadcaster.config import TestConfig as PanelConfig

PASSWORD = "password-123"
USERS = {"admin": "admin", "officer": "officer", "leader": "leader", "keeper": "admin"}


@dataclass
class LivePanel:
    root: Path
    base: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    fleet: Any = None
    _server: Any = None
    app: Any = None

    def start(self, *, with_nodes: bool = True) -> LivePanel:
        port = free_port()
        # Fuzzing is many requests from one address: the login limiter stays on, with room for the run.
        config = PanelConfig(self.root / "panel", PORT=port, HOST="127.0.0.1", EMBEDDED_BROKER_PORT=free_port(),
                            MQTT_CLIENT_ID=f"panel-{port}", VALIDATE_API_RESPONSES=False)
        self.app = create_app(config)
        service = runtime(self.app).service
        for username, role in USERS.items():
            service.create_user(username, PASSWORD, role=role)
        start_services(self.app)
        assert runtime(self.app).bridge.connected.wait(15), "panel did not connect to its broker"
        self._server = make_server("127.0.0.1", port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{port}"
        for username in USERS:
            r = requests.post(f"{self.base}/api/v1/auth/token", json={"username": username, "password": PASSWORD},
                              timeout=10)
            assert r.status_code == 201, r.text
            self.tokens[username] = r.json()["token"]
        self._seed(with_nodes)
        return self

    def api(self, method: str, path: str, user: str = "admin", **kw: Any) -> Any:
        r = requests.request(method, f"{self.base}/api/v1{path}", timeout=30,
                             headers={"Authorization": f"Bearer {self.tokens[user]}"}, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def _seed(self, with_nodes: bool) -> None:
        """Zones, nodes (online), approved and draft announcements, a schedule, a stream source, a drill."""

        rt = runtime(self.app)
        self.api("POST", "/zones", json={"code": "to-1", "name": "Tổ dân phố 1"})
        self.api("POST", "/zones", json={"code": "to-2", "name": "Tổ dân phố 2", "kind": "village"})
        configs = []
        for node_id, zone in (("loa-1", "to-1"), ("loa-2", "to-2")):
            creds = self.api("POST", "/nodes", json={"node_id": node_id, "zone": zone, "name": node_id})
            configs.append(NodeConfig(node_id=node_id, token=creds["token"], broker_host="127.0.0.1",
                                      broker_port=rt.broker.port, panel_public_key=creds["panel_public_key"],
                                      data_dir=self.root / "nodes" / node_id, topic_prefix=creds["topic_prefix"]))
        ann = self.api("POST", "/announcements", json={"title": "Lịch tiêm chủng", "text": "Sáng mai tiêm chủng.",
                                                       "approve": True})
        self.api("POST", "/announcements", user="officer", json={"title": "Nháp", "text": "Bản nháp."})
        start = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.api("POST", "/schedules", json={"announcement_id": ann["id"], "zones": ["to-1"], "start_at": start})
        self.api("POST", "/stream-sources", json={"code": "vov1", "name": "VOV1", "url": "http://127.0.0.1:9/vov1"})
        if with_nodes:
            self.fleet = Fleet(configs)
            self.fleet.start()

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        stop_services(self.app)
        runtime(self.app).db.dispose()


def schemathesis_bin() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert found, "schemathesis is not installed (pip install -e '.[test]')"
    return found


def run_schemathesis(panel: LivePanel, user: str, *, max_examples: int, report: Path, seed: int = 1,
                     extra: list[str] | None = None) -> tuple[int, dict[str, Any], str]:
    """``schemathesis run`` against the live panel as ``user``, every check on (schemathesis.toml); returns
    (exit code, the JSON report, the console output)."""
    report.parent.mkdir(parents=True, exist_ok=True)
    cmd = [schemathesis_bin(), "run", f"{panel.base}/api/v1/openapi.json",
           "--header", f"Authorization: Bearer {panel.tokens[user]}",
           "--max-examples", str(max_examples), "--seed", str(seed),
           "--phases", os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing"), "--workers", "1",
           "--request-timeout", "30",
           "--report", "json", "--report-json-path", str(report), "--output-truncate", "true",
           "--suppress-health-check", "all", *(extra or [])]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"}
    root = Path(__file__).resolve().parent.parent  # schemathesis.toml: the per-operation settings
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3000, cwd=root)
    data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return done.returncode, data, done.stdout + done.stderr
