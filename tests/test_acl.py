"""Provisioning and per-node access control, against a REAL Mosquitto started with the files that
``loaphuong broker-config`` generates (dynamic-security plugin), with real clients (``mosquitto_pub`` /
``mosquitto_sub`` and paho). Revocation (rotate / delete → refused and disconnected): tests/test_broker_auth.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from conftest import IN_CI, require_mosquitto
from firmware_sim.node import NodeConfig
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from broadcaster.app import runtime, start_services, stop_services
from broadcaster.broker import free_port, mosquitto_binary, port_open
from broadcaster.brokerconf import (
    BrokerConfigError,
    check_username,
    mosquitto_hash,
    verify_mosquitto_hash,
    write_broker_config,
)
from broadcaster.cli import main
from broadcaster.models import NodeEvent
from devices import protocol as proto


def require_clients() -> None:
    require_mosquitto()
    if shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"):
        return
    if IN_CI:
        pytest.fail("mosquitto_pub/mosquitto_sub are required under CI=true (apt-get install mosquitto-clients)")
    pytest.skip("mosquitto-clients not installed")


# ------------------------------------------------------------------------------------------ unit
def test_password_hash_is_mosquitto_pbkdf2_sha512():
    hashed = mosquitto_hash("s3cret-token")
    kind, iterations, salt, digest = hashed.split("$")[1:]
    assert (kind, iterations) == ("7", "101")
    assert verify_mosquitto_hash("s3cret-token", hashed)
    assert not verify_mosquitto_hash("s3cret-tokeN", hashed)
    assert mosquitto_hash("x") != mosquitto_hash("x")  # salted


def test_mosquitto_passwd_output_verifies_with_our_code(tmp_path):
    """Same format both ways: a line written by the real mosquitto_passwd verifies with our function."""
    require_mosquitto()
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None, "mosquitto_passwd missing: it ships with Mosquitto (apt-get install mosquitto)"
    pw = tmp_path / "pw"
    subprocess.run([tool, "-b", "-c", str(pw), "u1", "tok-123"], check=True, capture_output=True)
    user, hashed = pw.read_text().strip().split(":", 1)
    assert user == "u1" and verify_mosquitto_hash("tok-123", hashed)


@pytest.mark.parametrize("name", ["a+b", "a#", "a/b", "+", "#", "", "x y", "a:b"])
def test_broker_usernames_with_wildcards_refused(name):
    with pytest.raises(BrokerConfigError):
        check_username(name)


@pytest.mark.parametrize("node_id", ["loa+1", "loa#", "to/loa", "+", "#"])
def test_registration_refuses_wildcards_in_node_ids(api, node_id):
    r = api.post("/api/v1/nodes", json={"node_id": node_id})
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_node_id"
    r = api.post("/api/v1/fleet/registry.csv", data=f"node_id,name\n{node_id},x\n".encode(),
                 content_type="text/csv")
    assert r.status_code == 400 and r.json["errors"][0]["code"] == "invalid_node_id"
    assert api.get("/api/v1/nodes").json == []


def test_broker_config_refuses_a_node_named_like_the_panel_user(api, service, tmp_path):
    api.post("/api/v1/nodes", json={"node_id": "panel"})

    with pytest.raises(BrokerConfigError, match="panel"):
        write_broker_config(service, tmp_path / "out", panel_user="panel")
    write_broker_config(service, tmp_path / "out2", panel_user="panel-main")  # another name works


# ------------------------------------------------------------------------------------- real broker
class Client:
    """paho client with a message queue."""

    def __init__(self, port: int, username: str, password: str, client_id: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.rc = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.disconnected.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        self.rc = rc
        self.connected.set()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _client_id(user: str) -> list[str]:
    """A node's login is pinned to client id = node id; the panel's login is not (its own tools use a random one)."""
    return [] if user == "panel" else ["-i", user]


def sub(port: int, user: str, password: str, topic: str, wait: float = 1.5) -> list[str]:
    """mosquitto_sub: every message (retained included) ``user`` receives on ``topic`` within ``wait`` s."""
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password, "-q", "1",
                        *_client_id(user), "-t", topic, "-W", str(int(wait)), "-v"],
                       capture_output=True, text=True, timeout=wait + 10)
    return [line for line in r.stdout.splitlines() if line]


def pub(port: int, user: str, password: str, topic: str, payload: str | bytes, *, retain: bool = False,
        client_id: str | None = None) -> subprocess.CompletedProcess:
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password, "-q", "1",
            "-t", topic, "-m", payload if isinstance(payload, str) else payload.decode()]
    if retain:
        args.append("-r")
    args += ["-i", client_id] if client_id else _client_id(user)
    return subprocess.run(args, capture_output=True, text=True, timeout=20)


@pytest.fixture
def acl_world(app, service, api, tmp_path, monkeypatch):
    """Registered nodes n1, n2 (tokens known), `loaphuong broker-config` output, Mosquitto started on it,
    and the panel's bridge connected with the generated panel login."""
    require_clients()

    api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"})
    tokens = {}
    for node_id in ("n1", "n2"):
        r = api.post("/api/v1/nodes", json={"node_id": node_id, "zone": "to-1"})
        assert r.status_code == 201
        tokens[node_id] = r.json["token"]
    port = free_port()
    out = tmp_path / "broker-config"
    monkeypatch.setenv("LOAPHUONG_DATA_DIR", str(service.config.DATA_DIR))
    argv = ["broker-config", "--out", str(out), "--port", str(port), "--bind", "127.0.0.1"]
    if os.geteuid() == 0:
        argv += ["--run-as", "root"]  # otherwise Mosquitto drops to 'mosquitto' and cannot read the 0600 files
    assert main(argv) == 0
    env = dict(line.split("=", 1) for line in (out / "panel.env").read_text().splitlines())
    dynsec = out / "dynsec" / "dynamic-security.json"
    assert oct(dynsec.stat().st_mode & 0o777) == "0o600"  # password hashes
    assert env["LOAPHUONG_BROKER_REGISTRY"] == "dynsec"
    log = open(tmp_path / "mosquitto.log", "wb")  # noqa: SIM115 — closed at teardown
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(out / "mosquitto.conf")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None, (tmp_path / "mosquitto.log").read_text()
        assert time.monotonic() < deadline, "mosquitto did not start"
        time.sleep(0.05)
    cfg = service.config
    cfg.MQTT_URL = f"mqtt://127.0.0.1:{port}"
    cfg.MQTT_USERNAME, cfg.MQTT_PASSWORD = env["LOAPHUONG_MQTT_USERNAME"], env["LOAPHUONG_MQTT_PASSWORD"]
    cfg.MQTT_CLIENT_ID = env["LOAPHUONG_MQTT_CLIENT_ID"]
    cfg.BROKER_REGISTRY = env["LOAPHUONG_BROKER_REGISTRY"]
    start_services(app)
    assert runtime(app).bridge.connected.wait(10), "panel could not log in with the generated credentials"
    service.publish_plans(force=True)

    class World:
        pass

    w = World()
    w.port, w.tokens, w.out, w.panel = port, tokens, out, (cfg.MQTT_USERNAME, cfg.MQTT_PASSWORD)
    w.topics, w.service, w.app = service.topics, service, app

    def panel_cli() -> tuple[str, str]:
        # The panel's login is not pinned to one client id (bridge and broker admin both use it), so
        # command-line tools with their own random client id use it next to the running panel.
        return w.panel

    w.panel_cli = panel_cli
    yield w
    stop_services(app)
    proc.terminate()
    proc.wait(10)
    log.close()


def runtime_bridge_connected(app) -> bool:
    return runtime(app).bridge.connected.is_set()


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _status(node_id: str, **kw) -> str:
    payload = {"type": "status", "protocol": 1, "node_id": node_id, "state": "online", "session": 1,
               "at": proto.format_ts(datetime.now(UTC)), **kw}
    return json.dumps(payload)


def _event(node_id: str, seq: int) -> str:
    return json.dumps({"type": "event", "protocol": 1, "node_id": node_id, "seq": seq,
                       "at": proto.format_ts(datetime.now(UTC)), "event": "plan_applied"})


def _events(service, node_id: str) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(NodeEvent).where(NodeEvent.node_id == node_id))


@pytest.mark.mosquitto
def test_node_reads_only_its_own_plan_and_commands(acl_world):
    w = acl_world
    t1 = w.tokens["n1"]
    own = sub(w.port, "n1", t1, w.topics.plan("n1"))
    assert len(own) == 1 and own[0].startswith(w.topics.plan("n1") + " ")
    plan = json.loads(own[0].split(" ", 1)[1])
    assert plan["node_id"] == "n1" and plan["signature"]
    assert sub(w.port, "n1", t1, w.topics.plan("n2")) == []  # another node's plan: nothing
    # a wildcard subscription is refused outright (the node's role allows only its literal topics)
    assert sub(w.port, "n1", t1, "loaphuong/#") == []
    assert sub(w.port, "n1", t1, w.topics.all_nodes("plan")) == []
    assert len(sub(w.port, "n1", t1, w.topics.panel_status())) == 1  # the panel's presence, which nodes read
    # the panel reads every plan
    assert len(sub(w.port, *w.panel_cli(), w.topics.all_nodes("plan"))) == 2


@pytest.mark.mosquitto
def test_node_commands_reach_only_that_node(acl_world):
    w = acl_world
    n1 = Client(w.port, "n1", w.tokens["n1"])
    n2 = Client(w.port, "n2", w.tokens["n2"])
    try:
        assert n1.connected.wait(5) and n2.connected.wait(5) and not n1.rc.is_failure
        n1.client.subscribe([(w.topics.cmd("n1"), 1), (w.topics.cmd("n2"), 1)])
        n2.client.subscribe(w.topics.cmd("n2"), 1)
        time.sleep(0.3)
        w.service.send_command("n2", "ping")
        assert _wait(lambda: n2.messages)
        time.sleep(0.5)
        assert [t for t, _ in n1.messages if t.endswith("/cmd")] == []
        w.service.send_command("n1", "ping")
        assert _wait(lambda: any(t == w.topics.cmd("n1") for t, _ in n1.messages))
    finally:
        n1.stop()
        n2.stop()


@pytest.mark.mosquitto
def test_node_cannot_write_another_nodes_status_or_events_nor_any_plan(acl_world):
    w = acl_world
    t1 = w.tokens["n1"]
    # its own status gets through to the panel
    assert pub(w.port, "n1", t1, w.topics.status("n1"), _status("n1", firmware="fw-own"), retain=True).returncode == 0
    assert _wait(lambda: (w.service.get_node("n1").firmware == "fw-own"))
    # another node's status and events: acknowledged by Mosquitto, never delivered
    assert pub(w.port, "n1", t1, w.topics.status("n2"), _status("n2", firmware="forged"), retain=True).returncode == 0
    assert pub(w.port, "n1", t1, w.topics.events("n2"), _event("n2", 1)).returncode == 0
    # a plan, even on its own topic
    assert pub(w.port, "n1", t1, w.topics.plan("n1"), '{"type":"plan","forged":true}', retain=True).returncode == 0
    assert pub(w.port, "n1", t1, w.topics.plan("n2"), '{"type":"plan","forged":true}', retain=True).returncode == 0
    assert pub(w.port, "n1", t1, w.topics.events("n1"), _event("n1", 1)).returncode == 0
    assert _wait(lambda: _events(w.service, "n1") == 1)  # n1's own event arrived, so the forged ones had time too
    time.sleep(0.5)
    assert w.service.get_node("n2").firmware is None and w.service.get_node("n2").state == "unknown"
    assert _events(w.service, "n2") == 0
    panel = w.panel_cli()
    for node_id in ("n1", "n2"):
        (line,) = sub(w.port, *panel, w.topics.plan(node_id))
        plan = json.loads(line.split(" ", 1)[1])
        assert "forged" not in plan and plan["signature"], plan
    # the panel itself may write plans and commands anywhere
    assert pub(w.port, *panel, "loaphuong/v1/nodes/n2/cmd", "{}").returncode == 0


@pytest.mark.mosquitto
def test_panel_drops_a_message_whose_payload_names_another_node(acl_world):
    """Through the broker on n1's OWN topics (which the ACL allows) with n2 in the payload: dropped."""
    w = acl_world
    t1 = w.tokens["n1"]
    pub(w.port, "n1", t1, w.topics.status("n1"), _status("n2", firmware="mismatch"), retain=True)
    pub(w.port, "n1", t1, w.topics.events("n1"), _event("n2", 7))
    pub(w.port, "n1", t1, w.topics.events("n1"), _event("n1", 1))  # a good one after them
    assert _wait(lambda: _events(w.service, "n1") == 1)
    time.sleep(0.3)
    assert _events(w.service, "n2") == 0
    assert w.service.get_node("n2").firmware is None and w.service.get_node("n1").firmware is None


@pytest.mark.mosquitto
def test_bad_password_anonymous_and_client_id_takeover_refused(acl_world):
    w = acl_world
    bad = pub(w.port, "n1", "not-the-token", w.topics.status("n1"), _status("n1"))
    assert bad.returncode != 0
    anonymous = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(w.port), "-t", "x", "-m", "y"],
                               capture_output=True, timeout=20)
    assert anonymous.returncode != 0
    # n1 logging in with n2's client id is refused and must not kick n2 off (each node login is pinned to
    # the client id equal to its node id), nor may it take the panel's session
    n2 = Client(w.port, "n2", w.tokens["n2"])
    try:
        assert n2.connected.wait(5) and not n2.rc.is_failure
        assert pub(w.port, "n1", w.tokens["n1"], w.topics.status("n1"), _status("n1"), client_id="n2").returncode != 0
        assert pub(w.port, "n1", w.tokens["n1"], w.topics.status("n1"), _status("n1"),
                   client_id=w.service.config.MQTT_CLIENT_ID).returncode != 0
        assert runtime_bridge_connected(w.app)
        time.sleep(1.0)
        assert not n2.disconnected.is_set()
    finally:
        n2.stop()


@pytest.mark.mosquitto
def test_simulated_node_logs_in_with_its_token_and_gets_its_plan(acl_world, sim_fleet, tmp_path):
    """A real node (the simulator) with the credentials the panel issued: online, plan held."""

    w = acl_world
    configs = [NodeConfig(node_id=n, token=w.tokens[n], broker_host="127.0.0.1", broker_port=w.port,
                          panel_public_key=w.service.public_key_b64, data_dir=tmp_path / "sim" / n)
               for n in ("n1", "n2")]
    sim_fleet(configs)

    def synced() -> bool:
        nodes = [w.service.get_node(n) for n in ("n1", "n2")]
        return all(n.state == "online" and n.reported_plan_version == n.plan_version for n in nodes)

    assert _wait(synced, 15), [(n.node_id, n.state) for n in w.service.list_nodes()]
