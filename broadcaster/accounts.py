"""Users and their logins: create, change, disable, authenticate, API tokens (users/auth concern).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from broadcaster import logins, policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    User,
    Ward,
)

log = logging.getLogger(__name__)

ROLES = tenancy.ALL_ROLES  # every role (broadcaster/tenancy.py)


def check_password_strength(password: str | None, username: str = "", field: str = "password") -> None:
    """Raise ServiceError ``weak_password`` (on ``field``) unless ``password`` follows the password rules."""
    password = password or ""
    if len(password) < 8 or len(password) > 200:
        raise ServiceError("weak_password", "password must have 8 to 200 characters", field)
    # a letter and something else (a digit, a sign, a Vietnamese letter): the same rule as the API document
    if (password.strip().lower() == username.strip().lower() or not re.search(r"[A-Za-z]", password)
            or not re.search(r"[^A-Za-z]", password)):
        raise ServiceError("weak_password", "password is too easy to guess", field)


class Accounts(PanelCore):
    """The users part of the panel's services.

    Who may manage whom: the release policy (``users.manage``) says who manages users at all; the tenancy says
    where."""

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
        check_password_strength(password, username)
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
            self.audit(s, user, "user.create", username, ward_id=ward_id, role=role)
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
                check_password_strength(password, found.username)
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
                self.audit(s, user, "user.role", found.username, ward_id=new_ward, old_role=before["role"],
                            role=new_role, old_ward_id=before["ward_id"])
            if display_name is not None and display_name.strip() and display_name.strip() != found.display_name:
                found.display_name = display_name.strip()[:200]
                self.audit(s, user, "user.rename", found.username, ward_id=new_ward)
            if disabled is not None and bool(disabled) == bool(found.active):
                found.active = not disabled
                if disabled:
                    logins.revoke_all(s, found.id)  # her sessions and API tokens stop working at once
                self.audit(s, user, "user.disable" if disabled else "user.enable", found.username,
                            ward_id=new_ward)
            if password is not None:
                found.password_hash = generate_password_hash(password)
                # reset by an admin: every session and token of hers ends (her own reset keeps this login)
                logins.revoke_all(s, found.id, keep_key=user.session_key if user is not None and
                                  user.id == found.id else None)
                self.audit(s, user, "user.password_reset", found.username, ward_id=new_ward)
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
                self.audit(s, me, "user.password_change_refused", me.username, ward_id=me.ward_id)
                s.commit()
                raise ServiceError("wrong_password", "the current password is wrong", "old_password", 403)
            check_password_strength(new_password, me.username, field="new_password")
            if check_password_hash(me.password_hash, new_password):
                raise ServiceError("password_unchanged", "the new password is the current one", "new_password")
            me.password_hash = generate_password_hash(new_password)
            logins.revoke_all(s, me.id, keep_key=user.session_key)  # her other sessions and tokens end
            self.audit(s, me, "user.password_change", me.username, ward_id=me.ward_id)

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
            self.audit(s, None, "user.password_reset", username, ward_id=found.ward_id)

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
            self.audit(s, user, "user.api_token", user.username, ward_id=user.ward_id, via="api",
                        address=(address or "")[:64])
        return token

    def user_for_token(self, token: str) -> User | None:
        """The active user of a live (not revoked) API token; ``user.session_key`` is that token."""
        return logins.user_for(self.db, token, logins.API)
