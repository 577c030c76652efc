"""Plan building: which plays a node holds for the next hours. Pure functions, no I/O.

The panel publishes to every node a *plan*: all plays whose start lies in ``[now − max_late, now +
horizon)``, with absolute UTC start times and everything needed to fetch and verify the audio. The
node plays from its own clock, so the panel does not need to be up at play time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devices.protocol import PRIORITY_RANK, Priority, format_ts


@dataclass(frozen=True)
class Occurrence:
    """One play of one announcement at one instant, for the nodes of some zones."""

    schedule_id: int
    start: datetime  # aware UTC
    priority: str
    title: str
    sha256: str
    size: int
    duration_ms: int
    content_type: str = "audio/mpeg"

    @property
    def item_id(self) -> str:
        return f"s{self.schedule_id}-{int(self.start.timestamp() * 1000)}"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(milliseconds=self.duration_ms)


def in_window(occ: Occurrence, now: datetime, horizon: timedelta, max_late_ms: int) -> bool:
    """Keep an item until it can no longer be playing (start + max_late + duration).

    Dropping it earlier would make a node cut a long bulletin mid-play when the next plan arrives.
    """
    last_possible_end = occ.end + timedelta(milliseconds=max_late_ms)
    return last_possible_end >= now and occ.start < now + horizon


def plan_items(
    occurrences: Iterable[Occurrence],
    media_url: Callable[[str], str],
    *,
    now: datetime,
    horizon: timedelta,
    max_late_ms: int,
) -> list[dict[str, Any]]:
    """Plan items (wire dicts) sorted by start, then higher priority first."""
    chosen = [o for o in occurrences if in_window(o, now, horizon, max_late_ms)]
    chosen.sort(key=lambda o: (o.start, -PRIORITY_RANK[Priority(o.priority)], o.item_id))
    return [
        {
            "id": o.item_id,
            "start": format_ts(o.start),
            "media": {
                "url": media_url(o.sha256),
                "sha256": o.sha256,
                "bytes": o.size,
                "duration_ms": o.duration_ms,
                "content_type": o.content_type,
            },
            "priority": o.priority,
            "title": o.title[:300],
            "max_late_ms": max_late_ms,
            "schedule_id": str(o.schedule_id),
        }
        for o in chosen
    ]


def items_hash(items: list[dict[str, Any]]) -> str:
    """Stable fingerprint: a plan is republished only when its items change."""
    blob = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def next_version(previous: int, now: datetime) -> int:
    """Strictly increasing and roughly wall-clock (ms), so a restored database never goes backwards."""
    return max(previous + 1, int(now.timestamp() * 1000))


def plan_hash(items: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> str:
    """:func:`items_hash`, also covering plan-level fields (quiet hours, tz) when there are any."""
    if not extra:
        return items_hash(items)
    return items_hash([{"_plan": extra}, *items])


def build_plan(
    node_id: str,
    items: list[dict[str, Any]],
    *,
    version: int,
    now: datetime,
    horizon: timedelta,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The unsigned plan payload (the caller signs it). ``extra``: plan-level fields (``tz``, ``quiet_hours``)."""
    return {
        "type": "plan",
        "protocol": 1,
        "node_id": node_id,
        "version": version,
        "generated_at": format_ts(now),
        "valid_until": format_ts(now + horizon),
        **(extra or {}),
        "items": items,
    }
