"""An officer's and a leader's day across the panel, on a 390×844 phone in Chromium, the way the issue's check
does it: controls found by their visible Vietnamese labels, results verified through the API.

The officer writes and sends an announcement for approval; the leader is told (notification badge), approves it
from the notification; the officer schedules it by typing "6h30 thứ Hai–thứ Sáu" in one field and finds it in
the week calendar. Every page on the way is clean (no sideways scroll, no axe serious/critical violation, no
English, ISO date or raw code)."""

from __future__ import annotations

import re
import time

from browser import PHONE, login, new_page, page_problems
from playwright.sync_api import expect

TEXT = "Ủy ban nhân dân phường thông báo: sáng thứ Bảy tổng vệ sinh môi trường tại các tổ dân phố."


def clean(page) -> None:
    problems = page_problems(page) + [e for e in page.script_errors
                                      if not re.search(r"Failed to load resource.*status of 40[09]", e)]
    assert problems == [], "\n".join(problems)


def open_menu_item(page, name: str) -> None:
    """Through the folded phone menu, as a person does."""
    page.get_by_role("button", name="Danh mục").click()
    page.get_by_role("navigation", name="Menu chính").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()


def test_an_officers_and_a_leaders_day_on_the_phone(live, phone, chromium):
    officer = phone
    login(officer, live, "canbo")
    clean(officer)
    # the menu is folded on a phone: one row of header, the menu one tap away
    assert officer.get_by_role("navigation", name="Menu chính").is_hidden()
    header = officer.locator("header.top").bounding_box()
    assert header is not None and header["height"] < 100, header

    # ---- write, save, send for approval
    open_menu_item(officer, "Bản tin")
    clean(officer)
    officer.get_by_role("link", name=re.compile("Bản tin mới")).click()
    officer.get_by_label("Tiêu đề").fill("Tổng vệ sinh môi trường")
    officer.get_by_label("Nội dung cần đọc").fill(TEXT)
    officer.get_by_role("button", name="Lưu và tạo giọng đọc").click()
    expect(officer.get_by_label("Nghe bản tin")).to_be_visible(timeout=30000)
    ann_id = int(re.search(r"/announcements/(\d+)", officer.url)[1])
    clean(officer)
    officer.get_by_role("button", name=re.compile("^Gửi duyệt")).click()
    officer.wait_for_load_state()
    assert live.api("canbo", "GET", f"/announcements/{ann_id}", 200)["approval"] == "submitted"

    # ---- the leader is told, and approves from the notification
    leader = new_page(chromium, PHONE)
    try:
        login(leader, live, "lanhdao")
        badge = leader.get_by_role("link", name=re.compile(r"^Thông báo.*1 chưa đọc"))
        expect(badge).to_be_visible()
        badge.click()
        leader.wait_for_load_state()
        clean(leader)
        leader.get_by_role("link", name="Xem và duyệt").first.click()
        leader.wait_for_url(re.compile(rf".*/announcements/{ann_id}.*"))
        clean(leader)
        leader.get_by_role("button", name="Duyệt", exact=True).click()
        leader.wait_for_load_state()
        assert live.api("lanhdao", "GET", f"/announcements/{ann_id}", 200)["approval"] == "approved"
    finally:
        leader.context.close()

    # ---- the officer learns it, and schedules it "6h30 thứ Hai–thứ Sáu" in one field
    officer.reload()
    expect(officer.get_by_role("link", name=re.compile(r"^Thông báo.*1 chưa đọc"))).to_be_visible()
    open_menu_item(officer, "Lịch phát")
    clean(officer)
    officer.goto(live.url("/schedules/new"))
    officer.get_by_label("Bản tin").select_option(label="Tổng vệ sinh môi trường")
    officer.get_by_label("Tổ dân phố 1").check()
    officer.get_by_label("Tổ dân phố 3").check()
    officer.get_by_label("Giờ phát").fill("6h30 thứ Hai–thứ Sáu")
    officer.get_by_role("button", name="Lưu lịch phát").click()
    officer.wait_for_url(re.compile(r".*/calendar.*"))
    clean(officer)
    (sched,) = live.api("canbo", "GET", "/schedules", 200)
    assert sched["announcement_id"] == ann_id
    assert sorted(sched["zones"]) == ["to-1", "to-3"]
    assert sched["recurrence"]["kind"] == "weekly" and sched["recurrence"]["weekdays"] == [0, 1, 2, 3, 4]
    assert sched["recurrence"]["times"] == ["06:30"]
    assert "BYDAY=MO,TU,WE,TH,FR" in sched["rrule"]

    # ---- the calendar shows it on the weekdays at 06:30, not on the weekend
    week = officer.locator("main")
    expect(week.get_by_text("Tổng vệ sinh môi trường").first).to_be_visible()
    assert "06:30" in week.inner_text()
    for path in ("/calendar?view=month", "/today", "/schedules", "/"):
        officer.goto(live.url(path))
        clean(officer)
    deadline = time.monotonic() + 5
    while live.api("canbo", "GET", "/notifications?unread=true", 200) and time.monotonic() < deadline:
        officer.goto(live.url("/notifications"))
        officer.get_by_role("button", name="Đánh dấu tất cả đã đọc").click()
        officer.wait_for_load_state()
    assert live.api("canbo", "GET", "/notifications?unread=true", 200) == []
