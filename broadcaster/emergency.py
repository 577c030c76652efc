"""Emergency broadcasts ("phát ngay") and drills: create, (two-person) release, cancel, delivery tracking.

An emergency does not wait for a plan roll-over: on release the panel sends every target node a signed
``play_now`` command (QoS 1, expiring after :data:`COMMAND_TTL`) carrying the media, ``repeat``, ``gap_ms``,
an optional ``volume`` and the ``drill`` flag. Nodes stop whatever plays with a priority ≤ emergency
(``playback_stopped`` reason ``preempted``) and report ``playback_started/finished`` with item ids
``alert:<alert id>:<n>``. The per-node delivery state is *derived* on read from the command's ack and those
events (:func:`deliveries`), so ingest needs no hook here.

Rules (why they are as they are — see the field notes):

* Who may start, release and cancel is the release policy's (broadcaster/policy.py): a leader or admin
  starts it; with two-person release (on unless an admin switched it off) a *different* leader or admin
  releases it, and cancelling takes two people in the same way. The text of an emergency is not approved
  beforehand (storms do not wait) — the two people who release it are its approval; made from an
  announcement, that announcement's approved audio is used. Every step is in the audit log under
  ``emergency.live.*`` or ``emergency.drill.*``.
* **Drills** are labelled everywhere: the ``drill`` column, the audit action, the command args (nodes tag
  their events), the title sent to nodes (``[DIỄN TẬP] …``), and the audio itself, which starts with
  :data:`DRILL_PREFIX` and ends with :data:`DRILL_SUFFIX`. Lists keep drills apart from live alerts.
* **Two-person release** (``WardSetting.emergency_two_person``, on by default) applies to live emergencies and
  drills: the alert waits in ``pending_release`` until a *different* leader/admin releases it; a cancel waits
  (``cancel_requested_by_id``) until a different leader/admin confirms it.
* **Cancel** = ``stop {alert_id}`` to every target node, then a ``play_now`` of a pre-built cancellation
  message (:data:`CANCEL_TEXT`, rendered once and kept in ``canned_media``; rendered ahead when an alert is
  created so a cancel never waits for speech synthesis). The cancellation is an ``Alert`` of kind
  ``cancel`` whose ``cancels_id`` names the cancelled alert, tracked like any other.

:func:`emergency_slots` gives the timeline (``schedules.timeline``) the air time emergencies take, so that the
plan builder can let cut bulletins resume after them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session, selectinload

from audio import SpeechError, decode, default_engines, prepare_for_broadcast, render_speech
from audio.codec import AudioSegment
from audio.processing import AudioError
from broadcaster import notifications, policy, tenancy
from broadcaster.core import MemoryPublisher, PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Alert,
    AlertDelivery,
    Announcement,
    AuditEntry,
    CannedMedia,
    CommandRecord,
    Media,
    Node,
    NodeEvent,
    User,
    Ward,
    WardSetting,
    Zone,
    alert_wards,
    alert_zones,
)
from broadcaster.quiet_hours import ward_quiet
from devices import protocol as proto
from schedules.timeline import Slot, SlotItem

log = logging.getLogger(__name__)

#: How long a ``play_now`` / ``stop`` stays valid: a node that reconnects within it still plays the alert.
COMMAND_TTL = timedelta(minutes=10)
#: Longest wait for the nodes' acks before target plans are republished (see :func:`_republish_plans`).
PLAN_WAIT_S = 5.0
#: A node that has neither acked nor reported anything after this long is shown as ``timeout``.
ANSWER_TIMEOUT = timedelta(seconds=60)
MAX_REPEAT = 10
MAX_GAP_MS = 60_000
DRILL_PREFIX = "Đây là tin diễn tập."
DRILL_SUFFIX = "Hết tin diễn tập."
DRILL_TITLE_PREFIX = "[DIỄN TẬP] "
CANCEL_TEXT = (
    "Thông báo hủy bỏ tin khẩn cấp. Tin khẩn cấp vừa phát đã được hủy bỏ. "
    "Đề nghị bà con bỏ qua tin vừa rồi. Xin nhắc lại: tin khẩn cấp vừa phát đã được hủy bỏ."
)
CANCEL_TITLE = "Hủy bỏ tin khẩn cấp"
#: Item ids of emergency playback on the wire: ``alert:<id>:<n>`` (n from 1).
ITEM_PREFIX = "alert:"
#: Audible end states of a delivery (the rest may still change).
FINAL_STATES = frozenset({"finished", "failed", "stopped"})
STATES = ("pending", "acked", "started", "finished", "stopped", "failed", "timeout")


class AlertStatus(StrEnum):
    """Where an alert is (docs/architecture.md, "Emergencies": the table of transitions)."""

    PENDING_RELEASE = "pending_release"  # waits for the second person (two-person release)
    RELEASING = "releasing"  # one person may release it: going out now (a transitional state, never for long)
    RELEASED = "released"  # its play_now commands are out
    CANCELLED = "cancelled"  # released, then stopped everywhere and the cancellation played
    DISCARDED = "discarded"  # never went out (discarded while waiting, or its release failed)


ALERT_STATUSES = tuple(status.value for status in AlertStatus)
#: The one table of allowed changes of an alert's status (:func:`move_alert`).
TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.PENDING_RELEASE: frozenset({AlertStatus.RELEASED, AlertStatus.DISCARDED}),
    AlertStatus.RELEASING: frozenset({AlertStatus.RELEASED, AlertStatus.DISCARDED}),
    AlertStatus.RELEASED: frozenset({AlertStatus.CANCELLED}),
    AlertStatus.CANCELLED: frozenset(),
    AlertStatus.DISCARDED: frozenset(),
}


def move_alert(alert: Alert, to: AlertStatus) -> None:
    """The one place an alert's status changes; a change the table does not allow is a bug, never data."""
    current = AlertStatus(alert.status)
    if to not in TRANSITIONS[current]:
        raise AssertionError(f"alert {alert.id}: {current} → {to} is not a transition")
    alert.status = to.value

_locks: dict[int, threading.Lock] = {}


def _lock(service: PanelCore) -> threading.Lock:
    return _locks.setdefault(id(service), threading.Lock())


def _audit(s: Session, user: User | None, alert: Alert, verb: str, **detail: Any) -> None:
    """``emergency.live.<verb>`` or ``emergency.drill.<verb>``: drills are told apart in the log itself."""
    kind = "drill" if alert.drill else "live"
    s.add(AuditEntry(user_id=user.id if user else None, action=f"emergency.{kind}.{verb}",
                     target=f"alert:{alert.id}", detail={"drill": alert.drill, "kind": alert.kind, **detail},
                     ward_id=alert.ward_id))


def alert_item_id(alert_id: int, n: int) -> str:
    return f"{ITEM_PREFIX}{alert_id}:{n}"


# ------------------------------------------------------------------------------------------- audio


def _engines(service: PanelCore) -> list[Any]:
    cfg = service.config
    # An emergency must not hang on an unreachable cloud engine: cap the gTTS timeout.
    return default_engines(cfg.TTS_ENGINES, gtts_timeout=min(cfg.GTTS_TIMEOUT, 4.0), gtts_url=cfg.GTTS_URL)


def _store(service: PanelCore, data: bytes, duration_ms: int) -> str:
    info = service.media.put(data, "mp3")
    with service.db.session() as s:
        if s.get(Media, info.sha256) is None:
            s.add(Media(sha256=info.sha256, size=info.size, duration_ms=duration_ms, content_type="audio/mpeg"))
    return info.sha256


def render_text(service: PanelCore, text: str) -> str:
    """Speak ``text`` through the panel's speech path (normalization, engines, mastering); the media's sha256."""
    spoken = service.normalize_text(text)
    cfg = service.config
    try:
        rendered = render_speech(spoken, _engines(service), voice=cfg.TTS_VOICE, lead_in_ms=cfg.LEAD_IN_MS,
                                 bitrate=cfg.MP3_BITRATE)
    except (SpeechError, AudioError) as exc:
        raise ServiceError("emergency_render_failed", f"speech could not be produced: {exc}", "text", 500) from exc
    return _store(service, rendered.data, rendered.duration_ms)


def _drill_wrap(service: PanelCore, sha256: str) -> str:
    """A recorded/rendered announcement framed by the spoken drill notice (before and after)."""
    cfg = service.config
    try:
        intro = decode(service.media.path(canned_media(service, "drill-prefix", DRILL_PREFIX), "mp3").read_bytes())
        outro = decode(service.media.path(canned_media(service, "drill-suffix", DRILL_SUFFIX), "mp3").read_bytes())
        body = decode(service.media.path(sha256, "mp3").read_bytes())
        pause = AudioSegment.silent(duration=500, frame_rate=intro.frame_rate)
        data, duration_ms = prepare_for_broadcast(
            intro + pause + body + pause + outro, lead_in_ms=cfg.LEAD_IN_MS, bitrate=cfg.MP3_BITRATE
        )
    except (AudioError, OSError) as exc:
        raise ServiceError("emergency_render_failed", f"drill audio could not be produced: {exc}",
                           "announcement_id", 500) from exc
    return _store(service, data, duration_ms)


def canned_media(service: PanelCore, name: str, text: str) -> str:
    """Audio for a fixed text, rendered once and reused (keyed by name, text and voice settings)."""
    cfg = service.config
    key = hashlib.sha256(f"{name}\0{text}\0{cfg.TTS_ENGINES}\0{cfg.TTS_VOICE}".encode()).hexdigest()
    with service.db.session() as s:
        row = s.get(CannedMedia, key)
        if row is not None and service.media.exists(row.media_sha256, "mp3"):
            return row.media_sha256
    sha = render_text(service, text)
    with service.db.session() as s:
        row = s.get(CannedMedia, key)
        if row is None:
            s.add(CannedMedia(key=key, text=text, media_sha256=sha))
        else:
            row.media_sha256 = sha
    return sha


def cancel_media(service: PanelCore, drill: bool) -> str:
    if drill:
        return canned_media(service, "cancel-drill", f"{DRILL_PREFIX} {CANCEL_TEXT} {DRILL_SUFFIX}")
    return canned_media(service, "cancel", CANCEL_TEXT)


# ------------------------------------------------------------------------------------------ settings


def two_person_required(service: PanelCore, wards: Iterable[str] | None = None) -> bool:
    """Two-person release and cancel (the release policy decides; on by default)."""
    return policy.two_person_required(service, wards)


def set_two_person(service: PanelCore, required: bool, user: User | None, ward: str = "") -> None:
    """Switch two-person release on or off (an admin; audited; the emergency page shows the state)."""
    policy.require(service, user, policy.Action.EMERGENCY_SETTINGS, target=f"ward:{ward}",
                   two_person=bool(required))
    assert user is not None
    with service.db.session() as s:
        row = s.scalar(select(WardSetting).where(WardSetting.ward == ward))
        if row is None:
            # A new row also carries quiet hours: keep the ones in force (config or panel-wide row).
            quiet = ward_quiet(s, service.config, ward)
            row = WardSetting(ward=ward, quiet_start=quiet.start.strftime("%H:%M"),
                              quiet_end=quiet.end.strftime("%H:%M"))
            s.add(row)
        row.emergency_two_person = bool(required)
        s.add(AuditEntry(user_id=user.id, action="emergency.settings", target=f"ward:{ward}",
                         detail={"two_person": bool(required)}))


# ------------------------------------------------------------------------------------------ create


def _check_params(title: str, repeat: int, gap_ms: int, volume: int | None) -> str:
    title = (title or "").strip()
    if not title:
        raise ServiceError("title_required", "title is required", "title")
    if len(title) > 300:
        raise ServiceError("title_too_long", "title is longer than 300 characters", "title")
    if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise ServiceError("emergency_bad_repeat", f"repeat must be 1–{MAX_REPEAT}", "repeat")
    if not isinstance(gap_ms, int) or not 0 <= gap_ms <= MAX_GAP_MS:
        raise ServiceError("emergency_bad_gap", f"gap_ms must be 0–{MAX_GAP_MS}", "gap_ms")
    if volume is not None and (not isinstance(volume, int) or not 0 <= volume <= 100):
        raise ServiceError("emergency_bad_volume", "volume must be 0–100", "volume")
    return title


def _approved(ann: Announcement) -> bool:
    return policy.playable(ann)


def create_alert(
    service: PanelCore,
    *,
    title: str,
    text: str | None = None,
    announcement_id: int | None = None,
    zones: Iterable[int | str] = (),
    all_zones: bool = False,
    repeat: int = 1,
    gap_ms: int = 3000,
    volume: int | None = None,
    drill: bool = False,
    wards: Iterable[str] = (),
    user: User | None,
) -> Alert:
    """Create an emergency (or drill) and release it at once unless two-person release applies.

    Exactly one of ``text`` (rendered now; drills get the spoken drill notice) or ``announcement_id`` (an
    approved announcement with audio). ``zones`` are zone codes or ids of the caller's ward (another ward's are
    unknown); ``all_zones`` targets every node of the ward. ``wards`` (codes; province roles only) makes a
    province alert: every node of those wards, released by a second province-level person.
    """
    ward_refs = [w for w in wards if w not in (None, "")]
    if ward_refs:
        policy.require(service, user, policy.Action.EMERGENCY_PROVINCE, policy.Scope.PROVINCE,
                       target="alert:new", drill=drill, wards=ward_refs)
    else:
        policy.require(service, user, policy.Action.EMERGENCY_CREATE, target="alert:new", drill=drill)
    assert user is not None
    title = _check_params(title, repeat, gap_ms, volume)
    if volume is None:  # never the last maintenance volume: an officer's "volume 0" must not mute an alert
        volume = int(getattr(service.config, "ALERT_VOLUME", 100))
    text = (text or "").strip() or None
    if (text is None) == (announcement_id is None):
        raise ServiceError("emergency_source_required", "give either the text or an approved announcement", "text")
    if text is not None and len(text) > service.config.MAX_TEXT_CHARS:
        raise ServiceError("text_too_long", f"text has {len(text)} characters; the limit is "
                           f"{service.config.MAX_TEXT_CHARS}", "text")
    zone_refs = [z for z in zones if z not in (None, "")]
    if not all_zones and not zone_refs and not ward_refs:
        raise ServiceError("zones_required", "choose at least one zone, or all", "zones")
    scope = tenancy.user_scope(user)
    with service.db.session() as s:
        target_wards = [tenancy.resolve_ward(s, w, field="wards") for w in dict.fromkeys(ward_refs)]
        try:
            zone_objs = [] if all_zones or ward_refs else [service.zone_by_ref(s, z, scope) for z in zone_refs]  # noqa: SLF001
        except ServiceError as exc:
            exc.field = "zones"  # the form's field
            raise
        zone_ids = {z.id for z in zone_objs if z is not None}
        if ward_refs:
            alert_ward_id = None
            wards = {w.code for w in target_wards}
        else:
            zone_wards = {z.ward_id for z in zone_objs if z is not None}
            if len(zone_wards) > 1:
                raise ServiceError("zones_of_several_wards", "an alert's zones must be of one ward; a province "
                                   "alert names its wards", "zones")
            alert_ward_id = next(iter(zone_wards)) if zone_wards else tenancy.ward_for_new(s, user).id
            wards = set(tenancy.ward_codes(s, {alert_ward_id}).values())
        target_ward_ids = {w.id for w in target_wards}
        nodes = _target_nodes(s, all_zones, zone_ids, ward_id=alert_ward_id, ward_ids=target_ward_ids)
        if not nodes:
            raise ServiceError("emergency_no_nodes", "there is no loudspeaker in the chosen zones", "zones", 404)
        ann_sha = None
        if announcement_id is not None:
            ann = policy.require_playable(service, user, s.get(Announcement, announcement_id),
                                          action=policy.Action.EMERGENCY_CREATE)
            ann_sha = ann.media_sha256
    # Speech first (outside any transaction).
    if ann_sha is None:
        assert text is not None
        sha = render_text(service, f"{DRILL_PREFIX} {text} {DRILL_SUFFIX}" if drill else text)
    else:
        sha = _drill_wrap(service, ann_sha) if drill else ann_sha
    needs_second = two_person_required(service, wards)  # drills too (R4)
    with _lock(service), service.db.session() as s:
        alert = Alert(
            kind="alert", title=title, text=text, announcement_id=announcement_id, media_sha256=sha, drill=drill,
            all_zones=all_zones or bool(ward_refs),
            zones=[] if all_zones else list(s.scalars(select(Zone).where(Zone.id.in_(zone_ids)))),
            repeat=repeat, gap_ms=gap_ms, volume=volume,
            status=(AlertStatus.PENDING_RELEASE if needs_second else AlertStatus.RELEASING).value,
            created_by_id=user.id,
            ward_id=alert_ward_id, wards=list(s.scalars(select(Ward).where(Ward.id.in_(target_ward_ids)))),
        )
        s.add(alert)
        s.flush()
        _audit(s, user, alert, "create", title=title, zones="all" if all_zones else sorted(
            z.code for z in alert.zones), repeat=repeat, volume=volume, two_person=needs_second)
        alert_id = alert.id
    notifications.emergency_created(service, alert_id, user, waiting=needs_second)  # the second person is told
    if not needs_second:
        try:
            _release(service, alert_id, user)
        except BaseException:
            _release_failed(service, alert_id, user, "the release failed")  # never left "releasing"
            raise
    # The cancellation is pre-built now (once; after the release, so it never delays the alert) so that a
    # cancel never waits for speech synthesis.
    try:
        cancel_media(service, drill)
    except ServiceError:
        log.exception("cancellation message could not be pre-built")
    return get_alert(service, alert_id)  # type: ignore[return-value]


def _release_failed(service: PanelCore, alert_id: int, user: User | None, why: str) -> None:
    """An alert that could not go out is discarded (audited), so that nobody takes it for sent."""
    try:
        with _lock(service), service.db.session() as s:
            alert = s.get(Alert, alert_id)
            if alert is not None and alert.status == AlertStatus.RELEASING:
                move_alert(alert, AlertStatus.DISCARDED)
                alert.cancelled_at = datetime.now(UTC)
                _audit(s, user, alert, "release_failed", why=why)
    except Exception:  # noqa: BLE001 — the original error is the one to report
        log.exception("could not mark emergency %s as not sent", alert_id)


#: A release takes seconds; an alert "releasing" for longer was cut off by a process that died (several panel
#: processes: another may be releasing one right now, so only these are recovered while others run).
RELEASE_STALE = timedelta(seconds=60)


def recover_at_start(service: PanelCore, stale_after: timedelta | None = None) -> list[int]:
    """An alert still "releasing" was cut off by a crash between its creation and its release. It is not sent late
    (the situation has moved on); it is discarded, audited and logged, and the leader sees it as not sent.
    ``stale_after`` None: every such alert (one process, at its start: no release is running); else only those
    created longer ago (several processes on PostgreSQL: the leader, at every gain and periodically). Returns the
    ids."""
    with service.db.session() as s:
        q = select(Alert.id).where(Alert.status == AlertStatus.RELEASING.value)
        if stale_after is not None:
            q = q.where(Alert.created_at < datetime.now(UTC) - stale_after)
        stuck = list(s.scalars(q))
    for alert_id in stuck:
        log.warning("emergency %s was left being released by a stop of the panel: marked as not sent", alert_id)
        _release_failed(service, alert_id, None, "the panel stopped while releasing it; it was not sent")
    return stuck


def _target_nodes(s: Session, all_zones: bool, zone_ids: set[int], *, ward_id: int | None = None,
                  ward_ids: set[int] | None = None) -> list[str]:
    """The nodes an alert goes to: of its wards (a province alert), of its ward (all zones), or of its zones."""
    q = select(Node.node_id).order_by(Node.node_id)
    if ward_ids:
        q = q.where(Node.ward_id.in_(ward_ids))
    elif all_zones:
        if ward_id is not None:
            q = q.where(Node.ward_id == ward_id)
    else:
        if not zone_ids:
            return []
        q = q.where(Node.zone_id.in_(zone_ids))
    return list(s.scalars(q))


# ----------------------------------------------------------------------------------------- release


def release_alert(service: PanelCore, alert_id: int, user: User | None) -> Alert:
    """Second-person release: a leader or admin other than the one who created the alert."""
    with service.db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise ServiceError("not_found", "no such emergency", status=404)
        tenancy.check_user(user, alert.ward_id, "emergency")  # a province alert: province people only
        status, creator, province = alert.status, alert.created_by_id, alert.ward_id is None
        wards = set(tenancy.ward_codes(s, {alert.ward_id}).values())
    policy.require_second_person(service, user, creator, action=policy.Action.EMERGENCY_CREATE,
                                 target=f"alert:{alert_id}", province=province)
    if status != "pending_release":
        raise ServiceError("emergency_not_pending", f"the emergency is {status}, not waiting for release",
                           status=409)
    if creator is None and two_person_required(service, wards) and _first_person(service, alert_id, user):
        return get_alert(service, alert_id)  # type: ignore[return-value]
    _release(service, alert_id, user)
    notifications.emergency_settled(service, alert_id, user)  # the others need not act any more
    return get_alert(service, alert_id)  # type: ignore[return-value]


def _first_person(service: PanelCore, alert_id: int, user: User | None) -> bool:
    """An alert no person created (a trusted CAP source's draft, :func:`create_from_source`) still takes two people:
    the first leader/admin who releases it becomes its first person (True: recorded, nothing sent; the others are
    told); False when another person took that place meanwhile and ``user`` is the second."""
    assert user is not None
    with _lock(service), service.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        if alert.status != AlertStatus.PENDING_RELEASE:
            raise ServiceError("emergency_not_pending", f"the emergency is {alert.status}, not waiting for release",
                               status=409)
        if alert.created_by_id is not None:
            if alert.created_by_id == user.id:
                raise policy.refuse(service, user, "emergency_same_person", "a second, different leader or admin "
                                    "must confirm", action=policy.Action.EMERGENCY_CREATE.value,
                                    target=f"alert:{alert_id}", status=409)
            return False
        alert.created_by_id = user.id
        _audit(s, user, alert, "first_confirmed")
    notifications.emergency_created(service, alert_id, user, waiting=True)  # the second person is told
    return True


def create_from_source(
    service: PanelCore,
    *,
    title: str,
    text: str,
    zone_ids: Iterable[int],
    ward_id: int,
    drill: bool,
    release: bool,
    source: str,
    repeat: int = 1,
    **detail: Any,
) -> Alert:
    """An alert from a trusted machine source (broadcaster/cap.py: a CAP 1.2 message), which no person created.

    ``release`` (a source the province marked automatic): released at once to the nodes of ``zone_ids``. Otherwise
    it waits in ``pending_release`` for two people (:func:`release_alert`: the first leader/admin who releases it
    is recorded as the first person, a different one releases it; one person while two-person release is off).
    Audited as ``emergency.live.create`` / ``emergency.drill.create`` with the source.
    """
    title = _check_params(title, repeat, 3000, None)
    text = (text or "").strip()
    if not text:
        raise ServiceError("emergency_source_required", "the alert has nothing to say", "text")
    if len(text) > service.config.MAX_TEXT_CHARS:
        raise ServiceError("text_too_long", f"text has {len(text)} characters; the limit is "
                           f"{service.config.MAX_TEXT_CHARS}", "text")
    zone_ids = set(zone_ids)
    volume = int(getattr(service.config, "ALERT_VOLUME", 100))
    with service.db.session() as s:
        if not _target_nodes(s, False, zone_ids):
            raise ServiceError("emergency_no_nodes", "there is no loudspeaker in the chosen zones", "zones", 404)
    sha = render_text(service, f"{DRILL_PREFIX} {text} {DRILL_SUFFIX}" if drill else text)
    with _lock(service), service.db.session() as s:
        alert = Alert(
            kind="alert", title=title, text=text, media_sha256=sha, drill=drill, all_zones=False,
            zones=list(s.scalars(select(Zone).where(Zone.id.in_(zone_ids)))), repeat=repeat, gap_ms=3000,
            volume=volume,
            status=(AlertStatus.RELEASING if release else AlertStatus.PENDING_RELEASE).value,
            created_by_id=None, ward_id=ward_id,
        )
        s.add(alert)
        s.flush()
        _audit(s, None, alert, "create", title=title, zones=sorted(z.code for z in alert.zones), source=source,
               automatic=release, **detail)
        alert_id = alert.id
    notifications.emergency_created(service, alert_id, None, waiting=not release)
    if release:
        try:
            _release(service, alert_id, None)
        except BaseException:
            _release_failed(service, alert_id, None, "the release failed")
            raise
    try:
        cancel_media(service, drill)
    except ServiceError:
        log.exception("cancellation message could not be pre-built")
    return get_alert(service, alert_id)  # type: ignore[return-value]


def discard_from_source(service: PanelCore, alert_id: int, source: str, **detail: Any) -> Alert:
    """A trusted source withdraws (CAP ``Cancel``) an alert of its own that never went out: discarded, audited.
    A released one is refused (409): it sounds, and only people cancel it (:func:`cancel_alert`)."""
    with _lock(service), service.db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise ServiceError("not_found", "no such emergency", status=404)
        if alert.status != AlertStatus.PENDING_RELEASE:
            raise ServiceError("emergency_not_pending", f"the emergency is {alert.status}: people cancel it on the "
                               "panel (two people)", status=409)
        alert.cancelled_at = datetime.now(UTC)
        move_alert(alert, AlertStatus.DISCARDED)
        _audit(s, None, alert, "discard", source=source, **detail)
    notifications.emergency_settled(service, alert_id, None)
    return get_alert(service, alert_id)  # type: ignore[return-value]


def _media_args(service: PanelCore, media: Media) -> dict[str, Any]:
    return {"url": service.media_url(media.sha256), "sha256": media.sha256, "bytes": media.size,
            "duration_ms": media.duration_ms, "content_type": media.content_type}


def play_now_args(service: PanelCore, alert: Alert) -> dict[str, Any]:
    args: dict[str, Any] = {
        "alert_id": str(alert.id),
        "media": _media_args(service, alert.media),
        "priority": "emergency",
        "repeat": alert.repeat,
        "gap_ms": alert.gap_ms,
        "drill": alert.drill,
        "title": ((DRILL_TITLE_PREFIX if alert.drill else "") + alert.title)[:300],
    }
    if alert.volume is not None:
        args["volume"] = alert.volume
    return args


@dataclass
class _Outgoing:
    node_id: str
    command_id: str
    name: str
    args: dict[str, Any]


def _command(s: Session, node_id: str, name: str, args: dict[str, Any], user: User | None,
             now: datetime) -> _Outgoing:
    """A command to send; its record is written by :func:`_store_commands` (one statement for all nodes)."""
    return _Outgoing(node_id, uuid.uuid4().hex, name, args)


def _store_commands(s: Session, outgoing: list[_Outgoing], user: User | None, now: datetime) -> None:
    """Insert the command records in bulk: an emergency to a province is thousands of rows, and the time it
    takes to write them is time before the first loudspeaker hears the alert."""
    if outgoing:
        s.execute(insert(CommandRecord), [
            {"id": o.command_id, "node_id": o.node_id, "name": o.name, "args": o.args, "issued_at": now,
             "expires_at": now + COMMAND_TTL, "status": "pending", "issued_by_id": user.id if user else None}
            for o in outgoing])


def _store_deliveries(s: Session, alert_id: int, outgoing: list[_Outgoing], now: datetime) -> None:
    if outgoing:
        s.execute(insert(AlertDelivery), [
            {"alert_id": alert_id, "node_id": o.node_id, "command_id": o.command_id, "sent_at": now}
            for o in outgoing])


def _publish(service: PanelCore, outgoing: list[_Outgoing], now: datetime) -> None:
    """Sign and publish (after the commit, so an instant ack finds its command record)."""
    with service.publishing():
        _publish_all(service, outgoing, now)


def _publish_all(service: PanelCore, outgoing: list[_Outgoing], now: datetime) -> None:
    for out in outgoing:
        payload = {
            "type": "command", "protocol": 1, "node_id": out.node_id, "id": out.command_id, "name": out.name,
            "args": out.args, "issued_at": proto.format_ts(now), "expires_at": proto.format_ts(now + COMMAND_TTL),
        }
        signed = proto.sign_payload(payload, service.signing_key)
        service.publisher.publish(service.topics.cmd(out.node_id), proto.encode(signed), qos=1, retain=False)


def _release(service: PanelCore, alert_id: int, user: User | None) -> None:
    now = datetime.now(UTC)
    with _lock(service):
        with service.db.session() as s:
            alert = s.scalar(select(Alert).options(selectinload(Alert.media), selectinload(Alert.zones))
                             .where(Alert.id == alert_id))
            assert alert is not None
            if alert.status not in ("pending_release", "releasing") or alert.released_at is not None:
                raise ServiceError("emergency_not_pending", "the emergency was already handled", status=409)
            nodes = _target_nodes(s, alert.all_zones, {z.id for z in alert.zones}, ward_id=alert.ward_id,
                                  ward_ids={w.id for w in alert.wards})
            if not nodes:
                raise ServiceError("emergency_no_nodes", "there is no loudspeaker in the chosen zones", "zones", 404)
            args = play_now_args(service, alert)
            outgoing = [_command(s, n, "play_now", args, user, now) for n in nodes]
            _store_commands(s, outgoing, user, now)
            _store_deliveries(s, alert.id, outgoing, now)
            move_alert(alert, AlertStatus.RELEASED)
            alert.released_at = now
            alert.released_by_id = user.id if user else None
            _audit(s, user, alert, "release", nodes=len(nodes))
        _publish(service, outgoing, now)
    log.warning("%s %s released to %d node(s)", "drill" if args["drill"] else "EMERGENCY", alert_id, len(nodes))
    _republish_plans(service, nodes, [o.command_id for o in outgoing])


def _republish_plans(service: PanelCore, nodes: list[str], command_ids: list[str] | None = None) -> None:
    """Plans of the target nodes change: the plan builder ends cut bulletins at the alert and resumes them after.

    Published only once the nodes have answered the commands (or after :data:`PLAN_WAIT_S`): a plan that
    ends the bulletin arriving before ``play_now`` has fetched its audio would stop the bulletin (reason
    ``end_at``) into silence instead of the alert pre-empting it. Without a broker (unit tests, CLI) at once.
    """

    def publish() -> None:
        try:
            service.publish_plans(nodes)
        except Exception:  # noqa: BLE001 — the alert is out; a plan problem must not turn it into an error
            log.exception("republishing plans after an emergency failed")

    def wait_then_publish() -> None:
        deadline = time.monotonic() + PLAN_WAIT_S
        try:
            while command_ids and time.monotonic() < deadline:
                with service.db.session() as s:
                    pending = s.scalar(select(func.count()).select_from(CommandRecord).where(
                        CommandRecord.id.in_(command_ids), CommandRecord.status == "pending"))
                if not pending:
                    break
                time.sleep(0.1)
        except Exception:  # noqa: BLE001
            log.exception("waiting for emergency acks failed")
        publish()

    if isinstance(service.publisher, MemoryPublisher) or not command_ids:
        publish()
    else:
        threading.Thread(target=wait_then_publish, name="emergency-plans", daemon=True).start()


# ------------------------------------------------------------------------------------------ cancel


def cancel_alert(service: PanelCore, alert_id: int, user: User | None) -> Alert:
    """Stop a released alert everywhere and announce the cancellation; discard one still waiting for release.

    With two-person release on, the first leader/admin's cancel is a request (``cancel_requested_by_id``;
    nothing is sent) and a second, different leader/admin's cancel sends it. Discarding an alert that never
    went out takes one leader or admin. Returns the alert (``cancel_alert_id`` names the cancellation broadcast).
    """
    now = datetime.now(UTC)
    with service.db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise ServiceError("not_found", "no such emergency", status=404)
        tenancy.check_user(user, alert.ward_id, "emergency")  # a province alert: province people only
        if alert.kind != "alert":
            raise ServiceError("emergency_cannot_cancel", "a cancellation cannot be cancelled", status=409)
        drill, status, requested_by, ward_id = alert.drill, alert.status, alert.cancel_requested_by_id, alert.ward_id
        wards = ({w.code for w in alert.wards} if alert.wards
                 else set(tenancy.ward_codes(s, {alert.ward_id}).values()) if alert.ward_id is not None
                 else {z.ward for z in alert.zones})
    target = f"alert:{alert_id}"
    if status == "pending_release":
        policy.require(service, user, policy.Action.EMERGENCY_DISCARD, target=target)
    else:
        policy.require(service, user, policy.Action.EMERGENCY_CANCEL, target=target)
        if status in ("cancelled", "discarded"):
            raise ServiceError("emergency_already_cancelled", "the emergency is already cancelled", status=409)
        if two_person_required(service, wards):
            if requested_by is None:
                return _request_cancel(service, alert_id, user, now)
            policy.require_second_person(service, user, requested_by, action=policy.Action.EMERGENCY_CANCEL,
                                         target=target, province=ward_id is None)
    assert user is not None
    sha = cancel_media(service, drill)  # normally pre-built at creation: no speech synthesis here
    nodes: list[str] = []
    with _lock(service):
        with service.db.session() as s:
            alert = s.scalar(select(Alert).options(selectinload(Alert.zones)).where(Alert.id == alert_id))
            assert alert is not None
            if alert.status in ("cancelled", "discarded"):
                raise ServiceError("emergency_already_cancelled", "the emergency is already cancelled", status=409)
            if alert.status != status or alert.cancel_requested_by_id != requested_by:
                # Released (or asked to cancel) by someone else since the rules were chosen: a discard must not
                # turn into a one-person cancel of a sounding alert. Nothing is done; look again.
                raise ServiceError("emergency_changed", "the emergency changed meanwhile; look at it again",
                                   status=409)
            alert.cancelled_at = now
            alert.cancelled_by_id = user.id
            if alert.status == "pending_release":
                move_alert(alert, AlertStatus.DISCARDED)  # nothing went out: nothing to stop or announce
                _audit(s, user, alert, "discard")
                outgoing: list[_Outgoing] = []
            else:
                nodes = list(s.scalars(select(AlertDelivery.node_id).where(AlertDelivery.alert_id == alert.id)
                                       .order_by(AlertDelivery.node_id)))
                cancel = Alert(
                    kind="cancel", title=(CANCEL_TITLE + ": " + alert.title)[:300], text=None, media_sha256=sha,
                    drill=alert.drill, all_zones=alert.all_zones, zones=list(alert.zones), repeat=1, gap_ms=0,
                    volume=alert.volume, status="released", cancels_id=alert.id, created_by_id=user.id,
                    released_by_id=user.id, released_at=now, ward_id=alert.ward_id, wards=list(alert.wards),
                )
                s.add(cancel)
                s.flush()
                move_alert(alert, AlertStatus.CANCELLED)
                alert.cancel_alert_id = cancel.id
                stops = {n: _command(s, n, "stop", {"alert_id": str(alert.id)}, user, now) for n in nodes}
                args = play_now_args(service, cancel)
                plays = [_command(s, n, "play_now", args, user, now) for n in nodes]
                _store_commands(s, [*stops.values(), *plays], user, now)
                for d in s.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert.id)):
                    d.stop_command_id = stops[d.node_id].command_id
                _store_deliveries(s, cancel.id, plays, now)
                _audit(s, user, alert, "cancel", cancel_alert=cancel.id, nodes=len(nodes))
                _audit(s, user, cancel, "release", cancels=alert.id, nodes=len(nodes))
                # stop first, then the cancellation: one topic per node keeps QoS 1 order
                play_of = {p.node_id: p for p in plays}
                outgoing = [x for n in nodes for x in (stops[n], play_of[n])]
        _publish(service, outgoing, now)
    if nodes:
        _republish_plans(service, nodes, [o.command_id for o in outgoing if o.name == "play_now"])
    notifications.emergency_settled(service, alert_id, user)  # a discard: the others need not act any more
    return get_alert(service, alert_id)  # type: ignore[return-value]


def _request_cancel(service: PanelCore, alert_id: int, user: User | None, now: datetime) -> Alert:
    """The first of two people asks to cancel: recorded and audited; the alert keeps sounding until confirmed."""
    with _lock(service), service.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and user is not None
        if alert.status != "released":
            raise ServiceError("emergency_changed", "the emergency changed meanwhile; look at it again", status=409)
        if alert.cancel_requested_by_id is None:
            alert.cancel_requested_by_id, alert.cancel_requested_at = user.id, now
            _audit(s, user, alert, "cancel_requested")
            asked = True
        else:
            asked = False
    if asked:
        notifications.emergency_cancel_requested(service, alert_id, user)  # the second person is told
    return get_alert(service, alert_id)  # type: ignore[return-value]


def cancel_pending(alert: Alert) -> bool:
    """A cancel was asked for and waits for the second person."""
    return alert.status == "released" and alert.kind == "alert" and alert.cancel_requested_by_id is not None


# ------------------------------------------------------------------------------------------- reading


def _visible(q: Any, scope: tenancy.Scope | None) -> Any:
    """A ward sees its own alerts and the province alerts that target it (tenancy: one rule, here)."""
    if scope is None or scope.ward_ids is None:
        return q
    targeted = select(alert_wards.c.alert_id).where(alert_wards.c.ward_id.in_(scope.ward_ids))
    return q.where(or_(Alert.ward_id.in_(scope.ward_ids), Alert.id.in_(targeted)))


def get_alert(service: PanelCore, alert_id: int, scope: tenancy.Scope | None = None) -> Alert | None:
    with service.db.session() as s:
        q = (select(Alert).options(selectinload(Alert.zones), selectinload(Alert.media), selectinload(Alert.wards))
             .where(Alert.id == alert_id))
        return s.scalar(_visible(q, scope))


def list_alerts(service: PanelCore, *, drill: bool = False, limit: int = 100,
                scope: tenancy.Scope | None = None) -> list[Alert]:
    """Live alerts or drills (never mixed), newest first, cancellations included."""
    with service.db.session() as s:
        q = (select(Alert).options(selectinload(Alert.zones), selectinload(Alert.media), selectinload(Alert.wards))
             .where(Alert.drill == drill).order_by(Alert.id.desc()).limit(limit))
        return list(s.scalars(_visible(q, scope)))


def user_names(service: PanelCore, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    with service.db.session() as s:
        return {u.id: u.display_name or u.username for u in s.scalars(select(User).where(User.id.in_(wanted)))}


def deliveries(service: PanelCore, alert: Alert, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per target node: state (pending/acked/started/finished/stopped/failed/timeout), repeats, times, reason.

    Derived from the ``play_now`` ack and the node's ``alert:<id>:<n>`` playback events.
    """
    now = now or datetime.now(UTC)
    with service.db.session() as s:
        rows = list(s.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert.id)
                              .order_by(AlertDelivery.node_id)))
        node_ids = [d.node_id for d in rows]
        commands = {c.id: c for c in s.scalars(select(CommandRecord).where(
            CommandRecord.id.in_([d.command_id for d in rows if d.command_id])))}
        events = list(s.scalars(
            select(NodeEvent).where(NodeEvent.node_id.in_(node_ids),
                                    NodeEvent.item_id.like(f"{ITEM_PREFIX}{alert.id}:%"))
            .order_by(NodeEvent.node_id, NodeEvent.epoch, NodeEvent.seq)
        ))
        nodes = {n.node_id: n for n in s.scalars(select(Node).options(selectinload(Node.zone))
                                                 .where(Node.node_id.in_(node_ids)))}
    by_node: dict[str, list[NodeEvent]] = {}
    for ev in events:
        by_node.setdefault(ev.node_id, []).append(ev)
    one = alert.media.duration_ms if alert.media else 0
    total = timedelta(milliseconds=one * alert.repeat + alert.gap_ms * (alert.repeat - 1))
    out = []
    for d in rows:
        cmd = commands.get(d.command_id or "")
        evs = by_node.get(d.node_id, [])
        started = sorted({_repeat_no(e.item_id) for e in evs if e.event == "playback_started"})
        finished = sorted({_repeat_no(e.item_id) for e in evs if e.event == "playback_finished"})
        failed = [e for e in evs if e.event == "playback_failed"]
        stopped = [e for e in evs if e.event == "playback_stopped"]
        first = next((e for e in evs if e.event == "playback_started"), None)
        last_end = next((e for e in reversed(evs) if e.event in ("playback_finished", "playback_stopped",
                                                                 "playback_failed")), None)
        reason = None
        if cmd is not None and cmd.status in ("error", "rejected"):
            state, reason = "failed", cmd.error or cmd.status
        elif failed:
            state, reason = "failed", failed[-1].reason
        elif stopped:
            state, reason = "stopped", stopped[-1].reason
        elif finished and len(finished) >= alert.repeat:
            state = "finished"
        elif first is not None:
            state = "started"
            if now > first.at + total + ANSWER_TIMEOUT:
                state, reason = "timeout", "no playback_finished"
        elif cmd is not None and cmd.status == "ok":
            state = "acked"
        elif d.sent_at is not None and now > d.sent_at + ANSWER_TIMEOUT:
            state, reason = "timeout", "no answer"
        else:
            state = "pending"
        node = nodes.get(d.node_id)
        out.append({
            "node_id": d.node_id,
            "zone": node.zone.code if node is not None and node.zone else None,
            "node_state": node.state if node is not None else "unknown",
            "state": state,
            "reason": reason,
            "command_id": d.command_id,
            "command_status": cmd.status if cmd else None,
            "sent_at": d.sent_at,
            "acked_at": cmd.acked_at if cmd else None,
            "started_at": (first.actual_start or first.at) if first else None,
            "ended_at": last_end.at if last_end else None,
            "repeats_started": len(started),
            "repeats_finished": len(finished),
            "latency_ms": (int(((first.actual_start or first.at) - d.sent_at).total_seconds() * 1000)
                           if first and d.sent_at else None),
        })
    return out


def _repeat_no(item_id: str | None) -> int:
    try:
        return int((item_id or "").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    counts["total"] = len(rows)
    return counts


# ------------------------------------------------------------------------------------- timeline slots

#: Slots of emergencies carry ``schedule_id = -alert_id`` (schedule ids are positive).
ALERT_SLOT_SIGN = -1


def is_alert_slot(slot: Slot) -> bool:
    """True for a slot made by :func:`emergency_slots` — delivered by command, never a plan item."""
    return slot.schedule_id < 0 or getattr(slot, "delivery", "plan") == "command"


def emergency_slots(session: Session, start: datetime, end: datetime,
                    zone_ids: set[int] | None) -> list[Slot]:
    """The air time released emergencies (and their cancellations) take in ``[start, end)``, as timeline slots.

    For the plan builder: feed these to :func:`schedules.timeline.build_timeline` together with the
    schedules' slots so that bulletins cut by an emergency end there and resume after it (rule 4). These
    slots are **delivered by command** (``play_now``) and **must not become plan items**: they carry
    ``delivery="command"`` and a negative ``schedule_id`` (``-alert.id``; :func:`is_alert_slot`), and the item
    ``ref`` is ``alert:<id>`` — skip every slot and timeline entry with either mark. They are
    ``priority="emergency"``, ``drill`` as the alert, ``on_preempt="drop"``, ``created_seq`` = release time in
    ms, and start at the release time. A cancelled alert's slot ends at its cancellation (one item of that
    length); the cancellation is its own slot.

    ``zone_ids``: the zones whose nodes are being planned (``None`` = all); alerts to all zones always match.
    One indexed query; no audio or network.
    """
    q = (
        select(Alert).options(selectinload(Alert.media), selectinload(Alert.zones))
        .where(Alert.status.in_(("released", "cancelled")), Alert.released_at.is_not(None),
               Alert.released_at < end,
               # bounded: 10 repeats of a long recording plus gaps fit in 12 h
               Alert.released_at >= start - timedelta(hours=12))
    )
    if zone_ids is not None:
        in_zones = select(alert_zones.c.alert_id).where(alert_zones.c.zone_id.in_(zone_ids))
        their_wards = select(Zone.ward_id).where(Zone.id.in_(zone_ids))
        in_wards = select(alert_wards.c.alert_id).where(alert_wards.c.ward_id.in_(their_wards))
        whole_ward = Alert.all_zones.is_(True) & Alert.ward_id.in_(their_wards)
        q = q.where(or_(whole_ward, Alert.id.in_(in_zones), Alert.id.in_(in_wards)))
    out: list[Slot] = []
    for alert in session.scalars(q):
        if alert.media is None or alert.released_at is None:
            continue
        one = alert.media.duration_ms
        total_ms = one * alert.repeat + alert.gap_ms * (alert.repeat - 1)
        ref, title = f"{ITEM_PREFIX}{alert.id}", alert.title
        items: tuple[SlotItem, ...] = (SlotItem("announcement", one, ref, title),)
        repeat, gap = alert.repeat, alert.gap_ms
        if alert.cancelled_at is not None:
            cut_ms = max(0, int((alert.cancelled_at - alert.released_at).total_seconds() * 1000))
            if cut_ms < total_ms:
                items, repeat, gap, total_ms = (SlotItem("announcement", cut_ms, ref, title),), 1, 0, cut_ms
        if alert.released_at + timedelta(milliseconds=total_ms) <= start:
            continue
        out.append(Slot(
            schedule_id=ALERT_SLOT_SIGN * alert.id, start=alert.released_at, items=items, priority="emergency",
            on_preempt="drop", on_clash="override", repeat=repeat, gap_ms=gap,
            created_seq=int(alert.released_at.timestamp() * 1000), drill=alert.drill, delivery="command",
        ))
    return out
