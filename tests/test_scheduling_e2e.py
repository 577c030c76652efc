"""End to end with simulated nodes: a recurring schedule entered through the API makes the nodes of its zone play
on the second, as the dry-run timeline said; a panel restart across a trigger time loses and duplicates nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devices.protocol import parse_ts

pytestmark = pytest.mark.slow

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LAYOUT = {"to-3": ["loa-01", "loa-02"], "to-5": ["loa-03"]}
TEXT = "Phường thông báo: sáng mai ra quân tổng vệ sinh môi trường."


@pytest.fixture
def stack(panel_stack):
    return panel_stack.deploy(LAYOUT)


def recurring(stack, first_in: float, gap_s: float) -> tuple[dict, dict, list[datetime]]:
    """A daily rule with two times today (local), ``first_in`` s from now and ``gap_s`` after."""
    ann = stack.api("POST", "/announcements", 201, json={"title": "Tổng vệ sinh", "text": TEXT, "approve": True})
    t1 = (datetime.now(UTC) + timedelta(seconds=first_in)).replace(microsecond=0) + timedelta(seconds=1)
    t2 = t1 + timedelta(seconds=gap_s)
    l1, l2 = t1.astimezone(VN), t2.astimezone(VN)
    sched = stack.api("POST", "/schedules", 201, json={
        "announcement_id": ann["id"], "zones": ["to-3"],
        "recurrence": {"kind": "daily", "start_date": l1.date().isoformat(), "until": l2.date().isoformat(),
                       "times": [l1.strftime("%H:%M:%S"), l2.strftime("%H:%M:%S")]}})
    return ann, sched, [t1, t2]


def finished(stack) -> list[dict]:
    return [p for p in stack.fleet.plays() if p["result"] == "finished"]


def wait_finished(stack, count: int, until: float) -> list[dict]:
    while time.time() < until and len(finished(stack)) < count:
        time.sleep(0.05)
    return finished(stack)


def dry_run_starts(stack, starts: list[datetime]) -> list[datetime]:
    out = []
    for day in sorted({s.astimezone(VN).date() for s in starts}):
        entries = stack.api("GET", f"/timeline?zone=to-3&date={day}", 200)["entries"]
        out += [parse_ts(e["start"]) for e in entries if e["audible"]]
    return out


def assert_played(stack, ann: dict, starts: list[datetime], plays: list[dict]) -> None:
    nodes = LAYOUT["to-3"]
    assert sorted((p["node_id"], parse_ts(p["scheduled_start"])) for p in plays) == sorted(
        (n, s) for n in nodes for s in starts), plays  # each node, each airing, exactly once
    for p in plays:
        assert p["sha256"] == ann["media"]["sha256"]
        offset = (parse_ts(p["actual_start"]) - parse_ts(p["scheduled_start"])).total_seconds() * 1000
        assert abs(offset) < 200, f"{p['node_id']} started {offset:.0f} ms off"


def test_recurring_schedule_plays_on_the_second_as_the_dry_run_said(stack):
    ann, sched, starts = recurring(stack, 5, 12)
    assert dry_run_starts(stack, starts) == starts
    deadline = starts[-1].timestamp() + ann["media"]["duration_ms"] / 1000 + 8
    plays = wait_finished(stack, 4, deadline)
    assert_played(stack, ann, starts, plays)
    rows = []
    for _ in range(100):
        rows = stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)
        if len(rows) == 4 and all(r["result"] == "played" for r in rows):
            break
        time.sleep(0.1)
    assert sorted(r["node_id"] for r in rows) == ["loa-01", "loa-01", "loa-02", "loa-02"]


def test_panel_restart_across_a_trigger_time_loses_and_duplicates_nothing(stack):
    ann, sched, starts = recurring(stack, 6, 14)
    versions = {}
    for node_id in LAYOUT["to-3"]:
        versions[node_id] = stack.api("GET", f"/nodes/{node_id}", 200)["plan_version"]
        assert stack.fleet.nodes[node_id].wait_for_plan(versions[node_id], timeout=10)
    stack.stop_panel()  # down across the first trigger
    assert time.time() < starts[0].timestamp() - 1, "test too slow to stop the panel before the trigger"
    dur_s = ann["media"]["duration_ms"] / 1000
    time.sleep(max(0.0, starts[0].timestamp() + dur_s + 1 - time.time()))
    assert len(finished(stack)) == 2  # played with the panel down
    stack.start_panel()  # back before the second trigger: roll-over on start
    assert time.time() < starts[1].timestamp() - 1, "test too slow to restart before the second trigger"
    for node_id in LAYOUT["to-3"]:  # nothing changed, so nothing was republished
        assert stack.api("GET", f"/nodes/{node_id}", 200)["plan_version"] == versions[node_id]
    plays = wait_finished(stack, 4, starts[1].timestamp() + dur_s + 8)
    time.sleep(1)
    plays = finished(stack)
    assert_played(stack, ann, starts, plays)
    rows = []
    for _ in range(100):
        rows = stack.api("GET", f"/plays?schedule_id={sched['id']}", 200)
        if len(rows) == 4 and all(r["result"] == "played" for r in rows):
            break
        time.sleep(0.1)
    assert len(rows) == 4 and all(r["result"] == "played" for r in rows), rows
    assert len({(r["node_id"], r["item_id"]) for r in rows}) == 4
