"""Logins: web sessions and API tokens as revocable rows of ``login_sessions``, passwords checked in constant
work, and the one place that decides where a login may redirect to.

- A web login creates a row with a random key (256 bits); ``User.get_id()`` returns that key, so it is what
  Flask-Login keeps in the session cookie and the remember-me cookie. Logging out revokes the row: a replayed
  session or remember-me cookie then loads nobody. Web rows expire after ``REMEMBER_DAYS`` (≤ 30).
- An API token is a row of kind ``api``; every ``POST /api/v1/auth/token`` adds one (the previous ones keep
  working) until it is revoked (``DELETE /api/v1/auth/token[s/<id>]``). Only SHA-256 hashes are stored.
- Disabling a user, resetting her password or changing her role revokes all her rows (``revoke_all``, called by
  ``PanelService.update_user``); her own password change keeps only the login she made it from.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from broadcaster.models import LoginSession, User
from devices.registry import new_token, token_hash

WEB, API = "web", "api"
MAX_REMEMBER_DAYS = 30
#: last_seen_at is written at most this often per login (not one write per request).
TOUCH_EVERY = timedelta(seconds=60)
#: What browsers drop from a URL before they parse it (WHATWG URL: C0 controls and space, tab/CR/LF anywhere).
_STRIPPED = set(string.whitespace) | {chr(c) for c in range(0x20)} | {"\x7f"}


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- redirects
def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path of this site, else None (the caller then goes to the dashboard).

    Browsers strip tabs, CR and LF from a URL (``/\\t/evil.example`` becomes ``//evil.example``) and read ``\\`` as
    ``/``, so the check runs on the target with every ASCII control character and whitespace removed, and that
    cleaned value is what is returned: a single leading ``/``, no backslash, no scheme, no host."""
    if not target:
        return None
    cleaned = "".join(c for c in target if c not in _STRIPPED)
    if not cleaned.startswith("/") or cleaned.startswith("//") or "\\" in cleaned:
        return None
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return None
    return cleaned


# ---------------------------------------------------------------------------------------------- passwords
def new_password() -> str:
    """A random password the password rules always accept (a letter and something else, 14 characters):
    ``token_urlsafe`` alone is all letters one time in twelve."""
    while True:
        password = secrets.token_urlsafe(9) + secrets.choice("23456789")
        if any("a" <= c.lower() <= "z" for c in password):
            return password


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash of a random password, made by the same method as the users' hashes: an unknown username costs the
    same hashing work as a known one, so the answer's timing does not tell which usernames exist."""
    return generate_password_hash(secrets.token_urlsafe(24))


def check_password(user: User | None, password: str) -> bool:
    """True if ``password`` is ``user``'s and she is active. The hash is always verified (a dummy one for an
    unknown user), also for a disabled user."""
    ok = check_password_hash(user.password_hash if user is not None else dummy_hash(), password or "")
    return bool(ok and user is not None and user.active)


# ---------------------------------------------------------------------------------------------- sessions
def start(db, user: User, kind: str, *, user_agent: str = "", address: str = "",
          days: int | None = None) -> str:
    """A new login of ``user``: the secret (shown once: the API token, or the web session's key). ``user`` is
    marked as loaded through it (``user.session_key``)."""
    key = new_token()
    now = _now()
    with db.session() as s:
        s.add(LoginSession(kind=kind, secret_hash=token_hash(key), user_id=user.id, created_at=now,
                           expires_at=now + timedelta(days=days) if days else None, last_seen_at=now,
                           user_agent=(user_agent or "")[:200], address=(address or "")[:64]))
    user.session_key = key
    return key


def user_for(db, key: str | None, kind: str) -> User | None:
    """The active user whose live (not revoked, not expired) login of ``kind`` has this secret, else None."""
    if not key:
        return None
    now = _now()
    with db.session() as s:
        found = s.execute(select(LoginSession, User).join(User, User.id == LoginSession.user_id)
                          .where(LoginSession.secret_hash == token_hash(key), LoginSession.kind == kind)).first()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now) or not user.active:
            return None
        if row.last_seen_at is None or now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
    user.session_key = key
    return user


def current_id(db, key: str | None) -> int | None:
    """The row id of the login with this secret."""
    if not key:
        return None
    with db.session() as s:
        return s.scalar(select(LoginSession.id).where(LoginSession.secret_hash == token_hash(key)))


def revoke_key(db, key: str | None) -> bool:
    """Revoke the login with this secret (logout). True if it was live."""
    if not key:
        return False
    with db.session() as s:
        done = s.execute(update(LoginSession).where(LoginSession.secret_hash == token_hash(key),
                                                    LoginSession.revoked_at.is_(None)).values(revoked_at=_now()))
        return bool(done.rowcount)


def revoke_own(db, user: User, login_id: int, kind: str | None = None) -> bool:
    """Revoke one of ``user``'s own live logins by its id; False if it is not hers, unknown or already revoked."""
    with db.session() as s:
        q = update(LoginSession).where(LoginSession.id == login_id, LoginSession.user_id == user.id,
                                       LoginSession.revoked_at.is_(None))
        if kind:
            q = q.where(LoginSession.kind == kind)
        return bool(s.execute(q.values(revoked_at=_now())).rowcount)


def revoke_all(s: Session, user_id: int, *, keep_key: str | None = None) -> int:
    """Revoke every live login (web sessions and API tokens) of a user, in the caller's transaction; but
    ``keep_key``'s (the login a user changes her own password from)."""
    q = update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
    if keep_key:
        q = q.where(LoginSession.secret_hash != token_hash(keep_key))
    return s.execute(q.values(revoked_at=_now())).rowcount or 0


def live(db, user: User, kind: str | None = None) -> list[LoginSession]:
    """``user``'s live logins, newest first."""
    now = _now()
    with db.session() as s:
        q = select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        if kind:
            q = q.where(LoginSession.kind == kind)
        rows = s.scalars(q.order_by(LoginSession.id.desc())).all()
    return [r for r in rows if r.expires_at is None or r.expires_at > now]


# ---------------------------------------------------------------------------------------------- audit
def audit(service, action: str, username: str, user: User | None = None, **detail) -> None:
    """An audit entry about a login of ``username`` (success, failure, lockout, logout). A failure belongs to the
    ward of the user it names, if she exists; it never records a password."""
    username = (username or "").strip()
    with service.db.session() as s:
        ward_id = user.ward_id if user is not None else s.scalar(select(User.ward_id)
                                                                 .where(User.username == username))
        service.audit(s, user, action, username[:120], ward_id=ward_id, **detail)  # noqa: SLF001
