"""An officer schedules on her phone (Chromium, 390×844): "6h30" Monday–Friday to two zones through the form, found
by its Vietnamese labels; sees it in the calendar and on "Hôm nay phát gì"; deletes it and undoes; a clash shows
its choices on the first screen; a schedule of an unapproved announcement is marked everywhere."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from browser import PHONE, login, page_problems

TEXT = "Sáng thứ Bảy tiêm phòng cho trẻ em tại trạm y tế phường."
AWAITING = "Chờ duyệt — sẽ không phát nếu chưa được duyệt"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def announcement(live, title: str, approve: bool = True) -> int:
    """An announcement with its audio; approved by a leader when ``approve``."""
    ann = live.api("canbo", "POST", "/announcements", (201, 202), json={"title": title, "text": TEXT})
    deadline = time.monotonic() + 30
    while live.api("canbo", "GET", f"/announcements/{ann['id']}", 200).get("status") != "ready":
        assert time.monotonic() < deadline, "the speech was not produced"
        time.sleep(0.1)
    if approve:
        live.api("canbo", "POST", f"/announcements/{ann['id']}/submit", 200)
        live.api("lanhdao", "POST", f"/announcements/{ann['id']}/approve", 200)
    return ann["id"]


def schedules_by_id(live) -> dict[int, dict]:
    return {s["id"]: s for s in live.api("canbo", "GET", "/schedules", 200)}


def check(page, problems: list[str]) -> None:
    problems += page_problems(page)


def script_errors(page) -> list[str]:
    """Script errors of the page, but not the browser's note that a refused form came back as 400/409 (it does,
    on purpose: the form is shown again with what was typed)."""
    return [e for e in page.script_errors if not re.search(r"Failed to load resource.*status of 40[09]", e)]


def test_officer_schedules_6h30_monday_to_friday_on_her_phone(live, phone):
    ann = announcement(live, "Tiêm phòng")
    login(phone, live, "canbo")
    problems: list[str] = []
    phone.goto(live.url("/schedules/new"))
    check(phone, problems)
    # the form fits: four short sections, the advanced part closed
    height = phone.evaluate("document.documentElement.scrollHeight")
    assert height < 1800, f"the form is {height}px tall"

    phone.get_by_label("Bản tin").select_option(label="Tiêm phòng")  # an approved one: its title, no warning
    assert phone.get_by_label("Bản tin").input_value() == str(ann)
    assert phone.locator("#unapproved-warning").is_hidden()
    phone.get_by_label("Tổ dân phố 1").check()
    phone.get_by_label("Tổ dân phố 2").check()
    phone.get_by_label("Lặp lại").check()
    assert phone.get_by_label("Ngày phát").is_hidden()
    phone.get_by_role("button", name="Thứ Hai–thứ Sáu").click()
    assert phone.get_by_label("Thứ Sáu").is_checked() and not phone.get_by_label("Thứ Bảy").is_checked()

    # a time nobody can read: said in Vietnamese, naming the field, and nothing typed is lost
    phone.get_by_label("Giờ phát").fill("sáu rưỡi")
    phone.get_by_role("button", name="Lưu lịch phát").click()
    phone.wait_for_load_state()
    assert "Giờ phát không hợp lệ" in phone.get_by_role("alert").first.inner_text()
    assert "6h30" in phone.get_by_role("alert").first.inner_text()
    assert phone.get_by_label("Giờ phát").input_value() == "sáu rưỡi"
    assert phone.get_by_label("Tổ dân phố 2").is_checked() and phone.get_by_label("Thứ Hai").is_checked()
    assert phone.get_by_label("Lặp lại").is_checked()
    check(phone, problems)

    phone.get_by_label("Giờ phát").fill("6h30")
    phone.get_by_role("button", name="Lưu lịch phát").click()
    phone.wait_for_url(re.compile(r".*/calendar.*"))
    (sched,) = schedules_by_id(live).values()
    assert sched["recurrence"]["times"] == ["06:30"] and sched["recurrence"]["weekdays"] == [0, 1, 2, 3, 4]
    assert sorted(sched["zones"]) == ["to-1", "to-2"] and sched["status"] == "active"
    assert "BYDAY=MO,TU,WE,TH,FR" in sched["rrule"]

    # the week view: a list of days, Vietnamese weekdays, dd/mm/yyyy, 24-hour times, the airing in each zone
    week = phone.locator(".cal-days")
    assert week.get_by_text("Thứ Hai").count() >= 1 and "Chủ nhật" in week.inner_text()
    lines = phone.locator(".cal-items li").all_inner_texts()
    assert any("06:30" in x and "Tiêm phòng" in x and "Tổ dân phố 2" in x for x in lines), lines
    assert not any("Tổ dân phố 3" in x for x in lines)
    assert AWAITING not in phone.inner_text("main")
    check(phone, problems)
    phone.get_by_label("Khu vực").select_option("to-3")  # one zone: nothing there
    phone.wait_for_url(re.compile(r".*zone=to-3.*"))
    assert phone.locator(".cal-items li").count() == 0
    phone.get_by_role("link", name="Tháng", exact=True).click()
    phone.wait_for_load_state()
    check(phone, problems)

    phone.goto(live.url("/today"))
    now = datetime.now(TZ)
    if now.weekday() < 5 and now.strftime("%H:%M") < "06:30":
        assert "Tiêm phòng" in phone.inner_text("main")
    check(phone, problems)

    # "Xóa" with "Hoàn tác": gone from the list and the plans at once, back on undo
    phone.goto(live.url("/schedules"))
    check(phone, problems)
    phone.get_by_role("button", name="Xóa lịch Tiêm phòng").click()
    phone.wait_for_load_state()
    assert schedules_by_id(live) == {}
    assert "Tiêm phòng" not in phone.locator("table").inner_text()
    check(phone, problems)
    phone.get_by_role("button", name="Hoàn tác").click()
    phone.wait_for_load_state()
    assert list(schedules_by_id(live)) == [sched["id"]]
    assert "Đã khôi phục lịch" in phone.inner_text("main")
    assert problems + script_errors(phone) == [], "\n".join(problems + script_errors(phone))


def test_a_clash_shows_its_choices_on_the_first_screen_and_unapproved_is_marked(live, phone):
    approved = announcement(live, "Họp tổ dân phố")
    draft = announcement(live, "Thu gom rác", approve=False)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(TZ).date()
    live.api("canbo", "POST", "/schedules", 201, json={
        "announcement_id": approved, "zones": ["to-3"], "start_at": f"{tomorrow.isoformat()}T09:00:00"})
    login(phone, live, "canbo")
    problems: list[str] = []
    phone.goto(live.url("/schedules/new"))
    phone.get_by_label("Bản tin").select_option(str(draft))
    assert phone.locator("#unapproved-warning").is_visible()  # warned before saving
    phone.get_by_label("Tổ dân phố 3").check()
    phone.get_by_label("Một lần").check()
    phone.get_by_label("Ngày phát").fill(tomorrow.strftime("%d/%m/%Y"))
    phone.get_by_label("Giờ phát").fill("9 giờ")
    phone.get_by_role("button", name="Lưu lịch phát").click()
    phone.wait_for_load_state()

    # the message and its choices together, on the first screen of a phone
    message = phone.get_by_text("Lịch này trùng giờ")
    append = phone.get_by_role("button", name="Phát nối sau chương trình cũ")
    override = phone.get_by_role("button", name="Ghi đè chương trình cũ")
    for el in (message, append, override, phone.get_by_role("link", name="Đổi giờ phát")):
        box = el.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], (el, box)
    assert phone.get_by_label("Giờ phát").input_value() == "9 giờ"  # the form kept everything
    check(phone, problems)
    append.click()
    phone.wait_for_url(re.compile(r".*/calendar.*"))
    new = [s for s in schedules_by_id(live).values() if s["announcement_id"] == draft]
    assert len(new) == 1 and new[0]["status"] == "awaiting_approval" and new[0]["on_clash"] == "append"

    # marked wherever it is shown: calendar (with the clash), schedules list, timeline
    phone.goto(live.url(f"/calendar?date={tomorrow.isoformat()}"))
    day = phone.locator(".cal-items li", has_text=re.compile(r"^09:00 Thu gom rác"))
    assert AWAITING in day.inner_text() and "Trùng giờ với" in day.inner_text()
    assert day.get_by_role("link", name="Xử lý").count() == 1
    check(phone, problems)
    phone.goto(live.url("/schedules"))
    row = phone.locator("tr", has_text="Thu gom rác")
    assert AWAITING in row.inner_text()
    assert AWAITING not in phone.locator("tr", has_text="Họp tổ dân phố").inner_text()
    check(phone, problems)
    phone.goto(live.url(f"/timeline?zone=to-3&date={tomorrow.isoformat()}"))
    assert AWAITING in phone.inner_text("main") and "Đúng giờ theo lịch" in phone.inner_text("main")
    check(phone, problems)
    phone.goto(live.url("/"))
    check(phone, problems)

    # "Hôm nay phát gì": today's airings per zone with their approval state
    soon = datetime.now(TZ) + timedelta(minutes=30)
    if soon.date() == datetime.now(TZ).date():
        live.api("canbo", "POST", "/schedules", 201, json={
            "announcement_id": approved, "zones": ["to-2"], "start_at": soon.strftime("%Y-%m-%dT%H:%M:%S")})
        live.api("canbo", "POST", "/schedules", 201, json={
            "announcement_id": draft, "zones": ["to-2"], "start_at": (soon + timedelta(minutes=5)).strftime(
                "%Y-%m-%dT%H:%M:%S")})
    phone.goto(live.url("/today"))
    if soon.date() == datetime.now(TZ).date():
        zone = phone.locator("section", has_text="Tổ dân phố 2").inner_text()
        assert soon.strftime("%H:%M") in zone and "Họp tổ dân phố" in zone and "Đã duyệt" in zone
        assert "Thu gom rác" in zone and AWAITING in zone
    check(phone, problems)
    assert problems + script_errors(phone) == [], "\n".join(problems + script_errors(phone))
