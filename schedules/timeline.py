"""What plays when: the one function that settles overlaps, priorities and quiet hours.

:func:`build_timeline` is used both by the dry-run view ("what will the loudspeakers do tomorrow?") and
by the plan builder that tells the nodes what to play, so what an officer sees is what will sound.
Pure functions and dataclasses, no I/O.

Rules (for officers and their trainers)
=======================================

A *slot* is one airing of one schedule: a start time, a list of items (announcements, relayed streams,
silences) played one after the other, possibly repeated N times with a gap between repeats. The
loudspeakers of one area play **one thing at a time**. The three priority levels come from Circular
39/2020/TT-BTTTT: **normal** < **priority** < **emergency**. A *drill* is ranked just below the live
programme of its own level (a live emergency always beats a drill emergency; a drill emergency still
beats every live normal or priority programme).

1. **Higher priority interrupts.** When a higher-priority slot starts while a lower one is playing, the
   lower one stops at that instant (its item is marked ``preempted``). Afterwards, per its ``on_preempt``:

   * ``resume`` (default): it continues once the higher one has finished; **the interrupted item restarts
     from its beginning** (half a bulletin is useless). Its items are marked ``resumed``.
   * ``drop``: the rest of it is cancelled (``dropped``).

   A slot interrupted in the gap between two repeats does not replay the gap when it resumes.

2. **Lower priority waits.** A slot that starts while a higher-priority slot is playing waits and plays
   as soon as the air is free ("appended after" it). Waiting slots go on air highest priority first, then
   the one that was due first (subject to rule 3). A waiting slot waits as long as it takes, unless it
   expires (rule 6) or is pushed into quiet hours (rule 5): give time-bound bulletins an expiry.

3. **Equal priority: the officer's choice.** When the officer created a slot whose planned time
   (start to start + total length, see :func:`slot_end`) overlaps an *older* slot of the same priority
   (see :func:`find_conflicts`), they chose:

   * ``append`` (default): the new slot plays **after** the old one has finished — even if the new one
     was planned to start first (the air then stays silent until the old one starts: the old programme
     keeps its time).
   * ``override``: the new slot replaces the old one from the moment the new one starts: if the old one
     is playing it is cut there and the rest is ``dropped`` (``overridden_by``); if it had not started
     yet it never plays.

   "Older" means created earlier (``created_seq``, then ``schedule_id``). Two airings of the same
   schedule never override each other. Equal-priority slots that were not planned to overlap (one was
   only delayed into the other) never cut each other: the one on air finishes, the other waits.

4. **Emergencies are never delayed** ("phát ngay"). A live emergency starts exactly at its start time,
   cutting whatever is playing — even another emergency, which then resumes after it (or is dropped per
   its ``on_preempt``, or for good when the newer one chose ``override``). Emergencies ignore ``append``.
   Only two live emergencies due at the very same instant are played one after the other, the one
   created first going first. Interrupted emergencies resume latest-first.

5. **Quiet hours** (22:00–05:00 by default, local time): nothing sounds inside them. A slot stops before
   its first item that would sound in quiet hours — including an item that starts before 22:00 and would
   still be playing at 22:00 — and that item and everything after it in the slot are skipped
   (``skipped_quiet``); a slot delayed into quiet hours is skipped. Only live emergencies ignore quiet
   hours; drills do not.

6. **Stale content never plays.** Nothing of a slot starts at or after its ``expires_at``
   (``skipped_expired``): a bulletin still waiting at its expiry is cancelled, an item in progress is
   finished.

Every entry says why it is where it is (``why``): a machine-readable token such as ``scheduled``,
``appended_after:7``, ``resumed_after:42``, ``overrides:7``, ``preempted_by:42``, ``overridden_by:9``,
``quiet_hours``, ``expired`` (several joined by ``;``), followed by a short human explanation in
parentheses, e.g. ``preempted_by:42 (emergency > normal)``.

Entries in state ``play``, ``resumed`` and ``preempted`` are what actually sounds; they never overlap.
``dropped``, ``skipped_quiet`` and ``skipped_expired`` entries show where the item would have been.
Gaps between repeats hold the air (nothing else plays in them) but produce no entry. The result does not
depend on the order in which slots are given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from devices.protocol import PRIORITY_RANK, Priority, format_ts
from schedules.quiet import QuietHours

ItemKind = Literal["announcement", "stream", "silence"]
PriorityName = Literal["normal", "priority", "emergency"]
State = Literal["play", "preempted", "dropped", "resumed", "skipped_quiet", "skipped_expired"]
Relation = Literal["same_priority", "higher", "lower"]

#: States in which something actually sounds.
AUDIBLE_STATES = frozenset({"play", "resumed", "preempted"})
_STATE_ORDER = {"play": 0, "resumed": 1, "preempted": 2, "dropped": 3, "skipped_quiet": 4, "skipped_expired": 5}


@dataclass(frozen=True)
class SlotItem:
    kind: ItemKind
    duration_ms: int
    ref: str = ""
    title: str = ""


@dataclass(frozen=True)
class Slot:
    """One airing of one schedule.

    ``SlotItem.ref`` names the content: ``ann:<announcement id>``, ``media:<sha256>``, a stream URL, or
    ``""`` for silence. ``delivery`` says how the nodes learn of the slot: ``plan`` (a plan item) or
    ``command`` (an emergency sent as a ``play_now`` command — it takes part in the timeline, so what it
    cuts resumes after it, but the plan builder emits no item for it).
    """

    schedule_id: int
    start: datetime  # aware UTC
    items: tuple[SlotItem, ...]
    priority: PriorityName = "normal"
    on_preempt: Literal["resume", "drop"] = "resume"
    on_clash: Literal["override", "append"] = "append"
    repeat: int = 1
    gap_ms: int = 0
    created_seq: int = 0
    expires_at: datetime | None = None
    drill: bool = False
    delivery: Literal["plan", "command"] = "plan"


@dataclass(frozen=True)
class Entry:
    start: datetime
    end: datetime
    schedule_id: int
    item_index: int
    repeat_index: int
    kind: str
    ref: str
    title: str
    priority: str
    state: State
    why: str
    drill: bool = False
    slot_start: datetime | None = None  # start of the slot the entry belongs to (identifies the airing)

    @property
    def audible(self) -> bool:
        return self.state in AUDIBLE_STATES

    @property
    def duration_ms(self) -> int:
        return (self.end - self.start) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Conflict:
    schedule_id: int
    start: datetime
    end: datetime
    priority: str
    relation: Relation  # the existing slot's priority relative to the new one


# ------------------------------------------------------------------------------------- helpers


def _repeats(slot: Slot) -> int:
    return max(1, slot.repeat)


def slot_duration(slot: Slot) -> timedelta:
    """Planned length: every item × repeat, plus the gaps between repeats."""
    one = sum(max(0, item.duration_ms) for item in slot.items)
    n = _repeats(slot)
    return timedelta(milliseconds=one * n + max(0, slot.gap_ms) * (n - 1))


def slot_end(slot: Slot) -> datetime:
    """When the slot would end if nothing interfered."""
    return slot.start + slot_duration(slot)


def _rank(slot: Slot) -> int:
    """Effective rank: the priority level, a live slot just above a drill of the same level."""
    return PRIORITY_RANK[Priority(str(slot.priority))] * 2 + (0 if slot.drill else 1)


def _label(slot: Slot) -> str:
    return f"{slot.priority}{' drill' if slot.drill else ''}"


def _is_live_emergency(slot: Slot) -> bool:
    return str(slot.priority) == "emergency" and not slot.drill


def _check_slot(slot: Slot) -> None:
    if slot.start.tzinfo is None:
        raise ValueError(f"slot of schedule {slot.schedule_id}: start must be timezone-aware")
    if slot.expires_at is not None and slot.expires_at.tzinfo is None:
        raise ValueError(f"slot of schedule {slot.schedule_id}: expires_at must be timezone-aware")
    if str(slot.priority) not in ("normal", "priority", "emergency"):
        raise ValueError(f"slot of schedule {slot.schedule_id}: unknown priority {slot.priority!r}")
    if slot.on_preempt not in ("resume", "drop") or slot.on_clash not in ("override", "append"):
        raise ValueError(f"slot of schedule {slot.schedule_id}: bad on_preempt/on_clash")
    if slot.gap_ms < 0 or any(item.duration_ms < 0 for item in slot.items):
        raise ValueError(f"slot of schedule {slot.schedule_id}: negative duration")


def _slot_key(slot: Slot) -> tuple:
    """A total order on slots, so the result never depends on input order."""
    return (
        slot.start,
        slot.created_seq,
        slot.schedule_id,
        _rank(slot),
        slot.on_preempt,
        slot.on_clash,
        slot.repeat,
        slot.gap_ms,
        slot.expires_at is None,
        slot.expires_at or slot.start,
        tuple((i.kind, i.duration_ms, i.ref, i.title) for i in slot.items),
    )


def _newer(a: Slot, b: Slot) -> bool:
    return (a.created_seq, a.schedule_id) > (b.created_seq, b.schedule_id)


def _same_schedule(a: Slot, b: Slot) -> bool:
    return (a.created_seq, a.schedule_id) == (b.created_seq, b.schedule_id)


def _overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    if a_start == a_end:
        return b_start <= a_start < b_end
    if b_start == b_end:
        return a_start <= b_start < a_end
    return a_start < b_end and b_start < a_end


def _why(parts: Iterable[tuple[str, str]]) -> str:
    parts = list(parts)
    tokens = ";".join(token for token, _ in parts)
    human = "; ".join(text for _, text in parts if text)
    return f"{tokens} ({human})" if human else tokens


def _versus(winner: Slot, loser: Slot) -> str:
    if _rank(winner) == _rank(loser):
        return f"{winner.priority} cut-in"
    if winner.priority == loser.priority:
        return f"live {winner.priority} > {_label(loser)}"
    return f"{_label(winner)} > {_label(loser)}"


# ----------------------------------------------------------------------------------- conflicts


def find_conflicts(new: Slot, existing: Sequence[Slot]) -> list[Conflict]:
    """Existing slots whose planned play time overlaps ``new``'s, for the officer's clash dialog.

    Planned time is ``[start, slot_end)``, the same notion :func:`build_timeline` uses to apply
    ``on_clash``. Airings of the same schedule as ``new`` are left out (pass the other schedules when
    editing one), as are slots that expire before they start. ``relation`` is the existing slot's
    priority relative to the new one (a live slot counts as higher than a drill of its level); only
    ``same_priority`` conflicts need the override / append choice.
    """
    _check_slot(new)
    n_start, n_end = new.start, slot_end(new)
    out = []
    for old in existing:
        _check_slot(old)
        if old.schedule_id == new.schedule_id:
            continue
        if old.expires_at is not None and old.expires_at <= old.start:
            continue
        o_end = slot_end(old)
        if not _overlap(n_start, n_end, old.start, o_end):
            continue
        r_old, r_new = _rank(old), _rank(new)
        relation: Relation = "same_priority" if r_old == r_new else ("higher" if r_old > r_new else "lower")
        out.append(Conflict(old.schedule_id, old.start, o_end, str(old.priority), relation))
    out.sort(key=lambda c: (c.start, c.end, c.schedule_id))
    return out


# ------------------------------------------------------------------------------------ the engine


@dataclass
class _Unit:
    repeat_index: int
    item_index: int  # -1 for the gap after a repeat
    duration: timedelta
    item: SlotItem | None

    @property
    def is_gap(self) -> bool:
        return self.item is None


@dataclass(eq=False)
class _Run:
    slot: Slot
    order: int
    rank: int
    units: list[_Unit]
    idx: int = 0
    status: str = "pending"  # pending → waiting ⇄ on_air → done
    unit_start: datetime | None = None
    went_on_air: datetime | None = None
    preds: list[_Run] = field(default_factory=list)  # older same-rank slots this one is appended after
    victims: list[_Run] = field(default_factory=list)  # older same-rank slots this one overrides
    killed: list[int] = field(default_factory=list)  # schedule ids actually overridden
    doomed_by: _Run | None = None  # overridden before it arrived
    blocked_by: _Run | None = None
    preemptor: _Run | None = None
    skip_gap: bool = False

    live_emergency: bool = False
    select_key: tuple = ()

    def __post_init__(self) -> None:
        self.live_emergency = _is_live_emergency(self.slot)
        start = self.slot.start.timestamp()
        # live emergencies: the latest-started first (nested interruptions unwind); others: the earliest due first
        due = -start if self.live_emergency else start
        self.select_key = (-self.rank, due, self.slot.created_seq, self.slot.schedule_id, self.order)

    def eligible(self) -> bool:
        return self.live_emergency or all(p.status == "done" for p in self.preds)


def _units(slot: Slot) -> list[_Unit]:
    units = []
    n = _repeats(slot)
    for r in range(n):
        for i, item in enumerate(slot.items):
            units.append(_Unit(r, i, timedelta(milliseconds=item.duration_ms), item))
        if r < n - 1 and slot.gap_ms > 0:
            units.append(_Unit(r, -1, timedelta(milliseconds=slot.gap_ms), None))
    return units


def _relate(runs: list[_Run]) -> None:
    """Static append/override relations between same-rank slots whose planned times overlap."""
    by_start = sorted(runs, key=lambda r: (r.slot.start, r.order))
    ends = {id(r): slot_end(r.slot) for r in runs}
    for i, a in enumerate(by_start):
        a_end = ends[id(a)]
        for b in by_start[i + 1 :]:
            if b.slot.start > a_end or (b.slot.start == a_end and a.slot.start != a_end):
                break  # sorted by start: nothing later can overlap a
            if a.rank != b.rank or _same_schedule(a.slot, b.slot):
                continue
            if not _overlap(a.slot.start, a_end, b.slot.start, ends[id(b)]):
                continue
            new, old = (a, b) if _newer(a.slot, b.slot) else (b, a)
            if new.slot.on_clash == "override":
                new.victims.append(old)
            elif not new.live_emergency:
                new.preds.append(old)
    for r in runs:
        r.victims.sort(key=lambda v: v.order)
        r.preds.sort(key=lambda v: v.order)


class _Engine:
    def __init__(self, slots: Iterable[Slot], quiet: QuietHours | None) -> None:
        ordered = sorted(slots, key=_slot_key)
        for slot in ordered:
            _check_slot(slot)
        self.runs = [_Run(slot, n, _rank(slot), _units(slot)) for n, slot in enumerate(ordered)]
        _relate(self.runs)
        self.quiet = quiet if quiet is not None and quiet.enabled else None
        self.entries: list[Entry] = []
        self.on_air: _Run | None = None
        self.waiting: list[_Run] = []

    # --- entries

    def _emit(self, run: _Run, unit: _Unit, start: datetime, end: datetime, state: State, why: str) -> None:
        if unit.is_gap:
            return
        item = unit.item
        assert item is not None
        s = run.slot
        self.entries.append(
            Entry(start, end, s.schedule_id, unit.item_index, unit.repeat_index, item.kind, item.ref, item.title,
                  str(s.priority), state, why, s.drill, s.start)
        )

    def _play_why(self, run: _Run) -> tuple[State, str]:
        parts: list[tuple[str, str]] = []
        if run.killed:
            parts.append(("overrides:" + ",".join(str(k) for k in run.killed), "override chosen"))
        if run.preemptor is not None:
            parts.append((f"resumed_after:{run.preemptor.slot.schedule_id}", "interrupted item restarted"))
            return "resumed", _why(parts)
        if run.went_on_air is not None and run.went_on_air > run.slot.start and run.blocked_by is not None:
            b = run.blocked_by
            if b in run.preds:
                text = "same priority, append chosen"
            elif b.rank == run.rank:
                text = "same priority, waited its turn"
            else:
                text = f"{_label(b.slot)} > {_label(run.slot)}, waited"
            parts.append((f"appended_after:{b.slot.schedule_id}", text))
        if not parts:
            parts.append(("scheduled", "on time"))
        return "play", _why(parts)

    def _cancel_rest(self, run: _Run, base: datetime, from_idx: int, state: State, why: str) -> None:
        """Entries for the units that will not play, at the times they would have had."""
        t = base
        for unit in run.units[from_idx:]:
            self._emit(run, unit, t, t + unit.duration, state, why)
            t += unit.duration
        run.idx = len(run.units)
        run.unit_start = None
        run.status = "done"
        if run in self.waiting:
            self.waiting.remove(run)
        if self.on_air is run:
            self.on_air = None

    def _expire(self, run: _Run, now: datetime) -> None:
        self._cancel_rest(run, now, run.idx, "skipped_expired",
                          _why([("expired", f"expired at {format_ts(run.slot.expires_at)}")]))

    # --- state changes

    def _interrupt(self, run: _Run, now: datetime) -> tuple[datetime, int]:
        """Where the rest of an interrupted ``run`` would have gone: (time, index of the next unit)."""
        if run.unit_start is None or run.unit_start >= now:
            run.unit_start = None
            return now, run.idx
        unit = run.units[run.idx]
        return run.unit_start + unit.duration, run.idx + 1

    def _preempt(self, run: _Run, by: _Run, now: datetime) -> None:
        why = _why([(f"preempted_by:{by.slot.schedule_id}", _versus(by.slot, run.slot))])
        had_unit = run.unit_start is not None and run.unit_start < now
        if had_unit:
            unit = run.units[run.idx]
            self._emit(run, unit, run.unit_start, now, "preempted", why)
        base, next_idx = self._interrupt(run, now)
        self.on_air = None
        if run.slot.on_preempt == "resume":
            run.unit_start = None  # the interrupted item restarts from its beginning
            run.status = "waiting"
            run.preemptor = by
            run.skip_gap = True
            self.waiting.append(run)
        else:
            why = _why([(f"preempted_by:{by.slot.schedule_id}", _versus(by.slot, run.slot) + ", on_preempt=drop")])
            self._cancel_rest(run, base, next_idx, "dropped", why)

    def _kill(self, victim: _Run, by: _Run, now: datetime) -> None:
        """``by`` has arrived and overrides ``victim``: nothing more of the victim plays from ``now`` on."""
        if victim.status == "done":
            return
        by.killed.append(victim.slot.schedule_id)
        if victim.status == "pending":
            if victim.doomed_by is None:
                victim.doomed_by = by  # dropped when it comes due
            return
        why = _why([(f"overridden_by:{by.slot.schedule_id}", f"override chosen by schedule {by.slot.schedule_id}")])
        base, next_idx = now, victim.idx
        if victim.status == "on_air" and victim.unit_start is not None and victim.unit_start < now:
            self._emit(victim, victim.units[victim.idx], victim.unit_start, now, "preempted", why)
            base, next_idx = self._interrupt(victim, now)
        self._cancel_rest(victim, base, next_idx, "dropped", why)

    def _arrive(self, run: _Run, now: datetime) -> None:
        s = run.slot
        if run.doomed_by is not None:
            by = run.doomed_by.slot.schedule_id
            why = _why([(f"overridden_by:{by}", f"override chosen by schedule {by}")])
            self._cancel_rest(run, now, 0, "dropped", why)
            return
        if s.expires_at is not None and now >= s.expires_at:
            self._expire(run, now)
            return
        run.status = "waiting"
        self.waiting.append(run)
        for victim in run.victims:
            self._kill(victim, run, now)

    def _select(self) -> _Run | None:
        candidates = [r for r in self.waiting if r.eligible()]
        return min(candidates, key=lambda r: r.select_key) if candidates else None

    def _cuts(self, challenger: _Run, holder: _Run) -> bool:
        if challenger.rank != holder.rank:
            return challenger.rank > holder.rank
        return challenger.live_emergency and challenger.slot.start > holder.slot.start

    def _advance(self, run: _Run, now: datetime) -> None:
        """Start the next unit of the on-air ``run`` at ``now``, skipping what may not play."""
        s = run.slot
        quiet = None if run.live_emergency else self.quiet
        while run.idx < len(run.units):
            if s.expires_at is not None and now >= s.expires_at:
                self._expire(run, now)
                return
            unit = run.units[run.idx]
            if run.skip_gap:
                run.skip_gap = False
                if unit.is_gap:  # the interruption already separated the repeats
                    run.idx += 1
                    continue
            if quiet is not None and quiet.overlaps(now, now + unit.duration):
                # the programme stops before the first item that would sound in quiet hours
                self._cancel_rest(run, now, run.idx, "skipped_quiet", _why([("quiet_hours", quiet.describe())]))
                return
            if unit.duration <= timedelta(0):
                state, why = self._play_why(run)
                self._emit(run, unit, now, now, state, why)
                run.idx += 1
                continue
            run.unit_start = now
            return
        run.status = "done"
        self.on_air = None

    def _fill(self, now: datetime) -> None:
        while True:
            best = self._select()
            if self.on_air is not None and best is not None and self._cuts(best, self.on_air):
                self._preempt(self.on_air, best, now)
            if self.on_air is None:
                if best is None:
                    return
                self.waiting.remove(best)
                best.status = "on_air"
                if best.went_on_air is None:
                    best.went_on_air = now
                self.on_air = best
            if self.on_air.unit_start is not None:
                return
            self._advance(self.on_air, now)

    def _note_blockers(self) -> None:
        """Remember, for each slot still waiting for its first play, what holds it back right now."""
        air = self.on_air
        for run in self.waiting:
            if run.went_on_air is not None:
                continue
            pending_pred = next((p for p in run.preds if p.status != "done"), None)
            if air is not None and air.rank > run.rank:
                run.blocked_by = air
            elif pending_pred is not None and not run.live_emergency:
                run.blocked_by = pending_pred
            elif air is not None:
                run.blocked_by = air

    # --- main loop

    def run(self) -> list[Entry]:
        pending = deque(sorted(self.runs, key=lambda r: (r.slot.start, r.order)))
        now: datetime | None = None
        guard = 0
        limit = 10 * (len(self.runs) + sum(len(r.units) for r in self.runs)) + 100
        while True:
            guard += 1
            if guard > limit:
                raise RuntimeError("timeline did not converge")  # a bug, never expected
            times = []
            if pending:
                times.append(pending[0].slot.start)
            air = self.on_air
            if air is not None and air.unit_start is not None:
                times.append(air.unit_start + air.units[air.idx].duration)
            for w in self.waiting:
                if w.slot.expires_at is not None and (now is None or w.slot.expires_at > now):
                    times.append(w.slot.expires_at)
            if not times:
                break
            now = min(times)
            if air is not None and air.unit_start is not None and air.unit_start + air.units[air.idx].duration == now:
                state, why = self._play_why(air)
                self._emit(air, air.units[air.idx], air.unit_start, now, state, why)
                air.idx += 1
                air.unit_start = None
            while pending and pending[0].slot.start == now:
                self._arrive(pending.popleft(), now)
            for w in list(self.waiting):
                if w.slot.expires_at is not None and w.slot.expires_at <= now:
                    self._expire(w, now)
            self._fill(now)
            self._note_blockers()
        if self.waiting or self.on_air is not None:
            raise RuntimeError("timeline left slots unresolved")  # a bug, never expected
        return self.entries


def _entry_key(e: Entry) -> tuple:
    return (e.start, e.end, _STATE_ORDER[e.state], e.schedule_id, e.slot_start, e.repeat_index, e.item_index)


def build_timeline(
    slots: Iterable[Slot],
    window_start: datetime,
    window_end: datetime,
    quiet: QuietHours | None = None,
) -> list[Entry]:
    """Entries (see the module docstring for the rules) that touch ``[window_start, window_end)``, in order.

    Every given slot is simulated — pass the ones that may still be playing or waiting at
    ``window_start`` too — and an entry is kept when it overlaps the window (a zero-length one when it
    lies in it). Sorted by start, end, state, schedule, item.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    entries = _Engine(slots, quiet).run()
    kept = [
        e for e in entries
        if e.start < window_end and (e.end > window_start or (e.start == e.end and e.start >= window_start))
    ]
    kept.sort(key=_entry_key)
    return kept
