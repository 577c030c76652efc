"""An officer's and a leader's day with announcements, in Chromium at 390×844 (issue 15): write, preview, save
(a double tap saves once), watch the speech being produced, listen, send for approval; the leader approves from
the approvals page; a draft is deleted and the deletion undone. Every page on the way is clean."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from audio_fakes import FakeGoogleTTS
from browser import login, page_problems
from playwright.sync_api import expect

from broadcaster.audio_settings import set_ward_audio
from broadcaster.web.views import PlayTimeProblem, one_play_start

TEXT = "Trạm y tế phường tiêm phòng cho trẻ em sáng thứ Bảy. Khi có cháy gọi 114."


@pytest.fixture
def slow_speech(live, monkeypatch):
    """Google's speech service that never answers (a ward office without internet): gTTS gives up after 1.5 s and
    the panel falls back to espeak, so producing speech takes long enough to watch its progress."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

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


def test_preview_in_place_back_after_saving_and_scheduling_by_day_and_time(live, phone):
    """"Xem trước" shows the spoken text without leaving the page, so Back after saving lands on the form, not on
    Chromium's "resend the form" error (net::ERR_CACHE_MISS) and nothing is saved twice. Then the schedule card:
    "Ngày phát" (dd/mm/yyyy, today) and "Giờ phát" as said ("6h30"); a wrong time is refused naming the field;
    a time already gone today is scheduled for tomorrow, and the message says so."""

    page = phone
    login(page, live, "canbo")
    page.goto(live.url("/announcements/new"))
    page.get_by_label("Tiêu đề").fill("Họp tổ dân phố")
    page.get_by_label("Nội dung cần đọc").fill(TEXT)
    page.get_by_role("button", name=re.compile("^Xem trước")).click()
    expect(page.get_by_text("một một bốn")).to_be_visible()
    assert page.url == live.url("/announcements/new")  # shown in place: no POST result in the history
    expect(page.get_by_label("Nội dung cần đọc")).to_have_value(TEXT)
    clean(page)
    page.get_by_role("button", name="Lưu và tạo giọng đọc").click()
    expect(page.get_by_label("Nghe bản tin")).to_be_visible(timeout=30000)
    ann_id = int(page.url.rstrip("/").split("/")[-1])

    page.go_back()
    page.wait_for_load_state()
    assert not page.url.startswith("chrome-error"), page.url
    assert page.url == live.url("/announcements/new"), page.url
    expect(page.get_by_role("heading", name=re.compile("Bản tin mới"))).to_be_visible()
    clean(page)
    saved = [a for a in live.api("canbo", "GET", "/announcements", 200) if a["title"] == "Họp tổ dân phố"]
    assert [a["id"] for a in saved] == [ann_id]  # saved once

    tz = live.service.local(datetime.now(UTC)).tzinfo
    today = datetime.now(tz).date()
    later = today + timedelta(days=3)
    page.goto(live.url(f"/announcements/{ann_id}"))
    card = page.get_by_role("region", name="Lên lịch phát bản tin này")
    expect(card.get_by_label("Ngày phát")).to_have_value(today.strftime("%d/%m/%Y"))
    expect(card.get_by_role("link", name="Lặp lại hằng tuần hoặc nhiều giờ…")).to_have_attribute(
        "href", re.compile(rf"/schedules/new\?.*announcement_id={ann_id}\b"))
    clean(page)

    def mine() -> list[dict]:
        return [s for s in live.api("canbo", "GET", "/schedules", 200) if s["announcement_id"] == ann_id]

    card.get_by_label("Tổ dân phố 1").check()
    card.get_by_label("Ngày phát").fill(later.strftime("%d/%m/%Y"))
    card.get_by_label("Giờ phát").fill("25h")
    card.get_by_role("button", name="Lên lịch").click()
    expect(page.get_by_role("alert").filter(has_text="Giờ phát không hợp lệ (“25h”)")).to_be_visible()
    assert mine() == []  # nothing created; what was typed is still there
    expect(card.get_by_label("Giờ phát")).to_have_value("25h")
    expect(card.get_by_label("Ngày phát")).to_have_value(later.strftime("%d/%m/%Y"))
    expect(card.get_by_label("Tổ dân phố 1")).to_be_checked()
    clean(page)

    card.get_by_label("Giờ phát").fill("6h30")
    card.get_by_role("button", name="Lên lịch").click()
    expect(page.get_by_text(f"Đã lên lịch phát lúc 06:30:00 {later.strftime('%d/%m/%Y')}.")).to_be_visible()
    [first] = mine()
    assert datetime.fromisoformat(first["start_at"]) == datetime(later.year, later.month, later.day, 6, 30, tzinfo=tz)
    assert first["zones"] == ["to-1"]

    page.goto(live.url(f"/announcements/{ann_id}"))  # today (as filled in) at a time already gone: tomorrow
    card.get_by_label("Tổ dân phố 2").check()
    card.get_by_label("Giờ phát").fill("0 giờ")
    card.get_by_role("button", name="Lên lịch").click()
    tomorrow = today + timedelta(days=1)
    expect(page.get_by_text(f"Giờ này hôm nay đã qua: đã lên lịch cho ngày mai {tomorrow.strftime('%d/%m/%Y')} "
                            "lúc 00:00.")).to_be_visible()
    clean(page)
    second = [s for s in mine() if s["id"] != first["id"]]
    assert [datetime.fromisoformat(s["start_at"]) for s in second] == [
        datetime(tomorrow.year, tomorrow.month, tomorrow.day, 0, 0, tzinfo=tz)]


def test_the_day_and_time_of_one_play_as_an_officer_writes_them(app):
    """"Ngày phát" + "Giờ phát" of the schedule card (broadcaster/web/views.py ``one_play_start``): a time already
    gone today means tomorrow; a day gone, several times or a wrong value are refused naming the field."""

    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime(2026, 12, 7, 15, 55, 20, tzinfo=tz)
    assert one_play_start("10/12/2026", "6h30", now) == (datetime(2026, 12, 10, 6, 30, tzinfo=tz), False)
    assert one_play_start("7/12", "5 giờ chiều", now) == (datetime(2026, 12, 7, 17, 0, tzinfo=tz), False)
    assert one_play_start("07/12/2026", "6h30", now) == (datetime(2026, 12, 8, 6, 30, tzinfo=tz), True)
    assert one_play_start("07/12/2026", "15h55", now) == (datetime(2026, 12, 8, 15, 55, tzinfo=tz), True)
    assert one_play_start("07/12/2026", "15h56", now) == (datetime(2026, 12, 7, 15, 56, tzinfo=tz), False)
    with app.test_request_context("/"):  # the refusals are said in the request's language (Vietnamese)
        for day, time, field, says in (("", "6h30", "day", "Ngày phát"), ("32/12/2026", "6h30", "day", "Ngày phát"),
                                       ("06/12/2026", "6h30", "day", "Ngày phát 06/12/2026 đã qua"),
                                       ("08/12/2026", "", "time", "Giờ phát"),
                                       ("08/12/2026", "18h sáng", "time", "Giờ phát không hợp lệ"),
                                       ("08/12/2026", "6h30, 17h", "time", "Lặp lại hằng tuần hoặc nhiều giờ")):
            with pytest.raises(PlayTimeProblem) as refused:
                one_play_start(day, time, now)
            assert refused.value.field == field and says in refused.value.text, (day, time, refused.value.text)

