"""Quiet hours of a ward: its own setting, else the panel-wide one, else the configuration (``QUIET_HOURS``).

Below the schedules and the emergencies, which both read them (broadcaster/airtime.py applies them to
timelines and plans; broadcaster/emergency.py keeps them when it first writes a ward's settings row).
"""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.errors import ServiceError
from broadcaster.models import WardSetting
from schedules.quiet import QuietHours


def parse_quiet(text: str | None) -> tuple[time, time] | None:
    """``"22:00-05:00"`` → (22:00, 05:00); ``off``/empty/equal ends → None (no quiet hours)."""
    value = (text or "").strip().lower().replace("–", "-")
    if value in ("", "off", "none", "0"):
        return None
    try:
        a, b = (part.strip() for part in value.split("-", 1))
        start, end = time.fromisoformat(a), time.fromisoformat(b)
    except ValueError as exc:
        raise ServiceError("invalid_quiet_hours", "quiet hours: HH:MM-HH:MM, or off", "quiet_hours") from exc
    return None if start == end else (start, end)


def quiet_hours(start: time, end: time, tz: str) -> QuietHours:
    return QuietHours(start=start, end=end, tz=tz)


def ward_quiet(s: Session, config: Any, ward: str = "") -> QuietHours:
    """The quiet hours of ``ward``: its own setting, else the panel-wide row (ward ""), else the config."""
    tz = config.TIMEZONE
    for key in dict.fromkeys((ward or "", "")):
        row = s.scalar(select(WardSetting).where(WardSetting.ward == key))
        if row is not None:
            return quiet_hours(time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end), tz)
    parsed = parse_quiet(getattr(config, "QUIET_HOURS", "22:00-05:00"))
    return quiet_hours(*(parsed or (time(0), time(0))), tz)


def quiet_json(q: QuietHours) -> dict[str, str] | None:
    return {"start": q.start.strftime("%H:%M"), "end": q.end.strftime("%H:%M")} if q.enabled else None
