"""Plan building (pure): the window, ordering, versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from devices.protocol import MAX_PAYLOAD_BYTES, Plan, PlanItem, format_ts, parse_ts
from schedules.plans import build_plan, in_window, items_hash, next_version, plan_hash

NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 06:00 on the 23rd in Vietnam
H48 = timedelta(hours=48)


def item(start: datetime, schedule_id: int = 1, duration_ms: int = 90_000, priority: str = "normal") -> dict:
    sha = "a" * 64
    return {"id": f"s{schedule_id}-{int(start.timestamp() * 1000)}", "start": format_ts(start),
            "media": {"url": f"http://panel/media/{sha}.mp3", "sha256": sha, "bytes": 1000,
                      "duration_ms": duration_ms, "content_type": "audio/mpeg"},
            "priority": priority, "title": "Bản tin", "max_late_ms": 60_000, "schedule_id": str(schedule_id)}


def window(start: datetime, duration_ms: int = 90_000) -> bool:
    return in_window(start, start + timedelta(milliseconds=duration_ms), NOW, H48, max_late_ms=60_000)


def test_window_keeps_an_item_while_it_may_still_be_playing():
    assert window(NOW - timedelta(minutes=2), duration_ms=5 * 60_000)  # started 2 min ago, lasts 5
    assert not window(NOW - timedelta(minutes=10), duration_ms=60_000)  # finished
    assert window(NOW + H48 - timedelta(seconds=1))
    assert not window(NOW + H48)


def test_items_valid_on_the_wire():
    items = [item(NOW + timedelta(hours=1), 3, priority="emergency"), item(NOW + timedelta(hours=1), 2),
             item(NOW + timedelta(hours=2), 1)]
    plan = Plan.model_validate({**build_plan("loa-01", items, version=5, now=NOW, horizon=H48), "signature": "x"})
    assert [PlanItem.model_validate(i).id for i in items] == [i.id for i in plan.items]
    assert parse_ts(plan.valid_until) == NOW + H48


def test_hash_changes_only_when_items_change():
    a = [item(NOW + timedelta(hours=1))]
    assert items_hash(a) == items_hash([item(NOW + timedelta(hours=1))])
    assert items_hash(a) != items_hash([item(NOW + timedelta(hours=1), duration_ms=1)])
    assert plan_hash(a) == items_hash(a) and plan_hash(a, {"tz": "Asia/Ho_Chi_Minh"}) != items_hash(a)


MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(st.integers(min_value=0, max_value=2**62), MOMENTS)
def test_versions_strictly_increase(previous, now):
    assert next_version(previous, now) > previous


def test_an_overfull_plan_keeps_its_earliest_items_within_what_a_node_and_the_broker_accept(service):
    """2,400 airings in 48 h (a programme of 50 bulletins every hour) would be ~900 KB: the broker's packet limit
    would drop the panel's own connection. The plan keeps its earliest items and ends its window where it stops."""

    items = [item(NOW + timedelta(minutes=1 + i), i % 50 + 1) for i in range(2400)]
    wire = service.signed_plan("loa-01", items, 5, NOW, None)  # noqa: SLF001
    plan = json.loads(wire)
    kept = len(plan["items"])
    assert len(wire) <= MAX_PAYLOAD_BYTES and 0 < kept < 2400
    assert plan["items"] == items[:kept]
    assert parse_ts(plan["valid_until"]) == parse_ts(items[kept]["start"])
    Plan.model_validate(plan)  # what a node checks
    small = json.loads(service.signed_plan("loa-01", items[:3], 5, NOW, None))  # noqa: SLF001
    assert len(small["items"]) == 3 and parse_ts(small["valid_until"]) == NOW + service.horizon
