"""Tenancy: one installation serves a province of wards; each ward's people see and touch only their ward.

The one place the ward scope is decided and applied:

* :func:`scope_of` turns a user (and an optional ``?ward=CODE`` filter) into a :class:`Scope`: the ward ids the
  request may see — every ward for the province roles (``province_admin``, ``province_leader``), only her own
  for a ward user (``admin``, ``leader``, ``officer``).
* :meth:`Scope.restrict` adds the ward condition to a query through :data:`WARD_COLUMN`, the table of which
  column says an object's ward; every list of the service layer goes through it.
* :func:`check` answers 404 for an object of another ward (read or write by id: its existence is not told), and
  :func:`ward_for_new` picks the ward of a new object (the caller's own; a province user names one when there
  are several).

Routes compute the scope once per request (``g.scope``) and hand it to the service functions; nothing in a route
filters by ward itself. Objects with no ward (``ward_id`` None) are province-level: visible to every ward's
lists only where a model says so (a province alert is shown to the wards it targets, see broadcaster/emergency.py).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster import policy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Alert,
    Announcement,
    Node,
    Schedule,
    User,
    Ward,
    Zone,
)

# Re-exported: the roles and the scope are part of what tenancy means to its callers.
from broadcaster.scope import ALL_ROLES as ALL_ROLES
from broadcaster.scope import BY_NODE as BY_NODE
from broadcaster.scope import PROVINCE_ROLES as PROVINCE_ROLES
from broadcaster.scope import WARD_COLUMN as WARD_COLUMN
from broadcaster.scope import WARD_ROLES as WARD_ROLES
from broadcaster.scope import Scope as Scope
from broadcaster.scope import is_province as is_province
from devices.protocol import NODE_ID_RE


def scope_of(service: PanelCore, user: User | None, ward_code: str | None = None) -> Scope:
    """The scope of ``user``; ``ward_code`` (``?ward=CODE``) narrows it to one ward (404 if unknown)."""
    if user is None:
        return Scope(frozenset())
    ward_code = (ward_code or "").strip() or None
    with service.db.session() as s:
        wanted = None
        if ward_code is not None:
            wanted = s.scalar(select(Ward.id).where(Ward.code == ward_code))
            # a one-ward installation keeps its old free-text ward labels working: they name the only ward
            if wanted is None and default_ward(s) is None:
                raise ServiceError("unknown_ward", f"no ward {ward_code!r}", "ward", 404)
    if is_province(user):
        return Scope(None if wanted is None else frozenset({wanted}), True)
    own = frozenset({user.ward_id}) if user.ward_id is not None else frozenset()
    if wanted is not None:
        own = own & {wanted}
    return Scope(own)


def check(scope: Scope | None, ward_id: int | None, what: str = "object") -> None:
    """404 for an object the scope does not see (its existence in another ward is not told)."""
    if scope is not None and not scope.sees(ward_id):
        raise ServiceError("not_found", f"no such {what}", status=404)


def check_user(user: User | None, ward_id: int | None, what: str = "object") -> None:
    """:func:`check` for a write by ``user`` (None = the system: no restriction)."""
    if user is None or is_province(user):
        return
    if ward_id != user.ward_id:
        raise ServiceError("not_found", f"no such {what}", status=404)


def user_scope(user: User | None) -> Scope | None:
    """The scope of a write by ``user`` without a database round trip (None = the system)."""
    if user is None:
        return None
    if is_province(user):
        return Scope.everything()
    return Scope(frozenset({user.ward_id}) if user.ward_id is not None else frozenset())


# --------------------------------------------------------------------------------------------- wards


def default_ward(s: Session) -> Ward | None:
    """The only ward of a one-ward installation (None when there are several)."""
    wards = list(s.scalars(select(Ward).order_by(Ward.id).limit(2)))
    return wards[0] if len(wards) == 1 else None


def ward_for_new(s: Session, user: User | None, ward: str | int | None = None, *, field: str = "ward") -> Ward:
    """The ward a new object belongs to: a ward user's own (another one is refused as unknown); for a province
    user (or the system) the one named, or the only ward of a one-ward installation."""
    ref = ward if ward not in (None, "") else None
    if user is not None and not is_province(user):
        own = s.get(Ward, user.ward_id) if user.ward_id is not None else None
        if own is None:
            raise ServiceError("no_ward", "your account belongs to no ward", field, 403)
        if ref is not None and ref not in (own.code, own.id, own.name):
            try:  # a one-ward installation's old free-text label names the only ward
                named = resolve_ward(s, ref, field=field)
            except ServiceError:
                named = None
            if named is None or named.id != own.id:
                raise ServiceError("unknown_ward", f"no ward {ref!r}", field, 404)
        return own
    if ref is None:
        only = default_ward(s)
        if only is None:
            # 409: the request is fine for a one-ward installation; this one has several (its current state)
            raise ServiceError("ward_required", "there are several wards: say which one (ward)", field, 409)
        return only
    found = resolve_ward(s, ref, field=field)
    return found


def resolve_ward(s: Session, ref: str | int, *, field: str = "ward") -> Ward:
    found = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = s.get(Ward, ref)
    else:
        text = str(ref).strip()
        found = s.scalar(select(Ward).where(Ward.code == text))
        if found is None:
            # one-ward installations written before wards existed name it by a free label: accept it
            found = s.scalar(select(Ward).where(Ward.name == text))
            if found is None and default_ward(s) is not None:
                found = default_ward(s)
    if found is None:
        raise ServiceError("unknown_ward", f"no ward {ref!r}", field, 404)
    return found


def create_ward(service: PanelCore, code: str, name: str, user: User | None) -> Ward:
    policy.require(service, user, policy.Action.WARDS_MANAGE, policy.Scope.PROVINCE, target=f"ward:{code}"[:120])
    code = (code or "").strip().lower()
    if not NODE_ID_RE.match(code):
        raise ServiceError("invalid_ward_code", "ward code: lowercase letters, digits, '-' or '_'", "code")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ServiceError("required", "ward name is required (≤ 200 characters)", "name")
    with service.db.session() as s:
        if s.scalar(select(Ward).where(Ward.code == code)) is not None:
            raise ServiceError("ward_exists", f"ward {code!r} exists", "code", 409)
        ward = Ward(code=code, name=name)
        s.add(ward)
        s.flush()
        service.audit(s, user, "ward.create", code, name=name)
        return ward


def list_wards(service: PanelCore, scope: Scope | None = None) -> list[Ward]:
    with service.db.session() as s:
        q = select(Ward).order_by(Ward.code)
        if scope is not None:
            q = scope.restrict(q, Ward)
        return list(s.scalars(q))


def ensure_default_ward(service: PanelCore) -> Ward:
    """From the first start a ward exists; data from before wards (ward_id NULL) joins the first ward.

    Idempotent: run at every start (a one-ward installation keeps working exactly as before).
    """
    cfg = service.config
    with service.db.session() as s:
        first = s.scalar(select(Ward).order_by(Ward.id).limit(1))
        if first is None:
            first = Ward(code=getattr(cfg, "WARD_CODE", "phuong") or "phuong",
                         name=getattr(cfg, "WARD_NAME", "Phường") or "Phường")
            s.add(first)
            s.flush()
        wid = first.id
        for model in (Zone, Node, Announcement, Schedule):
            s.execute(update(model).where(model.ward_id.is_(None)).values(ward_id=wid))
        s.execute(update(Alert).where(Alert.ward_id.is_(None), ~Alert.wards.any()).values(ward_id=wid))
        s.execute(update(User).where(User.ward_id.is_(None), User.role.in_(WARD_ROLES)).values(ward_id=wid))
        return first


def settings_key(s: Session, zone: Zone) -> str:
    """The key of a zone's ward settings (quiet hours, two-person release): its ward's code."""
    if zone.ward_id is not None:
        code = s.scalar(select(Ward.code).where(Ward.id == zone.ward_id))
        if code is not None:
            return code
    return zone.ward or ""


def require_installation_wide(service: PanelCore, user: User | None, what: str) -> None:
    """Settings shared by every ward (abbreviation readings, speech defaults, stream sources, media cleanup):
    while the installation has several wards only a province role changes them — a ward's person would change
    another ward's audio. A one-ward installation keeps them its ward's."""
    if user is None or is_province(user):
        return
    with service.db.session() as s:
        several = default_ward(s) is None
    if several:
        raise policy.refuse(service, user, "province_setting", f"{what} is shared by every ward of the province: "
                            "a province admin changes it", action=what, target="province")


def ward_codes(s: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(s.execute(select(Ward.id, Ward.code).where(Ward.id.in_(wanted))).all())
