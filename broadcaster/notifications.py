"""The notification centre: who must act on what, told at once (issue 15 item 9).

* An announcement sent for approval → every active user the release policy allows to approve it in that ward
  (``announcement.approve``; the province roles too, they may approve in every ward), except the sender.
* Approved / rejected (with the comment) → its author; the request to the other approvers is then done (read).
* An emergency or drill waiting for the second person (two-person release) → every other user the policy allows to
  confirm it (:func:`broadcaster.policy.confirmers`: the alert's ward, or the province people for a province
  alert), at once. Released or discarded → their notifications are done (read), with the outcome.

A notification is stored as ``kind`` + ``params`` and rendered in the reader's language when shown
(:func:`text`); ``link`` is the panel path where she acts. Besides the panel, the people who must act may be told
by an outgoing webhook (``NOTIFY_WEBHOOK_URL``: a JSON POST) and by e-mail (``NOTIFY_SMTP_HOST`` …, to users with
an e-mail address): both in a background thread with a short timeout, failures logged and never raised, so the
action that caused them is never slowed down or refused by them.

No Flask here: the views (broadcaster/web/views_notifications.py) and the API (routes_notifications.py) call this.
Every hook (:func:`submitted`, :func:`reviewed`, :func:`emergency_created`, :func:`emergency_settled`) swallows its
own errors: a notification problem must never undo an approval or delay an emergency.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import threading
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import event, func, select, update

from broadcaster import i18n, policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Alert, Announcement, Notification, User

log = logging.getLogger(__name__)

APPROVAL_REQUESTED = "approval_requested"
APPROVED = "announcement_approved"
REJECTED = "announcement_rejected"
EMERGENCY_CONFIRM = "emergency_confirm"
#: A sounding emergency whose cancel waits for the second person (two-person cancel).
EMERGENCY_CANCEL = "emergency_cancel_confirm"
#: Loudspeakers that played an airing but measured no sound, or too little ("phát nhưng không nghe thấy").
NOT_HEARD = "airing_not_heard"
KINDS = (APPROVAL_REQUESTED, APPROVED, REJECTED, EMERGENCY_CONFIRM, EMERGENCY_CANCEL, NOT_HEARD)
#: The kinds that wait for the reader in an emergency (the banner of every page; read only once settled).
URGENT_KINDS = (EMERGENCY_CONFIRM, EMERGENCY_CANCEL)

#: kind → the English source text (Vietnamese in broadcaster/i18n/vi-notifications.json).
TEXTS: dict[str, str] = {
    APPROVAL_REQUESTED: "{by} sent “{title}” for approval.",
    APPROVED: "{by} approved “{title}”.",
    REJECTED: "{by} rejected “{title}”: {comment}",
    EMERGENCY_CONFIRM: "{by} started an emergency broadcast “{title}”: it waits for a second person to confirm.",
    EMERGENCY_CONFIRM + ".drill": "{by} started a drill “{title}”: it waits for a second person to confirm.",
    EMERGENCY_CANCEL: "{by} asked to cancel the emergency broadcast “{title}”: it keeps sounding until a second "
                      "person confirms the cancel.",
    EMERGENCY_CANCEL + ".drill": "{by} asked to cancel the drill “{title}”: it keeps sounding until a second person "
                                 "confirms the cancel.",
    NOT_HEARD: "“{title}” played but was not heard at {count} loudspeaker(s): {nodes} (measured {lufs} LUFS).",
}
#: What became of an emergency that waited (shown after the text of a done notification).
OUTCOMES: dict[str, str] = {
    "released": "Confirmed by {who}.",
    "discarded": "Discarded by {who}.",
    "cancelled": "Cancelled by {who}.",
}
#: The words of each item's link ("where to act").
ACTIONS: dict[str, str] = {
    APPROVAL_REQUESTED: "Review and approve",
    APPROVED: "View the announcement",
    REJECTED: "View and correct",
    EMERGENCY_CONFIRM: "Confirm the broadcast",
    EMERGENCY_CANCEL: "Confirm the cancel",
    NOT_HEARD: "See proof of play",
}
#: A plausible e-mail address (the mail server has the last word).
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ reading


def text(n: Notification, locale: str) -> str:
    """The notification in the reader's language (with its outcome, once an emergency was settled)."""
    params = {k: v for k, v in (n.params or {}).items() if isinstance(v, str | int)}
    params.setdefault("by", "—")
    params.setdefault("title", "")
    params.setdefault("comment", "")
    source = TEXTS.get(f"{n.kind}.drill" if (n.params or {}).get("drill") else n.kind) or TEXTS.get(n.kind, "")
    out = i18n.translate(source, locale, **params) if source else ""
    outcome = (n.params or {}).get("outcome")
    if outcome in OUTCOMES:
        out += " " + i18n.translate(OUTCOMES[outcome], locale, who=(n.params or {}).get("outcome_by") or "—")
    return out


def action_text(n: Notification, locale: str) -> str:
    return i18n.translate(ACTIONS.get(n.kind, "Open"), locale)


def urgent(n: Notification) -> bool:
    """An emergency that still waits for this reader."""
    return n.kind in URGENT_KINDS and n.read_at is None


def list_for(service: PanelCore, user: User, *, unread_only: bool = False, limit: int = 100) -> list[Notification]:
    """``user``'s notifications, newest first."""
    with service.db.session() as s:
        q = select(Notification).where(Notification.user_id == user.id)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        return list(s.scalars(q.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)))


def unread_count(service: PanelCore, user: User) -> int:
    with service.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.read_at.is_(None))) or 0)


def waiting_emergencies(service: PanelCore, user: User) -> list[Notification]:
    """Emergencies waiting for ``user`` to confirm (the banner of every page)."""
    with service.db.session() as s:
        return list(s.scalars(select(Notification).where(
            Notification.user_id == user.id, Notification.kind.in_(URGENT_KINDS),
            Notification.read_at.is_(None)).order_by(Notification.created_at.desc()).limit(5)))


def get_own(service: PanelCore, user: User, notification_id: int) -> Notification:
    """One of ``user``'s notifications; anybody else's is unknown (404)."""
    with service.db.session() as s:
        n = s.get(Notification, notification_id)
        if n is None or n.user_id != user.id:
            raise ServiceError("not_found", "no such notification", status=404)
        return n


def mark_read(service: PanelCore, user: User, notification_id: int) -> Notification:
    with service.db.session() as s:
        n = s.get(Notification, notification_id)
        if n is None or n.user_id != user.id:
            raise ServiceError("not_found", "no such notification", status=404)
        if n.read_at is None:
            n.read_at = datetime.now(UTC)
        s.flush()
        return n


def mark_all_read(service: PanelCore, user: User) -> int:
    """Every unread notification of ``user`` read; how many there were."""
    with service.db.session() as s:
        result = s.execute(update(Notification).where(Notification.user_id == user.id,
                                                      Notification.read_at.is_(None))
                           .values(read_at=datetime.now(UTC)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ who


def _name(user: User | None) -> str:
    if user is None:
        return "—"
    return user.display_name or user.username


def approvers(service: PanelCore, ward_id: int | None, exclude_user_id: int | None) -> list[User]:
    """Who may approve an announcement of ``ward_id``: asked of the release policy for each active user of the
    ward (and the province roles, whose scope is every ward), never a list of roles written here."""
    roles = policy.roles_allowed(policy.Action.ANNOUNCEMENT_APPROVE)
    with service.db.session() as s:
        q = select(User).where(User.active, User.role.in_(roles)).order_by(User.username)
        users = list(s.scalars(q))
    return [u for u in users
            if u.id != exclude_user_id and policy.allowed(u, policy.Action.ANNOUNCEMENT_APPROVE)
            and (tenancy.is_province(u) or (ward_id is not None and u.ward_id == ward_id))]


def _create(service: PanelCore, users: Iterable[User], kind: str, params: dict[str, Any], link: str,
            ward_id: int | None) -> list[Notification]:
    users = list(users)
    if not users:
        return []
    with service.db.session() as s:
        rows = [Notification(user_id=u.id, kind=kind, params=dict(params), link=link, ward_id=ward_id)
                for u in users]
        s.add_all(rows)
        s.flush()
    send_outside(service, kind, params, link, users)
    return rows


def _safely(what: str, fn: Any, *args: Any, **kw: Any) -> None:
    try:
        fn(*args, **kw)
    except Exception:  # noqa: BLE001 — a notification problem must never undo or delay the action
        log.exception("notification (%s) failed", what)


# ------------------------------------------------------------------------------------------------ hooks


def submitted(service: PanelCore, ann: T, user: User | None) -> T:
    """Hook of :func:`broadcaster.approval.submit` (returns the announcement it is given)."""
    _safely("submitted", _submitted, service, ann, user)
    return ann


def submitted_when_committed(service: PanelCore, session: Any, ann: Announcement, user: User | None) -> None:
    """An announcement sent for approval inside ``session`` by something else than :func:`approval.submit` (a
    scheduled draft, an approval voided by a change of its audio): the approvers are told once that work is
    committed — never for work that is rolled back."""
    sent = SimpleNamespace(id=ann.id, title=ann.title, ward_id=ann.ward_id)
    event.listen(session, "after_commit", lambda _s: submitted(service, sent, user), once=True)


def _submitted(service: PanelCore, ann: Announcement, user: User | None) -> None:
    who = approvers(service, ann.ward_id, user.id if user else None)
    _create(service, who, APPROVAL_REQUESTED, {"announcement_id": ann.id, "title": ann.title, "by": _name(user)},
            f"/announcements/{ann.id}", ann.ward_id)


def reviewed(service: PanelCore, ann: T, user: User | None) -> T:
    """Hook of :func:`broadcaster.approval.approve` / ``reject``: the author is told (with the comment), and the
    request to the other approvers is done."""
    _safely("reviewed", _reviewed, service, ann, user)
    return ann


def _reviewed(service: PanelCore, ann: Announcement, user: User | None) -> None:
    now = datetime.now(UTC)
    with service.db.session() as s:
        for n in s.scalars(select(Notification).where(Notification.kind == APPROVAL_REQUESTED,
                                                      Notification.read_at.is_(None))):
            if (n.params or {}).get("announcement_id") == ann.id:
                n.read_at = now
        author = s.get(User, ann.created_by_id or ann.submitted_by_id or 0)
    state = ann.approval or "draft"
    if author is None or not author.active or (user is not None and author.id == user.id):
        return
    if state in policy.APPROVED_STATES:
        kind, params = APPROVED, {}
    elif state == "rejected":
        kind, params = REJECTED, {"comment": ann.approval_comment or ""}
    else:
        return
    _create(service, [author], kind, {"announcement_id": ann.id, "title": ann.title, "by": _name(user), **params},
            f"/announcements/{ann.id}", ann.ward_id)


def emergency_created(service: PanelCore, alert_id: int, user: User | None, *, waiting: bool) -> None:
    """Hook of :func:`broadcaster.emergency.create_alert`: an alert that waits for the second person is told at
    once to everyone who may confirm it."""
    if waiting:
        _safely("emergency", _tell_confirmers, service, alert_id, user, EMERGENCY_CONFIRM, "pending_release")


def emergency_cancel_requested(service: PanelCore, alert_id: int, user: User | None) -> None:
    """Hook of the first of two people asking to cancel a sounding emergency: the others who may confirm the
    cancel are told at once (the alert keeps sounding until one of them does)."""
    _safely("emergency cancel", _tell_confirmers, service, alert_id, user, EMERGENCY_CANCEL, "released")


def _tell_confirmers(service: PanelCore, alert_id: int, user: User | None, kind: str, status: str) -> None:
    """``kind`` to everyone but ``user`` who may be the second person for the alert, while it is in ``status``."""
    with service.db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None or alert.status != status:
            return
        ward_id, title, drill = alert.ward_id, alert.title, bool(alert.drill)
    who = policy.confirmers(service, user.id if user else None, ward_id=ward_id, province=ward_id is None)
    _create(service, who, kind, {"alert_id": alert_id, "title": title, "by": _name(user), "drill": drill},
            f"/emergency/{alert_id}", ward_id)


def emergency_settled(service: PanelCore, alert_id: int, user: User | None) -> None:
    """Hook of the release and of the discard: nobody needs to act any more; their notifications are done."""
    _safely("emergency settled", _emergency_settled, service, alert_id, user)


def _emergency_settled(service: PanelCore, alert_id: int, user: User | None) -> None:
    now = datetime.now(UTC)
    with service.db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None or alert.status == "pending_release":
            return
        outcome = {"discarded": "discarded", "cancelled": "cancelled"}.get(alert.status, "released")
        for n in s.scalars(select(Notification).where(Notification.kind.in_(URGENT_KINDS),
                                                      Notification.read_at.is_(None))):
            if (n.params or {}).get("alert_id") == alert_id:
                n.params = {**(n.params or {}), "outcome": outcome, "outcome_by": _name(user)}
                n.read_at = now


# ------------------------------------------------------------------------------------------------ e-mail


def ward_staff(service: PanelCore, ward_id: int | None) -> list[User]:
    """Who is told that loudspeakers of ``ward_id`` were not heard: the ward's active users the release policy
    lets schedule airings or manage the fleet (officers, leaders, technicians), not the province."""
    asks = ((policy.Action.SCHEDULE_CREATE, policy.Scope.ZONE), (policy.Action.FLEET_MANAGE, policy.Scope.ANY))
    with service.db.session() as s:
        users = list(s.scalars(select(User).where(User.active, User.ward_id == ward_id).order_by(User.username)))
    return [u for u in users if any(policy.allowed(u, action, scope) for action, scope in asks)]


def not_heard(service: PanelCore, ward_id: int | None, title: str, node_ids: list[str],
              quietest_lufs: float) -> None:
    """Loudspeakers of one ward played an airing but measured no sound, or too little: its staff are told,
    once per call (the caller groups an airing's nodes)."""
    _safely("not heard", _not_heard, service, ward_id, title, node_ids, quietest_lufs)


def _not_heard(service: PanelCore, ward_id: int | None, title: str, node_ids: list[str],
               quietest_lufs: float) -> None:
    shown = ", ".join(node_ids[:5]) + (f" (+{len(node_ids) - 5})" if len(node_ids) > 5 else "")
    _create(service, ward_staff(service, ward_id), NOT_HEARD,
            {"title": title, "count": len(node_ids), "nodes": shown, "lufs": f"{quietest_lufs:.1f}"},
            "/plays?heard=no", ward_id)


def check_email(email: str) -> str:
    """The address stripped; 400 ``invalid_email`` when it is not one (empty is fine: no address)."""
    email = (email or "").strip()
    if email and (len(email) > 254 or not EMAIL_RE.match(email)):
        raise ServiceError("invalid_email", "not an e-mail address", "email")
    return email


def set_email(service: PanelCore, actor: User | None, username: str, email: str) -> User:
    """Her own e-mail address (anyone), or a user's by someone who manages users of her ward (the policy's
    ``users.manage`` and the tenancy decide). Empty removes it."""
    email = check_email(email)
    if actor is None:
        raise ServiceError("unauthorized", "log in first", status=401)
    with service.db.session() as s:
        target = s.scalar(select(User).where(User.username == username))
        if target is None:
            raise ServiceError("not_found", "no such user", status=404)
        if target.id != actor.id:
            policy.require(service, actor, policy.Action.USERS_MANAGE, policy.Scope.WARD,
                           target=f"user:{username}"[:120])
            if tenancy.is_province(target) and not tenancy.is_province(actor):
                raise ServiceError("not_found", "no such user", status=404)
            tenancy.check_user(actor, target.ward_id, "user")
        before = target.email or ""
        target.email = email or None
        if before != email:
            service.audit(s, actor, "user.email", username, ward_id=target.ward_id)  # noqa: SLF001
        s.flush()
        return target


# ------------------------------------------------------------------------------------------------ outside


def send_outside(service: PanelCore, kind: str, params: dict[str, Any], link: str, users: list[User],
                 *, wait: bool = False) -> threading.Thread | None:
    """The webhook and the e-mails, in a background thread (``wait``: join it, for the CLI and tests)."""
    cfg = service.config
    url = getattr(cfg, "NOTIFY_WEBHOOK_URL", "") or ""
    smtp_host = getattr(cfg, "NOTIFY_SMTP_HOST", "") or ""
    mailed = [u for u in users if u.email] if smtp_host else []
    if not url and not mailed:
        return None
    probe = Notification(kind=kind, params=params, link=link)
    message = {
        "kind": kind,
        "text": text(probe, "vi"),
        "text_en": text(probe, "en"),
        "link": cfg.public_url + link,
        "recipients": [{"username": u.username, "name": _name(u), "email": u.email or None} for u in users],
        "params": params,
    }
    thread = threading.Thread(target=_deliver, args=(cfg, url, mailed, message), name="notify", daemon=True)
    thread.start()
    if wait:
        thread.join()
    return thread


def _deliver(cfg: Any, url: str, mailed: list[User], message: dict[str, Any]) -> None:
    timeout = float(getattr(cfg, "NOTIFY_TIMEOUT_S", 5))
    if url:
        try:
            req = urllib.request.Request(url, data=json.dumps(message, ensure_ascii=False).encode(),
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "User-Agent": "loaphuong-notify"}, method="POST")
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 — the operator's own URL
                r.read(1024)
        except Exception:  # noqa: BLE001 — logged, never raised
            log.warning("notification webhook %s failed", url, exc_info=True)
    if mailed:
        try:
            _mail(cfg, mailed, message, timeout)
        except Exception:  # noqa: BLE001
            log.warning("notification e-mail failed", exc_info=True)


def _mail(cfg: Any, mailed: list[User], message: dict[str, Any], timeout: float) -> None:
    host, port = cfg.NOTIFY_SMTP_HOST, int(getattr(cfg, "NOTIFY_SMTP_PORT", 25) or 25)
    sender = getattr(cfg, "NOTIFY_SMTP_FROM", "") or "loaphuong@localhost"
    subject = i18n.translate("Loa Phường: {what}", "vi", what=i18n.translate(ACTIONS.get(message["kind"], "Open"),
                                                                            "vi"))
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if getattr(cfg, "NOTIFY_SMTP_STARTTLS", False):
            smtp.starttls()
        if getattr(cfg, "NOTIFY_SMTP_USER", ""):
            smtp.login(cfg.NOTIFY_SMTP_USER, cfg.NOTIFY_SMTP_PASSWORD)
        for u in mailed:
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = sender, u.email, subject
            mail.set_content(f"{message['text']}\n\n{message['link']}\n")
            smtp.send_message(mail)
