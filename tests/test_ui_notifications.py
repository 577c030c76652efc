"""The notification centre and the users pages in Chromium at 390×844 (tests/browser.py): a leader is told what
waits for her, the second leader of an emergency is told at once, and the pages fit a phone."""

from __future__ import annotations

import re

from browser import login, page_problems
from playwright.sync_api import expect

TEXT = "Ủy ban nhân dân phường thông báo: sáng thứ Hai tiêm chủng tại trạm y tế."


def test_leader_is_told_what_waits_for_her_on_her_phone(live, phone):
    live.service.config.NOTIFY_POLL_S = 1  # the banner within the poll interval, in a fast test
    ann = live.api("canbo", "POST", "/announcements", 201, json={"title": "Tiêm chủng", "text": TEXT})
    live.api("canbo", "POST", f"/announcements/{ann['id']}/submit", 200)

    login(phone, live, "lanhdao2")
    link = phone.get_by_role("link", name=re.compile(r"^Thông báo 1 chưa đọc$"))
    expect(link).to_be_visible()
    link.click()
    expect(phone).to_have_url(re.compile(r"/notifications$"))
    expect(phone.get_by_text("Nguyễn Thị Lan đã gửi “Tiêm chủng” để duyệt.")).to_be_visible()
    assert page_problems(phone) == []
    phone.get_by_role("link", name="Xem và duyệt").click()
    expect(phone).to_have_url(re.compile(rf"/announcements/{ann['id']}$"))
    expect(phone.get_by_role("button", name="Duyệt", exact=True)).to_be_visible()
    expect(phone.get_by_role("link", name=re.compile(r"^Thông báo$"))).to_be_visible()  # read once opened

    # lanhdao starts an emergency to to-1: lanhdao2's page says so at once, with the way to confirm it
    alert = live.api("lanhdao", "POST", "/emergencies", 201,
                     json={"title": "Bão số 3", "text": "Bão sắp đổ bộ, người dân ở trong nhà.", "zones": ["to-1"]})
    banner = phone.get_by_role("alert").filter(has_text="Bão số 3")
    expect(banner).to_be_visible(timeout=5000)
    expect(banner).to_contain_text("Trần Văn Minh đã tạo bản tin khẩn cấp “Bão số 3”")
    expect(phone.get_by_role("link", name=re.compile(r"^Thông báo 1 chưa đọc$"))).to_be_visible()
    assert page_problems(phone) == []
    banner.get_by_role("link", name="Xác nhận phát").click()
    expect(phone).to_have_url(re.compile(rf"/emergency/{alert['id']}$"))
    phone.get_by_role("button", name=re.compile("người thứ hai", re.I)).click()
    expect(phone.get_by_role("alert").filter(has_text="Bão số 3")).to_have_count(0)
    assert live.api("lanhdao2", "GET", f"/emergencies/{alert['id']}", 200)["status"] == "released"
    # done for everyone who was told: nothing waits for lanhdao2 or the admin any more
    assert live.api("lanhdao2", "GET", "/notifications?unread=true", 200) == []
    assert [n for n in live.api("admin", "GET", "/notifications?unread=true", 200)
            if n["kind"] == "emergency_confirm"] == []

    phone.goto(live.url("/notifications"))
    expect(phone.get_by_text("Đã được Lê Thị Hoa xác nhận.")).to_be_visible()
    assert page_problems(phone) == []
    assert phone.script_errors == []


def test_users_pages_fit_a_phone(live, phone):
    login(phone, live, "admin")
    phone.goto(live.url("/users"))
    assert page_problems(phone) == []
    phone.get_by_role("link", name="Thêm người dùng").click()
    form = phone.get_by_role("region", name="Thêm người dùng")
    form.get_by_label("Tên đăng nhập").fill("canbo2")
    form.get_by_label("Họ và tên").fill("Phạm Văn Bình")
    form.get_by_label(re.compile("^Mật khẩu")).fill("mat-khau-99")
    form.get_by_label("Vai trò").select_option(label="lãnh đạo")
    form.get_by_label(re.compile("^Email")).fill("binh@phuong.example")
    form.get_by_role("button", name="Tạo người dùng").click()
    expect(phone.get_by_role("status")).to_contain_text("Đã tạo người dùng canbo2.")
    made = [u for u in live.api("admin", "GET", "/users", 200) if u["username"] == "canbo2"]
    assert made[0]["role"] == "leader" and made[0]["email"] == "binh@phuong.example"
    assert page_problems(phone) == []

    # her change forms, opened on the phone, fit too
    phone.get_by_text("Thay đổi · Nguyễn Thị Lan").click()
    card = phone.locator("details[open]")
    card.get_by_label(re.compile("^Email")).fill("lan@phuong.example")
    card.get_by_role("button", name="Lưu email").click()
    expect(phone.get_by_role("status")).to_contain_text("Đã lưu địa chỉ email.")
    assert [u["email"] for u in live.api("admin", "GET", "/users", 200) if u["username"] == "canbo"] == [
        "lan@phuong.example"]
    phone.get_by_text("Thay đổi · Trần Văn Minh").click()
    assert page_problems(phone) == []

    phone.goto(live.url("/account/password"))
    phone.get_by_label(re.compile("^Email")).fill("quantri@phuong.example")
    phone.get_by_role("button", name="Lưu email").click()
    expect(phone.get_by_role("status")).to_contain_text("Đã lưu địa chỉ email.")
    assert page_problems(phone) == []
    assert phone.script_errors == []
