"""An officer's and a leader's day with announcements, in Chromium at 390×844 (issue 15): write, preview, save
(a double tap saves once), watch the speech being produced, listen, send for approval; the leader approves from
the approvals page; a draft is deleted and the deletion undone. Every page on the way is clean."""

from __future__ import annotations

import re

import pytest
from audio_fakes import FakeGoogleTTS
from browser import login, page_problems
from playwright.sync_api import expect

TEXT = "Trạm y tế phường tiêm phòng cho trẻ em sáng thứ Bảy. Khi có cháy gọi 114."


@pytest.fixture
def slow_speech(live, monkeypatch):
    """Google's speech service that never answers (a ward office without internet): gTTS gives up after 1.5 s and
    the panel falls back to espeak, so producing speech takes long enough to watch its progress."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    from broadcaster.audio_settings import set_ward_audio

    with FakeGoogleTTS(b"", mode="hang") as google:
        monkeypatch.setattr(live.service.config, "GTTS_URL", google.url)
        monkeypatch.setattr(live.service.config, "GTTS_TIMEOUT", 1.5)
        set_ward_audio(live.service, {"engine_order": ["gtts", "espeak"]}, live.service.get_user_by_name("admin"))
        live.app.config["RENDER_WAIT_S"] = 0.2
        yield google


def clean(page) -> None:
    problems = page_problems(page) + [e for e in page.script_errors if "Failed to load resource" not in e]
    assert problems == [], "\n".join(problems)


def test_an_officer_writes_listens_submits_and_a_leader_approves(live, slow_speech, phone):
    page = phone
    login(page, live, "canbo")
    page.goto(live.url("/announcements"))
    clean(page)
    page.get_by_role("link", name=re.compile("Bản tin mới")).click()
    page.get_by_label("Tiêu đề").fill("Tiêm phòng cho trẻ")
    page.get_by_label("Nội dung cần đọc").fill(TEXT)
    page.get_by_role("button", name=re.compile("^Xem trước")).click()
    expect(page.get_by_text("một một bốn")).to_be_visible()  # what the loudspeaker will say
    expect(page.get_by_label("Tiêu đề")).to_have_value("Tiêm phòng cho trẻ")  # nothing typed is lost
    expect(page.get_by_label("Nội dung cần đọc")).to_have_value(TEXT)
    clean(page)

    page.get_by_role("button", name="Lưu và tạo giọng đọc").dblclick()  # a double tap
    progress = page.get_by_role("progressbar", name="Đang tạo giọng đọc")
    expect(progress).to_be_visible(timeout=5000)
    expect(page.get_by_role("status").filter(has_text=re.compile(r"Đang tạo giọng đọc… \d+%"))).to_be_visible()
    clean(page)
    player = page.get_by_label("Nghe bản tin")
    expect(player).to_be_visible(timeout=30000)  # the page reloads itself when the speech is ready
    expect(progress).to_have_count(0)
    expect(page.get_by_text("Độ to: chuẩn")).to_be_visible()
    clean(page)
    saved = [a for a in live.api("canbo", "GET", "/announcements", 200) if a["title"] == "Tiêm phòng cho trẻ"]
    assert len(saved) == 1 and saved[0]["status"] == "ready"  # the double tap saved once
    ann_id = saved[0]["id"]

    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.locator("h1 .badge", has_text="Chờ duyệt")).to_be_visible()
    assert live.api("canbo", "GET", f"/announcements/{ann_id}", 200)["approval"] == "submitted"
    clean(page)

    page.context.clear_cookies()
    login(page, live, "lanhdao")
    page.goto(live.url("/approvals"))
    clean(page)
    item = page.get_by_role("region", name=re.compile("Tiêm phòng cho trẻ"))
    expect(item.get_by_label(re.compile("Nghe bản tin"))).to_be_visible()
    item.get_by_role("button", name="Duyệt", exact=True).click()
    expect(page.get_by_text("Không có bản tin nào chờ duyệt.")).to_be_visible()
    assert live.api("lanhdao", "GET", f"/announcements/{ann_id}", 200)["approval"] == "approved"
    page.goto(live.url(f"/announcements/{ann_id}"))
    expect(page.locator("h1 .badge", has_text="Đã duyệt")).to_be_visible()
    clean(page)


def test_an_officer_deletes_a_draft_and_undoes_it(live, phone):
    draft = live.api("canbo", "POST", "/announcements", 201, json={"title": "Nháp họp tổ", "text": TEXT})
    page = phone
    login(page, live, "canbo")
    page.goto(live.url(f"/announcements/{draft['id']}"))
    expect(page.locator("h1 .badge", has_text="Nháp")).to_be_visible()
    clean(page)
    page.get_by_role("button", name="Xóa").click()
    expect(page.get_by_text("Đã xóa bản tin “Nháp họp tổ”.")).to_be_visible()
    expect(page.get_by_role("link", name="Nháp họp tổ")).to_have_count(0)
    assert live.api("canbo", "GET", f"/announcements/{draft['id']}", 200)["archived_at"]
    clean(page)
    page.get_by_role("button", name="Hoàn tác").click()
    expect(page.get_by_text("Đã khôi phục bản tin.")).to_be_visible()
    assert live.api("canbo", "GET", f"/announcements/{draft['id']}", 200)["archived_at"] is None

    # the list: search and filters with labels, the archived ones apart with "Khôi phục"
    live.api("canbo", "POST", f"/announcements/{draft['id']}/archive", 200)
    page.goto(live.url("/announcements"))
    page.get_by_label("Tìm bản tin").fill("họp tổ")
    page.get_by_label("Hiển thị").select_option(label="Đã lưu trữ")
    page.get_by_role("button", name="Lọc").click()
    expect(page.get_by_role("link", name="Nháp họp tổ")).to_be_visible()
    clean(page)
    page.get_by_role("button", name=re.compile("^Khôi phục")).click()
    assert live.api("canbo", "GET", f"/announcements/{draft['id']}", 200)["archived_at"] is None
    page.goto(live.url("/announcements?approval=draft"))
    expect(page.get_by_role("link", name="Nháp họp tổ")).to_be_visible()
    clean(page)
