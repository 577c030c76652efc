"""Emergency alerts in OASIS CAP 1.2 (issue 17 §5): every alert exported, alerts taken from trusted sources.

**Export.** :func:`alert_document` says one alert (or drill, or cancellation) as a CAP 1.2 ``<alert>`` (valid against
the vendored OASIS schema, ``broadcaster/schemas/CAP-v1.2.xsd``): identifier ``loaphuong-<ward>-<alert id>``, sender
``<ward>@<host of PUBLIC_URL>``, ``sent`` in local time with its offset, status ``Actual`` / ``Exercise`` (a drill),
msgType ``Alert`` / ``Cancel`` (with ``references`` to the cancelled alert), scope ``Public``, one ``info`` in
``vi-VN``: category (the imported message's, else ``Safety``), event and headline (the title), urgency
``Immediate``, severity ``Severe``, certainty ``Observed`` (an emergency of the panel sounds now), description (the
spoken text), one ``area`` (zone names; a ``geocode`` ZONE per zone and WARD per ward). :func:`feed_document` is a
ward's (or the province's) Atom feed whose entries carry those alerts: only alerts that went out (released or later
cancelled) and their cancellations; drills are in it as ``Exercise``; nothing waiting or discarded.

**Import.** :func:`receive` takes a CAP 1.2 document from a source an admin listed (:func:`create_source`), machine
to machine: no user token; the request carries ``X-CAP-Signature: sha256=<hex>`` — HMAC-SHA256 of the exact body
with the source's shared key — and optionally ``X-CAP-Source: <name>`` (without it every source's key is tried).
In this order, and each refusal audited (``policy.refused``, action ``cap.receive``) with nothing else stored:
no signature 401, unknown source 403, wrong signature 401, not well-formed XML (or a DTD/entities: defusedxml) 400,
not valid against the schema 400, status Test/System/Draft or msgType Ack/Error 422, a sender + identifier taken
before 409, an area that names no zone with loudspeakers 422. Areas name zones by ``geocode`` (valueName ``ZONE``:
a zone code; ``WARD``: every zone of that ward), by ``areaDesc`` (zone names or codes, comma-separated, or a ward's
name or code), by ``polygon`` / ``circle`` (zones with a loudspeaker whose lat/lon is inside). A source of a ward
names only that ward's zones; a province source any ward's (one alert per ward). Only the province (a province admin;
the admin of a one-ward installation) marks a source automatic. The alert is a draft waiting for
two people (:func:`broadcaster.emergency.create_from_source`) — or, from a source the province marked
``automatic``, released at once to exactly those zones. ``Exercise`` makes a drill; ``Cancel`` with ``references``
discards the source's own alert that has not gone out (a released one is cancelled by two people on the panel:
409); ``Update`` is taken as a new alert.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
import xmlschema
from defusedxml import DefusedXmlException
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from broadcaster import emergency, policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Alert, Announcement, CapMessage, CapSource, User, Ward, Zone, alert_wards

log = logging.getLogger(__name__)

NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/cap+xml"
#: Body media types ``POST /api/v1/cap`` takes.
ACCEPTED_TYPES = ("application/cap+xml", "application/xml", "text/xml")
SCHEMA_PATH = Path(__file__).parent / "schemas" / "CAP-v1.2.xsd"
SIGNATURE_HEADER = "X-CAP-Signature"
SOURCE_HEADER = "X-CAP-Source"
#: The shared key itself, for a sender that cannot sign (HTTPS only in production).
KEY_HEADER = "X-CAP-Key"
#: The prefix of the signature header's value (GitHub-webhook style); a bare hex digest is taken too.
SIGNATURE_PREFIX = "sha256="
#: Language of the exported ``info`` (the panel speaks Vietnamese).
LANGUAGE = "vi-VN"
#: Categories CAP 1.2 allows (an imported message's first one is kept for its export).
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
              "CBRNE", "Other")
#: ``geocode`` valueNames the panel understands (case-insensitive).
GEOCODE_ZONE = "ZONE"
GEOCODE_WARD = "WARD"
FEED_SIZE = 100
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MIN_KEY = 16


@cache
def schema() -> xmlschema.XMLSchema:
    """The OASIS CAP 1.2 schema (targetNamespace urn:oasis:names:tc:emergency:cap:1.2), loaded once."""
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


# ------------------------------------------------------------------------------------------- sources
def source_json(src: CapSource, ward_codes: dict[int, str]) -> dict[str, Any]:
    """A source as the API shows it: never its key."""
    return {"id": src.id, "name": src.name, "automatic": bool(src.automatic),
            "ward": ward_codes.get(src.ward_id) if src.ward_id is not None else None,
            "created_at": src.created_at}


def create_source(service: PanelCore, name: str, key: str, automatic: bool, user: User | None,
                  ward: str | None = None) -> CapSource:
    """A trusted source (an admin of a ward: for her ward; a province admin: a named ward or every ward). Only the
    province (a province admin) marks a source automatic (``cap_sources.automatic``)."""
    policy.require(service, user, policy.Action.CAP_SOURCES, target=f"cap_source:{name}"[:120])
    if automatic:
        _require_automatic(service, user, f"cap_source:{name}"[:120])
    assert user is not None
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ServiceError("invalid_cap_source_name", "name: letters, digits, space, '.', '_' or '-' (≤ 100)", "name")
    if not key or len(key) < MIN_KEY or len(key) > 200:
        raise ServiceError("cap_key_too_short", f"the shared key must be {MIN_KEY}–200 characters", "key")
    with service.db.session() as s:
        ward_id: int | None = None
        if not tenancy.is_province(user) or ward not in (None, ""):
            ward_id = tenancy.ward_for_new(s, user, ward).id
        if s.scalar(select(CapSource.id).where(CapSource.name == name)) is not None:
            raise ServiceError("cap_source_exists", f"a source named {name!r} exists", "name", 409)
        src = CapSource(name=name, key=key, automatic=bool(automatic), ward_id=ward_id, created_by_id=user.id)
        s.add(src)
        s.flush()
        service.audit(s, user, "cap.source.create", f"cap_source:{src.id}", ward_id=ward_id, name=name,
                      automatic=bool(automatic))
        s.expunge(src)
        return src


def _require_automatic(service: PanelCore, user: User | None, target: str) -> None:
    """The province marks a source automatic: a province admin, or the admin of a one-ward installation (whose
    ward is all there is), like the other installation-wide settings."""
    policy.require(service, user, policy.Action.CAP_AUTOMATIC, target=target, field="automatic")
    tenancy.require_installation_wide(service, user, policy.Action.CAP_AUTOMATIC.value)


def list_sources(service: PanelCore, user: User | None) -> list[CapSource]:
    """The sources an admin keeps: her ward's (and the province-wide ones she cannot change), or every one."""
    policy.require(service, user, policy.Action.CAP_SOURCES, target="cap_sources")
    with service.db.session() as s:
        q_ = select(CapSource).order_by(CapSource.name)
        if user is not None and not tenancy.is_province(user):
            q_ = q_.where(or_(CapSource.ward_id == user.ward_id, CapSource.ward_id.is_(None)))
        return list(s.scalars(q_))


def find_source(s: Session, ref: int | str) -> CapSource | None:
    """A source by id (digits) or by name."""
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return s.get(CapSource, int(text))
    return s.scalar(select(CapSource).where(CapSource.name == text)) if NAME_RE.match(text) else None


def delete_source(service: PanelCore, ref: int | str, user: User | None) -> None:
    """Remove a source (by id or name): its next message is refused (what it sent stays, with its alerts)."""
    policy.require(service, user, policy.Action.CAP_SOURCES, target=f"cap_source:{ref}"[:120])
    with service.db.session() as s:
        src = find_source(s, ref)
        if src is None:
            raise ServiceError("not_found", "no such CAP source", status=404)
        source_id = src.id
        tenancy.check_user(user, src.ward_id, "CAP source")  # a province-wide source: province people only
        automatic = src.automatic
    if automatic:
        _require_automatic(service, user, f"cap_source:{source_id}")
    with service.db.session() as s:
        src = s.get(CapSource, source_id)
        if src is None:
            raise ServiceError("not_found", "no such CAP source", status=404)
        for msg in s.scalars(select(CapMessage).where(CapMessage.source_id == source_id)):
            msg.source_id = None
        service.audit(s, user, "cap.source.delete", f"cap_source:{source_id}", ward_id=src.ward_id, name=src.name)
        s.delete(src)


def ward_codes(service: PanelCore, ids: set[int | None]) -> dict[int, str]:
    with service.db.session() as s:
        return tenancy.ward_codes(s, ids)


def sign(key: str, body: bytes) -> str:
    """The ``X-CAP-Signature`` value of ``body`` for a source's ``key``: ``sha256=<hex HMAC-SHA256>``."""
    return SIGNATURE_PREFIX + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


# -------------------------------------------------------------------------------------------- import
@dataclass
class Received:
    """What :func:`receive` did: the alerts it made (or the one a Cancel discarded)."""

    alerts: list[Alert]
    created: bool  # False: a Cancel that discarded an earlier alert


@dataclass
class _Message:
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    references: list[tuple[str, str]] = field(default_factory=list)
    category: str = "Safety"
    title: str = ""
    text: str = ""
    areas: list[ET.Element] = field(default_factory=list)


def receive(service: PanelCore, body: bytes, signature: str | None, source_name: str | None,
            media_type: str = CONTENT_TYPE, key: str | None = None) -> Received:
    """Take a CAP 1.2 document from a trusted source (see the module's docstring); every refusal audited."""
    # what the audit entry quotes: printable only (a NUL or a lone surrogate is stored by no database)
    context: dict[str, Any] = {"source": "".join(c if c.isprintable() else "?" for c in (source_name or "")[:100])}
    try:
        if media_type not in ACCEPTED_TYPES:
            raise ServiceError("unsupported_media_type", f"send the CAP document as {CONTENT_TYPE}", status=415)
        src = _authenticate(service, body, signature, source_name, key)
        context["source"] = src.name
        msg = _parse(body)
        context["identifier"] = "".join(c if c.isprintable() else "?" for c in msg.identifier[:200])
        return _take(service, src, msg)
    except ServiceError as exc:
        log.warning("CAP message refused (%s): %s", exc.code, exc.message)
        policy.audit_refusal(service, None, exc.code, exc.message, action="cap.receive",
                             target=f"cap_source:{context['source']}", **{k: v for k, v in context.items()
                                                                          if k != "source"})
        raise


def _authenticate(service: PanelCore, body: bytes, signature: str | None, source_name: str | None,
                  key: str | None = None) -> CapSource:
    """The trusted source that sent ``body``: by its HMAC signature of the body (preferred: the key never travels),
    or — for a sender that can only present a shared secret — by the key itself (``X-CAP-Key`` or
    ``Authorization: Bearer <key>``; over HTTPS only in production)."""
    given = (signature or "").strip()
    if given.lower().startswith(SIGNATURE_PREFIX):
        given = given[len(SIGNATURE_PREFIX):]
    if not given and key:
        return _by_key(service, key.strip(), source_name)
    if not given:
        raise ServiceError("cap_unsigned", f"sign the body: {SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body "
                           "with the source's shared key>", status=401)
    with service.db.session() as s:
        if source_name:
            name = source_name.strip()
            src = s.scalar(select(CapSource).where(CapSource.name == name)) if NAME_RE.match(name) else None
            if src is None:
                raise ServiceError("cap_untrusted_source", "this source is not one the panel trusts", status=403)
            candidates = [src]
        else:
            candidates = list(s.scalars(select(CapSource).order_by(CapSource.id)))
        for src in candidates:
            expected = sign(src.key, body)[len(SIGNATURE_PREFIX):]
            if hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace")):
                s.expunge(src)
                return src
    raise ServiceError("cap_bad_signature", "the signature does not match the body and the source's key", status=401)


def _by_key(service: PanelCore, key: str, source_name: str | None) -> CapSource:
    with service.db.session() as s:
        q = select(CapSource).order_by(CapSource.id)
        if source_name:
            q = q.where(CapSource.name == source_name.strip())
        for src in s.scalars(q):
            if hmac.compare_digest(src.key.encode(), key.encode("utf-8", "replace")):
                s.expunge(src)
                return src
    raise ServiceError("cap_bad_key", "the key is not the key of a source the panel trusts", status=401)


def _text(parent: ET.Element, tag: str) -> str:
    node = parent.find(q(tag))
    return (node.text or "").strip() if node is not None else ""


def _parse(body: bytes) -> _Message:
    """Well-formed (defusedxml: no DTD, no entities), valid against CAP 1.2, then read."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise ServiceError("cap_malformed", f"not well-formed XML: {exc}") from exc
    if root.tag != q("alert"):
        raise ServiceError("cap_invalid", f"not a CAP 1.2 alert: the root is {root.tag}, not <alert xmlns=\"{NS}\">")
    error = next(iter(schema().iter_errors(root)), None)
    if error is not None:
        why = (error.reason or str(error)).splitlines()[0][:300]
        raise ServiceError("cap_invalid", f"not valid against the CAP 1.2 schema: {why} (at {error.path})")
    msg = _Message(identifier=_text(root, "identifier"), sender=_text(root, "sender"), sent=_text(root, "sent"),
                   status=_text(root, "status"), msg_type=_text(root, "msgType"))
    if msg.status in ("Test", "System", "Draft"):
        raise ServiceError("cap_status_unsupported", f"status {msg.status}: only Actual (an alert) or Exercise (a "
                           "drill) is broadcast", "status", 422)
    if msg.msg_type in ("Ack", "Error"):
        raise ServiceError("cap_msgtype_unsupported", f"msgType {msg.msg_type}: only Alert, Update or Cancel",
                           "msgType", 422)
    scope = _text(root, "scope")
    if scope != "Public" and msg.msg_type != "Cancel":
        raise ServiceError("cap_not_public", f"scope {scope}: only a Public alert is broadcast on public "
                           "loudspeakers", "scope", 422)
    for ref in _text(root, "references").split():
        parts = ref.split(",")
        if len(parts) >= 2:
            msg.references.append((parts[0], parts[1]))
    infos = root.findall(q("info"))
    info = next((i for i in infos if _text(i, "language").lower().startswith("vi")), infos[0] if infos else None)
    if info is None:
        if msg.msg_type == "Cancel":
            return msg
        raise ServiceError("cap_no_info", "the alert has no <info>: nothing to say", "info", 422)
    expiries = [_instant(_text(i, "expires")) for i in infos]
    if expiries and all(e is not None and e <= datetime.now(UTC) for e in expiries):
        raise ServiceError("cap_expired", "every <info> of the alert has expired: nothing to broadcast", "expires",
                           422)
    msg.category = next((c.text.strip() for c in info.findall(q("category")) if (c.text or "").strip()
                         in CATEGORIES), "Safety")
    msg.title = (_text(info, "headline") or _text(info, "event"))[:300]
    msg.text = " ".join(t for t in (_text(info, "description"), _text(info, "instruction")) if t) or msg.title
    msg.areas = info.findall(q("area"))
    return msg


def _instant(text: str) -> datetime | None:
    """A CAP time (``2026-12-07T06:30:00+07:00``) as an aware instant; None when absent or unreadable."""
    try:
        value = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None


def _take(service: PanelCore, src: CapSource, msg: _Message) -> Received:
    if msg.msg_type == "Cancel":
        return _cancel(service, src, msg)
    zones = area_zones(service, msg.areas, src.ward_id)
    if not zones:
        raise ServiceError("cap_unknown_area", "the alert's area names no zone with loudspeakers here "
                           "(geocode ZONE/WARD, areaDesc, polygon or circle)", "area", 422)
    row_id = _reserve(service, src, msg)
    try:
        by_ward: dict[int, list[int]] = {}
        for zone_id, ward_id in zones:
            by_ward.setdefault(ward_id, []).append(zone_id)
        alerts = [emergency.create_from_source(
            service, title=msg.title, text=msg.text, zone_ids=ids, ward_id=ward_id, drill=msg.status == "Exercise",
            release=bool(src.automatic), source=src.name, cap_sender=msg.sender, cap_identifier=msg.identifier)
            for ward_id, ids in sorted(by_ward.items())]
    except BaseException:
        with service.db.session() as s:
            row = s.get(CapMessage, row_id)
            if row is not None and not row.alert_ids:
                s.delete(row)
        raise
    _done(service, row_id, [a.id for a in alerts])
    return Received(alerts, True)


def _reserve(service: PanelCore, src: CapSource, msg: _Message) -> int:
    """The sender + identifier taken once (a duplicate: 409, nothing stored); the alerts follow."""
    try:
        with service.db.session() as s:
            row = CapMessage(source_id=src.id, sender=msg.sender[:255], identifier=msg.identifier[:255],
                             msg_type=msg.msg_type, sent=msg.sent[:40], category=msg.category, alert_ids=[])
            s.add(row)
            s.flush()
            return row.id
    except IntegrityError:
        raise ServiceError("cap_duplicate", f"message {msg.identifier!r} of {msg.sender!r} was received before",
                           "identifier", 409) from None


def _done(service: PanelCore, row_id: int, alert_ids: list[int]) -> None:
    with service.db.session() as s:
        row = s.get(CapMessage, row_id)
        assert row is not None
        row.alert_ids = alert_ids
        row.alert_id = alert_ids[0] if alert_ids else None


def _cancel(service: PanelCore, src: CapSource, msg: _Message) -> Received:
    """Discard the source's own earlier alerts named by ``references`` that have not gone out."""
    with service.db.session() as s:
        earlier = [m for sender, ident in msg.references
                   for m in s.scalars(select(CapMessage).where(CapMessage.sender == sender,
                                                               CapMessage.identifier == ident,
                                                               CapMessage.source_id == src.id))]
        ids = [i for m in earlier for i in (m.alert_ids or [])]
    if not ids:
        raise ServiceError("cap_unknown_reference", "the Cancel's references name no alert this source sent",
                           "references", 422)
    with service.db.session() as s:
        states = {i: s.scalar(select(Alert.status).where(Alert.id == i)) for i in ids}
    sounding = [i for i, state in states.items() if state in ("releasing", "released")]
    if sounding:
        raise ServiceError("cap_cancel_sounding", "the alert went out: two people cancel it on the panel "
                           f"(POST /api/v1/emergencies/{sounding[0]}/cancel)", "references", 409)
    ids = [i for i, state in states.items() if state == "pending_release"]
    if not ids:
        raise ServiceError("emergency_already_cancelled", "the alert is already cancelled", "references", 409)
    row_id = _reserve(service, src, msg)
    alerts = [emergency.discard_from_source(service, i, src.name, cap_identifier=msg.identifier) for i in ids]
    _done(service, row_id, ids)
    return Received(alerts, False)


# ---------------------------------------------------------------------------------------- area → zones
def _points(text: str) -> list[tuple[float, float]]:
    out = []
    for pair in text.split():
        lat, _, lon = pair.partition(",")
        try:
            out.append((float(lat), float(lon)))
        except ValueError:
            continue
    return out


def in_polygon(lat: float, lon: float, polygon: list[tuple[float, float]]) -> bool:
    """Ray casting over (lat, lon) pairs (WGS 84; small areas: the plane is fine)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (y1, x1), (y2, x2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > lat) != (y2 > lat):
            cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < cross:
                inside = not inside
    return inside


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def area_zones(service: PanelCore, areas: list[ET.Element], ward_id: int | None) -> list[tuple[int, int]]:
    """(zone id, ward id) of the zones with loudspeakers the areas name, within ``ward_id`` (None: every ward)."""
    with service.db.session() as s:
        zq = select(Zone).options(selectinload(Zone.nodes)).where(Zone.ward_id.is_not(None))
        if ward_id is not None:
            zq = zq.where(Zone.ward_id == ward_id)
        zones = [z for z in s.scalars(zq) if z.nodes]
        wards = {w.id: w for w in s.scalars(select(Ward))}
        located = [(z, n.lat, n.lon) for z in zones for n in z.nodes if n.lat is not None and n.lon is not None]
    by_code = {z.code.casefold(): z for z in zones}
    by_name: dict[str, list[Zone]] = {}
    for z in zones:
        by_name.setdefault(z.name.strip().casefold(), []).append(z)
    ward_by_ref: dict[str, int] = {}
    for w in wards.values():
        ward_by_ref[w.code.casefold()] = w.id
        ward_by_ref.setdefault(w.name.strip().casefold(), w.id)
    found: dict[int, Zone] = {}

    def whole_ward(ref: str) -> bool:
        wid = ward_by_ref.get(ref.strip().casefold())
        hit = [z for z in zones if wid is not None and z.ward_id == wid]
        found.update((z.id, z) for z in hit)
        return bool(hit)

    def by_description(desc: str) -> None:
        """``areaDesc`` alone (no polygon, circle or geocode): zone names or codes, separated by commas; a ward
        named with them narrows them to that ward ("Tổ 3, Phường B"), a ward named alone is the whole ward."""
        parts = [p.strip().casefold() for p in [desc, *re.split(r"[,;]", desc)] if p.strip()]
        in_wards = {ward_by_ref[p] for p in parts if p in ward_by_ref}
        hits = [z for p in parts for z in ([by_code[p]] if p in by_code else []) + by_name.get(p, [])]
        if in_wards:
            hits = [z for z in hits if z.ward_id in in_wards]
        if hits:
            found.update((z.id, z) for z in hits)
        else:
            for wid in in_wards:
                found.update((z.id, z) for z in zones if z.ward_id == wid)

    for area in areas:
        # The precise shapes decide (CAP 1.2: areaDesc is a description, polygon / circle / geocode the area
        # itself); the free-text description only when they name nothing here (none given, or another ward's codes).
        before = len(found)
        for geo in area.findall(q("geocode")):
            name, value = _text(geo, "valueName").upper(), _text(geo, "value")
            if name == GEOCODE_ZONE and value.casefold() in by_code:
                found[by_code[value.casefold()].id] = by_code[value.casefold()]
            elif name == GEOCODE_WARD:
                whole_ward(value)
        for poly in area.findall(q("polygon")):
            points = _points(poly.text or "")
            if len(points) >= 3:
                found.update((z.id, z) for z, lat, lon in located if in_polygon(lat, lon, points))
        for circle in area.findall(q("circle")):
            centre, _, radius = (circle.text or "").strip().partition(" ")
            points = _points(centre)
            try:
                km = float(radius)
            except ValueError:
                continue
            if points:
                (clat, clon) = points[0]
                found.update((z.id, z) for z, lat, lon in located if distance_km(clat, clon, lat, lon) <= km)
        if len(found) == before:
            by_description(_text(area, "areaDesc"))
    return sorted((z.id, z.ward_id) for z in found.values() if z.ward_id is not None)


# -------------------------------------------------------------------------------------------- export
def sender_of(service: PanelCore, ward_code: str) -> str:
    host = urlparse(service.config.public_url).hostname or "loaphuong"
    return f"{ward_code}@{host}"


def identifier_of(ward_code: str, alert_id: int) -> str:
    return f"loaphuong-{ward_code}-{alert_id}"


def cap_time(service: PanelCore, moment: datetime | None) -> str:
    """``2026-12-07T06:30:00+07:00``: local time with its offset, whole seconds (CAP's pattern)."""
    local = service.local(moment or datetime.now().astimezone())
    assert local is not None
    return local.isoformat(timespec="seconds")


@dataclass
class _Said:
    """What the export needs of an alert beside the alert itself."""

    ward_code: str
    ward_names: list[str]
    ward_geocodes: list[str]
    category: str
    text: str
    cancelled: Alert | None


def _said(service: PanelCore, alert: Alert) -> _Said:
    with service.db.session() as s:
        ward = s.get(Ward, alert.ward_id) if alert.ward_id is not None else None
        wards = [ward] if ward is not None else list(alert.wards)
        category = s.scalar(select(CapMessage.category).where(CapMessage.alert_id == alert.id)) or "Safety"
        text = alert.text or ""
        if not text and alert.announcement_id is not None:
            ann = s.get(Announcement, alert.announcement_id)
            text = (ann.text or ann.title) if ann is not None else ""
        cancelled = None
        if alert.cancels_id is not None:
            cancelled = s.scalar(select(Alert).options(selectinload(Alert.zones), selectinload(Alert.wards))
                                 .where(Alert.id == alert.cancels_id))
    return _Said(ward_code=ward.code if ward is not None else "province",
                 ward_names=[w.name for w in wards], ward_geocodes=[w.code for w in wards],
                 category=category if category in CATEGORIES else "Safety", text=text or alert.title,
                 cancelled=cancelled)


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    node = ET.SubElement(parent, q(tag))
    node.text = text
    return node


def alert_element(service: PanelCore, alert: Alert) -> ET.Element:
    """One alert as a CAP 1.2 ``<alert>`` element (see the module's docstring for the mapping)."""
    said = _said(service, alert)
    sender = sender_of(service, said.ward_code)
    root = ET.Element(q("alert"))
    _sub(root, "identifier", identifier_of(said.ward_code, alert.id))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(service, alert.released_at or alert.created_at))
    _sub(root, "status", "Exercise" if alert.drill else "Actual")
    _sub(root, "msgType", "Cancel" if alert.kind == "cancel" else "Alert")
    _sub(root, "scope", "Public")
    if alert.drill:
        _sub(root, "note", "Diễn tập — không phải tin khẩn cấp thật")
    if said.cancelled is not None:
        earlier = said.cancelled
        _sub(root, "references", ",".join((sender, identifier_of(said.ward_code, earlier.id),
                                           cap_time(service, earlier.released_at or earlier.created_at))))
    info = ET.SubElement(root, q("info"))
    _sub(info, "language", LANGUAGE)
    _sub(info, "category", said.category)
    _sub(info, "event", alert.title)
    _sub(info, "urgency", "Past" if alert.kind == "cancel" else "Immediate")
    _sub(info, "severity", "Minor" if alert.kind == "cancel" else "Severe")
    _sub(info, "certainty", "Observed")
    _sub(info, "senderName", ", ".join(said.ward_names) or "Loa Phường")
    _sub(info, "headline", alert.title)
    _sub(info, "description", emergency.CANCEL_TEXT if alert.kind == "cancel" else said.text)
    area = ET.SubElement(info, q("area"))
    zones = list(alert.zones)
    _sub(area, "areaDesc", ", ".join(z.name for z in zones) if zones and not alert.all_zones
         else ", ".join(said.ward_names) or said.ward_code)
    if not alert.all_zones:
        for z in zones:
            geo = ET.SubElement(area, q("geocode"))
            _sub(geo, "valueName", GEOCODE_ZONE)
            _sub(geo, "value", z.code)
    for code in said.ward_geocodes:
        geo = ET.SubElement(area, q("geocode"))
        _sub(geo, "valueName", GEOCODE_WARD)
        _sub(geo, "value", code)
    return root


def alert_document(service: PanelCore, alert: Alert) -> bytes:
    """``<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">…</alert>`` as UTF-8 bytes with the declaration."""
    return ET.tostring(alert_element(service, alert), encoding="utf-8", xml_declaration=True, default_namespace=NS)


def feed_alerts(service: PanelCore, ward: Ward | None) -> list[Alert]:
    """What a public feed lists: alerts that went out (released, or cancelled later) and their cancellations,
    newest first; a ward's own and the province alerts that targeted it (``ward`` None: every ward's)."""
    with service.db.session() as s:
        q_ = (select(Alert).options(selectinload(Alert.zones), selectinload(Alert.wards))
              .where(Alert.status.in_(("released", "cancelled")), Alert.released_at.is_not(None))
              .order_by(Alert.released_at.desc(), Alert.id.desc()).limit(FEED_SIZE))
        if ward is not None:
            targeted = select(alert_wards.c.alert_id).where(alert_wards.c.ward_id == ward.id)
            q_ = q_.where(or_(Alert.ward_id == ward.id, Alert.id.in_(targeted)))
        return list(s.scalars(q_))


def public_alert(service: PanelCore, ward: Ward, alert_id: int) -> Alert | None:
    """An alert of the ward's public feed by id (None if it is not listed there)."""
    return next((a for a in feed_alerts(service, ward) if a.id == alert_id), None)


def find_ward(service: PanelCore, code: str) -> Ward | None:
    with service.db.session() as s:
        return s.scalar(select(Ward).where(Ward.code == code))


def feed_document(service: PanelCore, ward: Ward | None, self_url: str,
                  alert_url: Callable[[Alert], str]) -> bytes:
    """An Atom feed (the OASIS "CAP feeds" practice) whose entries each carry one CAP 1.2 ``<alert>`` (in its own
    default namespace, as :func:`alert_document` writes it). ``alert_url(alert)``: the alert's public document."""
    alerts = feed_alerts(service, ward)
    title = f"Tin khẩn cấp — {ward.name}" if ward is not None else "Tin khẩn cấp — toàn tỉnh"
    newest = alerts[0].released_at if alerts else None
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n', f'<feed xmlns="{ATOM}">',
        f"<id>{escape(self_url)}</id>", f"<title>{escape(title)}</title>",
        f"<updated>{cap_time(service, newest)}</updated>", f'<link rel="self" href={quoteattr(self_url)}/>',
        f"<author><name>{escape(ward.name if ward is not None else 'Loa Phường')}</name></author>",
    ]
    for alert in alerts:
        element = alert_element(service, alert)
        parts += [
            "<entry>", f"<id>urn:loaphuong:cap:{escape(element.findtext(q('identifier')) or '')}</id>",
            f"<title>{escape(('[DIỄN TẬP] ' if alert.drill else '') + alert.title)}</title>",
            f"<updated>{element.findtext(q('sent'))}</updated>",
            f'<link rel="alternate" type="{CONTENT_TYPE}" href={quoteattr(alert_url(alert))}/>',
            f'<content type="{CONTENT_TYPE}">',
            ET.tostring(element, encoding="unicode", default_namespace=NS),
            "</content>", "</entry>",
        ]
    parts.append("</feed>")
    return "".join(parts).encode("utf-8")


def alert_ward_code(service: PanelCore, alert: Alert) -> str:
    """The ward whose public feed lists ``alert``: its own, or the first a province alert targeted."""
    if alert.ward_id is None and alert.wards:
        return sorted(w.code for w in alert.wards)[0]
    with service.db.session() as s:
        return tenancy.ward_codes(s, {alert.ward_id}).get(alert.ward_id or 0, "")
