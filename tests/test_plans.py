"""Plan building (pure): the window, ordering, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from devices.protocol import Plan, PlanItem, parse_ts
from schedules.plans import Occurrence, build_plan, in_window, items_hash, next_version, plan_items

NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 06:00 on the 23rd in Vietnam
H48 = timedelta(hours=48)


def occ(start: datetime, schedule_id: int = 1, duration_ms: int = 90_000, priority: str = "normal") -> Occurrence:
    return Occurrence(schedule_id=schedule_id, start=start, priority=priority, title="Bản tin", sha256="a" * 64,
                      size=1000, duration_ms=duration_ms)


def test_window_keeps_an_item_while_it_may_still_be_playing():
    long_item = occ(NOW - timedelta(minutes=2), duration_ms=5 * 60_000)  # started 2 min ago, lasts 5
    assert in_window(long_item, NOW, H48, max_late_ms=60_000)
    finished = occ(NOW - timedelta(minutes=10), duration_ms=60_000)
    assert not in_window(finished, NOW, H48, max_late_ms=60_000)
    assert in_window(occ(NOW + H48 - timedelta(seconds=1)), NOW, H48, 60_000)
    assert not in_window(occ(NOW + H48), NOW, H48, 60_000)


def test_items_sorted_by_start_then_priority_and_valid_on_the_wire():
    occs = [occ(NOW + timedelta(hours=2), 1), occ(NOW + timedelta(hours=1), 2),
            occ(NOW + timedelta(hours=1), 3, priority="emergency")]
    items = plan_items(occs, lambda sha: f"http://panel/media/{sha}.mp3", now=NOW, horizon=H48, max_late_ms=60_000)
    assert [i["schedule_id"] for i in items] == ["3", "2", "1"]
    plan = Plan.model_validate({**build_plan("loa-01", items, version=5, now=NOW, horizon=H48), "signature": "x"})
    assert [PlanItem.model_validate(i).id for i in items] == [i.id for i in plan.items]
    assert parse_ts(plan.valid_until) == NOW + H48


def test_hash_changes_only_when_items_change():
    a = plan_items([occ(NOW + timedelta(hours=1))], str, now=NOW, horizon=H48, max_late_ms=60_000)
    b = plan_items([occ(NOW + timedelta(hours=1))], str, now=NOW + timedelta(minutes=5), horizon=H48,
                   max_late_ms=60_000)
    assert items_hash(a) == items_hash(b)
    c = plan_items([occ(NOW + timedelta(hours=1), duration_ms=1)], str, now=NOW, horizon=H48, max_late_ms=60_000)
    assert items_hash(a) != items_hash(c)


MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(st.integers(min_value=0, max_value=2**62), MOMENTS)
def test_versions_strictly_increase(previous, now):
    assert next_version(previous, now) > previous
