"""The broker behaviour protocol v1 relies on, checked on real brokers (iotcore and Mosquitto).

Every check here is something ``docs/protocol.md`` promises a node vendor: retained plans reach a node
that connects later and nobody else, last-wills fire for killed and for silent nodes, QoS 1 commands
are queued for an offline persistent session, an empty retained payload clears a topic. Clients are
paho-mqtt 2.x speaking MQTT 3.1.1, plus a raw-socket client where paho cannot misbehave on purpose.
"""

from __future__ import annotations

import queue
import socket
import struct
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from conftest import require_mosquitto
from firmware_sim.mqtt_async import connect_packet
from paho.mqtt.enums import CallbackAPIVersion

from broadcaster.broker import EmbeddedBroker
from devices.protocol import Topics

TOPICS = Topics()
QUIET_S = 1.0  # how long "nothing arrives" is watched
#: Mosquitto 2.0 scans for expired keepalives only every 5 s (src/keepalive.c), so its will for a silent
#: client comes 1.5 x keepalive plus up to ~6 s late; iotcore (rumqttd) is on time. Measured: keepalive 2 s
#: -> Mosquitto 5.2-6.0 s, iotcore 3.0 s.
KEEPALIVE_SCAN_SLACK_S = 6.5


# ---------------------------------------------------------------------------------------- clients


class Peer:
    """A paho 2.x MQTT 3.1.1 client whose received messages land in a queue."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        client_id: str,
        *,
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.connect_rc: mqtt.ReasonCode | None = None
        self.session_present: bool | None = None
        self._subacks: dict[int, list] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_subscribe
        self.broker = broker

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties) -> None:
        self.connect_rc = reason_code
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        with self._cond:
            self._subacks[mid] = list(reason_codes)
            self._cond.notify_all()

    def start(self, keepalive: int = 30) -> Peer:
        self.client.connect(self.broker.host, self.broker.port, keepalive=keepalive)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK within 5 s"
        assert self.connect_rc is not None and not self.connect_rc.is_failure, f"refused: {self.connect_rc}"
        return self

    def subscribe(self, *topics: str, qos: int = 1) -> list[int]:
        """Subscribe and wait for the SUBACK; return the granted QoS (128 = refused) per topic."""
        result, mid = self.client.subscribe([(t, qos) for t in topics])
        assert result == mqtt.MQTT_ERR_SUCCESS
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._subacks, 5), "no SUBACK within 5 s"
            return [rc.value for rc in self._subacks[mid]]

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published(), f"no PUBACK for {topic}"

    def get(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing received within {timeout} s") from None

    def assert_quiet(self, seconds: float = QUIET_S) -> None:
        try:
            msg = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {msg.topic}: {msg.payload!r} (retain={msg.retain})")

    def stop(self) -> None:
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()


def raw_connect(
    broker: EmbeddedBroker, client_id: str, *, keepalive: int, will_topic: str, will_payload: bytes
) -> socket.socket:
    """A raw MQTT 3.1.1 CONNECT (clean session) with a retained QoS 1 will; after CONNACK it sends nothing."""
    packet = connect_packet(client_id, username=None, password=None, keepalive=keepalive, clean_session=True,
                            will=(will_topic, will_payload, 1, True))
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    sock.sendall(packet)
    connack = b""
    while len(connack) < 4:
        chunk = sock.recv(4 - len(connack))
        assert chunk, "broker closed the connection before CONNACK"
        connack += chunk
    assert connack == b"\x20\x02\x00\x00", f"CONNACK {connack!r}"
    return sock


@pytest.fixture
def peers(any_broker):
    """Factory of started clients on ``any_broker``; everything is stopped at teardown."""
    created: list[Peer] = []

    def make(client_id: str, *, clean_session: bool = True, keepalive: int = 30, start: bool = True) -> Peer:
        peer = Peer(any_broker, client_id, clean_session=clean_session)
        created.append(peer)
        return peer.start(keepalive) if start else peer

    yield make
    for peer in created:
        peer.stop()


# ------------------------------------------------------------------------------------ retained plan


def test_retained_plan_reaches_late_subscriber_and_nobody_else(any_broker, peers):
    panel = peers("panel")
    panel.publish(TOPICS.plan("n1"), b'{"type":"plan","version":7}', retain=True)
    panel.stop()

    # Subscribers that connect after the publish. The wrong ones first, so they get the full quiet window.
    other_node = peers("n2")
    assert other_node.subscribe(TOPICS.plan("n2")) == [1]
    sibling_leaf = peers("n1-cmd-watcher")
    assert sibling_leaf.subscribe(TOPICS.cmd("n1"), TOPICS.status("n1")) == [1, 1]

    node = peers("n1")
    assert node.subscribe(TOPICS.plan("n1")) == [1]
    msg = node.get()
    assert (msg.topic, msg.payload, msg.retain, msg.qos) == (
        TOPICS.plan("n1"),
        b'{"type":"plan","version":7}',
        True,
        1,
    )
    node.assert_quiet(0.2)  # exactly one copy
    other_node.assert_quiet()
    sibling_leaf.assert_quiet(0.1)


def test_newer_retained_plan_replaces_older(any_broker, peers):
    panel = peers("panel")
    panel.publish(TOPICS.plan("n1"), b'{"version":1}', retain=True)
    panel.publish(TOPICS.plan("n1"), b'{"version":2}', retain=True)
    node = peers("n1")
    node.subscribe(TOPICS.plan("n1"))
    assert node.get().payload == b'{"version":2}'
    node.assert_quiet(0.3)


# --------------------------------------------------------------------------------------- last-will


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_last_will_of_killed_client(any_broker, peers, how):
    panel = peers("panel")
    panel.subscribe(TOPICS.status("n1"))
    will = b'{"type":"status","node_id":"n1","state":"offline","session":3}'
    sock = raw_connect(any_broker, "n1", keepalive=15, will_topic=TOPICS.status("n1"), will_payload=will)
    panel.assert_quiet(0.2)  # no will while the node is alive
    if how == "rst":  # as if the power was cut mid-stream: RST, no FIN, no DISCONNECT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:  # process killed: the kernel closes the socket, still no DISCONNECT
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    msg = panel.get(timeout=3)
    assert (msg.topic, msg.payload) == (TOPICS.status("n1"), will)

    # The will is retained: a panel that starts later still learns the node is offline.
    late = peers("panel-2")
    late.subscribe(TOPICS.status("n1"))
    msg = late.get(timeout=3)
    assert (msg.payload, msg.retain) == (will, True)


def test_last_will_of_silent_client_within_one_and_a_half_keepalives(any_broker, peers):
    keepalive = 2
    panel = peers("panel")
    panel.subscribe(TOPICS.status("n1"))
    will = b'{"type":"status","node_id":"n1","state":"offline","session":4}'
    sock = raw_connect(
        any_broker, "n1", keepalive=keepalive, will_topic=TOPICS.status("n1"), will_payload=will
    )
    try:
        started = time.monotonic()
        # The socket stays open but silent (a hung firmware, a dead Wi-Fi link): no PINGREQ, no FIN.
        msg = panel.get(timeout=1.5 * keepalive + KEEPALIVE_SCAN_SLACK_S)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert (msg.topic, msg.payload, msg.retain) == (TOPICS.status("n1"), will, False)
    assert elapsed >= keepalive * 0.9, f"will after {elapsed:.2f}s: broker did not wait for the keepalive"


def test_clean_disconnect_sends_no_will(any_broker, peers):
    panel = peers("panel")
    panel.subscribe(TOPICS.status("n1"))
    node = peers("n1", start=False)
    node.client.will_set(TOPICS.status("n1"), b"offline", qos=1, retain=True)
    node.start(keepalive=15)
    node.publish(TOPICS.status("n1"), b"stopped", retain=True)
    assert panel.get().payload == b"stopped"
    node.stop()  # DISCONNECT: the broker must discard the will
    panel.assert_quiet()


# --------------------------------------------------------------------------- persistent sessions


def test_qos1_queued_for_offline_persistent_session_in_order(any_broker, peers):
    node = peers("n1", clean_session=False)
    assert node.subscribe(TOPICS.cmd("n1")) == [1]
    node.stop()

    panel = peers("panel")
    sent = [f'{{"type":"command","id":"cmd-{i:04d}"}}'.encode() for i in range(5)]
    for payload in sent:
        panel.publish(TOPICS.cmd("n1"), payload, qos=1)

    # Same client id, clean_session=False, and no new SUBSCRIBE: the session carries the subscription.
    back = peers("n1", clean_session=False)
    assert back.session_present is True
    received = [back.get() for _ in sent]
    assert [m.payload for m in received] == sent
    assert all(m.qos == 1 and not m.retain for m in received)
    back.assert_quiet(0.3)


# ------------------------------------------------------------------------------- clearing retained


def test_empty_retained_payload_clears_retained_message(any_broker, peers):
    panel = peers("panel")
    panel.publish(TOPICS.plan("n1"), b'{"version":1}', retain=True)
    panel.publish(TOPICS.plan("n1"), b"", retain=True)  # MQTT 3.1.1 §3.3.1.3: deletes the retained message
    node = peers("n1")
    node.subscribe(TOPICS.plan("n1"))
    node.assert_quiet()


def test_empty_non_retained_publish_leaves_retained_message(any_broker, peers, request):
    if any_broker.kind == "iotcore":
        # KNOWN GAP of iotcore 0.4 / rumqttd 0.20 (docs/protocol.md, "Broker notes"): an empty publish
        # WITHOUT the retain flag also deletes the retained message. strict=True: if a new iotcore fixes
        # it this test fails and the note in protocol.md must go.
        request.applymarker(
            pytest.mark.xfail(reason="rumqttd clears retained on empty non-retained", strict=True)
        )
    panel = peers("panel")
    panel.publish(TOPICS.plan("n1"), b'{"version":1}', retain=True)
    panel.publish(TOPICS.plan("n1"), b"", retain=False)  # must only reach current subscribers (none)
    node = peers("n1")
    node.subscribe(TOPICS.plan("n1"))
    assert node.get(timeout=2).payload == b'{"version":1}'


# ------------------------------------------------------------------------------ production ACLs


ACL = """\
# Loa Phường protocol v1 — per-node ACL (docs/protocol.md, "Broker notes"). %u = username = node id.
user panel
topic readwrite loaphuong/v1/#

pattern read loaphuong/v1/nodes/%u/plan
pattern read loaphuong/v1/nodes/%u/cmd
pattern write loaphuong/v1/nodes/%u/status
pattern write loaphuong/v1/nodes/%u/events
pattern write loaphuong/v1/nodes/%u/ack
pattern write loaphuong/v1/nodes/%u/plan_request
pattern read loaphuong/v1/panel/status
"""


@pytest.mark.mosquitto
def test_mosquitto_per_node_acl(tmp_path):
    """The ACL docs/protocol.md recommends: a node reads only its own plan/cmd, writes only its own topics."""
    require_mosquitto()
    data = tmp_path / "acl-broker"
    data.mkdir()
    passwd = data / "passwd"
    for user in ("panel", "n1", "n2"):
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                *(["-c"] if user == "panel" else []),
                str(passwd),
                user,
                f"tok-{user}",
            ],
            check=True,
            capture_output=True,
        )
    (data / "acl").write_text(ACL)
    conf = f"allow_anonymous false\npassword_file {passwd}\nacl_file {data / 'acl'}\n"
    with EmbeddedBroker(kind="mosquitto", data_dir=data, extra_config=conf) as broker:
        started: list[Peer] = []
        try:

            def login(user: str) -> Peer:
                peer = Peer(broker, user, username=user, password=f"tok-{user}")
                started.append(peer)
                return peer.start()

            panel = login("panel")
            panel.subscribe(TOPICS.all_nodes("status"), TOPICS.all_nodes("events"))
            panel.publish(TOPICS.plan("n1"), b"plan-n1", retain=True)
            panel.publish(TOPICS.plan("n2"), b"plan-n2", retain=True)

            n1 = login("n1")
            # Mosquitto 2.0 grants the SUBSCRIBE (MQTT 3.1.1) but filters what it delivers by the ACL.
            granted = n1.subscribe(TOPICS.plan("n2"), "loaphuong/v1/nodes/+/plan", "loaphuong/v1/#")
            assert granted == [1, 1, 1]
            got = [n1.get().payload]
            time.sleep(0.5)
            while not n1.messages.empty():  # overlapping subscriptions may each deliver a copy
                got.append(n1.messages.get().payload)
            assert set(got) == {b"plan-n1"}

            n1.publish(TOPICS.status("n1"), b"n1-online", retain=True)
            n1.publish(TOPICS.status("n2"), b"forged", retain=True)  # PUBACKed, silently dropped
            n1.publish(TOPICS.plan("n1"), b"self-made plan", retain=True)  # a node may not write a plan
            assert panel.get().payload == b"n1-online"
            panel.assert_quiet(0.5)
            panel.subscribe(TOPICS.plan("n1"))
            assert panel.get().payload == b"plan-n1"  # the node's own write to plan was dropped

            for user, password in (("n1", "wrong"), (None, None)):  # bad token, anonymous
                intruder = Peer(broker, "intruder", username=user, password=password)
                started.append(intruder)
                intruder.client.connect(broker.host, broker.port)
                intruder.client.loop_start()
                assert intruder.connected.wait(5)
                assert intruder.connect_rc is not None and intruder.connect_rc.is_failure
        finally:
            for peer in started:
                peer.stop()
