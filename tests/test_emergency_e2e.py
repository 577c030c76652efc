"""End to end: an emergency pre-empts a running bulletin on real parts (broker, panel over HTTP, simulated nodes).

A normal bulletin plays on every node of three zones; an emergency to two of them must cut it on every node of
those zones (``playback_stopped`` reason ``preempted``) and start there within about a second of its release,
while the third zone keeps playing the bulletin. Cancelling stops the emergency and the pre-built cancellation
plays; a drill is logged as a drill. Everything is observed through what the nodes report over MQTT.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select
from stack import wait_for

from broadcaster.models import AuditEntry, NodeEvent
from devices import protocol as proto

pytestmark = pytest.mark.slow

LAYOUT = {"to-3": ["loa-01", "loa-02"], "to-5": ["loa-03", "loa-04"], "to-7": ["loa-05"]}
TARGET = LAYOUT["to-3"] + LAYOUT["to-5"]
BULLETIN = " ".join([
    "Ủy ban nhân dân phường thông báo lịch thu gom rác thải sinh hoạt trong tháng.",
    "Từ ngày mai, xe thu gom sẽ đi qua các tổ dân phố vào buổi tối, từ mười bảy giờ đến mười chín giờ.",
    "Đề nghị bà con để rác đúng nơi quy định, phân loại rác tái chế và không đổ rác xuống kênh rạch.",
    "Mọi thắc mắc xin liên hệ văn phòng ủy ban nhân dân phường trong giờ hành chính.",
] * 2)
ALERT = "Bão số ba sắp đổ bộ. Bà con khẩn trương chằng chống nhà cửa và đến nơi trú ẩn an toàn."


@pytest.fixture
def stack(panel_stack):
    return panel_stack.deploy(LAYOUT)


class Second:
    """A second leader's API calls (two-person release and cancel are on by default)."""

    def __init__(self, stack, username: str = "lanh-dao-2", password: str = "password-123") -> None:
        stack.service.create_user(username, password, role="leader")
        self.stack = stack
        r = requests.post(f"{stack.base}/api/v1/auth/token", json={"username": username, "password": password},
                          timeout=10)
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}

    def post(self, path: str, expect: int) -> dict:
        r = requests.post(f"{self.stack.base}/api/v1{path}", headers=self.headers, timeout=30)
        assert r.status_code == expect, f"POST {path}: {r.status_code} {r.text}"
        return r.json()


def node_events(stack, **where) -> list[NodeEvent]:
    with stack.service.db.session() as s:
        q = select(NodeEvent)
        for key, value in where.items():
            q = q.where(getattr(NodeEvent, key) == value)
        return list(s.scalars(q.order_by(NodeEvent.node_id, NodeEvent.seq)))



def started_on(stack, item_id: str) -> dict[str, NodeEvent]:
    return {e.node_id: e for e in node_events(stack, event="playback_started", item_id=item_id)}


def start_time(e: NodeEvent) -> datetime:
    return e.actual_start or e.at


def test_emergency_preempts_the_bulletin_in_the_chosen_zones_cancel_and_drill(stack):
    # ---- a long normal bulletin plays on every node of the three zones
    ann = stack.api("POST", "/announcements", 201, json={"title": "Thu gom rác", "text": BULLETIN, "approve": True})
    assert ann["media"]["duration_ms"] > 25_000, ann["media"]
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    sched = stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": list(LAYOUT),
                                                       "start_at": proto.format_ts(start)})
    bulletin = wait_for(lambda: (lambda ev: ev if len(ev) == 5 else None)(
        {e.node_id: e for e in node_events(stack, event="playback_started", schedule_id=sched["id"])}),
        15, "the bulletin to start on all five nodes")
    second = Second(stack)
    time.sleep(2)  # well into the bulletin

    # ---- emergency to to-3 and to-5: cuts the bulletin there, starts within ~1 s of its release
    clicked = datetime.now(UTC)
    alert = stack.api("POST", "/emergencies", 201, json={"title": "Bão số 3", "text": ALERT, "zones": ["to-3", "to-5"],
                                                         "repeat": 3, "gap_ms": 1000, "volume": 90})
    assert alert["status"] == "pending_release"  # two people (release policy R4)
    clicked = datetime.now(UTC)  # the second person's click
    alert = second.post(f"/emergencies/{alert['id']}/release", 200)
    assert alert["status"] == "released"
    released = proto.parse_ts(alert["released_at"])
    first = f"alert:{alert['id']}:1"
    got = wait_for(lambda: (lambda ev: ev if set(ev) == set(TARGET) else None)(started_on(stack, first)), 10,
                   "the emergency to start on every node of the chosen zones")
    for node_id, e in got.items():
        delay = (start_time(e) - released).total_seconds()
        assert -0.05 <= delay < 1.2, f"{node_id} started the emergency {delay:.2f} s after release"
        # from the officer's click, speech synthesis included
        assert (start_time(e) - clicked).total_seconds() < 3.0, node_id
    stopped = {e.node_id: e for e in node_events(stack, event="playback_stopped", schedule_id=sched["id"])}
    assert set(stopped) == set(TARGET), stopped
    assert all(e.reason == "preempted" for e in stopped.values()), [e.reason for e in stopped.values()]
    for node_id in TARGET:  # cut first, then the emergency
        assert stopped[node_id].seq < got[node_id].seq
    # the other zone is untouched: the bulletin goes on, no emergency there
    assert not [e for e in node_events(stack, node_id="loa-05") if (e.item_id or "").startswith("alert:")]
    assert not node_events(stack, node_id="loa-05", event="playback_stopped")

    # the acknowledgement and the playback report travel on different topics: wait for both
    detail = wait_for(lambda: (lambda d: d if d["summary"]["started"] == 4
                               and all(x["command_status"] == "ok" for x in d["deliveries"]) else None)(
        stack.api("GET", f"/emergencies/{alert['id']}", 200)),
        10, "the panel to show the emergency started and acknowledged")
    assert sorted(d["node_id"] for d in detail["deliveries"]) == TARGET

    # ---- cancel: the emergency stops everywhere, then the cancellation plays
    asked = stack.api("POST", f"/emergencies/{alert['id']}/cancel", 202)
    assert asked["cancel_pending"] and asked["status"] == "released"
    cancelled = second.post(f"/emergencies/{alert['id']}/cancel", 200)
    assert cancelled["status"] == "cancelled"
    cancel_id = cancelled["cancel_alert_id"]
    done = wait_for(lambda: (lambda ev: ev if set(ev) == set(TARGET) else None)(
        {e.node_id: e for e in node_events(stack, event="playback_finished", item_id=f"alert:{cancel_id}:1")}),
        30, "the cancellation to be played on every node")
    alert_stops = [e for e in node_events(stack, event="playback_stopped")
                   if (e.item_id or "").startswith(f"alert:{alert['id']}:")]
    assert {e.node_id for e in alert_stops} == set(TARGET)
    assert all(e.reason == "command" for e in alert_stops), [e.reason for e in alert_stops]
    for node_id in TARGET:
        assert not node_events(stack, node_id=node_id, event="playback_started", item_id=f"alert:{alert['id']}:3")
        assert done[node_id].seq > max(e.seq for e in alert_stops if e.node_id == node_id)
    cancel_detail = wait_for(lambda: (lambda d: d if d["summary"]["finished"] == 4 else None)(
        stack.api("GET", f"/emergencies/{cancel_id}", 200)), 5, "the panel to show the cancellation played")
    assert cancel_detail["kind"] == "cancel" and cancel_detail["cancels_id"] == alert["id"]
    states = {d["node_id"]: d["state"] for d in stack.api("GET", f"/emergencies/{alert['id']}", 200)["deliveries"]}
    assert set(states.values()) == {"stopped"}, states
    assert not [e for e in node_events(stack, node_id="loa-05") if (e.item_id or "").startswith("alert:")]

    # ---- the cut bulletin resumes from its beginning after the cancellation (timeline rule 4, new plans)
    resumed = wait_for(lambda: (lambda ev: ev if set(ev) == set(TARGET) else None)(
        {e.node_id: e for e in node_events(stack, event="playback_started", schedule_id=sched["id"])
         if e.item_id != bulletin[e.node_id].item_id}), 30, "the bulletin to resume after the cancellation")
    for node_id in TARGET:
        assert start_time(resumed[node_id]) >= done[node_id].at - timedelta(milliseconds=300), node_id
    other = node_events(stack, node_id="loa-05", schedule_id=sched["id"])
    assert [e.event for e in other if e.event.startswith("playback_")] == ["playback_started"], [
        (e.event, e.item_id, e.reason) for e in other]

    # ---- a drill in the other zone is a drill everywhere
    drill = stack.api("POST", "/emergencies", 201, json={"title": "Diễn tập PCCC", "text": "Cháy giả định tại chợ.",
                                                         "zones": ["to-7"], "drill": True})
    drill = second.post(f"/emergencies/{drill['id']}/release", 200)
    wait_for(lambda: node_events(stack, node_id="loa-05", event="playback_finished",
                                 item_id=f"alert:{drill['id']}:1"), 30, "the drill to be played")
    assert [a["id"] for a in stack.api("GET", "/emergencies?drill=true", 200)] == [drill["id"]]
    assert drill["id"] not in [a["id"] for a in stack.api("GET", "/emergencies", 200)]
    with stack.service.db.session() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.target == f"alert:{drill['id']}")))
    assert actions and all(a.startswith("emergency.drill.") for a in actions), actions
    played = [p for p in stack.fleet.plays() if p["item_id"] == f"alert:{drill['id']}:1"]
    assert played and all(p.get("drill") is True for p in played), played
    page = stack.web_login().get(f"{stack.base}/emergency/{drill['id']}", timeout=10).text
    assert "DIỄN TẬP — không phải tình huống khẩn cấp thật" in page and "đã phát xong" in page
