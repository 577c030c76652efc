"""Ethnic-minority language versions (issue 17 §3; broadcaster/versions.py): zones list their residents' languages
in order; an announcement gets versions (recordings: no engine here speaks them), each approved on its own; a
zone's plan plays the versions in its order, leaves out what is missing or unapproved and the panel says so before
the airing; each version has its own proof of play. Then end to end on a real broker with simulated nodes.
"""

from __future__ import annotations

import io
import subprocess
import time
from datetime import UTC, datetime, timedelta

from browser import login as browser_login
from browser import page_problems
from stack import wait_for
from test_notifications import PW
from test_uploads import make

from audio import ffmpeg_exe
from devices.protocol import format_ts, parse_ts

TEXT = "Ủy ban nhân dân phường thông báo: chủ nhật này tiêm phòng cho trẻ em tại trạm y tế."


def recording(tmp_path, seconds: float = 2.0) -> bytes:
    """A spoken-length recording (a tone through ffmpeg, as test_uploads makes them)."""
    return make(tmp_path, "mp3", seconds)


def tokens(client, service) -> dict[str, dict[str, str]]:
    for name, role in (("canbo", "officer"), ("lanhdao", "leader")):
        service.create_user(name, PW, role=role)
    out = {}
    for name in ("canbo", "lanhdao"):
        token = client.post("/api/v1/auth/token", json={"username": name, "password": PW}).json["token"]
        out[name] = {"Authorization": f"Bearer {token}"}
    return out


def plan_items(service, node_id: str, schedule_id: int) -> list[dict]:
    return [i for i in service.get_node(node_id).plan_payload["items"] if i["schedule_id"] == str(schedule_id)]


def test_zones_carry_their_languages_in_order(client, api):
    r = api.post("/api/v1/zones", json={"code": "thon-1", "name": "Thôn 1", "languages": ["vi", "km"]})
    assert r.status_code == 201 and r.json["languages"] == ["vi", "km"]
    r = api.post("/api/v1/zones", json={"code": "thon-2", "name": "Thôn 2"})
    assert r.json["languages"] == ["vi"]  # Vietnamese by default
    r = client.put("/api/v1/zones/thon-2/languages", json={"languages": ["HNJ", "vi"]}, headers=api.headers)
    assert r.status_code == 200 and r.json["languages"] == ["hnj", "vi"]
    r = client.put("/api/v1/zones/thon-2/languages", json={"languages": ["vi", "??"]}, headers=api.headers)
    assert r.status_code == 400
    assert {z["code"]: z["languages"] for z in api.get("/api/v1/zones").json}["thon-2"] == ["hnj", "vi"]
    r = api.post("/api/v1/zones", json={"code": "thon-4", "name": "Thôn 4", "languages": ["vi", "km", "vi-VN"]})
    assert r.status_code == 201 and r.json["languages"] == ["vi", "km"]  # each once: vi-VN is Vietnamese
    for bad in (["tiếng khmer"], ["x"], [""], ["vi"] * 9):
        r = api.post("/api/v1/zones", json={"code": "thon-3", "name": "Thôn 3", "languages": bad})
        assert r.status_code == 400 and r.json["error"]["code"] in ("invalid_language", "invalid_field"), (bad, r.json)
    assert [z["code"] for z in api.get("/api/v1/zones").json] == ["thon-1", "thon-2", "thon-4"]  # none half-made


def test_each_version_is_approved_on_its_own_and_plays_in_the_zones_order(client, api, service, tmp_path):
    people = tokens(client, service)
    api.post("/api/v1/zones", json={"code": "thon-1", "name": "Thôn 1", "languages": ["vi", "km", "hnj"]})
    api.post("/api/v1/zones", json={"code": "thon-2", "name": "Thôn 2"})
    api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "thon-1"})
    api.post("/api/v1/nodes", json={"node_id": "loa-02", "zone": "thon-2"})
    ann = api.post("/api/v1/announcements", json={"title": "Tiêm phòng", "text": TEXT, "approve": True}).json
    assert [v["language"] for v in ann["versions"]] == ["vi"]
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    sched = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["thon-1", "thon-2"],
                                                "start_at": format_ts(start)}).json
    versions_url = f"/api/v1/announcements/{ann['id']}/versions"

    # before any version: the panel says what is missing, and where; the Vietnamese plays meanwhile
    missing = api.get(versions_url).json["missing"]
    assert {(m["language"], m["reason"], tuple(m["zones"])) for m in missing} == {
        ("km", "missing", ("thon-1",)), ("hnj", "missing", ("thon-1",))}
    assert [i["title"] for i in plan_items(service, "loa-01", sched["id"])] == ["Tiêm phòng"]

    # the officer writes the Khmer text (no recording yet): still missing, for want of audio
    r = client.post(versions_url, json={"language": "km", "text": "សេចក្តីជូនដំណឹង"}, headers=people["canbo"])
    assert r.status_code == 201, r.json
    km = {v["language"]: v for v in r.json["versions"]}["km"]
    assert (km["approval"], km["media"], km["text"]) == ("draft", None, "សេចក្តីជូនដំណឹង")
    assert {m["language"]: m["reason"] for m in r.json["missing"]}["km"] == "no_audio"
    # her recording: waits for a leader, and does not play yet
    r = client.post(versions_url, data={"language": "km", "file": (io.BytesIO(recording(tmp_path)),
                                                                   "km.mp3")},
                    headers=people["canbo"], content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    km = {v["language"]: v for v in r.json["versions"]}["km"]
    assert km["approval"] == "submitted" and km["media"]["duration_ms"] > 1500 and not km["playable"]
    assert {m["language"]: m["reason"] for m in r.json["missing"]}["km"] == "not_approved"
    assert len(plan_items(service, "loa-01", sched["id"])) == 1
    # an officer may not approve it; a leader does, for this version alone
    assert client.post(f"{versions_url}/km/approve", headers=people["canbo"]).status_code == 403
    r = client.post(f"{versions_url}/km/approve", headers=people["lanhdao"])
    assert r.status_code == 200 and {v["language"]: v for v in r.json["versions"]}["km"]["playable"]
    assert [m["language"] for m in r.json["missing"]] == ["hnj"]

    items = plan_items(service, "loa-01", sched["id"])
    assert [i["title"] for i in items] == ["Tiêm phòng", "Tiêm phòng · Tiếng Khmer"]
    vi_end = parse_ts(items[0]["start"]) + timedelta(milliseconds=items[0]["media"]["duration_ms"])
    assert parse_ts(items[1]["start"]) == vi_end  # right after the Vietnamese, in the zone's order
    assert items[1]["media"]["sha256"] == km["media"]["sha256"]
    assert [i["title"] for i in plan_items(service, "loa-02", sched["id"])] == ["Tiêm phòng"]  # Vietnamese only

    # the order is the zone's: Khmer first
    r = client.put("/api/v1/zones/thon-1/languages", json={"languages": ["km", "vi"]}, headers=api.headers)
    assert r.status_code == 200 and r.json["languages"] == ["km", "vi"]
    assert [i["title"] for i in plan_items(service, "loa-01", sched["id"])] == ["Tiêm phòng · Tiếng Khmer",
                                                                                 "Tiêm phòng"]
    # a new recording voids that version's approval (only): out of the plan until approved again
    client.post(versions_url, data={"language": "km", "file": (io.BytesIO(
        recording(tmp_path, 2.5)), "km2.mp3")}, headers=people["canbo"], content_type="multipart/form-data")
    assert [i["title"] for i in plan_items(service, "loa-01", sched["id"])] == ["Tiêm phòng"]
    # rejecting says why; Vietnamese is the announcement itself
    assert client.post(f"{versions_url}/km/reject", json={"comment": ""}, headers=people["lanhdao"]).status_code == 400
    assert client.post(f"{versions_url}/km/reject", json={"comment": "Đọc sai tên trạm y tế"},
                       headers=people["lanhdao"]).status_code == 200
    r = client.post(versions_url, json={"language": "vi", "text": "x"}, headers=people["canbo"])
    assert r.status_code == 409 and r.json["error"]["code"] == "vietnamese_is_the_announcement"


def test_each_version_is_its_own_airing_on_the_loudspeakers(panel_stack, tmp_path):
    stack = panel_stack
    stack.api("POST", "/zones", 201, json={"code": "thon-k", "name": "Thôn Khmer", "languages": ["vi", "km"]})
    body = stack.api("POST", "/nodes", 201, json={"node_id": "loa-k1", "zone": "thon-k"})
    stack.tokens["loa-k1"], stack.zones["loa-k1"] = body["token"], "thon-k"
    stack.start_fleet()
    stack.wait_online()
    ann = stack.api("POST", "/announcements", 201, json={"title": "Tiêm phòng", "text": TEXT, "approve": True})
    wav = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                          "sine=frequency=330:duration=2", "-f", "wav", "-"], capture_output=True, check=True).stdout
    r = stack.http.post(f"{stack.base}/api/v1/announcements/{ann['id']}/versions",
                        data={"language": "km", "text": "សេចក្តីជូនដំណឹង"}, files={"file": ("km.wav", wav)}, timeout=30)
    assert r.status_code == 201, r.text
    stack.api("POST", f"/announcements/{ann['id']}/versions/km/approve", 200)
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    sched = stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["thon-k"],
                                                       "start_at": format_ts(start)})
    until = start.timestamp() - time.time() + ann["media"]["duration_ms"] / 1000 + 2 + 10
    plays = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(
        [x for x in stack.fleet.plays() if x["result"] == "finished"]), until, "both versions played")
    plays.sort(key=lambda p: p["actual_start"])
    km = {v["language"]: v for v in r.json()["versions"]}["km"]
    assert [p["sha256"] for p in plays] == [ann["media"]["sha256"], km["media"]["sha256"]]
    rows = wait_for(lambda: (lambda x: x if len(x) == 2 and all(r["result"] == "played" for r in x) else None)(
        stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)), 10, "proof of play per version")
    assert sorted(r["title"] for r in rows) == ["Tiêm phòng", "Tiêm phòng · Tiếng Khmer"]


def test_versions_on_the_announcement_page_on_a_phone(live, phone, tmp_path):
    """The officer adds the Khmer recording on the announcement's page; the leader approves that version there;
    what is still missing for a zone is said in words; nothing wrong with the page (axe, sideways scroll, English)."""
    live.api("admin", "PUT", "/zones/to-1/languages", 200, json={"languages": ["vi", "km", "hnj"]})
    ann = live.api("canbo", "POST", "/announcements", 201, json={"title": "Tiêm phòng", "text": TEXT})
    live.api("lanhdao", "POST", f"/announcements/{ann['id']}/approve", 200)
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    live.api("canbo", "POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-1"],
                                                       "start_at": format_ts(start)})
    browser_login(phone, live, "canbo")
    phone.goto(live.url(f"/announcements/{ann['id']}"))
    missing = phone.locator("[data-missing]")
    assert "Tiếng Khmer — chưa có phiên bản (to-1)" in missing.inner_text()
    phone.get_by_label("Ngôn ngữ").select_option("km")
    phone.get_by_label("Bản ghi âm do người nói tiếng đó đọc (mp3, wav, m4a, ogg, webm)").set_input_files(
        files=[{"name": "km.mp3", "mimeType": "audio/mpeg", "buffer": recording(tmp_path)}])
    phone.get_by_role("button", name="Lưu phiên bản").click()
    phone.wait_for_selector('[data-version="km"]')
    assert "chờ duyệt" in phone.locator('[data-version="km"]').inner_text().lower()
    assert page_problems(phone) == []
    browser_login(phone, live, "lanhdao")
    phone.goto(live.url(f"/announcements/{ann['id']}"))
    phone.locator('[data-version="km"]').get_by_role("button", name="Duyệt phiên bản này").click()
    phone.wait_for_load_state()
    assert "đã duyệt" in phone.locator('[data-version="km"]').inner_text().lower()
    assert "Tiếng Khmer" not in phone.locator("[data-missing]").inner_text()  # only H'Mông is still missing
    assert page_problems(phone) == []


def test_a_version_as_json_naming_audio_already_in_the_panel(client, api, service, tmp_path):
    """{language, text, media: <sha256>} — e.g. a recording uploaded before — and approve in the same call by a
    leader; an unknown sha is 404 and stores nothing."""
    people = tokens(client, service)
    ann = api.post("/api/v1/announcements", json={"title": "Tiêm phòng", "text": TEXT, "approve": True}).json
    up = client.post("/api/v1/announcements/upload", data={"title": "Bản ghi tiếng Khmer", "file": (
        io.BytesIO(recording(tmp_path)), "km.mp3")}, headers=people["canbo"], content_type="multipart/form-data")
    assert up.status_code == 201, up.json
    sha = up.json["media"]["sha256"]
    url = f"/api/v1/announcements/{ann['id']}/versions"
    r = client.post(url, json={"language": "km", "media": "ab" * 32}, headers=people["lanhdao"])
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_media"
    assert [v["language"] for v in api.get(url).json["versions"]] == ["vi"]
    assert client.post(url, json={"language": "km", "media": sha, "approve": True},
                       headers=people["canbo"]).status_code == 403  # an officer may not approve
    r = client.post(url, json={"language": "km", "text": "សេចក្តីជូនដំណឹង", "media": {"sha256": sha},
                               "approval": "approved"}, headers=people["lanhdao"])
    assert r.status_code == 201, r.json
    km = {v["language"]: v for v in r.json["versions"]}["km"]
    assert km["media"]["sha256"] == sha and km["approval"] == "approved" and km["playable"]
    # the Vietnamese text changes: the translation of the old text goes back to the leaders too
    r = client.put(f"/api/v1/announcements/{ann['id']}", json={"title": "Tiêm phòng", "text": TEXT + " Mang sổ."},
                   headers=people["lanhdao"])
    assert r.status_code == 200, r.json
    km = {v["language"]: v for v in api.get(url).json["versions"]}["km"]
    assert km["approval"] == "submitted" and not km["playable"]
