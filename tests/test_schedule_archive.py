"""Deleting a schedule with undo (POST /api/v1/schedules/{id}/archive and /restore): it leaves the nodes' plans and
the lists at once, comes back on restore, and a restore after its time has passed is refused with 409."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import ADMIN
from sqlalchemy import select
from test_panel import csrf, login
from test_scheduling import VN, announcement, plan, schedule, timeline, tomorrow, ward  # noqa: F401 (fixture)

from broadcaster.models import User
from broadcaster.services import ServiceError
from broadcaster.web.views_schedules import why_text


def test_archive_takes_it_out_of_plans_and_lists_and_restore_brings_it_back(ward, service):  # noqa: F811
    ann = announcement(ward)
    s = schedule(ward, announcement_id=ann["id"], zones=["to-3"],
                 recurrence={"kind": "weekly", "start_date": str(tomorrow()), "times": ["06:30"],
                             "weekdays": [0, 1, 2, 3, 4, 5, 6]})
    assert [i["schedule_id"] for i in plan(service, "loa-01")["items"]][:1] == [str(s["id"])]

    r = ward.post(f"/api/v1/schedules/{s['id']}/archive")
    assert r.status_code == 200 and r.json["status"] == "archived"
    assert plan(service, "loa-01")["items"] == [] and plan(service, "loa-02")["items"] == []
    assert ward.get("/api/v1/schedules").json == []
    assert ward.get(f"/api/v1/schedules/{s['id']}").json["status"] == "archived"
    assert timeline(ward, day=tomorrow()) == []
    assert ward.post(f"/api/v1/schedules/{s['id']}/archive").status_code == 200  # again: nothing changes

    r = ward.post(f"/api/v1/schedules/{s['id']}/restore")
    assert r.status_code == 200 and r.json["status"] == "active"
    assert [x["id"] for x in ward.get("/api/v1/schedules").json] == [s["id"]]
    assert [i["schedule_id"] for i in plan(service, "loa-01")["items"]][:1] == [str(s["id"])]
    r = ward.post(f"/api/v1/schedules/{s['id']}/restore")
    assert r.status_code == 409 and r.json["error"]["code"] == "not_archived"
    actions = [e["action"] for e in ward.get(f"/api/v1/audit?target={s['id']}").json]
    assert "schedule.archive" in actions and "schedule.restore" in actions
    assert ward.post("/api/v1/schedules/99999/archive").status_code == 404


def test_a_restore_after_its_time_has_passed_is_refused(ward, service):  # noqa: F811
    ann = announcement(ward)
    start = (datetime.now(UTC) + timedelta(minutes=30)).astimezone(VN)
    s = schedule(ward, announcement_id=ann["id"], zones=["to-3"], start_at=start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert ward.post(f"/api/v1/schedules/{s['id']}/archive").status_code == 200
    later = datetime.now(UTC) + timedelta(hours=1)
    with service.db.session() as db:
        admin = db.scalar(select(User).where(User.username == ADMIN[0]))
    with pytest.raises(ServiceError) as refused:
        service.restore_schedule(s["id"], admin, now=later)
    assert refused.value.code == "schedule_passed" and refused.value.status == 409
    assert ward.get("/api/v1/schedules").json == []


def test_quiet_hours_are_typed_as_people_say_them(ward, client):  # noqa: F811

    login(client)
    token = csrf(client, "/timeline?zone=to-3")
    r = client.post("/settings/quiet-hours", data={"csrf_token": token, "zone": "to-3", "start": "10 giờ tối",
                                                    "end": "5h"})
    assert r.status_code == 302
    assert ward.get("/api/v1/settings/quiet-hours").json["quiet_hours"] == {"start": "22:00", "end": "05:00"}
    r = client.post("/settings/quiet-hours", data={"csrf_token": token, "zone": "to-3", "start": "muộn",
                                                    "end": "5h"}, follow_redirects=True)
    assert "Giờ phát không hợp lệ (“muộn”)" in r.text
    assert ward.get("/api/v1/settings/quiet-hours").json["quiet_hours"]["start"] == "22:00"


def test_every_timeline_reason_is_said_in_vietnamese(app):
    """The "Lý do" of the timeline: words from the catalogue for every token of schedules/timeline.py, never the
    token or its English explanation."""

    cases = {
        "scheduled (on time)": "Đúng giờ theo lịch.",
        "appended_after:7 (same priority, append chosen)": "Chờ lịch #7 phát xong rồi phát.",
        "appended_after:-3 (emergency > normal, waited)": "Chờ tin khẩn cấp phát xong rồi phát.",
        "resumed_after:42 (interrupted item restarted)": "Phát lại sau khi bị lịch #42 ngắt.",
        "overrides:7,8 (override chosen)": "Ghi đè lịch #7, #8.",
        "preempted_by:42 (priority > normal)": "Bị ngắt bởi lịch #42 có mức ưu tiên cao hơn.",
        "preempted_by:-2 (emergency > normal)": "Bị ngắt bởi tin khẩn cấp.",
        "overridden_by:9 (override chosen by schedule 9)": "Bị lịch #9 ghi đè.",
        "quiet_hours (22:00-05:00)": "Không phát: đang trong giờ yên tĩnh.",
        "expired (expired at 2026-12-07T00:00:00Z)": "Không phát: đã hết hạn.",
        "overrides:7;appended_after:3 (override chosen; same priority, waited its turn)":
            "Ghi đè lịch #7. Chờ lịch #3 phát xong rồi phát.",
    }
    with app.test_request_context("/"):
        for why, said in cases.items():
            assert why_text({"why": why, "state": "play"}) == said, why
        assert why_text({"why": "", "state": "dropped"}) == "bị bỏ"
