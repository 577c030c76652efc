"""Roles and the ward scope: the lowest layer of the panel's tenancy (broadcaster/tenancy.py builds on it).

Kept apart so that the panel's core (broadcaster/core.py) can filter by ward without importing the release policy
or the tenancy rules that themselves take the panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, select

from broadcaster.models import (
    Alert,
    Announcement,
    AuditEntry,
    CommandRecord,
    Node,
    NodeEvent,
    Schedule,
    User,
    Ward,
    Zone,
)

PROVINCE_ROLES = ("province_admin", "province_leader")
WARD_ROLES = ("officer", "leader", "admin")
ALL_ROLES = (*WARD_ROLES, *PROVINCE_ROLES)

#: Which column says the ward of each kind of object (a node event and a command: through their node).
WARD_COLUMN: dict[type, Any] = {
    Zone: Zone.ward_id,
    Node: Node.ward_id,
    Announcement: Announcement.ward_id,
    Schedule: Schedule.ward_id,
    Alert: Alert.ward_id,
    AuditEntry: AuditEntry.ward_id,
    User: User.ward_id,
    Ward: Ward.id,
}
#: Objects that name their node by id: restricted to the nodes of the scope.
BY_NODE: dict[type, Any] = {NodeEvent: NodeEvent.node_id, CommandRecord: CommandRecord.node_id}


def is_province(user: User | None) -> bool:
    return user is not None and user.role in PROVINCE_ROLES


@dataclass(frozen=True)
class Scope:
    """The wards a request may see. ``ward_ids`` None: every ward (a province user without a filter)."""

    ward_ids: frozenset[int] | None
    province: bool = False

    @classmethod
    def everything(cls) -> Scope:
        return cls(None, True)

    def sees(self, ward_id: int | None) -> bool:
        if self.ward_ids is None:
            return True
        return ward_id in self.ward_ids

    def restrict(self, query: Any, model: type) -> Any:
        """``query`` limited to the scope's wards (the one way lists are filtered)."""
        if self.ward_ids is None:
            return query
        if model in BY_NODE:
            nodes = select(Node.node_id).where(Node.ward_id.in_(self.ward_ids))
            return query.where(BY_NODE[model].in_(nodes))
        column = WARD_COLUMN[model]
        if not self.ward_ids:
            return query.where(false())
        return query.where(column.in_(self.ward_ids))

    def only_ward(self) -> int | None:
        """The single ward of the scope, if it has exactly one."""
        if self.ward_ids is not None and len(self.ward_ids) == 1:
            return next(iter(self.ward_ids))
        return None
