"""The public re-listen page ("Nghe lại") in Chromium at phone size, without logging in: the aired bulletin with its
text, zones, time and a player that loads nothing until pressed and then plays the approved file; axe clean, no
sideways scroll, no English; the printable posters with a QR code per residential group, one A4 page each."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from browser import page_problems

from broadcaster import relisten
from devices import protocol as proto


def aired_bulletin(live, monkeypatch) -> dict:
    """An approved bulletin scheduled for to-1 and to-2 a few minutes ahead, reported played by loa-01 and
    loa-02 through the panel's ingest, and the page read as if ten minutes after it aired."""
    service = live.service
    ann = live.api("admin", "POST", "/announcements", 201, json={
        "title": "Lịch tiêm chủng", "text": "Mời bà con đưa trẻ đi tiêm vào sáng thứ Bảy.", "approve": True})
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=3)
    sched = live.api("admin", "POST", "/schedules", 201, json={"announcement_id": ann["id"],
                                                               "zones": ["to-1", "to-2"],
                                                               "start_at": proto.format_ts(start)})
    for seq, node_id in enumerate(("loa-01", "loa-02"), start=1):
        it = next(i for i in service.get_node(node_id).plan_payload["items"] if i["schedule_id"] == str(sched["id"]))
        service.ingest(service.topics.events(node_id), json.dumps({
            "type": "event", "protocol": 1, "node_id": node_id, "seq": seq, "event": "playback_finished",
            "at": it["start"], "item_id": it["id"], "schedule_id": it["schedule_id"], "sha256": it["media"]["sha256"],
            "scheduled_start": it["start"]}).encode())
    monkeypatch.setattr(relisten, "clock", lambda: start + timedelta(minutes=10))
    return {"ann": ann, "start": start}


def test_the_public_page_on_a_phone_lists_and_plays_without_login(live, phone, monkeypatch):
    aired = aired_bulletin(live, monkeypatch)
    audio_requests: list[str] = []
    phone.on("request", lambda r: audio_requests.append(r.url) if "/audio/" in r.url else None)
    phone.goto(live.url("/nghe-lai/phuong"))
    assert phone.url.endswith("/nghe-lai/phuong")  # no login page in between
    assert phone.get_by_role("heading", level=1).inner_text() == "Nghe lại bản tin"
    items = phone.locator("ol.bulletins > li")
    assert items.count() == 1
    item = items.first
    assert item.get_by_role("heading", level=2).inner_text() == "Lịch tiêm chủng"
    assert "Mời bà con đưa trẻ đi tiêm vào sáng thứ Bảy." in item.inner_text()
    when = live.service.local(aired["start"]).strftime("%d/%m/%Y %H:%M")
    assert re.search(rf"{re.escape(when)} · Tổ dân phố 1, Tổ dân phố 2", item.inner_text())
    audio = item.locator("audio")
    assert audio.get_attribute("preload") == "none" and audio.get_attribute("controls") is not None
    assert audio_requests == []  # nothing downloaded on 3G until the citizen presses play
    assert page_problems(phone) == []
    # the player really plays the approved file
    audio.evaluate("a => a.play()")
    phone.wait_for_function("() => document.querySelector('audio').currentTime > 0.2", timeout=10_000)
    assert audio_requests and all(aired["ann"]["media"]["sha256"] in u for u in audio_requests)
    got = phone.request.get(audio.evaluate("a => a.currentSrc"))
    assert got.status == 200 and got.headers["content-type"] == "audio/mpeg"
    assert got.body() == live.service.media.path(aired["ann"]["media"]["sha256"], "mp3").read_bytes()
    # a residential group's page (where its poster's QR code leads), then the same in English
    phone.goto(live.url("/nghe-lai/phuong?zone=to-3"))
    assert phone.locator("ol.bulletins > li").count() == 0 and "Chưa có bản tin nào" in phone.inner_text("main")
    assert page_problems(phone) == []
    phone.get_by_role("link", name="English").click()
    assert "zone=to-3" in phone.url
    assert phone.get_by_role("heading", level=1).inner_text() == "Re-listen to the bulletins"
    assert page_problems(phone, lang="en") == []


def test_posters_print_one_group_per_a4_page_with_a_qr_code(live, phone):
    phone.goto(live.url("/nghe-lai/phuong/poster"))
    posters = phone.locator("section.poster")
    assert posters.count() == 3
    first = posters.first
    assert first.get_by_role("heading", level=1).inner_text() == "Nghe lại bản tin của Tổ dân phố 1"
    qr = first.get_by_role("img", name=re.compile("Mã QR"))
    assert qr.count() == 1 and qr.bounding_box()["width"] >= 200
    assert first.locator(".poster-url").inner_text() == live.url("/nghe-lai/phuong?zone=to-1")
    assert page_problems(phone) == []
    phone.emulate_media(media="print")
    assert first.evaluate("e => getComputedStyle(e).breakAfter") == "page"
    assert posters.last.evaluate("e => getComputedStyle(e).breakAfter") == "auto"
    assert phone.locator("header.top").is_hidden()
