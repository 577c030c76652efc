"""The panel's answer to a node's plan request (docs/protocol.md §6.7), on the service with its in-memory
publisher; tests/test_broker_auth.py runs the same through Mosquitto's ACL and the bridge."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from broadcaster import ingest
from broadcaster.core import MemoryPublisher
from broadcaster.models import Node
from devices.protocol import Topics, format_ts

TOPICS = Topics()


def request(node_id: str, have_version: int | None = None, **extra) -> tuple[str, bytes]:
    body = {"type": "plan_request", "protocol": 1, "node_id": node_id, "at": "2026-12-07T06:29:58.120Z", **extra}
    if have_version is not None:
        body["have_version"] = have_version
    return TOPICS.plan_request(node_id), json.dumps(body).encode()


@pytest.fixture
def panel(service):
    service.create_zone("to-1", "Tổ 1")
    service.register_node("loa-01", zone="to-1")
    service.register_node("loa-02", zone="to-1")
    service.publisher = MemoryPublisher()
    return service


def plans_sent(service) -> list[tuple[str, dict, bool]]:
    return [(topic, json.loads(payload), retain) for topic, payload, _, retain in service.publisher.messages
            if topic.endswith("/plan")]


def test_a_node_without_the_current_plan_gets_the_stored_signed_bytes_again(panel):
    node = panel.get_node("loa-01")
    panel.ingest_batch([request("loa-01")])
    [(topic, plan, retained)] = plans_sent(panel)
    assert topic == TOPICS.plan("loa-01") and retained
    assert plan == node.plan_payload  # byte-for-byte what is stored: same version, same signature
    panel.plan_requests_answered.clear()
    panel.ingest_batch([request("loa-02", have_version=1)])  # an older version than the current one
    assert [t for t, _, _ in plans_sent(panel)][-1] == TOPICS.plan("loa-02")


def test_a_node_that_holds_the_current_plan_gets_nothing(panel):
    version = panel.get_node("loa-01").plan_version
    panel.ingest_batch([request("loa-01", have_version=version)])
    assert plans_sent(panel) == []


def test_one_answer_per_node_per_interval_and_none_for_strangers_or_bad_requests(panel, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ingest.time, "monotonic", lambda: clock[0])
    for _ in range(5):
        panel.ingest_batch([request("loa-01")])
    assert len(plans_sent(panel)) == 1  # a firmware asking in a loop
    clock[0] += ingest.PLAN_REQUEST_INTERVAL_S
    panel.ingest_batch([request("loa-01")])
    assert len(plans_sent(panel)) == 2
    before = panel.ingest_dropped["invalid"]
    panel.ingest_batch([request("stranger"), request("loa-02", have_version=-1),
                        (TOPICS.plan_request("loa-02"), json.dumps({"type": "plan_request", "protocol": 1,
                                                                    "node_id": "loa-01", "at": "x"}).encode())])
    assert len(plans_sent(panel)) == 2  # an unregistered node, a bad field, a node id ≠ topic: no answer
    assert panel.ingest_dropped["invalid"] == before + 2


def test_a_node_that_has_no_plan_yet_gets_one_built(panel):
    with panel.db.session() as s:
        s.get(Node, panel.get_node("loa-02").id).plan_payload = None
    panel.ingest_batch([request("loa-02")])
    [(topic, plan, retained)] = plans_sent(panel)
    assert topic == TOPICS.plan("loa-02") and retained and plan["node_id"] == "loa-02"
    assert plan["signature"] and plan["generated_at"] <= format_ts(datetime.now(UTC))
