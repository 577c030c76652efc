"""Local time ↔ UTC. Officers think in Asia/Ho_Chi_Minh; everything stored and sent is UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Ho_Chi_Minh"


class TimeParseError(ValueError):
    pass


def parse_local(value: str, tz: str = DEFAULT_TZ) -> datetime:
    """Parse an ISO 8601 time. Without an offset it is local time in ``tz``; returns aware UTC.

    Accepts ``2026-11-22T06:00``, ``2026-11-22 06:00:05``, ``2026-11-21T23:00:00Z``, ``…+07:00``.
    """
    text = (value or "").strip()
    if not text:
        raise TimeParseError("time is required")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimeParseError(f"not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def to_local(moment: datetime, tz: str = DEFAULT_TZ) -> datetime:
    return moment.astimezone(ZoneInfo(tz))
