"""Stream sources the ward may relay (e.g. VOV1): a list an admin keeps (name + URL).

A programme's stream item names a source (``{"kind": "stream", "source": "vov1", "duration_ms": …}``); an
officer picks one and never types a URL (release policy R1, broadcaster/policy.py). The plan builder takes the
URL from the source when it builds a plan, so a source an admin removes leaves every plan at once (the
schedules that relay it wait, shown as awaiting approval, until it is back).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Node, Schedule, StreamSource, User
from devices.protocol import NODE_ID_RE

MAX_URL = 2000


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if not url.startswith(("http://", "https://")) or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise ServiceError("invalid_stream_url", "stream url must be http(s)://… (no spaces, ≤ 2000 characters)",
                           "url")
    return url


def source_json(src: StreamSource) -> dict[str, Any]:
    return {"id": src.id, "code": src.code, "name": src.name, "url": src.url, "active": bool(src.active)}


def list_sources(service: PanelCore, *, include_inactive: bool = False) -> list[StreamSource]:
    with service.db.session() as s:
        q = select(StreamSource).order_by(StreamSource.name)
        if not include_inactive:
            q = q.where(StreamSource.active)
        return list(s.scalars(q))


def create_source(service: PanelCore, code: str, name: str, url: str, user: User | None) -> StreamSource:
    policy.require(service, user, policy.Action.STREAM_SOURCES, target=f"stream:{code}")
    tenancy.require_installation_wide(service, user, "stream_sources.manage")
    code = (code or "").strip().lower()
    if not NODE_ID_RE.match(code):
        raise ServiceError("invalid_source_code", "code: lowercase letters, digits, '-' or '_'", "code")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ServiceError("required", "name is required (≤ 200 characters)", "name")
    url = _check_url(url)
    with service.db.session() as s:
        existing = s.scalar(select(StreamSource).where(StreamSource.code == code))
        if existing is not None and existing.active:
            raise ServiceError("source_exists", f"stream source {code!r} exists", "code", 409)
        if existing is not None:  # re-adding a removed source brings it (and its schedules) back
            existing.name, existing.url, existing.active = name, url, True
            src = existing
        else:
            src = StreamSource(code=code, name=name, url=url, created_by_id=user.id if user else None)
            s.add(src)
        s.flush()
        service.audit(s, user, "stream_source.create", code, name=name, url=url)
        source_id = src.id
    _republish(service, source_id)
    return get_source(service, source_id)  # type: ignore[return-value]


def get_source(service: PanelCore, source_id: int) -> StreamSource | None:
    with service.db.session() as s:
        return s.get(StreamSource, source_id)


def remove_source(service: PanelCore, ref: int | str, user: User | None) -> StreamSource:
    """Take a source off the list: every plan relaying it is rebuilt without it."""
    policy.require(service, user, policy.Action.STREAM_SOURCES, target=f"stream:{ref}")
    tenancy.require_installation_wide(service, user, "stream_sources.manage")
    with service.db.session() as s:
        src = resolve(s, ref, active_only=False)
        src.active = False
        service.audit(s, user, "stream_source.remove", src.code)
        source_id = src.id
    _republish(service, source_id)
    return get_source(service, source_id)  # type: ignore[return-value]


def resolve(s: Session, ref: int | str | None, *, active_only: bool = True, field: str = "source") -> StreamSource:
    """A source by id or code (404 ``unknown_stream_source`` when missing or removed)."""
    src = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        src = s.get(StreamSource, ref)
    elif isinstance(ref, str) and ref.strip():
        src = s.scalar(select(StreamSource).where(StreamSource.code == ref.strip().lower()))
        if src is None and ref.strip().isdigit():
            src = s.get(StreamSource, int(ref.strip()))
    if src is None or (active_only and not src.active):
        raise ServiceError("unknown_stream_source", "choose a stream source from the ward's list", field, 404)
    return src


def resolve_items(service: PanelCore, s: Session, items: list[dict[str, Any]], user: User | None) -> None:
    """Stream items → the admin's sources (in place). A typed URL is accepted only if it is a listed source's."""
    for n, item in enumerate(items):
        if item.get("kind") != "stream":
            continue
        where = f"items.{n}.source"
        if item.get("source") not in (None, ""):
            src = resolve(s, item["source"], field=where)
        else:
            url = item.get("url")
            src = s.scalar(select(StreamSource).where(StreamSource.url == url, StreamSource.active)) if url else None
            if src is None:
                raise policy.refuse(service, user, "stream_source_required",
                                    "relay only a stream source from the ward's list (an admin adds sources)",
                                    action=policy.Action.SCHEDULE_CREATE.value, target="schedule:new",
                                    field=where, status=403, url=str(url)[:200])  # R1: the policy refuses it
        item.pop("source", None)
        item["source_id"] = src.id
        item["url"] = src.url
        item["title"] = item.get("title") or src.name


def _republish(service: PanelCore, source_id: int) -> None:
    with service.db.session() as s:
        zone_ids: set[int] = set()
        for sched in s.scalars(select(Schedule).where(Schedule.status == "active", Schedule.items.is_not(None))):
            if any(i.get("kind") == "stream" and i.get("source_id") == source_id for i in sched.items or []):
                zone_ids.update(z.id for z in sched.zones)
        affected = list(s.scalars(select(Node.node_id).where(Node.zone_id.in_(zone_ids)))) if zone_ids else []
    if affected:
        service.publish_plans(affected)
