"""Approval of content: draft → submitted → approved / rejected (with a comment) → published.

* Officers write and submit; leaders approve or reject; admins may do everything. A leader or admin may
  approve a draft directly (they are the approver of their own text).
* Only approved content is ever published: the plan builder (broadcaster/scheduling.py) leaves out every
  schedule whose programme holds an announcement that is not ``approved`` or ``published``; an approved
  announcement becomes ``published`` when a plan carrying it goes out to a node.
* Editing the text of submitted, approved or published content sends it back for approval
  (``submitted``) and takes it out of the plans at once; editing a draft or rejected text keeps it a draft.
* Every transition is an audit entry (who, when, what, comment); the nodes whose plans change (the zones
  of the active schedules using the announcement) are republished, and only those.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from broadcaster.models import Announcement, User
from broadcaster.services import ServiceError

if TYPE_CHECKING:
    from broadcaster.services import PanelService

STATES = ("draft", "submitted", "approved", "rejected", "published")
WRITERS = ("officer", "leader", "admin")
APPROVERS = ("leader", "admin")


def _require(user: User | None, roles: tuple[str, ...], what: str) -> None:
    if user is None or user.role not in roles:
        raise ServiceError("forbidden", f"{what} needs the role {' or '.join(roles)}", status=403)


def _transition(service: PanelService, announcement_id: int, user: User | None, action: str,
                allowed_from: tuple[str, ...], to: str, comment: str | None = None) -> Announcement:
    from broadcaster.scheduling import affected_nodes_for_announcement

    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        current = ann.approval or "draft"
        if current not in allowed_from:
            raise ServiceError("invalid_transition", f"cannot {action} an announcement that is {current}",
                               "approval", 409)
        now = datetime.now(UTC)
        ann.approval = to
        if action == "submit":
            ann.submitted_by_id, ann.submitted_at = (user.id if user else None), now
            ann.approval_comment = None
        else:
            ann.reviewed_by_id, ann.reviewed_at = (user.id if user else None), now
            ann.approval_comment = comment or None
        service._audit(s, user, f"announcement.{action}", str(announcement_id), **{"from": current, "to": to},
                       comment=comment or "")
        affected = affected_nodes_for_announcement(s, announcement_id)
    service.publish_plans(affected)
    return service.get_announcement(announcement_id)  # type: ignore[return-value]


def submit(service: PanelService, announcement_id: int, user: User | None) -> Announcement:
    _require(user, WRITERS, "submitting for approval")
    return _transition(service, announcement_id, user, "submit", ("draft", "rejected"), "submitted")


def approve(service: PanelService, announcement_id: int, user: User | None, comment: str = "") -> Announcement:
    _require(user, APPROVERS, "approving")  # the text is approved; audio that fails to render never plays
    return _transition(service, announcement_id, user, "approve", ("draft", "submitted", "rejected"), "approved",
                       comment)


def reject(service: PanelService, announcement_id: int, user: User | None, comment: str) -> Announcement:
    _require(user, APPROVERS, "rejecting")
    comment = (comment or "").strip()
    if not comment:
        raise ServiceError("comment_required", "say why it is rejected", "comment")
    return _transition(service, announcement_id, user, "reject", ("submitted", "approved", "published"),
                       "rejected", comment)


def edit(service: PanelService, announcement_id: int, title: str, text: str, user: User | None) -> Announcement:
    """Change the text (speech is rendered again at once); approved content goes back for approval."""
    from broadcaster.scheduling import affected_nodes_for_announcement

    _require(user, WRITERS, "editing")
    title, text = service._validate_text(title, text)
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        before = ann.approval or "draft"
        changed = (ann.title, ann.text) != (title, text)
        ann.title, ann.text = title, text
        if changed and before in ("submitted", "approved", "published"):
            ann.approval = "submitted"
            ann.submitted_by_id, ann.submitted_at = (user.id if user else None), datetime.now(UTC)
            ann.approval_comment = None
        service._audit(s, user, "announcement.edit", str(announcement_id), **{"from": before, "to": ann.approval},
                       changed=changed)
    if changed:
        service.render_announcement(announcement_id)
    with service.db.session() as s:
        affected = affected_nodes_for_announcement(s, announcement_id)
    service.publish_plans(affected)
    return service.get_announcement(announcement_id)  # type: ignore[return-value]


def queue(service: PanelService) -> list[Announcement]:
    """What waits for a leader: submitted announcements, oldest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    with service.db.session() as s:
        return list(s.scalars(select(Announcement).options(selectinload(Announcement.media))
                              .where(Announcement.approval == "submitted").order_by(Announcement.submitted_at)))
