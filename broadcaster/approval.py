"""Approval of content: draft → submitted → approved / rejected (with a comment) → published.

* Who may do what is the release policy's (broadcaster/policy.py): officers write and submit; leaders and
  admins approve or reject, and may approve a draft directly (they are the approver of their own text).
* Approval covers the exact audio: approving records the announcement's current media
  (``approved_media_sha256``), so an announcement without rendered audio cannot be approved, and
  :func:`broadcaster.policy.playable` lets only that file into a plan or a command.
* Only approved content is ever published: the plan builder (broadcaster/airtime.py) leaves out every
  schedule whose programme holds an announcement that is not playable; an approved announcement becomes
  ``published`` when a plan carrying it goes out to a node.
* Any change after approval — text, voice or audio options, a new recording, a re-render that produced other
  audio — sends it back for approval (``submitted``, shown as "chờ duyệt") and takes it out of the plans at
  once (:func:`void`); editing a draft or rejected text keeps it a draft.
* Every transition is an audit entry (who, when, what, comment); the nodes whose plans change (the zones
  of the active schedules using the announcement) are republished, and only those.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from broadcaster import notifications, policy, tenancy
from broadcaster.airtime import affected_nodes_for_announcement
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Announcement, User
from broadcaster.states import APPROVAL, ApprovalState

STATES = tuple(state.value for state in ApprovalState)  # the table: broadcaster/states.py (APPROVAL)
#: States that wait for a leader (the API also says ``awaiting_approval: true``).
AWAITING = (ApprovalState.SUBMITTED.value,)


def void(service: PanelCore, s: Session, ann: Announcement, user: User | None, why: str) -> bool:
    """The approved audio changed (R5): back to awaiting approval. True when an approval was withdrawn."""
    before = ann.approval or "draft"
    if not APPROVAL.allows(before, "void"):
        return False
    APPROVAL.move(ann, "approval", "void")
    ann.approved_media_sha256 = None
    ann.approval_comment = None
    ann.submitted_by_id, ann.submitted_at = (user.id if user else ann.submitted_by_id), datetime.now(UTC)
    if before != "submitted":
        service.audit(s, user, "announcement.approval_voided", str(ann.id), ward_id=ann.ward_id,
                       **{"from": before, "to": "submitted"}, why=why)
        notifications.submitted_when_committed(service, s, ann, user)  # the approvers are told again
    return before != "submitted"


def _transition(service: PanelCore, announcement_id: int, user: User | None, action: str,
                comment: str | None = None) -> Announcement:
    """Submit, approve or reject: the approval table (broadcaster/states.py) says from where, and to what."""
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        tenancy.check_user(user, ann.ward_id, "announcement")
        current = ann.approval or "draft"
        if ann.archived_at is not None:  # deleted (archived): restore it first
            raise ServiceError("announcement_archived", "the announcement is deleted (archived); restore it first",
                               "approval", 409)
        if not APPROVAL.allows(current, action):
            raise ServiceError("invalid_transition", f"cannot {action} an announcement that is {current}",
                               "approval", 409)
        to = APPROVAL.after(current, action).value
        now = datetime.now(UTC)
        if to == "approved":
            if ann.status != "ready" or not ann.media_sha256:
                raise ServiceError("announcement_not_ready", "only rendered audio can be approved: render it first",
                                   "approval", 409)
            ann.approved_media_sha256 = ann.media_sha256
        else:
            ann.approved_media_sha256 = None
        APPROVAL.move(ann, "approval", action)
        if action == "submit":
            ann.submitted_by_id, ann.submitted_at = (user.id if user else None), now
            ann.approval_comment = None
        else:
            ann.reviewed_by_id, ann.reviewed_at = (user.id if user else None), now
            ann.approval_comment = comment or None
        service.audit(s, user, f"announcement.{action}", str(announcement_id), ward_id=ann.ward_id,
                       **{"from": current, "to": to}, comment=comment or "")
        affected = affected_nodes_for_announcement(s, announcement_id)
    service.publish_plans_soon(affected)
    return service.get_announcement(announcement_id)  # type: ignore[return-value]


def submit(service: PanelCore, announcement_id: int, user: User | None) -> Announcement:
    policy.require(service, user, policy.Action.ANNOUNCEMENT_SUBMIT, target=f"announcement:{announcement_id}")
    ann = _transition(service, announcement_id, user, "submit")
    return notifications.submitted(service, ann, user)  # the approvers are told


def approve(service: PanelCore, announcement_id: int, user: User | None, comment: str = "") -> Announcement:
    policy.require(service, user, policy.Action.ANNOUNCEMENT_APPROVE, target=f"announcement:{announcement_id}")
    ann = _transition(service, announcement_id, user, "approve", comment)
    return notifications.reviewed(service, ann, user)  # the author is told


def reject(service: PanelCore, announcement_id: int, user: User | None, comment: str) -> Announcement:
    policy.require(service, user, policy.Action.ANNOUNCEMENT_APPROVE, target=f"announcement:{announcement_id}")
    comment = (comment or "").strip()
    if not comment:
        raise ServiceError("comment_required", "say why it is rejected", "comment")
    ann = _transition(service, announcement_id, user, "reject", comment)
    return notifications.reviewed(service, ann, user)  # the author is told, with the comment


def edit(service: PanelCore, announcement_id: int, title: str, text: str, user: User | None) -> Announcement:
    """Change the text (speech is rendered again at once); approved content goes back for approval."""
    policy.require(service, user, policy.Action.ANNOUNCEMENT_WRITE, target=f"announcement:{announcement_id}")
    title, text = service.validate_text(title, text)
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        tenancy.check_user(user, ann.ward_id, "announcement")
        before = ann.approval or "draft"
        changed = (ann.title, ann.text) != (title, text)
        ann.title, ann.text = title, text
        if changed:
            void(service, s, ann, user, "text changed")
            # The language versions translate the old text: each goes back to the leaders too (broadcaster/versions.py)
            for version in ann.versions:
                if APPROVAL.allows(version.approval, "void"):
                    APPROVAL.move(version, "approval", "void")
                    service.audit(s, user, "announcement.version_voided", str(announcement_id), ward_id=ann.ward_id,
                                   language=version.language, reason="the Vietnamese text changed")
        service.audit(s, user, "announcement.edit", str(announcement_id), ward_id=ann.ward_id,
                       **{"from": before, "to": ann.approval}, changed=changed)
    if changed:
        service.render_announcement(announcement_id)
    with service.db.session() as s:
        affected = affected_nodes_for_announcement(s, announcement_id)
    service.publish_plans_soon(affected)
    return service.get_announcement(announcement_id)  # type: ignore[return-value]


def queue(service: PanelCore, scope: tenancy.Scope | None = None) -> list[Announcement]:
    """What waits for a leader: submitted announcements, oldest first."""
    with service.db.session() as s:
        q = (select(Announcement).options(selectinload(Announcement.media))
             .where(Announcement.approval == "submitted", Announcement.archived_at.is_(None))
             .order_by(Announcement.submitted_at))
        return list(s.scalars(scope.restrict(q, Announcement) if scope is not None else q))
