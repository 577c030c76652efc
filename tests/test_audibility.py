"""Proof of audibility (issue 17 §2; docs/protocol.md §7.10): nodes report the output level they measured over
each airing; the panel says per node and per airing whether it was heard, counts heard airings in the reports and
tells the ward's staff of loudspeakers that played without a sound.

The events go through the panel's real ingest (the bytes a node publishes); the end-to-end test at the bottom runs
the real ``loaphuong sim … --output-fault`` against the panel on a real broker.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from browser import login as browser_login
from browser import page_problems
from firmware_sim.output import (
    HORN_OFF_LUFS,
    SILENCE_LUFS,
    OutputFault,
    faulty_ids,
    measured_lufs,
    parse_output_fault,
)
from stack import wait_for
from test_notifications import PW
from test_panel import login

from broadcaster import fleet
from broadcaster.models import Notification, User
from broadcaster.notifications import NOT_HEARD
from devices import protocol as proto

# ------------------------------------------------------------------------------------------------ the wire


def _event(**extra: object) -> bytes:
    body = {"type": "event", "protocol": 1, "node_id": "n1", "seq": 7, "at": "2026-12-07T00:00:00.000Z",
            "event": "playback_finished", **extra}
    return json.dumps(body).encode()


def test_output_lufs_is_the_one_member_that_may_have_a_fraction():
    ev = proto.decode_from_node(proto.Event, _event(output_lufs=-17.9), topic_node_id="n1")
    assert ev.output_lufs == -17.9
    assert proto.decode_from_node(proto.Event, _event(output_lufs=-70), topic_node_id="n1").output_lufs == -70
    sensorless = proto.decode_from_node(proto.Event, _event(output_sensor=False, output_lufs=None),
                                        topic_node_id="n1")
    assert (sensorless.output_lufs, sensorless.output_sensor) == (None, False)
    for bad, why in ((_event(output_lufs=-17.9, offset_ms=1.5), "floating-point"),  # elsewhere still refused
                     (_event(output_lufs=-1.5).replace(b"-1.5", b"-1e999"), "output_lufs"),  # -inf: out of range
                     (_event(output_lufs=3.5), "output_lufs"),
                     (_event(output_sensor="no"), "output_sensor")):
        with pytest.raises(proto.ProtocolError, match=why):
            proto.decode_from_node(proto.Event, bad, topic_node_id="n1")
    # signed payloads (plans, commands) keep refusing every fraction
    with pytest.raises(proto.ProtocolError, match="floating-point"):
        proto.decode_json(_event(output_lufs=-17.9))


def test_the_event_schema_documents_the_fields():
    props = proto.json_schemas()["events"]["properties"]
    assert {"output_lufs", "output_sensor"} <= set(props)


# ------------------------------------------------------------------------------------------- the simulator


def test_output_fault_argument():
    assert parse_output_fault("amp_dead") == OutputFault("amp_dead", 1.0)
    assert parse_output_fault("stuck_low:0.25") == OutputFault("stuck_low", 0.25)
    for bad in ("mute", "horn_off:0", "horn_off:1.5", "horn_off:x", "horn_off:nan"):
        with pytest.raises(ValueError, match="output fault"):
            parse_output_fault(bad)
    ids = [f"n{i}" for i in range(10)]
    assert faulty_ids(parse_output_fault("amp_dead:0.3"), ids) == {"n0", "n1", "n2"}
    assert faulty_ids(parse_output_fault("amp_dead:0.01"), ids) == {"n0"}  # a share > 0 is at least one node
    assert faulty_ids(None, ids) == set()


def test_what_each_fault_measures():
    rng = random.Random(1)
    healthy = measured_lufs(None, 80, rng)
    assert -19.5 < healthy < -17.5  # −16 LUFS media at volume 80
    assert measured_lufs("amp_dead", 80, rng) == SILENCE_LUFS
    assert abs(measured_lufs("horn_off", 80, rng) - HORN_OFF_LUFS) <= 1.0
    assert measured_lufs("stuck_low", 100, rng) < -40  # whatever the volume
    assert measured_lufs(None, 0, rng) == SILENCE_LUFS  # muted: nothing heard
    assert measured_lufs(None, 30, rng) > -40  # a quiet night volume is still heard
    assert round(healthy, 1) == healthy


# ---------------------------------------------------------------------------------------- the panel, API


@pytest.fixture
def aired(client, api, service, monkeypatch):
    """One bulletin to zone to-1 (three loudspeakers), due a quarter of an hour ago in the report's eyes; loa-01
    heard, loa-02 played with a dead amplifier, loa-03 without a sensor."""
    for name, role in (("canbo", "officer"), ("lanhdao", "leader")):
        service.create_user(name, PW, role=role)
    api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"})
    for node_id in ("loa-01", "loa-02", "loa-03"):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": "to-1"})
    ann = api.post("/api/v1/announcements", json={"title": "Lịch tiêm chủng", "text": "Mời bà con đi tiêm.",
                                                  "approve": True}).json
    start = datetime.now(UTC) + timedelta(minutes=3)
    sched = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-1"],
                                                "start_at": proto.format_ts(start)})
    assert sched.status_code == 201, sched.json
    monkeypatch.setattr(fleet, "_now", lambda: start + timedelta(minutes=15))
    sid = sched.json["id"]
    seq: dict[str, int] = {}

    def play(node_id: str, **measured: object) -> None:
        item = next(it for it in service.get_node(node_id).plan_payload["items"] if it["schedule_id"] == str(sid))
        for name in ("playback_started", "playback_finished"):
            seq[node_id] = seq.get(node_id, 0) + 1
            body = {"type": "event", "protocol": 1, "node_id": node_id, "seq": seq[node_id], "event": name,
                    "at": item["start"], "item_id": item["id"], "schedule_id": str(sid),
                    "scheduled_start": item["start"], "actual_start": item["start"], "offset_ms": 0,
                    **(measured if name == "playback_finished" else {})}
            service.ingest(service.topics.events(node_id), json.dumps(body).encode())

    play("loa-01", output_lufs=-17.9)
    play("loa-02", output_lufs=-70.0)
    play("loa-03", output_sensor=False)
    return {"schedule_id": sid, "day": service.local(start).date(), "play": play, "month": f"{start:%Y-%m}"}


def test_every_play_row_says_what_was_measured_and_whether_it_was_heard(api, aired):
    rows = {r["node_id"]: r for r in api.get(f"/api/v1/plays?schedule_id={aired['schedule_id']}").json}
    assert {n: (r["result"], r["output_lufs"], r["heard"]) for n, r in rows.items()} == {
        "loa-01": ("played", -17.9, True), "loa-02": ("played", -70.0, False), "loa-03": ("played", None, None)}
    assert rows["loa-03"]["output_sensor"] is False and rows["loa-01"]["output_sensor"] is None


def test_reports_count_heard_airings_next_to_played(api, aired):
    day = aired["day"]
    report = api.get(f"/api/v1/reports/compliance?from={day}&to={day}").json
    (row,) = report["rows"]
    assert (row["planned"], row["played"], row["heard"], row["not_heard"], row["unmeasured"]) == (3, 3, 1, 1, 1)
    assert row["not_heard_nodes"] == ["loa-02"]
    assert (report["heard"], report["not_heard"]) == (1, 1)

    monthly = api.get(f"/api/v1/reports/monthly?month={aired['month']}").json
    assert (monthly["played"], monthly["heard"], monthly["not_heard"], monthly["unmeasured"]) == (3, 1, 1, 1)
    assert monthly["heard_rate"] == 50.0  # of the two plays whose audibility is known
    assert monthly["success_rate"] == 100.0  # played is not heard
    r = api.get(f"/api/v1/reports/monthly.csv?month={aired['month']}")
    header, values = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert header[header.index("played") + 1] == "heard"  # next to played
    assert values[header.index("heard")] == "1" and values[header.index("not_heard")] == "1"

    province = api.get(f"/api/v1/reports/province?month={aired['month']}").json
    assert (province["total"]["played"], province["total"]["heard"], province["total"]["not_heard"]) == (3, 1, 1)


def test_the_ward_is_told_once_of_loudspeakers_that_played_without_a_sound(client, service, aired):
    with service.db.session() as s:
        names = {u.id: u.username for u in s.query(User)}
        told = [(names[n.user_id], n.params) for n in s.query(Notification).filter_by(kind=NOT_HEARD)]
    assert {who for who, _ in told} >= {"canbo", "lanhdao"}
    assert all(p["nodes"] == "loa-02" and p["count"] == 1 and p["title"] == "Lịch tiêm chủng" for _, p in told)
    # the node resends the event after a reconnect (a new seq): nobody is told twice
    aired["play"]("loa-02", output_lufs=-70.0)
    with service.db.session() as s:
        assert s.query(Notification).filter_by(kind=NOT_HEARD).count() == len(told)
    login(client, "canbo", PW)
    page = client.get("/notifications").data.decode()
    assert "phát nhưng không nghe thấy ở 1 cụm loa: loa-02" in page


def test_the_pages_say_played_but_not_heard(client, aired):
    login(client, "canbo", PW)
    officer = client
    page = officer.get("/plays").data.decode()
    assert "Phát nhưng không nghe thấy" in page and 'data-heard="no"' in page and 'data-heard="yes"' in page
    assert "1 lượt phát nhưng không nghe thấy" in page
    assert "LUFS" not in page.split("<main", 1)[-1].split("</table>")[0].split("<table", 1)[-1]  # officers: words
    only = officer.get("/plays?heard=no").data.decode()
    assert only.count('data-heard="no"') == 1 and 'data-heard="yes"' not in only
    node = officer.get("/nodes/loa-02").data.decode()
    assert "Phát nhưng không nghe thấy" in node
    report = officer.get(f"/reports?from={aired['day']}&to={aired['day']}&month={aired['month']}").data.decode()
    assert "1 không nghe thấy" in report and "Lượt phát nghe thấy" in report


# ------------------------------------------------------------------------------ end to end, the real sim CLI


@pytest.mark.parametrize("mode", [[], ["--scale"]], ids=["protocol-sim", "scale-sim"])
def test_sim_output_fault_shows_in_plays_and_reports(panel_stack, tmp_path, mode):
    """``loaphuong sim [--scale] --output-fault amp_dead:0.5`` against the panel on a real broker: the nodes
    register through the API, play a scheduled bulletin on time, and the faulty half is "played but not heard"."""
    stack = panel_stack
    stack.api("POST", "/zones", 201, json={"code": "to-7", "name": "Tổ dân phố 7"})
    token = stack.http.headers["Authorization"].split()[1]
    log = (tmp_path / "sim.log").open("w")
    sim = subprocess.Popen(
        [sys.executable, "-m", "broadcaster.cli", "sim", *mode, "--nodes", "4", "--api-token", token, "--zone", "to-7",
         "--id-prefix", "am", "--panel", stack.base, "--broker", stack.broker.url, "--data", str(tmp_path / "sim"),
         "--output-fault", "amp_dead:0.5", "--summary-every", "1", "--duration", "90"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len([n for n in stack.api("GET", "/nodes", 200) if n["state"] == "online"]) == 4, 30,
                 "4 simulated nodes online")
        ann = stack.api("POST", "/announcements", 201, json={"title": "Thu gom rác", "approve": True,
                                                             "text": "Sáng mai thu gom rác sớm."})
        start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        sched = stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-7"],
                                                           "start_at": proto.format_ts(start)})
        rows = wait_for(lambda: (lambda r: r if len(r) == 4 and all(x["result"] == "played" for x in r) else None)(
            stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)),
            start.timestamp() - time.time() + ann["media"]["duration_ms"] / 1000 + 15, "4 plays reported")
    finally:
        sim.terminate()
        sim.wait(10)
        log.close()
    by_node = {r["node_id"]: r for r in rows}
    assert {n: r["heard"] for n, r in by_node.items()} == {"am-001": False, "am-002": False,
                                                           "am-003": True, "am-004": True}
    assert by_node["am-001"]["output_lufs"] == SILENCE_LUFS and by_node["am-003"]["output_lufs"] > -25
    assert all(abs(r["offset_ms"]) < 500 for r in rows)  # it played, on time: only the measurement tells
    monthly = stack.api("GET", f"/reports/monthly?month={start:%Y-%m}", 200)
    assert (monthly["heard"], monthly["not_heard"]) == (2, 2)
    page = stack.web_login().get(f"{stack.base}/plays?schedule={sched['id']}", timeout=10).text
    assert page.count('data-heard="no"') == 2 and "Phát nhưng không nghe thấy" in page


# ---------------------------------------------------------------------------------------------- in Chromium


def test_played_but_not_heard_on_a_phone(live, phone):
    """The officer's proof-of-play page on a phone: the silent loudspeaker stands out in words, and nothing else
    is wrong with the page (axe, sideways scroll, English, raw codes)."""
    ann = live.api("canbo", "POST", "/announcements", 201,
                   json={"title": "Phòng chống sốt xuất huyết", "text": "Bà con dọn dẹp nơi nước đọng."})
    live.api("lanhdao", "POST", f"/announcements/{ann['id']}/approve", 200)
    start = datetime.now(UTC) + timedelta(minutes=2)
    sched = live.api("canbo", "POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-1"],
                                                                "start_at": proto.format_ts(start)})
    service = live.service
    item = next(it for it in service.get_node("loa-01").plan_payload["items"] if it["schedule_id"] == str(sched["id"]))
    for seq, (name, extra) in enumerate((("playback_started", {}), ("playback_finished", {"output_lufs": -70.0})), 1):
        body = {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": seq, "event": name, "at": item["start"],
                "item_id": item["id"], "schedule_id": str(sched["id"]), "scheduled_start": item["start"],
                "actual_start": item["start"], "offset_ms": 12, **extra}
        service.ingest(service.topics.events("loa-01"), json.dumps(body).encode())
    browser_login(phone, live, "canbo")
    phone.goto(live.url("/plays"))
    cell = phone.locator('td[data-heard="no"]')
    assert cell.inner_text().strip() == "Phát nhưng không nghe thấy" and cell.is_visible()
    assert "1 lượt phát nhưng không nghe thấy" in phone.inner_text("main")
    assert page_problems(phone) == []
    phone.get_by_role("link", name="Chỉ xem các lượt đó").click()
    phone.wait_for_url("**/plays?heard=no")
    assert phone.locator('td[data-heard="no"]').count() == 1
    assert page_problems(phone) == []
