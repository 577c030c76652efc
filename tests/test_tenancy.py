"""A province of wards through the API, as a hidden check would: two wards, each ward's people see and touch
only their own ward (another ward's object is 404 and a target in it creates nothing); province roles see and
filter both, and send a province alert that two province-level people release to the wards it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from people import PASSWORD, As
from sqlalchemy import func, select
from test_panel import csrf, login

from broadcaster.models import Alert, AuditEntry, CommandRecord, Node, Schedule, Zone
from devices import protocol as proto

VN = ZoneInfo("Asia/Ho_Chi_Minh")
TEXT = "Ủy ban nhân dân phường thông báo lịch tiêm phòng cho trẻ em tại trạm y tế phường."
STORM = "Bão số 3 sắp đổ bộ. Đề nghị bà con khẩn trương di chuyển tới nơi an toàn."
pytestmark = pytest.mark.both_backends  # tenancy is queries: every one on PostgreSQL too


def tomorrow_at(hh: int) -> str:
    day = (datetime.now(UTC).astimezone(VN) + timedelta(days=1)).date()
    return f"{day.isoformat()}T{hh:02d}:00:00"


def count(service, model, *where) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def province(client, service):
    """Two wards built through the API by the province admin, each with its admin, leader, officer, a zone and
    two loudspeakers; two province leaders."""
    service.create_user("tinh", PASSWORD, role="province_admin")
    pa = As(client, "tinh")
    first = pa.get("/api/v1/wards").json
    assert len(first) == 1  # the default ward of a one-ward installation
    a_code = first[0]["code"]
    r = pa.post("/api/v1/wards", json={"code": "phuong-b", "name": "Phường B"})
    assert r.status_code == 201, r.json
    users = {"province_admin": pa}
    for ward, suffix in ((a_code, "a"), ("phuong-b", "b")):
        for role in ("admin", "leader", "leader2", "officer"):
            name = f"{role}-{suffix}"
            r = pa.post("/api/v1/users", json={"username": name, "password": PASSWORD,
                                               "role": role.rstrip("2"), "ward": ward})
            assert r.status_code == 201, r.json
            users[name] = As(client, name)
        assert pa.post("/api/v1/zones", json={"code": f"to-{suffix}", "name": f"Tổ {suffix}",
                                              "ward": ward}).status_code == 201
        for n in (1, 2):
            r = users[f"admin-{suffix}"].post("/api/v1/nodes", json={"node_id": f"loa-{suffix}{n}",
                                                                      "zone": f"to-{suffix}"})
            assert r.status_code == 201, r.json
    for name in ("tinh-ld", "tinh-ld2"):
        r = pa.post("/api/v1/users", json={"username": name, "password": PASSWORD, "role": "province_leader"})
        assert r.status_code == 201, r.json
        users[name] = As(client, name)
    users["codes"] = (a_code, "phuong-b")
    service.publisher.messages.clear()
    return users


def test_ward_users_see_only_their_ward_and_province_roles_see_and_filter_both(province):
    a, b, pa = province["admin-a"], province["officer-b"], province["province_admin"]
    a_code, b_code = province["codes"]
    assert [z["code"] for z in a.get("/api/v1/zones").json] == ["to-a"]
    assert [z["code"] for z in b.get("/api/v1/zones").json] == ["to-b"]
    assert [n["node_id"] for n in a.get("/api/v1/nodes").json] == ["loa-a1", "loa-a2"]
    assert [w["code"] for w in b.get("/api/v1/wards").json] == [b_code]
    assert sorted(n["node_id"] for n in pa.get("/api/v1/nodes").json) == ["loa-a1", "loa-a2", "loa-b1", "loa-b2"]
    assert [n["node_id"] for n in pa.get(f"/api/v1/nodes?ward={b_code}").json] == ["loa-b1", "loa-b2"]
    assert [z["code"] for z in pa.get(f"/api/v1/zones?ward={a_code}").json] == ["to-a"]
    assert pa.get("/api/v1/nodes?ward=khong-co").status_code == 404
    assert {u["username"] for u in a.get("/api/v1/users").json} >= {"admin-a", "officer-a"}
    assert not {u["username"] for u in a.get("/api/v1/users").json} & {"admin-b", "tinh"}
    # the audit log of a ward is its own
    actions = {(e["user"], e["action"]) for e in a.get("/api/v1/audit").json}
    assert ("admin-a", "node.register") in actions and ("admin-b", "node.register") not in actions


def test_another_wards_objects_are_404_and_targets_in_it_create_nothing(province, service):
    a_admin, a_leader, b_leader = province["admin-a"], province["leader-a"], province["leader-b"]
    ann_b = b_leader.post("/api/v1/announcements", json={"title": "B", "text": TEXT, "approve": True}).json
    ann_a = a_leader.post("/api/v1/announcements", json={"title": "A", "text": TEXT, "approve": True}).json
    sched_b = b_leader.post("/api/v1/schedules", json={"announcement_id": ann_b["id"], "zones": ["to-b"],
                                                       "start_at": tomorrow_at(8)}).json
    before = {m: count(service, m) for m in (Schedule, CommandRecord, Alert, Zone, Node)}

    # reading another ward's objects by id
    for url in (f"/api/v1/announcements/{ann_b['id']}", f"/api/v1/schedules/{sched_b['id']}",
                "/api/v1/nodes/loa-b1", "/api/v1/fleet/nodes/loa-b1", "/api/v1/nodes/loa-b1/commands",
                f"/api/v1/announcements/{ann_b['id']}/audio", "/api/v1/timeline?zone=to-b",
                "/api/v1/timeline?node=loa-b1"):
        r = a_admin.get(url)
        assert r.status_code == 404, (url, r.status_code)
    assert a_admin.get("/api/v1/plays?node_id=loa-b1").json == []
    assert [s["id"] for s in a_admin.get("/api/v1/schedules").json] == []
    assert [x["id"] for x in a_admin.get("/api/v1/announcements").json] == [ann_a["id"]]

    # changing them
    for method, url, body in (
            ("post", f"/api/v1/announcements/{ann_b['id']}/approve", None),
            ("post", f"/api/v1/announcements/{ann_b['id']}/reject", {"comment": "x"}),
            ("put", f"/api/v1/announcements/{ann_b['id']}", {"title": "x", "text": TEXT}),
            ("put", f"/api/v1/announcements/{ann_b['id']}/audio-options", {"repeat": 2}),
            ("post", f"/api/v1/announcements/{ann_b['id']}/render", None),
            ("post", f"/api/v1/schedules/{sched_b['id']}/cancel", None),
            ("post", "/api/v1/nodes/loa-b1/token", None),
            ("delete", "/api/v1/nodes/loa-b1", None),
            ("post", "/api/v1/nodes/loa-b1/commands", {"name": "ping"}),
    ):
        r = getattr(a_admin, method)(url, **({"json": body} if body is not None else {}))
        assert r.status_code == 404, (method, url, r.status_code, r.json)
    assert b_leader.get(f"/api/v1/schedules/{sched_b['id']}").json["status"] == "active"

    # targeting them
    r = a_leader.post("/api/v1/schedules", json={"announcement_id": ann_a["id"], "zones": ["to-b"],
                                                 "start_at": tomorrow_at(9)})
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_zone"
    r = a_leader.post("/api/v1/schedules", json={"announcement_id": ann_b["id"], "zones": ["to-a"],
                                                 "start_at": tomorrow_at(9)})
    assert r.status_code == 404
    for body in ({"name": "stop", "zone": "to-b"}, {"name": "ping", "node_ids": ["loa-b1"]},
                 {"name": "set_volume", "node_ids": ["loa-a1", "loa-b1"], "args": {"volume": 10}}):
        assert a_leader.post("/api/v1/fleet/commands", json=body).status_code == 404, body
    r = a_leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-b"]})
    assert r.status_code == 404
    r = a_admin.post("/api/v1/nodes", json={"node_id": "loa-x", "zone": "to-b"})
    assert r.status_code == 404
    r = a_admin.post("/api/v1/zones", json={"code": "to-x", "name": "X", "ward": province["codes"][1]})
    assert r.status_code == 404
    r = a_admin.post("/api/v1/wards", json={"code": "phuong-c", "name": "C"})
    assert r.status_code == 403
    assert {m: count(service, m) for m in before} == before
    assert [t for t, *_ in service.publisher.messages if t.endswith("/cmd")] == []
    # node ids are unique across the province
    assert a_admin.post("/api/v1/nodes", json={"node_id": "loa-b1", "zone": "to-a"}).status_code == 409


def test_a_ward_alert_reaches_only_its_ward_and_is_seen_only_there(province, service):
    a_leader, a_leader2, b_leader = province["leader-a"], province["leader2-a"], province["leader-b"]
    alert = a_leader.post("/api/v1/emergencies", json={"title": "Cháy", "text": STORM, "all_zones": True}).json
    assert alert["status"] == "pending_release" and sorted(alert["can_confirm"]) == [
        "admin", "admin-a", "leader2-a", "tinh", "tinh-ld", "tinh-ld2"]  # "admin": the fixture's ward admin
    assert b_leader.post(f"/api/v1/emergencies/{alert['id']}/release").status_code == 404
    r = a_leader2.post(f"/api/v1/emergencies/{alert['id']}/release")
    assert r.status_code == 200, r.json
    sent = sorted(proto.decode_json(p)["node_id"] for t, p, *_ in service.publisher.messages if t.endswith("/cmd"))
    assert sent == ["loa-a1", "loa-a2"]  # "all" is every loudspeaker of the ward, not of the province
    assert [x["id"] for x in b_leader.get("/api/v1/emergencies").json] == []
    assert b_leader.get(f"/api/v1/emergencies/{alert['id']}").status_code == 404


def test_a_province_alert_is_released_by_two_province_people_and_reaches_the_wards_it_names(province, service):
    a_code, b_code = province["codes"]
    ld, ld2, a_leader = province["tinh-ld"], province["tinh-ld2"], province["leader-a"]
    # a ward leader cannot send to several wards
    r = a_leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "wards": [a_code, b_code]})
    assert r.status_code == 403 and count(service, Alert) == 0
    alert = ld.post("/api/v1/emergencies", json={"title": "Bão số 3", "text": STORM, "wards": [a_code, b_code]})
    assert alert.status_code == 201, alert.json
    alert = alert.json
    assert alert["status"] == "pending_release" and sorted(alert["wards"]) == sorted([a_code, b_code])
    assert sorted(alert["can_confirm"]) == ["tinh", "tinh-ld2"]  # province-level people only
    # each ward sees it, but a ward person can neither release nor cancel it
    for who in ("leader-a", "officer-b"):
        assert [x["id"] for x in province[who].get("/api/v1/emergencies").json] == [alert["id"]]
    assert a_leader.post(f"/api/v1/emergencies/{alert['id']}/release").status_code == 404
    assert ld.post(f"/api/v1/emergencies/{alert['id']}/release").status_code == 409  # same person
    r = ld2.post(f"/api/v1/emergencies/{alert['id']}/release")
    assert r.status_code == 200 and r.json["status"] == "released", r.json
    sent = sorted(proto.decode_json(p)["node_id"] for t, p, *_ in service.publisher.messages if t.endswith("/cmd"))
    assert sent == ["loa-a1", "loa-a2", "loa-b1", "loa-b2"]


def test_province_report_per_ward(province):
    pa, a_admin = province["province_admin"], province["admin-a"]
    month = datetime.now(UTC).astimezone(VN).strftime("%Y-%m")
    report = pa.get(f"/api/v1/reports/province?month={month}").json
    assert [r["ward"] for r in report["wards"]] == sorted(province["codes"])
    assert all(r["nodes"] == 2 and r["planned"] == r["played"] + r["missed"] for r in report["wards"])
    assert report["total"]["nodes"] == 4
    mine = a_admin.get(f"/api/v1/reports/province?month={month}").json
    assert [r["ward"] for r in mine["wards"]] == [province["codes"][0]]
    csv = pa.get(f"/api/v1/reports/province.csv?month={month}")
    assert csv.status_code == 200 and "ward,ward_name,airings,planned,played,missed" in csv.text


def test_province_roles_name_the_ward_of_what_they_create_when_there_are_several(province, service):
    pa = province["province_admin"]
    r = pa.post("/api/v1/zones", json={"code": "to-z", "name": "Tổ Z"})
    assert r.status_code == 409 and r.json["error"]["code"] == "ward_required"
    r = pa.post("/api/v1/announcements", json={"title": "T", "text": TEXT})
    assert r.status_code == 409 and r.json["error"]["code"] == "ward_required"
    r = pa.post("/api/v1/announcements", json={"title": "T", "text": TEXT, "ward": province["codes"][1]})
    assert r.status_code == 201
    assert [x["id"] for x in province["officer-b"].get("/api/v1/announcements").json] == [r.json["id"]]
    with service.db.session() as s:
        assert s.scalar(select(AuditEntry.ward_id).where(AuditEntry.action == "announcement.create")) is not None


def test_a_one_ward_installation_works_as_before(api, service):
    """No ward anywhere in the requests: the default ward takes everything, as before wards existed."""
    assert api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ 3", "ward": "Phường cũ"}).status_code == 201
    assert api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-3"}).status_code == 201
    ann = api.post("/api/v1/announcements", json={"title": "T", "text": TEXT, "approve": True}).json
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                            "start_at": tomorrow_at(8)})
    assert r.status_code == 201 and r.json["status"] == "active"
    assert [n["node_id"] for n in api.get("/api/v1/nodes").json] == ["loa-01"]
    assert len(api.get("/api/v1/wards").json) == 1


def test_the_province_panel_dashboard_picker_and_emergency_form(province, client):
    a_code, b_code = province["codes"]
    login(client, "tinh-ld", PASSWORD)
    page = client.get("/").text
    assert "Các phường/xã trong tỉnh" in page and "Phường B" in page
    assert "0/2" in page  # loudspeakers online per ward (none connected in this test)
    emergency = client.get("/emergency").text
    assert 'name="wards"' in emergency and f'value="{b_code}"' in emergency
    # the ward picker narrows every page to one ward
    client.get(f"/scope?ward={b_code}&next=/fleet")
    fleet_page = client.get("/fleet").text
    assert "loa-b1" in fleet_page and "loa-a1" not in fleet_page
    client.get("/scope?ward=&next=/")
    assert "loa-a1" in client.get("/fleet").text
    # a province alert from the panel waits for a second province person
    token = csrf(client, "/emergency")
    r = client.post("/emergency", data={"csrf_token": token, "mode": "live", "title": "Bão", "source": "text",
                                        "text": STORM, "wards": [a_code, b_code], "repeat": "1"})
    assert r.status_code == 302, r.text
    detail = client.get(r.headers["Location"]).text
    assert "Người có thể xác nhận: tinh, tinh-ld2." in detail or "tinh-ld2" in detail
    # a ward user sees no picker and no ward choice on the emergency page
    login(client, "leader-a", PASSWORD)
    assert 'name="wards"' not in client.get("/emergency").text
    assert "Các phường/xã trong tỉnh" not in client.get("/").text


def test_settings_shared_by_every_ward_are_the_provinces_once_there_are_several(province):
    a_admin, a_leader, pa = province["admin-a"], province["leader-a"], province["province_admin"]
    for who, method, url, body in (
            (a_leader, "post", "/api/v1/abbreviations", {"abbr": "UB", "expansion": "ủy ban"}),
            (a_leader, "put", "/api/v1/audio-settings", {"lead_in_ms": 900}),
            (a_admin, "post", "/api/v1/stream-sources", {"code": "vov1", "name": "VOV1", "url": "https://x/vov1"})):
        r = getattr(who, method)(url, json=body)
        assert r.status_code == 403 and r.json["error"]["code"] == "province_setting", (url, r.json)
    assert pa.post("/api/v1/stream-sources", json={"code": "vov1", "name": "VOV1",
                                                   "url": "https://x/vov1"}).status_code == 201
    # a ward's own settings stay its own: its quiet hours change nothing in the other ward
    a_code, b_code = province["codes"]
    r = a_leader.put("/api/v1/settings/quiet-hours", json={"quiet_hours": "21:00-06:00"})
    assert r.status_code == 200 and r.json["ward"] == a_code
    assert province["leader-b"].get("/api/v1/settings/quiet-hours").json["quiet_hours"] is None
    assert a_leader.get(f"/api/v1/settings/quiet-hours?ward={b_code}").status_code == 404


def test_a_wards_refusals_are_in_its_own_audit_log(province):
    officer_a = province["officer-a"]
    assert officer_a.post("/api/v1/fleet/commands", json={"name": "stop", "zone": "to-a"}).status_code == 403
    mine = [e for e in province["admin-a"].get("/api/v1/audit?action=policy.refused").json]
    assert [(e["user"], e["detail"]["action"]) for e in mine] == [("officer-a", "command.stop")]
    assert province["admin-b"].get("/api/v1/audit?action=policy.refused").json == []
