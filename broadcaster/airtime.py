"""Air time: what plays where and when. Schedules (one-off or recurring programmes) → slots → timeline → node plans.

One source of truth: :func:`zone_timeline` runs :func:`schedules.timeline.build_timeline` over the slots
of a zone, and both the dry-run view (``GET /api/v1/timeline``, the timeline page) and the plan builder
(:func:`node_plan`) use it. A plan item is an *audible* timeline entry (``play``, ``resumed``,
``preempted`` — the last with ``end_at``) that is not silence and not an emergency delivered by command.

Only approved content reaches the timeline (:func:`broadcaster.policy.playable`: approved, and the audio is the
approved audio; relays only from an active admin-kept stream source); a schedule whose programme holds anything
else is left out as a whole and shown as ``awaiting_approval`` (:func:`schedule_states`) until it is approved.
Conflicts and quiet hours are checked when a schedule is created (:func:`create_schedule`), and quiet hours are applied
again by the timeline and by the node (``Plan.quiet_hours``).

Functions take the :class:`~broadcaster.services.PanelCore` (for its ``db`` and ``config``) and a
SQLAlchemy session where they read; nothing here knows Flask or MQTT.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from broadcaster import emergency, languages, notifications, policy, streams, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Announcement,
    AnnouncementVersion,
    Media,
    Node,
    Schedule,
    StreamSource,
    User,
    Ward,
    WardSetting,
    Zone,
    schedule_zones,
)
from broadcaster.quiet_hours import parse_quiet as parse_quiet
from broadcaster.quiet_hours import quiet_json as quiet_json
from broadcaster.quiet_hours import ward_quiet as ward_quiet
from broadcaster.states import APPROVAL, SCHEDULE, ApprovalState
from devices.protocol import PRIORITY_RANK, Priority, format_ts
from schedules import recurrence as rr
from schedules.plans import in_window
from schedules.quiet import QuietHours
from schedules.timeline import AUDIBLE_STATES, Entry, Slot, SlotItem, build_timeline, find_conflicts, slot_end

log = logging.getLogger(__name__)

#: Slots that started this long before a window are still simulated (they may be playing or waiting).
LOOKBACK = timedelta(hours=6)
#: How far ahead conflicts and quiet hours are checked when a recurring schedule is created.
CHECK_DAYS = 400
PRIORITIES = tuple(p.value for p in Priority)
MAX_REPEAT = 10
MAX_ITEMS = 50
MAX_STREAM_MS = 6 * 3600 * 1000
WEEKDAY_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
                 "t2": 0, "t3": 1, "t4": 2, "t5": 3, "t6": 4, "t7": 5, "cn": 6}


class ConflictError(ServiceError):
    """The new schedule's planned airings overlap existing ones: the officer must choose."""

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        n = len(conflicts)
        super().__init__(code="schedule_conflict",
                         message=f"{n} clash(es) with existing schedules: choose conflict 'override' or 'append'",
                         field="conflict", status=409)
        self.conflicts = conflicts


# ------------------------------------------------------------------------------------ quiet hours


def settings_ward(service: PanelCore, user: User | None, ward: str | None) -> str:
    """The key of the ward settings a user means: a ward user's own ward (never the province default ""), a
    province user's named ward or "" (the default of every ward)."""
    ward = (ward or "").strip()
    if user is not None and not tenancy.is_province(user):
        with service.db.session() as s:
            return tenancy.ward_for_new(s, user, ward or None).code
    return ward


def set_ward_quiet(service: PanelCore, ward: str, value: str, user: User | None = None) -> list[str]:
    """Set a ward's quiet hours (``"22:00-05:00"`` or ``off``); republishes the plans of its nodes."""
    policy.require(service, user, policy.Action.QUIET_HOURS, target=f"ward:{ward}")
    parsed = parse_quiet(value)
    start, end = parsed or (time(0), time(0))
    ward = settings_ward(service, user, ward)
    with service.db.session() as s:
        row = s.scalar(select(WardSetting).where(WardSetting.ward == ward))
        if row is None:
            row = WardSetting(ward=ward)
            s.add(row)
        row.quiet_start, row.quiet_end = start.strftime("%H:%M"), end.strftime("%H:%M")
        service.audit(s, user, "ward.quiet_hours", ward or "*", quiet_hours=value)
        q = select(Node.node_id).join(Node.zone)
        if ward:
            q = q.where(or_(Zone.ward == ward, Zone.ward_id.in_(select(Ward.id).where(Ward.code == ward))))
        affected = list(s.scalars(q))
    return service.publish_plans(affected)


# ------------------------------------------------------------------------------------- recurrence


def _parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ServiceError("invalid_recurrence", f"{name}: a date YYYY-MM-DD is required",
                           f"recurrence.{name}") from exc


def _parse_time(value: Any) -> time:
    try:
        t = time.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ServiceError("invalid_recurrence", f"times: {value!r} is not HH:MM", "recurrence.times") from exc
    return t.replace(microsecond=0, tzinfo=None)


def _weekday(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    key = str(value).strip().lower()[:3]
    if key in WEEKDAY_NAMES:
        return WEEKDAY_NAMES[key]
    if str(value).strip().lower() in WEEKDAY_NAMES:
        return WEEKDAY_NAMES[str(value).strip().lower()]
    raise ServiceError("invalid_recurrence", f"weekday {value!r}: 0–6 (Monday = 0) or mon…sun",
                       "recurrence.weekdays")


def recurrence_from_dict(data: dict[str, Any], tz: str, expires_at: datetime | None = None) -> rr.Recurrence:
    """API/form input → :class:`Recurrence` (validated; errors are ``invalid_recurrence``)."""
    if not isinstance(data, dict):
        raise ServiceError("invalid_recurrence", "recurrence must be an object", "recurrence")
    kind = str(data.get("kind", "")).strip()
    if kind not in rr.KINDS:
        raise ServiceError("invalid_recurrence", f"kind must be one of {', '.join(rr.KINDS)}", "recurrence.kind")
    if "start_date" not in data:
        raise ServiceError("invalid_recurrence", "start_date is required", "recurrence.start_date")
    hour_range = data.get("hour_range")
    try:
        rec = rr.Recurrence(
            kind=kind,  # type: ignore[arg-type]
            start_date=_parse_date(data["start_date"], "start_date"),
            times=tuple(_parse_time(t) for t in (data.get("times") or [])),
            until=_parse_date(data["until"], "until") if data.get("until") else None,
            weekdays=tuple(_weekday(d) for d in (data.get("weekdays") or [])),
            month_days=tuple(int(d) for d in (data.get("month_days") or [])),
            interval=int(data.get("interval", 1)),
            # [17, 7] is the same range as [7, 17]
            hour_range=tuple(sorted((int(hour_range[0]), int(hour_range[1])))) if hour_range else None,
            exdates=tuple(sorted({_parse_date(d, "exdates") for d in (data.get("exdates") or [])})),
            expires_at=expires_at,
            tz=tz,
        )
    except (TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, ServiceError):
            raise
        raise ServiceError("invalid_recurrence", f"recurrence: {exc}", "recurrence") from exc
    errors = rr.validate(rec)
    if errors == ["until_before_start"]:  # a well-formed rule that ends before it starts: it never plays
        errors = ["no_occurrence"]
    if errors == ["no_occurrence"]:  # a well-formed rule whose days have all passed: time moved on
        raise ServiceError("no_occurrence", "recurrence: no airing left in its period", "recurrence", 409)
    if errors:
        raise ServiceError("invalid_recurrence", f"recurrence: {', '.join(errors)}", "recurrence")
    return rec


def _fmt_t(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def recurrence_to_dict(rec: rr.Recurrence) -> dict[str, Any]:
    return {
        "kind": rec.kind,
        "start_date": rec.start_date.isoformat(),
        "times": [_fmt_t(t) for t in rec.times],
        "until": rec.until.isoformat() if rec.until else None,
        "weekdays": list(rec.weekdays),
        "month_days": list(rec.month_days),
        "interval": rec.interval,
        "hour_range": list(rec.hour_range) if rec.hour_range else None,
        "exdates": [d.isoformat() for d in rec.exdates],
    }


def schedule_recurrence(sched: Schedule, tz: str) -> rr.Recurrence | None:
    if not sched.recurrence:
        return None
    return recurrence_from_dict(sched.recurrence, tz, sched.expires_at)


def airings(sched: Schedule, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Start instants (aware UTC) of ``sched`` in ``[start, end)``, expiry applied."""
    rec = schedule_recurrence(sched, tz)
    if rec is not None:
        return rr.occurrences(rec, start, end)
    at = sched.start_at
    if start <= at < end and (sched.expires_at is None or at < sched.expires_at):
        return [at]
    return []


# -------------------------------------------------------------------------------------- programmes


def programme(sched: Schedule) -> list[dict[str, Any]]:
    """The ordered items of a schedule (a classic schedule is one announcement)."""
    if sched.items:
        return list(sched.items)
    return [{"kind": "announcement", "announcement_id": sched.announcement_id}] if sched.announcement_id else []


def announcement_ids(items: Iterable[dict[str, Any]]) -> list[int]:
    return [int(i["announcement_id"]) for i in items if i.get("kind") == "announcement"]


def normalize_items(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate programme items from the API/form (shape only; announcements are checked later)."""
    if not raw:
        raise ServiceError("items_required", "a programme needs at least one item", "items")
    if len(raw) > MAX_ITEMS:
        raise ServiceError("too_many_items", f"at most {MAX_ITEMS} items", "items")
    out: list[dict[str, Any]] = []
    for n, item in enumerate(raw):
        where = f"items.{n}"
        if not isinstance(item, dict):
            raise ServiceError("invalid_item", "each item must be an object", where)
        kind = item.get("kind")
        duration = item.get("duration_ms")
        if kind == "announcement":
            try:
                out.append({"kind": kind, "announcement_id": int(item["announcement_id"])})
            except (KeyError, TypeError, ValueError) as exc:
                raise ServiceError("invalid_item", "announcement_id is required", where) from exc
        elif kind == "stream":  # a source of the admin's list (broadcaster/streams.py resolves it)
            source = item.get("source")
            url = str(item.get("url") or "").strip()
            if source in (None, "") and not url:
                raise ServiceError("stream_source_required", "choose a stream source from the ward's list",
                                   f"{where}.source")
            if not isinstance(duration, int) or isinstance(duration, bool) or not 1000 <= duration <= MAX_STREAM_MS:
                raise ServiceError("invalid_duration", "stream duration_ms: 1 s … 6 h", f"{where}.duration_ms")
            entry: dict[str, Any] = {"kind": kind, "duration_ms": duration, "title": str(item.get("title") or "")[:300]}
            if source not in (None, ""):
                entry["source"] = source
            else:
                entry["url"] = url[:2000]
            out.append(entry)
        elif kind == "silence":
            if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= 3_600_000:
                raise ServiceError("invalid_duration", "silence duration_ms: 1 ms … 1 h", f"{where}.duration_ms")
            out.append({"kind": kind, "duration_ms": duration})
        else:
            raise ServiceError("invalid_item", "kind must be announcement, stream or silence", f"{where}.kind")
    return out


@dataclass
class Catalog:
    """Announcements (and their media) the slots of a query refer to."""

    anns: dict[int, Announcement] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)  # by sha256
    versions: dict[int, AnnouncementVersion] = field(default_factory=dict)  # language versions by id
    sources: dict[int, StreamSource] = field(default_factory=dict)  # active stream sources by id
    sources_loaded: bool = False

    def load_sources(self, s: Session) -> None:
        if not self.sources_loaded:
            self.sources = {x.id: x for x in s.scalars(select(StreamSource).where(StreamSource.active))}
            self.sources_loaded = True

    def load(self, s: Session, ids: Iterable[int]) -> None:
        missing = {i for i in ids if i not in self.anns}
        if missing:
            for a in s.scalars(select(Announcement).options(selectinload(Announcement.media))
                               .where(Announcement.id.in_(missing))):
                self.anns[a.id] = a
                if a.media is not None:
                    self.media[a.media.sha256] = a.media
                for v in a.versions:  # (loaded with it: the relationship is selectin)
                    self.versions[v.id] = v

    def load_media(self, s: Session, shas: Iterable[str]) -> None:
        missing = {h for h in shas if h not in self.media}
        if missing:
            for m in s.scalars(select(Media).where(Media.sha256.in_(missing))):
                self.media[m.sha256] = m

    def media_for(self, ref: str) -> Media | None:
        if ref.startswith("ann:"):
            ann = self.anns.get(int(ref[4:]))
            return ann.media if ann is not None else None
        if ref.startswith("media:"):
            return self.media.get(ref[6:])
        if ref.startswith("ver:"):
            version = self.versions.get(int(ref[4:]))
            return version.media if version is not None else None
        return None


def slot_items(sched: Schedule, catalog: Catalog, approved_only: bool = True,
               zone_languages: Sequence[str] | None = None) -> tuple[SlotItem, ...] | None:
    """The programme as timeline items, or None when some content may not (or cannot) play.

    ``approved_only`` (plans, the dry run): every announcement must be :func:`policy.playable` and every stream
    an active source of the admin's list (its URL taken from the source, not from the schedule).
    ``zone_languages``: the zone's languages in order (broadcaster/versions.py): each announcement plays as its
    versions in that order — Vietnamese is the announcement itself; a version without audio or (for plans) not
    approved on its own is left out. None: the announcement alone.
    """
    out = []
    for item in programme(sched):
        kind = item.get("kind")
        if kind == "announcement":
            ann = catalog.anns.get(int(item["announcement_id"]))
            if ann is None or ann.media is None:
                return None
            if approved_only and not policy.playable(ann):
                return None
            versions = {v.language: v for v in ann.versions}
            for code in zone_languages or [languages.VIETNAMESE]:
                if code == languages.VIETNAMESE:
                    out.append(SlotItem("announcement", ann.media.duration_ms, f"ann:{ann.id}", ann.title))
                    continue
                version = versions.get(code)
                if version is None or version.media is None or (approved_only
                                                                and not policy.version_playable(version)):
                    continue
                out.append(SlotItem("announcement", version.media.duration_ms, f"ver:{version.id}",
                                    f"{ann.title} · {languages.name(code)}"))
        elif kind == "stream":
            src = catalog.sources.get(item.get("source_id")) if item.get("source_id") is not None else None
            if src is None and approved_only:
                return None  # not (or no longer) a source of the admin's list
            url = src.url if src is not None else item.get("url") or ""
            out.append(SlotItem("stream", int(item["duration_ms"]), url, item.get("title") or url))
        elif kind == "silence":
            out.append(SlotItem("silence", int(item["duration_ms"])))
    return tuple(out) or None


def make_slot(sched: Schedule, start: datetime, items: tuple[SlotItem, ...]) -> Slot:
    return Slot(
        schedule_id=sched.id or 0,
        start=start,
        items=items,
        priority=sched.priority,  # type: ignore[arg-type]
        on_preempt=sched.on_preempt or "resume",  # type: ignore[arg-type]
        on_clash=sched.on_clash or "append",  # type: ignore[arg-type]
        repeat=sched.repeat or 1,
        gap_ms=sched.gap_ms or 0,
        created_seq=sched.id or 1 << 62,  # a schedule being created is the newest
        expires_at=sched.expires_at,
        drill=bool(sched.drill),
    )


def _schedules_for_zones(s: Session, zone_ids: Sequence[int], start: datetime, end: datetime) -> list[Schedule]:
    if not zone_ids:
        return []
    # Each schedule once, however many of the zones it targets: the zone link is a semi-join (IN over the
    # link table), not a JOIN + DISTINCT — PostgreSQL has no equality operator for the JSON columns.
    targeted = select(schedule_zones.c.schedule_id).where(schedule_zones.c.zone_id.in_(list(zone_ids)))
    rows = s.scalars(
        select(Schedule)
        .where(
            Schedule.id.in_(targeted),
            Schedule.status == "active",
            Schedule.archived_at.is_(None),
            Schedule.start_at < end,
            or_(Schedule.recurrence.is_not(None), Schedule.start_at >= start),
            or_(Schedule.expires_at.is_(None), Schedule.expires_at > start),
        )
        .order_by(Schedule.id)
    )
    return list(rows)


def _emergency_slots(s: Session, start: datetime, end: datetime, zone_ids: set[int]) -> list[Slot]:
    """Slots of the emergencies (broadcaster/emergency.py) in the window: they pre-empt what is scheduled."""
    try:
        return list(emergency.emergency_slots(s, start, end, zone_ids))
    except Exception:  # noqa: BLE001 — a fault there must not stop every plan
        log.exception("emergency_slots failed; plans built without emergencies")
        return []


@dataclass
class ZoneSlots:
    slots: list[Slot]
    catalog: Catalog
    schedules: dict[int, Schedule]


def load_slots(
    service: PanelCore, s: Session, zone_ids: Sequence[int], start: datetime, end: datetime,
    *, approved_only: bool = True, exclude_schedule: int | None = None, emergencies: bool = True,
) -> ZoneSlots:
    """Every slot of ``zone_ids`` that may sound in ``[start, end)`` (started up to LOOKBACK before)."""
    tz = service.config.TIMEZONE
    lo = start - LOOKBACK
    scheds = [x for x in _schedules_for_zones(s, zone_ids, lo, end) if x.id != exclude_schedule]
    catalog = Catalog()
    catalog.load(s, [a for x in scheds for a in announcement_ids(programme(x))])
    if any(i.get("kind") == "stream" for x in scheds for i in programme(x)):
        catalog.load_sources(s)
    slots: list[Slot] = []
    # Each zone plays its languages' versions (a sequence needs those of every zone it names, to time the turns);
    # the id -1 stands for "the announcement alone".
    wanted_zones = set(zone_ids) | {int(z) for x in scheds for z in (x.sequence or {}).get("zone_ids") or []}
    zone_langs = dict(s.execute(select(Zone.id, Zone.languages).where(Zone.id.in_(wanted_zones))).all())
    for sched in scheds:
        memo: dict[int, tuple[SlotItem, ...] | None] = {}

        def items_of(zone_id: int, sched: Schedule = sched, memo: dict = memo) -> tuple[SlotItem, ...] | None:
            if zone_id not in memo:
                langs = languages.of_zone(zone_langs.get(zone_id)) if zone_id in zone_langs else None
                memo[zone_id] = slot_items(sched, catalog, approved_only, langs)
            return memo[zone_id]

        if items_of(-1) is None:
            continue  # something in it may not (or cannot) play
        for at in airings(sched, tz, lo, end):
            slots.extend(schedule_slots(sched, at, items_of, zone_ids))
    if emergencies:
        extra = _emergency_slots(s, lo, end, set(zone_ids))
        refs = [i.ref for sl in extra for i in sl.items]
        catalog.load(s, [int(r[4:]) for r in refs if r.startswith("ann:") and r[4:].isdigit()])
        catalog.load_media(s, [r[6:] for r in refs if r.startswith("media:")])
        slots.extend(extra)
    return ZoneSlots(slots, catalog, {x.id: x for x in scheds})


def zone_timeline(
    service: PanelCore, s: Session, zone: Zone, start: datetime, end: datetime
) -> tuple[list[Entry], ZoneSlots, QuietHours]:
    """What the loudspeakers of ``zone`` do in ``[start, end)``: the one function plans and dry-runs share."""
    quiet = ward_quiet(s, service.config, tenancy.settings_key(s, zone))
    zs = load_slots(service, s, [zone.id], start, end)
    return build_timeline(zs.slots, start, end, quiet), zs, quiet


# -------------------------------------------------------------------------------------------- plans


@dataclass
class NodePlan:
    items: list[dict[str, Any]]
    extra: dict[str, Any]
    announcement_ids: set[int]


def delivered_by_command(zs: ZoneSlots) -> set[tuple[int, datetime]]:
    """Emergency alerts go out as ``play_now`` commands (broadcaster/emergency.py: negative schedule ids)."""
    return {(sl.schedule_id, sl.start) for sl in zs.slots
            if getattr(sl, "delivery", "plan") == "command" or sl.schedule_id < 0}


def entry_item_id(e: Entry) -> str:
    """Stable per audible entry: the schedule and the instant it starts sounding (entries never overlap)."""
    return f"s{e.schedule_id}-{int(e.start.timestamp() * 1000)}"


def entries_to_items(
    service: PanelCore, entries: Iterable[Entry], zs: ZoneSlots, *, now: datetime | None = None,
) -> tuple[list[dict[str, Any]], set[int]]:
    """Plan items (wire dicts) for the audible entries (see the module docstring)."""
    max_late = service.config.MAX_LATE_MS
    by_slot = {(sl.schedule_id, sl.start): sl for sl in zs.slots}
    by_command = delivered_by_command(zs)
    items: list[tuple[tuple, dict[str, Any]]] = []
    used: set[int] = set()
    for e in entries:
        # (on the wire times have milliseconds: a piece cut to under a millisecond would read as end_at == start,
        # and a node refuses the whole plan for it; it would not be heard anyway)
        if e.state not in AUDIBLE_STATES or e.kind == "silence" or format_ts(e.end) <= format_ts(e.start):
            continue
        if (e.schedule_id, e.slot_start) in by_command:
            continue
        if now is not None and not in_window(e.start, e.end, now, service.horizon, max_late):
            continue
        slot = by_slot.get((e.schedule_id, e.slot_start))
        planned = slot.items[e.item_index] if slot is not None else None
        item: dict[str, Any] = {
            "id": entry_item_id(e),
            "start": format_ts(e.start),
            "priority": e.priority,
            "title": (e.title or "")[:300],
            "max_late_ms": max_late,
            "schedule_id": str(e.schedule_id),
        }
        if e.kind == "stream":
            duration = planned.duration_ms if planned is not None else e.duration_ms
            item["stream"] = {"url": e.ref, "duration_ms": duration}
            if e.state == "preempted" or e.duration_ms < duration:
                item["end_at"] = format_ts(e.end)
        else:
            media = zs.catalog.media_for(e.ref)
            if media is None:
                continue
            item["media"] = {"url": service.media_url(media.sha256), "sha256": media.sha256, "bytes": media.size,
                             "duration_ms": media.duration_ms, "content_type": media.content_type}
            if e.state == "preempted" or e.duration_ms < media.duration_ms:
                item["end_at"] = format_ts(e.end)
            if e.ref.startswith("ann:"):
                used.add(int(e.ref[4:]))
        if e.drill:
            item["drill"] = True
        rank = PRIORITY_RANK[Priority(e.priority)]
        items.append(((e.start, -rank, item["id"]), item))
    items.sort(key=lambda pair: pair[0])
    return [i for _, i in items], used


def node_plan(service: PanelCore, s: Session, zone_id: int | None, now: datetime,
              cache: dict[int | None, NodePlan] | None = None) -> NodePlan:
    """The items of the plan of a node in zone ``zone_id`` for ``[now, now + horizon)`` from the zone's timeline.

    Every node of a zone gets the same items; pass one ``cache`` dict for a batch of nodes at one ``now``.
    """
    if cache is not None and zone_id in cache:
        return cache[zone_id]
    tz = service.config.TIMEZONE
    zone = s.get(Zone, zone_id) if zone_id is not None else None
    if zone is None:
        quiet = ward_quiet(s, service.config, "")
        result = NodePlan([], _plan_extra(tz, quiet), set())
    else:
        start = now - timedelta(milliseconds=service.config.MAX_LATE_MS)
        entries, zs, quiet = zone_timeline(service, s, zone, start, now + service.horizon)
        items, used = entries_to_items(service, entries, zs, now=now)
        result = NodePlan(items, _plan_extra(tz, quiet), used)
    if cache is not None:
        cache[zone_id] = result
    return result


def _plan_extra(tz: str, quiet: QuietHours) -> dict[str, Any]:
    extra: dict[str, Any] = {"tz": tz}
    q = quiet_json(quiet)
    if q is not None:
        extra["quiet_hours"] = q
    return extra


def nodes_of_zones(s: Session, zone_ids: Iterable[int]) -> list[str]:
    ids = list(zone_ids)
    if not ids:
        return []
    return list(s.scalars(select(Node.node_id).where(Node.zone_id.in_(ids))))


# ---------------------------------------------------------------------------------- create / checks


@dataclass
class ScheduleSpec:
    """What an officer asks for; see :func:`create_schedule`."""

    zones: list[int | str]
    announcement_id: int | None = None
    items: list[dict[str, Any]] | None = None
    start_at: datetime | None = None
    recurrence: dict[str, Any] | None = None
    rrule: str | None = None
    expires_at: datetime | None = None
    priority: str = "normal"
    on_preempt: str = "resume"
    repeat: int = 1
    gap_ms: int = 0
    conflict: str | None = None  # None → refuse on clash; "override" | "append"
    title: str | None = None
    drill: bool = False
    #: Sequenced zones: {"zones": [codes or ids, in order], "gap_s": N} (None: every zone at once).
    sequence: dict[str, Any] | None = None


#: The longest silence between two zones of a sequence.
MAX_SEQUENCE_GAP_S = 3600


ZoneItems = Callable[[int], "tuple[SlotItem, ...] | None"]


def sequence_offsets(sched: Schedule, at: datetime, items_of: ZoneItems) -> dict[int, timedelta]:
    """zone id → how long after the airing's start that zone's turn begins: each zone of a sequence waits until
    the ones before it have played their whole slot (their own items: a zone's language versions make it longer;
    repeats included) plus ``gap_s``. Empty when the schedule plays every zone at once."""
    seq = sched.sequence or {}
    gap = timedelta(seconds=int(seq.get("gap_s") or 0))
    offsets: dict[int, timedelta] = {}
    elapsed = timedelta(0)
    for zone_id in seq.get("zone_ids") or []:
        offsets[int(zone_id)] = elapsed
        items = items_of(int(zone_id))
        if items:
            slot = make_slot(sched, at, items)
            elapsed += slot_end(slot) - slot.start
        elapsed += gap
    return offsets


def sequence_length(sched: Schedule, at: datetime, items_of: ZoneItems) -> timedelta:
    """From the first zone's start to the end of the last one's slot."""
    ids = [int(z) for z in (sched.sequence or {}).get("zone_ids") or []]
    if not ids:
        return timedelta(0)
    last = items_of(ids[-1])
    tail = (slot_end(make_slot(sched, at, last)) - at) if last else timedelta(0)
    return sequence_offsets(sched, at, items_of)[ids[-1]] + tail


def schedule_slots(sched: Schedule, at: datetime, items_of: ZoneItems, zone_ids: Iterable[int]) -> list[Slot]:
    """The slot(s) of one airing at ``at`` in ``zone_ids``: for a schedule that plays every zone together one slot
    (the items of the first of them: a clash check of several zones uses the announcement alone); for a sequence
    one per zone it names, each at its turn with that zone's items."""
    wanted = list(dict.fromkeys(zone_ids))
    if not sched.sequence:
        items = items_of(wanted[0]) if len(wanted) == 1 else items_of(-1)
        return [make_slot(sched, at, items)] if items else []
    offsets = sequence_offsets(sched, at, items_of)
    out = []
    for zone_id in wanted:
        items = items_of(zone_id) if zone_id in offsets else None
        if items:
            out.append(make_slot(sched, at + offsets[zone_id], items))
    return out


def sequence_turn(sched: Schedule | None, zone_id: int) -> dict[str, Any] | None:
    """``{"turn": n, "of": total, "gap_s": gap, "zones": [codes]}`` (n from 1) of a zone in a sequenced
    schedule, for the timeline and calendar; None when the schedule plays every zone together."""
    if sched is None or not sched.sequence or zone_id not in (sched.sequence.get("zone_ids") or []):
        return None
    ids = sched.sequence["zone_ids"]
    return {"turn": ids.index(zone_id) + 1, "of": len(ids), "gap_s": int(sched.sequence.get("gap_s") or 0),
            "zones": list(sched.sequence.get("zones") or [])}


def _check_sequence(spec: ScheduleSpec, zones: list[Zone], resolve: Any) -> dict[str, Any] | None:
    """The stored form of ``spec.sequence``: its zones must be exactly the schedule's zones, each once."""
    if spec.sequence is None:
        return None
    seq = spec.sequence
    gap = seq.get("gap_s", 0)
    if not isinstance(gap, int) or isinstance(gap, bool) or not 0 <= gap <= MAX_SEQUENCE_GAP_S:
        raise ServiceError("invalid_sequence", f"sequence.gap_s: a whole number of seconds, 0–{MAX_SEQUENCE_GAP_S}",
                           "sequence")
    refs = seq.get("zones")
    if not isinstance(refs, list) or not refs:
        raise ServiceError("invalid_sequence", "sequence.zones: the schedule's zones in the order they play",
                           "sequence")
    ordered = [resolve(r) if isinstance(r, int | str) else None for r in refs]
    if any(z is None for z in ordered):
        raise ServiceError("invalid_sequence", "sequence.zones: zone codes (or ids)", "sequence")
    ids = [z.id for z in ordered]
    if len(set(ids)) != len(ids) or set(ids) != {z.id for z in zones}:
        raise ServiceError("invalid_sequence", "sequence.zones must name each of the schedule's zones once, in "
                           "the order they play", "sequence")
    return {"zone_ids": ids, "zones": [z.code for z in ordered], "gap_s": gap}


def _check_spec(spec: ScheduleSpec, now: datetime) -> None:
    if spec.priority not in PRIORITIES:
        raise ServiceError("invalid_priority", "priority must be normal, priority or emergency", "priority")
    if spec.on_preempt not in ("resume", "drop"):
        raise ServiceError("invalid_on_preempt", "on_preempt must be resume or drop", "on_preempt")
    if spec.conflict not in (None, "override", "append"):
        raise ServiceError("invalid_conflict", "conflict must be override or append", "conflict")
    if not 1 <= int(spec.repeat) <= MAX_REPEAT:
        raise ServiceError("invalid_repeat", f"repeat: 1–{MAX_REPEAT}", "repeat")
    if not 0 <= int(spec.gap_ms) <= 3_600_000:
        raise ServiceError("invalid_gap", "gap_ms: 0 … 1 h", "gap_ms")
    if not spec.zones:
        raise ServiceError("zones_required", "choose at least one zone", "zones")
    whens = sum(x is not None for x in (spec.start_at, spec.recurrence, spec.rrule))
    if whens != 1:
        raise ServiceError("when_required", "give exactly one of start_at, recurrence or rrule", "start_at")
    if spec.start_at is not None:
        if spec.start_at.tzinfo is None:
            raise ServiceError("invalid_time", "start time must carry a time zone", "start_at")
        if spec.start_at < now - timedelta(seconds=1):
            raise ServiceError("time_in_past", "start time is in the past", "start_at", 409)  # time moved on
    if spec.expires_at is not None and spec.expires_at.tzinfo is None:
        raise ServiceError("invalid_time", "expiry must carry a time zone", "expires_at")
    if spec.announcement_id is None and not spec.items:
        raise ServiceError("items_required", "give announcement_id or programme items", "items")


def conflict_json(c: Any, service: PanelCore, titles: dict[int, str]) -> dict[str, Any]:
    return {
        "schedule_id": c.schedule_id,
        "title": titles.get(c.schedule_id, ""),
        "start": format_ts(c.start),
        "end": format_ts(c.end),
        "start_local": service.local(c.start).isoformat(timespec="seconds"),
        "end_local": service.local(c.end).isoformat(timespec="seconds"),
        "priority": c.priority,
        "relation": c.relation,
    }


def check_clashes(
    service: PanelCore, s: Session, new_slots: list[Slot], zone_ids: list[int], exclude: int | None = None
) -> list[dict[str, Any]]:
    """Existing airings (approved or not) in the same zones whose planned time overlaps a new airing."""
    if not new_slots:
        return []
    start, end = new_slots[0].start, max(slot_end(x) for x in new_slots)
    zs = load_slots(service, s, zone_ids, start, end, approved_only=False, exclude_schedule=exclude,
                    emergencies=False)
    existing = sorted((x for x in zs.slots if x.schedule_id != (exclude or 0)), key=lambda x: x.start)
    if not existing:
        return []
    starts = [x.start for x in existing]
    longest = max(slot_end(x) - x.start for x in existing)
    found: dict[tuple[int, datetime], Any] = {}
    for new in new_slots:
        lo = bisect.bisect_left(starts, new.start - longest)
        hi = bisect.bisect_right(starts, slot_end(new))
        for c in find_conflicts(new, existing[lo:hi]):
            found.setdefault((c.schedule_id, c.start), c)
    titles = {sid: (sc.title or (sc.announcement.title if sc.announcement else "")) for sid, sc in zs.schedules.items()}
    ordered = sorted(found.values(), key=lambda c: (c.start, c.schedule_id))
    return [conflict_json(c, service, titles) for c in ordered[:200]]


def _quiet_violation(slots: list[Slot], quiets: list[QuietHours]) -> tuple[Slot, QuietHours] | None:
    for sl in slots:
        for q in quiets:
            if q.enabled and q.overlaps(sl.start, slot_end(sl)):
                return sl, q
    return None


def create_schedule(service: PanelCore, spec: ScheduleSpec, user: User | None = None,
                    now: datetime | None = None) -> Schedule:
    """Validate, check quiet hours and clashes, store, and republish the nodes of the chosen zones.

    Raises :class:`ConflictError` (409, with the clashes) when the planned airings overlap existing
    ones and ``spec.conflict`` is None; ``override``/``append`` is then stored as the schedule's
    ``on_clash`` (see :mod:`schedules.timeline` rule 3). Emergencies never clash (they cut in).
    """
    now = now or datetime.now(UTC)
    # The release policy first (R2: emergency priority only through the emergency path), before anything else.
    policy.schedule_check(service, user, priority=spec.priority, target="schedule:new")
    _check_spec(spec, now)
    tz = service.config.TIMEZONE
    rec = None
    if spec.rrule is not None:
        try:
            rec = rr.from_rfc5545(spec.rrule, tz)
        except (ValueError, KeyError) as exc:
            raise ServiceError("invalid_recurrence", f"rrule: {exc}", "rrule") from exc
        expires = spec.expires_at or rec.expires_at
        spec.recurrence = recurrence_to_dict(rec)
        spec.expires_at = expires
    if spec.recurrence is not None:
        rec = recurrence_from_dict(spec.recurrence, tz, spec.expires_at)
    items = normalize_items(spec.items) if spec.items else None
    first_ann = spec.announcement_id
    if items is not None:
        ids = announcement_ids(items)
        first_ann = ids[0] if ids else None
    with service.db.session() as s:
        if items is not None:
            streams.resolve_items(service, s, items, user)  # R1: relays only from the admin's list
        check_ids = announcement_ids(items) if items is not None else [spec.announcement_id]
        anns = {}
        scope = tenancy.user_scope(user)  # another ward's zone or announcement is unknown: nothing is created
        for aid in check_ids:
            ann = s.get(Announcement, aid)
            if ann is None or (scope is not None and not scope.sees(ann.ward_id)):
                raise ServiceError("unknown_announcement", f"no announcement {aid}", "announcement_id", 404)
            if ann.archived_at is not None:  # deleted (archived): restore it first
                raise ServiceError("announcement_archived", "the announcement is deleted (archived); restore it "
                                   "first", "announcement_id", 409)
            if ann.status != "ready" or not ann.media_sha256:
                raise ServiceError("announcement_not_ready", "the announcement has no rendered audio yet",
                                   "announcement_id")
            anns[aid] = ann
        zone_objs = [service.zone_by_ref(s, z, scope) for z in spec.zones]
        zones = list({z.id: z for z in zone_objs if z is not None}.values())
        ward_ids = {z.ward_id for z in zones}
        if len(ward_ids) > 1:
            raise ServiceError("zones_of_several_wards", "a schedule's zones must be of one ward", "zones")
        if rec is not None:
            first = rr.first_occurrence(rec)
            start_at = first if first is not None else now
        else:
            assert spec.start_at is not None
            start_at = spec.start_at.astimezone(UTC)
        title = (spec.title or "").strip()[:300] or (anns[first_ann].title if first_ann in anns else None)
        if title is None and items:
            title = next((i.get("title") or i.get("url") for i in items if i["kind"] == "stream"), None)
        sequence = _check_sequence(spec, zones, lambda ref: service.zone_by_ref(s, ref, scope))
        sched = Schedule(
            announcement_id=first_ann, start_at=start_at, priority=spec.priority, zones=zones, sequence=sequence,
            created_by_id=user.id if user else None, title=title,
            recurrence=recurrence_to_dict(rec) if rec is not None else None,
            rrule=rr.to_rfc5545(rec) if rec is not None else None,
            expires_at=spec.expires_at.astimezone(UTC) if spec.expires_at else None,
            items=items, repeat=int(spec.repeat), gap_ms=int(spec.gap_ms), on_preempt=spec.on_preempt,
            on_clash=spec.conflict or "append", drill=bool(spec.drill), ward_id=next(iter(ward_ids), None),
        )
        # planned airings over the check horizon (never before now)
        catalog = Catalog()
        catalog.load(s, anns)
        catalog.load_sources(s)
        slot_its = slot_items(sched, catalog, approved_only=False)
        if slot_its is None:
            raise ServiceError("items_required", "the programme has nothing to play", "items")
        zone_langs = {z.id: languages.of_zone(z.languages) for z in zones}

        def items_of(zone_id: int) -> tuple[SlotItem, ...] | None:
            return slot_items(sched, catalog, False, zone_langs.get(zone_id))
        horizon_end = now + timedelta(days=CHECK_DAYS)
        starts = airings(sched, tz, now - timedelta(seconds=1), horizon_end)
        if not starts:
            raise ServiceError("no_occurrence", f"this schedule has no airing in the next {CHECK_DAYS} days (dates, "
                               "exceptions or expiry); schedule it nearer the time",
                               "recurrence" if rec is not None else "start_at", 409)
        if sequence is not None and sequence_length(sched, starts[0], items_of) > LOOKBACK:
            raise ServiceError("sequence_too_long", f"a sequence must end within {LOOKBACK.seconds // 3600} h of "
                               "its start: fewer zones, a shorter gap", "sequence")
        # Each zone's own slots (its languages, its turn): quiet hours and clashes are checked zone by zone.
        zone_slots = {z.id: [x for at in starts for x in schedule_slots(sched, at, items_of, [z.id])] for z in zones}
        new_slots = [x for slots in zone_slots.values() for x in slots]
        if spec.priority != "emergency" or spec.drill:  # (emergency schedules are refused by the policy)
            quiets = [ward_quiet(s, service.config, w)
                      for w in dict.fromkeys(tenancy.settings_key(s, z) for z in zones)]
            bad = _quiet_violation(new_slots, quiets)
            if bad is not None:
                sl, q = bad
                local = service.local(sl.start).strftime("%H:%M %d/%m/%Y")
                raise ServiceError("quiet_hours", f"the airing at {local} would sound in quiet hours "
                                   f"({q.describe()}); only an emergency released by two people may",
                                   "start_at", 409)  # 409: the ward's quiet hours as they are set now
        if spec.priority != "emergency" and spec.conflict is None:
            clashes: list[dict[str, Any]] = []
            for zone_id, slots in zone_slots.items():
                clashes += [c for c in check_clashes(service, s, slots, [zone_id]) if c not in clashes]
            if clashes:
                raise ConflictError(sorted(clashes, key=lambda c: (c["start"], c["schedule_id"]))[:200])
        s.add(sched)
        s.flush()
        service.audit(
            s, user, "schedule.create", str(sched.id),
            announcement=first_ann, zones=[z.code for z in zones], start=start_at.isoformat(),
            recurrence=sched.rrule, priority=spec.priority, conflict=spec.conflict, ward_id=sched.ward_id,
            sequence=sequence,
        )
        # R6: a scheduled draft goes to the leaders' approval queue at once (else it would wait unseen)
        for ann in anns.values():
            if APPROVAL.state(ann.approval) == ApprovalState.DRAFT:
                APPROVAL.move(ann, "approval", "submit")
                ann.submitted_by_id, ann.submitted_at = (user.id if user else None), now
                service.audit(s, user, "announcement.submit", str(ann.id), ward_id=ann.ward_id,
                               **{"from": "draft", "to": "submitted", "via": f"schedule:{sched.id}"})
                notifications.submitted_when_committed(service, s, ann, user)  # the approvers are told
        sched_id = sched.id
        affected = nodes_of_zones(s, [z.id for z in zones])
    service.publish_plans_soon(affected)  # in the background: the officer's request answers at once
    return get_schedule(service, sched_id)  # type: ignore[return-value]


def get_schedule(service: PanelCore, schedule_id: int) -> Schedule | None:
    with service.db.session() as s:
        return s.scalar(
            select(Schedule)
            .options(selectinload(Schedule.zones), selectinload(Schedule.announcement))
            .where(Schedule.id == schedule_id)
        )


#: What an active schedule whose content is not (yet) approved is shown as ("chờ duyệt"), API included.
AWAITING_APPROVAL = "awaiting_approval"


def schedule_states(service: PanelCore, schedules: Iterable[Schedule]) -> dict[int, str]:
    """schedule id → ``active`` | ``awaiting_approval`` | ``cancelled`` (R6).

    ``awaiting_approval``: active, but some announcement of its programme is not playable (not approved, or its
    audio changed since) or a relayed stream source was removed — it never reaches a plan until approved, and
    enters the plans as soon as a leader approves.
    """
    scheds = list(schedules)
    with service.db.session() as s:
        catalog = Catalog()
        catalog.load(s, [a for x in scheds for a in announcement_ids(programme(x))])
        catalog.load_sources(s)
        out: dict[int, str] = {}
        for sched in scheds:
            if sched.status != "active":
                out[sched.id] = sched.status
            else:
                out[sched.id] = "active" if slot_items(sched, catalog, approved_only=True) else AWAITING_APPROVAL
        return out


def awaiting_soon(service: PanelCore, now: datetime | None = None,
                  within: timedelta = timedelta(hours=24)) -> list[dict[str, Any]]:
    """Airings in the next ``within`` of schedules still awaiting approval (the dashboard warns about them)."""
    now = now or datetime.now(UTC)
    tz = service.config.TIMEZONE
    with service.db.session() as s:
        scheds = list(s.scalars(select(Schedule).options(selectinload(Schedule.zones), selectinload(
            Schedule.announcement)).where(Schedule.status == "active", Schedule.archived_at.is_(None))))
    states = schedule_states(service, scheds)
    out = []
    for sched in scheds:
        if states.get(sched.id) != AWAITING_APPROVAL:
            continue
        first = airings(sched, tz, now, now + within)
        if first:
            out.append({"schedule": sched, "at": first[0],
                        "title": sched.title or (sched.announcement.title if sched.announcement else "")})
    return sorted(out, key=lambda r: r["at"])


def affected_nodes_for_announcement(s: Session, announcement_id: int) -> list[str]:
    """Nodes of the zones of every active schedule whose programme uses the announcement."""
    zone_ids: set[int] = set()
    for sched in s.scalars(select(Schedule).options(selectinload(Schedule.zones))
                           .where(Schedule.status == "active", Schedule.archived_at.is_(None))):
        if announcement_id in announcement_ids(programme(sched)):
            zone_ids.update(z.id for z in sched.zones)
    return nodes_of_zones(s, zone_ids)


# ----------------------------------------------------------------------------------------- dry run


def entry_json(service: PanelCore, e: Entry, zs: ZoneSlots, zone_id: int | None = None) -> dict[str, Any]:
    sched = zs.schedules.get(e.schedule_id)
    delivered = (e.schedule_id, e.slot_start) in delivered_by_command(zs)
    return {
        "start": format_ts(e.start),
        "end": format_ts(e.end),
        "start_local": service.local(e.start).isoformat(timespec="seconds"),
        "end_local": service.local(e.end).isoformat(timespec="seconds"),
        "duration_ms": e.duration_ms,
        "schedule_id": e.schedule_id,
        "schedule_title": (sched.title if sched is not None else None),
        "slot_start": format_ts(e.slot_start) if e.slot_start else None,
        "item": {"kind": e.kind, "ref": e.ref, "title": e.title, "index": e.item_index, "repeat": e.repeat_index},
        "priority": e.priority,
        "drill": e.drill,
        "state": e.state,
        "why": e.why,
        "audible": e.audible,
        "delivery": "command" if delivered else "plan",
        "plan_item_id": entry_item_id(e) if e.audible and e.kind != "silence" and not delivered else None,
        "sequence": sequence_turn(sched, zone_id) if zone_id is not None else None,
    }


def local_day(service: PanelCore, day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(service.config.TIMEZONE)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def dry_run(service: PanelCore, *, zone: str | int | None = None, node: str | None = None,
            day: date | None = None, days: int = 1, scope: tenancy.Scope | None = None) -> dict[str, Any]:
    """The timeline of a zone (or a node's zone) for local day(s): exactly what the plan builder sees."""
    if day is None:
        day = service.local(datetime.now(UTC)).date()  # type: ignore[union-attr]
    if not 1 <= days <= 14:
        raise ServiceError("invalid_days", "days: 1–14", "days")
    with service.db.session() as s:
        if node:
            n = s.scalar(select(Node).where(Node.node_id == node))
            if n is None or (scope is not None and not scope.sees(n.ward_id)):
                raise ServiceError("not_found", f"no node {node!r}", "node", 404)
            if n.zone_id is None:
                raise ServiceError("node_without_zone", f"node {node!r} has no zone", "node")
            z = s.get(Zone, n.zone_id)
        elif zone is not None and zone != "":
            z = service.zone_by_ref(s, zone, scope)
        else:
            raise ServiceError("zone_required", "give zone or node", "zone", 404)  # no timeline without one
        assert z is not None
        start, _ = local_day(service, day)
        _, end = local_day(service, day + timedelta(days=days - 1))
        entries, zs, quiet = zone_timeline(service, s, z, start, end)
        # R6: what would also sound here once approved — shown, never planned
        everything = load_slots(service, s, [z.id], start, end, approved_only=False, emergencies=False)
        planned = {sl.schedule_id for sl in zs.slots}
        waiting = sorted((sl for sl in everything.slots if sl.schedule_id not in planned
                          and start <= sl.start < end), key=lambda sl: sl.start)
        return {
            "zone": z.code,
            "zone_name": z.name,
            "node": node,
            "date": day.isoformat(),
            "days": days,
            "tz": service.config.TIMEZONE,
            "window": {"start": format_ts(start), "end": format_ts(end)},
            "quiet_hours": quiet_json(quiet),
            "entries": [entry_json(service, e, zs, z.id) for e in entries],
            "awaiting_approval": [
                {"schedule_id": sl.schedule_id, "start": format_ts(sl.start),
                 "start_local": service.local(sl.start).isoformat(timespec="seconds"),
                 "title": (everything.schedules[sl.schedule_id].title or ""), "state": AWAITING_APPROVAL}
                for sl in waiting[:200]],
        }


# ----------------------------------------------------------------------------------------- calendar


def calendar(service: PanelCore, first_day: date, days: int, zone: str | None = None,
             scope: tenancy.Scope | None = None) -> dict[date, list[dict[str, Any]]]:
    """Local day → the airings planned in it, per zone (``zone`` = one zone's code, else every zone in scope),
    from the same slot expansion the plans use (:func:`load_slots`). Each airing: ``start``/``end`` (local),
    ``zone``/``zone_name``, ``schedule_id``, ``title``, ``state`` (``active`` | ``awaiting_approval``: in no
    plan until a leader approves) and ``clashes`` (the other schedules whose planned airing overlaps it in the
    same zone, ``[{schedule_id, title}]``)."""
    start, _ = local_day(service, first_day)
    _, end = local_day(service, first_day + timedelta(days=days - 1))
    out: dict[date, list[dict[str, Any]]] = {first_day + timedelta(days=i): [] for i in range(days)}
    with service.db.session() as s:
        if zone:
            zones = [service.zone_by_ref(s, zone, scope)]
        else:
            q = select(Zone).order_by(Zone.name)
            zones = list(s.scalars(scope.restrict(q, Zone) if scope is not None else q))
        for z in zones:
            if z is None:
                continue
            zs = load_slots(service, s, [z.id], start, end, approved_only=False, emergencies=False)
            states = _states_in(s, zs)
            slots = sorted((sl for sl in zs.slots if start <= sl.start < end), key=lambda sl: sl.start)
            titles = {sid: (sc.title or (sc.announcement.title if sc.announcement else "")) or f"#{sid}"
                      for sid, sc in zs.schedules.items()}
            for sl in slots:
                stop = slot_end(sl)
                clashes = {o.schedule_id for o in zs.slots
                           if o.schedule_id != sl.schedule_id and o.start < stop and sl.start < slot_end(o)}
                day = service.local(sl.start).date()  # type: ignore[union-attr]
                out.setdefault(day, []).append({
                    "start": service.local(sl.start), "end": service.local(stop), "zone": z.code,
                    "zone_name": z.name, "schedule_id": sl.schedule_id, "title": titles.get(sl.schedule_id, ""),
                    "state": states.get(sl.schedule_id, "active"),
                    "clashes": [{"schedule_id": c, "title": titles.get(c, "")} for c in sorted(clashes)],
                    "sequence": sequence_turn(zs.schedules.get(sl.schedule_id), z.id),
                })
    for items in out.values():
        items.sort(key=lambda a: (a["start"], a["zone_name"]))
    return out


def _states_in(s: Session, zs: ZoneSlots) -> dict[int, str]:
    """schedule id → active | awaiting_approval, with the catalogue ``zs`` already holds (see schedule_states)."""
    catalog = zs.catalog
    catalog.load_sources(s)
    return {sid: "active" if slot_items(sc, catalog, approved_only=True) else AWAITING_APPROVAL
            for sid, sc in zs.schedules.items()}


class Schedules(PanelCore):
    """The schedules part of the panel's services: create, cancel, archive, restore, read."""

    def create_schedule(
        self,
        announcement_id: int,
        zones: Iterable[int | str],
        start_at: datetime,
        priority: str = "normal",
        user: User | None = None,
        now: datetime | None = None,
        conflict: str | None = None,
    ) -> Schedule:
        """A one-off play of one announcement (see broadcaster.airtime.create_schedule for the rest)."""
        spec = ScheduleSpec(zones=list(zones), announcement_id=announcement_id, start_at=start_at,
                            priority=priority, conflict=conflict)
        return create_schedule(self, spec, user, now)

    def cancel_schedule(self, schedule_id: int, user: User | None = None) -> Schedule:
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            SCHEDULE.move(sched, "status", "cancel")
            self.audit(s, user, "schedule.cancel", str(schedule_id))
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans_soon(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def archive_schedule(self, schedule_id: int, user: User | None = None) -> Schedule:
        """"Xóa" with undo: the schedule leaves every plan at once and every list; :meth:`restore_schedule`
        brings it back. The same permission as cancelling it (release policy)."""
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            if sched.archived_at is None:
                sched.archived_at = datetime.now(UTC)
                sched.archived_by_id = user.id if user else None
                self.audit(s, user, "schedule.archive", str(schedule_id), ward_id=sched.ward_id)
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans_soon(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def restore_schedule(self, schedule_id: int, user: User | None = None, now: datetime | None = None) -> Schedule:
        """Undo of :meth:`archive_schedule`; refused (409 ``schedule_passed``) when nothing of it can play any
        more (a one-off whose time has gone, a rule with no airing left)."""
        now = now or datetime.now(UTC)
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            if sched.archived_at is None:
                raise ServiceError("not_archived", "the schedule is not deleted", status=409)
            try:
                left = airings(sched, self.config.TIMEZONE, now,
                                          now + timedelta(days=CHECK_DAYS))
            except ServiceError:
                left = []
            if not left or sched.status != "active":
                raise ServiceError("schedule_passed", "its time has passed: schedule it again", status=409)
            sched.archived_at, sched.archived_by_id = None, None
            self.audit(s, user, "schedule.restore", str(schedule_id), ward_id=sched.ward_id)
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans_soon(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def _schedule_change_target(self, schedule_id: int, user: User | None) -> None:
        """404 for an unknown schedule (or another ward's), then the release policy: whoever may cancel it may
        also delete (archive) and restore it."""
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            if sched is None:
                raise ServiceError("not_found", "no such schedule", status=404)
            tenancy.check_user(user, sched.ward_id, "schedule")
            created_by = sched.created_by_id
        policy.schedule_cancel_check(self, user, created_by, schedule_id)

    @staticmethod
    def _nodes_of_schedule(s: Session, sched: Schedule) -> list[str]:
        """The nodes of the schedule's zones: their plans change with it."""
        zone_ids = [z.id for z in sched.zones]
        return list(s.scalars(select(Node.node_id).where(Node.zone_id.in_(zone_ids))))

    def get_schedule(self, schedule_id: int, scope: tenancy.Scope | None = None) -> Schedule | None:
        with self.db.session() as s:
            sched = s.scalar(
                select(Schedule)
                .options(selectinload(Schedule.zones), selectinload(Schedule.announcement))
                .where(Schedule.id == schedule_id)
            )
            return sched if sched is not None and (scope is None or scope.sees(sched.ward_id)) else None

    def list_schedules(self, scope: tenancy.Scope | None = None) -> list[Schedule]:
        with self.db.session() as s:
            q = (select(Schedule).options(selectinload(Schedule.zones), selectinload(Schedule.announcement))
                 .where(Schedule.archived_at.is_(None)).order_by(Schedule.start_at.desc()))
            return list(s.scalars(scope.restrict(q, Schedule) if scope is not None else q))
