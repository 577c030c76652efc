"""Prototype of a batched event ingest for the panel — what benchmark (d) needs to reach 5 000 msg/s.

Today ``MqttBridge._work`` hands each message to ``PanelService.ingest``, which opens one transaction per event
(a SELECT for the duplicate check, an INSERT, an UPDATE of the node, a COMMIT): a few hundred events per second
on SQLite. This module does the same work for a *batch*: decode and validate every payload exactly as
``ingest`` does (``decode_from_node``, node id against the topic), look up the nodes' epochs once, insert all
rows with ``INSERT … ON CONFLICT DO NOTHING`` on the ``(node_id, epoch, seq)`` unique constraint (the
de-duplication), and update each node's ``last_event_seq`` / ``last_seen`` once — one transaction per batch.

The benchmark measures it against the panel's own database (the same models and file), next to the current
path, so the gap is measured, not guessed. It is not wired into the panel: see docs/performance.md, "Fleet".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from broadcaster.models import Node, NodeEvent
from devices import protocol as proto

log = logging.getLogger(__name__)


def ingest_events(service: Any, messages: list[tuple[str, bytes]], topics: proto.Topics | None = None) -> int:
    """Store the valid events among ``messages`` (topic, payload) in one transaction; returns rows offered."""
    topics = topics or service.topics
    events: list[proto.Event] = []
    for topic, payload in messages:
        parsed = topics.parse(topic)
        if parsed is None or parsed[1] != "events" or not payload:
            continue
        try:
            events.append(proto.decode_from_node(proto.Event, payload, topic_node_id=parsed[0]))
        except proto.ProtocolError as exc:
            log.warning("dropped event from %s: %s", parsed[0], exc)
    if not events:
        return 0

    def ts(value: str | None) -> datetime | None:
        return proto.parse_ts(value) if value else None

    now = datetime.now(UTC)
    with service.db.session() as s:
        ids = {e.node_id for e in events}
        epochs = dict(s.execute(select(Node.node_id, Node.event_epoch).where(Node.node_id.in_(ids))).all())
        rows = []
        last: dict[str, int] = {}
        for ev in events:
            if ev.node_id not in epochs:
                continue  # unregistered node: dropped, as ingest() does
            rows.append({
                "node_id": ev.node_id, "epoch": epochs[ev.node_id] or 0, "seq": ev.seq, "event": ev.event.value,
                "at": proto.parse_ts(ev.at), "received_at": now, "plan_version": ev.plan_version,
                "item_id": ev.item_id,
                "schedule_id": int(ev.schedule_id) if ev.schedule_id and ev.schedule_id.isdigit() else None,
                "sha256": ev.sha256, "scheduled_start": ts(ev.scheduled_start), "actual_start": ts(ev.actual_start),
                "offset_ms": ev.offset_ms, "reason": ev.reason,
            })
            last[ev.node_id] = max(last.get(ev.node_id, 0), ev.seq)
        if rows:
            s.execute(sqlite_insert(NodeEvent).on_conflict_do_nothing(), rows)
        if last:
            nodes = Node.__table__
            s.execute(update(nodes).where(nodes.c.node_id == bindparam("nid"), nodes.c.last_event_seq < bindparam("s"))
                      .values(last_event_seq=bindparam("s")), [{"nid": n, "s": q} for n, q in last.items()])
            s.execute(update(nodes).where(nodes.c.node_id.in_(list(last))).values(last_seen=now))
    return len(rows)
