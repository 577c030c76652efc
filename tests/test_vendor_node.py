"""End-to-end: a third-party node written from docs/protocol.md alone, against the real panel and broker."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from stack import PanelStack, wait_for
from vendor_node.vendor_node import VendorNode

pytestmark = pytest.mark.slow


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"



@pytest.fixture
def deployment(tmp_path, broker):
    stack = PanelStack(tmp_path, broker)
    stack.start_panel()
    nodes: dict[str, VendorNode] = {}

    def start_nodes(layout: dict[str, list[str]]) -> dict[str, VendorNode]:
        stack.provision(layout)
        for node_id in stack.tokens:
            node = VendorNode(node_id, stack.tokens[node_id], broker.host, broker.port, stack.service.public_key_b64,
                              tmp_path / "vendor" / node_id, topic_prefix=stack.config.MQTT_PREFIX)
            node.start()
            nodes[node_id] = node
        wait_for(lambda: {n["node_id"]: n["state"] for n in stack.api("GET", "/nodes", 200)}
                 == {n: "online" for n in nodes}, 10, "vendor nodes online in the panel")
        return nodes

    yield stack, start_nodes
    for node in nodes.values():
        node.stop()
    stack.stop()


def schedule_in(stack: PanelStack, seconds: int, zones: list[str], text: str) -> tuple[dict, dict, float]:
    ann = stack.api("POST", "/announcements", 201, json={"title": "Thông báo thử", "text": text, "approve": True})
    assert len(ann["media"]["sha256"]) == 64 and ann["media"]["duration_ms"] > 0
    start = float(int(time.time()) + seconds)
    sched = stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": zones,
                                                        "start_at": rfc3339(start)[:-5] + "Z"})
    return ann, sched, start


def wait_played(stack: PanelStack, node: VendorNode, sched: dict, start: float, duration_ms: int) -> list[dict]:
    time.sleep(max(0.0, start - time.time()))
    wait_for(lambda: node.plays and node.plays[-1]["result"] != "playing", duration_ms / 1000 + 3, "end of play")
    return wait_for(lambda: [p for p in stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)
                             if p["result"] == "played"], 5, "proof of play in the panel")


def test_vendor_node_plays_on_time_and_acks(deployment):
    stack, start_nodes = deployment
    nodes = start_nodes({"to-1": ["vendor-01"], "to-2": ["vendor-02"]})
    v1, v2 = nodes["vendor-01"], nodes["vendor-02"]

    ann, sched, start = schedule_in(stack, 5, ["to-1"], "Xin chào bà con tổ dân phố một.")
    sha = ann["media"]["sha256"]
    wait_for(lambda: any(e["event"] == "media_ready" and e["sha256"] == sha for e in v1.events), 5, "media_ready")
    plays = wait_played(stack, v1, sched, start, ann["media"]["duration_ms"])

    assert [(p["sha256"], p["result"]) for p in v1.plays] == [(sha, "finished")]
    assert v1.plays[0]["scheduled_start"] == start
    assert abs(v1.plays[0]["actual_start"] - start) <= 0.2, v1.plays[0]
    assert v2.plays == []
    assert {p["node_id"] for p in plays} == {"vendor-01"}
    assert plays[0]["sha256"] == sha and abs(plays[0]["offset_ms"]) <= 200
    seqs = [e["seq"] for e in v1.events]
    assert seqs == list(range(1, len(seqs) + 1))

    cmd = stack.api("POST", "/nodes/vendor-01/commands", 202, json={"name": "ping"})
    acked = wait_for(lambda: [c for c in stack.api("GET", "/nodes/vendor-01/commands", 200)
                              if c["id"] == cmd["id"] and c["status"] != "pending"], 5, "ping ack")
    assert acked[0]["status"] == "ok", acked
    assert [a["status"] for a in v1.acks if a["command_id"] == cmd["id"]] == ["ok"]


def test_vendor_node_refuses_forged_plans_and_keeps_the_good_one(deployment, broker):
    stack, start_nodes = deployment
    node = start_nodes({"to-1": ["vendor-01"]})["vendor-01"]
    ann, sched, start = schedule_in(stack, 5, ["to-1"], "Bản tin chiều nay.")
    sha = ann["media"]["sha256"]
    topic = f"{stack.config.MQTT_PREFIX}/v1/nodes/vendor-01/plan"

    # the real retained plan, as any client on the (unauthenticated test) broker can read it
    got: list[bytes] = []
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    attacker.on_message = lambda c, u, m: got.append(m.payload)
    attacker.connect(broker.host, broker.port)
    attacker.loop_start()
    try:
        attacker.subscribe(topic, qos=1)
        real = json.loads(wait_for(lambda: [g for g in got if sha.encode() in g], 5, "retained plan")[-1])
        held = real["version"]
        wait_for(lambda: any(e["event"] == "media_ready" and e["sha256"] == sha for e in node.events), 5,
                 "media_ready")

        # 1. a well-formed plan (cancel everything) signed with another Ed25519 key
        forger = Ed25519PrivateKey.generate()
        forged = {k: v for k, v in real.items() if k != "signature"} | {"version": held + 1000, "items": []}
        canon = json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        forged["signature"] = base64.b64encode(forger.sign(canon)).decode()
        # 2. the real plan with its panel signature, item moved 1 h later (tampered)
        tampered = json.loads(json.dumps(real))
        tampered["version"] = held + 2000
        tampered["items"][0]["start"] = rfc3339(start + 3600)
        for payload in (forged, tampered):
            attacker.publish(topic, json.dumps(payload, ensure_ascii=False), qos=1).wait_for_publish(5)
        rejected = wait_for(lambda: [e for e in node.events if e["event"] == "plan_rejected"][:2]
                            if sum(e["event"] == "plan_rejected" for e in node.events) >= 2 else None,
                            5, "two plan_rejected events")
    finally:
        attacker.loop_stop()
        attacker.disconnect()

    assert [e["reason"] for e in rejected] == ["bad signature", "bad signature"]
    assert all(e["plan_version"] == held for e in rejected)
    assert not any(e["event"] == "plan_applied" and e["plan_version"] > held for e in node.events)

    plays = wait_played(stack, node, sched, start, ann["media"]["duration_ms"])
    assert [(p["sha256"], p["result"]) for p in node.plays] == [(sha, "finished")]
    assert abs(node.plays[0]["actual_start"] - start) <= 0.2, node.plays[0]
    assert [p["node_id"] for p in plays] == ["vendor-01"]
