"""The release policy end to end on real parts (broker, panel over HTTP, simulated nodes): what an officer
schedules plays only once a leader approved that audio, at the planned second; an emergency reaches the
loudspeakers only when a second person released it, and then within the emergency latency goal; a refused
command never reaches a node. Everything is observed through what the nodes report over MQTT."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select
from stack import wait_for

from broadcaster.models import CommandRecord, NodeEvent
from devices import protocol as proto

LAYOUT = {"to-3": ["loa-01", "loa-02"], "to-5": ["loa-03"]}
TEXT = "Ủy ban nhân dân phường thông báo lịch tiêm phòng cho trẻ em tại trạm y tế phường vào sáng thứ bảy."
STORM = "Bão số ba sắp đổ bộ. Bà con khẩn trương đến nơi trú ẩn an toàn."
PASSWORD = "password-123"


class User:
    def __init__(self, stack, username: str, role: str) -> None:
        stack.service.create_user(username, PASSWORD, role=role)
        self.base = f"{stack.base}/api/v1"
        r = requests.post(f"{self.base}/auth/token", json={"username": username, "password": PASSWORD}, timeout=10)
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}

    def call(self, method: str, path: str, expect: int, **kw) -> dict:
        r = requests.request(method, f"{self.base}{path}", headers=self.headers, timeout=60, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else {}


@pytest.fixture
def stack(panel_stack):
    return panel_stack.deploy(LAYOUT)


def events(stack, **where) -> list[NodeEvent]:
    with stack.service.db.session() as s:
        q = select(NodeEvent)
        for key, value in where.items():
            q = q.where(getattr(NodeEvent, key) == value)
        return list(s.scalars(q.order_by(NodeEvent.node_id, NodeEvent.seq)))


@pytest.mark.slow  # `make test-all`; the fast lane keeps the two-person emergency release below
def test_officer_writes_leader_approves_nodes_play_on_the_second(stack):
    officer, leader = User(stack, "can-bo", "officer"), User(stack, "lanh-dao", "leader")
    ann = officer.call("POST", "/announcements", 201, json={"title": "Tiêm phòng", "text": TEXT})
    officer.call("POST", f"/announcements/{ann['id']}/submit", 200)
    start = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    sched = officer.call("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                          "start_at": proto.format_ts(start)})
    assert sched["status"] == "awaiting_approval"
    time.sleep(1.5)
    held = {n: stack.service.get_node(n).plan_payload["items"] for n in LAYOUT["to-3"]}
    assert held == {"loa-01": [], "loa-02": []}, "nothing unapproved may reach a node"

    leader.call("POST", f"/announcements/{ann['id']}/approve", 200)
    got = wait_for(lambda: (lambda ev: ev if set(ev) == set(LAYOUT["to-3"]) else None)(
        {e.node_id: e for e in events(stack, event="playback_started", schedule_id=sched["id"])}),
        20, "the approved bulletin to start on both nodes of to-3")
    for node_id, e in got.items():
        assert e.sha256 == ann["media"]["sha256"], node_id
        assert abs(((e.actual_start or e.at) - start).total_seconds()) < 0.5, f"{node_id} off the second"
    assert not events(stack, node_id="loa-03", schedule_id=sched["id"])


def test_an_emergency_sounds_only_when_the_second_person_releases_it(stack):
    officer = User(stack, "can-bo", "officer")
    leader, leader2 = User(stack, "lanh-dao", "leader"), User(stack, "lanh-dao-2", "leader")
    # an officer can neither start one nor play or silence the ward some other way
    officer.call("POST", "/emergencies", 403, json={"title": "Bão", "text": STORM, "all_zones": True})
    officer.call("POST", "/fleet/commands", 403, json={"name": "stop", "zone": "to-3"})
    officer.call("POST", "/fleet/commands", 403, json={"name": "set_volume", "zone": "to-3", "args": {"volume": 0}})

    alert = leader.call("POST", "/emergencies", 201, json={"title": "Bão số 3", "text": STORM, "zones": ["to-3"],
                                                           "repeat": 3})
    assert alert["status"] == "pending_release"
    leader.call("POST", f"/emergencies/{alert['id']}/release", 409)  # not by herself
    time.sleep(1.0)
    first = f"alert:{alert['id']}:1"
    assert not events(stack, item_id=first), "an alert with one person's release reached a node"

    released = leader2.call("POST", f"/emergencies/{alert['id']}/release", 200)
    at = proto.parse_ts(released["released_at"])
    got = wait_for(lambda: (lambda ev: ev if set(ev) == set(LAYOUT["to-3"]) else None)(
        {e.node_id: e for e in events(stack, event="playback_started", item_id=first)}),
        10, "the emergency to start on every node of to-3")
    for node_id, e in got.items():
        assert ((e.actual_start or e.at) - at).total_seconds() < 1.2, node_id
    assert not events(stack, node_id="loa-03", item_id=first)

    # while it sounds, nobody silences its loudspeakers except through its cancel (two people)
    leader.call("POST", "/fleet/commands", 409, json={"name": "stop", "zone": "to-3"})
    leader.call("POST", f"/emergencies/{alert['id']}/cancel", 202)
    time.sleep(0.5)
    assert not events(stack, event="playback_stopped", item_id=first)
    leader2.call("POST", f"/emergencies/{alert['id']}/cancel", 200)
    wait_for(lambda: len(events(stack, event="playback_stopped", item_id=first)) == 2, 10,
             "the cancel to stop the emergency on both nodes")
    with stack.service.db.session() as s:
        names = {c.name for c in s.scalars(select(CommandRecord))}
    assert names == {"play_now", "stop"}, names
