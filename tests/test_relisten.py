"""Citizen re-listen ("Nghe lại", issue 17 §4): only bulletins that are approved now and that a loudspeaker of the
ward reported playing in the last 30 days; the public audio route; cache headers, 304, the rate limit; posters.

Real data: announcements rendered and approved through the API, schedules through the API, the plans the panel
built, and the nodes' playback events fed through the same ingest as MQTT messages (like tests/test_reports.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest
import requests
from people import PASSWORD, As
from stack import wait_for

from broadcaster import relisten
from broadcaster.web import relisten as web_relisten
from devices import protocol as proto


@pytest.fixture
def ward(client, service, monkeypatch):
    """Ward ``phuong`` (zones to-1, to-2; nodes loa-01/02 in to-1, loa-03 in to-2) and ward ``p2`` (zone x-1,
    node loa-09), bulletins scheduled a few minutes from now, the nodes' reports, and the page read as if half an
    hour later. Built by a province admin (two wards)."""
    service.create_user("tinh", PASSWORD, role="province_admin")
    api = As(client, "tinh")
    for code, name in (("to-1", "Tổ dân phố 1"), ("to-2", "Tổ dân phố 2")):
        assert api.post("/api/v1/zones", json={"code": code, "name": name}).status_code == 201
    assert api.post("/api/v1/wards", json={"code": "p2", "name": "Phường Hai"}).status_code == 201
    assert api.post("/api/v1/zones", json={"code": "x-1", "name": "Thôn Một", "kind": "village",
                                           "ward": "p2"}).status_code == 201
    for node_id, zone in (("loa-01", "to-1"), ("loa-02", "to-1"), ("loa-03", "to-2"), ("loa-09", "x-1")):
        assert api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone}).status_code == 201

    def announcement(title: str, ward_code: str = "phuong") -> dict:
        r = api.post("/api/v1/announcements", json={"title": title, "text": f"{title}: mời bà con chú ý.",
                                                    "approve": True, "ward": ward_code})
        assert r.status_code == 201, r.json
        return r.json

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=3)

    def schedule(ann: dict, zones: list[str], minutes: int) -> int:
        r = api.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": zones,
                                                "start_at": proto.format_ts(start + timedelta(minutes=minutes))})
        assert r.status_code == 201, r.json
        return r.json["id"]

    anns = {k: announcement(t) for k, t in (("aired", "Lịch tiêm chủng"), ("failed", "Thu gom rác"),
                                            ("cut", "Cắt điện"), ("stopped", "Họp tổ"), ("later", "Lễ hội"),
                                            ("rejected", "Tin bị rút lại"), ("edited", "Tin đã sửa"),
                                            ("other_audio", "Tin âm thanh khác"), ("drill", "Diễn tập"))}
    anns["p2"] = announcement("Tin phường hai", "p2")
    ids = {
        "aired": schedule(anns["aired"], ["to-1", "to-2"], 0),
        "failed": schedule(anns["failed"], ["to-1"], 2),
        "cut": schedule(anns["cut"], ["to-2"], 4),
        "stopped": schedule(anns["stopped"], ["to-2"], 6),
        "later": schedule(anns["later"], ["to-1"], 120),  # still to come when the page is read
        "rejected": schedule(anns["rejected"], ["to-1"], 8),
        "edited": schedule(anns["edited"], ["to-1"], 10),
        "other_audio": schedule(anns["other_audio"], ["to-1"], 12),
        "p2": schedule(anns["p2"], ["x-1"], 0),
    }
    items = {n: {int(it["schedule_id"]): it for it in service.get_node(n).plan_payload["items"]}
             for n in ("loa-01", "loa-02", "loa-03", "loa-09")}
    seq = dict.fromkeys(items, 0)

    def event(node_id: str, name: str, key: str, reason: str | None = None, sha256: str | None = "approved") -> None:
        seq[node_id] += 1
        it = items[node_id][ids[key]]
        payload = {"type": "event", "protocol": 1, "node_id": node_id, "seq": seq[node_id], "event": name,
                   "at": it["start"], "item_id": it["id"], "schedule_id": str(ids[key]),
                   "scheduled_start": it["start"], "actual_start": it["start"]}
        if sha256:
            payload["sha256"] = it["media"]["sha256"] if sha256 == "approved" else sha256
        if reason:
            payload["reason"] = reason
        service.ingest(service.topics.events(node_id), json.dumps(payload).encode())

    event("loa-01", "playback_started", "aired")
    event("loa-01", "playback_finished", "aired")
    event("loa-02", "playback_failed", "aired", "audio device error")
    event("loa-03", "playback_finished", "aired")
    event("loa-01", "playback_started", "failed")
    event("loa-01", "playback_failed", "failed", "audio device error")
    event("loa-02", "playback_started", "failed")  # started, never finished: not an airing
    event("loa-03", "playback_stopped", "cut", "end_at")  # cut by the plan on purpose: it aired
    event("loa-03", "playback_stopped", "stopped", "stop_command")  # stopped by an officer: not an airing
    event("loa-01", "playback_finished", "rejected")
    event("loa-01", "playback_finished", "edited")
    event("loa-01", "playback_finished", "other_audio", sha256="ab" * 32)  # not the approved audio
    event("loa-09", "playback_finished", "p2")
    # after the airing: one approval withdrawn, one text changed (a newer render, back to "awaiting approval")
    r = api.post(f"/api/v1/announcements/{anns['rejected']['id']}/reject", json={"comment": "Sai thông tin"})
    assert r.status_code == 200, r.json
    r = api.put(f"/api/v1/announcements/{anns['edited']['id']}",
                json={"title": "Tin đã sửa", "text": "Nội dung mới chưa được duyệt."})
    assert r.status_code == 200 and r.json["approval"] == "submitted", r.json
    now = start + timedelta(minutes=30)
    monkeypatch.setattr(relisten, "clock", lambda: now)
    return {"api": api, "start": start, "anns": anns, "ids": ids, "items": items, "event": event, "now": now}


def get_json(client, url: str):
    r = client.get(url)
    return r, (r.json if r.is_json else None)


@pytest.mark.both_backends  # the queries (and the cache's version probe) on PostgreSQL too
def test_only_what_aired_and_is_approved_now_in_this_ward(client, ward, service):
    r, body = get_json(client, "/nghe-lai/phuong.json")
    assert r.status_code == 200, r.data
    assert body["ward"] == "phuong" and body["zone"] is None and body["ward_name"]
    titles = [i["title"] for i in body["items"]]
    # newest first; never failed/started-only, stopped by hand, still to come, rejected, edited since, another
    # audio than the approved one, or another ward's
    assert titles == ["Cắt điện", "Lịch tiêm chủng"], titles
    cut, aired = body["items"]
    anns, start = ward["anns"], ward["start"]
    assert aired["zones"] == ["to-1", "to-2"] and aired["zone_names"] == ["Tổ dân phố 1", "Tổ dân phố 2"]
    assert cut["zones"] == ["to-2"]
    assert aired["text"] == "Lịch tiêm chủng: mời bà con chú ý."
    assert datetime.fromisoformat(aired["aired_at"]) == start
    assert aired["aired_at"].endswith("+07:00")  # the ward's local time, with its offset
    assert aired["audio_url"] == f"/nghe-lai/phuong/audio/{anns['aired']['media']['sha256']}.mp3"
    # the other ward sees only its own
    other = client.get("/nghe-lai/p2.json").json
    assert [i["title"] for i in other["items"]] == ["Tin phường hai"] and other["ward_name"] == "Phường Hai"
    assert relisten.data_version(service)[0] is not None  # the newest report of an airing


def test_zone_filter_and_unknown_codes(client, ward):
    one = client.get("/nghe-lai/phuong.json?zone=to-1").json
    assert one["zone"] == "to-1" and [i["title"] for i in one["items"]] == ["Lịch tiêm chủng"]
    assert one["items"][0]["zones"] == ["to-1", "to-2"]  # every zone it aired in, documented
    two = client.get("/nghe-lai/phuong.json?zone=to-2").json
    assert [i["title"] for i in two["items"]] == ["Cắt điện", "Lịch tiêm chủng"]
    for url in ("/nghe-lai/nowhere.json", "/nghe-lai/phuong.json?zone=x-1", "/nghe-lai/phuong.json?zone=to-9"):
        r = client.get(url)
        assert r.status_code == 404 and r.is_json and r.json["error"]["code"] in ("unknown_ward", "unknown_zone"), url
    for url in ("/nghe-lai/nowhere", "/nghe-lai/phuong?zone=x-1"):
        r = client.get(url)
        assert r.status_code == 404 and r.mimetype == "text/html" and "Không tìm thấy" in r.text, url


def test_the_page_lists_title_text_zones_time_and_a_player(client, ward, service):
    r = client.get("/nghe-lai/phuong")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.text
    assert "Nghe lại bản tin" in page and '<html lang="vi">' in page
    assert "Lịch tiêm chủng" in page and "Lịch tiêm chủng: mời bà con chú ý." in page
    assert "Tổ dân phố 1, Tổ dân phố 2" in page
    assert service.local(ward["start"]).strftime("%d/%m/%Y %H:%M") in page
    assert page.count('<audio controls preload="none"') == 2
    for hidden in ("Thu gom rác", "Họp tổ", "Lễ hội", "Tin bị rút lại", "Tin đã sửa", "Tin âm thanh khác",
                   "Tin phường hai"):
        assert hidden not in page, hidden
    assert len(r.data) < 20_000  # small on 3G
    assert "<script" not in page and "style=" not in page  # CSP: none needed
    english = client.get("/nghe-lai/phuong?lang=en&zone=to-1").text
    assert "Re-listen to the bulletins" in english and "Cắt điện" not in english


def test_the_audio_plays_without_login_only_while_listed(client, ward, service):
    anns, api = ward["anns"], ward["api"]
    sha = anns["aired"]["media"]["sha256"]
    r = client.get(f"/nghe-lai/phuong/audio/{sha}.mp3")
    assert r.status_code == 200 and r.mimetype == "audio/mpeg"
    assert r.data == service.media.path(sha, "mp3").read_bytes()
    assert r.headers["Cache-Control"].startswith("public")
    part = client.get(f"/nghe-lai/phuong/audio/{sha}.mp3", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    # not listed here: another ward's, an unapproved one's (old and newer render), one never aired, garbage
    edited = api.get(f"/api/v1/announcements/{anns['edited']['id']}").json
    for other in (anns["p2"]["media"]["sha256"], anns["rejected"]["media"]["sha256"],
                  anns["edited"]["media"]["sha256"], edited["media"]["sha256"], anns["later"]["media"]["sha256"],
                  "0" * 64, "xyz"):
        assert client.get(f"/nghe-lai/phuong/audio/{other}.mp3").status_code == 404, other
    assert client.get(f"/nghe-lai/p2/audio/{anns['p2']['media']['sha256']}.mp3").status_code == 200


def test_nothing_older_than_thirty_days(app, client, ward, monkeypatch):
    app.config["RELISTEN_CACHE_S"] = 0  # (lists are kept a minute: here the clock jumps)
    later = ward["start"] + timedelta(days=30, minutes=1)
    monkeypatch.setattr(relisten, "clock", lambda: later)
    assert [i["title"] for i in client.get("/nghe-lai/phuong.json").json["items"]] == ["Cắt điện"]
    monkeypatch.setattr(relisten, "clock", lambda: ward["start"] + timedelta(days=31))
    assert client.get("/nghe-lai/phuong.json").json["items"] == []
    assert "Chưa có bản tin nào" in client.get("/nghe-lai/phuong").text


def test_cached_with_an_etag_and_304_and_computed_again_only_when_the_data_changed(app, client, ward, service):
    app.config["RELISTEN_RECHECK_S"] = 60  # (default 2 s) no check of the data's version until said otherwise
    cache = relisten.cache_of(service)
    cache.clear()
    before = cache.computed
    r = client.get("/nghe-lai/phuong.json")
    assert r.headers["Cache-Control"] == "public, max-age=60" and r.headers.get("ETag")
    again = client.get("/nghe-lai/phuong.json", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    html = client.get("/nghe-lai/phuong")
    assert html.headers["Cache-Control"] == "public, max-age=60"
    assert client.get("/nghe-lai/phuong", headers={"If-None-Match": html.headers["ETag"]}).status_code == 304
    assert client.get("/nghe-lai/phuong.json?zone=to-1").status_code == 200  # a zone's: narrowed in memory
    assert cache.computed == before + 1  # one computation for the five requests
    # within the recheck interval a change is not looked for
    ward["event"]("loa-02", "playback_finished", "failed")  # "Thu gom rác" now aired (loa-02 finished it)
    assert len(client.get("/nghe-lai/phuong.json").json["items"]) == 2 and cache.computed == before + 1
    app.config["RELISTEN_RECHECK_S"] = 0  # from now on every request checks the data's version
    fresh = client.get("/nghe-lai/phuong.json", headers={"If-None-Match": r.headers["ETag"]})
    assert fresh.status_code == 200 and [i["title"] for i in fresh.json["items"]] == [
        "Cắt điện", "Thu gom rác", "Lịch tiêm chủng"]
    assert cache.computed == before + 2
    for _ in range(3):  # nothing changed: the cached list, however often it is checked
        assert client.get("/nghe-lai/phuong.json").status_code == 200
    assert cache.computed == before + 2
    # an approval withdrawn: gone from the list and its audio no longer served, at the next request
    sha = ward["anns"]["aired"]["media"]["sha256"]
    assert client.get(f"/nghe-lai/phuong/audio/{sha}.mp3").status_code == 200
    r = ward["api"].post(f"/api/v1/announcements/{ward['anns']['aired']['id']}/reject", json={"comment": "Sai"})
    assert r.status_code == 200, r.json
    assert [i["title"] for i in client.get("/nghe-lai/phuong.json").json["items"]] == ["Cắt điện", "Thu gom rác"]
    assert client.get(f"/nghe-lai/phuong/audio/{sha}.mp3").status_code == 404
    # and after the minute the list is computed again whatever the version says
    app.config["RELISTEN_RECHECK_S"], app.config["RELISTEN_CACHE_S"] = 60, 0
    computed = cache.computed
    client.get("/nghe-lai/phuong.json")
    assert cache.computed == computed + 1


def test_rate_limited_per_client_with_a_vietnamese_429(app, client, ward):
    app.config["RELISTEN_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert client.get("/nghe-lai/phuong.json").status_code == 200
    r = client.get("/nghe-lai/phuong.json")
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    assert "Vui lòng chờ" in r.json["error"]["message"] and int(r.headers["Retry-After"]) >= 1
    page = client.get("/nghe-lai/phuong")
    assert page.status_code == 429 and "Quá nhiều lượt truy cập" in page.text
    # another address has its own allowance
    assert client.get("/nghe-lai/phuong.json", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200


def test_posters_one_per_group_with_a_qr_code_of_its_page(client, ward):
    r = client.get("/nghe-lai/phuong/poster")
    assert r.status_code == 200
    page = r.text
    assert page.count('class="poster"') == 2 and page.count("<svg") == 2
    assert "Nghe lại bản tin của Tổ dân phố 1" in page
    assert "http://localhost/nghe-lai/phuong?zone=to-1" in page and "http://localhost/nghe-lai/phuong?zone=to-2" in page
    village = client.get("/nghe-lai/p2/poster").text
    assert "Nghe lại bản tin của Thôn Một" in village
    assert client.get("/nghe-lai/nowhere/poster").status_code == 404
    assert client.get("/nghe-lai/phuong/poster?zone=x-1").status_code == 404


# ------------------------------------------------------------------------------------ end to end
def test_simulated_nodes_play_a_bulletin_and_citizens_can_hear_it_again(panel_stack):
    """Real broker, panel over HTTP, simulated nodes: an approved bulletin scheduled a few seconds ahead plays on
    the nodes of to-1; their proof of play reaches the panel over MQTT, and then — and only then — the public page
    lists it with an audio URL that plays the approved file without a login. A second, unapproved bulletin and a
    third one scheduled for later never appear."""
    stack = panel_stack.deploy({"to-1": ["loa-01", "loa-02"], "to-2": ["loa-03"]})
    ward_code = stack.api("GET", "/wards", 200)[0]["code"]
    text = "Ủy ban nhân dân phường thông báo: sáng mai thu gom rác sớm hơn thường lệ."
    ann = stack.api("POST", "/announcements", 201, json={"title": "Thu gom rác", "text": text, "approve": True})
    later = stack.api("POST", "/announcements", 201, json={"title": "Lễ hội", "text": "Lễ hội tối mai.",
                                                            "approve": True})
    draft = stack.api("POST", "/announcements", 201, json={"title": "Bản nháp", "text": "Chưa được duyệt."})
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0) + timedelta(seconds=1)
    stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-1"],
                                               "start_at": proto.format_ts(start)})
    stack.api("POST", "/schedules", 201, json={"announcement_id": later["id"], "zones": ["to-1", "to-2"],
                                               "start_at": proto.format_ts(start + timedelta(hours=2))})
    # an unapproved one may be scheduled (it stays out of the plans until approved) or refused: never aired
    stack.api("POST", "/schedules", json={"announcement_id": draft["id"], "zones": ["to-1"],
                                          "start_at": proto.format_ts(start + timedelta(seconds=30))})
    url = f"{stack.base}/nghe-lai/{ward_code}.json"
    assert requests.get(url, timeout=10).json()["items"] == []  # scheduled, not yet aired: nothing

    deadline = start.timestamp() + ann["media"]["duration_ms"] / 1000 + 15

    wait_for(lambda: len([p for p in stack.fleet.plays() if p["result"] == "finished"]) >= 2,
             deadline - time.time(), "both nodes of to-1 playing it")
    # default cache settings: the list cached before the airing is computed again once the reports arrive
    body = wait_for(lambda: (b := requests.get(url, timeout=10).json())["items"] and b, 10,
                    "the airing on the public page", step=0.5)
    assert [i["title"] for i in body["items"]] == ["Thu gom rác"]
    item = body["items"][0]
    assert item["zones"] == ["to-1"] and item["text"] == text
    assert datetime.fromisoformat(item["aired_at"]) == start
    r = requests.get(urljoin(stack.base, item["audio_url"]), timeout=10)  # no login, no token
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/mpeg"
    assert hashlib.sha256(r.content).hexdigest() == ann["media"]["sha256"]
    assert r.content == stack.service.media.path(ann["media"]["sha256"], "mp3").read_bytes()
    page = requests.get(f"{stack.base}/nghe-lai/{ward_code}?zone=to-1", timeout=10)
    assert page.status_code == 200 and "Thu gom rác" in page.text and "Lễ hội" not in page.text
    assert "Bản nháp" not in page.text
    assert requests.get(f"{stack.base}/nghe-lai/{ward_code}.json?zone=to-2", timeout=10).json()["items"] == []
    for other in (later, draft):
        sha = (other.get("media") or {}).get("sha256") or "0" * 64
        assert requests.get(f"{stack.base}/nghe-lai/{ward_code}/audio/{sha}.mp3", timeout=10).status_code == 404


def test_long_lists_come_in_pages_newest_first(client, ward, monkeypatch):
    monkeypatch.setattr(web_relisten, "PAGE_SIZE", 1)  # two airings: two pages
    first = client.get("/nghe-lai/phuong?zone=to-2").text
    assert "Cắt điện" in first and "Lịch tiêm chủng" not in first and "Trang 1/2" in first
    assert 'href="/nghe-lai/phuong?zone=to-2&amp;page=2" rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/nghe-lai/phuong?zone=to-2&page=2").text
    assert "Lịch tiêm chủng" in second and "Cắt điện" not in second and 'rel="next"' not in second
    assert 'href="/nghe-lai/phuong?zone=to-2" rel="prev"' in second
    assert "Lịch tiêm chủng" in client.get("/nghe-lai/phuong?zone=to-2&page=99").text  # the last page
    assert len(client.get("/nghe-lai/phuong.json?zone=to-2").json["items"]) == 2  # the JSON has them all


def test_a_node_that_does_not_copy_schedule_id_still_counts(client, ward, service):
    """``schedule_id`` is optional on the wire (protocol §6.5): the item id ``s<schedule>-<ms>`` names it too."""
    it = ward["items"]["loa-01"][ward["ids"]["later"]]
    payload = {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": 900, "event": "playback_finished",
               "at": it["start"], "item_id": it["id"], "sha256": it["media"]["sha256"],
               "scheduled_start": it["start"], "actual_start": it["start"]}
    service.ingest(service.topics.events("loa-01"), json.dumps(payload).encode())
    titles = [i["title"] for i in client.get("/nghe-lai/phuong.json").json["items"]]
    assert titles[0] == "Lễ hội", titles
