"""Timeline (pure): priorities, pre-emption, override/append, quiet hours, expiry, repeats — tables + properties."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedules.quiet import QuietHours
from schedules.timeline import (
    AUDIBLE_STATES,
    Conflict,
    Entry,
    Slot,
    SlotItem,
    build_timeline,
    find_conflicts,
    slot_end,
)

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 06:00 on Monday 2 March in Vietnam
NIGHT = datetime(2026, 3, 2, 14, 58, tzinfo=UTC)  # 21:58 local
QUIET = QuietHours()
MIN = timedelta(minutes=1)


def m(minutes: float, base: datetime = T0) -> datetime:
    return base + timedelta(minutes=minutes)


def items(n: int, minutes: float = 1) -> tuple[SlotItem, ...]:
    return tuple(SlotItem("announcement", int(minutes * 60_000), f"sha{i}", f"Bản tin {i}") for i in range(n))


def slot(sid: int, start: float, n: int = 1, priority: str = "normal", *, seq: int | None = None, base: datetime = T0,
         minutes: float = 1, **kw) -> Slot:
    return Slot(sid, m(start, base), items(n, minutes), priority, created_seq=sid if seq is None else seq, **kw)


def rows(entries: list[Entry], base: datetime = T0) -> list[tuple]:
    """(start, end) in minutes from base, schedule, 'r<repeat>i<item>', state, first why token."""
    return [
        (round((e.start - base) / MIN, 2), round((e.end - base) / MIN, 2), e.schedule_id,
         f"r{e.repeat_index}i{e.item_index}", e.state, e.why.split(" ")[0])
        for e in entries
    ]


def run(slots: list[Slot], quiet: QuietHours | None = None, base: datetime = T0) -> list[tuple]:
    return rows(build_timeline(slots, base - timedelta(hours=2), base + timedelta(hours=3), quiet), base)


# -------------------------------------------------------------------------------------------- tables

CASES = [
    pytest.param(
        [slot(1, 0, 2)],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled")],
        id="alone-on-time",
    ),
    pytest.param(  # priority interrupts normal; normal resumes, interrupted item from its beginning
        [slot(1, 0, 3), slot(2, 1.5, 1, "priority")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"),
         (1, 1.5, 1, "r0i1", "preempted", "preempted_by:2"),
         (1.5, 2.5, 2, "r0i0", "play", "scheduled"),
         (2.5, 3.5, 1, "r0i1", "resumed", "resumed_after:2"),
         (3.5, 4.5, 1, "r0i2", "resumed", "resumed_after:2")],
        id="priority-preempts-normal-resume",
    ),
    pytest.param(
        [slot(1, 0, 3, on_preempt="drop"), slot(2, 1.5, 1, "priority")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"),
         (1, 1.5, 1, "r0i1", "preempted", "preempted_by:2"),
         (1.5, 2.5, 2, "r0i0", "play", "scheduled"),
         (2, 3, 1, "r0i2", "dropped", "preempted_by:2")],
        id="priority-preempts-normal-drop",
    ),
    pytest.param(
        [slot(1, 0, 2, "priority"), slot(2, 0.5, 1, "emergency")],
        None,
        [(0, 0.5, 1, "r0i0", "preempted", "preempted_by:2"),
         (0.5, 1.5, 2, "r0i0", "play", "scheduled"),
         (1.5, 2.5, 1, "r0i0", "resumed", "resumed_after:2"),
         (2.5, 3.5, 1, "r0i1", "resumed", "resumed_after:2")],
        id="emergency-preempts-priority",
    ),
    pytest.param(  # a lower one starting during a higher one waits (like append)
        [slot(1, 0, 3, "priority"), slot(2, 1, 1, "normal", seq=0)],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled"),
         (2, 3, 1, "r0i2", "play", "scheduled"), (3, 4, 2, "r0i0", "play", "appended_after:1")],
        id="lower-waits-for-higher",
    ),
    pytest.param(  # same priority, newer chose append: after the old one
        [slot(1, 0, 3), slot(2, 1, 1, on_clash="append")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled"),
         (2, 3, 1, "r0i2", "play", "scheduled"), (3, 4, 2, "r0i0", "play", "appended_after:1")],
        id="same-priority-append",
    ),
    pytest.param(  # append even when the new one was planned first: the old programme keeps its time
        [slot(1, 1, 2), slot(2, 0, 2, on_clash="append")],
        None,
        [(1, 2, 1, "r0i0", "play", "scheduled"), (2, 3, 1, "r0i1", "play", "scheduled"),
         (3, 4, 2, "r0i0", "play", "appended_after:1"), (4, 5, 2, "r0i1", "play", "appended_after:1")],
        id="same-priority-append-new-planned-first",
    ),
    pytest.param(  # same priority, newer chose override: the old one is cut and dropped
        [slot(1, 0, 3), slot(2, 1.5, 1, on_clash="override")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"),
         (1, 1.5, 1, "r0i1", "preempted", "overridden_by:2"),
         (1.5, 2.5, 2, "r0i0", "play", "overrides:1"),
         (2, 3, 1, "r0i2", "dropped", "overridden_by:2")],
        id="same-priority-override",
    ),
    pytest.param(  # override of an old slot planned to start during the new one: it never plays
        [slot(1, 1, 1), slot(2, 0, 3, on_clash="override")],
        None,
        [(0, 1, 2, "r0i0", "play", "overrides:1"), (1, 2, 2, "r0i1", "play", "overrides:1"),
         (1, 2, 1, "r0i0", "dropped", "overridden_by:2"), (2, 3, 2, "r0i2", "play", "overrides:1")],
        id="same-priority-override-old-not-started",
    ),
    pytest.param(  # the old one chose override long ago: that is about older slots, not newer ones
        [slot(1, 0, 3, on_clash="override"), slot(2, 1, 1)],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled"),
         (2, 3, 1, "r0i2", "play", "scheduled"), (3, 4, 2, "r0i0", "play", "appended_after:1")],
        id="override-belongs-to-the-newer",
    ),
    pytest.param(  # equal priority delayed into each other without a planned clash: no cut, FIFO
        [slot(1, 0, 2), slot(9, 0.5, 2, "emergency"), slot(2, 2, 1, seq=0, on_clash="override")],
        None,
        [(0, 0.5, 1, "r0i0", "preempted", "preempted_by:9"),
         (0.5, 1.5, 9, "r0i0", "play", "scheduled"), (1.5, 2.5, 9, "r0i1", "play", "scheduled"),
         (2.5, 3.5, 1, "r0i0", "resumed", "resumed_after:9"), (3.5, 4.5, 1, "r0i1", "resumed", "resumed_after:9"),
         (4.5, 5.5, 2, "r0i0", "play", "appended_after:1")],
        id="delayed-equal-priority-never-cut",
    ),
    pytest.param(  # chain of three: each interrupts the one below, they unwind in priority order
        [slot(1, 0, 3), slot(2, 1.5, 2, "priority"), slot(3, 2, 1, "emergency")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"),
         (1, 1.5, 1, "r0i1", "preempted", "preempted_by:2"),
         (1.5, 2, 2, "r0i0", "preempted", "preempted_by:3"),
         (2, 3, 3, "r0i0", "play", "scheduled"),
         (3, 4, 2, "r0i0", "resumed", "resumed_after:3"), (4, 5, 2, "r0i1", "resumed", "resumed_after:3"),
         (5, 6, 1, "r0i1", "resumed", "resumed_after:2"), (6, 7, 1, "r0i2", "resumed", "resumed_after:2")],
        id="chain-of-three",
    ),
    pytest.param(  # chain of three where the middle one drops
        [slot(1, 0, 3), slot(2, 1.5, 2, "priority", on_preempt="drop"), slot(3, 2, 1, "emergency")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"),
         (1, 1.5, 1, "r0i1", "preempted", "preempted_by:2"),
         (1.5, 2, 2, "r0i0", "preempted", "preempted_by:3"),
         (2, 3, 3, "r0i0", "play", "scheduled"),
         (2.5, 3.5, 2, "r0i1", "dropped", "preempted_by:3"),
         (3, 4, 1, "r0i1", "resumed", "resumed_after:2"), (4, 5, 1, "r0i2", "resumed", "resumed_after:2")],
        id="chain-of-three-middle-drops",
    ),
    pytest.param(  # an emergency cuts another emergency, which resumes after it
        [slot(1, 0, 2, "emergency"), slot(2, 1.5, 1, "emergency")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 1.5, 1, "r0i1", "preempted", "preempted_by:2"),
         (1.5, 2.5, 2, "r0i0", "play", "scheduled"), (2.5, 3.5, 1, "r0i1", "resumed", "resumed_after:2")],
        id="emergency-cuts-emergency",
    ),
    pytest.param(  # a newer emergency with override replaces the old warning for good
        [slot(1, 0, 2, "emergency"), slot(2, 1.5, 1, "emergency", on_clash="override")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 1.5, 1, "r0i1", "preempted", "overridden_by:2"),
         (1.5, 2.5, 2, "r0i0", "play", "overrides:1")],
        id="emergency-override-emergency",
    ),
    pytest.param(  # two emergencies due at the same instant: created first goes first
        [slot(2, 0, 1, "emergency"), slot(1, 0, 1, "emergency")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 2, "r0i0", "play", "appended_after:1")],
        id="simultaneous-emergencies",
    ),
    pytest.param(  # quiet hours: 21:58 plays, an item still playing at 22:00 does not, a live emergency does
        [slot(1, 0, 1, base=NIGHT), slot(2, 1.5, 1, base=NIGHT), slot(3, 3, 1, "emergency", base=NIGHT),
         slot(4, 5, 1, "emergency", base=NIGHT, drill=True), slot(5, 1, 1, base=NIGHT, minutes=0.5)],
        QUIET,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 1.5, 5, "r0i0", "play", "scheduled"),
         (1.5, 2.5, 2, "r0i0", "skipped_quiet", "quiet_hours"), (3, 4, 3, "r0i0", "play", "scheduled"),
         (5, 6, 4, "r0i0", "skipped_quiet", "quiet_hours")],
        id="quiet-hours-emergency-only",
    ),
    pytest.param(  # a programme running into quiet hours stops before the item that would cross 22:00
        [Slot(1, NIGHT - 2 * MIN, items(1) + items(1, 4) + items(1))],  # 21:56, 21:57–22:01, …
        QUIET,
        [(-2, -1, 1, "r0i0", "play", "scheduled"), (-1, 3, 1, "r0i1", "skipped_quiet", "quiet_hours"),
         (3, 4, 1, "r0i2", "skipped_quiet", "quiet_hours")],
        id="programme-stops-at-quiet-hours",
    ),
    pytest.param(  # an emergency pushes a normal bulletin into quiet hours: it is skipped, not played at 22:01
        [slot(1, 1, 1, base=NIGHT), slot(2, 0.5, 2, "emergency", base=NIGHT)],
        QUIET,
        [(0.5, 1.5, 2, "r0i0", "play", "scheduled"), (1.5, 2.5, 2, "r0i1", "play", "scheduled"),
         (2.5, 3.5, 1, "r0i0", "skipped_quiet", "quiet_hours")],
        id="delayed-into-quiet-hours",
    ),
    pytest.param(  # a stale bulletin never plays: still waiting at its expiry → cancelled then
        [slot(1, 0, 10, "emergency"), slot(2, 1, 2, expires_at=m(5)), slot(3, 1, 1, seq=1, expires_at=m(15))],
        None,
        [*[(i, i + 1, 1, f"r0i{i}", "play", "scheduled") for i in range(6)],
         (5, 6, 2, "r0i0", "skipped_expired", "expired"), (6, 7, 1, "r0i6", "play", "scheduled"),
         (6, 7, 2, "r0i1", "skipped_expired", "expired"),
         *[(i, i + 1, 1, f"r0i{i}", "play", "scheduled") for i in range(7, 10)],
         (10, 11, 3, "r0i0", "play", "appended_after:1")],
        id="stale-expiry-while-waiting",
    ),
    pytest.param(  # an item in progress at expiry finishes; nothing starts after
        [slot(1, 0, 3, expires_at=m(1.5))],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled"),
         (2, 3, 1, "r0i2", "skipped_expired", "expired")],
        id="expiry-mid-slot",
    ),
    pytest.param(
        [slot(1, 0, 2, expires_at=m(0))],
        None,
        [(0, 1, 1, "r0i0", "skipped_expired", "expired"), (1, 2, 1, "r0i1", "skipped_expired", "expired")],
        id="expired-before-start",
    ),
    pytest.param(  # 2 items × 3 with a 30 s gap; the gap holds the air
        [slot(1, 0, 2, repeat=3, gap_ms=30_000), slot(2, 2.2, 1, "normal")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1, 2, 1, "r0i1", "play", "scheduled"),
         (2.5, 3.5, 1, "r1i0", "play", "scheduled"), (3.5, 4.5, 1, "r1i1", "play", "scheduled"),
         (5, 6, 1, "r2i0", "play", "scheduled"), (6, 7, 1, "r2i1", "play", "scheduled"),
         (7, 8, 2, "r0i0", "play", "appended_after:1")],
        id="repeat-with-gap",
    ),
    pytest.param(  # interrupted during a gap: the interruption is the separation, the gap is not replayed
        [slot(1, 0, 1, repeat=2, gap_ms=60_000), slot(2, 1.5, 1, "priority")],
        None,
        [(0, 1, 1, "r0i0", "play", "scheduled"), (1.5, 2.5, 2, "r0i0", "play", "scheduled"),
         (2.5, 3.5, 1, "r1i0", "resumed", "resumed_after:2")],
        id="preempted-in-gap",
    ),
    pytest.param(  # a live programme beats a drill of the same level; a drill emergency beats live normal
        [slot(1, 0, 2, drill=True), slot(2, 0.5, 1), slot(3, 3, 2), slot(4, 3.5, 1, "emergency", drill=True)],
        None,
        [(0, 0.5, 1, "r0i0", "preempted", "preempted_by:2"), (0.5, 1.5, 2, "r0i0", "play", "scheduled"),
         (1.5, 2.5, 1, "r0i0", "resumed", "resumed_after:2"), (2.5, 3, 1, "r0i1", "preempted", "preempted_by:3"),
         (3, 3.5, 3, "r0i0", "preempted", "preempted_by:4"), (3.5, 4.5, 4, "r0i0", "play", "scheduled"),
         (4.5, 5.5, 3, "r0i0", "resumed", "resumed_after:4"), (5.5, 6.5, 3, "r0i1", "resumed", "resumed_after:4"),
         (6.5, 7.5, 1, "r0i1", "resumed", "resumed_after:3")],
        id="drills",
    ),
    pytest.param(  # airings of one schedule never override each other
        [slot(7, 0, 2, on_clash="override"), slot(7, 1, 2, on_clash="override")],
        None,
        [(0, 1, 7, "r0i0", "play", "scheduled"), (1, 2, 7, "r0i1", "play", "scheduled"),
         (2, 3, 7, "r0i0", "play", "appended_after:7"), (3, 4, 7, "r0i1", "play", "appended_after:7")],
        id="same-schedule-airings",
    ),
    pytest.param(  # silence and stream items are ordinary items
        [Slot(1, T0, (SlotItem("silence", 2000, "", "lead-in"), SlotItem("stream", 60_000, "vov1", "VOV1")))],
        None,
        [(0, 0.03, 1, "r0i0", "play", "scheduled"), (0.03, 1.03, 1, "r0i1", "play", "scheduled")],
        id="silence-and-stream",
    ),
]


@pytest.mark.parametrize(("slots", "quiet", "expected"), CASES)
def test_rules_table(slots: list[Slot], quiet: QuietHours | None, expected: list[tuple]):
    base = NIGHT if slots[0].start >= NIGHT - timedelta(hours=1) else T0
    assert run(slots, quiet, base) == expected


def test_why_texts_are_readable():
    entries = build_timeline([slot(1, 0, 2), slot(42, 0.5, 1, "emergency")], m(-1), m(10), None)
    whys = {(e.schedule_id, e.state): e.why for e in entries}
    assert whys[(1, "preempted")] == "preempted_by:42 (emergency > normal)"
    assert whys[(1, "resumed")].startswith("resumed_after:42 (")
    assert whys[(42, "play")] == "scheduled (on time)"
    entries = build_timeline([slot(7, 0, 2), slot(8, 0.5, 1, on_clash="override")], m(-1), m(10), None)
    assert {e.why for e in entries if e.schedule_id == 8} == {"overrides:7 (override chosen)"}
    assert {e.why for e in entries if e.schedule_id == 7 and e.state != "play"} == {
        "overridden_by:8 (override chosen by schedule 8)"}
    entries = build_timeline([slot(7, 0, 2), slot(8, 0.5, 1)], m(-1), m(10), None)
    assert entries[-1].why == "appended_after:7 (same priority, append chosen)"
    entries = build_timeline([slot(1, 0, 1, base=NIGHT + 3 * MIN)], NIGHT, NIGHT + 10 * MIN, QUIET)
    assert entries[0].why == "quiet_hours (22:00–05:00 Asia/Ho_Chi_Minh)"


def test_entries_carry_item_details_and_slot():
    s = Slot(5, T0, (SlotItem("announcement", 90_000, "abc", "Thông báo tiêm chủng"),), "priority", drill=True)
    (e,) = build_timeline([s], T0, T0 + MIN * 5, None)
    assert (e.kind, e.ref, e.title, e.priority, e.drill, e.slot_start, e.duration_ms) == (
        "announcement", "abc", "Thông báo tiêm chủng", "priority", True, T0, 90_000)
    assert e.audible


def test_window_keeps_what_overlaps_it():
    slots = [slot(1, 0, 3), slot(2, 10, 1)]
    got = rows(build_timeline(slots, m(1.5), m(10), None))
    assert got == [(1, 2, 1, "r0i1", "play", "scheduled"), (2, 3, 1, "r0i2", "play", "scheduled")]
    with pytest.raises(ValueError):
        build_timeline(slots, datetime(2026, 3, 1), datetime(2026, 3, 2), None)


def test_slot_end_counts_repeats_and_gaps():
    assert slot_end(slot(1, 0, 2, repeat=3, gap_ms=30_000)) == m(7)
    assert slot_end(slot(1, 0, 2, repeat=0)) == m(2)
    assert slot_end(Slot(1, T0, ())) == T0


def test_bad_slots_are_refused():
    with pytest.raises(ValueError):
        build_timeline([Slot(1, datetime(2026, 3, 2, 6), items(1))], T0, m(10), None)
    with pytest.raises(ValueError):
        build_timeline([Slot(1, T0, items(1), "urgent")], T0, m(10), None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- conflicts


def test_find_conflicts_for_the_clash_dialog():
    existing = [
        slot(1, 0, 3),  # 0–3 normal
        slot(2, 2.5, 1, "emergency"),  # 2.5–3.5
        slot(3, 4, 2, "priority"),  # 4–6
        slot(4, 6, 1),  # touches the end: no overlap
        slot(5, 1, 1, expires_at=m(0.5)),  # never plays
        slot(9, 0, 10),  # another airing of the new schedule itself
    ]
    new = slot(9, 2, 4, "priority", seq=10)  # 2–6
    assert find_conflicts(new, existing) == [
        Conflict(1, m(0), m(3), "normal", "lower"),
        Conflict(2, m(2.5), m(3.5), "emergency", "higher"),
        Conflict(3, m(4), m(6), "priority", "same_priority"),
    ]
    assert find_conflicts(slot(10, 20, 1), existing) == []


def test_find_conflicts_agrees_with_the_timeline():
    """What the dialog calls a same-priority conflict is exactly where on_clash changes the outcome."""
    old = slot(1, 0, 3)
    for start in (-2, -1, 0, 1, 2.5, 3, 4):
        new_append = slot(2, start, 2, seq=2, on_clash="append")
        new_override = slot(2, start, 2, seq=2, on_clash="override")
        clash = bool(find_conflicts(new_append, [old]))
        differs = run([old, new_append]) != run([old, new_override])
        assert clash == differs, start


# ---------------------------------------------------------------------------------------- properties

PRIORITIES = ["normal", "priority", "emergency"]


@st.composite
def slot_sets(draw) -> tuple[list[Slot], datetime]:
    base = draw(st.sampled_from([T0, NIGHT, NIGHT - 20 * MIN]))
    n = draw(st.integers(1, 7))
    slots = []
    for sid in range(1, n + 1):
        start = base + timedelta(seconds=30 * draw(st.integers(0, 40)))
        durations = draw(st.lists(st.sampled_from([30_000, 60_000, 90_000, 150_000]), min_size=1, max_size=3))
        expires = draw(st.none() | st.integers(-2, 30).map(lambda k, s=start: s + timedelta(seconds=30 * k)))
        slots.append(Slot(
            schedule_id=sid,
            start=start,
            items=tuple(SlotItem(draw(st.sampled_from(["announcement", "stream", "silence"])), d, f"r{sid}.{i}",
                                 f"t{sid}.{i}") for i, d in enumerate(durations)),
            priority=draw(st.sampled_from(PRIORITIES)),
            on_preempt=draw(st.sampled_from(["resume", "drop"])),
            on_clash=draw(st.sampled_from(["append", "override"])),
            repeat=draw(st.integers(1, 3)),
            gap_ms=draw(st.sampled_from([0, 0, 30_000])),
            created_seq=draw(st.integers(0, 8)),
            expires_at=expires,
            drill=draw(st.booleans().map(lambda b: b and draw(st.booleans()))),
        ))
    return slots, base


def timeline_of(slots: list[Slot], base: datetime, quiet: QuietHours | None) -> list[Entry]:
    return build_timeline(slots, base - timedelta(hours=1), base + timedelta(hours=6), quiet)


@settings(max_examples=300, deadline=None)
@given(slot_sets(), st.booleans(), st.randoms(use_true_random=False))
def test_property_timeline_invariants(case, with_quiet: bool, rnd: random.Random):
    slots, base = case
    quiet = QUIET if with_quiet else None
    entries = timeline_of(slots, base, quiet)
    by_id = {s.schedule_id: s for s in slots}

    # what sounds never overlaps
    audible = sorted((e for e in entries if e.state in AUDIBLE_STATES), key=lambda e: (e.start, e.end))
    for a, b in zip(audible, audible[1:], strict=False):
        assert a.end <= b.start, (a, b)

    # every entry within its slot's constraints
    for e in entries:
        s = by_id[e.schedule_id]
        assert e.slot_start == s.start and e.priority == s.priority
        assert 0 <= e.repeat_index < s.repeat and 0 <= e.item_index < len(s.items)
        assert e.start >= s.start
        item = s.items[e.item_index]
        if e.state in ("play", "resumed", "preempted", "dropped", "skipped_quiet", "skipped_expired"):
            assert (e.kind, e.ref, e.title) == (item.kind, item.ref, item.title)
        if e.state in ("play", "resumed"):
            assert e.end - e.start == timedelta(milliseconds=item.duration_ms)
            assert s.expires_at is None or e.start < s.expires_at
            live_emergency = s.priority == "emergency" and not s.drill
            assert quiet is None or live_emergency or not quiet.overlaps(e.start, e.end)
        if e.state == "preempted":
            assert e.start < e.end < e.start + timedelta(milliseconds=item.duration_ms)

    # every item ends exactly once: played, dropped or skipped (or cut for good while playing)
    for s in slots:
        for r in range(s.repeat):
            for i in range(len(s.items)):
                mine = [e for e in entries if (e.schedule_id, e.repeat_index, e.item_index) == (s.schedule_id, r, i)]
                final = [e for e in mine if e.state != "preempted"]
                assert len(final) <= 1, mine
                assert final or mine, (s.schedule_id, r, i)

    # live emergencies are never delayed
    for s in slots:
        if s.priority != "emergency" or s.drill or (s.expires_at is not None and s.expires_at <= s.start):
            continue
        if any(o is not s and o.priority == "emergency" and not o.drill and o.start == s.start for o in slots):
            continue  # two at the very same instant play one after the other
        first = min((e for e in entries if e.schedule_id == s.schedule_id), key=lambda e: (e.start, e.end))
        assert first.start == s.start
        assert first.state in ("play", "preempted") or first.why.startswith("overridden_by:"), first

    # deterministic under permutation
    shuffled = list(slots)
    rnd.shuffle(shuffled)
    assert timeline_of(shuffled, base, quiet) == entries


@settings(max_examples=200, deadline=None)
@given(slot_sets())
def test_property_nothing_lower_plays_while_a_higher_one_waits(case):
    """Once due, a slot (with no older same-priority slot it must follow) never waits behind a lower one."""
    slots, base = case
    entries = timeline_of(slots, base, None)
    by_id = {s.schedule_id: s for s in slots}

    def rank(s: Slot) -> int:
        return PRIORITIES.index(s.priority) * 2 + (0 if s.drill else 1)

    def must_follow(s: Slot) -> bool:
        return s.on_clash == "append" and any(
            o is not s and rank(o) == rank(s) and (o.created_seq, o.schedule_id) < (s.created_seq, s.schedule_id)
            and o.start < slot_end(s) and s.start < slot_end(o) for o in slots)

    for s in slots:
        mine = [e for e in entries if e.schedule_id == s.schedule_id and e.state in AUDIBLE_STATES]
        if not mine or must_follow(s):
            continue
        began = min(e.start for e in mine)
        for e in entries:
            if e.state in ("play", "resumed") and s.start <= e.start < began:
                assert rank(by_id[e.schedule_id]) >= rank(s), (s, e)


def test_quiet_hours_wrap_and_bounds():
    q = QuietHours()
    vn = lambda h, mi=0: datetime(2026, 3, 2, h, mi, tzinfo=UTC) - timedelta(hours=7)  # noqa: E731
    assert q.contains(vn(22)) and q.contains(vn(3, 15)) and q.contains(vn(4, 59))
    assert not q.contains(vn(5)) and not q.contains(vn(21, 59)) and not q.contains(vn(12))
    assert q.overlaps(vn(21, 59), vn(22, 1))  # would still be playing at 22:00
    assert not q.overlaps(vn(21, 58), vn(22))  # ends exactly at 22:00
    assert q.overlaps(vn(4, 59), vn(5, 1)) and not q.overlaps(vn(5), vn(6))
    assert q.overlaps(vn(6), vn(6) + timedelta(days=1))  # a day-long stream crosses the night
    day = QuietHours(time(12), time(13))
    assert day.contains(vn(12, 30)) and not day.contains(vn(13)) and not day.contains(vn(23))
    off = QuietHours(time(0), time(0))
    assert not off.contains(vn(3)) and not off.overlaps(vn(0), vn(23))
    with pytest.raises(ValueError):
        q.contains(datetime(2026, 3, 2, 3))


def test_scheduling_domain_stays_pure():
    """schedules/ imports neither Flask, paho, SQLAlchemy nor the panel."""
    code = (
        "import sys, schedules.timeline, schedules.recurrence, schedules.quiet, schedules.plans\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'flask', 'paho', 'sqlalchemy', 'broadcaster'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
