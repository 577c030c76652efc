"""Citizen re-listen ("Nghe lại", issue 17 §4): what actually aired in a ward in the last 30 days.

The public page and its JSON (broadcaster/web/relisten.py) list only airings that pass every rule here:

* **Aired**: at least one loudspeaker node of the ward reported playing the plan item — a ``playback_finished``
  event, or only ``playback_stopped`` events with reason ``end_at`` (cut by the plan on purpose) — the same rule
  as the proof-of-play reports (:mod:`broadcaster.fleet`). A scheduled, started, failed or stopped-early item
  is not an airing; an item that is still to come never has such an event.
* **Approved now**: the announcement is approved (``approved`` or ``published``, :data:`policy.APPROVED_STATES`),
  not archived, and its current audio is the approved audio (:func:`policy.playable`). A change since the
  airing withdraws the approval (``submitted``): the airing disappears from the page until a leader approves
  again.
* **Exactly the approved audio**: the audio the node reported playing (the event's ``sha256``) must be the
  announcement's ``approved_media_sha256``; the page offers that file and nothing else. An airing of an older
  approved version whose audio has since been replaced and re-approved is left out (its text is gone).
  Events without a ``sha256`` (older firmware) count for a single-announcement schedule only, with the
  approved audio.
* **This ward, last 30 days**: the node belongs to a zone of the ward and the schedule targeted that zone; the
  airing's scheduled start (the plan item's start, the moment every node of it started together) and the times
  of the node's reports are within the last 30 days. Only a node's report makes an airing: a schedule whose
  time has not come has none.
* **Not alerts or drills**: emergency alerts (items ``alert:…``, played by command), drill schedules and
  emergency-priority schedules are left out; only ordinary bulletins appear.

One item per airing: announcement × scheduled start, with every zone of the ward in which a node played it.
With ``zone`` only the airings that played in that zone are listed (their ``zones`` still name every zone of
the ward they played in).

:func:`cached_listing` keeps each ward's list in memory (a zone's is narrowed from it): computed again after a
minute, or sooner once the data behind it changed (a new report of an airing, an approval withdrawn) — checked
at most every 2 s by one cheap query — so a busy ward's list is computed at most every 2 s, a quiet one's once a
minute, and the panel stops showing a withdrawn bulletin (and serving its audio) within seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from broadcaster import policy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Announcement, Node, NodeEvent, Schedule, Ward, Zone

#: How far back the page looks.
WINDOW = timedelta(days=30)
#: Seconds a computed list is served from memory at most.
DEFAULT_TTL_S = 60.0
#: Seconds between two checks whether the data behind a cached list changed (then it is computed again).
DEFAULT_RECHECK_S = 2.0
#: The events that can make an item "played" (see :func:`played`).
AIRED_EVENTS = ("playback_finished", "playback_stopped")
#: Schedule items: ``s<schedule_id>-<start ms>`` (broadcaster/airtime.py ``entry_item_id``).
SCHEDULE_ITEM_PREFIX = "s"
#: Above this many nodes in a ward the events are not filtered by node in SQL (a bound IN list), but in Python.
MAX_IN_LIST = 500


@dataclass(frozen=True)
class ZoneRef:
    code: str
    name: str


@dataclass(frozen=True)
class Airing:
    """One bulletin as it aired once: announcement × scheduled start, with the zones of the ward it played in."""

    announcement_id: int
    title: str
    text: str
    aired_at: datetime  # UTC
    zones: tuple[ZoneRef, ...]
    sha256: str
    duration_ms: int | None


@dataclass(frozen=True)
class Listing:
    ward_code: str
    ward_name: str
    zone: ZoneRef | None
    items: tuple[Airing, ...]
    computed_at: datetime
    #: The zones of the ward (for the poster and the zone filter's names).
    ward_zones: tuple[ZoneRef, ...] = field(default=())

    def sha256s(self) -> frozenset[str]:
        return frozenset(a.sha256 for a in self.items)


def clock() -> datetime:
    """Now (a test may move it)."""
    return datetime.now(UTC)


def played(events: list[Any]) -> bool:
    """One node's events about one plan item say it aired: a finish, or only stops by the plan's ``end_at``.

    The proof-of-play rule of :mod:`broadcaster.fleet` (its outcome ``played``), restated here over the two event
    kinds it depends on.
    """
    if any(e.event == "playback_finished" for e in events):
        return True
    stops = [e for e in events if e.event == "playback_stopped"]
    return bool(stops) and all(e.reason == "end_at" for e in stops)


def item_start(ev: Any) -> datetime | None:
    """The plan item's scheduled start: the event's ``scheduled_start``, else the instant in its item id."""
    if ev.scheduled_start is not None:
        return ev.scheduled_start
    try:
        return datetime.fromtimestamp(int((ev.item_id or "").rsplit("-", 1)[1]) / 1000, UTC)
    except (IndexError, ValueError, OverflowError):
        return None


def find_ward(service: PanelCore, ward_code: str) -> tuple[Ward, list[Zone]]:
    """The ward with exactly this code and its zones (by code), else ``unknown_ward`` (404)."""
    with service.db.session() as s:
        code = (ward_code or "").strip()
        ward = s.scalar(select(Ward).where(Ward.code == code)) or s.scalar(
            select(Ward).where(func.lower(Ward.code) == code.lower()))  # a code typed in another case
        if ward is None:
            raise ServiceError("unknown_ward", f"no ward {ward_code!r}", "ward", 404)
        zones = list(s.scalars(select(Zone).where(Zone.ward_id == ward.id).order_by(Zone.code)))
        return ward, zones


def schedule_announcements(sched: Schedule, anns: dict[int, Announcement]) -> list[Announcement]:
    """The announcements a schedule's items may be: its programme's, else its one announcement."""
    ids: list[int] = []
    for it in sched.items or []:
        if isinstance(it, dict) and it.get("kind") == "announcement" and it.get("announcement_id") is not None:
            ids.append(int(it["announcement_id"]))
    if not ids and sched.announcement_id is not None:
        ids.append(sched.announcement_id)
    return [anns[i] for i in dict.fromkeys(ids) if i in anns]


def for_zone(full: Listing, zone_code: str | None) -> Listing:
    """The ward's list narrowed to the airings that played in one of its zones (``unknown_zone``, 404, if the
    code is not a zone of this ward); the whole list without a code."""
    if not zone_code:
        return full
    picked = next((ref for ref in full.ward_zones if ref.code == zone_code.strip()), None)
    if picked is None:
        raise ServiceError("unknown_zone", f"no zone {zone_code!r} in ward {full.ward_code!r}", "zone", 404)
    return replace(full, zone=picked, items=tuple(a for a in full.items if picked in a.zones))


def listing(service: PanelCore, ward_code: str, zone_code: str | None = None,
            now: datetime | None = None) -> Listing:
    """The airings of the ward (of one zone of it) in the last 30 days, newest first (rules: module docstring).

    Unknown ward → ``unknown_ward`` (404); a zone code that is not a zone of this ward → ``unknown_zone`` (404).
    """
    return for_zone(ward_listing(service, ward_code, now), zone_code)


#: The columns of an event the rules read (rows, not ORM objects: a month of a ward's events is many rows).
EVENT_COLUMNS = (NodeEvent.node_id, NodeEvent.item_id, NodeEvent.event, NodeEvent.reason, NodeEvent.schedule_id,
                 NodeEvent.sha256, NodeEvent.scheduled_start, NodeEvent.actual_start, NodeEvent.at)


def schedule_of(events: list[Any]) -> int | None:
    """The schedule of one node's events about one plan item: their ``schedule_id``, else the one its item id
    names (``s<schedule>-<start ms>``) — a node need not copy ``schedule_id`` (docs/protocol.md §6.5)."""
    sid = next((e.schedule_id for e in events if e.schedule_id), None)
    if sid is not None:
        return int(sid)
    head = (events[0].item_id or "")[len(SCHEDULE_ITEM_PREFIX):].split("-", 1)[0]
    return int(head) if head.isascii() and head.isdigit() and 0 < int(head) <= 2**31 - 1 else None


def ward_listing(service: PanelCore, ward_code: str, now: datetime | None = None) -> Listing:
    """Every airing of the ward in the last 30 days, newest first; ``unknown_ward`` (404)."""
    now = now or clock()
    since = now - WINDOW
    ward, zones = find_ward(service, ward_code)
    by_id = {z.id: ZoneRef(z.code, z.name) for z in zones}
    empty = Listing(ward.code, ward.name, None, (), now, tuple(by_id.values()))
    if not by_id:
        return empty
    with service.db.session() as s:
        node_zone = dict(s.execute(select(Node.node_id, Node.zone_id).where(Node.zone_id.in_(list(by_id)))).all())
        if not node_zone:
            return empty
        # Events are stamped by the node's clock at the end of the airing: look a day further back than the
        # window (a long programme, a drifting clock), then keep airings by their times (below).
        q = select(*EVENT_COLUMNS).where(NodeEvent.event.in_(AIRED_EVENTS), NodeEvent.at >= since - timedelta(days=1),
                                         NodeEvent.item_id.like(f"{SCHEDULE_ITEM_PREFIX}%"))
        if len(node_zone) <= MAX_IN_LIST:
            q = q.where(NodeEvent.node_id.in_(list(node_zone)))
        per_item: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for ev in s.execute(q):
            if ev.node_id in node_zone:
                per_item[(ev.node_id, ev.item_id or "")].append(ev)
        if not per_item:
            return empty
        schedule_ids = {sid for evs in per_item.values() if (sid := schedule_of(evs)) is not None}
        schedules = {sc.id: sc for sc in s.scalars(
            select(Schedule).where(Schedule.id.in_(schedule_ids)).options(selectinload(Schedule.zones)))}
        ann_ids: set[int] = set()
        for sc in schedules.values():
            ann_ids.update(int(it["announcement_id"]) for it in sc.items or []
                           if isinstance(it, dict) and it.get("announcement_id") is not None)
            if sc.announcement_id is not None:
                ann_ids.add(sc.announcement_id)
        anns = {a.id: a for a in s.scalars(select(Announcement).where(Announcement.id.in_(ann_ids))
                                           .options(selectinload(Announcement.media)))} if ann_ids else {}

        # Per schedule, once: the zones it plays to, its announcements and those of them approved now. Alerts,
        # drills and archived schedules are not bulletins for the page.
        eligible: dict[int, tuple[set[int], list[Announcement], list[Announcement]]] = {}
        for sid, sc in schedules.items():
            if sc.drill or sc.priority == "emergency" or sc.archived_at is not None:
                continue
            named = schedule_announcements(sc, anns)
            eligible[sid] = ({z.id for z in sc.zones}, named, [a for a in named if policy.playable(a)])

        # (announcement, scheduled start) → zones it played in, and the audio
        airings: dict[tuple[int, datetime], set[int]] = defaultdict(set)
        audio: dict[tuple[int, datetime], str] = {}
        for (node_id, _item), evs in per_item.items():
            found = eligible.get(schedule_of(evs) or 0)
            if found is None or not played(evs):
                continue
            zone_ids, named, candidates = found
            zone_id = node_zone[node_id]
            if zone_ids and zone_id not in zone_ids:
                continue  # the node is in another zone now than the one the schedule played to
            start = item_start(evs[0])
            # Within the window by every time the reports carry (the item's start, when the node started and
            # when it said so). A reported airing counts even if the panel's clock has not reached its start yet:
            # the node played it (its clock, not the panel's, decides when a plan item starts).
            times = [t for e in evs for t in (e.scheduled_start, e.actual_start, e.at) if t is not None]
            if start is None or min([start, *times]) < since:
                continue
            sha = next((e.sha256 for e in evs if e.sha256), None)
            if not candidates:
                continue
            if sha is not None:
                ann = next((a for a in candidates if a.approved_media_sha256 == sha), None)
            else:  # no audio named: only a one-announcement schedule says which audio it was — and only if the
                # approval now in force was given before that airing (a later change re-approved is other audio)
                ann = candidates[0] if len(named) == 1 and candidates else None
                if ann is not None and (ann.reviewed_at is None or ann.reviewed_at > start):
                    ann = None
            if ann is None or not ann.approved_media_sha256:
                continue
            key = (ann.id, start)
            airings[key].add(zone_id)
            audio[key] = ann.approved_media_sha256

        items: list[Airing] = []
        for (ann_id, start), zone_ids in airings.items():
            sha = audio[(ann_id, start)]
            if not service.media.exists(sha, "mp3"):
                continue  # the file was purged: nothing to play
            ann = anns[ann_id]
            refs = tuple(sorted((by_id[z] for z in zone_ids), key=lambda r: r.code))
            duration = ann.media.duration_ms if ann.media is not None else None
            items.append(Airing(ann.id, ann.title, ann.text or "", start, refs, sha, duration))
    items.sort(key=lambda a: (a.aired_at, a.announcement_id), reverse=True)
    return Listing(ward.code, ward.name, None, tuple(items), now, tuple(by_id.values()))


# ------------------------------------------------------------------------------------------------- cache
def data_version(service: PanelCore) -> tuple[Any, ...]:
    """What changes when the list may: the newest report of an airing, the last change of an announcement
    (approval, text, audio, archive), the zones. One cheap query (maxima and a count on indexed columns)."""
    newest = [select(func.max(NodeEvent.id)).where(NodeEvent.event == name).scalar_subquery()
              for name in AIRED_EVENTS]
    with service.db.session() as s:
        row = s.execute(select(*newest, select(func.max(Announcement.updated_at)).scalar_subquery(),
                               select(func.max(Zone.id)).scalar_subquery(),
                               select(func.count(Zone.id)).scalar_subquery())).one()
    return tuple(row)


@dataclass
class Entry:
    computed_at: float
    checked_at: float
    version: tuple[Any, ...]
    listing: Listing


class ListingCache:
    """ward → its listing, per panel; a zone's list is narrowed from it. Errors are not kept.

    A list is computed again after ``ttl`` seconds, or sooner when :func:`data_version` changed — checked at most
    every ``recheck`` seconds: a new airing shows, and a withdrawn approval disappears, within seconds rather than a
    minute, and a busy ward's list is still computed at most once every ``recheck`` seconds.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, Entry] = {}
        self.computed = 0  # how many lists were computed (tests count them)

    def get(self, service: PanelCore, ward_code: str, ttl: float, recheck: float = DEFAULT_RECHECK_S) -> Listing:
        key = (ward_code or "").strip().lower()
        now = time.monotonic()
        with self.lock:
            hit = self.entries.get(key)
        if hit is not None and now - hit.computed_at < ttl:
            if now - hit.checked_at < recheck:
                return hit.listing
            version = data_version(service)
            if version == hit.version:
                hit.checked_at = now
                return hit.listing
        else:
            version = data_version(service)
        fresh = ward_listing(service, ward_code)
        with self.lock:
            self.computed += 1
            if len(self.entries) > 1000:  # bound the memory whatever codes are asked for
                self.entries = {k: v for k, v in self.entries.items() if now - v.computed_at < ttl}
            self.entries[key] = Entry(now, now, version, fresh)
        return fresh

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


_create_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary[Any, ListingCache] = weakref.WeakKeyDictionary()


def cache_of(service: PanelCore) -> ListingCache:
    """The one cache of a panel (several panels live in one test process)."""
    cache = _caches.get(service)
    if cache is None:
        with _create_lock:
            cache = _caches.setdefault(service, ListingCache())
    return cache


def cached_listing(service: PanelCore, ward_code: str, zone_code: str | None = None,
                   ttl: float = DEFAULT_TTL_S, recheck: float = DEFAULT_RECHECK_S) -> Listing:
    """:func:`listing` through the panel's :class:`ListingCache` (the ward's list; a zone's is narrowed from it in
    memory)."""
    return for_zone(cache_of(service).get(service, ward_code, ttl, recheck), zone_code)
