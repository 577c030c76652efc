"""Plan publication: every node's plan built from its zone's timeline (broadcaster/airtime.py),
signed, stored and published retained; the periodic rollover and the republication after a broker restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from broadcaster import airtime
from broadcaster.core import PanelCore
from broadcaster.leader import plan_lock
from broadcaster.models import (
    Announcement,
    Node,
)
from broadcaster.states import APPROVAL
from devices import protocol as proto
from schedules.plans import build_plan, next_version, plan_hash

log = logging.getLogger(__name__)

#: Items a plan may hold (devices/protocol.py Plan.items, docs/protocol.md §5).
MAX_PLAN_ITEMS = 2000


class PlanPublication(PanelCore):
    """The plan publication part of the panel's services."""

    def plan_for(self, s: Session, node: Node, now: datetime) -> list[dict[str, Any]]:
        """The node's plan items: audible entries of its zone's timeline (broadcaster.airtime)."""
        return airtime.node_plan(self, s, node.zone_id, now).items

    #: Plans are built, committed and published this many nodes at a time, so that the broker and the
    #: nodes are already busy with the first plans while the panel builds the next ones.
    PLAN_CHUNK = 500

    def publish_plans(
        self, node_ids: Iterable[str] | None = None, *, force: bool = False, now: datetime | None = None
    ) -> list[str]:
        """Rebuild the plans of ``node_ids`` (all nodes if None); publish those whose items changed.

        A plan is published only after its row (version, hash, signed payload) is committed, so what the
        broker holds is always something the panel can republish byte-identical.
        """
        now = now or datetime.now(UTC)
        # Several processes on PostgreSQL: also serialised across them (broadcaster/leader.py, plan_lock).
        with self._plan_lock, self.publishing(), plan_lock(self.db.engine):
            return self._publish_plans_locked(node_ids, force, now)

    def signed_plan(self, node_id: str, items: list[dict[str, Any]], version: int, now: datetime,
                     extra: dict[str, Any] | None) -> bytes:
        """The signed plan, within what a node and the broker accept (docs/protocol.md §5: at most 2,000 items
        and 256 KiB): an over-full plan keeps its earliest items and says so with an earlier ``valid_until``
        (the start of the first item left out); the rest follow in a later plan as the early ones pass. Never
        a plan the broker would refuse (it would drop the panel's own connection)."""
        keep = items[:MAX_PLAN_ITEMS]
        while True:
            horizon = self.horizon
            if len(keep) < len(items):
                horizon = max(proto.parse_ts(items[len(keep)]["start"]) - now, timedelta(0))
            plan = build_plan(node_id, keep, version=version, now=now, horizon=min(horizon, self.horizon),
                              extra=extra)
            wire = proto.sign_to_wire(plan, self.signing_key)
            if len(wire) <= proto.MAX_PAYLOAD_BYTES or not keep:
                if len(keep) < len(items):
                    log.warning("plan for %s holds %d of %d items (%d bytes): the rest follow in a later plan",
                                node_id, len(keep), len(items), len(wire))
                return wire
            keep = keep[: len(keep) * 3 // 4]

    def _publish_plans_locked(self, node_ids: Iterable[str] | None, force: bool, now: datetime) -> list[str]:
        published: list[str] = []
        with self.db.session() as s:
            query = select(Node.node_id).order_by(Node.node_id)
            if node_ids is not None:
                wanted = set(node_ids)
                if not wanted:
                    return []
                if len(wanted) <= self.PLAN_CHUNK:
                    query = query.where(Node.node_id.in_(wanted))
            all_ids = [n for n in s.scalars(query) if node_ids is None or n in wanted]
        per_zone: dict[int | None, airtime.NodePlan] = {}  # every node of a zone has the same items
        digests: dict[int, str] = {}
        for i in range(0, len(all_ids), self.PLAN_CHUNK):
            chunk = all_ids[i : i + self.PLAN_CHUNK]
            out: list[tuple[str, bytes]] = []
            sent_announcements: set[int] = set()
            with self.db.session() as s:
                # Core, not ORM: four columns in, one executemany out — the unit of work's per-object
                # bookkeeping was a third of the panel's time for a province-wide change (bench (a)).
                nodes = s.execute(select(Node.node_id, Node.zone_id, Node.plan_version, Node.plan_hash)
                                  .where(Node.node_id.in_(chunk))).all()
                updates: list[dict[str, Any]] = []
                for node in nodes:
                    node_plan = airtime.node_plan(self, s, node.zone_id, now, per_zone)
                    items = node_plan.items
                    digest = digests.get(id(node_plan))
                    if digest is None:
                        digest = digests[id(node_plan)] = plan_hash(items, node_plan.extra)
                    if not force and node.plan_hash is not None and digest == node.plan_hash:
                        continue
                    version = next_version(node.plan_version or 0, now)
                    sent_announcements.update(node_plan.announcement_ids)
                    # stored and published byte-identical
                    wire = self.signed_plan(node.node_id, items, version, now, node_plan.extra)
                    updates.append({"nid": node.node_id, "version": version, "digest": digest, "signed": wire})
                    out.append((node.node_id, wire))
                if updates:
                    table = Node.__table__
                    s.execute(update(table).where(table.c.node_id == bindparam("nid")).values(
                        plan_version=bindparam("version"), plan_hash=bindparam("digest"),
                        plan_payload=bindparam("signed"), plan_published_at=now),
                        updates)
                if sent_announcements:  # approved content sent to a node is "published" (approval workflow)
                    for ann in s.scalars(select(Announcement).where(
                            Announcement.id.in_(sent_announcements),
                            Announcement.approval.in_(APPROVAL.sources("publish")))):
                        APPROVAL.move(ann, "approval", "publish")
            for node_id, wire in out:
                self.publisher.publish(self.topics.plan(node_id), wire, qos=1, retain=True)
            published.extend(n for n, _ in out)
        if published:
            log.info("published %d plan(s)", len(published))
        return published

    def republish_retained(self) -> int:
        """Publish every node's last signed plan again (same version: nodes ignore it if they hold it).

        Needed after a broker restart that lost retained messages (the embedded iotcore keeps none).
        """
        with self.db.session() as s:
            rows = list(s.execute(select(Node.node_id, Node.plan_payload).where(Node.plan_payload.is_not(None))))
        for node_id, payload in rows:
            self.publisher.publish(self.topics.plan(node_id), proto.encode(payload), qos=1, retain=True)
        return len(rows)

    def rollover(self) -> list[str]:
        """Periodic job: items entering the 48 h window (or leaving it) change plans → publish those."""
        return self.publish_plans(None)
