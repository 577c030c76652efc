"""Two RabbitMQ nodes in one cluster: why a node must ask for its plan on connect (docs/protocol.md §6.7, §14).

RabbitMQ 3.10's MQTT plugin keeps retained messages in a store of each node (``rabbit_mqtt_retained_msg_store_dets``),
not replicated: a plan the panel retained through node A is not delivered to a loudspeaker that connects to node B.
Live messages are routed across the cluster. Measured here; if a RabbitMQ release replicates retained messages,
the first test's first assertion fails and the operator note in docs/deployment.md must change.

The second test is the whole path on such a cluster: the panel on member A, a simulated node on member B that
was off while its plan changed. It gets that plan only through its ``plan_request`` after CONNACK and the panel's
live answer, and airs the announcement.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from firmware_sim.fleet import Fleet
from rabbitmq import INSTALL_HINT, PANEL_PERMISSIONS, RabbitMQ, RabbitMQUnavailable, node_permissions
from sqlalchemy import select
from stack import PanelStack, wait_for
from test_broker_conformance import TOPICS, Peer
from test_e2e import schedule_in

from broadcaster.models import NodeEvent
from devices.protocol import parse_ts

pytestmark = pytest.mark.slow

NODE = "loa-31"  # a node id of its own: the cluster is shared by this module's tests, on one virtual host
ZONE = "to-1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[RabbitMQ, RabbitMQ]]:
    """Nodes A and B, started side by side, then B joins A's cluster."""
    a = RabbitMQ(tmp_path_factory.mktemp("rabbit-a"), anonymous=True)
    b = RabbitMQ(tmp_path_factory.mktemp("rabbit-b"), anonymous=True, cluster_with=a)
    errors: list[BaseException] = []

    def start(node: RabbitMQ) -> None:
        try:
            node.start()
        except BaseException as exc:  # noqa: BLE001 - reported on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(node,)) for node in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if any(isinstance(exc, RabbitMQUnavailable) for exc in errors):
            pytest.fail(f"RabbitMQ is required ({INSTALL_HINT}): {errors}")
        assert not errors, errors
        b.join_cluster(a)
        yield a, b
    finally:
        b.cleanup()
        a.cleanup()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Raw clients a test opens with :func:`connect`; all stopped at the end."""
    started: list[Peer] = []
    yield started
    for p in started:
        p.stop()


def connect(node: RabbitMQ, client_id: str, started: list[Peer]) -> Peer:
    """A raw client on cluster member ``node`` (anonymous: the admin's rights)."""
    p = Peer(node, client_id)  # type: ignore[arg-type]  # duck-types EmbeddedBroker
    started.append(p)
    return p.start()


def test_retained_plan_stays_on_its_node_while_live_messages_cross_the_cluster(cluster, peers) -> None:
    a, b = cluster
    panel = connect(a, "panel", peers)
    panel.publish(TOPICS.plan("n1"), b'{"type":"plan","version":7}', retain=True)

    on_b = connect(b, "n1", peers)
    assert on_b.subscribe(TOPICS.plan("n1"), TOPICS.cmd("n1")) == [1, 1]
    on_b.assert_quiet(2.0)  # the retained plan is in node A's store only

    on_a = connect(a, "n1-on-a", peers)
    on_a.subscribe(TOPICS.plan("n1"))
    assert on_a.get().payload == b'{"type":"plan","version":7}'

    # What the node's plan request gets it instead: the panel's live answer crosses the cluster.
    panel.publish(TOPICS.plan("n1"), b'{"type":"plan","version":7}', retain=True)
    msg = on_b.get()
    assert (msg.topic, msg.payload) == (TOPICS.plan("n1"), b'{"type":"plan","version":7}')
    panel.publish(TOPICS.cmd("n1"), b'{"type":"command","id":"c1"}')
    assert on_b.get().payload == b'{"type":"command","id":"c1"}'


def node_timeline(watch: Peer, until: float) -> dict[str, Any]:
    """The node's own timestamps (its clock) of its first CONNACK (the ``at`` of the online status it builds in
    its CONNACK callback), its plan request (and the ``have_version`` in it) and its ``plan_applied``, read from
    what it published."""
    seen: dict[str, Any] = {}
    while "plan_applied" not in seen and time.monotonic() < until:
        try:
            msg = watch.get(timeout=max(0.01, until - time.monotonic()))
        except AssertionError:
            break
        if msg.topic == TOPICS.plan(NODE):
            continue  # the panel's answer also reaches the watcher
        body = json.loads(msg.payload)
        if msg.topic == TOPICS.status(NODE) and body["state"] == "online":
            seen.setdefault("connack", parse_ts(body["at"]))
        elif msg.topic == TOPICS.plan_request(NODE):
            seen.setdefault("plan_request", parse_ts(body["at"]))
            seen.setdefault("have_version", body.get("have_version"))
        elif msg.topic == TOPICS.events(NODE) and body["event"] == "plan_applied":
            seen["plan_applied"] = parse_ts(body["at"])
            seen["applied_version"] = body["plan_version"]
    return seen


def test_a_node_on_another_member_gets_its_plan_by_asking_and_airs_it(cluster, peers, tmp_path: Path) -> None:
    """§6.7 end to end: the plan is published (retained on A only) while the node is off; the node then starts on
    B, gets that plan through its plan request, and plays the airing; proof of play is in the panel's database."""
    a, b = cluster
    panel_password = secrets.token_urlsafe(16)
    a.add_user("loaphuong-panel", panel_password, PANEL_PERMISSIONS)  # users are cluster-wide
    stack = PanelStack(tmp_path, a, MQTT_USERNAME="loaphuong-panel",  # type: ignore[arg-type]
                       MQTT_PASSWORD=panel_password)
    try:
        stack.start_panel()
        stack.provision({ZONE: [NODE]})
        a.add_user(NODE, stack.tokens[NODE], node_permissions(NODE, stack.config.MQTT_PREFIX))

        # The node is off while the announcement is scheduled: its new plan is retained through member A.
        ann, sched, start = schedule_in(stack, 10, zone=ZONE)
        version = stack.api("GET", f"/nodes/{NODE}", 200)["plan_version"]
        watch = connect(a, "watch-a", peers)
        watch.subscribe(TOPICS.plan(NODE))
        assert json.loads(watch.get().payload)["version"] == version  # retained on A
        # The control: without a request, member B delivers no retained plan at all.
        control = connect(b, "control-b", peers)
        control.subscribe(TOPICS.plan(NODE))
        control.assert_quiet(1.0)
        watch.subscribe(TOPICS.status(NODE), TOPICS.events(NODE), TOPICS.plan_request(NODE))
        assert stack.service.plan_requests_answered.get(NODE) is None

        # The node boots, connecting to member B.
        config = replace(stack.node_config(NODE), broker_host=b.host, broker_port=b.port)
        stack.fleet = Fleet([config], playback_log=stack.root / "plays.jsonl")
        stack.fleet.start()
        node = stack.fleet.nodes[NODE]
        assert node.wait_for_plan(version, timeout=15), f"{NODE} on member B never got plan v{version}"
        assert NODE in stack.service.plan_requests_answered  # the panel answered its request
        timeline = node_timeline(watch, time.monotonic() + 5)
        assert timeline.get("have_version", "absent") is None, timeline  # a node with no plan asks without one
        assert timeline["applied_version"] == version
        connack_to_applied = (timeline["plan_applied"] - timeline["connack"]).total_seconds() * 1000
        request_to_applied = (timeline["plan_applied"] - timeline["plan_request"]).total_seconds() * 1000
        print(f"\nCONNACK → plan_applied {connack_to_applied:.0f} ms (plan_request → plan_applied "
              f"{request_to_applied:.0f} ms); node started {start.timestamp() - time.time():.1f} s before the airing")
        assert 0 <= connack_to_applied < 5000, timeline

        # The airing, and its proof of play in the panel's database (node → member B → member A → panel).
        def finished() -> list[NodeEvent] | None:
            with stack.service.db.session() as s:
                rows = list(s.scalars(select(NodeEvent).where(NodeEvent.schedule_id == sched["id"],
                                                              NodeEvent.event == "playback_finished")))
            return rows or None

        until = start.timestamp() + ann["media"]["duration_ms"] / 1000 + 10 - time.time()
        [row] = wait_for(finished, max(until, 1.0), "proof of play in the panel's database", step=0.1)
        assert (row.node_id, row.plan_version, row.sha256) == (NODE, version, ann["media"]["sha256"])
        assert row.scheduled_start == start and abs(row.offset_ms) < 200, (row.scheduled_start, row.offset_ms)
    finally:
        stack.stop()
