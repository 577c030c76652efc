"""Proof-of-play reports: planned vs played per bulletin, zone and day; compliance %; CSV; monthly statistics.

Plans come from real schedules (real plan building, real audio); the nodes' events go through the same
ingest as MQTT messages do."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from test_panel import login

from broadcaster import fleet
from devices import protocol as proto


@pytest.fixture
def aired(api, service, monkeypatch):
    """Two bulletins a few minutes from now, and the report read as if a quarter of an hour later (when both
    were due), with the nodes' reports of what they played."""
    for code in ("to-1", "to-2"):
        api.post("/api/v1/zones", json={"code": code, "name": f"Tổ {code}", "ward": "P1"})
    for node_id, zone in (("loa-01", "to-1"), ("loa-02", "to-1"), ("loa-03", "to-2")):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})
    a = api.post("/api/v1/announcements", json={"title": "Lịch tiêm chủng", "text": "Mời bà con đi tiêm.",
                                                "approve": True}).json
    b = api.post("/api/v1/announcements", json={"title": "Thu gom rác", "text": "Sáng mai thu gom rác.",
                                                "approve": True}).json
    start = datetime.now(UTC) + timedelta(minutes=3)
    sa = api.post("/api/v1/schedules", json={"announcement_id": a["id"], "zones": ["to-1", "to-2"],
                                             "start_at": proto.format_ts(start)})
    assert sa.status_code == 201, sa.json
    sb = api.post("/api/v1/schedules", json={"announcement_id": b["id"], "zones": ["to-1"],
                                             "start_at": proto.format_ts(start + timedelta(minutes=5))})
    assert sb.status_code == 201, sb.json
    monkeypatch.setattr(fleet, "_now", lambda: start + timedelta(minutes=15))
    items = {n: {it["schedule_id"]: it for it in service.get_node(n).plan_payload["items"]}
             for n in ("loa-01", "loa-02", "loa-03")}
    seq = {n: 0 for n in items}

    def event(node_id: str, name: str, schedule_id: int, reason: str | None = None) -> None:
        seq[node_id] += 1
        it = items[node_id][str(schedule_id)]
        payload = {"type": "event", "protocol": 1, "node_id": node_id, "seq": seq[node_id], "event": name,
                   "at": it["start"], "item_id": it["id"], "schedule_id": str(schedule_id),
                   "scheduled_start": it["start"]}
        if reason:
            payload["reason"] = reason
        service.ingest(service.topics.events(node_id), json.dumps(payload).encode())

    A, B = sa.json["id"], sb.json["id"]
    event("loa-01", "playback_started", A)
    event("loa-01", "playback_finished", A)
    event("loa-01", "playback_started", B)
    event("loa-01", "playback_finished", B)
    event("loa-02", "playback_started", A)
    event("loa-02", "playback_failed", A, "audio device error")
    event("loa-03", "playback_started", A)
    event("loa-03", "playback_finished", A)
    event("loa-03", "playback_finished", A)  # redelivered under a new seq: still one play
    day = service.local(start).date()
    return {"A": A, "B": B, "day": day, "duration_a": a["media"]["duration_ms"],
            "duration_b": b["media"]["duration_ms"]}


def period(day) -> str:
    return f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"


def test_planned_vs_played_per_day_zone_and_bulletin(api, aired):
    A, B, day = aired["A"], aired["B"], aired["day"]
    r = api.get(f"/api/v1/reports/compliance?{period(day)}")
    assert r.status_code == 200, r.json
    rows = {(x["day"], x["zone"], x["schedule_id"]): x for x in r.json["rows"]}
    d = day.isoformat()
    assert set(rows) == {(d, "to-1", A), (d, "to-1", B), (d, "to-2", A)}
    a1, b1, a2 = rows[(d, "to-1", A)], rows[(d, "to-1", B)], rows[(d, "to-2", A)]
    assert (a1["planned"], a1["played"], a1["failed"], a1["compliance"]) == (2, 1, 1, 50.0)
    assert a1["missing_nodes"] == ["loa-02"] and a1["title"] == "Lịch tiêm chủng" and a1["airings"] == 1
    assert (b1["planned"], b1["played"], b1["missing"], b1["compliance"]) == (2, 1, 1, 50.0)
    assert (a2["planned"], a2["played"], a2["compliance"]) == (1, 1, 100.0)
    assert (r.json["planned"], r.json["played"], r.json["compliance"]) == (5, 3, 60.0)
    # filters: one zone, one bulletin
    r = api.get(f"/api/v1/reports/compliance?{period(day)}&zone=to-2").json
    assert [(x["zone"], x["planned"]) for x in r["rows"]] == [("to-2", 1)]
    r = api.get(f"/api/v1/reports/compliance?{period(day)}&schedule_id={B}").json
    assert [(x["schedule_id"], x["played"]) for x in r["rows"]] == [(B, 1)]
    # a day with nothing planned
    empty = api.get(f"/api/v1/reports/compliance?from={day - timedelta(days=9)}&to={day - timedelta(days=8)}").json
    assert empty["rows"] == [] and empty["compliance"] is None


def test_compliance_csv_export(api, aired):
    r = api.get(f"/api/v1/reports/compliance.csv?{period(aired['day'])}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["day", "zone", "zone_name"] and rows[0][-1] == "compliance"
    assert len(rows) == 1 + 3 + 1 and rows[-1][0] == "total" and rows[-1][-1] == "60.0"
    by = {(x[1], x[3]): x for x in rows[1:-1]}
    assert by[("to-1", str(aired["B"]))][7] == "1"  # played


def test_monthly_statistics_for_the_province(api, aired):
    month = f"{aired['day'].year:04d}-{aired['day'].month:02d}"
    api.post("/api/v1/emergency-settings", json={"two_person": False})  # one admin releases, for the count
    em = api.post("/api/v1/emergencies", json={"title": "Bão số 3", "text": "Bão sắp đổ bộ.", "zones": ["to-1"]})
    assert em.status_code == 201, em.json
    drill = api.post("/api/v1/emergencies", json={"title": "Diễn tập", "text": "Diễn tập.", "zones": ["to-1"],
                                                  "drill": True})
    assert drill.status_code == 201, drill.json
    stats = api.get(f"/api/v1/reports/monthly?month={month}").json
    assert stats["month"] == month
    assert (stats["bulletins"], stats["airings"], stats["emergencies"], stats["drills"]) == (2, 3, 1, 1)
    assert (stats["planned_plays"], stats["played"], stats["success_rate"]) == (5, 3, 60.0)
    expected_minutes = round((2 * aired["duration_a"] + aired["duration_b"]) / 60000, 1)
    assert stats["minutes"] == expected_minutes
    r = api.get(f"/api/v1/reports/monthly.csv?month={month}")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][0] == "month" and rows[1][0] == month and rows[1][-1] == "60.0"


@pytest.mark.parametrize("query, code", [("from=yesterday", "invalid_date"), ("to=2026-02-30", "invalid_date")])
def test_bad_report_periods_refused(api, query, code):
    r = api.get(f"/api/v1/reports/compliance?{query}")
    assert r.status_code == 400 and r.json["error"]["code"] == code


@pytest.mark.parametrize("query, period", [("from=2026-03-10&to=2026-03-01", ("2026-03-01", "2026-03-10")),
                                           ("from=2024-01-01&to=2026-01-01", ("2024-12-31", "2026-01-01")),
                                           ("from=2026-03-01", ("2026-03-01", "2026-03-07"))])
def test_report_periods_are_put_in_order_and_bounded(api, query, period):
    """Dates the other way round are the same period; a report covers at most a year (the last of the range);
    the answer says which period it covers."""
    r = api.get(f"/api/v1/reports/compliance?{query}")
    assert r.status_code == 200 and (r.json["from"], r.json["to"]) == period


def test_bad_month_refused(api):
    r = api.get("/api/v1/reports/monthly?month=2026-13")
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_month"


def test_reports_page(client, aired):
    login(client)
    page = client.get(f"/reports?{period(aired['day'])}")
    assert page.status_code == 200 and "Tỉ lệ tuân thủ" in page.text and "Lịch tiêm chủng" in page.text
    assert "60,0 %" in page.text and 'id="monthly"' in page.text  # decimal comma
    assert aired["day"].strftime("%d/%m/%Y") in page.text and aired["day"].isoformat() not in page.text.replace(
        f'value="{aired["day"] - timedelta(days=1)}"', "").replace(f'value="{aired["day"] + timedelta(days=1)}"', "")
    # the month's chart per zone: an SVG named for screen readers, with its numbers as a table
    assert page.text.count('role="img"') == 2 and "Tổ to-1: đã phát 2/4 lượt theo kế hoạch" in page.text
    assert client.get(f"/reports/compliance.csv?{period(aired['day'])}").data.decode().startswith("\ufeffday,")
    assert client.get("/reports?from=bad").status_code == 400


def test_only_airings_whose_time_has_passed_are_planned(api, service):
    """A daily bulletin from three days ago to three days ahead (today skipped, whatever the hour): the report
    plans the three past airings per loudspeaker, none of which was reported, and counts the three to come apart
    ("sắp phát") instead of as missed."""
    api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1", "ward": "P1"})
    for node_id in ("loa-01", "loa-02"):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": "to-1"})
    a = api.post("/api/v1/announcements", json={"title": "Lịch tiêm chủng", "text": "Mời bà con đi tiêm.",
                                                "approve": True}).json
    today = service.local(datetime.now(UTC)).date()
    r = api.post("/api/v1/schedules", json={"announcement_id": a["id"], "zones": ["to-1"], "recurrence": {
        "kind": "daily", "start_date": str(today - timedelta(days=3)), "until": str(today + timedelta(days=3)),
        "times": ["09:00"], "exdates": [str(today)]}})
    assert r.status_code == 201, r.json
    query = f"from={today - timedelta(days=3)}&to={today + timedelta(days=3)}"
    report = api.get(f"/api/v1/reports/compliance?{query}").json
    assert (report["planned"], report["played"], report["compliance"]) == (6, 0, 0.0)
    assert (report["upcoming"], report["upcoming_airings"]) == (6, 3)
    assert {x["day"] for x in report["rows"]} == {str(today - timedelta(days=d)) for d in (1, 2, 3)}
    # the same numbers per zone and day for the charts, every day of the period (future days empty)
    [zone] = fleet.daily_by_zone(report)
    assert zone["zone"] == "to-1" and len(zone["days"]) == 7 and (zone["planned"], zone["played"]) == (6, 0)
    assert [d["planned"] for d in zone["days"]] == [2, 2, 2, 0, 0, 0, 0]
    # as if the whole week were over: everything is due, nothing to come
    later = fleet.compliance(service, today - timedelta(days=3), today + timedelta(days=3),
                             now=datetime.now(UTC) + timedelta(days=5))
    assert (later["planned"], later["upcoming"]) == (12, 0)
    # the month's statistics count the due airings only
    month = f"{today.year:04d}-{today.month:02d}"
    stats = api.get(f"/api/v1/reports/monthly?month={month}").json
    in_month = [today + timedelta(days=d) for d in (-3, -2, -1, 1, 2, 3)]
    past = sum(1 for d in in_month[:3] if d.month == today.month)
    assert (stats["airings"], stats["planned_plays"], stats["played"]) == (past, 2 * past, 0)
    assert stats["upcoming_airings"] == sum(1 for d in in_month[3:] if d.month == today.month)
