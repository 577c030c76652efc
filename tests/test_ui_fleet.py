"""The fleet's pages in Chromium at phone (390×844) and desktop size: reports with charts, CSV and a print view;
a new node's credentials (copy buttons, QR code, configuration file); the map without internet; and every fleet
page clean (no sideways scroll, no axe serious/critical violation, no English, ISO date or raw code)."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser import PASSWORD, login, page_problems, start_panel


def _due_bulletin(live) -> str:
    """A daily bulletin in zone to-1 from four days ago to two days ahead (not today: the hour is unknown), nothing
    reported; returns the month (YYYY-MM) of yesterday, which has at least one airing that was due."""
    service = live.service
    today = service.local(datetime.now(UTC)).date()
    yesterday = today - timedelta(days=1)
    ann = live.api("admin", "POST", "/announcements", 201,
                   json={"title": "Lịch tiêm chủng", "text": "Mời bà con đi tiêm.", "approve": True})
    live.api("admin", "POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-1"], "recurrence": {
        "kind": "daily", "start_date": str(yesterday - timedelta(days=3)), "until": str(today + timedelta(days=2)),
        "times": ["09:00"], "exdates": [str(today)]}})
    return f"{yesterday.year:04d}-{yesterday.month:02d}"


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_reports_page_has_charts_tables_csv_and_a_print_view(live, request, size):
    page = request.getfixturevalue(size)
    month = _due_bulletin(live)
    stats = live.api("canbo", "GET", f"/reports/monthly?month={month}", 200)
    assert stats["planned_plays"] >= 1 and stats["played"] == 0  # nothing reported: due and missed
    login(page, live, "canbo")
    page.goto(live.url(f"/reports?month={month}"))
    chart = page.get_by_role("img", name=re.compile(r"Tổ dân phố 1: đã phát 0\/\d+ lượt theo kế hoạch"))
    assert chart.count() == 1 and chart.bounding_box()["width"] <= page.viewport_size["width"]
    assert page.locator("svg.bars rect.planned").count() == stats["planned_plays"]  # one loudspeaker in to-1
    page.get_by_text("Bảng số liệu của biểu đồ").click()
    first_row = page.locator(".chart-table tbody tr").first
    assert re.search(r"\d{2}/\d{2}/\d{4}", first_row.inner_text()) and "0,0 %" in first_row.inner_text()
    assert page_problems(page) == []
    # the CSV of the month, neutralised and with its BOM
    with page.expect_download() as download:
        page.get_by_role("link", name="Xuất CSV").first.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeffmonth,") and f"\n{month}," in text
    # printed: no menu, no forms, the tables as tables
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("form.filters").first.is_visible()
    assert page.locator("#compliance thead").is_visible()
    page.emulate_media(media="screen")
    assert page.script_errors == []


def test_admin_registers_a_node_and_copies_scans_and_downloads_its_credentials(live, phone):
    phone.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base)
    login(phone, live, "admin")
    phone.goto(live.url("/nodes"))
    form = phone.locator("form", has=phone.get_by_role("button", name="Đăng ký", exact=True))
    form.get_by_label("Mã thiết bị").fill("loa-09")
    form.get_by_label("Tên", exact=True).fill("Loa đầu ngõ 9")
    form.get_by_label("Khu vực").select_option(label="Tổ dân phố 2")
    with phone.expect_response(lambda r: "/nodes/loa-09/credentials?k=" in r.url) as answer:
        form.get_by_role("button", name="Đăng ký", exact=True).click()
    assert answer.value.status == 200 and answer.value.headers["cache-control"] == "no-store"
    token = phone.locator("#cred-token").inner_text().strip()
    assert live.service.node_for_token(token).node_id == "loa-09"
    assert phone.get_by_role("img", name="Mã QR cấu hình của loa-09").is_visible()
    assert phone.get_by_role("button", name=re.compile("^Sao chép")).count() >= 4
    for label, value in (("Mã thiết bị", "loa-09"), ("Tên đăng nhập", "loa-09"), ("Mã truy cập", token)):
        phone.get_by_role("button", name=f"Sao chép {label}").click()
        phone.get_by_role("status").filter(has_text=f"Đã sao chép: {label}").wait_for()
        assert phone.evaluate("navigator.clipboard.readText()") == value
    assert page_problems(phone) == []  # the 43-character token wraps: no sideways scroll
    with phone.expect_download() as download:
        phone.get_by_role("button", name="Tải tệp cấu hình").click()
    assert download.value.suggested_filename == "loaphuong-loa-09.json"
    config = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert config["format"] == "loaphuong-node-config" and config["version"] == 1
    assert (config["node_id"], config["username"], config["token"]) == ("loa-09", "loa-09", token)
    assert config["panel_public_key"] == live.service.public_key_b64 and config["topic_prefix"]
    # a second tap downloads again (the page stays; the form is freed)
    phone.wait_for_timeout(1600)
    with phone.expect_download() as again:
        phone.get_by_role("button", name="Tải tệp cấu hình").click()
    assert json.loads(Path(again.value.path()).read_text(encoding="utf-8"))["token"] == token
    assert phone.script_errors == []


def test_credentials_page_survives_a_reload_and_back_then_expires(live, phone):
    """Post → redirect → get: reloading the credentials page shows the same token (no second registration, no 409),
    Back returns to the list; after the keeping time it says the token is gone and a new one can be issued."""
    login(phone, live, "admin")
    phone.goto(live.url("/nodes"))
    form = phone.locator("form", has=phone.get_by_role("button", name="Đăng ký", exact=True))
    form.get_by_label("Mã thiết bị").fill("loa-10")
    form.get_by_role("button", name="Đăng ký", exact=True).click()
    phone.wait_for_url(re.compile(r".*/nodes/loa-10/credentials\?k=.+"))
    token = phone.locator("#cred-token").inner_text().strip()
    assert live.service.node_for_token(token).node_id == "loa-10"
    answer = phone.reload()
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert phone.locator("#cred-token").inner_text().strip() == token
    assert "đã được đăng ký" not in phone.inner_text("body")
    shown = phone.url
    phone.go_back()
    assert phone.url == live.url("/nodes") and "đã được đăng ký" not in phone.inner_text("body")
    phone.go_forward()
    assert phone.locator("#cred-token").inner_text().strip() == token
    # fifteen minutes later: the token is no longer shown; "Cấp mã mới" issues another one
    store = live.app.extensions["node_credentials"]
    later = store.clock() + 15 * 60 + 1
    store.clock = lambda: later
    answer = phone.goto(shown)
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    phone.get_by_role("heading", name="Mã truy cập không còn được hiển thị").wait_for()
    assert phone.locator("#cred-token").count() == 0 and token not in phone.content()
    assert page_problems(phone) == []
    phone.once("dialog", lambda dialog: dialog.accept())
    phone.get_by_role("button", name="Cấp mã mới").click()
    phone.wait_for_url(re.compile(r".*/nodes/loa-10/credentials\?k=.+"))
    new = phone.locator("#cred-token").inner_text().strip()
    assert new != token and live.service.node_for_token(new).node_id == "loa-10"
    assert live.service.node_for_token(token) is None
    assert phone.script_errors == []


def _client_as(live, username: str):
    client = live.app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/nodes").text).group(1)
    return client, csrf


def test_credentials_are_kept_for_their_issuer_only_and_not_after_a_new_token(live):
    live.service.create_user("admin2", PASSWORD, role="admin", display_name="Quản trị 2")
    client, csrf = _client_as(live, "admin")
    r = client.post("/nodes/loa-01/token", data={"csrf_token": csrf})
    assert r.status_code == 303 and "token" not in r.headers.get("Set-Cookie", "")
    where = r.headers["Location"]
    assert re.fullmatch(r"/nodes/loa-01/credentials\?k=[\w-]{20,}", where)
    page = client.get(where)
    token = re.search(r'class="secret">([^<]+)<', page.text).group(1)
    assert page.status_code == 200 and live.service.node_for_token(token).node_id == "loa-01"
    assert token not in where and client.get(where).text.count(token) >= 2  # the same page again
    # another admin with the same link, a guessed id, another node's page: not shown
    other, _csrf = _client_as(live, "admin2")
    for c, url in ((other, where), (client, "/nodes/loa-01/credentials?k=guess"),
                   (client, where.replace("loa-01", "loa-02"))):
        gone = c.get(url)
        assert gone.status_code == 200 and token not in gone.text and "Cấp mã mới" in gone.text
        assert "không còn được hiển thị" in gone.text and gone.headers["Cache-Control"] == "no-store"
    # a newer token replaces it: the old page no longer shows the old token
    newer = client.get(client.post("/nodes/loa-01/token", data={"csrf_token": csrf}).headers["Location"])
    assert newer.status_code == 200 and token not in newer.text
    assert "không còn được hiển thị" in client.get(where).text
    # an officer may not see the page at all
    officer, _csrf = _client_as(live, "canbo")
    assert officer.get(where).status_code == 403


def test_configuration_file_needs_the_current_token(live):
    """Only the node's current token gives a file: a guessed or rotated one gets none."""
    client = live.app.test_client()
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/nodes").text).group(1)
    r = client.post("/nodes/loa-01/config", data={"token": "not-the-token", "csrf_token": csrf})
    assert r.status_code == 303 and "attachment" not in r.headers.get("Content-Disposition", "")
    token = live.api("admin", "POST", "/nodes/loa-01/token", 201)["token"]
    r = client.post("/nodes/loa-01/config", data={"token": token, "csrf_token": csrf})
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["Cache-Control"] == "no-store" and r.json["token"] == token
    assert client.post("/nodes/loa-02/config", data={"token": token, "csrf_token": csrf}).status_code == 303


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_map_without_internet_shows_zones_and_loudspeakers_on_a_plain_background(tmp_path, phone):
    panel = start_panel(tmp_path / "panel", MAP_TILES_URL=f"http://127.0.0.1:{_closed_port()}/{{z}}/{{x}}/{{y}}.png")
    try:
        login(phone, panel, "canbo")
        phone.goto(panel.url("/fleet/map"))
        phone.get_by_text("Không tải được bản đồ nền; vẫn hiển thị vị trí loa").wait_for(timeout=10_000)
        assert "is-plain" in phone.locator("#map").get_attribute("class")
        assert phone.locator("#map path.node-marker").count() == 3
        assert phone.locator("#map path.zone-area").count() == 3
        assert phone.locator(".zone-label").all_inner_texts() == ["Tổ dân phố 1", "Tổ dân phố 2", "Tổ dân phố 3"]
        assert phone.locator("#map-list li").count() == 3  # the same loudspeakers, for a screen reader
        phone.locator("#map path.node-marker").first.click(force=True)
        assert "Chưa từng kết nối" in phone.locator(".leaflet-popup-content").inner_text()
        assert page_problems(phone) == []
        # the only errors are the tiles that could not load
        assert [e for e in phone.script_errors if "Failed to load resource" not in e] == []
    finally:
        panel.close()


def test_map_with_no_tile_server_set_is_plain_from_the_start(tmp_path, desktop):
    panel = start_panel(tmp_path / "panel", MAP_TILES_URL="")
    try:
        login(desktop, panel, "admin")
        desktop.goto(panel.url("/fleet/map"))
        desktop.get_by_text("Chưa đặt bản đồ nền; vẫn hiển thị vị trí loa.").wait_for()
        assert desktop.locator("#map path.node-marker").count() == 3 and desktop.locator("#map img").count() == 0
        assert page_problems(desktop) == [] and desktop.script_errors == []
    finally:
        panel.close()


FLEET_PAGES = ["/fleet", "/fleet/nodes/loa-01", "/fleet/import", "/nodes", "/nodes/loa-01", "/plays", "/reports",
               "/fleet/map"]


@pytest.mark.parametrize("size, user", [("phone", "canbo"), ("phone", "admin"), ("desktop", "lanhdao")])
def test_fleet_pages_are_clean(live, request, size, user):
    """With a node that has reported events (codes in words), a command in its history and a play."""
    page = request.getfixturevalue(size)
    service = live.service
    now = datetime.now(UTC)
    for seq, (name, reason) in enumerate((("plan_applied", None), ("playback_started", None),
                                          ("playback_stopped", "end_at"), ("media_failed", "interrupted")), 1):
        event = {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": seq, "event": name,
                 "at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        if reason:
            event["reason"] = reason
        service.ingest(service.topics.events("loa-01"), json.dumps(event).encode())
    live.api("admin", "POST", "/fleet/commands", 202,
             json={"name": "set_volume", "args": {"volume": 40}, "node_ids": ["loa-01"]})
    login(page, live, user)
    problems: list[str] = []
    for path in FLEET_PAGES:
        page.goto(live.url(path))
        problems += page_problems(page)
    page.goto(live.url("/fleet/nodes/loa-01"))
    text = page.inner_text("body")
    assert "bắt đầu phát" in text and "hết giờ theo lịch" in text and "Âm lượng: 40" in text
    problems += [e for e in page.script_errors if "Failed to load resource" not in e]
    assert problems == [], "\n".join(problems)
