"""Service layer: every write the panel makes goes through here (web views and API stay thin).

``PanelService`` wires the domain packages (``audio``, ``schedules``, ``devices``) to the database and
to a :class:`Publisher` (the MQTT bridge in production, an in-memory one in unit tests).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session, defer, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from audio import MediaStore
from audio.normalize import DEFAULT_ABBREVIATIONS, normalize
from broadcaster import logins, policy, tenancy
from broadcaster.broker_admin import BrokerRegistry, BrokerRegistryError, NullBrokerRegistry
from broadcaster.brokerconf import mosquitto_hash
from broadcaster.config import Config
from broadcaster.db import Database
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Abbreviation,
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
from devices import protocol as proto
from devices.registry import RegistryError, new_token, token_hash, validate_node_id
from schedules.plans import build_plan, next_version, plan_hash
from schedules.timeutil import to_local

log = logging.getLogger(__name__)
#: Items a plan may hold (devices/protocol.py Plan.items, docs/protocol.md §5).
MAX_PLAN_ITEMS = 2000


def _insert_ignoring_duplicates(session: Session, model: type) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the dialect in use (SQLite by default, PostgreSQL in larger
    deployments): duplicates are skipped by the database's unique constraint, in the same statement."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model.__table__).on_conflict_do_nothing()  # Core: no ORM bookkeeping per row

#: node_events columns written by ``PanelService._ingest_events``, in the order of its row tuples.
_EVENT_COLUMNS = ("node_id", "epoch", "seq", "event", "at", "received_at", "plan_version", "item_id", "schedule_id",
                  "sha256", "scheduled_start", "actual_start", "offset_ms", "reason")
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


ROLES = tenancy.ALL_ROLES  # every role (broadcaster/tenancy.py)
#: (service, announcement id) being rendered by a thread of this process (PanelService.render_in_background).
_RENDERING: set[tuple[int, int]] = set()
_RENDERING_LOCK = threading.Lock()
ZONE_KINDS = ("village", "residential_group")


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...


@dataclass
class MemoryPublisher:
    """Records publications; used when no broker is attached (unit tests, CLI tools)."""

    messages: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.messages.append((topic, payload, qos, retain))


class PanelService:
    def __init__(self, config: Config, db: Database, signing_key: Ed25519PrivateKey) -> None:
        self.config = config
        self.db = db
        self.signing_key = signing_key
        self.public_key_b64 = proto.public_key_b64(signing_key)
        self.topics = proto.Topics(config.MQTT_PREFIX)
        self.publisher: Publisher = MemoryPublisher()
        #: The broker's logins follow the registry through this (broadcaster/broker_admin.py); app.start_services
        #: attaches the real one when the panel manages its broker.
        self.broker_registry: BrokerRegistry = NullBrokerRegistry()
        self.media = MediaStore(config.MEDIA_DIR)
        self.horizon = timedelta(hours=config.PLAN_HORIZON_HOURS)
        self._plan_lock = threading.Lock()  # plan versions must not interleave between threads
        #: Set while no plan is being published: the ingest worker holds proof-of-play back meanwhile, so
        #: that a province-wide plan change does not share the interpreter with storing its own echoes.
        self.publication_idle = threading.Event()
        self.publication_idle.set()
        self._publishing = 0
        self._publishing_lock = threading.Lock()
        #: Events go to SQLite as plain tuples through the driver (see ``_ingest_events``); False takes the
        #: portable SQLAlchemy path that PostgreSQL uses (a test checks that both store the same rows).
        self.raw_sqlite_ingest = True
        #: Node messages dropped by ingest, by reason: ``invalid`` (refused by docs/protocol.md §4/§6/§12: a
        #: field out of bounds, malformed JSON, node id ≠ topic), ``error`` (decoding failed otherwise),
        #: ``unstorable`` (its own store failed after the batch's did). Each is logged; the rest of the batch is kept.
        self.ingest_dropped: Counter[str] = Counter()

    # ------------------------------------------------------------------ audit
    @staticmethod
    def _audit(s: Session, user: User | None, action: str, target: str = "", *, ward_id: int | None = None,
               **detail: Any) -> None:
        """An audit entry; it belongs to ``ward_id``, else to the acting ward user's ward (province: none)."""
        if ward_id is None and user is not None and not tenancy.is_province(user):
            ward_id = user.ward_id
        s.add(AuditEntry(user_id=user.id if user else None, action=action, target=target, detail=detail,
                         ward_id=ward_id))

    # ------------------------------------------------------------------ users
    # Who may manage whom: the release policy (``users.manage``, ward scope: admin and province_admin) says who
    # manages users at all; the tenancy says where: a ward admin only in her own ward and only the ward roles
    # (officer, leader, admin), a province_admin in every ward and every role. A user of another ward is unknown
    # (404). ``user`` is the acting user; None is the system (CLI, bootstrap admin, tests): no restriction.
    def create_user(self, username: str, password: str, role: str = "officer", display_name: str = "",
                    ward: str | int | None = None, user: User | None = None) -> User:
        """A new user. ``ward`` (code or id) for a ward role: by default a ward admin's own ward, or the only ward
        of a one-ward installation; province roles have no ward."""
        username = (username or "").strip()
        target = f"user:{username}"[:120]
        if user is not None:
            policy.require(self, user, policy.Action.USERS_MANAGE, policy.Scope.WARD, target=target)
        role = self._user_role(role)
        self._users_refuse_outside(user, target, role=role)
        username = self._user_name(username)
        self._user_password(password, username)
        with self.db.session() as s:
            ward_id = self._user_ward(s, user, role, ward)
        self._users_refuse_outside(user, target, ward_id=ward_id)
        with self.db.session() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise ServiceError("username_taken", f"user {username!r} exists", "username", 409)
            new = User(username=username, display_name=(display_name or "").strip()[:200] or username,
                       password_hash=generate_password_hash(password), role=role, ward_id=ward_id)
            s.add(new)
            s.flush()
            self._audit(s, user, "user.create", username, ward_id=ward_id, role=role)
            return new

    def update_user(self, username: str, *, role: str | None = None, disabled: bool | None = None,
                    password: str | None = None, ward: str | int | None = None, display_name: str | None = None,
                    user: User | None = None) -> User:
        """Change a user's role (and ward: province_admin only), disable or enable her, reset her password.

        Disabling locks her out at once (the panel's session loader and the API token lookup require an active
        user) and revokes her API token; a reset password revokes it too. Nobody disables herself, and nobody
        demotes or moves herself when she is the last admin of her ward (of the province for a province_admin).
        Every change is audited (never the password)."""
        target = f"user:{(username or '').strip()}"[:120]
        if user is not None:
            policy.require(self, user, policy.Action.USERS_MANAGE, policy.Scope.WARD, target=target)
        with self.db.session() as s:
            found = s.scalar(select(User).where(User.username == (username or "").strip()))
            if found is None:
                raise ServiceError("not_found", f"no user {username!r}", status=404)
            tenancy.check_user(user, found.ward_id, "user")  # another ward's user (or a province user): 404
        if role is not None:
            self._users_refuse_outside(user, target, role=self._user_role(role))
        with self.db.session() as s:
            found = s.scalar(select(User).where(User.username == (username or "").strip()))
            assert found is not None
            new_role = found.role if role is None else self._user_role(role)
            if ward not in (None, "") or (new_role in tenancy.WARD_ROLES and found.ward_id is None):
                new_ward = self._user_ward(s, user if ward not in (None, "") else None, new_role, ward)
            else:
                new_ward = None if new_role in tenancy.PROVINCE_ROLES else found.ward_id
            if password is not None:
                self._user_password(password, found.username)
            before = {"id": found.id, "role": found.role, "ward_id": found.ward_id, "active": found.active}
            peers = select(func.count(User.id)).where(User.active, User.id != found.id, User.role == found.role)
            if found.role == "admin":
                peers = peers.where(User.ward_id == found.ward_id)
            other_admins = s.scalar(peers) or 0
        self._users_refuse_outside(user, target, ward_id=new_ward)
        if user is not None and user.id == before["id"]:
            action = policy.Action.USERS_MANAGE.value
            if disabled:
                raise policy.refuse(self, user, "cannot_disable_self", "you cannot disable your own account",
                                    action=action, target=target, field="disabled")
            demoted = new_role != before["role"] or new_ward != before["ward_id"]
            if demoted and before["role"] in ("admin", "province_admin") and not other_admins:
                raise policy.refuse(self, user, "last_admin", "you are the last admin: give the role to someone "
                                    "else first", action=action, target=target, field="role", status=409)
        with self.db.session() as s:
            found = s.get(User, before["id"])
            assert found is not None
            if (new_role, new_ward) != (before["role"], before["ward_id"]):
                found.role, found.ward_id = new_role, new_ward
                # her logins carried the old role: she logs in again (from her own request, that login stays)
                logins.revoke_all(s, found.id, keep_key=user.session_key if user is not None and
                                  user.id == found.id else None)
                self._audit(s, user, "user.role", found.username, ward_id=new_ward, old_role=before["role"],
                            role=new_role, old_ward_id=before["ward_id"])
            if display_name is not None and display_name.strip() and display_name.strip() != found.display_name:
                found.display_name = display_name.strip()[:200]
                self._audit(s, user, "user.rename", found.username, ward_id=new_ward)
            if disabled is not None and bool(disabled) == bool(found.active):
                found.active = not disabled
                if disabled:
                    logins.revoke_all(s, found.id)  # her sessions and API tokens stop working at once
                self._audit(s, user, "user.disable" if disabled else "user.enable", found.username,
                            ward_id=new_ward)
            if password is not None:
                found.password_hash = generate_password_hash(password)
                # reset by an admin: every session and token of hers ends (her own reset keeps this login)
                logins.revoke_all(s, found.id, keep_key=user.session_key if user is not None and
                                  user.id == found.id else None)
                self._audit(s, user, "user.password_reset", found.username, ward_id=new_ward)
            return found

    def change_password(self, user: User | None, old_password: str, new_password: str) -> None:
        """One's own password: the current one first (403 ``wrong_password``), then a strong new one."""
        if user is None:
            raise ServiceError("unauthorized", "log in first", status=401)
        with self.db.session() as s:
            me = s.get(User, user.id)
            if me is None or not me.active:
                raise ServiceError("unauthorized", "log in first", status=401)
            if not check_password_hash(me.password_hash, old_password or ""):
                self._audit(s, me, "user.password_change_refused", me.username, ward_id=me.ward_id)
                s.commit()
                raise ServiceError("wrong_password", "the current password is wrong", "old_password", 403)
            self._user_password(new_password, me.username, field="new_password")
            if check_password_hash(me.password_hash, new_password):
                raise ServiceError("password_unchanged", "the new password is the current one", "new_password")
            me.password_hash = generate_password_hash(new_password)
            logins.revoke_all(s, me.id, keep_key=user.session_key)  # her other sessions and tokens end
            self._audit(s, me, "user.password_change", me.username, ward_id=me.ward_id)

    def list_users(self, user: User | None = None, scope: tenancy.Scope | None = None) -> list[User]:
        """Users of the caller's scope: a ward admin her ward's, province roles (admin or leader) everyone
        (``scope`` narrows it to a ward). Ward officers and leaders manage nobody: they see only themselves."""
        with self.db.session() as s:
            q = select(User).order_by(User.username)
            manager = policy.allowed(user, policy.Action.USERS_MANAGE, policy.Scope.WARD) or tenancy.is_province(user)
            if user is not None and not manager:
                return list(s.scalars(q.where(User.id == user.id)))
            scope = scope if scope is not None else tenancy.user_scope(user)
            return list(s.scalars(scope.restrict(q, User) if scope is not None else q))

    def assignable_roles(self, user: User | None) -> tuple[str, ...]:
        """The roles ``user`` may give (for the users page)."""
        if user is None or tenancy.is_province(user):
            return tenancy.ALL_ROLES
        return tenancy.WARD_ROLES

    def user_ward_codes(self, users: Iterable[User]) -> dict[int, str]:
        with self.db.session() as s:
            return tenancy.ward_codes(s, {u.ward_id for u in users})

    @staticmethod
    def _user_name(username: str) -> str:
        if not username or len(username) > 80 or any(c.isspace() or c in "/\\?#%" for c in username):
            raise ServiceError("invalid_username", "username: 1–80 characters, no spaces or / \\ ? # %", "username")
        return username

    @staticmethod
    def _user_password(password: str | None, username: str = "", field: str = "password") -> None:
        password = password or ""
        if len(password) < 8 or len(password) > 200:
            raise ServiceError("weak_password", "password must have 8 to 200 characters", field)
        # a letter and something else (a digit, a sign, a Vietnamese letter): the same rule as the API document
        if (password.strip().lower() == username.strip().lower() or not re.search(r"[A-Za-z]", password)
                or not re.search(r"[^A-Za-z]", password)):
            raise ServiceError("weak_password", "password is too easy to guess", field)

    @staticmethod
    def _user_role(role: str | None) -> str:
        if role not in tenancy.ALL_ROLES:
            raise ServiceError("invalid_role", f"role must be one of {', '.join(tenancy.ALL_ROLES)}", "role")
        return role

    @staticmethod
    def _user_ward(s: Session, user: User | None, role: str, ward: str | int | None) -> int | None:
        """The ward id of a user with ``role``: None for a province role; the named ward (404 if unknown), else
        the acting ward admin's own, else the only ward of a one-ward installation."""
        ref = ward if ward not in (None, "") else None
        if role in tenancy.PROVINCE_ROLES:
            if ref is not None:
                raise ServiceError("ward_not_allowed", "province roles belong to no ward", "ward")
            return None
        if ref is None:
            if user is not None and not tenancy.is_province(user):
                return tenancy.ward_for_new(s, user, None).id
            return tenancy.ward_for_new(s, None, None).id
        found = s.get(Ward, ref) if isinstance(ref, int) and not isinstance(ref, bool) else None
        if found is None:
            found = s.scalar(select(Ward).where(Ward.code == str(ref).strip()))
        if found is None:
            raise ServiceError("unknown_ward", f"no ward {ref!r}", "ward", 404)
        return found.id

    _ANY: Any = object()

    def _users_refuse_outside(self, user: User | None, target: str, *, role: str | None = None,
                              ward_id: Any = _ANY) -> None:
        """A ward admin gives only the ward roles, in her own ward (an audited 403 otherwise)."""
        if user is None or tenancy.is_province(user):
            return
        action = policy.Action.USERS_MANAGE.value
        if role is not None and role not in tenancy.WARD_ROLES:
            raise policy.refuse(self, user, "forbidden", "a ward admin gives only the roles officer, leader or admin",
                                action=action, target=target, field="role", new_role=role)
        if ward_id is not self._ANY and ward_id != user.ward_id:
            raise policy.refuse(self, user, "forbidden", "a ward admin manages only the users of her own ward",
                                action=action, target=target, field="ward")

    def set_password(self, username: str, password: str) -> None:
        """The system's password reset (CLI, ``LOAPHUONG_ADMIN_PASSWORD``): no policy, no strength rule."""
        with self.db.session() as s:
            found = s.scalar(select(User).where(User.username == username))
            if found is None:
                raise ServiceError("not_found", f"no user {username!r}", status=404)
            found.password_hash = generate_password_hash(password)
            self._audit(s, None, "user.password_reset", username, ward_id=found.ward_id)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user, if the password is hers and she is not disabled (a disabled user cannot log in). The same
        hashing work whether the username exists or not (broadcaster/logins.py)."""
        with self.db.session() as s:
            found = s.scalar(select(User).where(User.username == (username or "").strip()))
        return found if logins.check_password(found, password) else None

    def get_user(self, user_id: int) -> User | None:
        with self.db.session() as s:
            return s.get(User, user_id)

    def get_user_by_name(self, username: str) -> User | None:
        with self.db.session() as s:
            return s.scalar(select(User).where(User.username == (username or "").strip()))

    def issue_api_token(self, user: User, *, user_agent: str = "", address: str = "") -> str:
        """A new API token of ``user`` (shown once); her other tokens keep working (broadcaster/logins.py)."""
        token = logins.start(self.db, user, logins.API, user_agent=user_agent, address=address)
        with self.db.session() as s:
            self._audit(s, user, "user.api_token", user.username, ward_id=user.ward_id, via="api",
                        address=(address or "")[:64])
        return token

    def user_for_token(self, token: str) -> User | None:
        """The active user of a live (not revoked) API token; ``user.session_key`` is that token."""
        return logins.user_for(self.db, token, logins.API)

    # ------------------------------------------------------------------ zones
    def create_zone(self, code: str, name: str, kind: str = "residential_group", ward: str | None = "",
                    user: User | None = None) -> Zone:
        """A zone of a ward: the caller's own ward (a province user names one when there are several)."""
        code = (code or "").strip()
        if not proto.NODE_ID_RE.match(code):
            raise ServiceError("invalid_zone_code", "zone code: lowercase letters, digits, '-' or '_'", "code")
        if not (name or "").strip():
            raise ServiceError("required", "zone name is required", "name")
        if kind not in ZONE_KINDS:
            raise ServiceError("invalid_zone_kind", f"kind must be one of {', '.join(ZONE_KINDS)}", "kind")
        with self.db.session() as s:
            w = tenancy.ward_for_new(s, user, (ward or "").strip() or None)
            if s.scalar(select(Zone).where(Zone.code == code)):
                raise ServiceError("zone_exists", f"zone {code!r} exists", "code", 409)
            # ``ward``: the label the caller gave (a one-ward installation's free text), else the ward's code
            zone = Zone(code=code, name=name.strip(), kind=kind, ward=(ward or "").strip() or w.code, ward_id=w.id)
            s.add(zone)
            s.flush()
            self._audit(s, user, "zone.create", code, ward_id=w.id)
            return zone

    def list_zones(self, scope: tenancy.Scope | None = None) -> list[Zone]:
        with self.db.session() as s:
            q = select(Zone).options(selectinload(Zone.nodes)).order_by(Zone.code)
            return list(s.scalars(scope.restrict(q, Zone) if scope is not None else q))

    def _zone_by_ref(self, s: Session, ref: int | str | None, scope: tenancy.Scope | None = None) -> Zone | None:
        """A zone by code or id; one the scope does not see is unknown (404, and nothing is created)."""
        if ref is None or ref == "":
            return None
        zone = s.get(Zone, ref) if isinstance(ref, int) else s.scalar(select(Zone).where(Zone.code == ref))
        if zone is None and isinstance(ref, str) and ref.isdigit():
            zone = s.get(Zone, int(ref))
        if zone is None or (scope is not None and not scope.sees(zone.ward_id)):
            raise ServiceError("unknown_zone", f"no zone {ref!r}", "zone", 404)
        return zone

    # ------------------------------------------------------------------ nodes
    def register_node(
        self, node_id: str, name: str = "", zone: int | str | None = None, user: User | None = None
    ) -> tuple[Node, str]:
        """Create a node and return ``(node, token)``; the token is shown once and only its hash kept."""
        try:
            node_id = validate_node_id(node_id)
        except RegistryError as exc:
            raise ServiceError(exc.code, str(exc), "node_id") from exc
        if self.config.MQTT_USERNAME and node_id == self.config.MQTT_USERNAME:
            raise ServiceError("invalid_node_id", f"{node_id!r} is the panel's broker username", "node_id")
        token = new_token()
        with self.db.session() as s:
            # node ids are unique across the province (the broker login is the node id)
            if s.scalar(select(Node).where(Node.node_id == node_id)):
                raise ServiceError("node_exists", f"node {node_id!r} is already registered", "node_id", 409)
            z = self._zone_by_ref(s, zone, tenancy.user_scope(user))
            ward_id = z.ward_id if z is not None else tenancy.ward_for_new(s, user).id
            node = Node(node_id=node_id, name=(name or node_id).strip(), zone=z, token_hash=token_hash(token),
                        mqtt_password_hash=mosquitto_hash(token),  # broker login (broadcaster/brokerconf.py)
                        ward_id=ward_id)
            s.add(node)
            s.flush()
            self._audit(s, user, "node.register", node_id, zone=z.code if z else None, ward_id=ward_id)
            node_id_value = node.node_id
            # Before the commit: a login the broker did not confirm rolls the registration back.
            self._tell_broker(lambda: self.broker_registry.node_credentials_changed(node_id_value, token))
        self.publish_plans([node_id_value])
        return self.get_node(node_id_value), token  # type: ignore[return-value]

    def rotate_node_token(self, node_id: str, user: User | None = None) -> str:
        """Issue a new token for a node. The old one stops working at once: for media downloads with this
        commit, and on the broker (refused, its connected session closed) before it — if the broker does not
        confirm, nothing changes and ``broker_unavailable`` (503) is raised."""
        token = new_token()
        with self.db.session() as s:
            node = s.scalar(select(Node).where(Node.node_id == node_id))
            if node is None or not (tenancy.user_scope(user) or tenancy.Scope.everything()).sees(node.ward_id):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            node.token_hash = token_hash(token)
            node.mqtt_password_hash = mosquitto_hash(token)
            # A re-provisioned node starts over (seq from 1, boot counter from 1): a new event epoch,
            # and the old session number must not hide its last-wills.
            node.event_epoch = (node.event_epoch or 0) + 1
            node.last_event_seq = 0
            node.session = None
            self._audit(s, user, "node.rotate_token", node_id)
            self._tell_broker(lambda: self.broker_registry.node_credentials_changed(node_id, token))
        return token

    def delete_node(self, node_id: str, user: User | None = None) -> None:
        """Remove a node from the registry: the broker refuses its login and closes its session, its row goes,
        and its retained plan is cleared (an empty retained message). Its history (events, commands, audit)
        stays. If the broker does not confirm, nothing is deleted (``broker_unavailable``, 503)."""
        with self.db.session() as s:
            node = s.scalar(select(Node).options(selectinload(Node.zone)).where(Node.node_id == node_id))
            if node is None or not (tenancy.user_scope(user) or tenancy.Scope.everything()).sees(node.ward_id):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            zone = node.zone.code if node.zone else None
            s.delete(node)
            s.flush()
            self._audit(s, user, "node.delete", node_id, zone=zone)
            self._tell_broker(lambda: self.broker_registry.node_removed(node_id))
        self.publisher.publish(self.topics.plan(node_id), b"", qos=1, retain=True)

    def provision_broker_logins(self, credentials: dict[str, str]) -> None:
        """Give newly created nodes (``node_id → token``) their broker login; for code that creates ``Node`` rows
        itself (the CSV import). Call it inside the transaction that creates them, before the commit: a login
        the broker did not confirm raises ``broker_unavailable`` and rolls the import back."""
        for node_id, token in credentials.items():
            self._tell_broker(lambda n=node_id, t=token: self.broker_registry.node_credentials_changed(n, t))

    @staticmethod
    def _tell_broker(change: Callable[[], None]) -> None:
        try:
            change()
        except BrokerRegistryError as exc:
            log.error("broker did not confirm a login change: %s", exc)
            raise ServiceError("broker_unavailable", f"the MQTT broker did not confirm the change ({exc}); "
                               "nothing was changed, try again", status=503) from exc

    def get_node(self, node_id: str, scope: tenancy.Scope | None = None) -> Node | None:
        """The node, or None (also for a node of a ward the scope does not see)."""
        with self.db.session() as s:
            node = s.scalar(select(Node).options(selectinload(Node.zone)).where(Node.node_id == node_id))
            return node if node is not None and (scope is None or scope.sees(node.ward_id)) else None

    def list_nodes(self, scope: tenancy.Scope | None = None) -> list[Node]:
        with self.db.session() as s:
            q = select(Node).options(selectinload(Node.zone)).order_by(Node.node_id)
            return list(s.scalars(scope.restrict(q, Node) if scope is not None else q))

    def node_for_token(self, token: str) -> Node | None:
        if not token:
            return None
        with self.db.session() as s:
            return s.scalar(select(Node).where(Node.token_hash == token_hash(token)))

    # ------------------------------------------------------------------ text normalization
    def ward_abbreviations(self) -> dict[str, str]:
        with self.db.session() as s:
            return {a.abbr: a.expansion for a in s.scalars(select(Abbreviation))}

    def list_abbreviations(self) -> list[Abbreviation]:
        with self.db.session() as s:
            return list(s.scalars(select(Abbreviation).order_by(Abbreviation.abbr)))

    def set_abbreviation(self, abbr: str, expansion: str, user: User | None = None) -> Abbreviation:
        policy.require(self, user, policy.Action.ABBREVIATIONS, target=f"abbr:{abbr}"[:120])
        tenancy.require_installation_wide(self, user, "abbreviations.set")
        abbr, expansion = (abbr or "").strip(), (expansion or "").strip()
        if not abbr or len(abbr) > 40 or any(c.isspace() for c in abbr):
            raise ServiceError("invalid_abbreviation", "abbreviation: 1–40 characters, no spaces", "abbr")
        if not expansion or len(expansion) > 300 or any(c in "0123456789" for c in expansion):
            raise ServiceError("invalid_expansion", "reading: 1–300 characters, written in words (no digits)",
                               "expansion")
        with self.db.session() as s:
            row = s.scalar(select(Abbreviation).where(Abbreviation.abbr == abbr))
            if row is None:
                row = Abbreviation(abbr=abbr, expansion=expansion)
                s.add(row)
            else:
                row.expansion = expansion
            self._audit(s, user, "abbreviation.set", abbr, expansion=expansion)
            return row

    def delete_abbreviation(self, abbr: str, user: User | None = None) -> None:
        policy.require(self, user, policy.Action.ABBREVIATIONS, target=f"abbr:{abbr}"[:120])
        tenancy.require_installation_wide(self, user, "abbreviations.set")
        with self.db.session() as s:
            row = s.scalar(select(Abbreviation).where(Abbreviation.abbr == abbr))
            if row is None:
                raise ServiceError("not_found", f"no abbreviation {abbr!r}", "abbr", 404)
            s.delete(row)
            self._audit(s, user, "abbreviation.delete", abbr)

    def normalize_text(self, text: str) -> str:
        """The words the loudspeaker will say: default dictionary + this ward's own entries."""
        return normalize(text, abbreviations=self.ward_abbreviations())

    @staticmethod
    def default_abbreviations() -> dict[str, str]:
        return dict(DEFAULT_ABBREVIATIONS)

    # ------------------------------------------------------------------ announcements
    def _validate_text(self, title: str, text: str) -> tuple[str, str]:
        title = (title or "").strip()
        text = (text or "").strip()
        if not title:
            raise ServiceError("title_required", "title is required", "title")
        if len(title) > 300:
            raise ServiceError("title_too_long", "title is longer than 300 characters", "title")
        if not text:
            raise ServiceError("text_required", "announcement text is empty", "text")
        limit = self.config.MAX_TEXT_CHARS
        if len(text) > limit:
            raise ServiceError(
                "text_too_long", f"announcement text has {len(text)} characters; the limit is {limit}", "text"
            )
        return title, text

    def create_announcement(
        self, title: str, text: str, user: User | None = None, *, audio_options: dict[str, Any] | None = None,
        ward: str | None = None, render: bool = True,
    ) -> Announcement:
        """Save the text, then render speech at once (never at play time).

        ``audio_options`` overrides the ward's audio defaults for this announcement (engine, voice, speed,
        repeat, gap_ms, intro_chime, outro_chime; see broadcaster/audio_settings.py). A render failure
        keeps the draft with ``render_error`` set; the caller shows it. ``render=False`` only saves the draft:
        the web page then renders it with :meth:`render_in_background` and shows the progress.
        """
        from broadcaster.audio_settings import validate_options

        title, text = self._validate_text(title, text)
        options = validate_options(audio_options)
        with self.db.session() as s:
            w = tenancy.ward_for_new(s, user, ward)
            ann = Announcement(title=title, text=text, status="draft", created_by_id=user.id if user else None,
                               source="tts", audio_options=options or None, ward_id=w.id)
            s.add(ann)
            s.flush()
            self._audit(s, user, "announcement.create", str(ann.id), ward_id=w.id)
            ann_id = ann.id
        if not render:
            return self.get_announcement(ann_id)  # type: ignore[return-value]
        return self.render_announcement(ann_id)

    def render_announcement(self, announcement_id: int,
                            progress: Callable[[int], None] | None = None) -> Announcement:
        """Render (or find in the render cache) the announcement's audio: status ready, or draft with
        ``render_error``. Unchanged text and settings render nothing (broadcaster.audio_settings.render)."""
        from broadcaster.audio_settings import render

        return render(self, announcement_id, progress)

    #: A render whose progress has not moved for this long is taken as interrupted (the panel restarted).
    RENDER_STALE = timedelta(minutes=3)

    def render_in_background(self, announcement_id: int) -> threading.Thread | None:
        """Render in a thread of this process; ``render_progress`` (0–100) says how far it is, None when it has
        ended (``status`` ready, or ``render_error`` says why not). Speech takes seconds to a minute with gTTS:
        the page that started it shows the progress instead of waiting. One render per announcement at a time:
        None when one is already running. Each step is its own short transaction (fine on SQLite and PostgreSQL).
        """
        with _RENDERING_LOCK:
            if (id(self), announcement_id) in _RENDERING:
                return None
            _RENDERING.add((id(self), announcement_id))
        try:
            self._set_render_progress(announcement_id, 0, clear_error=True)
        except BaseException:
            with _RENDERING_LOCK:
                _RENDERING.discard((id(self), announcement_id))
            raise
        thread = threading.Thread(target=self._render_job, args=(announcement_id,), name=f"render-{announcement_id}",
                                  daemon=True)
        thread.start()
        return thread

    def _render_job(self, announcement_id: int) -> None:
        try:
            self.render_announcement(announcement_id,
                                     lambda percent: self._set_render_progress(announcement_id, percent))
        except Exception as exc:  # noqa: BLE001 — a thread has nobody to raise to: the draft keeps the reason
            log.exception("background render of announcement %s failed", announcement_id)
            reason = "busy: too many recordings are being processed; try again" if exc.__class__.__name__ == \
                "Busy" else f"{exc.__class__.__name__}: {exc}"
            try:
                with self.db.session() as s:
                    ann = s.get(Announcement, announcement_id)
                    if ann is not None:
                        ann.render_error = reason[:2000]
                        if not ann.media_sha256:
                            ann.status = "draft"
            except Exception:  # noqa: BLE001
                log.exception("could not record the render failure of announcement %s", announcement_id)
        finally:
            try:
                self._set_render_progress(announcement_id, None)
            except Exception:  # noqa: BLE001 — the database went away (shutdown): nothing more to do
                log.warning("could not clear the render progress of announcement %s", announcement_id)
            with _RENDERING_LOCK:
                _RENDERING.discard((id(self), announcement_id))

    def _set_render_progress(self, announcement_id: int, percent: int | None, *, clear_error: bool = False) -> None:
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                return
            ann.render_progress = percent
            ann.updated_at = datetime.now(UTC)
            if clear_error:
                ann.render_error = None

    def render_state(self, ann: Announcement) -> dict[str, Any]:
        """Where speech production stands: ``rendering`` with ``progress``, ``ready``, ``failed`` (with ``error``)
        or ``none`` (no audio, nothing running — e.g. interrupted by a restart)."""
        progress = ann.render_progress
        if progress is not None:
            with _RENDERING_LOCK:
                here = (id(self), ann.id) in _RENDERING
            updated = ann.updated_at or ann.created_at
            if here or (updated is not None and datetime.now(UTC) - updated < self.RENDER_STALE):
                return {"state": "rendering", "progress": max(0, min(100, progress)), "error": None}
        if ann.status == "ready" and ann.media_sha256:
            return {"state": "ready", "progress": 100, "error": None}
        if ann.render_error:
            return {"state": "failed", "progress": None, "error": ann.render_error}
        return {"state": "none", "progress": None, "error": None}

    def get_announcement(self, announcement_id: int, scope: tenancy.Scope | None = None) -> Announcement | None:
        """The announcement, or None (also for one of a ward the scope does not see)."""
        with self.db.session() as s:
            ann = s.scalar(
                select(Announcement)
                .options(selectinload(Announcement.media), selectinload(Announcement.created_by))
                .where(Announcement.id == announcement_id)
            )
            return ann if ann is not None and (scope is None or scope.sees(ann.ward_id)) else None

    def list_announcements(self, scope: tenancy.Scope | None = None, *, archived: bool | None = False,
                           search: str = "", approval: str = "") -> list[Announcement]:
        """Announcements, newest first. ``archived``: False hides the archived ("deleted") ones, True shows only
        them, None both; ``search`` finds words of the title or text (case-insensitive); ``approval`` one state."""
        with self.db.session() as s:
            q = select(Announcement).options(selectinload(Announcement.media)).order_by(Announcement.id.desc())
            if archived is not None:
                q = q.where(Announcement.archived_at.is_not(None) if archived else Announcement.archived_at.is_(None))
            if approval:
                q = q.where(func.coalesce(Announcement.approval, "draft") == approval)
            rows = list(s.scalars(scope.restrict(q, Announcement) if scope is not None else q))
        words = (search or "").casefold().split()
        if words:  # in Python: SQLite's lower() knows no Vietnamese capitals (Ư, Đ…)
            rows = [a for a in rows if all(w in f"{a.title}\n{a.text}".casefold() for w in words)]
        return rows

    def announcement_in_use(self, s: Session, announcement_id: int, now: datetime | None = None) -> list[int]:
        """Ids of the active schedules that will still play the announcement (an airing at or after ``now``)."""
        from broadcaster import scheduling

        now = now or datetime.now(UTC)
        today = self.local(now).date()  # type: ignore[union-attr]
        used: list[int] = []
        for sched in s.scalars(select(Schedule).where(Schedule.status == "active", Schedule.archived_at.is_(None))):
            if announcement_id not in scheduling.announcement_ids(scheduling.programme(sched)):
                continue
            if sched.expires_at is not None and sched.expires_at <= now:
                continue
            if sched.recurrence:
                until = (sched.recurrence or {}).get("until")
                if until and str(until)[:10] < today.isoformat():
                    continue
            elif sched.start_at < now:
                continue
            used.append(sched.id)
        return used

    def archive_announcement(self, announcement_id: int, user: User | None = None) -> Announcement:
        """"Delete" with undo: the announcement is archived (hidden from the lists, never in a plan, cannot be
        scheduled) until restored. Refused (409 ``announcement_in_use``) while an active schedule will still play
        it: cancel that schedule first, so nothing silently stops playing. Its author or a leader may do it."""
        self._archive_target(announcement_id, user)
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            assert ann is not None
            if ann.archived_at is not None:
                return self.get_announcement(announcement_id)  # type: ignore[return-value]
            used = self.announcement_in_use(s, announcement_id)
            if used:
                raise ServiceError("announcement_in_use", f"schedule(s) {', '.join(map(str, used))} will still play "
                                   "this announcement: cancel them first", "announcement_id", 409)
            ann.archived_at = datetime.now(UTC)
            ann.archived_by_id = user.id if user else None
            self._audit(s, user, "announcement.archive", str(announcement_id), ward_id=ann.ward_id)
        return self.get_announcement(announcement_id)  # type: ignore[return-value]

    def restore_announcement(self, announcement_id: int, user: User | None = None) -> Announcement:
        """Undo an archive: the announcement is back in the lists, as it was (approval unchanged)."""
        self._archive_target(announcement_id, user)
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            assert ann is not None
            if ann.archived_at is not None:
                ann.archived_at = None
                ann.archived_by_id = None
                self._audit(s, user, "announcement.restore", str(announcement_id), ward_id=ann.ward_id)
        return self.get_announcement(announcement_id)  # type: ignore[return-value]

    def _archive_target(self, announcement_id: int, user: User | None) -> None:
        """404 for an unknown announcement (or another ward's), then the release policy (author or leader)."""
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                raise ServiceError("not_found", "no such announcement", status=404)
            tenancy.check_user(user, ann.ward_id, "announcement")
            author = ann.created_by_id
        policy.announcement_archive_check(self, user, author, announcement_id)

    # ------------------------------------------------------------------ schedules
    def create_schedule(
        self,
        announcement_id: int,
        zones: Iterable[int | str],
        start_at: datetime,
        priority: str = "normal",
        user: User | None = None,
        now: datetime | None = None,
        conflict: str | None = None,
    ) -> Schedule:
        """A one-off play of one announcement (see broadcaster.scheduling.create_schedule for the rest)."""
        from broadcaster import scheduling

        spec = scheduling.ScheduleSpec(zones=list(zones), announcement_id=announcement_id, start_at=start_at,
                                       priority=priority, conflict=conflict)
        return scheduling.create_schedule(self, spec, user, now)

    def cancel_schedule(self, schedule_id: int, user: User | None = None) -> Schedule:
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            sched.status = "cancelled"
            self._audit(s, user, "schedule.cancel", str(schedule_id))
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def archive_schedule(self, schedule_id: int, user: User | None = None) -> Schedule:
        """"Xóa" with undo: the schedule leaves every plan at once and every list; :meth:`restore_schedule`
        brings it back. The same permission as cancelling it (release policy)."""
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            if sched.archived_at is None:
                sched.archived_at = datetime.now(UTC)
                sched.archived_by_id = user.id if user else None
                self._audit(s, user, "schedule.archive", str(schedule_id), ward_id=sched.ward_id)
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def restore_schedule(self, schedule_id: int, user: User | None = None, now: datetime | None = None) -> Schedule:
        """Undo of :meth:`archive_schedule`; refused (409 ``schedule_passed``) when nothing of it can play any
        more (a one-off whose time has gone, a rule with no airing left)."""
        from broadcaster import scheduling

        now = now or datetime.now(UTC)
        self._schedule_change_target(schedule_id, user)
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            assert sched is not None
            if sched.archived_at is None:
                raise ServiceError("not_archived", "the schedule is not deleted", status=409)
            try:
                left = scheduling.airings(sched, self.config.TIMEZONE, now,
                                          now + timedelta(days=scheduling.CHECK_DAYS))
            except ServiceError:
                left = []
            if not left or sched.status != "active":
                raise ServiceError("schedule_passed", "its time has passed: schedule it again", status=409)
            sched.archived_at, sched.archived_by_id = None, None
            self._audit(s, user, "schedule.restore", str(schedule_id), ward_id=sched.ward_id)
            affected = self._nodes_of_schedule(s, sched)
        self.publish_plans(affected)
        return self.get_schedule(schedule_id)  # type: ignore[return-value]

    def _schedule_change_target(self, schedule_id: int, user: User | None) -> None:
        """404 for an unknown schedule (or another ward's), then the release policy: whoever may cancel it may
        also delete (archive) and restore it."""
        with self.db.session() as s:
            sched = s.get(Schedule, schedule_id)
            if sched is None:
                raise ServiceError("not_found", "no such schedule", status=404)
            tenancy.check_user(user, sched.ward_id, "schedule")
            created_by = sched.created_by_id
        policy.schedule_cancel_check(self, user, created_by, schedule_id)

    @staticmethod
    def _nodes_of_schedule(s: Session, sched: Schedule) -> list[str]:
        """The nodes of the schedule's zones: their plans change with it."""
        zone_ids = [z.id for z in sched.zones]
        return list(s.scalars(select(Node.node_id).where(Node.zone_id.in_(zone_ids))))

    def get_schedule(self, schedule_id: int, scope: tenancy.Scope | None = None) -> Schedule | None:
        with self.db.session() as s:
            sched = s.scalar(
                select(Schedule)
                .options(selectinload(Schedule.zones), selectinload(Schedule.announcement))
                .where(Schedule.id == schedule_id)
            )
            return sched if sched is not None and (scope is None or scope.sees(sched.ward_id)) else None

    def list_schedules(self, scope: tenancy.Scope | None = None) -> list[Schedule]:
        with self.db.session() as s:
            q = (select(Schedule).options(selectinload(Schedule.zones), selectinload(Schedule.announcement))
                 .where(Schedule.archived_at.is_(None)).order_by(Schedule.start_at.desc()))
            return list(s.scalars(scope.restrict(q, Schedule) if scope is not None else q))

    # ------------------------------------------------------------------ plans
    def media_url(self, sha256: str) -> str:
        return f"{self.config.public_url}/media/{sha256}.mp3"

    def plan_for(self, s: Session, node: Node, now: datetime) -> list[dict[str, Any]]:
        """The node's plan items: audible entries of its zone's timeline (broadcaster.scheduling)."""
        from broadcaster import scheduling

        return scheduling.node_plan(self, s, node.zone_id, now).items

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
        with self._plan_lock, self.publishing():
            return self._publish_plans_locked(node_ids, force, now)

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Mark a fleet-wide publication (plans, an emergency's commands) in progress; see ``publication_idle``."""
        with self._publishing_lock:
            self._publishing += 1
            self.publication_idle.clear()
        try:
            yield
        finally:
            with self._publishing_lock:
                self._publishing -= 1
                if self._publishing == 0:
                    self.publication_idle.set()

    def _signed_plan(self, node_id: str, items: list[dict[str, Any]], version: int, now: datetime,
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
        from broadcaster import scheduling

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
        per_zone: dict[int | None, scheduling.NodePlan] = {}  # every node of a zone has the same items
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
                    node_plan = scheduling.node_plan(self, s, node.zone_id, now, per_zone)
                    items = node_plan.items
                    digest = digests.get(id(node_plan))
                    if digest is None:
                        digest = digests[id(node_plan)] = plan_hash(items, node_plan.extra)
                    if not force and node.plan_hash is not None and digest == node.plan_hash:
                        continue
                    version = next_version(node.plan_version or 0, now)
                    sent_announcements.update(node_plan.announcement_ids)
                    # stored and published byte-identical
                    wire = self._signed_plan(node.node_id, items, version, now, node_plan.extra)
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
                            Announcement.id.in_(sent_announcements), Announcement.approval == "approved")):
                        ann.approval = "published"
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

    # ------------------------------------------------------------------ commands
    def send_command(
        self, node_id: str, name: str, args: dict[str, Any] | None = None, user: User | None = None
    ) -> CommandRecord:
        if name not in {c.value for c in proto.CommandName}:
            raise ServiceError("unknown_command", f"unknown command {name!r}", "name")
        now = datetime.now(UTC)
        with self.db.session() as s:
            if not s.scalar(select(Node).where(Node.node_id == node_id)):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            record = CommandRecord(
                id=uuid.uuid4().hex,
                node_id=node_id,
                name=name,
                args=args or {},
                issued_at=now,
                expires_at=now + timedelta(seconds=self.config.COMMAND_TTL_S),
                issued_by_id=user.id if user else None,
            )
            payload = {
                "type": "command",
                "protocol": 1,
                "node_id": node_id,
                "id": record.id,
                "name": name,
                "args": args or {},
                "issued_at": proto.format_ts(now),
                "expires_at": proto.format_ts(record.expires_at),
            }
            # Signed (and sized) before the record is committed: a payload that cannot go out (a float, over
            # the 256 KiB a node accepts) leaves no pending command behind.
            try:
                wire = proto.encode(proto.sign_payload(payload, self.signing_key))
            except proto.ProtocolError as exc:  # e.g. a float: the wire has integers only (protocol §4)
                raise ServiceError("invalid_field", f"args: {exc}", "args") from exc
            if len(wire) > proto.MAX_PAYLOAD_BYTES:
                raise ServiceError("too_large", f"the command is {len(wire)} bytes, over the "
                                   f"{proto.MAX_PAYLOAD_BYTES} a node accepts", "args", 413)
            s.add(record)
            self._audit(s, user, "command.send", node_id, name=name, args=args or {})
        self.publisher.publish(self.topics.cmd(node_id), wire, qos=1, retain=False)
        return record

    def list_commands(self, node_id: str, limit: int = 50) -> list[CommandRecord]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(CommandRecord)
                    .where(CommandRecord.node_id == node_id)
                    .order_by(CommandRecord.issued_at.desc())
                    .limit(limit)
                )
            )

    # ------------------------------------------------------------------ ingest (node → panel)
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
        for topic, payload in messages:
            message = self._decode(topic, payload)
            if isinstance(message, proto.Event):
                events.append(message)
            elif isinstance(message, proto.Ack):
                acks.append(message)
            elif isinstance(message, proto.Status):
                statuses.append(message)
        for store, run in ((self._ingest_events, events), (self._ingest_acks, acks),
                           (self._ingest_statuses, statuses)):
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
        from broadcaster import fleet  # presence, heartbeat, clock offset (broadcaster/fleet.py)

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

    def _ingest_acks(self, acks: list[proto.Ack]) -> None:
        """Mark commands acked (one transaction; an emergency to every node is one ack per node).

        The first final outcome (ok / error / rejected) of a command is kept: a later ack for the same command
        — the node answering a QoS 1 redelivery or a replay of it (docs/protocol.md §9) — never overwrites it.
        One that disagrees with the recorded outcome (a non-conforming node) is logged and ignored. A late ack
        still turns ``pending`` or ``timed_out`` (see ``fleet.expire_commands``) into its outcome."""
        final = ("ok", "error", "rejected")
        with self.db.session() as s:
            records = {r.id: r for r in s.scalars(
                select(CommandRecord).where(CommandRecord.id.in_({a.command_id for a in acks})))}
            for ack in acks:
                record = records.get(ack.command_id)
                if record is None or record.node_id != ack.node_id:
                    log.warning("ack for unknown command %s from %s", ack.command_id, ack.node_id)
                    continue
                if record.status in final:
                    if (record.status, record.error) != (ack.status.value, ack.error):
                        log.warning("command %s: %s answered it again with %s (%s); kept the first outcome %s (%s)",
                                    record.id, ack.node_id, ack.status.value, ack.error, record.status,
                                    record.error)
                    continue
                record.status = ack.status.value
                record.acked_at = proto.parse_ts(ack.at)
                record.error = ack.error[:500] if ack.error else ack.error  # the column's length (PostgreSQL)

    # ------------------------------------------------------------------ proof of play
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
                    "title": titles.get(ev.schedule_id, ""),
                    "sha256": ev.sha256,
                    "scheduled_start": ev.scheduled_start,
                    "actual_start": None,
                    "offset_ms": None,
                    "result": "scheduled",
                    "reason": None,
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
            row["scheduled_start"] = row["scheduled_start"] or ev.scheduled_start
        out = sorted(rows.values(), key=lambda r: (r["scheduled_start"] or datetime.min.replace(tzinfo=UTC)),
                     reverse=True)
        return out[:limit]

    def local(self, moment: datetime | None) -> datetime | None:
        return to_local(moment, self.config.TIMEZONE) if moment else None
