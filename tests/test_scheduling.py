"""Scheduling through the API on a real database and real rendered audio: recurrence, programmes, priorities and
pre-emption, clashes, quiet hours, the dry-run timeline, and that plans are exactly the timeline's audible entries."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_panel import csrf, login

from broadcaster.airtime import Catalog, ZoneSlots, entries_to_items
from devices import protocol as proto
from schedules.timeline import Slot, SlotItem, build_timeline

VN = ZoneInfo("Asia/Ho_Chi_Minh")
TEXT = "Ủy ban nhân dân phường thông báo lịch tiêm phòng cho trẻ em tại trạm y tế phường."
VOV1 = "https://stream.vov.vn/vov1.mp3"


@pytest.fixture
def ward(api, client):
    api.put = lambda url, **kw: client.put(url, headers=api.headers, **kw)
    assert api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ dân phố 3"}).status_code == 201
    assert api.post("/api/v1/zones", json={"code": "to-5", "name": "Tổ dân phố 5"}).status_code == 201
    for node_id, zone in (("loa-01", "to-3"), ("loa-02", "to-3"), ("loa-03", "to-5")):
        assert api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone}).status_code == 201
    # the admin's list of stream sources: a programme may relay only these (release policy R1)
    assert api.post("/api/v1/stream-sources", json={"code": "vov1", "name": "VOV1", "url": VOV1}).status_code == 201
    return api


def announcement(api, title="Tiêm phòng", approve=True) -> dict:
    r = api.post("/api/v1/announcements", json={"title": title, "text": TEXT, "approve": approve})
    assert r.status_code == 201 and r.json["status"] == "ready", r.json
    return r.json


def schedule(api, expect=201, **body) -> dict:
    r = api.post("/api/v1/schedules", json=body)
    assert r.status_code == expect, r.json
    return r.json


def timeline(api, zone="to-3", day: date | str = "", **kw) -> list[dict]:
    r = api.get("/api/v1/timeline", query_string={"zone": zone, "date": str(day), **kw})
    assert r.status_code == 200, r.json
    return r.json["entries"]


def local(e: dict) -> str:
    return e["start_local"][11:19]


def tomorrow() -> date:
    return (datetime.now(UTC).astimezone(VN) + timedelta(days=1)).date()


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=VN).astimezone(UTC)


def plan(service, node_id: str) -> dict:
    return service.get_node(node_id).plan_payload


# ------------------------------------------------------------------------------ real ward schedules
def test_six_and_five_pm_every_weekday_in_march_and_april_except_the_holiday(ward):
    ann = announcement(ward)
    s = schedule(ward, announcement_id=ann["id"], zones=["to-3"],
                 recurrence={"kind": "weekdays", "start_date": "2027-03-01", "until": "2027-04-30",
                             "times": ["06:00", "17:00"], "exdates": ["2027-04-30"]})
    assert s["rrule"].startswith("DTSTART;TZID=Asia/Ho_Chi_Minh:20270301T060000")
    assert "30/04/2027" in s["describe"] and "6:00 và 17:00" in s["describe"]
    monday = timeline(ward, day="2027-03-01")
    assert [(local(e), e["state"], e["schedule_id"]) for e in monday] == [
        ("06:00:00", "play", s["id"]), ("17:00:00", "play", s["id"])]
    # 06:00 in Vietnam is 23:00 UTC of the day before: the day is the local one
    assert monday[0]["start"] == "2027-02-28T23:00:00.000Z"
    assert monday[0]["why"].startswith("scheduled")
    assert monday[0]["end"] == proto.format_ts(at(date(2027, 3, 1), 6) + timedelta(
        milliseconds=ann["media"]["duration_ms"]))
    assert timeline(ward, day="2027-03-06") == []  # Saturday
    assert timeline(ward, day="2027-04-30") == []  # the holiday
    assert len(timeline(ward, day="2027-04-29")) == 2
    assert timeline(ward, day="2027-05-03") == []  # after the last day
    assert timeline(ward, zone="to-5", day="2027-03-01") == []  # another zone
    week = timeline(ward, day="2027-03-01", days=7)
    assert len(week) == 10
    by_node = ward.get("/api/v1/timeline", query_string={"node": "loa-02", "date": "2027-03-01"}).json
    assert by_node["zone"] == "to-3" and len(by_node["entries"]) == 2


def test_every_hour_seven_to_seventeen_monday_to_friday_as_fields_and_as_rfc5545(ward):
    ann = announcement(ward)
    a = schedule(ward, announcement_id=ann["id"], zones=["to-3"],
                 recurrence={"kind": "hourly", "start_date": "2027-03-01", "times": ["07:00"],
                             "hour_range": [7, 17], "weekdays": ["mon", "tue", "wed", "thu", "fri"]})
    monday = timeline(ward, day="2027-03-01")
    assert [local(e) for e in monday] == [f"{h:02d}:00:00" for h in range(7, 18)]
    assert timeline(ward, day="2027-03-07") == []  # Sunday
    hours = ",".join(str(h) for h in range(7, 18))
    b = schedule(ward, announcement_id=ann["id"], zones=["to-5"],
                 rrule=f"DTSTART;TZID=Asia/Ho_Chi_Minh:20270301T070000\n"
                       f"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR={hours};BYMINUTE=0;BYSECOND=0")
    assert b["recurrence"]["kind"] in ("hourly", "weekdays") and a["id"] != b["id"]
    assert [local(e) for e in timeline(ward, zone="to-5", day="2027-03-01")] == [local(e) for e in monday]


def test_monthly_last_day_and_expiry(ward):
    ann = announcement(ward)
    schedule(ward, announcement_id=ann["id"], zones=["to-3"], expires_at="2027-04-30T00:00:00",
             recurrence={"kind": "monthly", "start_date": "2027-01-01", "month_days": [-1], "times": ["18:00"]})
    assert [local(e) for e in timeline(ward, day="2027-02-28")] == ["18:00:00"]
    assert timeline(ward, day="2027-02-27") == []
    assert [local(e) for e in timeline(ward, day="2027-03-31")] == ["18:00:00"]
    assert timeline(ward, day="2027-04-30") == []  # expired: a bulletin never plays after its expiry


def test_bad_recurrences_are_refused_with_a_clear_error_and_nothing_stored(ward):
    ann = announcement(ward)
    bad = [
        ({"kind": "weekdays", "start_date": "2027-03-01", "times": []}, "invalid_recurrence"),
        ({"kind": "weekly", "start_date": "2027-03-01", "times": ["25:00"]}, "invalid_recurrence"),
        ({"kind": "daily", "start_date": "2027-03-05", "until": "2027-03-01", "times": ["06:00"]},
         "no_occurrence"),  # it ends before it starts: it never plays
        ({"kind": "hourly", "start_date": "2027-03-01", "times": ["07:00"], "hour_range": [7, 24]},
         "invalid_recurrence"),
        ({"kind": "hourly", "start_date": "2027-03-01", "times": ["07:00"]}, "invalid_recurrence"),
        ({"kind": "daily", "start_date": "2020-01-01", "until": "2020-02-01", "times": ["06:00"]},
         "no_occurrence"),
    ]
    for rec, code in bad:
        r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"], "recurrence": rec})
        assert r.status_code == (409 if code == "no_occurrence" else 400), (rec, r.json)
        assert r.json["error"]["code"] == code, (rec, r.json)
    r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"]})
    assert r.json["error"]["code"] == "when_required"
    assert ward.get("/api/v1/schedules").json == []


# ---------------------------------------------------------------------------------- plans = timeline
def test_plan_items_are_exactly_the_audible_timeline_entries(ward, service):
    ann = announcement(ward)
    day = tomorrow()
    schedule(ward, announcement_id=ann["id"], zones=["to-3"],
             recurrence={"kind": "daily", "start_date": day.isoformat(), "times": ["06:30", "11:00", "17:15"]})
    entries = timeline(ward, day=day) + timeline(ward, day=day + timedelta(days=1))
    now = datetime.now(UTC)
    expected = [(e["plan_item_id"], e["start"]) for e in entries
                if e["audible"] and proto.parse_ts(e["start"]) < now + timedelta(hours=48)]
    for node_id in ("loa-01", "loa-02"):
        p = plan(service, node_id)
        assert [(i["id"], i["start"]) for i in p["items"]] == expected
        assert all(i["media"]["sha256"] == ann["media"]["sha256"] for i in p["items"])
        assert p["tz"] == "Asia/Ho_Chi_Minh"
        proto.decode_signed(proto.Plan, proto.encode(p), proto.load_public_key(service.public_key_b64),
                            node_id=node_id)
    assert plan(service, "loa-03")["items"] == []


def test_programme_with_stream_relay_silence_and_repeats(ward, service):
    ann = announcement(ward)
    day = tomorrow()
    dur = ann["media"]["duration_ms"]
    s = schedule(ward, zones=["to-3"], title="Chương trình sáng", repeat=2, gap_ms=5000,
                 items=[{"kind": "announcement", "announcement_id": ann["id"]},
                        {"kind": "silence", "duration_ms": 2000},
                        {"kind": "stream", "source": "vov1", "duration_ms": 60_000, "title": "VOV1"}],
                 recurrence={"kind": "once", "start_date": day.isoformat(), "times": ["10:00"]})
    t0 = at(day, 10)
    entries = timeline(ward, day=day)
    kinds = [(e["item"]["kind"], e["item"]["repeat"]) for e in entries]
    assert kinds == [("announcement", 0), ("silence", 0), ("stream", 0), ("announcement", 1), ("silence", 1),
                     ("stream", 1)]
    second = t0 + timedelta(milliseconds=dur + 2000 + 60_000 + 5000)
    assert entries[3]["start"] == proto.format_ts(second)
    items = plan(service, "loa-01")["items"]
    assert [("media" in i, "stream" in i) for i in items] == [(True, False), (False, True)] * 2  # silence: a gap
    assert items[1]["stream"] == {"url": VOV1, "duration_ms": 60_000}
    assert items[1]["start"] == proto.format_ts(t0 + timedelta(milliseconds=dur + 2000))
    assert all(i["schedule_id"] == str(s["id"]) for i in items)


def test_higher_priority_cuts_a_relay_which_resumes_with_end_at_on_the_cut_item(ward, service):
    ann = announcement(ward, "Tin ưu tiên")
    day = tomorrow()
    relay = schedule(ward, zones=["to-3"], items=[{"kind": "stream", "url": VOV1, "duration_ms": 30 * 60_000}],
                     recurrence={"kind": "once", "start_date": day.isoformat(), "times": ["10:00"]})
    # the clash is shown first (a priority bulletin inside the relay), then accepted
    r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"], "priority": "priority",
                                             "start_at": f"{day.isoformat()}T10:10:00"})
    assert r.status_code == 409
    assert [(c["schedule_id"], c["relation"]) for c in r.json["conflicts"]] == [(relay["id"], "lower")]
    cut = schedule(ward, announcement_id=ann["id"], zones=["to-3"], priority="priority", conflict="append",
                   start_at=f"{day.isoformat()}T10:10:00")
    entries = timeline(ward, day=day)
    assert [(e["schedule_id"], e["state"]) for e in entries] == [
        (relay["id"], "preempted"), (cut["id"], "play"), (relay["id"], "resumed")]
    assert entries[0]["why"].startswith(f"preempted_by:{cut['id']}")
    items = plan(service, "loa-01")["items"]
    assert items[0]["end_at"] == proto.format_ts(at(day, 10, 10))
    assert items[0]["stream"]["duration_ms"] == 30 * 60_000
    assert items[1]["priority"] == "priority" and "end_at" not in items[1]
    resumed_at = at(day, 10, 10) + timedelta(milliseconds=ann["media"]["duration_ms"])
    assert items[2]["start"] == proto.format_ts(resumed_at) and "end_at" not in items[2]
    assert items[0]["id"] != items[2]["id"]


def test_on_preempt_drop_cancels_the_rest(ward, service):
    ann = announcement(ward)
    day = tomorrow()
    schedule(ward, zones=["to-3"], on_preempt="drop", items=[{"kind": "stream", "url": VOV1, "duration_ms": 600_000}],
             recurrence={"kind": "once", "start_date": day.isoformat(), "times": ["08:00"]})
    schedule(ward, announcement_id=ann["id"], zones=["to-3"], priority="priority",
             start_at=f"{day.isoformat()}T08:05:00", conflict="override")
    assert [e["state"] for e in timeline(ward, day=day)] == ["preempted", "play"]
    items = plan(service, "loa-01")["items"]
    assert len(items) == 2 and items[0]["end_at"] == proto.format_ts(at(day, 8, 5))


# ----------------------------------------------------------------------------------------- clashes
def test_same_priority_clash_needs_a_choice_append_or_override(ward):
    a1, a2 = announcement(ward, "Tin 1"), announcement(ward, "Tin 2")
    day = tomorrow()
    first = schedule(ward, announcement_id=a1["id"], zones=["to-3"], start_at=f"{day}T07:00:00")
    body = {"announcement_id": a2["id"], "zones": ["to-3", "to-5"], "start_at": f"{day}T07:00:02"}
    r = ward.post("/api/v1/schedules", json=body)
    assert r.status_code == 409 and r.json["error"]["code"] == "schedule_conflict"
    (c,) = r.json["conflicts"]
    assert c["schedule_id"] == first["id"] and c["relation"] == "same_priority" and c["title"] == "Tin 1"
    assert c["start_local"].endswith("07:00:00+07:00")
    assert len(ward.get("/api/v1/schedules").json) == 1  # nothing stored
    appended = schedule(ward, **body, conflict="append")
    entries = timeline(ward, day=day)
    assert [e["schedule_id"] for e in entries] == [first["id"], appended["id"]]
    assert entries[1]["start"] == entries[0]["end"] and entries[1]["why"].startswith(f"appended_after:{first['id']}")
    # to-5 has no clash: the new one plays on time there
    assert local(timeline(ward, zone="to-5", day=day)[0]) == "07:00:02"
    # a third one overrides the first
    third = schedule(ward, announcement_id=a2["id"], zones=["to-3"], start_at=f"{day}T06:59:59", conflict="override")
    states = {(e["schedule_id"], e["state"]) for e in timeline(ward, day=day)}
    assert (first["id"], "dropped") in states and (third["id"], "play") in states


def test_no_clash_no_409(ward):
    ann = announcement(ward)
    day = tomorrow()
    schedule(ward, announcement_id=ann["id"], zones=["to-3"], start_at=f"{day}T07:00:00")
    schedule(ward, announcement_id=ann["id"], zones=["to-3"], start_at=f"{day}T08:00:00")
    schedule(ward, announcement_id=ann["id"], zones=["to-5"], start_at=f"{day}T07:00:00")


# ------------------------------------------------------------------------------------- quiet hours
def test_quiet_hours_refused_at_scheduling_time_except_live_emergencies(ward, service):
    assert ward.get("/api/v1/settings/quiet-hours").json["quiet_hours"] is None  # tests run with none
    r = ward.post("/api/v1/settings/quiet-hours", json={})
    assert r.status_code == 405
    r = ward.put("/api/v1/settings/quiet-hours", json={"quiet_hours": "22:00-05:00"})
    assert r.status_code == 200 and r.json["quiet_hours"] == {"start": "22:00", "end": "05:00"}
    assert sorted(r.json["republished"]) == ["loa-01", "loa-02", "loa-03"]
    assert plan(service, "loa-01")["quiet_hours"] == {"start": "22:00", "end": "05:00"}
    ann = announcement(ward)
    day = tomorrow()
    for start in ("23:00:00", "03:15:00", "04:59:59"):
        r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                 "start_at": f"{day}T{start}"})
        assert r.status_code == 409 and r.json["error"]["code"] == "quiet_hours", start
    # an item that would still sound at 22:00 is refused too; a daily rule with one quiet airing is refused
    r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                             "start_at": f"{day}T21:59:59"})
    assert r.json["error"]["code"] == "quiet_hours"
    r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"], "recurrence": {
        "kind": "daily", "start_date": day.isoformat(), "times": ["06:00", "22:30"]}})
    assert r.json["error"]["code"] == "quiet_hours"
    assert ward.get("/api/v1/schedules").json == []
    schedule(ward, announcement_id=ann["id"], zones=["to-3"], start_at=f"{day}T05:00:00")  # quiet hours end
    assert [local(e) for e in timeline(ward, day=day)] == ["05:00:00"]
    # only the emergency path may sound in quiet hours: a schedule with emergency priority is refused (R2)
    for drill in (False, True):
        r = ward.post("/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"], "drill": drill,
                                                 "priority": "emergency", "start_at": f"{day}T23:30:00"})
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert len(ward.get("/api/v1/schedules").json) == 1


# ---------------------------------------------------------------------------- republish only affected
def test_edits_republish_only_the_nodes_they_affect(ward, service):
    ann = announcement(ward)
    day = tomorrow()
    versions = {n: service.get_node(n).plan_version for n in ("loa-01", "loa-02", "loa-03")}
    service.publisher.messages.clear()
    s = schedule(ward, announcement_id=ann["id"], zones=["to-5"], start_at=f"{day}T09:00:00")
    assert [t for t, *_ in service.publisher.messages] == ["loaphuong/v1/nodes/loa-03/plan"]
    assert service.get_node("loa-01").plan_version == versions["loa-01"]
    service.publisher.messages.clear()
    assert service.publish_plans() == []  # the roll-over publishes nothing when nothing changed
    ward.post(f"/api/v1/schedules/{s['id']}/cancel")
    assert [t for t, *_ in service.publisher.messages] == ["loaphuong/v1/nodes/loa-03/plan"]
    assert plan(service, "loa-03")["items"] == []


def test_scheduling_web_page_shows_the_clash_and_lets_the_officer_choose(client, ward, service):

    a1 = announcement(ward, "Tin 1")
    day = tomorrow()
    while day.weekday() >= 5:  # the clash must fall on a weekday, whatever day the suite runs
        day += timedelta(days=1)
    schedule(ward, announcement_id=a1["id"], zones=["to-3"], start_at=f"{day}T07:00:00")
    login(client)
    token = csrf(client, "/schedules/new")
    form = {"csrf_token": token, "announcement_id": str(a1["id"]), "zones": ["to-3"], "kind": "weekdays",
            "start_date": day.isoformat(), "times": "07:00, 17:00", "priority": "normal", "repeat": "1"}
    r = client.post("/schedules/new", data=form)
    assert r.status_code == 409 and "trùng giờ" in r.text and "Ghi đè chương trình cũ" in r.text
    assert re.search(r'name="times" value="07:00, 17:00"', r.text)  # the form keeps what was typed
    r = client.post("/schedules/new", data={**form, "conflict": "append"})
    assert r.status_code == 302 and "/calendar" in r.headers["Location"]
    page = client.get(r.headers["Location"]).text
    assert "Lịch tuần, tháng" in page and "Trùng giờ với" in page and 'name="viewport"' in page
    page = client.get(f"/timeline?zone=to-3&date={day}").text
    assert "Chờ lịch #1 phát xong rồi phát" in page and "appended_after" not in page  # reasons in words
    assert "các ngày trong tuần" in client.get("/schedules").text
    r = client.post("/schedules/new", data={**form, "times": "6:61"})
    assert r.status_code == 400 and "Giờ phát không hợp lệ" in r.text


def test_a_time_already_gone_today_means_tomorrow(client, ward, service):
    """"6h30" typed in the afternoon with the form's default date (today): the next 6h30, tomorrow, said so."""

    assert ward.put("/api/v1/settings/quiet-hours", json={"quiet_hours": "off"}).status_code == 200
    a1 = announcement(ward, "Tin 1")
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    gone = (now - timedelta(minutes=2)).strftime("%H:%M")  # two minutes ago (yesterday's clock just after 0:00)
    expected = now.date() + timedelta(days=1) if gone <= now.strftime("%H:%M") else now.date()
    login(client)
    form = {"csrf_token": csrf(client, "/schedules/new"), "announcement_id": str(a1["id"]), "zones": ["to-3"],
            "kind": "once", "day": now.strftime("%d/%m/%Y"), "times": gone.replace(":", "h")}
    r = client.post("/schedules/new", data=form)
    assert r.status_code == 302, r.text[:2000]
    (sched,) = ward.get("/api/v1/schedules").json
    assert sched["start_at_local"].startswith(f"{expected.isoformat()}T{gone}")
    if expected != now.date():
        assert "đã lên lịch cho ngày mai" in client.get(r.headers["Location"]).text
    # a date typed in the past is still refused: only today's date rolls over
    form["day"] = (now.date() - timedelta(days=2)).strftime("%d/%m/%Y")
    assert client.post("/schedules/new", data=form).status_code == 409


def test_timeline_of_unknown_zone_or_bad_date(ward):
    assert ward.get("/api/v1/timeline?zone=nowhere").status_code == 404
    assert ward.get("/api/v1/timeline?zone=to-3&date=30/04/2027").json["error"]["code"] == "invalid_date"
    assert ward.get("/api/v1/timeline").json["error"]["code"] == "zone_required"


def test_emergency_slots_delivered_by_command_become_no_plan_items(service):
    t0 = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
    bulletin = Slot(7, t0, (SlotItem("stream", 600_000, VOV1, "VOV1"),))
    alert = Slot(-3, t0 + timedelta(minutes=2), (SlotItem("announcement", 30_000, "alert:3", "Bão"),),
                 priority="emergency", on_preempt="drop", created_seq=10**13)
    zs = ZoneSlots([bulletin, alert], Catalog(), {})
    entries = build_timeline(zs.slots, t0, t0 + timedelta(hours=1))
    items, _ = entries_to_items(service, entries, zs)
    assert [i["schedule_id"] for i in items] == ["7", "7"]  # cut, then resumed after the alert; no alert item
    assert items[0]["end_at"] == proto.format_ts(t0 + timedelta(minutes=2))
    assert items[1]["start"] == proto.format_ts(t0 + timedelta(minutes=2, seconds=30))


def test_a_piece_cut_to_under_a_millisecond_never_reaches_a_plan(service):
    """An alert released a fraction of a millisecond after a bulletin started cuts it to a piece that would read
    end_at == start on the wire (milliseconds): nodes refuse a whole plan for such an item. It is left out."""

    t0 = datetime(2027, 3, 1, 3, 0, 0, 100, tzinfo=UTC)
    bulletin = Slot(7, t0, (SlotItem("stream", 600_000, VOV1, "VOV1"),))
    alert = Slot(-3, t0 + timedelta(microseconds=400), (SlotItem("announcement", 30_000, "alert:3", "Bão"),),
                 priority="emergency", on_preempt="resume", created_seq=10**13)
    zs = ZoneSlots([bulletin, alert], Catalog(), {})
    entries = build_timeline(zs.slots, t0, t0 + timedelta(hours=1))
    assert any(e.schedule_id == 7 and e.end - e.start < timedelta(milliseconds=1) for e in entries)
    items, _ = entries_to_items(service, entries, zs)
    for item in items:  # every item is one a node accepts
        proto.PlanItem.model_validate(item)
    assert [i["schedule_id"] for i in items] == ["7"]  # only the resumed bulletin, after the alert


SLOTS = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 3600), st.sampled_from(["normal", "priority", "emergency"]),
              st.sampled_from(["resume", "drop"]), st.sampled_from(["append", "override"]),
              st.integers(1, 900), st.booleans()),
    min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SLOTS)
def test_plan_items_never_overlap_and_cover_every_audible_entry(service, raw):
    """Whatever the mix of priorities and choices, a node is never told to play two things at once."""

    t0 = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
    slots = [Slot(n + 1, t0 + timedelta(seconds=off), (SlotItem("stream", dur * 1000, f"{VOV1}?{n}"),),
                  priority=prio, on_preempt=pre, on_clash=clash, created_seq=sid, drill=drill)
             for n, (sid, off, prio, pre, clash, dur, drill) in enumerate(raw)]
    zs = ZoneSlots(slots, Catalog(), {})
    entries = build_timeline(slots, t0, t0 + timedelta(hours=3))
    items, _ = entries_to_items(service, entries, zs)
    assert len(items) == sum(1 for e in entries if e.audible and e.end > e.start)
    spans = sorted((proto.parse_ts(i["start"]), proto.parse_ts(i["end_at"]) if "end_at" in i else
                    proto.parse_ts(i["start"]) + timedelta(milliseconds=i["stream"]["duration_ms"])) for i in items)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start
    assert len({i["id"] for i in items}) == len(items)
