"""RabbitMQ's MQTT plugin as the panel's broker: per-node logins and topic ACLs, and one end-to-end airing.

One secured RabbitMQ node (anonymous clients refused) serves this module. The ACL test creates its users with
exactly the ``rabbitmqctl`` commands docs/deployment.md gives the operator (tests/rabbitmq.py
``operator_commands``); the end-to-end test creates the same rights over the management API, which is faster.
RabbitMQ 3.10 refuses differently from Mosquitto (docs/protocol.md §14): a refused SUBSCRIBE or PUBLISH closes
the connection instead of answering ``0x80`` / dropping silently, and a bad login gets ``CONNACK`` 4, not 5.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rabbitmq import (
    PANEL_PERMISSIONS,
    Permissions,
    RabbitMQ,
    node_permissions,
    operator_commands,
    rotation_commands,
    started,
)
from stack import PanelStack, wait_for
from test_broker_conformance import TOPICS, Peer
from test_e2e import LAYOUT, assert_zone_played, schedule_in, wait_plays

pytestmark = pytest.mark.slow

#: CONNACK return codes, as paho 2 names them: 4 "bad user name or password" (Mosquitto answers 5, "not
#: authorized") and 3 "server unavailable".
ACCEPTED = "Success"
BAD_CREDENTIALS = "Bad user name or password"
SERVER_UNAVAILABLE = "Server unavailable"


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[RabbitMQ]:
    node = started(tmp_path_factory.mktemp("rabbitmq"), anonymous=False)
    yield node
    node.cleanup()


class Login(Peer):
    """A Peer that records its disconnection and does not reconnect on its own during the test."""

    def __init__(self, broker: RabbitMQ, user: str | None, password: str | None, client_id: str | None = None,
                 *, clean_session: bool = True) -> None:
        super().__init__(broker, client_id or user or "anonymous", clean_session=clean_session, username=user,
                         password=password)
        self.disconnected = threading.Event()
        self.client.reconnect_delay_set(120, 120)
        self.client.on_disconnect = lambda *_args: self.disconnected.set()

    def attempt(self) -> str:
        """CONNECT and return the CONNACK's return code by name ("Success" when accepted)."""
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK within 5 s"
        assert self.connect_rc is not None
        return self.connect_rc.getName()

    def closed_after_subscribe(self, topic: str) -> bool:
        """SUBSCRIBE that RabbitMQ should refuse; True when the broker then closed the connection."""
        self.client.subscribe(topic, 1)
        return self.disconnected.wait(5)

    def closed_after_publish(self, topic: str) -> bool:
        """PUBLISH (QoS 1, retained) that RabbitMQ should refuse; True when the broker then closed the connection."""
        self.client.publish(topic, b"forged", 1, True)
        return self.disconnected.wait(5)


def create_users_with_rabbitmqctl(node: RabbitMQ, users: dict[str, tuple[str, Permissions]]) -> None:
    """The operator's commands, one sequence per user; users in parallel (each command starts an Erlang VM)."""
    errors: list[BaseException] = []

    def run(user: str, password: str, perms: Permissions) -> None:
        try:
            for command in operator_commands(user, password, perms):
                node.ctl(*command)
        except BaseException as exc:  # noqa: BLE001 - reported on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(u, pw, perms)) for u, (pw, perms) in users.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_rabbitmq_per_node_logins_and_topic_acl(secured: RabbitMQ) -> None:
    """Node X publishes only its own status/events/ack/plan_request and reads only its own plan/cmd and the
    panel's presence; strangers, wrong tokens and other nodes are refused."""
    create_users_with_rabbitmqctl(secured, {
        "panel": ("tok-panel", PANEL_PERMISSIONS),
        "n1": ("tok-n1", node_permissions("n1")),
        "n2": ("tok-n2", node_permissions("n2")),
    })
    started: list[Login] = []

    def login(user: str | None, password: str | None, client_id: str | None = None, *,
              clean_session: bool = True, expect: str = ACCEPTED) -> Login:
        peer = Login(secured, user, password, client_id, clean_session=clean_session)
        started.append(peer)
        assert peer.attempt() == expect, f"{user} as {client_id or user}"
        return peer

    try:
        panel = login("panel", "tok-panel")
        assert panel.subscribe(TOPICS.all_nodes("status"), TOPICS.all_nodes("events"), TOPICS.all_nodes("ack"),
                               "loaphuong/v1/nodes/+/plan_request") == [1, 1, 1, 1]
        panel.publish(TOPICS.plan("n1"), b"plan-n1", retain=True)
        panel.publish(TOPICS.plan("n2"), b"plan-n2", retain=True)
        panel.publish(TOPICS.panel_status(), b"panel-online", retain=True)

        # Its own plan, commands and the panel's presence: granted, and the retained ones arrive.
        n1 = login("n1", "tok-n1")
        assert n1.subscribe(TOPICS.plan("n1"), TOPICS.cmd("n1"), TOPICS.panel_status()) == [1, 1, 1]
        assert {n1.get().payload, n1.get().payload} == {b"plan-n1", b"panel-online"}
        n1.assert_quiet(0.3)
        # Its own status, events, ack and plan request reach the panel.
        for leaf in ("status", "events", "ack", "plan_request"):
            n1.publish(f"loaphuong/v1/nodes/n1/{leaf}", leaf.encode())
            msg = panel.get()
            assert (msg.topic, msg.payload) == (f"loaphuong/v1/nodes/n1/{leaf}", leaf.encode())

        # Another node's plan, or a wildcard: RabbitMQ closes the connection (no SUBACK), nothing is delivered.
        for forbidden in (TOPICS.plan("n2"), "loaphuong/v1/#", "loaphuong/v1/nodes/+/cmd"):
            spy = login("n1", "tok-n1")
            assert spy.closed_after_subscribe(forbidden), f"subscribe {forbidden} was not refused"
            spy.assert_quiet(0.2)
        # Another node's status, or its own plan: the connection is closed, no PUBACK, nobody receives it.
        for topic in (TOPICS.status("n2"), TOPICS.events("n2"), TOPICS.plan("n1"), TOPICS.cmd("n1")):
            forger = login("n1", "tok-n1")
            assert forger.closed_after_publish(topic), f"publish on {topic} was accepted"
        panel.assert_quiet(0.5)
        n1_back = login("n1", "tok-n1")
        n1_back.subscribe(TOPICS.plan("n1"))
        assert n1_back.get().payload == b"plan-n1"  # the node's own write to its plan was dropped

        # Strangers and wrong tokens: refused at CONNECT.
        login("n1", "wrong", expect=BAD_CREDENTIALS)
        login(None, None, "stranger", expect=BAD_CREDENTIALS)
        login("stranger", "tok-n1", expect=BAD_CREDENTIALS)

        # Another node's client id: RabbitMQ 3.10 cannot pin a login to its client id. The login is refused
        # (it may not touch n2's session queue) -- but only after the broker has closed n2's connection (a
        # client-id takeover). n2 keeps its session and reconnects; the limitation is in docs/protocol.md §14.
        n2 = login("n2", "tok-n2", clean_session=False)
        assert n2.subscribe(TOPICS.cmd("n2")) == [1]
        login("n1", "tok-n1", "n2", expect=SERVER_UNAVAILABLE)
        assert n2.disconnected.wait(5), "RabbitMQ now pins client ids: update docs/protocol.md §14"
        n2_back = login("n2", "tok-n2", clean_session=False)
        assert n2_back.session_present is True

        # Revocation is the operator's (the panel does not manage RabbitMQ): the login is deleted, which closes
        # its open session, and made again with the new token. From then on the old token is refused.
        for command in rotation_commands("n2", "tok-n2-new", node_permissions("n2")):
            secured.ctl(*command)
        assert n2_back.disconnected.wait(10), "delete_user left the session open"
        login("n2", "tok-n2", expect=BAD_CREDENTIALS)
        login("n2", "tok-n2-new", clean_session=False)
    finally:
        for peer in started:
            peer.stop()


def test_rabbitmq_scheduled_announcement_plays_in_its_zone(secured: RabbitMQ, tmp_path: Path) -> None:
    """tests/test_e2e.py's first airing, with the panel and the nodes logged in to RabbitMQ."""
    panel_password = secrets.token_urlsafe(16)
    secured.add_user("loaphuong-panel", panel_password, PANEL_PERMISSIONS)
    stack = PanelStack(tmp_path, secured, MQTT_USERNAME="loaphuong-panel",  # type: ignore[arg-type]
                       MQTT_PASSWORD=panel_password)
    try:
        stack.start_panel()
        stack.provision(LAYOUT)
        for node_id, token in stack.tokens.items():
            secured.add_user(node_id, token, node_permissions(node_id, stack.config.MQTT_PREFIX))
        stack.start_fleet()
        stack.wait_online(timeout=30)

        ann, sched, start = schedule_in(stack, 5)
        plays = wait_plays(stack, 3, start.timestamp() + ann["media"]["duration_ms"] / 1000 + 8)
        assert_zone_played(stack, ann, start, plays)
        # Proof of play went node → RabbitMQ → panel.
        def played() -> list[str] | None:
            rows = stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)
            nodes = sorted(r["node_id"] for r in rows if r["result"] == "played")
            return nodes if len(nodes) >= len(LAYOUT["to-3"]) else None

        assert wait_for(played, 10, "proof of play at the panel", step=0.1) == LAYOUT["to-3"]
    finally:
        stack.stop()
