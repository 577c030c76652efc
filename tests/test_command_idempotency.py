"""Commands are idempotent end to end (issue 12, R8; docs/protocol.md §6.3, §9).

A QoS 1 redelivery (or a replay) of a signed command is not executed again: the node answers it with an ack
identical to its first one, and the panel keeps the first outcome it recorded — a played emergency is never
turned into a failure by the answer to its redelivery. Unit level on the panel's ack ingest, then on the real
broker (Mosquitto) with the protocol reference node (SimNode) and the scale simulator.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from firmware_sim import SimNode
from firmware_sim.scale import FleetConfig, NodeCred, ScaleFleet
from sim_harness import Collector, Panel, make_mp3, wait_until
from sqlalchemy import select
from stack import PanelStack, wait_for

from broadcaster import fleet as fleet_ops
from broadcaster.models import NodeEvent
from broadcaster.services import PanelService
from devices import protocol as proto

NODE = "loa-01"


# ============================================================================ panel: the first outcome is kept
def _ack(service: PanelService, command_id: str, status: str, error: str | None = None,
         at: datetime | None = None) -> tuple[str, bytes]:
    body: dict[str, Any] = {"type": "ack", "protocol": 1, "node_id": NODE, "command_id": command_id,
                            "status": status, "at": proto.format_ts(at or datetime.now(UTC)), "data": {}}
    if error is not None:
        body["error"] = error
    return service.topics.ack(NODE), json.dumps(body).encode()


def _record(service: PanelService, command_id: str) -> tuple[str, str | None]:
    (record,) = [c for c in service.list_commands(NODE) if c.id == command_id]
    return record.status, record.error


@pytest.fixture
def node_service(service: PanelService) -> PanelService:
    service.register_node(NODE)
    return service


def test_a_duplicate_error_ack_never_overwrites_ok(node_service: PanelService, caplog: pytest.LogCaptureFixture):
    service = node_service
    cmd = service.send_command(NODE, "ping")
    service.ingest(*_ack(service, cmd.id, "ok"))
    assert _record(service, cmd.id) == ("ok", None)
    # What a node of the old protocol answered to the QoS 1 redelivery of the same command:
    with caplog.at_level(logging.WARNING, logger="broadcaster.services"):
        service.ingest(*_ack(service, cmd.id, "rejected", f"duplicate command id {cmd.id}"))
        service.ingest(*_ack(service, cmd.id, "error", "args.volume must be an integer 0..100"))
    assert _record(service, cmd.id) == ("ok", None)
    assert "kept the first outcome ok" in caplog.text  # a disagreeing duplicate is logged
    # A failure is kept just as well: a later ok does not turn it into a success.
    failed = service.send_command(NODE, "set_volume", {"volume": 101})
    service.ingest(*_ack(service, failed.id, "error", "args.volume must be an integer 0..100"))
    service.ingest(*_ack(service, failed.id, "ok"))
    assert _record(service, failed.id) == ("error", "args.volume must be an integer 0..100")


def test_both_acks_in_one_batch_keep_the_first(node_service: PanelService):
    service = node_service
    cmd = service.send_command(NODE, "stop")
    service.ingest_batch([_ack(service, cmd.id, "ok"), _ack(service, cmd.id, "rejected", "duplicate")])
    assert _record(service, cmd.id) == ("ok", None)


def test_pending_becomes_the_outcome_and_an_identical_duplicate_changes_nothing(node_service: PanelService):
    service = node_service
    cmd = service.send_command(NODE, "ping")
    assert _record(service, cmd.id) == ("pending", None)
    first = _ack(service, cmd.id, "ok")
    service.ingest(*first)
    acked_at = service.list_commands(NODE)[0].acked_at
    time.sleep(0.01)
    service.ingest(*_ack(service, cmd.id, "ok"))  # the duplicate, answered later (a new `at`)
    assert _record(service, cmd.id) == ("ok", None)
    assert service.list_commands(NODE)[0].acked_at == acked_at  # the first answer's time is kept too


def test_a_late_ack_still_turns_timed_out_into_its_outcome(node_service: PanelService):
    service = node_service
    cmd = service.send_command(NODE, "ping")
    assert fleet_ops.expire_commands(service, now=datetime.now(UTC) + timedelta(hours=1)) == 1
    assert _record(service, cmd.id) == ("timed_out", None)
    service.ingest(*_ack(service, cmd.id, "ok"))
    assert _record(service, cmd.id) == ("ok", None)
    service.ingest(*_ack(service, cmd.id, "rejected", "duplicate"))  # and from then on it is kept
    assert _record(service, cmd.id) == ("ok", None)


# =================================================================== the reference node on the real broker
@pytest.fixture(scope="module")
def mp3() -> bytes:
    return make_mp3(1.0)


@pytest.fixture
def harness(mosquitto) -> Iterator[tuple[Panel, Collector]]:
    panel, collector = Panel(mosquitto.host, mosquitto.port), Collector(mosquitto.host, mosquitto.port)
    yield panel, collector
    collector.close()
    panel.close()


@pytest.fixture
def sim_nodes() -> Iterator[list[SimNode]]:
    started: list[SimNode] = []
    yield started
    for node in started:
        node.stop(clean=False)


def _boot(started: list[SimNode], config: Any) -> SimNode:
    node = SimNode(config)
    node.start()
    started.append(node)
    assert wait_until(lambda: node.connected, 5), "node did not connect"
    return node


def _acks_of(collector: Collector, command_id: str) -> list[dict[str, Any]]:
    return [a for a in collector.acks(NODE) if a["command_id"] == command_id]


@pytest.mark.timeout(60)
def test_sim_node_answers_a_duplicate_with_its_first_result_also_after_a_reboot(harness, sim_nodes, tmp_path):
    panel, collector = harness
    config = panel.node_config(NODE, tmp_path / "node")
    node = _boot(sim_nodes, config)
    raw = json.dumps(panel.command(NODE, "set_volume", {"volume": 35})).encode()
    cmd_id = json.loads(raw)["id"]
    panel.publish_cmd(NODE, raw)
    first = collector.wait_ack(NODE, cmd_id)
    assert first is not None and first["status"] == "ok" and first["data"] == {"volume": 35}
    other = panel.command(NODE, "set_volume", {"volume": 50})
    panel.publish_cmd(NODE, other)
    assert collector.wait_ack(NODE, other["id"])["status"] == "ok"

    panel.publish_cmd(NODE, raw)  # the identical bytes again: what a QoS 1 redelivery is
    assert wait_until(lambda: len(_acks_of(collector, cmd_id)) == 2, 5), collector.acks(NODE)
    assert _acks_of(collector, cmd_id)[1] == first  # the first ack again, `at` included
    assert node.volume == 50  # not executed again

    node.stop(clean=False)  # a power cut: the id and its result were persisted before the ack went out
    node = _boot(sim_nodes, config)
    panel.publish_cmd(NODE, raw)
    assert wait_until(lambda: len(_acks_of(collector, cmd_id)) == 3, 5), collector.acks(NODE)
    assert _acks_of(collector, cmd_id)[2] == first
    assert node.volume == 50
    assert not collector.events(NODE, "command_rejected")


@pytest.mark.timeout(60)
def test_sim_node_duplicate_before_the_result_is_answered_with_it(harness, sim_nodes, tmp_path, mp3):
    """A play_now waiting behind a higher-priority item has no result yet: its redelivery is answered when
    repeat 1 sounds, with the same ack, and the alert plays once."""
    panel, collector = harness
    node = _boot(sim_nodes, panel.node_config(NODE, tmp_path / "node"))
    siren = panel.add_media(mp3, duration_ms=2500)
    alert = panel.add_media(mp3, duration_ms=300)
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("siren", time.time() + 0.3, siren,
                                                             priority="emergency")]))
    collector.wait_events(NODE, "playback_started")
    cmd = panel.command(NODE, "play_now", {"alert_id": "A7", "media": alert, "priority": "normal", "repeat": 1})
    raw = json.dumps(cmd).encode()
    panel.publish_cmd(NODE, raw)
    panel.publish_cmd(NODE, raw)
    time.sleep(0.5)
    assert not _acks_of(collector, cmd["id"])  # nothing to answer yet: the siren still plays
    assert wait_until(lambda: len(_acks_of(collector, cmd["id"])) == 2, 8), collector.acks(NODE)
    first, second = _acks_of(collector, cmd["id"])
    assert first == second and first["status"] == "ok" and first["data"] == {"item_id": "alert:A7:1"}
    assert wait_until(lambda: [p for p in node.plays if p["item_id"] == "alert:A7:1" and p.get("result")], 5)
    time.sleep(0.5)
    assert [p["item_id"] for p in node.plays].count("alert:A7:1") == 1, node.plays
    assert len([e for e in collector.events(NODE, "playback_started") if e["item_id"] == "alert:A7:1"]) == 1


# ======================================================================= panel + nodes on the real broker
class _Tap:
    """The panel's publisher, recording what it sends: the test can send the very same bytes again."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload))
        self.inner.publish(topic, payload, qos=qos, retain=retain)

    def redeliver(self, command_id: str) -> None:
        """Publish the signed command ``command_id`` again, byte for byte (a QoS 1 redelivery)."""
        (topic, payload), = [(t, p) for t, p in self.sent if t.endswith("/cmd") and json.loads(p)["id"] == command_id]
        self.inner.publish(topic, payload, qos=1, retain=False)


@pytest.fixture
def stack(tmp_path: Path, mosquitto) -> Iterator[tuple[PanelStack, _Tap, list[dict[str, Any]]]]:
    """A panel on Mosquitto whose outgoing commands are recorded and whose incoming acks are seen by the test."""
    s = PanelStack(tmp_path, mosquitto)
    s.start_panel()
    tap = _Tap(s.service.publisher)
    s.service.publisher = tap
    acks: list[dict[str, Any]] = []
    ingest = s.service.ingest_batch

    def spy(messages: Any) -> None:
        messages = list(messages)
        acks.extend(json.loads(p) for t, p in messages if t.endswith("/ack"))
        ingest(messages)

    s.service.ingest_batch = spy  # type: ignore[method-assign]
    yield s, tap, acks
    s.stop()


def _play_now(stack: PanelStack, node_id: str, ann: dict[str, Any]) -> str:
    """Sign and send a play_now of an approved announcement's audio (the wire form of §9)."""
    media = {k: ann["media"][k] for k in ("url", "sha256", "bytes", "duration_ms", "content_type")}
    args = {"alert_id": f"now-{uuid.uuid4().hex[:12]}", "media": media, "priority": "normal", "repeat": 1,
            "gap_ms": 0, "title": ann["title"]}
    return stack.service.send_command(node_id, "play_now", args).id


def _status(stack: PanelStack, node_id: str, command_id: str) -> tuple[str, str | None]:
    (record,) = [c for c in stack.service.list_commands(node_id) if c.id == command_id]
    return record.status, record.error


def _started(stack: PanelStack, item_id: str) -> list[NodeEvent]:
    with stack.service.db.session() as s:
        return list(s.scalars(select(NodeEvent).where(NodeEvent.event == "playback_started",
                                                      NodeEvent.item_id == item_id)))


def _announcement(stack: PanelStack) -> dict[str, Any]:
    return stack.api("POST", "/announcements", 201, json={"title": "Thông báo khẩn", "text": "Mất điện lúc chín giờ.",
                                                          "approve": True})


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_redelivered_play_now_to_a_sim_node_plays_once_and_stays_ok(stack):
    stack, tap, acks = stack
    stack.deploy({"to-1": [NODE]})
    ann = _announcement(stack)
    cmd_id = _play_now(stack, NODE, ann)
    wait_for(lambda: _status(stack, NODE, cmd_id)[0] != "pending", 10, "the play_now ack")
    assert _status(stack, NODE, cmd_id) == ("ok", None)
    alert_id = next(json.loads(p) for t, p in tap.sent if t.endswith("/cmd") and json.loads(p)["id"] == cmd_id)
    item_id = f"alert:{alert_id['args']['alert_id']}:1"
    wait_for(lambda: _started(stack, item_id), 10, "the alert to start")

    tap.redeliver(cmd_id)
    both = wait_for(lambda: (lambda a: a if len(a) == 2 else None)([a for a in acks if a["command_id"] == cmd_id]),
                    10, "the ack of the redelivery")
    assert both[0] == both[1] and both[0]["status"] == "ok"
    time.sleep(ann["media"]["duration_ms"] / 1000 + 1)  # long enough for a second playback to show
    assert len(_started(stack, item_id)) == 1
    assert [p["item_id"] for p in stack.fleet.plays()].count(item_id) == 1
    assert _status(stack, NODE, cmd_id) == ("ok", None)  # the played alert is still reported played
    assert [c["status"] for c in stack.api("GET", f"/nodes/{NODE}/commands", 200) if c["id"] == cmd_id] == ["ok"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_redelivered_commands_to_the_scale_simulator(stack):
    stack, tap, acks = stack
    ids = [f"s-{i}" for i in range(3)]
    stack.provision({"to-9": ids})
    config = FleetConfig(broker_host=stack.broker.host, broker_port=stack.broker.port,
                         panel_public_key=stack.service.public_key_b64, data_dir=stack.root / "scale",
                         topic_prefix=stack.config.MQTT_PREFIX, playback_log=stack.root / "scale.jsonl")
    fleet = ScaleFleet(config, [NodeCred(n, stack.tokens[n]) for n in ids])
    fleet.start()
    try:
        wait_for(lambda: (s := fleet.summary())["connected"] == 3 and s["with_plan"] == 3, 30, "3 nodes, plans")
        ann = _announcement(stack)
        plays = {n: _play_now(stack, n, ann) for n in ids}
        volumes = {n: stack.service.send_command(n, "set_volume", {"volume": 40}).id for n in ids}
        sent = plays | {f"v-{n}": c for n, c in volumes.items()}
        cmds = {c: n for n, c in plays.items()} | {c: n for n, c in volumes.items()}
        wait_for(lambda: all(_status(stack, n, c)[0] == "ok" for c, n in cmds.items()), 20, "every command ok")
        wait_for(lambda: fleet.summary()["plays_started"] == 3, 10, "3 alerts started")

        def answered(count: int) -> dict[str, list[dict[str, Any]]] | None:
            got = {c: [a for a in acks if a["command_id"] == c] for c in sent.values()}
            return got if all(len(v) == count for v in got.values()) else None

        for c in sent.values():
            tap.redeliver(c)
        got = wait_for(lambda: answered(2), 15, "the acks of the redeliveries")
        for c, (first, again) in got.items():
            assert first == again and first["status"] == "ok", (c, first, again)

        # A power cut: the results were durable before the acks went out, so they survive it.
        seventy = stack.service.send_command(ids[0], "set_volume", {"volume": 70}).id
        wait_for(lambda: _status(stack, ids[0], seventy)[0] == "ok", 10, "volume 70 acked (so persisted)")
        fleet.reboot(ids, clean=False)
        wait_for(lambda: all(fleet.node_info(n)["connected"] for n in ids), 30, "rebooted nodes back")
        for c in sent.values():
            tap.redeliver(c)
        got = wait_for(lambda: answered(3), 15, "the acks of the redeliveries after the reboot")
        for c, answers in got.items():
            assert answers[2] == answers[0], (c, answers)
        assert fleet.node_info(ids[0])["volume"] == 70  # the replayed set_volume 40 was not executed again
        time.sleep(ann["media"]["duration_ms"] / 1000 + 1)
        assert fleet.summary()["plays_started"] == 3  # each alert played once, never again
        assert fleet.summary()["duplicate_commands"] >= 12  # counted: never executed
        assert all(_status(stack, n, c) == ("ok", None) for c, n in cmds.items())
    finally:
        fleet.stop()
