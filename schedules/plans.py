"""Plan building: which plays a node holds for the next hours. Pure functions, no I/O.

The panel publishes to every node a *plan*: all plays whose start lies in ``[now − max_late, now +
horizon)``, with absolute UTC start times and everything needed to fetch and verify the audio. The
node plays from its own clock, so the panel does not need to be up at play time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from devices.protocol import format_ts


def in_window(start: datetime, end: datetime, now: datetime, horizon: timedelta, max_late_ms: int) -> bool:
    """Whether a play belongs in a plan built at ``now``: it starts before ``now + horizon`` and can still
    be playing (``end + max_late``, a node may start it that late).

    Dropping it earlier would make a node cut a long bulletin mid-play when the next plan arrives.
    """
    return end + timedelta(milliseconds=max_late_ms) >= now and start < now + horizon


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
