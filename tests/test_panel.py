"""Panel through its HTTP surfaces (web forms with CSRF, REST API) on a real SQLite database."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.app import create_app, runtime
from broadcaster.config import TestConfig
from broadcaster.i18n import catalogue
from broadcaster.models import NodeEvent
from devices import protocol as proto
from schedules.timeutil import parse_local

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Ủy ban nhân dân phường thông báo: sáng thứ bảy tiêm phòng cho trẻ em tại trạm y tế."


def csrf(client, url: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username="admin", password="admin-password-1"):
    token = csrf(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def setup_zones_nodes(api):
    assert api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ dân phố 3"}).status_code == 201
    assert api.post("/api/v1/zones", json={"code": "to-5", "name": "Tổ dân phố 5"}).status_code == 201
    creds = {}
    for node_id, zone in (("loa-01", "to-3"), ("loa-02", "to-3"), ("loa-03", "to-5")):
        r = api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})
        assert r.status_code == 201, r.json
        creds[node_id] = r.json["token"]
    return creds


# ------------------------------------------------------------------------------------- web pages
def test_pages_require_login_and_render_vietnamese(client):
    assert client.get("/").status_code == 302
    assert login(client).status_code == 302
    page = client.get("/").text
    assert "Tổng quan" in page and "Bản tin" in page and "Cụm loa" in page
    assert 'name="viewport"' in page  # usable on an officer's phone
    assert "Overview" in client.get("/?lang=en").text


def test_login_rejects_wrong_password_and_missing_csrf(client):
    assert login(client, password="nope").status_code == 401
    r = client.post("/login", data={"username": "admin", "password": "admin-password-1"})
    assert r.status_code == 400  # no CSRF token


def test_form_keeps_text_on_error(client):
    login(client)
    token = csrf(client, "/announcements/new")
    r = client.post("/announcements/new", data={"title": "Tin", "text": "x" * 6000, "csrf_token": token})
    assert r.status_code == 400
    assert "quá dài" in r.text and "x" * 6000 in r.text  # clear Vietnamese error, nothing lost


def test_officer_flow_through_forms(client, service):
    login(client)
    token = csrf(client, "/nodes")
    client.post("/zones", data={"code": "to-3", "name": "Tổ dân phố 3", "kind": "residential_group",
                                "csrf_token": token})
    r = client.post("/nodes", data={"node_id": "loa-09", "name": "Loa 9", "zone": "to-3", "csrf_token": token},
                    follow_redirects=True)  # post → redirect → the credentials page (a GET: reloading it is safe)
    assert r.status_code == 200 and "chỉ hiển thị một lần" in r.text
    shown = re.search(r'class="secret">([^<]+)<', r.text).group(1)
    assert service.node_for_token(shown).node_id == "loa-09"
    r = client.post("/announcements/new", data={"title": "Tiêm phòng", "text": TEXT, "csrf_token": token})
    assert r.status_code == 302
    detail = client.get(r.headers["Location"]).text
    assert "<audio" in detail and "espeak" in detail
    ann_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    audio = client.get(f"/announcements/{ann_id}/audio")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg" and len(audio.data) > 1000
    start = (datetime.now(UTC) + timedelta(hours=2)).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%dT%H:%M:%S")
    r = client.post(f"/announcements/{ann_id}/schedule",
                    data={"zones": ["to-3"], "start_at": start, "priority": "normal", "csrf_token": token})
    assert r.status_code == 302
    node = service.get_node("loa-09")
    assert node.plan_payload["items"] == []  # scheduled, but only approved content is ever published
    assert client.post(f"/announcements/{ann_id}/approve", data={"csrf_token": token}).status_code == 302
    node = service.get_node("loa-09")
    assert [i["title"] for i in node.plan_payload["items"]] == ["Tiêm phòng"]


# ------------------------------------------------------------------------------------------- API
def test_api_requires_token(client):
    r = client.get("/api/v1/nodes")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    r = client.get("/api/v1/nodes", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401


def test_openapi_document_lists_every_route(client, app):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {f"/api/v1{p}" for p in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            assert path in documented, f"{path} missing from OpenAPI"


def test_schedule_publishes_signed_plan_only_to_target_zone(api, service):
    creds = setup_zones_nodes(api)
    assert len(creds) == 3
    ann = api.post("/api/v1/announcements", json={"title": "Tiêm phòng", "text": TEXT, "approve": True}).json
    assert ann["status"] == "ready" and ann["engine"] == "espeak"
    assert ann["media"]["duration_ms"] > 1000
    service.publisher.messages.clear()
    start_local = (datetime.now(UTC) + timedelta(hours=1)).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).replace(microsecond=0)
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                            "start_at": start_local.strftime("%Y-%m-%dT%H:%M:%S")})
    assert r.status_code == 201, r.json
    assert r.json["start_at"] == proto.format_ts(start_local.astimezone(UTC))
    topics = sorted(t for t, *_ in service.publisher.messages)
    assert topics == ["loaphuong/v1/nodes/loa-01/plan", "loaphuong/v1/nodes/loa-02/plan"]
    key = proto.load_public_key(service.public_key_b64)
    for topic, payload, qos, retain in service.publisher.messages:
        assert qos == 1 and retain
        plan = proto.decode_signed(proto.Plan, payload, key, node_id=topic.split("/")[3])
        (item,) = plan.items
        assert item.media.sha256 == ann["media"]["sha256"]
        assert proto.parse_ts(item.start) == start_local.astimezone(UTC)
    # media download needs the node's token
    url = ann["media"]["url"].replace("http://127.0.0.1:5000", "")
    assert api.get(url).status_code == 200


def test_media_requires_node_token(client, api, service):
    creds = setup_zones_nodes(api)
    ann = api.post("/api/v1/announcements", json={"title": "T", "text": TEXT}).json
    path = f"/media/{ann['media']['sha256']}.mp3"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get(path, headers={"Authorization": f"Bearer {creds['loa-03']}"})
    assert r.status_code == 200

    assert hashlib.sha256(r.data).hexdigest() == ann["media"]["sha256"]
    assert client.get("/media/../../etc/passwd.mp3", headers={"Authorization": f"Bearer {creds['loa-03']}"}
                      ).status_code == 404


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"title": "T", "text": ""}, "text_required"),
        ({"title": "T", "text": "   \n "}, "text_required"),
        ({"title": "T", "text": "a" * 100_000}, "text_too_long"),
        ({"title": "", "text": "Xin chào"}, "title_required"),
        ({"text": "Xin chào"}, "title_required"),
        ({"title": "T", "text": "Xin chào", "extra": 1}, "invalid_field"),
    ],
)
def test_bad_announcements_refused_with_clear_error(api, payload, code):
    r = api.post("/api/v1/announcements", json=payload)
    assert r.status_code == 400
    assert r.json["error"]["code"] == code and r.json["error"]["message"]
    assert api.get("/api/v1/announcements").json == []  # nothing half-stored


def test_non_json_body_refused(api):
    r = api.post("/api/v1/announcements", data="not json", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"zones": []}, "invalid_field"),
        ({"zones": ["nowhere"]}, "unknown_zone"),
        ({"start_at": "yesterday"}, "invalid_time"),
        ({"start_at": "2020-01-01T06:00:00"}, "time_in_past"),
        ({"announcement_id": 999}, "unknown_announcement"),
        ({"priority": "urgent"}, "invalid_field"),
    ],
)
def test_bad_schedules_refused(api, change, code):
    setup_zones_nodes(api)
    ann = api.post("/api/v1/announcements", json={"title": "T", "text": TEXT}).json
    body = {"announcement_id": ann["id"], "zones": ["to-3"], "start_at": "2099-01-01T06:00:00", **change}
    r = api.post("/api/v1/schedules", json=body)
    assert r.status_code in (400, 404, 409) and r.json["error"]["code"] == code
    assert api.get("/api/v1/schedules").json == []


def test_node_ids_with_wildcards_refused(api):
    for bad in ("loa+1", "loa#", "a/b", "", "UPPER", "x" * 65):
        r = api.post("/api/v1/nodes", json={"node_id": bad})
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_node_id", bad


def test_render_failure_keeps_draft(tmp_path):
    # gTTS only, pointed at a closed port: rendering fails fast, the draft stays with a reason.
    app = create_app(TestConfig(tmp_path, TTS_ENGINES="gtts", GTTS_URL="http://127.0.0.1:9", GTTS_TIMEOUT=2))
    ann = runtime(app).service.create_announcement("Tin", TEXT)
    assert ann.status == "draft" and ann.render_error and ann.media_sha256 is None
    assert runtime(app).service.get_announcement(ann.id).text == TEXT


# ------------------------------------------------------------------------------ ingest (node → panel)
def test_ingest_validates_and_deduplicates(api, service):
    setup_zones_nodes(api)
    topics = service.topics
    now = proto.format_ts(datetime.now(UTC))
    ev = {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": 1, "at": now, "event": "plan_applied",
          "plan_version": 5}
    service.ingest(topics.events("loa-01"), json.dumps(ev).encode())
    service.ingest(topics.events("loa-01"), json.dumps(ev).encode())  # duplicate
    service.ingest(topics.events("loa-02"), json.dumps(ev).encode())  # node id mismatch → dropped
    service.ingest(topics.events("loa-01"), b"{not json")
    service.ingest(topics.events("ghost"), json.dumps({**ev, "node_id": "ghost"}).encode())

    with service.db.session() as s:
        assert s.scalar(select(func.count()).select_from(NodeEvent)) == 1
    # stale last-will from an older session does not mark a live node offline
    online = {"type": "status", "protocol": 1, "node_id": "loa-01", "state": "online", "session": 4}
    service.ingest(topics.status("loa-01"), json.dumps(online).encode())
    service.ingest(topics.status("loa-01"), json.dumps({**online, "state": "offline", "session": 3}).encode())
    assert service.get_node("loa-01").state == "online"
    service.ingest(topics.status("loa-01"), json.dumps({**online, "state": "offline"}).encode())
    assert service.get_node("loa-01").state == "offline"


@pytest.mark.parametrize("raw_sqlite", [True, False], ids=["sqlite-driver", "portable"])
def test_ingest_batch_stores_each_event_once_in_arrival_order(api, service, raw_sqlite):
    """What the bridge hands over in one go: duplicates inside the batch and against the database, a forged
    and an unregistered sender, a status between events — every valid event once, nothing else."""

    setup_zones_nodes(api)
    topics = service.topics
    now = proto.format_ts(datetime.now(UTC))

    def ev(node_id: str, seq: int, **kw) -> tuple[str, bytes]:
        body = {"type": "event", "protocol": 1, "node_id": node_id, "seq": seq, "at": now,
                "event": "playback_finished", "item_id": f"i{seq}", **kw}
        return topics.events(node_id), json.dumps(body).encode()

    service.raw_sqlite_ingest = raw_sqlite
    service.ingest(*ev("loa-01", 2))  # already stored before the batch
    status = {"type": "status", "protocol": 1, "node_id": "loa-02", "state": "online", "session": 1}
    cmd1, cmd2 = service.send_command("loa-01", "ping"), service.send_command("loa-02", "ping")

    def ack(node_id: str, command_id: str) -> tuple[str, bytes]:
        body = {"type": "ack", "protocol": 1, "node_id": node_id, "command_id": command_id, "status": "ok",
                "at": now}
        return topics.ack(node_id), json.dumps(body).encode()

    batch = [ack("loa-01", cmd1.id), ack("loa-01", cmd2.id),  # the second one names another node's command
             ev("loa-01", 1), ev("loa-01", 2), ev("loa-01", 3), ev("loa-01", 3),
             (topics.status("loa-02"), json.dumps(status).encode()),
             ev("loa-02", 7), (topics.events("loa-02"), json.dumps({"node_id": "loa-01"}).encode()),
             (topics.events("ghost"), ev("ghost", 1)[1]), (topics.events("loa-01"), b"\xff\xfe"),
             ev("loa-02", 5)]
    service.ingest_batch(batch)
    with service.db.session() as s:
        rows = sorted(s.execute(select(NodeEvent.node_id, NodeEvent.seq)).all())
    assert rows == [("loa-01", 1), ("loa-01", 2), ("loa-01", 3), ("loa-02", 5), ("loa-02", 7)]
    assert service.get_node("loa-02").state == "online"
    assert [c.status for c in service.list_commands("loa-01")] == ["ok"]
    assert [c.status for c in service.list_commands("loa-02")] == ["pending"]
    assert service.get_node("loa-01").last_event_seq == 3 and service.get_node("loa-02").last_event_seq == 7
    service.ingest_batch([ev("loa-02", 6)])  # an older seq arriving late does not move last_event_seq back
    assert service.get_node("loa-02").last_event_seq == 7


def test_both_event_storage_paths_store_the_same_values(api, service):
    """The SQLite driver path (plain tuples, timestamps as text) and the portable SQLAlchemy path (PostgreSQL)
    must read back identically through the ORM: aware UTC datetimes to the microsecond, every column."""

    setup_zones_nodes(api)
    body = {"type": "event", "protocol": 1, "seq": 9, "at": "2026-03-01T23:59:59.987Z",
            "event": "playback_stopped", "item_id": "s12-a", "schedule_id": "12", "plan_version": 1772409599000,
            "sha256": "ab" * 32, "scheduled_start": "2026-03-01T23:59:58Z", "actual_start": "2026-03-01T23:59:58.004Z",
            "offset_ms": 4, "reason": "preempted"}
    for node_id, raw in (("loa-01", True), ("loa-02", False)):
        service.raw_sqlite_ingest = raw
        service.ingest_batch([(service.topics.events(node_id), json.dumps({**body, "node_id": node_id}).encode())])
    with service.db.session() as s:
        rows = {e.node_id: e for e in s.scalars(select(NodeEvent))}
    skip = {"id", "node_id", "received_at"}
    as_dicts = {n: {c.name: getattr(e, c.name) for c in NodeEvent.__table__.columns if c.name not in skip}
                for n, e in rows.items()}
    assert as_dicts["loa-01"] == as_dicts["loa-02"]
    first = rows["loa-01"]
    assert first.at == datetime(2026, 3, 1, 23, 59, 59, 987000, tzinfo=UTC)
    assert first.actual_start == datetime(2026, 3, 1, 23, 59, 58, 4000, tzinfo=UTC)
    assert first.schedule_id == 12 and first.plan_version == 1772409599000 and first.reason == "preempted"
    assert abs(rows["loa-01"].received_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert abs(rows["loa-02"].received_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_statuses_in_one_batch_keep_their_order_per_node(api, service):
    """Statuses of a batch share one transaction; a node's online → will (offline) in the same batch ends
    offline, a will from an older session after a newer online does not take a live node offline."""
    setup_zones_nodes(api)
    topics = service.topics

    def st(node_id: str, state: str, session: int) -> tuple[str, bytes]:
        body = {"type": "status", "protocol": 1, "node_id": node_id, "state": state, "session": session}
        return topics.status(node_id), json.dumps(body).encode()

    service.ingest_batch([st("loa-01", "online", 1), st("loa-02", "online", 5), st("loa-01", "offline", 1),
                          st("loa-02", "offline", 4), (topics.status("ghost"), st("ghost", "online", 1)[1])])
    assert service.get_node("loa-01").state == "offline"
    assert service.get_node("loa-02").state == "online" and service.get_node("loa-02").session == 5


def test_plays_show_an_item_cut_short_as_stopped_with_the_reason(api, service):
    setup_zones_nodes(api)
    now = proto.format_ts(datetime.now(UTC))
    base = {"type": "event", "protocol": 1, "node_id": "loa-01", "at": now, "item_id": "s1-a",
            "scheduled_start": now}
    service.ingest_batch([
        (service.topics.events("loa-01"), json.dumps({**base, "seq": 1, "event": "playback_started",
                                                      "actual_start": now, "offset_ms": 4}).encode()),
        (service.topics.events("loa-01"), json.dumps({**base, "seq": 2, "event": "playback_stopped",
                                                      "reason": "preempted"}).encode()),
    ])
    (row,) = service.plays(node_id="loa-01")
    assert row["result"] == "stopped" and row["reason"] == "preempted" and row["offset_ms"] == 4
    assert api.get("/api/v1/plays?node_id=loa-01").json[0]["result"] == "stopped"


# ------------------------------------------------------------------------------------ time & i18n
def test_local_time_parsing_around_utc_midnight():
    # 07:00 in Vietnam is 00:00 UTC the same day; 06:59 is the previous UTC day.
    assert parse_local("2026-03-02T07:00:00") == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert parse_local("2026-03-02T06:59:00") == datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    assert parse_local("2026-03-02T06:00:00Z") == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert parse_local("2026-03-02T06:00:00+07:00") == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


def test_every_ui_string_has_a_vietnamese_translation():
    vi = catalogue("vi")
    sources = list((ROOT / "broadcaster").rglob("*.html")) + list((ROOT / "broadcaster").rglob("*.py"))
    missing = set()
    for path in sources:
        # ``_("…")`` itself, not a call that ends in an underscore (``super().__init__("…")``)
        for text in re.findall(r'''(?<![\w.])_\(("[^"]+"|'[^']+')''', path.read_text(encoding="utf-8")):
            text = text[1:-1]
            # dynamic prefixes like "state." are checked below
            if (not text.endswith(".") or " " in text) and text not in vi:
                missing.add(text)
    for prefix, values in {"state.": ("online", "offline", "stopped", "unknown"),
                           "status.": ("draft", "ready", "active", "cancelled"),
                           "play.": ("scheduled", "playing", "played", "failed", "stopped"),
                           "priority.": ("normal", "priority", "emergency")}.items():
        missing |= {prefix + v for v in values if prefix + v not in vi}
    assert not missing, f"untranslated: {sorted(missing)}"


def test_every_code_word_has_english_words_too():
    """English is the source language, but the words of codes (``state.online``, ``priority.normal``) are keys:
    each one the Vietnamese pages can show has English words, so the English pages never show a key."""

    vi, en = catalogue("vi"), catalogue("en")
    keys = {k for k in vi if re.fullmatch(r"[a-z_]+(\.[a-z0-9_+]+)+", k) and not k.startswith("error.")}
    assert keys, "no code words found"
    assert sorted(k for k in keys if k not in en) == []


def test_domain_packages_do_not_import_web_or_mqtt():
    forbidden = re.compile(r"^\s*(from|import)\s+(flask|paho|broadcaster|werkzeug)\b", re.M)
    for package in ("schedules", "devices", "audio"):
        for path in (ROOT / package).rglob("*.py"):
            assert not forbidden.search(path.read_text()), f"{path} imports web/MQTT code"
    sim_forbidden = re.compile(r"^\s*(from|import)\s+(flask|broadcaster|schedules|audio)\b", re.M)
    for path in (ROOT / "firmware-sim").rglob("*.py"):
        text = path.read_text()
        assert not sim_forbidden.search(text), f"{path} imports panel code"
        for m in re.finditer(r"^\s*from\s+devices(\.\w+)?\s+import|^\s*import\s+devices(\.\w+)?", text, re.M):
            assert (m.group(1) or m.group(2)) in (".protocol",), f"{path}: simulator may use only devices.protocol"


def test_reprovisioned_node_starts_a_new_event_epoch(api, service):
    """A node whose storage was wiped restarts seq and session at 1; after re-provisioning nothing is dropped."""
    setup_zones_nodes(api)
    topics = service.topics
    now = proto.format_ts(datetime.now(UTC))
    ev = {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": 1, "at": now, "event": "plan_applied"}
    status = {"type": "status", "protocol": 1, "node_id": "loa-01", "state": "online", "session": 9}
    service.ingest(topics.events("loa-01"), json.dumps(ev).encode())
    service.ingest(topics.status("loa-01"), json.dumps(status).encode())
    r = api.post("/api/v1/nodes/loa-01/token")
    assert r.status_code == 201 and r.json["token"]
    assert service.node_for_token(r.json["token"]).node_id == "loa-01"
    service.ingest(topics.events("loa-01"), json.dumps(ev).encode())  # seq 1 again, new epoch → kept
    service.ingest(topics.status("loa-01"), json.dumps({**status, "state": "offline", "session": 1}).encode())

    with service.db.session() as s:
        assert s.scalar(select(func.count()).select_from(NodeEvent).where(NodeEvent.node_id == "loa-01")) == 2
    assert service.get_node("loa-01").state == "offline"
