"""Issue 3 in the panel: ward audio defaults, per-announcement overrides, render cache, uploads, cleanup.

Real SQLite, real espeak and ffmpeg; the cloud TTS provider is the only fake (a local HTTP server), and it
doubles as a counter of how often speech was really rendered.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from audio_fakes import FakeCloudTTS
from conftest import ADMIN
from sqlalchemy import func, select
from test_audio_chain import ebur128, sound_spans
from test_panel import csrf, login, setup_zones_nodes

from audio import ENGINE_NAMES, decode, ffmpeg_exe
from broadcaster.app import create_app, runtime
from broadcaster.audio_settings import VOICES, get_ward_audio
from broadcaster.config import TestConfig
from broadcaster.i18n import catalogue
from broadcaster.models import Announcement, Media, Node, RenderCache

ADMIN_PASSWORD = ADMIN[1]
TEXT = "UBND phường thông báo: sáng thứ bảy, ngày 15/3/2025, tiêm phòng cho trẻ em tại trạm y tế."


# ------------------------------------------------------------------------------------------ helpers


def make_recording(tmp_path: Path, ext: str = "webm", seconds: float = 3.0, bitrate: str | None = None) -> bytes:
    codec = {"webm": ["-c:a", "libopus"], "mp3": ["-c:a", "libmp3lame"], "wav": [], "m4a": ["-c:a", "aac"],
             "ogg": ["-c:a", "libvorbis"]}[ext] + (["-b:a", bitrate] if bitrate else [])
    path = tmp_path / f"rec-{seconds}.{ext}"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=250:duration={seconds},volume=0.3", "-ac", "2", *codec, str(path)],
                   check=True, capture_output=True, timeout=60)
    return path.read_bytes()


def counts(service) -> tuple[int, int, int]:
    """(announcements, media rows, files in the media store)."""
    with service.db.session() as s:
        anns = s.scalar(select(func.count()).select_from(Announcement))
        media = s.scalar(select(func.count()).select_from(Media))
    return anns, media, len(list(service.media.root.iterdir()))


def audio_of(api, ann_id: int) -> bytes:
    r = api.get(f"/api/v1/announcements/{ann_id}/audio")
    assert r.status_code == 200
    return r.data


class Api:
    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        return lambda url, **kw: getattr(self.client, method)(url, headers=self.headers, **kw)


@pytest.fixture
def api(client):
    """The admin's API client (with ``put`` and ``.client``, unlike the shared fixture)."""
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}).json["token"]
    return Api(client, token)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[FakeCloudTTS]:
    tone = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                           "sine=frequency=300:duration=2", "-ac", "1", "-c:a", "libmp3lame", "-f", "mp3", "pipe:1"],
                          capture_output=True, check=True).stdout
    with FakeCloudTTS(tone, key="ward-key") as server:
        yield server


@pytest.fixture
def cloud_app(tmp_path: Path, cloud: FakeCloudTTS):
    """A panel whose engines are the cloud provider, then espeak."""
    app = create_app(TestConfig(tmp_path / "cloud-panel", TTS_ENGINES="http,espeak", TTS_HTTP_URL=cloud.url,
                                TTS_HTTP_KEY="ward-key", TTS_HTTP_TIMEOUT=5))
    runtime(app).service.create_user("admin", ADMIN_PASSWORD, role="admin")
    yield app
    runtime(app).db.dispose()


@pytest.fixture
def cloud_api(cloud_app):
    client = cloud_app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}).json["token"]
    return Api(client, token)


def user_api(client, service, username: str, role: str) -> Api:
    service.create_user(username, "password-123", role=role)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": "password-123"}).json["token"]
    return Api(client, token)


# ---------------------------------------------------------------------------------- ward settings


def test_ward_audio_settings_api(api, client, service):
    r = api.get("/api/v1/audio-settings")
    assert r.status_code == 200
    body = r.json
    assert body["saved"] is False and body["engine_order"] == ["espeak"]  # from the configuration
    assert (body["target_lufs"], body["bitrate"], body["lead_in_ms"]) == (-16.0, "64k", 600)
    assert body["choices"]["available_engines"] == ["gtts", "espeak"], "http needs a URL"
    assert "south" in body["choices"]["voices"]

    r = api.client.put("/api/v1/audio-settings", headers=api.headers, json={
        "engine_order": ["espeak", "gtts"], "voice": "central", "speed": 0.9, "target_lufs": -18,
        "bitrate": "96k", "lead_in_ms": 1200, "intro_chime": True})
    assert r.status_code == 200, r.json
    assert r.json["saved"] is True and r.json["engine_order"] == ["espeak", "gtts"]
    assert (r.json["voice"], r.json["speed"], r.json["target_lufs"]) == ("central", 0.9, -18.0)
    assert (r.json["intro_chime"], r.json["outro_chime"]) == (True, False)
    # A partial change keeps the rest.
    r = api.client.put("/api/v1/audio-settings", headers=api.headers, json={"outro_chime": True})
    assert (r.json["voice"], r.json["bitrate"], r.json["outro_chime"]) == ("central", "96k", True)

    for bad, field in (({"target_lufs": -5}, "target_lufs"), ({"engine_order": ["polly"]}, "engine_order"),
                       ({"voice": "klingon"}, "voice"), ({"speed": 3}, "speed"), ({"bitrate": "100k"}, "bitrate"),
                       ({"engine_order": []}, "engine_order"), ({"lead_in_ms": -1}, "lead_in_ms"),
                       ({"volume": 3}, "volume")):
        r = api.client.put("/api/v1/audio-settings", headers=api.headers, json=bad)
        assert r.status_code == 400 and r.json["error"]["field"].startswith(field), (bad, r.json)
    assert api.get("/api/v1/audio-settings").json["target_lufs"] == -18.0, "a refused change changes nothing"

    officer = user_api(client, service, "officer1", "officer")
    assert officer.get("/api/v1/audio-settings").status_code == 200
    assert officer.put("/api/v1/audio-settings", json={"speed": 1.2}).status_code == 403
    leader = user_api(client, service, "leader1", "leader")
    assert leader.put("/api/v1/audio-settings", json={"speed": 1.2}).status_code == 200


def test_ward_settings_shape_new_announcements(api):
    assert api.client.put("/api/v1/audio-settings", headers=api.headers,
                          json={"target_lufs": -20, "lead_in_ms": 1500, "bitrate": "48k"}).status_code == 200
    r = api.post("/api/v1/announcements", json={"title": "Tiêm phòng", "text": TEXT})
    assert r.status_code == 201 and r.json["status"] == "ready", r.json
    data = audio_of(api, r.json["id"])
    measured = ebur128(data)
    assert abs(measured["lufs"] + 20) <= 1.0 and measured["tp"] <= -1.0, measured
    assert abs(r.json["audio"]["integrated_lufs"] - measured["lufs"]) <= 0.2, "the panel shows what was measured"
    first = sound_spans(decode(data))[0][0]
    assert 1450 <= first <= 1650, first
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", "pipe:0"], input=data, capture_output=True).stderr
    assert re.search(rb"mono, .*48 kb/s", info), info


def test_settings_page(client, service):
    login(client)
    page = client.get("/audio-settings")
    assert page.status_code == 200
    assert "Thiết lập âm thanh" in page.text and "Độ to chuẩn" in page.text
    token = csrf(client, "/audio-settings")
    form = {"csrf_token": token, "engine_order": ["gtts", "espeak", ""], "voice": "south", "speed": "1.1",
            "target_lufs": "-17", "bitrate": "64k", "lead_in_ms": "800", "outro_chime": "on"}
    r = client.post("/audio-settings", data=form)
    assert r.status_code == 302
    ward = get_ward_audio(service)
    assert (ward.engine_order, ward.voice, ward.speed, ward.target_lufs) == (("gtts", "espeak"), "south", 1.1, -17)
    assert (ward.lead_in_ms, ward.intro_chime, ward.outro_chime) == (800, False, True)
    r = client.post("/audio-settings", data={**form, "target_lufs": "-40"})
    assert r.status_code == 400 and "Độ lớn chuẩn phải từ −24 đến −12 LUFS" in r.text
    assert 'value="-40"' in r.text, "the form keeps what was typed"
    assert get_ward_audio(service).target_lufs == -17


def test_officer_sees_settings_read_only(client, service):
    service.create_user("officer2", "password-123", role="officer")
    login(client, "officer2", "password-123")
    page = client.get("/audio-settings")
    assert page.status_code == 200 and "<fieldset disabled" in page.text
    token = csrf(client, "/audio-settings")
    assert client.post("/audio-settings", data={"csrf_token": token, "speed": "1.5"}).status_code == 403


# ---------------------------------------------------------------------------------- overrides


def test_per_announcement_override_in_the_api(api):
    plain = api.post("/api/v1/announcements", json={"title": "A", "text": TEXT}).json
    r = api.post("/api/v1/announcements", json={"title": "B", "text": TEXT, "audio": {
        "voice": "south", "speed": 1.25, "repeat": 2, "gap_ms": 1500, "intro_chime": True}})
    assert r.status_code == 201, r.json
    over = r.json
    assert over["audio"]["options"] == {"voice": "south", "speed": 1.25, "repeat": 2, "gap_ms": 1500,
                                        "intro_chime": True}
    assert over["engine"] == "espeak" and over["audio"]["source"] == "tts"
    assert over["media"]["sha256"] != plain["media"]["sha256"]
    spans = sound_spans(decode(audio_of(api, over["id"])))
    # [chime + speech], 1.5 s of silence, [chime + speech]
    assert len(spans) == 2, spans
    assert 1400 <= spans[1][0] - spans[0][1] <= 1650, spans
    measured = ebur128(audio_of(api, over["id"]))
    assert -17 <= measured["lufs"] <= -15 and measured["tp"] <= -1
    assert over["media"]["duration_ms"] > 2 * (plain["media"]["duration_ms"] - 900) / 1.25

    bad = api.post("/api/v1/announcements", json={"title": "C", "text": TEXT, "audio": {"repeat": 11}})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "audio.repeat"
    bad = api.post("/api/v1/announcements", json={"title": "C", "text": TEXT, "audio": {"voice": "en"}})
    assert bad.status_code == 400


def test_changing_overrides_later(api):
    ann = api.post("/api/v1/announcements", json={"title": "A", "text": TEXT}).json
    r = api.client.put(f"/api/v1/announcements/{ann['id']}/audio-options", headers=api.headers,
                       json={"repeat": 3, "gap_ms": 1000})
    assert r.status_code == 200, r.json
    assert r.json["audio"]["options"] == {"repeat": 3, "gap_ms": 1000}
    assert len(sound_spans(decode(audio_of(api, ann["id"])))) == 3
    # Back to the ward defaults: the first audio comes back from the cache.
    r = api.client.put(f"/api/v1/announcements/{ann['id']}/audio-options", headers=api.headers, json={})
    assert r.json["media"]["sha256"] == ann["media"]["sha256"] and r.json["audio"]["options"] == {}
    assert api.client.put("/api/v1/announcements/9999/audio-options", headers=api.headers,
                          json={}).status_code == 404


def test_override_in_the_web_form(client, api):
    login(client)
    token = csrf(client, "/announcements/new")
    page = client.get("/announcements/new").text
    assert 'name="audio_engine"' in page and 'name="audio_repeat"' in page and "Tùy chọn âm thanh" in page
    r = client.post("/announcements/new", data={"csrf_token": token, "title": "Họp tổ", "text": TEXT,
                                                 "audio_engine": "espeak", "audio_voice": "north+f3",
                                                 "audio_repeat": "2", "audio_gap_ms": "2000",
                                                 "audio_intro_chime": "off", "audio_outro_chime": "on"})
    assert r.status_code == 302
    ann_id = int(r.headers["Location"].rsplit("/", 1)[-1])
    ann = api.get(f"/api/v1/announcements/{ann_id}").json
    assert ann["audio"]["options"] == {"engine": "espeak", "voice": "north+f3", "repeat": 2, "gap_ms": 2000,
                                       "intro_chime": False, "outro_chime": True}
    # A bad value comes back with the form filled in and nothing saved.
    before = len(api.get("/api/v1/announcements").json)
    r = client.post("/announcements/new", data={"csrf_token": token, "title": "X", "text": TEXT,
                                                 "audio_speed": "9"})
    assert r.status_code == 400 and "Tốc độ đọc phải từ 0,5 đến 2,0" in r.text and TEXT in r.text
    assert len(api.get("/api/v1/announcements").json) == before

    # The detail page shows the engine, the measured loudness and the options form.
    detail = client.get(f"/announcements/{ann_id}").text
    assert "eSpeak (ngoại tuyến)" in detail
    assert re.search(r"-1[5-7]\.\d LUFS, đỉnh thực -\d+\.\d dBTP", detail), detail
    assert "đã chỉnh riêng cho thông báo này" in detail
    r = client.post(f"/announcements/{ann_id}/audio-options", data={"csrf_token": token, "audio_repeat": "1"})
    assert r.status_code == 302
    assert api.get(f"/api/v1/announcements/{ann_id}").json["audio"]["options"] == {"repeat": 1}


# -------------------------------------------------------------------------------------- cache


def test_resaving_unchanged_text_renders_nothing(cloud_api, cloud_app, cloud: FakeCloudTTS):
    service = runtime(cloud_app).service
    first = cloud_api.post("/api/v1/announcements", json={"title": "A", "text": TEXT}).json
    assert first["engine"] == "http" and first["status"] == "ready"
    assert len(cloud.requests) == 1
    sha = first["media"]["sha256"]

    # Render again, a second announcement with the same words (typed differently), edit without a change.
    assert cloud_api.post(f"/api/v1/announcements/{first['id']}/render").json["media"]["sha256"] == sha
    second = cloud_api.post("/api/v1/announcements", json={"title": "B", "text": "  " + TEXT.replace(" ", "  ")}).json
    assert second["media"]["sha256"] == sha and second["engine"] == "http"
    assert cloud_api.client.put(f"/api/v1/announcements/{first['id']}/audio-options", headers=cloud_api.headers,
                                json={}).json["media"]["sha256"] == sha
    assert len(cloud.requests) == 1, "nothing was rendered again"
    assert counts(service)[1] == 1

    # Anything that changes the sound renders: other words, another speed, a ward setting.
    cloud_api.post("/api/v1/announcements", json={"title": "C", "text": TEXT + " Xin cảm ơn."})
    assert len(cloud.requests) == 2
    cloud_api.client.put(f"/api/v1/announcements/{first['id']}/audio-options", headers=cloud_api.headers,
                         json={"speed": 1.2})
    assert len(cloud.requests) == 3
    cloud_api.client.put("/api/v1/audio-settings", headers=cloud_api.headers, json={"lead_in_ms": 900})
    cloud_api.post(f"/api/v1/announcements/{second['id']}/render")
    assert len(cloud.requests) == 4

    # A file that vanished from the store is rendered again instead of pointing at nothing.
    with service.db.session() as s:
        key_sha = s.get(RenderCache, s.get(Announcement, second["id"]).render_key).media_sha256
    service.media.path(key_sha).unlink()
    again = cloud_api.post(f"/api/v1/announcements/{second['id']}/render").json
    assert len(cloud.requests) == 5 and service.media.exists(again["media"]["sha256"])


def test_fallback_is_shown_and_not_cached(cloud_api, cloud: FakeCloudTTS):
    cloud.mode = "error_json"  # the provider's quota is exhausted
    ann = cloud_api.post("/api/v1/announcements", json={"title": "A", "text": TEXT}).json
    assert ann["status"] == "ready" and ann["engine"] == "espeak"
    cloud.mode = "raw"  # the provider is back: the next render asks it again
    again = cloud_api.post(f"/api/v1/announcements/{ann['id']}/render").json
    assert again["engine"] == "http" and len([r for r in cloud.requests if r[0] == "POST"]) == 2
    cloud.key = "rotated"  # a wrong key: the announcement still gets audio, from espeak
    r = cloud_api.post("/api/v1/announcements", json={"title": "B", "text": "Thông báo khác."}).json
    assert r["engine"] == "espeak" and r["status"] == "ready"


def test_announcement_may_choose_the_engine(cloud_api, cloud: FakeCloudTTS):
    ann = cloud_api.post("/api/v1/announcements", json={"title": "A", "text": TEXT,
                                                        "audio": {"engine": "espeak"}}).json
    assert ann["engine"] == "espeak" and cloud.requests == []
    assert cloud_api.get("/api/v1/audio-settings").json["choices"]["available_engines"] == ["gtts", "espeak", "http"]


# -------------------------------------------------------------------------------------- uploads


def test_upload_api_runs_the_chain(api, service, tmp_path):
    data = make_recording(tmp_path, "webm", 3)
    r = api.post("/api/v1/announcements/upload", data={
        "file": (io.BytesIO(data), "ghi-am.webm"), "title": "Thông báo mất điện",
        "text": "Lịch cắt điện ngày mai", "repeat": "2", "gap_ms": "1000", "intro_chime": "true"},
        content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    ann = r.json
    assert ann["engine"] == "upload" and ann["audio"]["source"] == "upload" and ann["status"] == "ready"
    assert ann["audio"]["options"] == {"repeat": 2, "gap_ms": 1000, "intro_chime": True}
    measured = ebur128(audio_of(api, ann["id"]))
    assert -17 <= measured["lufs"] <= -15 and measured["tp"] <= -1
    expected = 600 + 2 * (2000 + 250 + 3000) + 1000 + 300
    assert abs(ann["media"]["duration_ms"] - expected) <= 200, ann["media"]
    # the original is kept so that options can change later
    r = api.client.put(f"/api/v1/announcements/{ann['id']}/audio-options", headers=api.headers, json={"repeat": 1})
    assert r.status_code == 200 and abs(r.json["media"]["duration_ms"] - (600 + 3000 + 300)) <= 200


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [("text", "upload_not_audio", "không phải âm thanh"),
     ("truncated", "upload_corrupt", "bị hỏng hoặc không đầy đủ"),
     ("empty", "upload_empty", "rỗng")],
)
def test_upload_api_refuses_bad_files_and_stores_nothing(api, client, service, tmp_path, kind, code, words):
    good = make_recording(tmp_path, "mp3", 4)
    payload = {"text": "Đây là văn bản, không phải âm thanh.".encode() * 50, "truncated": good[: len(good) // 2],
               "empty": b""}[kind]
    before = counts(service)
    r = api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(payload), "tin.mp3"),
                                                       "title": "Tin"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"]["code"] == code, r.json
    assert words in r.json["error"]["message"] and "“tin.mp3”" in r.json["error"]["message"]
    assert r.json["error"]["field"] == "file"
    # the same refusal in English when the client asks for it (one error shape, the request's language)
    vi = r.json["error"]["message"]
    r = client.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(payload), "tin.mp3"), "title": "Tin"},
                    content_type="multipart/form-data", headers={**api.headers, "Accept-Language": "en"})
    assert r.json["error"]["code"] == code and r.json["error"]["message"] not in ("", vi), r.json
    assert counts(service) == before, "nothing stored"


def test_upload_limits(tmp_path):
    app = create_app(TestConfig(tmp_path / "p", MAX_UPLOAD_BYTES=400_000, MAX_UPLOAD_DURATION_MS=60_000))
    service = runtime(app).service
    service.create_user("admin", ADMIN_PASSWORD, role="admin")
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}).json["token"]
    api = Api(client, token)
    big = make_recording(tmp_path, "wav", 3)
    r = api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(big), "to.wav"),
                                                       "title": "T"}, content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"]["code"] == "upload_too_large"
    assert "quá lớn" in r.json["error"]["message"]
    long = make_recording(tmp_path, "mp3", 75, bitrate="16k")
    assert len(long) < 400_000 < len(big)
    r = api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(long), "dai.mp3"),
                                                       "title": "T"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"]["code"] == "upload_too_long"
    assert r.json["error"]["message"] == "Tệp âm thanh “dai.mp3” dài 1 phút 15 giây, vượt giới hạn 1 phút"
    assert counts(service)[0] == 0
    r = api.post("/api/v1/announcements/upload", data={"title": "T"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"]["code"] == "file_required"
    app.config["MAX_CONTENT_LENGTH"] = 300_000  # what the web server accepts at all
    r = api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(big), "to.wav"), "title": "T"},
                 content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"]["code"] == "upload_too_large"
    assert counts(service)[0] == 0
    runtime(app).db.dispose()


def test_upload_web_form(client, api, service, tmp_path):
    login(client)
    page = client.get("/announcements/upload").text
    assert re.search(r'<input type="file" name="file" accept="audio/\*" capture', page), page
    assert 'enctype="multipart/form-data"' in page
    token = csrf(client, "/announcements/upload")
    before = counts(service)
    r = client.post("/announcements/upload", data={
        "csrf_token": token, "title": "Thông báo", "file": (io.BytesIO(b"%PDF-1.4" + b"x" * 3000),
                                                            "bien-ban.m4a")}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert "Tệp “bien-ban.m4a” không phải âm thanh hợp lệ" in r.text
    assert 'value="Thông báo"' in r.text, "the title is kept"
    assert counts(service) == before
    r = client.post("/announcements/upload", data={
        "csrf_token": token, "title": "Thông báo", "audio_repeat": "1",
        "file": (io.BytesIO(make_recording(tmp_path, "ogg")), "ghi-am.ogg")},
        content_type="multipart/form-data")
    assert r.status_code == 302
    detail = client.get(r.headers["Location"]).text
    assert "Bản ghi âm tải lên" in detail and "LUFS" in detail


# -------------------------------------------------------------------------------------- cleanup


def test_cleanup_never_deletes_referenced_media(api, service):
    setup_zones_nodes(api)
    ann = api.post("/api/v1/announcements", json={"title": "A", "text": TEXT, "approve": True}).json
    in_plan = ann["media"]["sha256"]
    start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"], "start_at": start})
    assert r.status_code == 201, r.json
    with service.db.session() as s:
        old_plan = s.scalar(select(Node).where(Node.node_id == "loa-01")).plan_payload
    assert in_plan in json.dumps(old_plan), "the plan names the media"
    # New options: new audio, which the approval did not cover (release policy R5) — out of the plans until a
    # leader approves again; then the nodes get a new plan naming the new file.
    ann2 = api.client.put(f"/api/v1/announcements/{ann['id']}/audio-options", headers=api.headers,
                          json={"repeat": 2}).json
    current = ann2["media"]["sha256"]
    assert ann2["approval"] == "submitted" and ann2["awaiting_approval"] and not ann2["playable"]
    with service.db.session() as s:
        assert s.scalar(select(Node).where(Node.node_id == "loa-01")).plan_payload["items"] == []
    assert api.post(f"/api/v1/announcements/{ann['id']}/approve").status_code == 200
    with service.db.session() as s:
        new_plan = s.scalar(select(Node).where(Node.node_id == "loa-01")).plan_payload
        assert current in json.dumps(new_plan) and in_plan not in json.dumps(new_plan)
        assert new_plan["version"] > old_plan["version"]
        # A plan still held for a node (say, published before the change and not rebuilt yet) is the
        # only thing that names the old file now.
        s.scalar(select(Node).where(Node.node_id == "loa-03")).plan_payload = old_plan
    # An orphan: rendered once, then replaced, never scheduled.
    other = api.post("/api/v1/announcements", json={"title": "B", "text": "Thông báo thử nghiệm."}).json
    orphan = other["media"]["sha256"]
    api.client.put(f"/api/v1/announcements/{other['id']}/audio-options", headers=api.headers, json={"repeat": 3})

    recent = api.post("/api/v1/media/cleanup", json={"dry_run": False}).json  # default: keep the last 24 h
    assert recent["deleted"] == [] and recent["kept_recent"] >= 1

    dry = api.post("/api/v1/media/cleanup", json={"dry_run": True, "min_age_hours": 0}).json
    assert dry["deleted"] == [f"{orphan}.mp3"] and service.media.exists(orphan)
    done = api.post("/api/v1/media/cleanup", json={"dry_run": False, "min_age_hours": 0}).json
    assert done["deleted"] == [f"{orphan}.mp3"] and done["bytes_freed"] > 0
    assert not service.media.exists(orphan)
    for sha in (in_plan, current):
        assert service.media.exists(sha), "media in a plan or an announcement is never deleted"
    with service.db.session() as s:
        assert s.get(Media, orphan) is None and s.get(Media, in_plan) is not None
        assert not list(s.scalars(select(RenderCache).where(RenderCache.media_sha256 == orphan)))
    # Going back to the orphan's settings renders again (the cache entry went with the file).
    back = api.client.put(f"/api/v1/announcements/{other['id']}/audio-options", headers=api.headers, json={}).json
    assert back["status"] == "ready" and service.media.exists(back["media"]["sha256"])

    officer = user_api(api.client, service, "o", "officer")
    assert officer.post("/api/v1/media/cleanup", json={}).status_code == 403


def test_cleanup_keeps_uploaded_originals(api, service, tmp_path):
    data = make_recording(tmp_path, "wav", 2)
    ann = api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(data), "a.wav"),
                                                         "title": "T"}, content_type="multipart/form-data").json
    report = api.post("/api/v1/media/cleanup", json={"dry_run": False, "min_age_hours": 0}).json
    assert report["deleted"] == []
    names = {p.name for p in service.media.root.iterdir()}
    assert f"{ann['media']['sha256']}.mp3" in names and any(n.endswith(".src") for n in names)


# --------------------------------------------------------------------------------- catalogue, docs


def test_dynamic_audio_strings_are_translated():
    vi = catalogue("vi")
    keys = [f"engine.{n}" for n in (*ENGINE_NAMES, "upload")] + [f"voice.{v}" for v in VOICES]
    keys += [f"error.{c}" for c in ("invalid_engine", "invalid_voice", "invalid_speed", "invalid_repeat",
                                     "invalid_gap", "invalid_target_lufs", "invalid_bitrate", "invalid_lead_in",
                                     "file_required")]
    assert [k for k in keys if k not in vi] == []


def test_openapi_references_resolve(client):
    spec = client.get("/api/v1/openapi.json").json
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(spec)))
    assert {"AudioOptionsIn", "AudioSettingsIn", "CleanupIn"} <= refs
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    upload = spec["paths"]["/announcements/upload"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
