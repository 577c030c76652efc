"""Quiet hours: the guard against loudspeakers playing at 03:15 because a schedule was set wrongly.

The window is local wall-clock time in the ward's zone and may wrap midnight (22:00–05:00 by default).
``start`` is inclusive, ``end`` exclusive; ``start == end`` means no quiet hours at all. Only live
emergencies play inside it (see :mod:`schedules.timeline`). Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schedules.timeutil import DEFAULT_TZ


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


@dataclass(frozen=True)
class QuietHours:
    start: time = time(22, 0)
    end: time = time(5, 0)
    tz: str = DEFAULT_TZ

    @property
    def wraps(self) -> bool:
        return self.start > self.end

    @property
    def enabled(self) -> bool:
        return self.start != self.end

    def contains(self, moment_utc: datetime) -> bool:
        """Whether the instant lies in quiet hours (local ``start`` inclusive, ``end`` exclusive)."""
        local = _aware(moment_utc, "moment_utc").astimezone(ZoneInfo(self.tz)).time().replace(tzinfo=None)
        if not self.enabled:
            return False
        if self.wraps:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def intervals(self, start_utc: datetime, end_utc: datetime) -> list[tuple[datetime, datetime]]:
        """The quiet windows (aware UTC, half-open) that touch ``[start_utc, end_utc]``."""
        if not self.enabled:
            return []
        zone = ZoneInfo(self.tz)
        first = _aware(start_utc, "start_utc").astimezone(zone).date() - timedelta(days=1)
        last = _aware(end_utc, "end_utc").astimezone(zone).date()
        out = []
        day = first
        while day <= last:
            begin = datetime.combine(day, self.start, tzinfo=zone)
            finish = datetime.combine(day + timedelta(days=1) if self.wraps else day, self.end, tzinfo=zone)
            out.append((begin.astimezone(UTC), finish.astimezone(UTC)))
            day += timedelta(days=1)
        return out

    def overlaps(self, start_utc: datetime, end_utc: datetime) -> bool:
        """Whether something playing over ``[start_utc, end_utc)`` would sound in quiet hours.

        An item that starts before 22:00 but is still playing at 22:00 counts; one ending exactly at
        22:00 does not. A zero-length span counts when its instant is quiet.
        """
        if end_utc <= start_utc:
            return self.contains(start_utc)
        return any(q_start < end_utc and start_utc < q_end for q_start, q_end in self.intervals(start_utc, end_utc))

    def describe(self) -> str:
        return f"{self.start.strftime('%H:%M')}–{self.end.strftime('%H:%M')} {self.tz}"
