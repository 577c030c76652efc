"""The release policy (issue "one release policy"): every path that can make a loudspeaker sound or fall silent,
tried as an officer, as one leader and as an admin, through the API and the web forms, on a real database with
real rendered audio. Each refusal must leave nothing behind and be audited; each legitimate flow must work.

The MQTT side of the same rules (nodes really play only what two people released) is in
tests/test_release_policy_e2e.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from people import PASSWORD, As
from sqlalchemy import func, select
from test_panel import csrf, login

from broadcaster import emergency, policy
from broadcaster.models import Alert, Announcement, AuditEntry, CommandRecord, Schedule, StreamSource, User
from devices import protocol as proto

ROOT = Path(__file__).resolve().parents[1]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
TEXT = "Ủy ban nhân dân phường thông báo lịch tiêm phòng cho trẻ em tại trạm y tế phường."
STORM = "Bão số 3 sắp đổ bộ. Đề nghị bà con khẩn trương di chuyển tới nơi an toàn."
VOV1 = "https://stream.vov.vn/vov1.mp3"


@pytest.fixture
def ward(api, client, service):
    for zone in ("to-3", "to-5"):
        assert api.post("/api/v1/zones", json={"code": zone, "name": f"Tổ {zone}"}).status_code == 201
    for node_id, zone in (("loa-01", "to-3"), ("loa-02", "to-3"), ("loa-03", "to-5")):
        assert api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone}).status_code == 201
    for name, role in (("can-bo", "officer"), ("lanh-dao", "leader"), ("lanh-dao-2", "leader")):
        service.create_user(name, PASSWORD, role=role)
    users = {"admin": api, "officer": As(client, "can-bo"), "leader": As(client, "lanh-dao"),
             "leader2": As(client, "lanh-dao-2")}
    service.publisher.messages.clear()
    return users


def tomorrow_at(hh: int, mm: int = 0) -> str:
    day = (datetime.now(UTC).astimezone(VN) + timedelta(days=1)).date()
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:00"


def soon(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def announce(who, title="Tiêm phòng", approve=False, text=TEXT) -> dict:
    r = who.post("/api/v1/announcements", json={"title": title, "text": text, "approve": approve})
    assert r.status_code == 201 and r.json["status"] == "ready", r.json
    return r.json


def plan_items(service, node_id="loa-01") -> list[dict]:
    return service.get_node(node_id).plan_payload["items"]


def published_commands(service) -> list[dict]:
    return [proto.decode_json(p) for t, p, *_ in service.publisher.messages if t.endswith("/cmd")]


def count(service, model, *where) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def refusals(service) -> list[AuditEntry]:
    with service.db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "policy.refused")
                              .order_by(AuditEntry.id)))


# ------------------------------------------------------------------------------------------- the table
def test_the_table_in_architecture_md_is_the_policy_table():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- policy-table:start -->\n(.*?)\n<!-- policy-table:end -->", doc, re.S)
    assert m, "docs/architecture.md lost its policy table"
    assert m.group(1) == policy.table_markdown(), "regenerate the table: python -c 'from broadcaster import " \
                                                  "policy; print(policy.table_markdown())'"


def test_every_role_has_a_rule_for_every_action_and_nobody_is_denied_by_accident():
    for key, row in policy.TABLE.items():
        assert set(row) == set(policy.ROLES), key
    assert policy.decide(None, policy.Action.ANNOUNCEMENT_WRITE).rule is policy.Rule.DENY
    # roles are ordered within a ward (officer < leader < admin) and within the province (leader < admin); a
    # province role may do what the ward role of its rank may, and the province admin anything anyone may
    for key, row in policy.TABLE.items():
        for chain in (("officer", "leader", "admin"), ("province_leader", "province_admin"),
                      ("leader", "province_leader"), ("admin", "province_admin")):
            allowed = [row[r] is not policy.Rule.DENY for r in chain]
            assert allowed == sorted(allowed), f"{key}: {chain} — a higher role may do less than a lower one"


# ------------------------------------------------------------------------------------ R1 stream sources
def test_streams_only_from_the_admins_list(ward, service):
    officer, admin = ward["officer"], ward["admin"]
    body = {"zones": ["to-3"], "start_at": tomorrow_at(9),
            "items": [{"kind": "stream", "url": "http://evil.example/x.mp3", "duration_ms": 60_000}]}
    r = officer.post("/api/v1/schedules", json=body)
    assert r.status_code == 403 and r.json["error"]["code"] == "stream_source_required"
    assert count(service, Schedule) == 0 and plan_items(service) == []
    (refused,) = refusals(service)
    assert refused.detail["action"] == "schedule.create" and refused.detail["code"] == "stream_source_required"
    assert refused.detail["role"] == "officer"

    # only an admin keeps the list
    r = officer.post("/api/v1/stream-sources", json={"code": "vov1", "name": "VOV1", "url": VOV1})
    assert r.status_code == 403 and count(service, StreamSource) == 0
    r = admin.post("/api/v1/stream-sources", json={"code": "vov1", "name": "VOV1", "url": VOV1})
    assert r.status_code == 201
    assert [s["code"] for s in officer.get("/api/v1/stream-sources").json] == ["vov1"]

    body["items"] = [{"kind": "stream", "source": "vov1", "duration_ms": 60_000}]
    sched = officer.post("/api/v1/schedules", json=body)
    assert sched.status_code == 201 and sched.json["status"] == "active", sched.json
    assert [i["stream"]["url"] for i in plan_items(service)] == [VOV1]

    # removing the source takes it off the air everywhere at once; the schedule then waits
    assert officer.delete("/api/v1/stream-sources/vov1").status_code == 403
    assert admin.delete("/api/v1/stream-sources/vov1").status_code == 204
    assert plan_items(service) == []
    assert officer.get(f"/api/v1/schedules/{sched.json['id']}").json["status"] == "awaiting_approval"
    r = officer.post("/api/v1/schedules", json=body)
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_stream_source"


# ------------------------------------------------------------------------------- R2 emergency priority
@pytest.mark.parametrize("who", ["officer", "leader", "admin"])
def test_no_schedule_and_no_command_with_emergency_priority(ward, service, who):
    user = ward[who]
    ann = announce(ward["leader"], approve=True)
    r = user.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3", "to-5"],
                                             "priority": "emergency", "start_at": tomorrow_at(3, 15)})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    r = user.post("/api/v1/fleet/commands", json={"name": "play_now", "ward": "", "zone": "to-3",
                                                  "args": {"announcement_id": ann["id"], "priority": "emergency"}})
    assert r.status_code == 403
    assert count(service, Schedule) == 0 and count(service, CommandRecord) == 0
    assert published_commands(service) == [] and plan_items(service) == []
    assert {e.detail["action"] for e in refusals(service)} >= {"schedule.emergency", "command.emergency"}


# ------------------------------------------------------------------------------------ R3 command scope
def test_commands_by_scope(ward, service):
    officer, leader = ward["officer"], ward["leader"]
    ann = announce(leader, approve=True)

    def fleet(user, name, **kw):
        return user.post("/api/v1/fleet/commands", json={"name": name, **kw})

    # an officer maintains one node
    assert fleet(officer, "set_volume", node_ids=["loa-01"], args={"volume": 40}).status_code == 202
    assert fleet(officer, "reboot", node_ids=["loa-01"]).status_code == 202
    assert fleet(officer, "ping", node_ids=["loa-02"]).status_code == 202
    assert officer.post("/api/v1/nodes/loa-01/commands", json={"name": "resync"}).status_code == 202
    sent = count(service, CommandRecord)
    # ...but cannot play, stop or silence anything, nor touch a zone or the ward
    for name, kw in (("set_volume", {"zone": "to-3", "args": {"volume": 0}}),
                     ("set_volume", {"node_ids": ["loa-01", "loa-02"], "args": {"volume": 0}}),
                     ("stop", {"zone": "to-3"}), ("stop", {"node_ids": ["loa-01"]}),
                     ("play_now", {"node_ids": ["loa-01"], "args": {"announcement_id": ann["id"]}}),
                     ("reboot", {"zone": "to-5"})):
        r = fleet(officer, name, **kw)
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden", (name, kw, r.json)
    r = officer.post("/api/v1/nodes/loa-01/commands", json={"name": "stop"})
    assert r.status_code == 403
    assert count(service, CommandRecord) == sent
    # a leader may
    assert fleet(leader, "stop", zone="to-3").status_code == 202
    r = fleet(leader, "play_now", zone="to-5", args={"announcement_id": ann["id"]})
    assert r.status_code == 202 and r.json[0]["args"]["priority"] == "priority"


def test_the_loudspeakers_of_a_sounding_alert_are_stopped_only_by_its_cancel(ward, service):
    leader, leader2, admin = ward["leader"], ward["leader2"], ward["admin"]
    alert = leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-3"]}).json
    assert leader2.post(f"/api/v1/emergencies/{alert['id']}/release").json["status"] == "released"
    before = count(service, CommandRecord)
    for user in (leader, admin):
        for name, kw in (("stop", {"zone": "to-3"}), ("stop", {"node_ids": ["loa-01"]}),
                         ("set_volume", {"node_ids": ["loa-02"], "args": {"volume": 0}}),
                         ("reboot", {"node_ids": ["loa-01"]})):
            r = user.post("/api/v1/fleet/commands", json={"name": name, **kw})
            assert r.status_code == 409 and r.json["error"]["code"] == "emergency_live", (name, r.json)
    assert count(service, CommandRecord) == before
    # other zones are not held
    assert leader.post("/api/v1/fleet/commands", json={"name": "stop", "zone": "to-5"}).status_code == 202
    # the cancel (two people) stops it
    assert leader.post(f"/api/v1/emergencies/{alert['id']}/cancel").status_code == 202
    r = leader2.post(f"/api/v1/emergencies/{alert['id']}/cancel")
    assert r.status_code == 200 and r.json["status"] == "cancelled"


# --------------------------------------------------------------------------------- R4 two people
def test_two_people_release_and_cancel_by_default(ward, service):
    officer, leader, leader2, admin = ward["officer"], ward["leader"], ward["leader2"], ward["admin"]
    assert leader.get("/api/v1/emergency-settings").json["two_person"] is True  # on by default

    r = officer.post("/api/v1/emergencies", json={"title": "Cháy", "text": STORM, "all_zones": True})
    assert r.status_code == 403 and count(service, Alert) == 0

    for drill in (False, True):
        service.publisher.messages.clear()
        r = leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-3"],
                                                     "drill": drill})
        assert r.status_code == 201 and r.json["status"] == "pending_release"
        alert_id = r.json["id"]
        assert sorted(r.json["can_confirm"]) == ["admin", "lanh-dao-2"]
        assert published_commands(service) == []
        r = leader.post(f"/api/v1/emergencies/{alert_id}/release")
        assert r.status_code == 409 and r.json["error"]["code"] == "emergency_same_person"
        assert officer.post(f"/api/v1/emergencies/{alert_id}/release").status_code == 403
        assert published_commands(service) == []
        r = leader2.post(f"/api/v1/emergencies/{alert_id}/release")
        assert r.status_code == 200 and r.json["status"] == "released"
        assert sorted(c["node_id"] for c in published_commands(service)) == ["loa-01", "loa-02"]

        # cancelling takes two people too: the first asks, nothing is sent
        service.publisher.messages.clear()
        assert officer.post(f"/api/v1/emergencies/{alert_id}/cancel").status_code == 403
        r = leader2.post(f"/api/v1/emergencies/{alert_id}/cancel")
        assert r.status_code == 202 and r.json["cancel_pending"] and r.json["status"] == "released"
        assert r.json["cancel_requested_by"] == "lanh-dao-2" and sorted(r.json["can_confirm"]) == ["admin",
                                                                                                    "lanh-dao"]
        assert published_commands(service) == []
        r = leader2.post(f"/api/v1/emergencies/{alert_id}/cancel")
        assert r.status_code == 409 and r.json["error"]["code"] == "emergency_same_person"
        assert published_commands(service) == []
        r = admin.post(f"/api/v1/emergencies/{alert_id}/cancel")  # an admin can be the second person
        assert r.status_code == 200 and r.json["status"] == "cancelled" and r.json["cancel_alert_id"]
        assert {c["name"] for c in published_commands(service)} == {"stop", "play_now"}

    # switching it off: an admin only, audited, and then one leader releases alone
    assert leader.post("/api/v1/emergency-settings", json={"two_person": False}).status_code == 403
    assert admin.post("/api/v1/emergency-settings", json={"two_person": False}).json["two_person"] is False
    with service.db.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "emergency.settings"))
        assert entry.detail == {"two_person": False}
    r = leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-5"]})
    assert r.json["status"] == "released"
    assert leader.post(f"/api/v1/emergencies/{r.json['id']}/cancel").json["status"] == "cancelled"


def test_the_emergency_page_says_who_can_confirm(ward, client, service):
    login(client, "lanh-dao", PASSWORD)
    page = client.get("/emergency").text
    assert "Đang bật chế độ hai người xác nhận" in page
    assert "Người có thể xác nhận: admin, lanh-dao-2." in page
    login(client, "can-bo", PASSWORD)
    page = client.get("/emergency").text
    assert "Chỉ lãnh đạo hoặc quản trị viên mới được phát tin khẩn cấp" in page and 'id="em-form"' not in page


# ------------------------------------------------------------------------- R5 approval = the exact audio
def test_any_change_after_approval_takes_it_off_the_air_until_approved_again(ward, service, client):
    officer, leader = ward["officer"], ward["leader"]
    ann = announce(officer)
    assert ann["awaiting_approval"] is False and ann["playable"] is False
    assert officer.post(f"/api/v1/announcements/{ann['id']}/submit").json["awaiting_approval"] is True
    assert officer.post(f"/api/v1/announcements/{ann['id']}/approve").status_code == 403
    assert leader.post(f"/api/v1/announcements/{ann['id']}/approve").json["playable"] is True
    sched = officer.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                    "start_at": tomorrow_at(8)}).json
    assert sched["status"] == "active"
    approved_sha = ann["media"]["sha256"]
    assert [i["media"]["sha256"] for i in plan_items(service)] == [approved_sha]

    def back_for_approval(r):
        assert r.status_code == 200, r.json
        assert r.json["approval"] == "submitted" and r.json["awaiting_approval"] and not r.json["playable"]
        assert plan_items(service) == [] and plan_items(service, "loa-02") == []
        assert officer.get(f"/api/v1/schedules/{sched['id']}").json["status"] == "awaiting_approval"
        again = leader.post(f"/api/v1/announcements/{ann['id']}/approve")
        assert again.status_code == 200 and again.json["playable"]
        assert [i["media"]["sha256"] for i in plan_items(service)] == [again.json["media"]["sha256"]]
        return again.json

    # the voice (audio options)
    back_for_approval(officer.put(f"/api/v1/announcements/{ann['id']}/audio-options",
                                  json={"voice": "south", "speed": 1.1}))
    # the text
    back_for_approval(officer.put(f"/api/v1/announcements/{ann['id']}", json={"title": "Tiêm phòng",
                                                                              "text": TEXT + " Xin cảm ơn."}))
    # a re-render that gives other audio (the ward's lead-in changed meanwhile)
    assert leader.put("/api/v1/audio-settings", json={"lead_in_ms": 1200}).status_code == 200
    back_for_approval(officer.post(f"/api/v1/announcements/{ann['id']}/render"))
    voided = [e for e in service_audit(service) if e.action == "announcement.approval_voided"]
    assert [e.detail["why"] for e in voided] == ["audio options changed", "text changed",
                                                 "audio re-rendered differently"]


def service_audit(service) -> list[AuditEntry]:
    with service.db.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_a_file_that_is_not_the_approved_one_never_plays(ward, service):
    """Belt and braces: even if an announcement's media changed behind the workflow, the plan builder, play-now
    and emergencies use only the approved file."""
    leader = ward["leader"]
    ann = announce(leader, approve=True)
    leader.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                           "start_at": tomorrow_at(8)})
    other = announce(leader, "Khác", text=STORM)
    assert other["media"]["sha256"] != ann["media"]["sha256"]

    with service.db.session() as s:
        s.get(Announcement, ann["id"]).media_sha256 = other["media"]["sha256"]  # not what was approved
    service.publish_plans()
    assert plan_items(service) == []
    r = leader.post("/api/v1/fleet/commands", json={"name": "play_now", "zone": "to-3",
                                                    "args": {"announcement_id": ann["id"]}})
    assert r.status_code == 409 and r.json["error"]["code"] == "not_approved"
    r = leader.post("/api/v1/emergencies", json={"title": "x", "announcement_id": ann["id"], "zones": ["to-3"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "not_approved"
    assert published_commands(service) == [] and count(service, Alert) == 0


def test_audio_cannot_be_approved_before_it_is_rendered(ward, service):
    ann = announce(ward["officer"])
    with service.db.session() as s:
        row = s.get(Announcement, ann["id"])
        row.media_sha256, row.status = None, "draft"
    r = ward["leader"].post(f"/api/v1/announcements/{ann['id']}/approve")
    assert r.status_code == 409 and r.json["error"]["code"] == "announcement_not_ready"


# ------------------------------------------------------------------------ R6 scheduling unapproved content
def test_unapproved_schedule_waits_is_shown_as_such_and_plays_once_approved(ward, service, client):
    officer, leader = ward["officer"], ward["leader"]
    ann = announce(officer)
    sched = officer.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                    "start_at": soon(90)})
    assert sched.status_code == 201 and sched.json["status"] == "awaiting_approval", sched.json
    assert plan_items(service) == []
    listed = officer.get("/api/v1/schedules").json
    assert [s["status"] for s in listed] == ["awaiting_approval"]

    login(client, "can-bo", PASSWORD)
    dashboard = client.get("/").text
    assert "Đang chờ duyệt — sẽ không phát nếu chưa được duyệt" in dashboard and "Tiêm phòng" in dashboard
    assert "Chờ duyệt — sẽ không phát nếu chưa được duyệt" in client.get("/schedules").text

    assert leader.post(f"/api/v1/announcements/{ann['id']}/approve").status_code == 200
    assert officer.get(f"/api/v1/schedules/{sched.json['id']}").json["status"] == "active"
    assert [i["schedule_id"] for i in plan_items(service)] == [str(sched.json["id"])]
    assert "Đang chờ duyệt — sẽ không phát" not in client.get("/").text


# ------------------------------------------------------------------------------- R9 refusals, web forms
def test_a_refusal_in_the_web_panel_is_vietnamese_audited_and_sends_nothing(ward, client, service):
    ann = announce(ward["leader"], approve=True)
    login(client, "can-bo", PASSWORD)
    token = csrf(client, "/fleet")
    r = client.post("/fleet/commands", data={"csrf_token": token, "target": "zone", "zone": "to-3",
                                             "name": "play_now", "announcement_id": ann["id"],
                                             "next": "/fleet"}, follow_redirects=True)
    assert "Bạn không có quyền thực hiện thao tác này." in r.text
    assert count(service, CommandRecord) == 0 and published_commands(service) == []
    (refused,) = refusals(service)
    assert refused.detail["action"] == "command.play" and refused.detail["scope"] == "zone"
    with service.db.session() as s:

        assert s.get(User, refused.user_id).username == "can-bo"
    # the schedule form offers no emergency priority, and a forged one is refused
    page = client.get("/schedules/new").text
    assert 'value="emergency"' not in page
    r = client.post("/schedules/new", data={"csrf_token": token, "announcement_id": ann["id"], "zones": "to-3",
                                            "kind": "once", "start_date": tomorrow_at(7)[:10], "times": "07:00",
                                            "priority": "emergency"})
    assert r.status_code == 403 and "Bạn không có quyền thực hiện thao tác này." in r.text
    assert count(service, Schedule) == 0


def test_an_officer_cannot_cancel_someone_elses_schedule(ward, service):
    officer, leader = ward["officer"], ward["leader"]
    ann = announce(leader, approve=True)
    theirs = leader.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                    "start_at": tomorrow_at(8)}).json
    mine = officer.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-5"],
                                                   "start_at": tomorrow_at(8)}).json
    r = officer.post(f"/api/v1/schedules/{theirs['id']}/cancel")
    assert r.status_code == 403
    assert officer.get(f"/api/v1/schedules/{theirs['id']}").json["status"] == "active"
    assert officer.post(f"/api/v1/schedules/{mine['id']}/cancel").json["status"] == "cancelled"
    assert leader.post(f"/api/v1/schedules/{theirs['id']}/cancel").json["status"] == "cancelled"


def test_settings_that_change_what_is_heard_need_a_leader(ward):
    officer = ward["officer"]
    assert officer.put("/api/v1/settings/quiet-hours", json={"quiet_hours": "off"}).status_code == 403
    assert officer.put("/api/v1/audio-settings", json={"lead_in_ms": 0}).status_code == 403
    assert officer.post("/api/v1/abbreviations", json={"abbr": "UB", "expansion": "ủy ban"}).status_code == 403
    assert officer.post("/api/v1/zones", json={"code": "to-9", "name": "Tổ 9"}).status_code == 403
    assert ward["leader"].put("/api/v1/settings/quiet-hours", json={"quiet_hours": "22:00-05:00"}).status_code == 200


# ------------------------------------------------------------------------------ found by an outside review
def test_a_discard_that_races_a_release_never_becomes_a_one_person_cancel(ward, service, monkeypatch):
    """The first person's cancel of a pending alert is decided as a discard; if a second person releases it in
    between, the cancel must not go ahead as a one-person cancel of a sounding alert."""

    leader, leader2 = ward["leader"], ward["leader2"]
    alert = leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-3"]}).json
    real = emergency.cancel_media

    def release_meanwhile(svc, drill):
        assert leader2.post(f"/api/v1/emergencies/{alert['id']}/release").status_code == 200
        return real(svc, drill)

    monkeypatch.setattr(emergency, "cancel_media", release_meanwhile)
    r = leader.post(f"/api/v1/emergencies/{alert['id']}/cancel")
    assert r.status_code == 409 and r.json["error"]["code"] == "emergency_changed"
    now = leader.get(f"/api/v1/emergencies/{alert['id']}").json
    assert now["status"] == "released" and now["cancel_alert_id"] is None
    assert {c["name"] for c in published_commands(service)} == {"play_now"}


def test_an_alert_plays_at_the_alert_volume_not_at_a_nodes_last_volume(ward, service):
    officer, leader, leader2 = ward["officer"], ward["leader"], ward["leader2"]
    assert officer.post("/api/v1/fleet/commands", json={"name": "set_volume", "node_ids": ["loa-01"],
                                                        "args": {"volume": 0}}).status_code == 202
    alert = leader.post("/api/v1/emergencies", json={"title": "Bão", "text": STORM, "zones": ["to-3"]}).json
    leader2.post(f"/api/v1/emergencies/{alert['id']}/release")
    plays = [c for c in published_commands(service) if c["name"] == "play_now"]
    assert plays and all(c["args"]["volume"] == 100 for c in plays)


def test_scheduling_a_draft_sends_it_to_the_leaders_and_the_timeline_shows_it_waiting(ward, service):
    officer, leader = ward["officer"], ward["leader"]
    ann = announce(officer)
    assert ann["approval"] == "draft"
    sched = officer.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                    "start_at": tomorrow_at(9)}).json
    assert sched["status"] == "awaiting_approval"
    assert [a["id"] for a in leader.get("/api/v1/approvals").json] == [ann["id"]]
    day = tomorrow_at(9)[:10]
    tl = officer.get(f"/api/v1/timeline?zone=to-3&date={day}").json
    assert tl["entries"] == []
    assert [(w["schedule_id"], w["start_local"][11:16], w["state"]) for w in tl["awaiting_approval"]] == [
        (sched["id"], "09:00", "awaiting_approval")]


def test_an_outsiders_write_attempt_is_audited(client, service):
    r = client.post("/api/v1/schedules", json={"zones": ["to-3"]}, headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401
    (refused,) = refusals(service)
    assert refused.user_id is None and refused.detail["code"] == "unauthorized"
    assert refused.detail["action"] == "POST /api/v1/schedules"
