"""Reading the audit log (the page ``/audit`` and ``GET /api/v1/audit`` share it): newest first, in the caller's
ward scope, optionally one target or one family of actions. Writing it is the service layer's job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from broadcaster import tenancy
from broadcaster.models import AuditEntry, User


def audit_rows(service: Any, limit: int = 200, target: str | None = None, action: str | None = None,
               scope: tenancy.Scope | None = None) -> list[dict[str, Any]]:
    """At most ``limit`` entries (1–2000) as dicts: id, at, user (her username, None for the system), action,
    target, detail."""
    with service.db.session() as s:
        q = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
        if scope is not None:
            q = scope.restrict(q, AuditEntry)
        if target:
            q = q.where(AuditEntry.target == target)
        if action:
            q = q.where(AuditEntry.action.startswith(action))
        rows = s.execute(q.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 2000)))).all()
        return [{"id": e.id, "at": e.at, "user": username, "action": e.action, "target": e.target,
                 "detail": e.detail} for e, username in rows]
