"""Sequenced zones (issue 17 §6): a schedule may play zone after zone — where neighbouring clusters overlap and
would echo — in the order and with the gap the officer chose, shown in the timeline and calendar.

The API and plans on the service; then end to end: simulated nodes on a real broker play each zone at its turn.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

from stack import wait_for
from test_panel import csrf, login
from test_versions import plan_items, recording, tokens

from devices.protocol import format_ts, parse_ts

TEXT = "Ủy ban nhân dân phường thông báo: sáng mai cắt điện từ 7 giờ đến 9 giờ để sửa đường dây."


def _setup(api):
    for code in ("to-1", "to-2", "to-3"):
        api.post("/api/v1/zones", json={"code": code, "name": f"Tổ dân phố {code[-1]}"})
    for node_id, zone in (("loa-01", "to-1"), ("loa-02", "to-2"), ("loa-03", "to-3")):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})
    ann = api.post("/api/v1/announcements", json={"title": "Cắt điện", "text": TEXT, "approve": True}).json
    return ann


def _item_start(service, node_id: str, schedule_id: int) -> datetime:
    (item,) = [i for i in service.get_node(node_id).plan_payload["items"] if i["schedule_id"] == str(schedule_id)]
    return parse_ts(item["start"])


def test_each_zone_plays_at_its_turn_in_the_chosen_order(api, service):
    ann = _setup(api)
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-1", "to-2", "to-3"],
                                            "start_at": format_ts(start),
                                            "sequence": {"zones": ["to-3", "to-1", "to-2"], "gap_s": 5}})
    assert r.status_code == 201, r.json
    assert r.json["sequence"] == {"zones": ["to-3", "to-1", "to-2"], "gap_s": 5}
    sid, duration = r.json["id"], timedelta(milliseconds=ann["media"]["duration_ms"])
    step = duration + timedelta(seconds=5)
    assert _item_start(service, "loa-03", sid) == start
    assert _item_start(service, "loa-01", sid) == start + step
    assert _item_start(service, "loa-02", sid) == start + 2 * step
    # the dry run (timeline) of each zone says the same
    day = service.local(start).date().isoformat()
    for zone, turn in (("to-3", 0), ("to-2", 2)):
        tl = api.get(f"/api/v1/timeline?zone={zone}&date={day}").json
        entries = tl["entries"]
        mine = [e for e in entries if e.get("schedule_id") == sid]
        assert mine and parse_ts(mine[0]["start"]) == start + turn * step, mine
        assert mine[0]["sequence"] == {"turn": turn + 1, "of": 3, "gap_s": 5, "zones": ["to-3", "to-1", "to-2"]}
    assert api.get(f"/api/v1/schedules/{sid}").json["sequence"]["zones"] == ["to-3", "to-1", "to-2"]


def test_a_sequence_must_name_the_schedules_zones_once_and_nothing_is_kept_otherwise(api, service):
    ann = _setup(api)
    start = format_ts(datetime.now(UTC) + timedelta(hours=2))
    for seq, code in (({"zones": ["to-1"], "gap_s": 0}, "invalid_sequence"),  # to-2 missing
                      ({"zones": ["to-1", "to-2", "to-2"]}, "invalid_sequence"),
                      ({"zones": ["to-1", "to-3"]}, "invalid_sequence"),  # not a zone of the schedule
                      ({"zones": ["to-1", "to-2"], "gap_s": -1}, "invalid_field"),
                      ({"zones": ["to-1", "to-2"], "gap_s": 3601}, "invalid_field"),
                      ({"zones": ["to-1", "khong-co"]}, "unknown_zone")):
        r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-1", "to-2"],
                                                "start_at": start, "sequence": seq})
        assert r.status_code in (400, 404) and r.json["error"]["code"] == code, (seq, r.json)
    assert api.get("/api/v1/schedules").json == []


def test_the_calendar_and_the_schedules_list_show_the_order(client, api, service):
    ann = _setup(api)
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-1", "to-2"],
                                        "start_at": format_ts(start), "sequence": {"zones": ["to-2", "to-1"],
                                                                                   "gap_s": 10}})
    login(client)
    page = client.get("/schedules").data.decode()
    assert "Lần lượt: Tổ dân phố 2 → Tổ dân phố 1, cách nhau 10 giây" in page
    day = service.local(start).date().isoformat()
    cal = client.get(f"/calendar?view=week&date={day}").data.decode()
    assert "lượt 1/2" in cal and "lượt 2/2" in cal


def test_simulated_nodes_play_zone_after_zone(panel_stack):
    stack = panel_stack.deploy({"to-a": ["loa-a1", "loa-a2"], "to-b": ["loa-b1"]})
    ann = stack.api("POST", "/announcements", 201, json={"title": "Cắt điện", "text": TEXT, "approve": True})
    start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    sched = stack.api("POST", "/schedules", 201, json={
        "announcement_id": ann["id"], "zones": ["to-a", "to-b"], "start_at": format_ts(start),
        "sequence": {"zones": ["to-b", "to-a"], "gap_s": 1}})
    second = start + timedelta(milliseconds=ann["media"]["duration_ms"]) + timedelta(seconds=1)
    until = second.timestamp() - time.time() + ann["media"]["duration_ms"] / 1000 + 10
    plays = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(
        [x for x in stack.fleet.plays() if x["result"] == "finished"]), until, "three plays")
    by_node = {p["node_id"]: parse_ts(p["actual_start"]) for p in plays}
    assert abs((by_node["loa-b1"] - start).total_seconds()) < 0.2  # to-b first
    for node in ("loa-a1", "loa-a2"):  # to-a after to-b has finished, and the gap
        assert abs((by_node[node] - second).total_seconds()) < 0.2, (node, by_node[node], second)
    rows = wait_for(lambda: (lambda r: r if len(r) == 3 and all(x["result"] == "played" for x in r) else None)(
        stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)), 10, "proof of play of both turns")
    assert len(rows) == 3


def test_the_officers_form_sets_the_order_and_the_gap(client, api, service):
    ann = _setup(api)
    login(client)
    day = (service.local(datetime.now(UTC)) + timedelta(days=1)).date()
    token = csrf(client, "/schedules/new")
    form = {"csrf_token": token, "announcement_id": str(ann["id"]), "zones": ["to-1", "to-2", "to-3"],
            "kind": "once", "start_date": day.isoformat(), "times": "07:00", "priority": "normal", "repeat": "1",
            "sequence": "1", "sequence_order": "tổ dân phố 3, to-1, Tổ dân phố 2", "sequence_gap": "8"}
    r = client.post("/schedules/new", data=form)
    assert r.status_code == 302, r.text[:2000]
    (sched,) = api.get("/api/v1/schedules").json
    assert sched["sequence"] == {"zones": ["to-3", "to-1", "to-2"], "gap_s": 8}
    # an order that leaves a chosen zone out is refused in words, and the form keeps what was typed
    r = client.post("/schedules/new", data={**form, "sequence_order": "to-1, to-2", "conflict": "append"})
    assert r.status_code == 400 and "mỗi khu vực đã chọn đúng một lần" in r.text
    assert 'value="to-1, to-2"' in r.text


def test_turns_wait_for_the_language_versions_and_clashes_are_per_zone(client, api, service, tmp_path):
    """Tổ 1 plays Vietnamese then Khmer: Tổ 2 waits for both and the gap (no echo). An existing airing in Tổ 2 at
    the sequence's start is no clash — Tổ 2's turn comes later. A sequence longer than the plans' look-back is
    refused."""
    people = tokens(client, service)
    api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1", "languages": ["vi", "km"]})
    api.post("/api/v1/zones", json={"code": "to-2", "name": "Tổ 2"})
    api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-1"})
    api.post("/api/v1/nodes", json={"node_id": "loa-02", "zone": "to-2"})
    ann = api.post("/api/v1/announcements", json={"title": "Cắt điện", "text": TEXT, "approve": True}).json
    url = f"/api/v1/announcements/{ann['id']}/versions"
    r = client.post(url, headers=people["canbo"], data={"language": "km", "file": (
        io.BytesIO(recording(tmp_path, 6.0)), "km.mp3")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    assert client.post(f"{url}/km/approve", headers=people["lanhdao"]).status_code == 200
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    assert api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-2"],
                                               "start_at": format_ts(start)}).status_code == 201
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-1", "to-2"],
                                            "start_at": format_ts(start),
                                            "sequence": {"zones": ["to-1", "to-2"], "gap_s": 600}})
    assert r.status_code == 201, r.json  # Tổ 2's turn is 10 minutes later: no clash with its 'start' airing
    sid = r.json["id"]
    first = plan_items(service, "loa-01", sid)
    assert [i["title"] for i in first] == ["Cắt điện", "Cắt điện · Tiếng Khmer"]
    end_first = parse_ts(first[-1]["start"]) + timedelta(milliseconds=first[-1]["media"]["duration_ms"])
    (second,) = plan_items(service, "loa-02", sid)
    assert parse_ts(second["start"]) == end_first + timedelta(seconds=600)
    codes = [f"thon-{i}" for i in range(1, 9)]
    for code in codes:
        api.post("/api/v1/zones", json={"code": code, "name": code})
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": codes,
                                            "start_at": format_ts(start + timedelta(days=1)),
                                            "sequence": {"zones": codes, "gap_s": 3600}})
    assert r.status_code == 400 and r.json["error"]["code"] == "sequence_too_long", r.json
