"""Issue 3 in the panel: normalized text for review, the ward's abbreviation dictionary, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

from test_panel import csrf, login


def test_api_normalize_uses_ward_abbreviations(api):
    r = api.post("/api/v1/normalize", json={"text": "KP 3 họp lúc 7h30"})
    assert r.status_code == 200 and not re.search(r"\d", r.json["normalized_text"])
    assert api.post("/api/v1/abbreviations", json={"abbr": "KP", "expansion": "khu phố"}).status_code == 201
    assert api.post("/api/v1/normalize", json={"text": "KP 3 họp lúc 7h30"}).json["normalized_text"] == (
        "khu phố ba họp lúc bảy giờ ba mươi phút")
    listing = api.get("/api/v1/abbreviations").json
    assert listing["ward"] == {"KP": "khu phố"} and listing["defaults"]["UBND"] == "ủy ban nhân dân"
    bad = api.post("/api/v1/abbreviations", json={"abbr": "K P", "expansion": "x"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_abbreviation"
    bad = api.post("/api/v1/abbreviations", json={"abbr": "KP", "expansion": "khu 3"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_expansion"
    assert api.delete("/api/v1/abbreviations/KP").status_code == 204
    assert api.delete("/api/v1/abbreviations/KP").status_code == 404


def test_announcement_keeps_text_and_what_is_said(api):
    r = api.post("/api/v1/announcements", json={"title": "Họp", "text": "UBND phường họp lúc 14h00 ngày 15/3/2025."})
    assert r.status_code == 201
    body = r.json
    assert body["text"] == "UBND phường họp lúc 14h00 ngày 15/3/2025."
    assert body["normalized_text"] == (
        "ủy ban nhân dân phường họp lúc mười bốn giờ ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm.")


def test_form_preview_shows_what_will_be_said_without_saving(client, api):
    login(client)
    token = csrf(client, "/announcements/new")
    r = client.post("/announcements/preview", data={"title": "T", "text": "Gọi 114 khi có cháy", "csrf_token": token})
    assert r.status_code == 200
    assert "Nội dung loa sẽ đọc" in r.text and "một một bốn" in r.text
    assert "Gọi 114 khi có cháy" in r.text  # the form keeps the original
    assert api.get("/api/v1/announcements").json == []


def test_ward_dictionary_page(client, service):
    login(client)
    token = csrf(client, "/abbreviations")
    r = client.post("/abbreviations", data={"abbr": "TDP", "expansion": "tổ dân phố", "csrf_token": token})
    assert r.status_code == 302
    page = client.get("/abbreviations").text
    assert "TDP" in page and "tổ dân phố" in page and "ủy ban nhân dân" in page
    r = client.post("/abbreviations", data={"abbr": "", "expansion": "x", "csrf_token": token})
    assert r.status_code == 400 and "không có khoảng trắng" in r.text
    assert service.ward_abbreviations() == {"TDP": "tổ dân phố"}


def test_cli_normalize():
    out = subprocess.run([sys.executable, "-m", "broadcaster.cli", "normalize", "Bão số 3, gió cấp 10-12"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert out == "Bão số ba, gió cấp mười đến mười hai"
