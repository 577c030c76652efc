"""Emergency broadcasts and drills through the API, the service and the web pages (real SQLite, real audio).

No broker here: the service's publisher records what would go out, and node answers are fed through the
real ingest path as signed-protocol messages. The end-to-end run with simulated nodes is in
tests/test_emergency_e2e.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import g
from sqlalchemy import select
from test_panel import csrf, login

from broadcaster import emergency
from broadcaster.airtime import ward_quiet
from broadcaster.emergency import TRANSITIONS, AlertStatus, move_alert
from broadcaster.i18n import catalogue
from broadcaster.models import Alert, AuditEntry, CannedMedia
from broadcaster.web.views_emergency import em_label
from devices import protocol as proto
from schedules.timeline import Slot, SlotItem, build_timeline

TEXT = "Bão số 3 sắp đổ bộ. Đề nghị bà con khẩn trương chằng chống nhà cửa và di chuyển tới nơi an toàn."
LAYOUT = {"to-3": ["loa-01", "loa-02"], "to-5": ["loa-03", "loa-04"], "to-7": ["loa-05"]}
PASSWORD = "password-123"


@pytest.fixture
def ward(api, service):
    for zone, nodes in LAYOUT.items():
        assert api.post("/api/v1/zones", json={"code": zone, "name": f"Tổ {zone}"}).status_code == 201
        for node_id in nodes:
            assert api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone}).status_code == 201
    for name, role in (("can-bo", "officer"), ("lanh-dao", "leader"), ("lanh-dao-2", "leader")):
        service.create_user(name, PASSWORD, role=role)
    # These tests are about delivery: the admin switches two-person release off (audited); the two-person
    # tests below and tests/test_release_policy.py switch it back on.
    assert api.post("/api/v1/emergency-settings", json={"two_person": False}).json["two_person"] is False
    service.publisher.messages.clear()
    return service


def token_for(client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json['token']}"}


def commands(service, name: str | None = None) -> list[dict]:
    """Commands the panel published, signature-checked like a node would."""
    key = proto.load_public_key(service.public_key_b64)
    out = []
    for topic, payload, qos, retain in service.publisher.messages:
        if not topic.endswith("/cmd"):
            continue
        data = proto.decode_json(payload)
        proto.verify_signature(data, key)
        assert qos == 1 and retain is False
        assert topic == service.topics.cmd(data["node_id"])
        proto.parse_model(proto.Command, data)
        proto.parse_args(data["name"], data["args"])  # what a node validates: refused here if off-spec
        if name is None or data["name"] == name:
            out.append(data)
    return out


def send(api, **body):
    base = {"title": "Bão số 3", "text": TEXT, "zones": ["to-3", "to-5"], "repeat": 2, "gap_ms": 1500}
    return api.post("/api/v1/emergencies", json={**base, **body})


def audit_actions(service) -> list[str]:
    with service.db.session() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# ---------------------------------------------------------------------------------------------- send
def test_live_emergency_goes_out_at_once_as_signed_play_now_to_the_chosen_zones_only(api, ward):
    r = send(api, volume=95)
    assert r.status_code == 201, r.json
    alert = r.json
    assert alert["status"] == "released" and alert["drill"] is False and alert["kind"] == "alert"
    assert alert["released_at"] and alert["zones"] == ["to-3", "to-5"]
    cmds = commands(ward, "play_now")
    assert sorted(c["node_id"] for c in cmds) == ["loa-01", "loa-02", "loa-03", "loa-04"]  # not loa-05 (to-7)
    media = alert["media"]
    assert ward.media.path(media["sha256"], "mp3").stat().st_size == media["bytes"]
    assert media["duration_ms"] > 3000
    for c in cmds:
        args = c["args"]
        assert args["alert_id"] == str(alert["id"]) and args["priority"] == "emergency"
        assert args["repeat"] == 2 and args["gap_ms"] == 1500 and args["volume"] == 95
        assert args["drill"] is False and args["title"] == "Bão số 3"
        assert args["media"]["sha256"] == media["sha256"] and args["media"]["bytes"] == media["bytes"]
        assert args["media"]["url"].endswith(f"/media/{media['sha256']}.mp3")
        ttl = proto.parse_ts(c["expires_at"]) - proto.parse_ts(c["issued_at"])
        assert ttl == timedelta(minutes=10)
    assert len({c["id"] for c in cmds}) == 4  # one nonce per node
    # tracked per node, nothing answered yet
    detail = api.get(f"/api/v1/emergencies/{alert['id']}").json
    assert [d["state"] for d in detail["deliveries"]] == ["pending"] * 4
    assert detail["summary"]["pending"] == 4 and detail["summary"]["total"] == 4
    # audited, although it needed no approval
    assert "emergency.live.create" in audit_actions(ward) and "emergency.live.release" in audit_actions(ward)
    # the cancellation message is pre-built as soon as an alert exists
    with ward.db.session() as s:
        assert s.scalar(select(CannedMedia).where(CannedMedia.text == emergency.CANCEL_TEXT)) is not None


def test_all_zones_reaches_every_loudspeaker(api, ward):
    r = send(api, zones=[], all_zones=True, repeat=1)
    assert r.status_code == 201, r.json
    assert sorted(c["node_id"] for c in commands(ward, "play_now")) == ["loa-01", "loa-02", "loa-03", "loa-04",
                                                                         "loa-05"]
    assert r.json["all_zones"] is True


def test_from_an_approved_announcement_only(api, ward, client):
    ann = api.post("/api/v1/announcements", json={"title": "Lũ", "text": TEXT}).json
    assert ann["status"] == "ready"
    leader = token_for(client, "lanh-dao")
    r = client.post("/api/v1/emergencies", headers=leader,
                    json={"title": "Lũ", "announcement_id": ann["id"], "zones": ["to-3"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "not_approved"
    assert api.post(f"/api/v1/announcements/{ann['id']}/approve").status_code == 200
    r = client.post("/api/v1/emergencies", headers=leader,
                    json={"title": "Lũ", "announcement_id": ann["id"], "zones": ["to-3"]})
    assert r.status_code == 201, r.json
    assert r.json["media"]["sha256"] == ann["media"]["sha256"]  # the approved audio itself
    # a drill of the same announcement is framed by the spoken drill notice: other, longer audio
    r = client.post("/api/v1/emergencies", headers=leader,
                    json={"title": "Lũ", "announcement_id": ann["id"], "zones": ["to-3"], "drill": True})
    assert r.status_code == 201, r.json
    assert r.json["media"]["sha256"] != ann["media"]["sha256"]
    assert r.json["media"]["duration_ms"] > ann["media"]["duration_ms"] + 1000


# ---------------------------------------------------------------------------------------------- drills
def test_drill_is_labelled_everywhere_and_listed_apart(api, ward):
    live = send(api).json
    drill = send(api, drill=True).json
    assert drill["drill"] is True and drill["status"] == "released"
    # the audio says it is a drill: the same text with the spoken notice is other, longer audio
    assert drill["media"]["sha256"] != live["media"]["sha256"]
    assert drill["media"]["duration_ms"] > live["media"]["duration_ms"] + 1000
    drill_cmds = [c for c in commands(ward, "play_now") if c["args"]["alert_id"] == str(drill["id"])]
    assert len(drill_cmds) == 4
    assert all(c["args"]["drill"] is True and c["args"]["title"].startswith("[DIỄN TẬP]") for c in drill_cmds)
    # kept apart: the default list is live only, drills have their own
    assert [a["id"] for a in api.get("/api/v1/emergencies").json] == [live["id"]]
    assert [a["id"] for a in api.get("/api/v1/emergencies?drill=true").json] == [drill["id"]]
    actions = audit_actions(ward)
    assert "emergency.drill.create" in actions and "emergency.drill.release" in actions
    # cancelling a drill broadcasts the drill variant of the cancellation, itself a drill
    cancelled = api.post(f"/api/v1/emergencies/{drill['id']}/cancel").json
    cancel = api.get(f"/api/v1/emergencies/{cancelled['cancel_alert_id']}").json
    assert cancel["drill"] is True and cancel["kind"] == "cancel"
    assert [a["id"] for a in api.get("/api/v1/emergencies").json] == [live["id"]]
    assert "emergency.drill.cancel" in audit_actions(ward)


# -------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"zones": []}, 400, "zones_required", "zones"),
        ({"zones": ["to-99"]}, 404, "unknown_zone", "zones"),
        ({"text": ""}, 400, "emergency_source_required", "text"),
        ({"announcement_id": 1}, 400, "emergency_source_required", "text"),
        ({"title": "  "}, 400, "title_required", "title"),
        ({"repeat": 11}, 400, "invalid_field", "repeat"),
        ({"repeat": 0}, 400, "invalid_field", "repeat"),
        ({"volume": 101}, 400, "invalid_field", "volume"),
        ({"gap_ms": -1}, 400, "invalid_field", "gap_ms"),
        ({"text": "x" * 5001}, 400, "text_too_long", "text"),
        ({"colour": "red"}, 400, "invalid_field", "colour"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_code_and_nothing_sent(api, ward, body, status, code, field):
    r = send(api, **body)
    assert r.status_code == status, r.json
    assert r.json["error"]["code"] == code and r.json["error"]["field"] == field
    assert commands(ward) == []
    assert api.get("/api/v1/emergencies").json == []


def test_zone_without_loudspeakers_is_refused(api, ward):
    assert api.post("/api/v1/zones", json={"code": "to-9", "name": "Tổ 9"}).status_code == 201
    r = send(api, zones=["to-9"])
    assert r.status_code == 404 and r.json["error"]["code"] == "emergency_no_nodes"


def test_web_form_error_is_vietnamese_and_keeps_the_input(client, ward):
    login(client)
    token = csrf(client, "/emergency")
    r = client.post("/emergency", data={"csrf_token": token, "mode": "live", "title": "Cháy chợ", "source": "text",
                                        "text": TEXT, "repeat": "3"})
    assert r.status_code == 400
    assert "Hãy chọn ít nhất một khu vực." in r.text
    assert "Cháy chợ" in r.text and TEXT in r.text  # nothing lost
    r = client.post("/emergency", data={"csrf_token": token, "mode": "live", "title": "Cháy chợ", "source": "text",
                                        "text": TEXT, "zones": ["to-3"], "repeat": "12"})
    assert r.status_code == 400 and "Số lần phát phải từ 1 đến 10" in r.text
    assert commands(ward) == []


# ------------------------------------------------------------------------------------ two-person release
def test_two_person_release_for_live_emergencies(client, ward, api):
    officer, leader, leader2 = (token_for(client, u) for u in ("can-bo", "lanh-dao", "lanh-dao-2"))
    # only an admin changes the setting
    r = client.post("/api/v1/emergency-settings", headers=leader, json={"two_person": True})
    assert r.status_code == 403
    assert api.post("/api/v1/emergency-settings", json={"two_person": True}).json["two_person"] is True
    with ward.db.session() as s:

        assert not ward_quiet(s, ward.config).enabled  # turning it on did not bring quiet hours with it

    r = client.post("/api/v1/emergencies", headers=leader, json={"title": "Cháy", "text": TEXT, "zones": ["to-3"]})
    assert r.status_code == 201 and r.json["status"] == "pending_release"
    alert_id = r.json["id"]
    assert commands(ward) == []  # nothing goes out before the second person
    assert r.json["deliveries"] == []

    r = client.post(f"/api/v1/emergencies/{alert_id}/release", headers=leader)
    assert r.status_code == 409 and r.json["error"]["code"] == "emergency_same_person"
    r = client.post(f"/api/v1/emergencies/{alert_id}/release", headers=officer)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert commands(ward) == []

    r = client.post(f"/api/v1/emergencies/{alert_id}/release", headers=leader2)
    assert r.status_code == 200 and r.json["status"] == "released", r.json
    assert r.json["released_by"] == "lanh-dao-2" and r.json["created_by"] == "lanh-dao"
    assert sorted(c["node_id"] for c in commands(ward, "play_now")) == ["loa-01", "loa-02"]
    r = client.post(f"/api/v1/emergencies/{alert_id}/release", headers=leader2)
    assert r.status_code == 409 and r.json["error"]["code"] == "emergency_not_pending"

    # drills wait for a second person too; an officer cannot start either
    r = client.post("/api/v1/emergencies", headers=leader,
                    json={"title": "Diễn tập", "text": TEXT, "zones": ["to-5"], "drill": True})
    assert r.json["status"] == "pending_release"
    r = client.post("/api/v1/emergencies", headers=officer, json={"title": "Cháy", "text": TEXT, "zones": ["to-5"]})
    assert r.status_code == 403

    # a pending one can be discarded by one leader: nothing is sent, nothing announced
    ward.publisher.messages.clear()
    pending = client.post("/api/v1/emergencies", headers=leader,
                          json={"title": "Nhầm", "text": TEXT, "zones": ["to-3"]}).json
    assert pending["status"] == "pending_release"
    assert sorted(pending["can_confirm"]) == ["admin", "lanh-dao-2"]
    r = client.post(f"/api/v1/emergencies/{pending['id']}/cancel", headers=leader)
    assert r.json["status"] == "discarded" and r.json["cancel_alert_id"] is None
    assert commands(ward) == []
    r = client.post(f"/api/v1/emergencies/{pending['id']}/release", headers=leader2)
    assert r.status_code == 409


# ---------------------------------------------------------------------------------------------- cancel
def test_cancel_stops_the_alert_then_plays_the_prebuilt_cancellation(api, ward):
    first = send(api).json
    second = send(api, zones=["to-7"]).json
    ward.publisher.messages.clear()
    r = api.post(f"/api/v1/emergencies/{first['id']}/cancel")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "cancelled" and r.json["cancelled_at"]
    cancel_id = r.json["cancel_alert_id"]
    cancel = api.get(f"/api/v1/emergencies/{cancel_id}").json
    assert cancel["kind"] == "cancel" and cancel["cancels_id"] == first["id"] and cancel["status"] == "released"
    assert cancel["zones"] == first["zones"]
    sent = commands(ward)
    per_node: dict[str, list[tuple[str, dict]]] = {}
    for c in sent:
        per_node.setdefault(c["node_id"], []).append((c["name"], c["args"]))
    assert sorted(per_node) == ["loa-01", "loa-02", "loa-03", "loa-04"]
    for node_id, cmds in per_node.items():
        # stop that alert first, then the cancellation — in that order on the node's command topic
        assert [n for n, _ in cmds] == ["stop", "play_now"], node_id
        assert cmds[0][1] == {"alert_id": str(first["id"])}
        assert cmds[1][1]["alert_id"] == str(cancel_id) and cmds[1][1]["priority"] == "emergency"
    assert len(api.get(f"/api/v1/emergencies/{cancel_id}").json["deliveries"]) == 4
    # rendered once: the second cancellation reuses the same audio
    r = api.post(f"/api/v1/emergencies/{second['id']}/cancel")
    cancel2 = api.get(f"/api/v1/emergencies/{r.json['cancel_alert_id']}").json
    assert cancel2["media"]["sha256"] == cancel["media"]["sha256"]
    with ward.db.session() as s:
        assert len(list(s.scalars(select(CannedMedia).where(CannedMedia.text == emergency.CANCEL_TEXT)))) == 1
    # cancelling twice, or cancelling a cancellation, is refused
    r = api.post(f"/api/v1/emergencies/{first['id']}/cancel")
    assert r.status_code == 409 and r.json["error"]["code"] == "emergency_already_cancelled"
    r = api.post(f"/api/v1/emergencies/{cancel_id}/cancel")
    assert r.status_code == 409 and r.json["error"]["code"] == "emergency_cannot_cancel"
    assert "emergency.live.cancel" in audit_actions(ward)


# ---------------------------------------------------------------------------------- per-node delivery
def _ingest(service, kind: str, payload: dict) -> None:
    service.ingest(service.topics.node(payload["node_id"], kind), proto.encode(payload))


_seq: dict[str, int] = {}


def event(service, node_id: str, name: str, item_id: str, at: datetime, **extra) -> None:
    _seq[node_id] = _seq.get(node_id, 0) + 1
    _ingest(service, "events", {"type": "event", "protocol": 1, "node_id": node_id, "seq": _seq[node_id],
                                "at": proto.format_ts(at), "event": name, "item_id": item_id, **extra})


def ack(service, node_id: str, command_id: str, status: str, at: datetime, error: str | None = None) -> None:
    _ingest(service, "ack", {"type": "ack", "protocol": 1, "node_id": node_id, "command_id": command_id,
                             "status": status, "at": proto.format_ts(at), "error": error})


def test_per_node_delivery_state_follows_acks_and_playback_events(api, ward):
    _seq.clear()
    alert = send(api, repeat=2).json
    aid = alert["id"]
    cmd = {c["node_id"]: c["id"] for c in commands(ward, "play_now")}
    now = datetime.now(UTC)
    # loa-01: acked, played both repeats; loa-02: acked and playing; loa-03: could not fetch; loa-04: silent
    ack(ward, "loa-01", cmd["loa-01"], "ok", now)
    event(ward, "loa-01", "playback_started", f"alert:{aid}:1", now, actual_start=proto.format_ts(now))
    event(ward, "loa-01", "playback_finished", f"alert:{aid}:1", now + timedelta(seconds=5))
    event(ward, "loa-01", "playback_started", f"alert:{aid}:2", now + timedelta(seconds=6))
    event(ward, "loa-01", "playback_finished", f"alert:{aid}:2", now + timedelta(seconds=11))
    ack(ward, "loa-02", cmd["loa-02"], "ok", now)
    event(ward, "loa-02", "playback_started", f"alert:{aid}:1", now, actual_start=proto.format_ts(now))
    ack(ward, "loa-03", cmd["loa-03"], "error", now, error="media fetch failed: HTTP 503")
    rows = {d["node_id"]: d for d in api.get(f"/api/v1/emergencies/{aid}").json["deliveries"]}
    assert {n: d["state"] for n, d in rows.items()} == {
        "loa-01": "finished", "loa-02": "started", "loa-03": "failed", "loa-04": "pending"}
    assert rows["loa-01"]["repeats_finished"] == 2 and rows["loa-02"]["repeats_started"] == 1
    assert "503" in rows["loa-03"]["reason"]
    assert rows["loa-01"]["latency_ms"] is not None
    # later: a node that never answered is a timeout; one that never finished too
    later = emergency.deliveries(ward, emergency.get_alert(ward, aid), now=now + timedelta(minutes=5))
    assert {d["node_id"]: d["state"] for d in later} == {
        "loa-01": "finished", "loa-02": "timeout", "loa-03": "failed", "loa-04": "timeout"}
    # events of another alert never count for this one
    other = send(api, zones=["to-3"], repeat=1).json
    assert {d["state"] for d in api.get(f"/api/v1/emergencies/{other['id']}").json["deliveries"]} == {"pending"}


def test_a_stopped_alert_shows_stopped_with_its_reason(api, ward):
    _seq.clear()
    alert = send(api, zones=["to-3"]).json
    now = datetime.now(UTC)
    event(ward, "loa-01", "playback_started", f"alert:{alert['id']}:1", now)
    event(ward, "loa-01", "playback_stopped", f"alert:{alert['id']}:1", now + timedelta(seconds=1), reason="command")
    rows = {d["node_id"]: d for d in api.get(f"/api/v1/emergencies/{alert['id']}").json["deliveries"]}
    assert rows["loa-01"]["state"] == "stopped" and rows["loa-01"]["reason"] == "command"


# ------------------------------------------------------------------------------------- timeline slots
def test_emergency_slots_for_the_plan_builder(api, ward):
    a = send(api, zones=["to-3"], repeat=2, gap_ms=1000).json
    everywhere = send(api, zones=[], all_zones=True, repeat=1, drill=True).json
    with ward.db.session() as s:
        zone = {z.code: z.id for z in ward.list_zones()}
        now = datetime.now(UTC)
        window = (now - timedelta(hours=1), now + timedelta(hours=1))
        to3 = emergency.emergency_slots(s, *window, {zone["to-3"]})
        to5 = emergency.emergency_slots(s, *window, {zone["to-5"]})
        every = emergency.emergency_slots(s, *window, None)
        later = emergency.emergency_slots(s, now + timedelta(hours=2), now + timedelta(hours=3), None)
    assert sorted(sl.schedule_id for sl in to3) == sorted([-a["id"], -everywhere["id"]])
    assert [sl.schedule_id for sl in to5] == [-everywhere["id"]]
    assert len(every) == 2 and later == []
    slot = next(sl for sl in to3 if sl.schedule_id == -a["id"])
    assert all(emergency.is_alert_slot(sl) for sl in every)
    assert slot.priority == "emergency" and slot.repeat == 2 and slot.gap_ms == 1000 and not slot.drill
    assert slot.items[0].ref == f"alert:{a['id']}" and slot.items[0].duration_ms == a["media"]["duration_ms"]
    assert proto.format_ts(slot.start) == a["released_at"]
    assert next(sl for sl in every if sl.schedule_id == -everywhere["id"]).drill is True

    # a normal bulletin that the emergency cuts is resumed after it by the timeline
    bulletin = Slot(schedule_id=7, start=slot.start - timedelta(seconds=10),
                    items=(SlotItem("announcement", 60_000, "ann:1", "Tin thường"),))
    entries = build_timeline([bulletin, slot], slot.start - timedelta(minutes=1), slot.start + timedelta(hours=1))
    states = [(e.schedule_id, e.state) for e in entries]
    assert (7, "preempted") in states and (7, "resumed") in states
    assert (-a["id"], "play") in states

    # cancelled: its air time ends at the cancellation, and the cancellation is a slot of its own
    r = api.post(f"/api/v1/emergencies/{a['id']}/cancel").json
    with ward.db.session() as s:
        to3 = emergency.emergency_slots(s, *window, {zone["to-3"]})
    cut = next(sl for sl in to3 if sl.schedule_id == -a["id"])
    assert cut.repeat == 1 and cut.items[0].duration_ms < a["media"]["duration_ms"]
    assert any(sl.schedule_id == -r["cancel_alert_id"] for sl in to3)


# --------------------------------------------------------------------------------------------- web
def test_phone_page_sends_an_emergency_and_shows_live_status(client, ward):
    login(client)
    page = client.get("/emergency").text
    assert "Phát khẩn cấp" in page and "DIỄN TẬP" in page and "KHẨN CẤP THẬT" in page and "PHÁT NGAY" in page
    assert 'name="all_zones"' in page and "Tổ to-3" in page
    assert 'class="nav-emergency"' in client.get("/").text  # the red entry in every page's menu
    token = csrf(client, "/emergency")
    r = client.post("/emergency", data={"csrf_token": token, "mode": "drill", "title": "Diễn tập PCCC",
                                        "source": "text", "text": TEXT, "zones": ["to-5"], "repeat": "2",
                                        "gap_s": "2", "volume": "80"})
    assert r.status_code == 302, r.text
    detail = client.get(r.headers["Location"]).text
    assert "DIỄN TẬP — không phải tình huống khẩn cấp thật" in detail
    assert "loa-03" in detail and "loa-04" in detail and "loa-01" not in detail
    assert "đang gửi" in detail
    alert_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    status = client.get(f"/emergency/{alert_id}/status").text
    assert status.count('class="em-node"') == 2
    drill = emergency.get_alert(ward, alert_id)
    assert drill.drill and drill.repeat == 2 and drill.gap_ms == 2000 and drill.volume == 80
    # listed under drills, not under live emergencies
    page = client.get("/emergency").text
    live_part, drills_part = page.split("Các lần diễn tập", 1)
    assert "Diễn tập PCCC" in drills_part and "Diễn tập PCCC" not in live_part.split("Tin khẩn cấp thật", 1)[1]
    # cancel from the page
    token = csrf(client, f"/emergency/{alert_id}")
    r = client.post(f"/emergency/{alert_id}/cancel", data={"csrf_token": token})
    assert r.status_code == 302
    detail = client.get(f"/emergency/{alert_id}").text
    assert "đã hủy" in detail and "Phát thông báo hủy bỏ" in detail


def test_every_state_and_status_reads_in_vietnamese_and_english(client, ward):
    vi = catalogue("vi")
    for kind, values in (("state", emergency.STATES), ("status", emergency.ALERT_STATUSES)):
        for value in values:
            assert f"emergency.{kind}.{value}" in vi
    with client.application.test_request_context("/?lang=en"):

        g.locale = "en"
        assert em_label("status", "pending_release") == "waiting for a second person to confirm"
        g.locale = "vi"
        assert em_label("status", "pending_release") == "chờ người thứ hai xác nhận"


def test_openapi_documents_the_emergency_routes(api):
    paths = api.get("/api/v1/openapi.json").json["paths"]
    for path in ("/emergencies", "/emergencies/{alert_id}", "/emergencies/{alert_id}/release",
                 "/emergencies/{alert_id}/cancel", "/emergency-settings"):
        assert path in paths
    assert re.search("two-person", paths["/emergencies"]["post"]["summary"])


# ------------------------------------------------------------------------------------ the alert's states
def test_alert_states_change_only_through_the_one_table(api, ward):
    assert set(TRANSITIONS) == set(AlertStatus) and set(emergency.ALERT_STATUSES) == {s.value for s in AlertStatus}
    alert = Alert(id=1, status="released")
    move_alert(alert, AlertStatus.CANCELLED)
    assert alert.status == "cancelled"
    with pytest.raises(AssertionError, match="not a transition"):
        move_alert(alert, AlertStatus.RELEASED)  # a cancelled alert never sounds again
    # the end states are ends; a waiting one never goes back to waiting
    assert not TRANSITIONS[AlertStatus.CANCELLED] and not TRANSITIONS[AlertStatus.DISCARDED]
    assert AlertStatus.PENDING_RELEASE not in {t for ts in TRANSITIONS.values() for t in ts}


def test_an_alert_left_releasing_by_a_crash_is_not_sent_late_but_marked_at_start(api, ward):

    r = send(api, title="Cháy chợ", text=TEXT, zones=["to-3"])
    assert r.status_code == 201 and r.json["status"] == "released"
    # as if the panel had stopped between creating an alert and releasing it
    with ward.db.session() as s:
        stuck = Alert(kind="alert", title="Lũ", text=TEXT, media_sha256=r.json["media"]["sha256"],
                      status="releasing", created_by_id=None, repeat=1, gap_ms=0,
                      ward_id=s.get(Alert, r.json["id"]).ward_id)
        s.add(stuck)
        s.flush()
        stuck_id = stuck.id
    ward.publisher.messages.clear()
    # Several panel processes: another one may be releasing it right now, so only a stale one is recovered.
    assert emergency.recover_at_start(ward, emergency.RELEASE_STALE) == []
    with ward.db.session() as s:
        s.get(Alert, stuck_id).created_at = datetime.now(UTC) - emergency.RELEASE_STALE - timedelta(seconds=1)
    assert emergency.recover_at_start(ward, emergency.RELEASE_STALE) == [stuck_id]
    got = api.get(f"/api/v1/emergencies/{stuck_id}").json
    assert got["status"] == "discarded"
    assert ward.publisher.messages == []  # nothing goes out late
    with ward.db.session() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.target == f"alert:{stuck_id}")))
    assert actions == ["emergency.live.release_failed"]
    assert api.get(f"/api/v1/emergencies/{r.json['id']}").json["status"] == "released"  # the others untouched
    assert emergency.recover_at_start(ward) == []  # once


def test_a_release_that_fails_leaves_the_alert_not_sent(api, ward, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("broker gone")

    monkeypatch.setattr(emergency, "play_now_args", broken)  # fails inside the release, before it commits
    with pytest.raises(RuntimeError):
        emergency.create_alert(ward, title="Bão", text=TEXT, announcement_id=None, zones=["to-3"], all_zones=False,
                               repeat=1, gap_ms=0, volume=None, drill=False, wards=[],
                               user=ward.get_user_by_name("admin"))
    (alert,) = [a for a in emergency.list_alerts(ward) if a.title == "Bão"]
    assert alert.status == "discarded"
