"""The broker enforces the registry (issue 12, R7), on a REAL Mosquitto with real clients, no mocks.

Two deployments, same checks:
- ``embedded``: what ``loaphuong serve`` / ``demo`` / ``make run`` start (no LOAPHUONG_MQTT_URL): the panel's own
  Mosquitto with the dynamic-security plugin;
- ``external``: a production Mosquitto started on the files ``loaphuong broker-config`` writes, the panel
  connected with the generated ``panel.env`` (LOAPHUONG_BROKER_REGISTRY=dynsec).

Rotating a token or deleting a node must make the broker refuse the old credential within 5 s and drop a
session already connected with it, with no operator action.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from conftest import ADMIN, require_mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broadcaster.app import create_app, runtime, start_services, stop_services
from broadcaster.broker import free_port, mosquitto_binary, port_open
from broadcaster.brokerconf import write_broker_config
from broadcaster.config import TestConfig
from broadcaster.services import ServiceError

pytestmark = pytest.mark.mosquitto

REVOCATION_LIMIT_S = 5.0


def require_clients() -> None:
    require_mosquitto()
    if shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"):
        return
    pytest.fail("mosquitto_pub/mosquitto_sub are required (make test installs them: apt-get install mosquitto-clients)")


class Client:
    """A paho client that records its CONNACK, its messages and when it was disconnected. No auto-reconnect
    (``connect`` once): a dropped session stays dropped, so the test sees it."""

    def __init__(self, port: int, username: str | None, password: str | None, client_id: str | None = None,
                 subscribe: list[str] | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username or "",
                                  protocol=mqtt.MQTTv311)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: list[tuple[str, bytes, bool]] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnected_at: float | None = None
        self.rc: ReasonCode | None = None
        self.granted: list[ReasonCode] = []
        self._subscribe = subscribe or []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.granted.extend(rcs)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.connected.wait(5)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.rc = rc
        if not rc.is_failure and self._subscribe:
            client.subscribe([(t, 1) for t in self._subscribe])
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnected_at = time.monotonic()
        self.disconnected.set()
        client.loop_stop()  # no reconnect: the test looks at the first session only

    @property
    def ok(self) -> bool:
        return self.rc is not None and not self.rc.is_failure and not self.disconnected.is_set()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def login(port: int, username: str | None, password: str | None, client_id: str | None = None) -> str:
    """Connect once: 'ok', or the reason the broker refused (CONNACK), or 'no answer'."""
    c = Client(port, username, password, client_id)
    try:
        if c.rc is None:
            return "no answer"
        return "ok" if not c.rc.is_failure else str(c.rc)
    finally:
        c.stop()


def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# ------------------------------------------------------------------------------------------ deployments
class Deployment:
    """A panel (service layer + bridge + broker admin) and its broker; ``port`` is the broker's."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.root = kind, root
        self.config = TestConfig(root / "panel", EMBEDDED_BROKER_PORT=free_port(), MQTT_CLIENT_ID="panel-bridge")
        self.app = create_app(self.config)
        self.rt = runtime(self.app)
        self.service = self.rt.service
        self.topics = self.service.topics
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.out = root / "broker-config"

    # external Mosquitto ------------------------------------------------------------------------
    def provision_external(self) -> None:
        """`loaphuong broker-config` with the registry as it stands, then the panel takes panel.env."""

        self.port = free_port()
        files = write_broker_config(self.service, self.out, port=self.port, bind="127.0.0.1",
                                    run_as="root" if os.geteuid() == 0 else None)
        env = dict(line.split("=", 1) for line in files.panel_env.read_text().splitlines())
        self.config.MQTT_URL = f"mqtt://127.0.0.1:{self.port}"
        self.config.MQTT_USERNAME = env["LOAPHUONG_MQTT_USERNAME"]
        self.config.MQTT_PASSWORD = env["LOAPHUONG_MQTT_PASSWORD"]
        self.config.BROKER_REGISTRY = env["LOAPHUONG_BROKER_REGISTRY"]
        self.start_external_broker()

    def start_external_broker(self) -> None:
        log = open(self.root / "mosquitto.log", "ab")  # noqa: SIM115 — the child keeps it
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.out / "mosquitto.conf")],
                                     stdout=log, stderr=log)
        log.close()
        assert wait_until(lambda: port_open("127.0.0.1", self.port), 10), (self.root / "mosquitto.log").read_text()

    def stop_external_broker(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    # panel ------------------------------------------------------------------------------------------
    def start_panel(self) -> None:
        start_services(self.app)
        assert self.rt.bridge.connected.wait(10), "panel did not log in to its broker"
        assert self.rt.broker_admin is not None and self.rt.broker_admin.ready.wait(10), "broker admin not ready"
        if self.kind == "embedded":
            self.port = self.rt.broker.port

    def stop_panel(self) -> None:
        stop_services(self.app)

    @property
    def panel_login(self) -> tuple[str, str]:
        """The panel's broker login (not pinned to a client id): the observer tests use for the whole tree."""
        return self.config.MQTT_USERNAME, self.config.MQTT_PASSWORD

    def stop(self) -> None:
        self.stop_panel()
        self.stop_external_broker()
        self.rt.db.dispose()


@pytest.fixture(params=["embedded", "external"])
def deployment(request, tmp_path):
    """Nodes n1, n2 registered (tokens in ``.tokens``), panel running, broker secured and managed."""
    require_clients()
    d = Deployment(request.param, tmp_path)
    d.service.create_zone("to-1", "Tổ 1")
    d.tokens = {}
    if request.param == "external":
        # registered before the broker exists: broker-config carries them (hashes only) into its JSON
        for node_id in ("n1", "n2"):
            d.tokens[node_id] = d.service.register_node(node_id, zone="to-1")[1]
        d.provision_external()
        d.start_panel()
    else:
        d.start_panel()
        # registered while the panel runs: createClient over $CONTROL
        for node_id in ("n1", "n2"):
            d.tokens[node_id] = d.service.register_node(node_id, zone="to-1")[1]
    yield d
    d.stop()


# ----------------------------------------------------------------------------------------------- tests
def test_anonymous_and_unknown_logins_refused(deployment):
    d = deployment
    assert login(d.port, None, None, "anon") != "ok"
    assert login(d.port, "n1", "not-the-token") != "ok"
    assert login(d.port, "stranger", "whatever") != "ok"
    assert login(d.port, "n1", d.tokens["n1"], client_id="n2") != "ok"  # pinned to client id = node id
    assert login(d.port, "n1", d.tokens["n1"]) == "ok"
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(d.port), "-t", "#", "-W", "2"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and r.stdout == ""


def test_node_reads_and_writes_only_its_own_topics(deployment):
    d = deployment
    t = d.topics
    n1 = Client(d.port, "n1", d.tokens["n1"], subscribe=[t.plan("n1"), t.cmd("n1")])
    spy = Client(d.port, "n1", d.tokens["n1"], client_id="n1",  # n1 trying to read n2 (its own session again)
                 subscribe=[t.plan("n2"), t.cmd("n2"), t.all_nodes("plan"), "#"])
    n1.stop()
    try:
        assert spy.ok
        assert wait_until(lambda: len(spy.granted) == 4, 5)
        assert all(rc.is_failure for rc in spy.granted), spy.granted  # every foreign/wildcard filter refused
        d.service.publish_plans(force=True)
        d.service.send_command("n2", "ping")
        time.sleep(0.5)
        assert spy.messages == []
        # n1 writes n2's events and status, and a plan: accepted by the broker (QoS 1) and never delivered
        watcher = Client(d.port, *d.panel_login, client_id="test-observer",
                         subscribe=[t.all_nodes("events"), t.all_nodes("status"), t.all_nodes("plan")])
        assert watcher.ok
        time.sleep(0.3)
        before = len(watcher.messages)
        for topic in (t.events("n2"), t.status("n2"), t.plan("n2")):
            spy.client.publish(topic, b'{"forged":true}', qos=1).wait_for_publish(5)
        spy.client.publish(t.events("n1"), b'{"own":true}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: any(m[0] == t.events("n1") for m in watcher.messages[before:]), 5)
        assert [m for m in watcher.messages[before:] if b"forged" in m[1]] == []
        watcher.stop()
    finally:
        spy.stop()


def _revoke_and_measure(d: Deployment, node_id: str, revoke: Any) -> dict[str, float]:
    """Connect ``node_id`` with its token, call ``revoke()``; seconds until its session was closed and
    until the old token was refused."""
    node = Client(d.port, node_id, d.tokens[node_id], subscribe=[d.topics.cmd(node_id)])
    assert node.ok, node.rc
    t0 = time.monotonic()
    revoke()
    called = time.monotonic() - t0
    assert node.disconnected.wait(REVOCATION_LIMIT_S), "the connected session was not dropped"
    dropped = node.disconnected_at - t0
    refused = wait_until(lambda: login(d.port, node_id, d.tokens[node_id]) != "ok", REVOCATION_LIMIT_S)
    refused_after = time.monotonic() - t0
    assert refused, "the old credential still logs in"
    assert dropped < REVOCATION_LIMIT_S and refused_after < REVOCATION_LIMIT_S
    print(f"{d.kind}: revoke call {called * 1000:.1f} ms, session dropped after {dropped * 1000:.1f} ms, "
          f"old credential refused by {refused_after * 1000:.1f} ms")
    return {"call": called, "dropped": dropped, "refused": refused_after}


def test_rotating_a_token_refuses_the_old_one_and_drops_its_session(deployment):
    d = deployment
    old = d.tokens["n1"]
    new: dict[str, str] = {}
    _revoke_and_measure(d, "n1", lambda: new.setdefault("token", d.service.rotate_node_token("n1")))
    assert login(d.port, "n1", old) != "ok"
    assert login(d.port, "n1", new["token"]) == "ok"
    # the new token is a full node login: it reads its plan
    c = Client(d.port, "n1", new["token"], subscribe=[d.topics.plan("n1")])
    assert wait_until(lambda: any(m[0] == d.topics.plan("n1") for m in c.messages), 5)
    c.stop()
    assert login(d.port, "n2", d.tokens["n2"]) == "ok"  # the others are untouched


def test_deleting_a_node_refuses_it_drops_its_session_and_clears_its_plan(deployment):
    d = deployment
    t = d.topics
    _revoke_and_measure(d, "n2", lambda: d.service.delete_node("n2"))
    assert d.service.get_node("n2") is None
    # its retained plan is gone; n1's is still there
    observer = Client(d.port, *d.panel_login, client_id="test-observer", subscribe=[t.all_nodes("plan")])
    assert wait_until(lambda: any(m[0] == t.plan("n1") for m in observer.messages), 5)
    time.sleep(0.3)
    assert [m for m in observer.messages if m[0] == t.plan("n2")] == []
    observer.stop()
    assert login(d.port, "n1", d.tokens["n1"]) == "ok"
    # registering the id again gives a new, working login; the deleted token stays refused
    token = d.service.register_node("n2", zone="to-1")[1]
    assert login(d.port, "n2", token) == "ok" and login(d.port, "n2", d.tokens["n2"]) != "ok"


def test_logins_survive_a_restart_of_panel_and_broker(deployment):
    d = deployment
    new = d.service.rotate_node_token("n1")
    d.service.delete_node("n2")
    d.stop_panel()
    if d.kind == "external":
        d.stop_external_broker()  # the broker kept its clients in its own JSON (written on every change)
        d.start_external_broker()
    d.start_panel()  # embedded: the broker is restarted from the registry
    assert login(d.port, "n1", new) == "ok"
    assert login(d.port, "n1", d.tokens["n1"]) != "ok"
    assert login(d.port, "n2", d.tokens["n2"]) != "ok"
    d.tokens["n1"] = new
    _revoke_and_measure(d, "n1", lambda: d.service.rotate_node_token("n1"))  # still managed after the restart


def test_a_node_deleted_while_the_panel_was_down_is_removed_from_the_broker_at_start(tmp_path):
    """The panel compares the broker's node logins with the registry when it starts (``sync``)."""
    require_clients()
    d = Deployment("external", tmp_path)
    try:
        tokens = {n: d.service.register_node(n)[1] for n in ("n1", "n2")}
        d.provision_external()
        d.service.delete_node("n2")  # no panel running: nobody told the broker
        assert login(d.port, "n2", tokens["n2"]) == "ok"
        d.start_panel()
        assert login(d.port, "n2", tokens["n2"]) != "ok"
        assert login(d.port, "n1", tokens["n1"]) == "ok"
    finally:
        d.stop()


def test_unconfirmed_broker_change_leaves_nothing_changed(tmp_path):
    """Broker gone: rotation and deletion are refused (503) and the registry is unchanged."""
    require_clients()

    d = Deployment("external", tmp_path)
    try:
        token = d.service.register_node("n1")[1]
        d.provision_external()
        d.start_panel()
        d.stop_external_broker()
        assert wait_until(lambda: not d.rt.broker_admin.ready.is_set(), 5)
        before = d.service.get_node("n1").token_hash
        for change in (lambda: d.service.rotate_node_token("n1"), lambda: d.service.delete_node("n1"),
                       lambda: d.service.register_node("n9")):
            with pytest.raises(ServiceError) as exc:
                change()
            assert exc.value.code == "broker_unavailable" and exc.value.status == 503
        assert d.service.get_node("n1").token_hash == before and d.service.get_node("n9") is None
        assert d.service.node_for_token(token) is not None
    finally:
        d.stop()


def test_delete_node_api(deployment):
    d = deployment
    client = d.app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]})
    if token.status_code != 200:
        d.service.create_user(*ADMIN, role="admin")
        token = client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]})
    headers = {"Authorization": f"Bearer {token.json['token']}"}
    d.service.create_user("officer1", "officer-password-1", role="officer")
    officer = client.post("/api/v1/auth/token", json={"username": "officer1", "password": "officer-password-1"})
    r = client.delete("/api/v1/nodes/n1", headers={"Authorization": f"Bearer {officer.json['token']}"})
    assert r.status_code == 403 and d.service.get_node("n1") is not None
    r = client.delete("/api/v1/nodes/n1", headers=headers)
    assert r.status_code == 204 and r.data == b""
    assert login(d.port, "n1", d.tokens["n1"]) != "ok"
    r = client.delete("/api/v1/nodes/n1", headers=headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    spec = client.get("/api/v1/openapi.json").json
    assert set(spec["paths"]["/nodes/{node_id}"]) >= {"get", "delete"}
    audit = client.get("/api/v1/audit", headers=headers).json
    assert any(e.get("action") == "node.delete" and e.get("target") == "n1" for e in audit), audit[:5]


# ------------------------------------------------------------------------------------ serve / demo
def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOAPHUONG_")}
    env.update(LOAPHUONG_DATA_DIR=str(tmp_path / "instance"), LOAPHUONG_EMBEDDED_BROKER_PORT=str(free_port()),
               LOAPHUONG_TTS_ENGINES="espeak", LOAPHUONG_ADMIN_PASSWORD="demo-password-1", **extra)
    return env


def test_demo_broker_refuses_outsiders_and_its_simulated_nodes_play(tmp_path):
    """`loaphuong demo` (what `make run` runs): secured embedded Mosquitto; its nodes log in with their tokens."""
    require_clients()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "broadcaster.cli", "demo", "--port", str(port)],
                            env=_cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        broker = wait_until(lambda: next((m for line in lines if (m := re.search(r"mqtt://127\.0\.0\.1:(\d+)", line))),
                                         None), 30)
        assert broker, "".join(lines)
        mqtt_port = int(broker.group(1))
        assert login(mqtt_port, None, None, "outsider") != "ok"
        creds = json.loads((tmp_path / "instance" / "sim" / "credentials.json").read_text())
        assert login(mqtt_port, "loa-01", "guess") != "ok"
        http = requests.Session()

        def api_token() -> str | None:
            try:
                r = http.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                              json={"username": "admin", "password": "demo-password-1"}, timeout=10)
            except requests.ConnectionError:
                return None  # the HTTP server starts right after the banner
            return r.json()["token"]

        tok = wait_until(api_token, 15, 0.1)
        http.headers["Authorization"] = f"Bearer {tok}"

        def online() -> bool:
            nodes = http.get(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=10).json()
            return len(nodes) == len(creds) and all(n["state"] == "online" for n in nodes)

        assert wait_until(online, 30, 0.2), http.get(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=10).json()
        # an officer would schedule next; here: the nodes act on a signed command through the secured broker
        r = http.post(f"http://127.0.0.1:{port}/api/v1/nodes/loa-01/commands", json={"name": "ping"}, timeout=10)
        assert r.status_code == 202, r.text
        cmd_id = r.json()["id"]

        def acked() -> bool:
            cmds = http.get(f"http://127.0.0.1:{port}/api/v1/nodes/loa-01/commands", timeout=10).json()
            return any(c["id"] == cmd_id and c["acked_at"] for c in cmds)

        assert wait_until(acked, 15, 0.2)
        # rotation through the API drops the simulated node and refuses its token
        r = http.post(f"http://127.0.0.1:{port}/api/v1/nodes/loa-02/token", timeout=10)
        assert r.status_code == 201
        assert wait_until(lambda: login(mqtt_port, "loa-02", creds["loa-02"]) != "ok", REVOCATION_LIMIT_S)
    finally:
        proc.terminate()
        proc.wait(20)


def test_serve_refuses_iotcore_as_its_broker(tmp_path):
    r = subprocess.run([sys.executable, "-m", "broadcaster.cli", "serve", "--port", str(free_port())],
                       env=_cli_env(tmp_path, LOAPHUONG_EMBEDDED_BROKER="iotcore"), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "iotcore" in r.stderr and "per-node ACLs" in r.stderr, r.stderr


def test_a_node_that_asks_gets_its_plan_even_when_the_broker_kept_no_retained_one(deployment):
    """docs/protocol.md §6.7 (a clustered broker keeps retained messages per member): the plan request crosses
    the broker's ACL and the bridge, and the panel answers with the stored signed plan; another node's request
    is refused by the broker and answers nothing."""
    d = deployment
    t = d.topics
    stored = d.service.get_node("n1").plan_payload
    clear = Client(d.port, *d.panel_login, client_id="test-clearer")
    clear.client.publish(t.plan("n1"), b"", qos=1, retain=True).wait_for_publish(5)  # the retained plan is gone
    clear.stop()
    n1 = Client(d.port, "n1", d.tokens["n1"], subscribe=[t.plan("n1")])
    assert wait_until(lambda: len(n1.granted) == 1, 5)
    time.sleep(0.5)
    assert [m for m in n1.messages if m[1]] == []  # nothing retained to deliver
    request = {"type": "plan_request", "protocol": 1, "node_id": "n1", "at": "2026-12-07T06:29:58.120Z"}
    n1.client.publish(t.plan_request("n1"), json.dumps(request).encode(), qos=1).wait_for_publish(5)
    assert wait_until(lambda: any(m[1] for m in n1.messages), 5), "the panel did not answer the plan request"
    plan = json.loads(next(m[1] for m in n1.messages if m[1]))
    assert plan["version"] == stored["version"] and plan["signature"] == stored["signature"]
    # n1 asking for n2's plan: the broker drops it (ACL), so n2's retained plan is not published again
    watcher = Client(d.port, *d.panel_login, client_id="test-watcher", subscribe=[t.plan("n2")])
    assert wait_until(lambda: len(watcher.messages) == 1, 5)  # the retained one
    forged = {**request, "node_id": "n2"}
    n1.client.publish(t.plan_request("n2"), json.dumps(forged).encode(), qos=1).wait_for_publish(5)
    time.sleep(1.0)
    assert len(watcher.messages) == 1
    watcher.stop()
    n1.stop()
