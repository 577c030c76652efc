"""Fleet: registry CSV import/export and edits, debounced presence with heartbeat and offline alerts, clock
offset, remote control with pending/acked/timed-out commands, fleet pages and map (API + web + real stack)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from firmware_sim.fleet import Fleet
from sqlalchemy import func, select
from test_panel import csrf, login

from broadcaster import fleet
from broadcaster.brokerconf import verify_mosquitto_hash
from broadcaster.models import CommandRecord, Node
from broadcaster.services import ServiceError
from devices import protocol as proto


def zones(api, *codes_wards):
    for code, ward in codes_wards:
        assert api.post("/api/v1/zones", json={"code": code, "name": f"Tổ {code}", "ward": ward}).status_code == 201


def big_csv(n: int) -> str:
    lines = ["node_id,name,zone,ward,lat,lon,address,hardware,language"]
    for i in range(n):
        zone = "to-1" if i % 2 else "to-2"
        lines.append(f"loa-{i:04d},\"Cụm loa {i}, ngõ {i % 17}\",{zone},Phường Bến Nghé,{10.77 + i / 10000!r},"
                     f"{106.70 + i / 10000!r},\"Số {i} Lê Lợi\",AMP-200,vi")
    return "\n".join(lines) + "\n"


def node_count(service) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(Node))


# ============================================================================================= registry
def test_csv_import_of_hundreds_is_idempotent_and_export_round_trips(api, service):
    zones(api, ("to-1", "Phường Bến Nghé"), ("to-2", "Phường Bến Nghé"))
    r = api.post("/api/v1/fleet/registry.csv", data=big_csv(300).encode(), content_type="text/csv")
    assert r.status_code == 201, r.json
    assert len(r.json["created"]) == 300 and not r.json["updated"] and len(r.json["credentials"]) == 300
    token = r.json["credentials"]["loa-0007"]
    node = service.node_for_token(token)
    assert node.node_id == "loa-0007" and verify_mosquitto_hash(token, node.mqtt_password_hash)
    assert node.name == "Cụm loa 7, ngõ 7" and node.lat == 10.77 + 7 / 10000 and node.language == "vi"
    # nodes got plans at once (their zone's, possibly empty)
    assert service.get_node("loa-0007").plan_version > 0

    exported = api.get("/api/v1/fleet/registry.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    text = exported.data.decode("utf-8")
    assert text.startswith("\ufeffnode_id,name,zone,ward,lat,lon,address,hardware,language,firmware")
    again = api.post("/api/v1/fleet/registry.csv", data=exported.data, content_type="text/csv")
    assert again.status_code == 201
    assert len(again.json["unchanged"]) == 300 and not again.json["created"] and not again.json["updated"]
    assert again.json["credentials"] == {}  # existing nodes keep their tokens
    assert service.node_for_token(token).node_id == "loa-0007"
    assert api.get("/api/v1/fleet/registry.csv").data == exported.data  # byte-identical round trip

    # one edited row → exactly one update; a missing column keeps its values
    r = api.post("/api/v1/fleet/registry.csv", data=b"node_id,zone\nloa-0007,to-2\n", content_type="text/csv")
    assert r.json["updated"] == ["loa-0007"]
    node = service.get_node("loa-0007")
    assert node.zone.code == "to-2" and node.address == "Số 7 Lê Lợi"


def test_csv_import_refuses_everything_when_a_row_is_bad_and_names_each_row(api, service):
    zones(api, ("to-1", "P1"))
    bad = "\n".join([
        "node_id,name,zone,lat,lon,language",
        "loa-a,Một,to-1,10.1,106.1,vi",          # good
        "Loa B,Hai,to-1,,,vi",                   # line 3: invalid id
        "loa-c,Ba,to-9,,,vi",                    # line 4: unknown zone
        "loa-d,Bốn,to-1,95,106,vi",              # line 5: latitude out of range
        "loa-a,Lại,to-1,,,vi",                   # line 6: duplicate
        "loa-e,Năm,to-1,10.2,,vi",               # line 7: lat without lon
        "loa-f,Sáu,to-1,,,tiếng việt",           # line 8: not a language tag
    ]) + "\n"
    r = api.post("/api/v1/fleet/registry.csv", data=bad.encode(), content_type="text/csv")
    assert r.status_code == 400 and r.json["error"]["code"] == "import_refused"
    got = {(e["row"], e["field"], e["code"]) for e in r.json["errors"]}
    assert got == {(3, "node_id", "invalid_node_id"), (4, "zone", "unknown_zone"), (5, "lat", "invalid_lat"),
                   (6, "node_id", "duplicate_node_id"), (7, "lat", "gps_pair"), (8, "language", "invalid_language")}
    assert node_count(service) == 0  # nothing imported, not even the good row
    # unknown column and missing node_id column are refused clearly too
    r = api.post("/api/v1/fleet/registry.csv", data=b"node_id,colour\nx,red\n", content_type="text/csv")
    assert r.status_code == 400 and r.json["errors"][0]["code"] == "unknown_column"
    r = api.post("/api/v1/fleet/registry.csv", data=b"name\nx\n", content_type="text/csv")
    assert r.status_code == 400 and r.json["errors"][0]["code"] == "missing_column"
    r = api.post("/api/v1/fleet/registry.csv", data=b"\xff\xfe\x00", content_type="text/csv")
    assert r.status_code == 400 and r.json["errors"][0]["code"] == "not_utf8"


def test_csv_from_a_spreadsheet_semicolons_bom_decimal_comma(api, service):
    zones(api, ("to-1", "P1"))
    data = "\ufeffnode_id;name;zone;lat;lon\nloa-x;Chợ;to-1;10,7769;106,7009\n".encode()
    r = api.post("/api/v1/fleet/registry.csv?dry_run=1", data=data, content_type="text/csv")
    assert r.status_code == 200 and r.json["dry_run"] and r.json["created"] == ["loa-x"] and not r.json["credentials"]
    assert node_count(service) == 0
    r = api.post("/api/v1/fleet/registry.csv", data=data, content_type="text/csv")
    assert r.status_code == 201
    node = service.get_node("loa-x")
    assert (node.lat, node.lon) == (10.7769, 106.7009)


def test_edit_node_from_api_and_from_the_panel(app, api, client, service):
    zones(api, ("to-1", "P1"), ("to-2", "P2"))
    api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-1"})
    r = app.test_client().patch("/api/v1/fleet/nodes/loa-01", headers=api.headers,
                                json={"zone": "to-2", "lat": 21.03, "lon": 105.85, "hardware": "AMP-300",
                                      "language": "vi-x-tay", "address": "Nhà văn hoá"})
    assert r.status_code == 200, r.json
    assert r.json["zone"] == "to-2" and r.json["ward"] == "P2" and r.json["language"] == "vi-x-tay"
    r = app.test_client().patch("/api/v1/fleet/nodes/loa-01", headers=api.headers, json={"lat": None})
    assert r.status_code == 400 and r.json["error"]["code"] == "gps_pair"
    r = app.test_client().patch("/api/v1/fleet/nodes/loa-01", headers=api.headers, json={"colour": "red"})
    assert r.status_code == 400
    # the panel form (admin), with CSRF
    login(client)
    token = csrf(client, "/fleet/nodes/loa-01")
    r = client.post("/fleet/nodes/loa-01/edit", data={"csrf_token": token, "name": "Loa chợ", "zone": "to-1",
                                                       "ward": "Phường Mới", "lat": "21,5", "lon": "105,5",
                                                       "address": "", "hardware": "AMP-300", "language": "vi"})
    assert r.status_code == 302
    node = service.get_node("loa-01")
    assert (node.name, node.zone.code, node.ward, node.lat, node.address) == ("Loa chợ", "to-1", "Phường Mới", 21.5,
                                                                             None)
    r = client.post("/fleet/nodes/loa-01/edit", data={"csrf_token": token, "lat": "abc", "lon": "1"},
                    follow_redirects=True)
    assert "Vĩ độ phải là số" in r.text and service.get_node("loa-01").lat == 21.5


# ============================================================================================= presence
def status(node_id: str, state: str = "online", session: int = 1, **kw) -> bytes:
    return json.dumps({"type": "status", "protocol": 1, "node_id": node_id, "state": state, "session": session,
                       **kw}).encode()


@pytest.fixture
def ward(api, service):
    zones(api, ("to-1", "P1"), ("to-2", "P2"))
    for node_id, zone in (("loa-01", "to-1"), ("loa-02", "to-1"), ("loa-03", "to-2")):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})
    service.config.PRESENCE_DEBOUNCE_S = 30
    service.config.OFFLINE_ALERT_S = 120
    return service


def presence(service, node_id):
    return service.get_node(node_id).presence


def test_presence_is_debounced_no_flapping(ward):
    service, t = ward, ward.topics
    service.ingest(t.status("loa-01"), status("loa-01"))
    assert presence(service, "loa-01") == "online"  # first report: nothing to debounce against
    for _ in range(3):  # a flapping link: will, reconnect, will, reconnect …
        service.ingest(t.status("loa-01"), status("loa-01", "offline"))
        service.ingest(t.status("loa-01"), status("loa-01"))
    assert presence(service, "loa-01") == "online"
    assert service.get_node("loa-01").state == "online"
    service.ingest(t.status("loa-01"), status("loa-01", "offline"))
    assert service.get_node("loa-01").state == "offline"  # the raw state follows at once …
    now = datetime.now(UTC)
    fleet.refresh(service, now + timedelta(seconds=20))
    assert presence(service, "loa-01") == "online"  # … the shown one only when it held for 30 s
    fleet.refresh(service, now + timedelta(seconds=31))
    node = service.get_node("loa-01")
    assert node.presence == "offline" and node.offline_alert_at is None
    assert abs((node.presence_since - (node.raw_since + timedelta(seconds=30))).total_seconds()) < 0.01
    # offline alert after 120 s, visible in the API filter and on the fleet page
    fleet.refresh(service, now + timedelta(seconds=121))
    assert service.get_node("loa-01").offline_alert_at is not None


def test_offline_alert_listed_and_cleared_when_back(ward, api, client):
    service, t = ward, ward.topics
    service.config.PRESENCE_DEBOUNCE_S = 0
    service.config.OFFLINE_ALERT_S = 0
    service.ingest(t.status("loa-02"), status("loa-02"))
    service.ingest(t.status("loa-02"), status("loa-02", "offline"))
    body = api.get("/api/v1/fleet/nodes?presence=alert").json
    assert [n["node_id"] for n in body["nodes"]] == ["loa-02"] and body["summary"]["alerts"] == 1
    assert body["nodes"][0]["offline_alert"] and body["nodes"][0]["presence"] == "offline"
    login(client)
    page = client.get("/fleet").text
    assert "offline-alerts" in page and "mất kết nối quá lâu" in page
    service.ingest(t.status("loa-02"), status("loa-02", session=2))
    assert api.get("/api/v1/fleet/nodes?presence=alert").json["nodes"] == []
    assert presence(service, "loa-02") == "online"


def test_silent_node_goes_offline_after_missed_heartbeats(ward):
    service, t = ward, ward.topics
    service.config.PRESENCE_DEBOUNCE_S = 0
    service.ingest(t.status("loa-03"), status("loa-03", heartbeat_s=10, clock=proto.format_ts(datetime.now(UTC))))
    now = datetime.now(UTC)
    fleet.refresh(service, now + timedelta(seconds=25))
    assert presence(service, "loa-03") == "online"  # 2.5 periods: still within 3 missed heartbeats
    fleet.refresh(service, now + timedelta(seconds=31))
    node = service.get_node("loa-03")
    assert node.presence == "offline" and node.state == "online"  # no will yet: silence is enough


def test_clock_offset_health_fields_and_drifting_filter(ward, api):
    service, t = ward, ward.topics
    now = datetime.now(UTC)
    service.ingest(t.status("loa-01"), status("loa-01", clock=proto.format_ts(now + timedelta(milliseconds=2500)),
                                             rssi_dbm=-71, free_bytes=123_456_789, uptime_s=3600, heartbeat_s=60,
                                             firmware="fw-2.1"))
    service.ingest(t.status("loa-02"), status("loa-02", clock=proto.format_ts(datetime.now(UTC))))
    body = api.get("/api/v1/fleet/nodes").json
    rows = {n["node_id"]: n for n in body["nodes"]}
    a = rows["loa-01"]
    assert 2300 <= a["clock_offset_ms"] <= 2500 and a["drifting"]
    assert (a["rssi_dbm"], a["free_bytes"], a["uptime_s"], a["heartbeat_s"], a["firmware"]) == (
        -71, 123_456_789, 3600, 60, "fw-2.1")
    assert abs(rows["loa-02"]["clock_offset_ms"]) < 500 and not rows["loa-02"]["drifting"]
    assert [n["node_id"] for n in api.get("/api/v1/fleet/nodes?drifting=true").json["nodes"]] == ["loa-01"]
    assert "loa-01" not in [n["node_id"] for n in api.get("/api/v1/fleet/nodes?drifting=false").json["nodes"]]
    # a delayed sample (panel busy) never makes the estimate worse: the best of the last samples wins
    late = proto.format_ts(datetime.now(UTC) - timedelta(seconds=3))
    service.ingest(t.status("loa-02"), status("loa-02", clock=late))
    assert abs(service.get_node("loa-02").clock_offset_ms) < 500
    # the same retained status redelivered (panel reconnect) is ignored, not counted as a fresh heartbeat
    seen = service.get_node("loa-01").last_seen
    service.ingest(t.status("loa-01"), status("loa-01", clock=proto.format_ts(now + timedelta(milliseconds=2500))))
    assert service.get_node("loa-01").last_seen == seen


def test_filters_by_ward_zone_and_search(ward, api):
    service = ward
    fleet.update_node(service, "loa-03", {"address": "Chợ Bến Thành"})
    ids = lambda q: [n["node_id"] for n in api.get(f"/api/v1/fleet/nodes?{q}").json["nodes"]]  # noqa: E731
    assert ids("ward=P1") == ["loa-01", "loa-02"]
    assert ids("zone=to-2") == ["loa-03"]
    assert ids("q=Bến") == ["loa-03"]
    assert ids("presence=unknown") == ["loa-01", "loa-02", "loa-03"]
    fleet.update_node(service, "loa-01", {"ward": "P9"})  # a node's own ward wins over its zone's
    assert ids("ward=P9") == ["loa-01"] and ids("ward=P1") == ["loa-02"]


# ============================================================================================= commands
def published_commands(service, since: int = 0) -> list[dict]:
    return [json.loads(p) for t, p, *_ in service.publisher.messages[since:] if t.endswith("/cmd")]


def test_volume_per_zone_and_per_node_signed_commands(ward, api):
    service = ward
    r = api.post("/api/v1/fleet/commands", json={"name": "set_volume", "args": {"volume": 35}, "zone": "to-1"})
    assert r.status_code == 202 and sorted(c["node_id"] for c in r.json) == ["loa-01", "loa-02"]
    assert {c["status"] for c in r.json} == {"pending"}
    sent = published_commands(service)
    assert {c["node_id"] for c in sent} == {"loa-01", "loa-02"}
    key = proto.load_public_key(service.public_key_b64)
    for c in sent:
        cmd = proto.decode_signed(proto.Command, json.dumps(c), key, node_id=c["node_id"])
        assert cmd.name == "set_volume" and proto.parse_args(cmd.name, cmd.args).volume == 35
    r = api.post("/api/v1/fleet/commands", json={"name": "set_volume", "args": {"volume": 101},
                                                 "node_ids": ["loa-03"]})
    assert r.status_code == 400 and r.json["error"]["field"] == "args.volume"
    r = api.post("/api/v1/fleet/commands", json={"name": "set_volume", "args": {"volume": 5}, "node_ids": ["nope"]})
    assert r.status_code == 404
    r = api.post("/api/v1/fleet/commands", json={"name": "resync"})
    assert r.status_code == 400 and r.json["error"]["code"] == "no_target"
    r = api.post("/api/v1/fleet/commands", json={"name": "stop", "ward": "P2"})
    assert [c["node_id"] for c in r.json] == ["loa-03"] and r.json[0]["args"] == {}


def test_play_now_only_approved_announcements(ward, api, service):
    draft = api.post("/api/v1/announcements", json={"title": "Nháp", "text": "Thông báo nháp."}).json
    r = api.post("/api/v1/fleet/commands", json={"name": "play_now", "args": {"announcement_id": draft["id"]},
                                                 "node_ids": ["loa-01"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "not_approved"
    ann = api.post("/api/v1/announcements", json={"title": "Lịch tiêm", "text": "Mời bà con đi tiêm phòng.",
                                                  "approve": True}).json
    assert ann["status"] == "ready"
    mark = len(service.publisher.messages)
    r = api.post("/api/v1/fleet/commands", json={"name": "play_now", "node_ids": ["loa-01"],
                                                 "args": {"announcement_id": ann["id"], "repeat": 2, "volume": 80}})
    assert r.status_code == 202, r.json
    (cmd,) = published_commands(service, mark)
    args = proto.parse_args("play_now", cmd["args"])
    assert args.repeat == 2 and args.volume == 80 and args.media.sha256 == ann["media"]["sha256"]
    assert args.priority == "priority" and args.drill is False and args.alert_id.startswith("now-")


def test_officer_maintains_one_node_but_not_a_zone(ward, service):
    """Release policy R3: maintenance of a single node is an officer's job; a zone or the ward needs a leader."""
    officer = service.create_user("can-bo", "officer-password", role="officer")

    assert fleet.send(service, "reboot", {}, node_ids=["loa-01"], user=officer)[0].status == "pending"
    assert fleet.send(service, "resync", {}, node_ids=["loa-01"], user=officer)[0].status == "pending"
    with pytest.raises(ServiceError) as exc:
        fleet.send(service, "reboot", {}, zone="to-1", user=officer)
    assert exc.value.status == 403


def test_expired_commands_show_timed_out_and_a_late_ack_still_counts(ward, api):
    service = ward
    (c,) = api.post("/api/v1/fleet/commands", json={"name": "ping", "node_ids": ["loa-01"]}).json
    with service.db.session() as s:
        s.get(CommandRecord, c["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    rows = api.get("/api/v1/fleet/commands?node_id=loa-01").json
    assert rows[0]["id"] == c["id"] and rows[0]["status"] == "timed_out"
    assert api.get("/api/v1/fleet/commands?status=timed_out").json[0]["id"] == c["id"]
    ack = {"type": "ack", "protocol": 1, "node_id": "loa-01", "command_id": c["id"], "status": "ok",
           "at": proto.format_ts(datetime.now(UTC))}
    service.ingest(service.topics.ack("loa-01"), json.dumps(ack).encode())
    detail = api.get("/api/v1/fleet/nodes/loa-01").json
    assert detail["commands"][0]["status"] == "ok"


# ============================================================================================= pages
def test_fleet_pages_render_in_vietnamese_with_map_and_node_detail(ward, client, api):
    service = ward
    fleet.update_node(service, "loa-01", {"lat": 10.7769, "lon": 106.7009, "name": "Loa <chợ>"})
    service.ingest(service.topics.status("loa-01"), status("loa-01"))
    login(client)
    page = client.get("/fleet")
    assert page.status_code == 200 and "Hệ thống loa" in page.text and "Loa &lt;chợ&gt;" in page.text
    assert client.get("/fleet?presence=online&zone=to-1&drifting=0&ward=P1&q=loa").status_code == 200
    m = client.get("/fleet/map")
    assert m.status_code == 200 and "leaflet/leaflet.js" in m.text and "Bản đồ cụm loa" in m.text
    markers = json.loads(m.text.split('id="markers">', 1)[1].split("</script>", 1)[0])
    assert markers == [{"id": "loa-01", "name": "Loa <chợ>", "lat": 10.7769, "lon": 106.7009, "status": "online",
                        "zone": "to-1"}]
    assert "<chợ>" not in m.text  # JSON in the page is escaped for HTML
    assert client.get("/static/leaflet/leaflet.js").status_code == 200
    assert client.get("/static/leaflet/leaflet.css").status_code == 200
    assert client.get("/static/leaflet/images/marker-icon.png").status_code == 200
    assert api.get("/api/v1/fleet/map").json == markers
    api.post("/api/v1/fleet/commands", json={"name": "set_volume", "args": {"volume": 20}, "node_ids": ["loa-01"]})
    d = client.get("/fleet/nodes/loa-01")
    assert d.status_code == 200 and "Lịch sử lệnh" in d.text and "đang chờ" in d.text and "Âm lượng: 20" in d.text
    assert client.get("/fleet/nodes/nope").status_code == 404
    assert client.get("/fleet/import").status_code == 200
    assert client.get("/fleet/export.csv").data.decode().startswith("\ufeffnode_id,")


def test_panel_forms_import_and_send_commands(ward, client, service):
    login(client)
    token = csrf(client, "/fleet/import")
    r = client.post("/fleet/import", data={"csrf_token": token, "csv": "node_id,zone\nloa-09,to-9\n"})
    assert r.status_code == 400 and "import-error" in r.text
    assert "loa-09" not in [n.node_id for n in service.list_nodes()]
    r = client.post("/fleet/import", data={"csrf_token": token, "csv": "node_id,zone\nloa-09,to-2\n"})
    assert r.status_code == 200 and "loa-09," in r.text  # the new token, shown once
    token = csrf(client, "/fleet")
    r = client.post("/fleet/commands", data={"csrf_token": token, "target": "zone", "zone": "to-2",
                                             "name": "set_volume", "volume": "40", "next": "/fleet"},
                    follow_redirects=True)
    assert r.status_code == 200 and "Đã gửi lệnh tới 2 cụm loa" in r.text
    r = client.post("/fleet/commands", data={"csrf_token": token, "target": "node", "node_id": "loa-01",
                                             "name": "set_volume", "volume": "", "next": "https://evil.example/"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/fleet")


def test_fleet_api_requires_token_and_admin_for_changes(client, service):
    assert client.get("/api/v1/fleet/nodes").status_code == 401
    service.create_user("can-bo", "officer-password", role="officer")
    tok = client.post("/api/v1/auth/token", json={"username": "can-bo", "password": "officer-password"}).json["token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert client.get("/api/v1/fleet/nodes", headers=h).status_code == 200
    assert client.post("/api/v1/fleet/registry.csv", headers=h, data=b"node_id\nx\n").status_code == 403
    assert client.patch("/api/v1/fleet/nodes/x", headers=h, json={}).status_code == 403


# ============================================================================================= real stack
@pytest.mark.timeout(90)
def test_remote_control_acked_by_real_nodes_and_presence_from_heartbeats(panel_stack):
    """Real broker, panel and simulated nodes: zone volume, resync and reboot are acked; status carries
    clock/rssi/heartbeat; a node with a skewed clock is flagged as drifting."""
    stack = panel_stack
    stack.provision({"to-1": ["loa-01", "loa-02"], "to-2": ["loa-03"]})

    configs = [stack.node_config(n, heartbeat_s=1, clock_offset_ms=3000 if n == "loa-03" else 0)
               for n in ("loa-01", "loa-02", "loa-03")]
    stack.fleet = Fleet(configs)
    stack.fleet.start()
    stack.wait_online()
    cmds = stack.api("POST", "/fleet/commands", 202, json={"name": "set_volume", "args": {"volume": 42},
                                                           "zone": "to-1"})
    cmds += stack.api("POST", "/fleet/commands", 202, json={"name": "resync", "node_ids": ["loa-03"]})
    ids = {c["id"] for c in cmds}

    def acked() -> bool:
        rows = [c for c in stack.api("GET", "/fleet/commands", 200) if c["id"] in ids]
        return len(rows) == 3 and all(c["status"] == "ok" for c in rows)

    deadline = time.monotonic() + 20
    while not acked() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert acked(), stack.api("GET", "/fleet/commands", 200)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        nodes = {n["node_id"]: n for n in stack.api("GET", "/fleet/nodes", 200)["nodes"]}
        if nodes["loa-01"]["volume"] == 42 and nodes["loa-03"]["clock_offset_ms"] is not None \
                and nodes["loa-01"]["clock_offset_ms"] is not None:
            break
        time.sleep(0.2)
    assert nodes["loa-01"]["volume"] == 42 and nodes["loa-02"]["volume"] == 42
    assert nodes["loa-03"]["drifting"] and 2000 < nodes["loa-03"]["clock_offset_ms"] < 3500, nodes["loa-03"]
    assert not nodes["loa-01"]["drifting"] and nodes["loa-01"]["rssi_dbm"] is not None
    assert nodes["loa-01"]["heartbeat_s"] == 1 and all(n["presence"] == "online" for n in nodes.values())
    (reboot,) = stack.api("POST", "/fleet/commands", 202, json={"name": "reboot", "node_ids": ["loa-02"]})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = next(c for c in stack.api("GET", "/fleet/commands?node_id=loa-02", 200) if c["id"] == reboot["id"])
        if row["status"] != "pending":
            break
        time.sleep(0.2)
    assert row["status"] == "ok", row
