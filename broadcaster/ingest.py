"""Ingest (node → panel): statuses, events and acks stored in batches; proof of play read back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer

from broadcaster import (
    fleet,  # presence, heartbeat, clock offset
    languages,
    notifications,
    tenancy,
)
from broadcaster.core import PanelCore
from broadcaster.leader import plan_lock
from broadcaster.models import (
    Alert,
    Announcement,
    AnnouncementVersion,
    CommandRecord,
    Node,
    NodeEvent,
    Schedule,
    Zone,
)
from broadcaster.states import COMMAND, ack_event
from devices import protocol as proto

log = logging.getLogger(__name__)
#: A node's plan requests are answered at most once per this many seconds (docs/protocol.md §6.7).
PLAN_REQUEST_INTERVAL_S = 5.0
#: How many (node, airing) "not heard" reports are remembered so that a resent event tells nobody twice.
NOT_HEARD_MEMORY = 20_000

def _insert_ignoring_duplicates(session: Session, model: type) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the dialect in use (SQLite by default, PostgreSQL in larger
    deployments): duplicates are skipped by the database's unique constraint, in the same statement."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model.__table__).on_conflict_do_nothing()  # Core: no ORM bookkeeping per row


#: node_events columns written by ``PanelService._ingest_events``, in the order of its row tuples.
_EVENT_COLUMNS = ("node_id", "epoch", "seq", "event", "at", "received_at", "plan_version", "item_id", "schedule_id",
                  "sha256", "scheduled_start", "actual_start", "offset_ms", "reason", "output_lufs", "output_sensor")


_SQLITE_INSERT_EVENT = (f"INSERT INTO {NodeEvent.__tablename__} ({', '.join(_EVENT_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))}) ON CONFLICT DO NOTHING")


def _aware_ts(value: str | None) -> datetime | None:
    """A protocol timestamp as the aware datetime ``UtcDateTime`` takes."""
    return proto.parse_ts(value) if value else None


def _schedule_ref(value: str | None) -> int | None:
    """An event's ``schedule_id`` as the panel's schedule id (an int column), None when it is not one of ours."""
    if value and value.isascii() and value.isdigit() and int(value) <= proto.MAX_INT32:
        return int(value)
    return None


def _sqlite_ts(value: str | None) -> str | None:
    """A protocol timestamp as the text SQLAlchemy's SQLite ``DateTime`` stores (and parses back)."""
    return proto.parse_ts(value).replace(tzinfo=None).isoformat(" ", "microseconds") if value else None


class Ingest(PanelCore):
    """The ingest part of the panel's services."""

    def ingest(self, topic: str, payload: bytes) -> None:
        """Handle one node → panel message. Malformed or mismatched messages are logged and dropped."""
        self.ingest_batch([(topic, payload)])

    def _decode(self, topic: str, payload: bytes) -> proto.Status | proto.Event | proto.Ack | None:
        parsed = self.topics.parse(topic)
        if parsed is None:
            log.warning("dropped message on unexpected topic %r", topic)
            return None
        node_id, leaf = parsed
        model = proto.TOPIC_MODELS.get(leaf)
        if leaf in ("plan", "cmd") or model is None or not payload:
            return None  # our own publications echoed back, or a cleared retained topic
        try:
            return proto.decode_from_node(model, payload, topic_node_id=node_id)
        except proto.ProtocolError as exc:
            self.ingest_dropped["invalid"] += 1
            log.warning("dropped %s from %s: %s", leaf, node_id, str(exc)[:500])
            return None
        except Exception:  # noqa: BLE001 — one message that cannot be decoded never costs the rest of the batch
            self.ingest_dropped["error"] += 1
            log.exception("dropped %s from %s: could not decode it", leaf, node_id)
            return None

    def ingest_batch(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Handle node → panel messages: events, acks and statuses each in one transaction per batch.

        The bridge hands over whatever has queued up (up to ~1,000 messages). One INSERT … ON CONFLICT DO
        NOTHING for the events, one query for the acks and one for the statuses' nodes, instead of a
        transaction per message, is what lets one panel keep up with a province's proof-of-play traffic
        (bench (d), and (a): every node answers a new plan with an event and a status). The three kinds touch
        different columns, so only the order within a kind matters (a node's statuses: online, then its
        will); it is kept. A batch that fails is stored again one message at a time, so one bad message
        costs only itself.
        """
        events: list[proto.Event] = []
        acks: list[proto.Ack] = []
        statuses: list[proto.Status] = []
        plan_requests: list[proto.PlanRequest] = []
        for topic, payload in messages:
            message = self._decode(topic, payload)
            if isinstance(message, proto.Event):
                events.append(message)
            elif isinstance(message, proto.Ack):
                acks.append(message)
            elif isinstance(message, proto.Status):
                statuses.append(message)
            elif isinstance(message, proto.PlanRequest):
                plan_requests.append(message)
        for store, run in ((self._ingest_events, events), (self._ingest_acks, acks),
                           (self._ingest_statuses, statuses), (self._answer_plan_requests, plan_requests)):
            if not run:
                continue
            try:
                store(run)
            except Exception:  # noqa: BLE001 — a bad message must never stop the bridge
                log.exception("failed to store %d messages; retrying one by one", len(run))
                for message in run:
                    try:
                        store([message])
                    except Exception:  # noqa: BLE001
                        self.ingest_dropped["unstorable"] += 1
                        log.exception("failed to store a message from %s", message.node_id)

    def _answer_plan_requests(self, requests: list[proto.PlanRequest]) -> None:
        """docs/protocol.md §6.7: publish the node's current signed plan again (retained, byte-identical to the
        stored one) unless it says it holds that version; build one for a node that has none yet. At most one
        answer per node per ``PLAN_REQUEST_INTERVAL_S``, so a firmware asking in a loop costs one lookup."""
        now = time.monotonic()
        have: dict[str, int | None] = {}
        for request in requests:
            answered = self.plan_requests_answered.get(request.node_id)
            if answered is None or now - answered >= PLAN_REQUEST_INTERVAL_S:
                have[request.node_id] = request.have_version
        if not have:
            return
        without_plan: list[str] = []
        # Under the plan locks (this process's, and every process's on PostgreSQL: broadcaster/leader.py): a plan
        # being published meanwhile must not be overtaken by the older one read here.
        with self._plan_lock, plan_lock(self.db.engine), self.db.session() as s:
            rows = s.execute(select(Node.node_id, Node.plan_version, Node.plan_payload)
                             .where(Node.node_id.in_(have))).all()
            for node_id, version, payload in rows:  # an unregistered node gets nothing
                if payload is None:
                    without_plan.append(node_id)
                    continue
                if have[node_id] != version:
                    self.publisher.publish(self.topics.plan(node_id), proto.encode(payload), qos=1, retain=True)
                self.plan_requests_answered[node_id] = now
        if without_plan:
            self.publish_plans(without_plan, force=True)
            for node_id in without_plan:  # only once it went out: a failure leaves the next request answered
                self.plan_requests_answered[node_id] = now

    def _ingest_statuses(self, statuses: list[proto.Status]) -> None:
        with self.db.session() as s:
            ids = {st.node_id for st in statuses}
            # Not the signed plan: a JSON column parsed per node for nothing (half the cost of a status).
            nodes = {n.node_id: n for n in s.scalars(select(Node).where(Node.node_id.in_(ids))
                                                      .options(defer(Node.plan_payload)))}
            for st in statuses:
                node = nodes.get(st.node_id)
                if node is None:
                    log.warning("dropped message from unregistered node %r", st.node_id)
                    continue
                self._apply_status(node, st)

    def _apply_status(self, node: Node, st: proto.Status) -> None:
        # A last-will from an older session arriving late must not mark a live node offline.
        if st.state != proto.NodeState.online and node.session is not None and st.session < node.session:
            return
        if fleet.status_is_replay(node, st):
            return  # the retained status redelivered when the panel reconnects: nothing new
        now = datetime.now(UTC)
        node.state = st.state.value
        node.session = st.session
        node.last_seen = now
        if st.firmware is not None:
            node.firmware = st.firmware[:100]  # the column's length: PostgreSQL refuses longer, SQLite does not
        if st.volume is not None:
            node.volume = st.volume
        if st.plan_version is not None:
            node.reported_plan_version = st.plan_version
        fleet.on_status(node, st, now, self.config)

    def _ingest_events(self, events: list[proto.Event]) -> None:
        """Store events in one transaction. A (node, epoch, seq) already stored — a QoS 1 redelivery or an
        outbox resend after reconnect — is skipped by the unique constraint, never stored twice."""
        now = datetime.now(UTC)
        with self.db.session() as s:
            ids = {ev.node_id for ev in events}
            epochs = dict(s.execute(select(Node.node_id, Node.event_epoch).where(Node.node_id.in_(ids))).all())
            sqlite = self.raw_sqlite_ingest and s.get_bind().dialect.name == "sqlite"
            # On SQLite the rows go to the driver as tuples of plain values: SQLAlchemy's per-column bind
            # processing (UtcDateTime → naive → "YYYY-MM-DD HH:MM:SS.ffffff") was a third of the cost of
            # storing an event (bench (d)). The text is exactly what the DateTime type stores and reads back.
            ts = _sqlite_ts if sqlite else _aware_ts
            rows: list[tuple[Any, ...]] = []
            last: dict[str, int] = {}
            received: Any = now.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else now
            for ev in events:
                if ev.node_id not in epochs:
                    log.warning("dropped message from unregistered node %r", ev.node_id)
                    continue
                rows.append((
                    ev.node_id,
                    epochs[ev.node_id] or 0,
                    ev.seq,
                    ev.event.value,
                    ts(ev.at),
                    received,
                    ev.plan_version,
                    ev.item_id[:128] if ev.item_id else ev.item_id,  # the column's length (PostgreSQL enforces it)
                    _schedule_ref(ev.schedule_id),
                    ev.sha256,
                    ts(ev.scheduled_start),
                    ts(ev.actual_start),
                    ev.offset_ms,
                    ev.reason,
                    ev.output_lufs,
                    ev.output_sensor,
                ))
                last[ev.node_id] = max(last.get(ev.node_id, 0), ev.seq)
            if not rows:
                return
            if sqlite:
                s.connection().exec_driver_sql(_SQLITE_INSERT_EVENT, rows)
            else:
                s.execute(_insert_ignoring_duplicates(s, NodeEvent),
                          [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows])
            nodes = Node.__table__
            s.execute(
                update(nodes)
                .where(nodes.c.node_id == bindparam("nid"))
                .values(
                    last_event_seq=case(
                        (func.coalesce(nodes.c.last_event_seq, 0) < bindparam("seq"), bindparam("seq")),
                        else_=nodes.c.last_event_seq,
                    ),
                    last_seen=now,
                )
                .execution_options(synchronize_session=False),
                [{"nid": n, "seq": q} for n, q in last.items()],
            )
        self._tell_not_heard([ev for ev in events if ev.node_id in epochs])

    def _tell_not_heard(self, events: list[proto.Event]) -> None:
        """Airings a loudspeaker played but did not sound (its measured output below ``HEARD_MIN_LUFS``): the
        ward's staff are told once per airing and ward, naming the loudspeakers (after the events are stored)."""
        threshold = self.config.HEARD_MIN_LUFS
        quiet = [ev for ev in events
                 if fleet.played_as_planned(ev.event.value, ev.reason)
                 and ev.output_lufs is not None and ev.output_lufs < threshold]
        if not quiet:
            return
        with self.db.session() as s:
            wards = dict(s.execute(select(Node.node_id, Node.ward_id)
                                   .where(Node.node_id.in_({ev.node_id for ev in quiet}))).all())
            # once per airing and ward: nodes of an airing already told of (an earlier batch) tell nobody again
            quiet = [ev for ev in quiet if (wards.get(ev.node_id), ev.item_id or "") not in self.not_heard_told]
            if not quiet:
                return
            schedule_ids = {ref for ev in quiet if (ref := _schedule_ref(ev.schedule_id)) is not None}
            titles = dict(s.execute(select(Schedule.id, Announcement.title).join(Schedule.announcement)
                                    .where(Schedule.id.in_(schedule_ids))).all()) if schedule_ids else {}
            alert_ids = {int(ev.alert_id) for ev in quiet if ev.alert_id and ev.alert_id.isdigit()}
            alerts = dict(s.execute(select(Alert.id, Alert.title).where(Alert.id.in_(alert_ids))).all()) \
                if alert_ids else {}
        groups: dict[tuple[int | None, str], list[proto.Event]] = {}
        for ev in quiet:
            groups.setdefault((wards.get(ev.node_id), ev.item_id or ""), []).append(ev)
            self.not_heard_told[(wards.get(ev.node_id), ev.item_id or "")] = None
        while len(self.not_heard_told) > NOT_HEARD_MEMORY:
            self.not_heard_told.popitem(last=False)
        for (ward_id, item_id), evs in groups.items():
            ev = evs[0]
            ref = _schedule_ref(ev.schedule_id)
            title = (titles.get(ref) if ref is not None else None) or (
                alerts.get(int(ev.alert_id)) if ev.alert_id and ev.alert_id.isdigit() else None) or item_id
            notifications.not_heard(self, ward_id, title, sorted({e.node_id for e in evs}),
                                    min(e.output_lufs or 0.0 for e in evs))

    def _ingest_acks(self, acks: list[proto.Ack]) -> None:
        """Mark commands acked (one transaction; an emergency to every node is one ack per node).

        The first final outcome (ok / error / rejected) of a command is kept: a later ack for the same command
        — the node answering a QoS 1 redelivery or a replay of it (docs/protocol.md §9) — never overwrites it.
        One that disagrees with the recorded outcome (a non-conforming node) is logged and ignored. A late ack
        still turns ``pending`` or ``timed_out`` (see ``fleet.expire_commands``) into its outcome."""
        with self.db.session() as s:
            records = {r.id: r for r in s.scalars(
                select(CommandRecord).where(CommandRecord.id.in_({a.command_id for a in acks})))}
            for ack in acks:
                record = records.get(ack.command_id)
                if record is None or record.node_id != ack.node_id:
                    log.warning("ack for unknown command %s from %s", ack.command_id, ack.node_id)
                    continue
                if not COMMAND.allows(record.status, ack_event(ack.status.value)):  # the first outcome stays
                    if (record.status, record.error) != (ack.status.value, ack.error):
                        log.warning("command %s: %s answered it again with %s (%s); kept the first outcome %s (%s)",
                                    record.id, ack.node_id, ack.status.value, ack.error, record.status,
                                    record.error)
                    continue
                COMMAND.move(record, "status", ack_event(ack.status.value))
                record.acked_at = proto.parse_ts(ack.at)
                record.error = ack.error[:500] if ack.error else ack.error  # the column's length (PostgreSQL)

    def plays(self, schedule_id: int | None = None, node_id: str | None = None, limit: int = 500,
              scope: tenancy.Scope | None = None) -> list[dict]:
        """Playback records: one row per (node, item) with start offset and outcome."""
        with self.db.session() as s:
            q = select(NodeEvent).where(
                NodeEvent.event.in_(("playback_started", "playback_finished", "playback_failed", "playback_stopped"))
            )
            if scope is not None:
                q = scope.restrict(q, NodeEvent)
            if schedule_id is not None:
                q = q.where(NodeEvent.schedule_id == schedule_id)
            if node_id is not None:
                q = q.where(NodeEvent.node_id == node_id)
            events = list(s.scalars(q.order_by(NodeEvent.at.desc()).limit(limit * 3)))
            titles = {
                sid: title
                for sid, title in s.execute(
                    select(Schedule.id, Announcement.title).join(Schedule.announcement).where(
                        Schedule.id.in_({e.schedule_id for e in events if e.schedule_id})
                    )
                )
            }
            zones = dict(s.execute(select(Node.node_id, Zone.name).join(Node.zone)).all())
            # Proof of play per language version: the file a node played says which version it was.
            shas = {e.sha256 for e in events if e.sha256}
            version_of = dict(s.execute(select(AnnouncementVersion.media_sha256, AnnouncementVersion.language)
                                        .where(AnnouncementVersion.media_sha256.in_(shas))).all()) if shas else {}
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for ev in sorted(events, key=lambda e: (e.node_id, e.seq)):
            key = (ev.node_id, ev.item_id or f"seq{ev.seq}")
            row = rows.setdefault(
                key,
                {
                    "node_id": ev.node_id,
                    "zone": zones.get(ev.node_id, ""),
                    "item_id": ev.item_id,
                    "schedule_id": ev.schedule_id,
                    "title": titles.get(ev.schedule_id, "") + (
                        f" · {languages.name(version_of[ev.sha256])}" if ev.sha256 in version_of else ""),
                    "language": version_of.get(ev.sha256 or "") or (languages.VIETNAMESE if ev.schedule_id else None),
                    "sha256": ev.sha256,
                    "scheduled_start": ev.scheduled_start,
                    "actual_start": None,
                    "offset_ms": None,
                    "result": "scheduled",
                    "reason": None,
                    "output_lufs": None,
                    "output_sensor": None,
                    "heard": None,
                },
            )
            if ev.event == "playback_started":
                row.update(actual_start=ev.actual_start, offset_ms=ev.offset_ms, result="playing")
            elif ev.event == "playback_finished":
                row["result"] = "played"
            elif ev.event == "playback_stopped":  # cut short: pre-empted, end_at, a stop command
                row.update(result="stopped", reason=ev.reason)
            else:
                row.update(result="failed", reason=ev.reason)
            if ev.event in ("playback_finished", "playback_stopped"):
                row.update(output_lufs=ev.output_lufs, output_sensor=ev.output_sensor,
                           # heard is judged on what played as planned: to its end, or to its end_at (a cut by
                           # a person or a higher priority measured a fraction of an airing: not judged)
                           heard=fleet.heard(ev.output_lufs, self.config.HEARD_MIN_LUFS)
                           if fleet.played_as_planned(ev.event, ev.reason) else None)
            row["scheduled_start"] = row["scheduled_start"] or ev.scheduled_start
        out = sorted(rows.values(), key=lambda r: (r["scheduled_start"] or datetime.min.replace(tzinfo=UTC)),
                     reverse=True)
        return out[:limit]
