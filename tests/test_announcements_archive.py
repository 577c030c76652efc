"""Issue 15 for announcements, without a browser: preview then save, background rendering with progress, one-time
form keys, delete (archive) with undo, search and filter, plain Vietnamese on officers' pages."""

from __future__ import annotations

import io
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_panel import csrf, login

from audio import ffmpeg_exe
from broadcaster import approval
from broadcaster.audio_settings import set_ward_audio
from broadcaster.models import Announcement

TEXT = "Ủy ban nhân dân phường thông báo: sáng mai tiêm phòng cho trẻ em tại nhà văn hoá tổ 3."
OFFICER = ("canbo", "officer-password-1")
OFFICER2 = ("canbo2", "officer-password-2")
LEADER = ("chutich", "leader-password-1")


@pytest.fixture
def people(client, service, api):
    """API callers: admin, two officers and a leader; zone to-3 with one node."""
    tokens = {"admin": api.headers}
    for (name, pw), role in ((OFFICER, "officer"), (OFFICER2, "officer"), (LEADER, "leader")):
        service.create_user(name, pw, role=role)
        tok = client.post("/api/v1/auth/token", json={"username": name, "password": pw}).json["token"]
        tokens[name] = {"Authorization": f"Bearer {tok}"}
    api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ 3"})
    api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-3"})

    def call(who: str, method: str, url: str, status: int | None = None, **kw):
        r = client.open(url, method=method, headers=tokens[who], **kw)
        if status is not None:
            assert r.status_code == status, (r.status_code, r.json)
        return r

    return call


def form_key(page: str) -> str:
    match = re.search(r'name="form_key" value="([^"]+)"', page)
    assert match, "no one-time form key on the page"
    return match.group(1)


def wait_rendered(client, ann_id: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = client.get(f"/announcements/{ann_id}/status").json
        if st["state"] != "rendering" or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


# ------------------------------------------------------------------------------------ preview, save, render
def test_preview_then_save_saves_with_everything_typed(client, api):
    login(client)
    token = csrf(client, "/announcements/new")
    page = client.post("/announcements/preview", data={
        "csrf_token": token, "title": "Tiêm phòng", "text": "Gọi 114 khi có cháy", "audio_repeat": "2",
        "audio_voice": "south"}).text
    # the preview keeps the title, the text and the audio options, and shows what will be said
    assert 'value="Tiêm phòng"' in page and "Gọi 114 khi có cháy" in page and "một một bốn" in page
    assert 'name="audio_repeat" type="number" inputmode="numeric" min="1" max="10" value="2"' in page
    assert '<option value="south" selected' in page
    # its form saves: it posts to /announcements/new, not back to the preview
    assert re.search(r'<form method="post" action="/announcements/new">', page)
    assert api.get("/api/v1/announcements").json == []
    r = client.post("/announcements/new", data={"csrf_token": token, "form_key": form_key(page),
                                                "title": "Tiêm phòng", "text": "Gọi 114 khi có cháy",
                                                "audio_repeat": "2", "audio_voice": "south"})
    assert r.status_code == 302 and re.search(r"/announcements/\d+$", r.headers["Location"])
    (ann,) = api.get("/api/v1/announcements").json
    assert ann["title"] == "Tiêm phòng" and ann["audio"]["options"] == {"repeat": 2, "voice": "south"}


def test_saving_renders_in_the_background_with_progress(app, client, service, api):
    app.config["RENDER_WAIT_S"] = 0  # the page answers at once; the status says how far speech is
    seen: list[int | None] = []
    original = service.set_render_progress

    def record(announcement_id, percent, **kw):
        seen.append(percent)
        original(announcement_id, percent, **kw)

    service.set_render_progress = record
    login(client)
    page = client.get("/announcements/new").text
    r = client.post("/announcements/new", data={"csrf_token": csrf(client, "/announcements/new"),
                                                "form_key": form_key(page), "title": "Họp tổ", "text": TEXT})
    assert r.status_code == 302
    ann_id = int(r.headers["Location"].rsplit("/", 1)[-1])
    assert api.get(f"/api/v1/announcements/{ann_id}").json["title"] == "Họp tổ"  # the draft is stored at once
    st = wait_rendered(client, ann_id)
    assert st == {"state": "ready", "progress": 100, "error": None, "approval": "draft"}
    for _ in range(50):  # the thread clears its progress after the render
        if seen and seen[-1] is None:
            break
        time.sleep(0.05)
    assert seen == [0, 10, 25, 40, 85, 95, None]
    detail = client.get(f"/announcements/{ann_id}").text
    assert "<audio" in detail and "<progress" not in detail


def test_the_detail_page_shows_the_progress_bar_while_rendering(client, service):
    login(client)
    ann = service.create_announcement("Họp tổ", TEXT, render=False)
    service.set_render_progress(ann.id, 40)  # a render is under way (as the thread would say)
    page = client.get(f"/announcements/{ann.id}").text
    assert re.search(r'<progress id="render-progress" max="100" value="40">', page)
    assert '<label for="render-progress">Đang tạo giọng đọc</label>' in page
    assert 'aria-live="polite"' in page and "announcements.js" in page
    assert client.get(f"/announcements/{ann.id}/status").json["state"] == "rendering"
    assert client.get("/announcements/9999/status").status_code == 404


def test_a_failed_render_keeps_the_draft_and_says_why_in_vietnamese(app, client, service, api):
    admin = service.get_user_by_name("admin")
    set_ward_audio(service, {"engine_order": ["http"]}, admin)  # no provider configured: no engine at all
    login(client)
    page = client.get("/announcements/new").text
    r = client.post("/announcements/new", data={"csrf_token": csrf(client, "/announcements/new"),
                                                "form_key": form_key(page), "title": "Cắt điện", "text": TEXT})
    assert r.status_code == 302
    ann_id = int(r.headers["Location"].rsplit("/", 1)[-1])
    assert wait_rendered(client, ann_id)["state"] == "failed"
    ann = api.get(f"/api/v1/announcements/{ann_id}").json
    assert ann["status"] == "draft" and ann["text"] == TEXT and ann["render_progress"] is None
    detail = client.get(f"/announcements/{ann_id}").text
    assert "Không có bộ đọc nào dùng được" in detail and ">Thử lại</button>" in detail
    st = client.get(f"/announcements/{ann_id}/status").json
    assert st["state"] == "failed" and st["error"].startswith("Không có bộ đọc")
    # back to a working engine: "Thử lại" produces the speech
    set_ward_audio(service, {"engine_order": ["espeak"]}, admin)
    r = client.post(f"/announcements/{ann_id}/render", data={"csrf_token": csrf(client, f"/announcements/{ann_id}"),
                                                             "form_key": form_key(detail)})
    assert r.status_code == 302
    assert wait_rendered(client, ann_id)["state"] == "ready"


# --------------------------------------------------------------------------------------- one-time form keys
def test_the_same_new_announcement_form_twice_makes_one(client, api):
    login(client)
    page = client.get("/announcements/new").text
    data = {"csrf_token": csrf(client, "/announcements/new"), "form_key": form_key(page), "title": "Một lần",
            "text": TEXT}
    first = client.post("/announcements/new", data=data)
    second = client.post("/announcements/new", data=data)
    assert first.status_code == 302 and second.status_code == 303
    assert second.headers["Location"].endswith(first.headers["Location"])
    assert [a["title"] for a in api.get("/api/v1/announcements").json] == ["Một lần"]


def test_the_same_upload_form_twice_makes_one(client, api, tmp_path):

    path = tmp_path / "tin.wav"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=2,volume=0.5", str(path)], check=True, timeout=60)
    login(client)
    page = client.get("/announcements/upload").text
    assert "LUFS" not in page
    token, key = csrf(client, "/announcements/upload"), form_key(page)
    for expected in (302, 303):
        r = client.post("/announcements/upload", data={"csrf_token": token, "form_key": key, "title": "Ghi âm",
                                                       "file": (io.BytesIO(path.read_bytes()), "tin.wav")},
                        content_type="multipart/form-data")
        assert r.status_code == expected
    assert [a["title"] for a in api.get("/api/v1/announcements").json] == ["Ghi âm"]


def test_every_post_form_of_the_announcement_pages_has_a_form_key():
    root = Path(__file__).resolve().parent.parent / "broadcaster" / "templates"
    for name in ("announcements.html", "announcement_new.html", "announcement_detail.html", "announcement_edit.html",
                 "announcement_upload.html", "_approval_box.html", "approvals.html", "_audio_options_box.html"):
        text = (root / name).read_text(encoding="utf-8")
        forms = re.findall(r'<form method="post".*?</form>', text, re.S)
        assert forms, name
        for form in forms:
            assert "{{ form_key() }}" in form, f"{name}: a POST form without form_key()"


# ----------------------------------------------------------------------------------------- archive (API)
def test_archive_and_restore_through_the_api(people):
    ann = people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Nháp cũ", "text": TEXT}).json
    other = people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Còn dùng", "text": TEXT}).json
    # another officer may not delete it; its author and a leader may
    r = people("canbo2", "POST", f"/api/v1/announcements/{ann['id']}/archive", 403)
    assert r.json["error"]["code"] == "forbidden"
    archived = people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/archive", 200).json
    assert archived["archived_at"] and archived["playable"] is False
    listed = [a["id"] for a in people("canbo", "GET", "/api/v1/announcements", 200).json]
    assert listed == [other["id"]]
    assert [a["id"] for a in people("canbo", "GET", "/api/v1/announcements?archived=true", 200).json] == [ann["id"]]
    # an archived announcement is not sent for approval (and a submitted one leaves the leaders' queue)
    r = people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/submit", 409)
    assert r.json["error"]["code"] == "announcement_archived"
    # an archived announcement cannot be scheduled
    start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    r = people("admin", "POST", "/api/v1/schedules", 409,
               json={"announcement_id": ann["id"], "zones": ["to-3"], "start_at": start})
    assert r.json["error"]["code"] == "announcement_archived"
    restored = people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/restore", 200).json
    assert restored["archived_at"] is None
    people("chutich", "POST", f"/api/v1/announcements/{other['id']}/archive", 200)  # a leader: anyone's
    for verb in ("archive", "restore"):
        r = people("canbo", "POST", f"/api/v1/announcements/9999/{verb}", 404)
        assert r.json["error"]["code"] == "not_found"


def test_an_announcement_that_will_still_play_cannot_be_archived(people, service):
    ann = people("admin", "POST", "/api/v1/announcements", 201,
                 json={"title": "Lịch sắp phát", "text": TEXT, "approve": True}).json
    start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    sched = people("admin", "POST", "/api/v1/schedules", 201,
                   json={"announcement_id": ann["id"], "zones": ["to-3"], "start_at": start}).json
    assert [i["title"] for i in service.get_node("loa-01").plan_payload["items"]] == ["Lịch sắp phát"]
    r = people("admin", "POST", f"/api/v1/announcements/{ann['id']}/archive", 409)
    assert r.json["error"]["code"] == "announcement_in_use" and r.json["error"]["message"]
    people("admin", "POST", f"/api/v1/schedules/{sched['id']}/cancel")
    people("admin", "POST", f"/api/v1/announcements/{ann['id']}/archive", 200)


def test_an_archived_announcement_never_enters_a_plan(people, service):
    ann = people("admin", "POST", "/api/v1/announcements", 201,
                 json={"title": "Đã duyệt", "text": TEXT, "approve": True}).json
    start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    people("admin", "POST", "/api/v1/schedules", 201,
           json={"announcement_id": ann["id"], "zones": ["to-3"], "start_at": start})
    with service.db.session() as s:  # archived behind the service's back (e.g. an old row): still never played
        s.get(Announcement, ann["id"]).archived_at = datetime.now(UTC)
    service.publish_plans(None)
    assert service.get_node("loa-01").plan_payload["items"] == []


def test_search_and_filter(people):
    people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Tiêm phòng", "text": TEXT})
    b = people("canbo", "POST", "/api/v1/announcements", 201,
               json={"title": "Cắt điện", "text": "Chiều nay CẮT ĐIỆN từ 14 giờ."}).json
    people("canbo", "POST", f"/api/v1/announcements/{b['id']}/submit", 200)
    titles = [a["title"] for a in people("canbo", "GET", "/api/v1/announcements?q=cắt điện", 200).json]
    assert titles == ["Cắt điện"]
    titles = [a["title"] for a in people("canbo", "GET", "/api/v1/announcements?approval=draft", 200).json]
    assert titles == ["Tiêm phòng"]
    assert people("canbo", "GET", "/api/v1/announcements?approval=nope", 400).json["error"]["code"]


# ------------------------------------------------------------------------------------------ archive (pages)
def test_delete_with_undo_and_the_archived_filter_in_the_pages(client, service, people):
    ann = people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Nháp thừa", "text": TEXT}).json
    login(client, *OFFICER)
    detail = client.get(f"/announcements/{ann['id']}").text
    assert ">Xóa</button>" in detail
    token = csrf(client, f"/announcements/{ann['id']}")
    r = client.post(f"/announcements/{ann['id']}/archive", data={"csrf_token": token, "form_key": form_key(detail)})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/announcements?undo={ann['id']}")
    page = client.get(r.headers["Location"]).text
    assert "Đã xóa bản tin “Nháp thừa”" in page and ">Hoàn tác</button>" in page
    assert f'href="/announcements/{ann["id"]}"' not in page  # hidden from the list
    archived = client.get("/announcements?show=archived").text
    assert "Nháp thừa" in archived and ">Khôi phục</button>" in archived
    r = client.post(f"/announcements/{ann['id']}/restore", data={"csrf_token": token, "form_key": form_key(page),
                                                                 "next": "/announcements"})
    assert r.status_code == 302
    assert f'href="/announcements/{ann["id"]}"' in client.get("/announcements").text
    # the list shows the approval state and filters by it, with labelled controls
    page = client.get("/announcements?q=nháp&approval=draft").text
    assert "Nháp thừa" in page and '<span class="badge approval-draft">Nháp</span>' in page
    assert "Tìm bản tin<input type=\"search\"" in page and "Trạng thái duyệt<select" in page


def test_officer_pages_speak_of_loudness_not_lufs(client, service, people):
    ann = people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Độ to", "text": TEXT}).json
    login(client, *OFFICER)
    page = client.get(f"/announcements/{ann['id']}").text
    assert "Độ to: chuẩn" in page
    for jargon in ("LUFS", "dBTP", "SHA-256", "sha256", "Thông số kỹ thuật"):
        assert jargon not in page, jargon
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    login(client)  # the admin finds the figures folded under "Thông số kỹ thuật"
    page = client.get(f"/announcements/{ann['id']}").text
    assert re.search(r"<summary>Thông số kỹ thuật</summary>\s*<p><span data-loudness>-1\d\.\d LUFS", page)


def test_an_archived_submission_leaves_the_approval_queue(people, service):
    ann = people("canbo", "POST", "/api/v1/announcements", 201, json={"title": "Gửi nhầm", "text": TEXT}).json
    people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/submit", 200)
    assert [a.id for a in approval.queue(service)] == [ann["id"]]
    people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/archive", 200)
    assert approval.queue(service) == []
    r = people("chutich", "POST", f"/api/v1/announcements/{ann['id']}/approve", 409)
    assert r.json["error"]["code"] == "announcement_archived"
