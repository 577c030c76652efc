"""The fleet: registry (CSV import/export, edits), debounced presence, remote control and proof-of-play reports.

Functions take the :class:`~broadcaster.services.PanelCore` (its ``db`` and ``config``); the web views
(``broadcaster/web/views_fleet.py``) and the API (``broadcaster/api/routes_fleet.py``) stay thin.

Presence
    ``Node.state`` stays what the node last said (online / offline / stopped). ``Node.presence`` is the
    debounced view the panel shows: it follows the raw state only once that has held for
    ``PRESENCE_DEBOUNCE_S`` (so a node that drops and reconnects within that time never flaps), except the
    first report, which has nothing to debounce against. A node that announced a heartbeat period and has
    published nothing for ``HEARTBEAT_GRACE`` × that period counts as offline even before its last-will
    arrives. Offline for ``OFFLINE_ALERT_S`` raises an alert (``offline_alert_at``), cleared when it is back.
    Nothing runs in the background: every read (and every status) first settles presence up to *now*, and
    the state machine only needs the stored raw state and the instant it began.

Clock offset
    offset = node clock in the status − panel receive time. Delivery delay only ever makes a sample more
    negative, so the estimate is the largest of the last ``CLOCK_SAMPLES`` samples (NTP's minimum-delay
    filter). A node is *drifting* beyond ``DRIFT_LIMIT_MS`` (1 s): it would play off-time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from broadcaster import policy, tenancy
from broadcaster.airtime import delivered_by_command, entry_item_id, local_day, zone_timeline
from broadcaster.brokerconf import mosquitto_hash
from broadcaster.core import PanelCore
from broadcaster.csvsafe import csv_uncell, csv_writer
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Alert,
    Announcement,
    AuditEntry,
    CommandRecord,
    Node,
    NodeEvent,
    User,
    Zone,
)
from broadcaster.states import COMMAND, PRESENCE, CommandState
from devices import protocol as proto
from devices.registry import RegistryError, new_token, token_hash, validate_node_id
from schedules.timeline import AUDIBLE_STATES

log = logging.getLogger(__name__)

def _service_error(code: str, message: str, field_name: str | None = None, status: int = 400) -> Exception:
    return ServiceError(code, message, field_name, status)


def _audit(s: Session, user: User | None, action: str, target: str = "", **detail: Any) -> None:
    ward_id = user.ward_id if user is not None and not tenancy.is_province(user) else None
    s.add(AuditEntry(user_id=user.id if user else None, action=action, target=target, detail=detail,
                     ward_id=ward_id))


# ================================================================================================ registry
#: CSV columns, in export order. ``firmware`` is what the node reports: exported, ignored on import.
CSV_COLUMNS = ("node_id", "name", "zone", "ward", "lat", "lon", "address", "hardware", "language", "firmware")
EDITABLE = ("name", "zone", "ward", "lat", "lon", "address", "hardware", "language")
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_IMPORT_ROWS = 20_000


@dataclass
class RowError:
    row: int  # line number in the file (the header is line 1)
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


class ImportRefused(ValueError):
    """Some rows are bad: nothing was imported. ``errors`` names each row and field."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s); nothing imported")
        self.errors = errors


def _coordinate(raw: Any, name: str, lo: float, hi: float) -> float | None:
    """A latitude/longitude from a form, CSV cell or JSON number; ``7,5`` (Vietnamese comma) is accepted."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise RegistryError(f"invalid_{name}", f"{name} must be a number")
    try:
        value = float(raw) if isinstance(raw, int | float) else float(str(raw).strip().replace(",", "."))
    except ValueError as exc:
        raise RegistryError(f"invalid_{name}", f"{name} must be a number") from exc
    if not lo <= value <= hi:  # also refuses nan and inf
        raise RegistryError(f"invalid_{name}", f"{name} must be between {lo:g} and {hi:g}")
    return value


def clean_fields(data: dict[str, Any], zones: dict[str, int]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Validate editable fields present in ``data`` → (values, [(field, code, message)]).

    Absent keys are left alone by the caller; present but empty values clear the field (a name falls
    back to the node id). ``zones`` maps zone code → id.
    """
    out: dict[str, Any] = {}
    errors: list[tuple[str, str, str]] = []

    def text(name: str, limit: int) -> None:
        if name not in data:
            return
        value = str(data[name] if data[name] is not None else "").strip()
        if len(value) > limit:
            errors.append((name, "too_long", f"{name} is longer than {limit} characters"))
        else:
            out[name] = value or None

    text("name", 200)
    text("ward", 200)
    text("address", 300)
    text("hardware", 100)
    if "language" in data:
        lang = str(data["language"] or "").strip()
        if lang and (not LANGUAGE_RE.match(lang) or len(lang) > 35):
            errors.append(("language", "invalid_language", "language must be a BCP 47 tag such as vi or vi-x-tay"))
        else:
            out["language"] = lang or None
    if "zone" in data:
        code = str(data["zone"] or "").strip()
        if code and code not in zones:
            errors.append(("zone", "unknown_zone", f"no zone {code!r}"))
        else:
            out["zone_id"] = zones[code] if code else None
    for name, lo, hi in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
        if name in data:
            try:
                out[name] = _coordinate(data[name], name, lo, hi)
            except RegistryError as exc:
                errors.append((name, exc.code, str(exc)))
    if "lat" in out and "lon" in out and (out["lat"] is None) != (out["lon"] is None):
        errors.append(("lat", "gps_pair", "give both lat and lon, or neither"))
    return out, errors


def _apply(node: Node, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if key == "name":
            value = value or node.node_id
        if getattr(node, key) != value:
            setattr(node, key, value)
            changed = True
    return changed


def _zone_ward(s: Session, zone_id: int | None) -> int | None:
    return s.scalar(select(Zone.ward_id).where(Zone.id == zone_id)) if zone_id is not None else None


def _zone_codes(s: Session) -> dict[str, int]:
    return {code: zid for zid, code in s.execute(select(Zone.id, Zone.code))}


def update_node(service: PanelCore, node_id: str, data: dict[str, Any], user: User | None = None) -> Node:
    """Edit a node's registry fields (see :func:`clean_fields`); a zone change republishes its plan."""
    with service.db.session() as s:
        node = s.scalar(select(Node).where(Node.node_id == node_id))
        if node is None:
            raise _service_error("not_found", f"no node {node_id!r}", status=404)
        tenancy.check_user(user, node.ward_id, "node")
        scope = tenancy.user_scope(user)
        zones = {c: i for c, i, w in s.execute(select(Zone.code, Zone.id, Zone.ward_id))
                 if scope is None or scope.sees(w)}  # another ward's zone is unknown
        values, errors = clean_fields({k: v for k, v in data.items() if k in EDITABLE}, zones)
        if errors:
            name, code, message = errors[0]
            raise _service_error(code, message, name, 404 if code == "unknown_zone" else 400)
        merged = {"lat": node.lat, "lon": node.lon, **values}
        if (merged["lat"] is None) != (merged["lon"] is None):
            raise _service_error("gps_pair", "give both lat and lon, or neither", "lat")
        zone_before = node.zone_id
        if _apply(node, values):
            _audit(s, user, "node.update", node_id, **{k: v for k, v in data.items() if k in EDITABLE})
        zone_changed = node.zone_id != zone_before
        if zone_changed and node.zone_id is not None:
            node.ward_id = s.scalar(select(Zone.ward_id).where(Zone.id == node.zone_id))
    if zone_changed:
        service.publish_plans([node_id])
    return service.get_node(node_id)  # type: ignore[return-value]


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: node id → token of each *new* node (shown once; existing nodes keep theirs)
    credentials: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "credentials": self.credentials, "dry_run": self.dry_run}


def _read_csv(data: bytes | str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportRefused([RowError(0, None, "not_utf8", "the file is not UTF-8 text")]) from exc
    else:
        text = data.lstrip("\ufeff")
    if not text.strip():
        raise ImportRefused([RowError(1, None, "empty", "the file is empty")])
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for record in reader:
        if not any((v or "").strip() for k, v in record.items() if k is not None):
            continue  # blank line
        # csv_uncell: a cell of the panel's own export comes back without the apostrophe that neutralised it
        rows.append((reader.line_num, {k: csv_uncell(v or "") for k, v in record.items() if k is not None}))
    return header, rows


def import_csv(service: PanelCore, data: bytes | str, user: User | None = None, *,
               dry_run: bool = False) -> ImportResult:
    """Upsert nodes by ``node_id`` from CSV (``CSV_COLUMNS``; ``,`` or ``;``, UTF-8 with or without BOM).

    All or nothing: if any row is bad, :class:`ImportRefused` lists every bad row and nothing changes.
    Idempotent: importing the same file again changes nothing and issues no token. Columns missing from
    the header keep their values; empty cells clear them. New nodes get a token (``credentials``).
    """
    header, rows = _read_csv(data)
    errors: list[RowError] = []
    if "node_id" not in header:
        raise ImportRefused([RowError(1, "node_id", "missing_column", "the header has no node_id column")])
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        errors.append(RowError(1, unknown[0], "unknown_column",
                               f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(CSV_COLUMNS)}"))
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportRefused([RowError(1, None, "too_many_rows", f"at most {MAX_IMPORT_ROWS} rows per file")])
    result = ImportResult(dry_run=dry_run)
    republish: list[str] = []
    scope = tenancy.user_scope(user)
    with service.db.session() as s:
        zone_wards = {c: w for c, w in s.execute(select(Zone.code, Zone.ward_id))}
        zones = {c: i for c, i in _zone_codes(s).items() if scope is None or scope.sees(zone_wards.get(c))}
        existing = {n.node_id: n for n in s.scalars(select(Node))}
        only = tenancy.default_ward(s)
        own_ward = (user.ward_id if user is not None and not tenancy.is_province(user)
                    else only.id if only is not None else None)
        seen: dict[str, int] = {}
        cleaned: list[tuple[int, str, dict[str, Any]]] = []
        for line, record in rows:
            try:
                node_id = validate_node_id(record.get("node_id", ""))
            except RegistryError as exc:
                errors.append(RowError(line, "node_id", exc.code, f"{exc} (got {record.get('node_id', '')!r})"))
                continue
            if node_id in seen:
                errors.append(RowError(line, "node_id", "duplicate_node_id",
                                       f"{node_id} is also on line {seen[node_id]}"))
                continue
            seen[node_id] = line
            values, problems = clean_fields({k: v for k, v in record.items() if k in EDITABLE}, zones)
            base = existing.get(node_id)
            if base is not None and scope is not None and not scope.sees(base.ward_id):
                # node ids are unique across the province: another ward's node is not this ward's to edit
                errors.append(RowError(line, "node_id", "node_exists", f"{node_id} is registered elsewhere"))
                continue
            lat = values.get("lat", base.lat if base else None)
            lon = values.get("lon", base.lon if base else None)
            if (lat is None) != (lon is None) and not any(f in ("lat", "lon") for f, _, _ in problems):
                problems.append(("lat", "gps_pair", "give both lat and lon, or neither"))
            errors.extend(RowError(line, f, c, m) for f, c, m in problems)
            cleaned.append((line, node_id, values))
        if errors:
            raise ImportRefused(sorted(errors, key=lambda e: (e.row, e.field or "")))
        for _line, node_id, values in cleaned:
            node = existing.get(node_id)
            if node is None:
                token = new_token()
                node = Node(node_id=node_id, name=node_id, token_hash=token_hash(token),
                            mqtt_password_hash=mosquitto_hash(token))
                _apply(node, values)
                node.ward_id = _zone_ward(s, node.zone_id) or own_ward
                s.add(node)
                result.created.append(node_id)
                result.credentials[node_id] = token
                republish.append(node_id)
            else:
                zone_before = node.zone_id
                if _apply(node, values):
                    result.updated.append(node_id)
                    if node.zone_id != zone_before:
                        node.ward_id = _zone_ward(s, node.zone_id) or node.ward_id
                        republish.append(node_id)
                else:
                    result.unchanged.append(node_id)
        if dry_run:
            s.rollback()
            result.credentials = {}
            return result
        _audit(s, user, "node.import", "", created=len(result.created), updated=len(result.updated))
        # The broker learns the new logins before the commit: one it does not confirm rolls the import back.
        service.provision_broker_logins(result.credentials)
    if republish:
        service.publish_plans(republish)
    return result


def export_csv(service: PanelCore, scope: tenancy.Scope | None = None) -> str:
    """The registry as CSV (UTF-8; a BOM so that spreadsheet programs read Vietnamese correctly)."""
    out = io.StringIO()
    writer = csv_writer(out)  # formula cells neutralised (broadcaster/csvsafe.py)
    writer.writerow(CSV_COLUMNS)
    with service.db.session() as s:
        q = select(Node).options(selectinload(Node.zone)).order_by(Node.node_id)
        for n in s.scalars(scope.restrict(q, Node) if scope is not None else q):
            writer.writerow([
                n.node_id, n.name or "", n.zone.code if n.zone else "", n.ward or "",
                "" if n.lat is None else n.lat, "" if n.lon is None else n.lon,  # numbers stay numbers
                n.address or "", n.hardware or "", n.language or "", n.firmware or "",
            ])
    return "\ufeff" + out.getvalue()


# ============================================================================================ provisioning
#: The provisioning file a vendor's installer reads (docs/protocol.md §3, "Provisioning file").
NODE_CONFIG_FORMAT = "loaphuong-node-config"


def node_config(service: PanelCore, node: Node, token: str, broker_url: str | None) -> dict[str, Any]:
    """What a node must store at provisioning (docs/protocol.md §3), as the JSON of the downloadable file and of
    the QR code on the credentials page. The token is the one just issued: it is never stored, only its hash."""
    return {
        "format": NODE_CONFIG_FORMAT,
        "version": 1,
        "node_id": node.node_id,
        "username": node.node_id,
        "token": token,
        "broker_url": broker_url or None,
        "topic_prefix": service.config.MQTT_PREFIX,
        "media_base_url": service.config.public_url,
        "panel_public_key": service.public_key_b64,
    }


def node_config_json(config: dict[str, Any]) -> str:
    """The file's text: keys in a fixed order, UTF-8, a final newline."""
    return json.dumps(config, ensure_ascii=False, indent=1) + "\n"


# ================================================================================================ presence
def _raw(node: Node, now: datetime, config: Any) -> tuple[bool | None, datetime | None]:
    """The raw presence at ``now``: the last report, or offline if the node's heartbeats stopped."""
    raw, since = node.raw_online, node.raw_since
    if raw and node.heartbeat_s and node.last_seen is not None:
        silent_at = node.last_seen + timedelta(seconds=node.heartbeat_s * config.HEARTBEAT_GRACE)
        if now >= silent_at:
            return False, silent_at
    return raw, since


def settle(node: Node, now: datetime, config: Any) -> str | None:
    """Bring ``node.presence`` up to ``now``; returns ``"alert"`` when an offline alert was just raised."""
    raw, since = _raw(node, now, config)
    if raw is None or since is None:
        return None
    if raw is False and node.raw_online:  # heartbeats stopped: remember it as the raw state
        node.raw_online, node.raw_since = False, since
    event = "seen_online" if raw else "seen_offline"
    debounce = timedelta(seconds=config.PRESENCE_DEBOUNCE_S)
    if node.presence is None:  # the first report counts at once
        PRESENCE.move(node, "presence", event)
        node.presence_since = since
    elif PRESENCE.allows(node.presence, event) and now - since >= debounce:
        PRESENCE.move(node, "presence", event)
        node.presence_since = since + debounce
    if node.presence == "online":
        node.offline_alert_at = None
    elif node.offline_alert_at is None and raw is False:
        alert_after = timedelta(seconds=config.OFFLINE_ALERT_S)
        if now - since >= alert_after:
            node.offline_alert_at = max(since + alert_after, node.presence_since or since)
            return "alert"
    return None


def _is_replay(node: Node, st: proto.Status, clock: datetime | None) -> bool:
    """A retained ``online`` status the panel already processed (redelivered when the panel reconnects)."""
    return (st.state == proto.NodeState.online and clock is not None and node.status_clock is not None
            and node.session == st.session and clock <= node.status_clock)


def status_is_replay(node: Node, st: proto.Status) -> bool:
    return _is_replay(node, st, _clock(st))


def _clock(st: proto.Status) -> datetime | None:
    value = getattr(st, "clock", None)
    if not value:
        return None
    try:
        return proto.parse_ts(value)
    except proto.ProtocolError:
        return None


def on_status(node: Node, st: proto.Status, now: datetime, config: Any) -> None:
    """Called by ``PanelCore._apply_status`` for a fresh status: health fields, clock offset, presence."""
    settle(node, now, config)  # with the previous raw state, up to now
    for attr, src in (("rssi", "rssi_dbm"), ("uptime_s", "uptime_s"), ("heartbeat_s", "heartbeat_s"),
                      ("free_bytes", "free_bytes")):
        value = getattr(st, src, None)
        if value is not None:
            setattr(node, attr, value)
    online = st.state == proto.NodeState.online
    clock = _clock(st)
    if online and clock is not None:
        sample = round((clock - now) / timedelta(milliseconds=1))
        samples = ([*(node.clock_samples or []), sample])[-config.CLOCK_SAMPLES:]
        node.clock_samples = samples
        node.clock_offset_ms = max(samples)
        node.status_clock = clock
    if not online:
        node.clock_samples = []  # a reboot may correct the clock: start the estimate afresh
    if node.raw_online != online or node.raw_since is None:
        node.raw_online, node.raw_since = online, now
    settle(node, now, config)


def is_drifting(node: Node, config: Any) -> bool:
    return node.clock_offset_ms is not None and abs(node.clock_offset_ms) > config.DRIFT_LIMIT_MS


def refresh(service: PanelCore, now: datetime | None = None) -> None:
    """Settle presence and raise offline alerts for every node, and mark expired commands timed out."""
    now = now or datetime.now(UTC)
    with service.db.session() as s:
        for node in s.scalars(select(Node).where(Node.raw_since.is_not(None))):
            if settle(node, now, service.config) == "alert":
                log.warning("node %s offline since %s: alert", node.node_id, node.raw_since)
                _audit(s, None, "node.offline_alert", node.node_id, since=proto.format_ts(node.raw_since))
    expire_commands(service, now)


# ================================================================================================ listing
@dataclass
class FleetFilter:
    ward: str | None = None
    zone: str | None = None
    presence: str | None = None  # online | offline | unknown | alert
    drifting: bool | None = None
    q: str | None = None


def list_nodes(service: PanelCore, flt: FleetFilter | None = None, *, refresh_first: bool = True,
               scope: tenancy.Scope | None = None) -> list[Node]:
    if refresh_first:
        refresh(service)
    flt = flt or FleetFilter()
    limit = service.config.DRIFT_LIMIT_MS
    with service.db.session() as s:
        q = select(Node).options(selectinload(Node.zone)).outerjoin(Node.zone).order_by(Node.node_id)
        if scope is not None:
            q = scope.restrict(q, Node)
        if flt.ward:
            q = q.where(or_(Node.ward == flt.ward, (Node.ward.is_(None) & (Zone.ward == flt.ward))))
        if flt.zone:
            q = q.where(Zone.code == flt.zone)
        if flt.presence == "alert":
            q = q.where(Node.offline_alert_at.is_not(None))
        elif flt.presence == "unknown":
            q = q.where(Node.presence.is_(None))
        elif flt.presence:
            q = q.where(Node.presence == flt.presence)
        if flt.drifting is True:
            q = q.where(func.abs(Node.clock_offset_ms) > limit)
        elif flt.drifting is False:
            q = q.where(or_(Node.clock_offset_ms.is_(None), func.abs(Node.clock_offset_ms) <= limit))
        if flt.q:
            like = f"%{flt.q.strip()}%"
            q = q.where(or_(Node.node_id.like(like), Node.name.like(like), Node.address.like(like)))
        return list(s.scalars(q))


def wards(service: PanelCore) -> list[str]:
    with service.db.session() as s:
        names = set(s.scalars(select(Node.ward).where(Node.ward.is_not(None))))
        names |= set(s.scalars(select(Zone.ward).where(Zone.ward != "")))
    return sorted(n for n in names if n)


def node_ward(node: Node) -> str | None:
    return node.ward or (node.zone.ward if node.zone and node.zone.ward else None)


def summary(nodes: Sequence[Node], config: Any) -> dict[str, int]:
    return {
        "total": len(nodes),
        "online": sum(1 for n in nodes if n.presence == "online"),
        "offline": sum(1 for n in nodes if n.presence == "offline"),
        "unknown": sum(1 for n in nodes if n.presence is None),
        "alerts": sum(1 for n in nodes if n.offline_alert_at is not None),
        "drifting": sum(1 for n in nodes if is_drifting(n, config)),
    }


def node_json(node: Node, config: Any) -> dict[str, Any]:
    ts = proto.format_ts
    return {
        "node_id": node.node_id,
        "name": node.name,
        "zone": node.zone.code if node.zone else None,
        "zone_name": node.zone.name if node.zone else None,
        "ward": node_ward(node),
        "lat": node.lat,
        "lon": node.lon,
        "address": node.address,
        "hardware": node.hardware,
        "firmware": node.firmware,
        "language": node.language,
        "state": node.state,
        "presence": node.presence or "unknown",
        "presence_since": ts(node.presence_since) if node.presence_since else None,
        "last_seen": ts(node.last_seen) if node.last_seen else None,
        "offline_alert": ts(node.offline_alert_at) if node.offline_alert_at else None,
        "clock_offset_ms": node.clock_offset_ms,
        "drifting": is_drifting(node, config),
        "rssi_dbm": node.rssi,
        "free_bytes": node.free_bytes,
        "uptime_s": node.uptime_s,
        "heartbeat_s": node.heartbeat_s,
        "volume": node.volume,
        "plan_version": node.plan_version or None,
        "reported_plan_version": node.reported_plan_version,
        "in_sync": bool(node.plan_version) and node.reported_plan_version == node.plan_version,
    }


def marker_json(node: Node, config: Any) -> dict[str, Any]:
    """Compact map marker (10,000 of them must stay small)."""
    status = "alert" if node.offline_alert_at else (node.presence or "unknown")
    if status == "online" and is_drifting(node, config):
        status = "drifting"
    return {"id": node.node_id, "name": node.name, "lat": node.lat, "lon": node.lon, "status": status,
            "zone": node.zone.code if node.zone else None}


def last_events(service: PanelCore, node_id: str, limit: int = 30) -> list[NodeEvent]:
    with service.db.session() as s:
        return list(s.scalars(select(NodeEvent).where(NodeEvent.node_id == node_id)
                              .order_by(NodeEvent.received_at.desc(), NodeEvent.seq.desc()).limit(limit)))


# ================================================================================================ commands
COMMANDS = ("set_volume", "stop", "play_now", "reboot", "resync", "ping")


def expire_commands(service: PanelCore, now: datetime | None = None) -> int:
    """Pending commands past their expiry without an ack become ``timed_out`` (a late ack still wins)."""
    now = now or datetime.now(UTC)
    with service.db.session() as s:
        result = s.execute(update(CommandRecord)
                           .where(CommandRecord.status.in_(COMMAND.sources("expire")),
                                  CommandRecord.expires_at < now)
                           .values(status=COMMAND.after(CommandState.PENDING, "expire").value))
        return int(getattr(result, "rowcount", 0) or 0)


def target_nodes(service: PanelCore, node_ids: Iterable[str] | None = None, zone: str | None = None,
                 ward: str | None = None, scope: tenancy.Scope | None = None) -> list[str]:
    """The nodes a command goes to; a node or zone of a ward the scope does not see is unknown (404)."""
    ids = [n for n in (node_ids or []) if n]
    if not ids and not zone and not ward:
        raise _service_error("no_target", "choose nodes, a zone or a ward", "node_ids")
    scope = scope or tenancy.Scope.everything()
    with service.db.session() as s:
        found: set[str] = set()
        if ids:
            known = set(s.scalars(scope.restrict(select(Node.node_id).where(Node.node_id.in_(ids)), Node)))
            missing = [n for n in ids if n not in known]
            if missing:
                raise _service_error("not_found", f"no node {missing[0]!r}", "node_ids", 404)
            found |= known
        if zone:
            z = s.scalar(select(Zone).where(Zone.code == zone))
            if z is None or not scope.sees(z.ward_id):
                raise _service_error("unknown_zone", f"no zone {zone!r}", "zone", 404)
            found |= set(s.scalars(select(Node.node_id).where(Node.zone_id == z.id)))
        if ward:
            found |= set(s.scalars(scope.restrict(select(Node.node_id).outerjoin(Node.zone).where(
                or_(Node.ward == ward, Node.ward.is_(None) & (Zone.ward == ward))), Node)))
    if not found:
        raise _service_error("no_target", "no loudspeaker in that selection", "zone", 404)
    return sorted(found)


def _whole(value: Any, info: ValidationInfo) -> Any:
    """A whole number: an int, a float without a fraction (``50.0``, what a JS client may send) or digits from a
    web form; never a bool, a fraction (``50.5``) or anything else. Wire args are integers only (protocol §4)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    if isinstance(value, str):
        if (info.context or {}).get("json"):  # the API: JSON numbers are numbers
            raise ValueError("must be a number, not a string")
        text = value.strip()
        if not re.fullmatch(r"-?[0-9]{1,10}", text):
            raise ValueError("must be a whole number")
        return int(text)
    if isinstance(value, int):
        return value
    raise ValueError("must be a whole number")


Whole = Annotated[int, BeforeValidator(_whole)]


class _CommandIn(BaseModel):
    """The panel-side arguments of one command: nothing unknown, every field bounded."""

    model_config = ConfigDict(extra="forbid")


class NoArgsIn(_CommandIn):
    """``ping``, ``resync``, ``reboot``: no arguments at all."""


class StopIn(_CommandIn):
    alert_id: str | None = Field(default=None, pattern=proto.ALERT_ID_RE,
                                 description="Only this alert ([A-Za-z0-9_.-]{1,64}); none: whatever plays")


class SetVolumeIn(_CommandIn):
    volume: Annotated[Whole, Field(ge=0, le=100, description="Base volume 0–100")]


class PlayNowIn(_CommandIn):
    announcement_id: Annotated[Whole, Field(ge=1, le=2**31 - 1, description="An approved announcement")]
    repeat: Annotated[Whole, Field(ge=1, le=10)] = 1
    gap_ms: Annotated[Whole, Field(ge=0, le=600_000)] = 3000
    volume: Annotated[Whole, Field(ge=0, le=100)] | None = None
    priority: Literal["normal", "priority", "emergency"] = "priority"


#: The arguments each command accepts (the API, the web form and ``send`` all validate with these).
COMMAND_MODELS: dict[str, type[_CommandIn]] = {
    "ping": NoArgsIn, "resync": NoArgsIn, "reboot": NoArgsIn,
    "stop": StopIn, "set_volume": SetVolumeIn, "play_now": PlayNowIn,
}


def command_fields(name: str) -> tuple[str, ...]:
    """The argument names of a command (what a web form may send for it)."""
    model = COMMAND_MODELS.get(name)
    return tuple(model.model_fields) if model is not None else ()


def validate_args(name: str, args: Any, *, json: bool = False) -> _CommandIn:
    """Check a command's arguments against its own model: unknown, oversized or mistyped → ``invalid_field``
    naming the field (400), before anything is stored or the release policy is asked."""
    if name not in COMMAND_MODELS:
        raise _service_error("unknown_command", f"unknown command {name!r}", "name")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _service_error("invalid_field", "args must be an object", "args")
    try:
        return COMMAND_MODELS[name].model_validate({k: v for k, v in args.items() if v is not None},
                                                   context={"json": json})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith("function-")) or "args"
        raise _service_error("invalid_field", f"{where[:64]}: {first.get('msg')}", where[:64]) from exc


def command_args(service: PanelCore, name: str, args: dict[str, Any] | _CommandIn,
                 user: User | None = None) -> dict[str, Any]:
    """Validate the panel-side form of a command and build its wire ``args``."""
    checked = args if isinstance(args, _CommandIn) else validate_args(name, args)
    if isinstance(checked, SetVolumeIn):
        return {"volume": checked.volume}
    if isinstance(checked, StopIn):
        return {"alert_id": checked.alert_id} if checked.alert_id else {}
    if isinstance(checked, PlayNowIn):
        ann = service.get_announcement(checked.announcement_id)
        if ann is None:
            raise _service_error("not_found", "no such announcement", "announcement_id", 404)
        if ann.media is None:
            raise _service_error("no_audio", "the announcement has no audio yet", "announcement_id", 409)
        policy.require_playable(service, user, ann, action=policy.Action.COMMAND_PLAY)  # R1: its approved audio
        out: dict[str, Any] = {
            "alert_id": f"now-{uuid.uuid4().hex[:12]}",
            "media": {"url": service.media_url(ann.media.sha256), "sha256": ann.media.sha256,
                      "bytes": ann.media.size, "duration_ms": ann.media.duration_ms,
                      "content_type": ann.media.content_type},
            "priority": checked.priority,
            "repeat": checked.repeat,
            "gap_ms": checked.gap_ms,
            "drill": False,
            "title": ann.title[:300],
            "announcement_id": ann.id,
        }
        if checked.volume is not None:
            out["volume"] = checked.volume
        return out
    return {}


def send(service: PanelCore, name: str, args: dict[str, Any] | _CommandIn | None, *,
         node_ids: Iterable[str] | None = None,
         zone: str | None = None, ward: str | None = None, user: User | None = None) -> list[CommandRecord]:
    """Send one command to a node, a zone or a ward; each node gets its own signed, expiring command.

    The release policy decides (broadcaster/policy.py ``check_command``: R2 no emergency priority, R3 scope by
    role, no stopping or silencing the loudspeakers of a sounding alert) before anything is stored or sent.
    """
    # its own model first (or already checked by the caller): a bad argument stores nothing, not even a refusal
    checked = args if isinstance(args, _CommandIn) else validate_args(name, args)
    targets = target_nodes(service, node_ids, zone, ward, tenancy.user_scope(user))
    scope = policy.command_scope(len(targets), zone, ward)
    policy.check_command(service, user, name, checked.model_dump(exclude_none=True), scope=scope, targets=targets)
    wire = command_args(service, name, checked, user)
    return [service.send_command(node_id, name, wire, user) for node_id in targets]


def commands(service: PanelCore, node_id: str | None = None, status: str | None = None,
             limit: int = 100, scope: tenancy.Scope | None = None) -> list[CommandRecord]:
    expire_commands(service)
    with service.db.session() as s:
        q = select(CommandRecord).order_by(CommandRecord.issued_at.desc()).limit(limit)
        if scope is not None:
            q = scope.restrict(q, CommandRecord)
        if node_id:
            q = q.where(CommandRecord.node_id == node_id)
        if status:
            q = q.where(CommandRecord.status == status)
        return list(s.scalars(q))


def command_json(c: CommandRecord) -> dict[str, Any]:
    ts = proto.format_ts
    return {"id": c.id, "node_id": c.node_id, "name": c.name, "args": c.args, "status": c.status,
            "issued_at": ts(c.issued_at), "expires_at": ts(c.expires_at),
            "acked_at": ts(c.acked_at) if c.acked_at else None, "error": c.error}


def playable_announcements(service: PanelCore) -> list[Announcement]:
    with service.db.session() as s:
        return list(s.scalars(select(Announcement).where(
            Announcement.approval.in_(("approved", "published")), Announcement.media_sha256.is_not(None))
            .order_by(Announcement.id.desc()).limit(200)))


# ================================================================================================ reports
PLAY_EVENTS = ("playback_started", "playback_finished", "playback_failed", "playback_stopped")


def heard(output_lufs: float | None, threshold: float) -> bool | None:
    """Whether an airing was heard at a node: the level it measured at its output over the airing
    (``output_lufs``, docs/protocol.md §7.10) against ``HEARD_MIN_LUFS``. None: nothing was measured (a node
    without an output sensor, or an airing that did not play)."""
    return None if output_lufs is None else output_lufs >= threshold


def played_as_planned(event: str, reason: str | None) -> bool:
    """An item that played as planned: to its end, or cut by its own ``end_at`` — the airings whose measured
    output says whether they were heard (a cut by a person or a higher priority measured a fraction of one)."""
    return event == "playback_finished" or (event == "playback_stopped" and reason == "end_at")


def played_level(events: list[NodeEvent]) -> float | None:
    """The output level a node measured over a plan item it played to its end (or to its ``end_at``)."""
    for e in events:
        if e.output_lufs is not None and played_as_planned(e.event, e.reason):
            return e.output_lufs
    return None


def _outcome(events: list[NodeEvent]) -> str:
    """played | failed | stopped | started | missing, from one node's events about one plan item."""
    names = {e.event for e in events}
    if "playback_finished" in names:
        return "played"
    stops = [e for e in events if e.event == "playback_stopped"]
    if stops and all(e.reason == "end_at" for e in stops):
        return "played"  # cut on purpose by the plan (end_at): it played as planned
    if "playback_failed" in names:
        return "failed"
    if stops:
        return "stopped"
    if "playback_started" in names:
        return "started"
    return "missing"


@dataclass
class PlannedPlay:
    day: date
    zone: str
    zone_name: str
    schedule_id: int
    title: str
    item_id: str
    start: datetime
    duration_ms: int
    node_id: str


def _local_day_bounds(service: PanelCore, first: date, last: date) -> tuple[datetime, datetime]:
    return local_day(service, first)[0], local_day(service, last)[1]


def planned_plays(service: PanelCore, first: date, last: date, zone: str | None = None,
                  schedule_id: int | None = None, scope: tenancy.Scope | None = None) -> list[PlannedPlay]:
    """Every (node, plan item) the zones' timelines put in local days ``first..last`` (emergencies,
    delivered by command, are counted in :func:`monthly` from the alerts instead)."""
    start, end = _local_day_bounds(service, first, last)
    out: list[PlannedPlay] = []
    with service.db.session() as s:
        zq = select(Zone).order_by(Zone.code)
        if scope is not None:
            zq = scope.restrict(zq, Zone)
        if zone:
            zq = zq.where(Zone.code == zone)
        for z in s.scalars(zq):
            members = list(s.scalars(select(Node.node_id).where(Node.zone_id == z.id).order_by(Node.node_id)))
            if not members:
                continue
            entries, zs, _quiet = zone_timeline(service, s, z, start, end)
            by_command = delivered_by_command(zs)
            for e in entries:
                if e.state not in AUDIBLE_STATES or e.kind == "silence" or e.end <= e.start:
                    continue
                if (e.schedule_id, e.slot_start) in by_command or not start <= e.start < end:
                    continue
                if schedule_id is not None and e.schedule_id != schedule_id:
                    continue
                day = service.local(e.start).date()
                for node_id in members:
                    out.append(PlannedPlay(day, z.code, z.name, e.schedule_id, e.title or "", entry_item_id(e),
                                           e.start, e.duration_ms, node_id))
    return out


def _outcomes(service: PanelCore, plays: list[PlannedPlay], start: datetime,
              end: datetime) -> dict[tuple[str, str], tuple[str, bool | None]]:
    """Per planned (node, item): its outcome (:func:`_outcome`) and, when it played, whether it was heard."""
    if not plays:
        return {}
    nodes = {p.node_id for p in plays}
    by_key: dict[tuple[str, str], list[NodeEvent]] = defaultdict(list)
    with service.db.session() as s:
        q = select(NodeEvent).where(NodeEvent.event.in_(PLAY_EVENTS),
                                    NodeEvent.at >= start - timedelta(hours=1), NodeEvent.at < end + timedelta(days=1),
                                    NodeEvent.item_id.like("s%"))
        if len(nodes) <= 500:
            q = q.where(NodeEvent.node_id.in_(nodes))
        for ev in s.scalars(q):
            by_key[(ev.node_id, ev.item_id or "")].append(ev)
    threshold = service.config.HEARD_MIN_LUFS
    out = {}
    for p in plays:
        events = by_key.get((p.node_id, p.item_id), [])
        result = _outcome(events)
        out[(p.node_id, p.item_id)] = (result, heard(played_level(events), threshold) if result == "played" else None)
    return out


def _now() -> datetime:
    """The instant that separates airings that were due from those still to come (a test may move it)."""
    return datetime.now(UTC)


def split_due(plays: list[PlannedPlay], now: datetime | None = None) -> tuple[list[PlannedPlay], list[PlannedPlay]]:
    """(due, upcoming): an airing counts as planned — and can count against the ward — only once its start time
    has passed; the rest of the period is still to come ("sắp phát"), neither played nor missed."""
    now = now or _now()
    return [p for p in plays if p.start < now], [p for p in plays if p.start >= now]


def compliance(service: PanelCore, first: date, last: date, *, zone: str | None = None,
               schedule_id: int | None = None, scope: tenancy.Scope | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """Planned vs played per day, zone and bulletin (schedule), with compliance % = played / planned.

    Planned means due: airings of the period whose start time is before ``now``. Those still to come are
    counted apart (``upcoming`` node plays in ``upcoming_airings`` airings)."""
    if last < first:
        raise _service_error("invalid_range", "the end date is before the start date", "to")
    if (last - first).days > 366:
        raise _service_error("invalid_range", "at most one year per report", "to")
    plays, later = split_due(planned_plays(service, first, last, zone, schedule_id, scope), now)
    start, end = _local_day_bounds(service, first, last)
    outcome = _outcomes(service, plays, start, end)
    groups: dict[tuple, dict[str, Any]] = {}
    for p in plays:
        key = (p.day, p.zone, p.schedule_id)
        row = groups.setdefault(key, {"day": p.day.isoformat(), "zone": p.zone, "zone_name": p.zone_name,
                                      "schedule_id": p.schedule_id, "title": p.title, "airings": set(),
                                      "planned": 0, "played": 0, "heard": 0, "not_heard": 0, "unmeasured": 0,
                                      "failed": 0, "stopped": 0, "started": 0, "missing": 0, "missing_nodes": [],
                                      "not_heard_nodes": []})
        row["airings"].add(p.item_id)
        row["planned"] += 1
        result, was_heard = outcome.get((p.node_id, p.item_id), ("missing", None))
        row[result] += 1
        if result != "played" and len(row["missing_nodes"]) < 50:
            row["missing_nodes"].append(p.node_id)
        if result == "played":
            row[{True: "heard", False: "not_heard", None: "unmeasured"}[was_heard]] += 1
            if was_heard is False and len(row["not_heard_nodes"]) < 50:
                row["not_heard_nodes"].append(p.node_id)
    rows = []
    for key in sorted(groups):
        row = groups[key]
        row["airings"] = len(row["airings"])
        row["compliance"] = round(100.0 * row["played"] / row["planned"], 1) if row["planned"] else None
        rows.append(row)
    planned = sum(r["planned"] for r in rows)
    played = sum(r["played"] for r in rows)
    return {"from": first.isoformat(), "to": last.isoformat(), "zone": zone, "schedule_id": schedule_id,
            "rows": rows, "planned": planned, "played": played,
            "heard": sum(r["heard"] for r in rows), "not_heard": sum(r["not_heard"] for r in rows),
            "unmeasured": sum(r["unmeasured"] for r in rows),
            "compliance": round(100.0 * played / planned, 1) if planned else None,
            "upcoming": len(later), "upcoming_airings": len({(p.zone, p.item_id) for p in later})}


def daily_by_zone(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Planned (due) and played node plays per zone and day of a compliance report, every day of its period
    (empty days too): the rows of the report's charts and of the tables that carry the same numbers."""
    first, last = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    zones: dict[str, dict[str, Any]] = {}
    for row in report["rows"]:
        z = zones.setdefault(row["zone"], {"zone": row["zone"], "zone_name": row["zone_name"] or row["zone"],
                                           "counts": defaultdict(lambda: [0, 0])})
        counts = z["counts"][date.fromisoformat(row["day"])]
        counts[0] += row["planned"]
        counts[1] += row["played"]
    out = []
    for code in sorted(zones):
        z = zones[code]
        series = [{"day": d, "planned": z["counts"][d][0] if d in z["counts"] else 0,
                   "played": z["counts"][d][1] if d in z["counts"] else 0} for d in days]
        planned, played = sum(x["planned"] for x in series), sum(x["played"] for x in series)
        out.append({"zone": code, "zone_name": z["zone_name"], "days": series, "planned": planned, "played": played,
                    "compliance": round(100.0 * played / planned, 1) if planned else None})
    return out


REPORT_CSV_COLUMNS = ("day", "zone", "zone_name", "schedule_id", "title", "airings", "planned", "played", "failed",
                      "stopped", "started", "missing", "compliance")


def compliance_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)  # formula cells neutralised (broadcaster/csvsafe.py)
    writer.writerow(REPORT_CSV_COLUMNS)
    for row in report["rows"]:
        writer.writerow(["" if row[c] is None else row[c] for c in REPORT_CSV_COLUMNS])
    writer.writerow(["total", "", "", "", "", "", report["planned"], report["played"], "", "", "", "",
                     "" if report["compliance"] is None else report["compliance"]])
    return "\ufeff" + out.getvalue()


def parse_month(value: str | None, today: date | None = None) -> tuple[date, date]:
    if not value:
        today = today or datetime.now(UTC).date()
        value = f"{today.year:04d}-{today.month:02d}"
    m = re.fullmatch(r"(\d{4})-(\d{2})", value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise _service_error("invalid_month", "month must look like 2026-03", "month")
    year, month = int(m.group(1)), int(m.group(2))
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def parse_day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise _service_error("invalid_date", f"{name} must be a date such as 2026-03-31", name) from exc


def monthly(service: PanelCore, month: str | None = None, scope: tenancy.Scope | None = None) -> dict[str, Any]:
    """Province statistics for one month (what the provincial information source system asks of a ward):
    bulletins aired, airings, broadcast minutes, loudspeaker-minutes played, emergencies, success rate."""
    first, last = parse_month(month, service.local(datetime.now(UTC)).date())
    now = _now()
    report = compliance(service, first, last, scope=scope, now=now)
    plays, _later = split_due(planned_plays(service, first, last, scope=scope), now)  # due ones only, as above
    start, end = _local_day_bounds(service, first, last)
    outcome = _outcomes(service, plays, start, end)
    airings: dict[tuple[str, str], int] = {}
    for p in plays:
        airings[(p.zone, p.item_id)] = p.duration_ms
    played_ms = sum(p.duration_ms for p in plays if outcome.get((p.node_id, p.item_id), ("",))[0] == "played")
    with service.db.session() as s:
        aq = select(Alert).where(Alert.released_at >= start, Alert.released_at < end, Alert.kind == "alert")
        alerts = list(s.scalars(scope.restrict(aq, Alert) if scope is not None else aq))
    return {
        "month": f"{first.year:04d}-{first.month:02d}",
        "bulletins": len({p.schedule_id for p in plays}),
        "airings": len(airings),
        "minutes": round(sum(airings.values()) / 60000, 1),
        "loudspeaker_minutes": round(played_ms / 60000, 1),
        "emergencies": sum(1 for a in alerts if not a.drill),
        "drills": sum(1 for a in alerts if a.drill),
        "planned_plays": report["planned"],
        "played": report["played"],
        "heard": report["heard"],
        "not_heard": report["not_heard"],
        "unmeasured": report["unmeasured"],
        "success_rate": report["compliance"],
        "heard_rate": _heard_rate(report["heard"], report["planned"] - report["unmeasured"]),
        "zones": len({p.zone for p in plays}),
        "nodes": len({p.node_id for p in plays}),
        "upcoming_airings": report["upcoming_airings"],
    }


def _heard_rate(heard_plays: int, measurable: int) -> float | None:
    """Heard node plays in % of the due ones whose audibility can be known (those played without an output
    measurement left out); None when there are none."""
    return round(100.0 * heard_plays / measurable, 1) if measurable > 0 else None


MONTHLY_CSV_COLUMNS = ("month", "bulletins", "airings", "minutes", "loudspeaker_minutes", "emergencies", "drills",
                       "planned_plays", "played", "heard", "not_heard", "unmeasured", "heard_rate", "success_rate")


def monthly_csv(stats: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)  # formula cells neutralised (broadcaster/csvsafe.py)
    writer.writerow(MONTHLY_CSV_COLUMNS)
    writer.writerow(["" if stats[c] is None else stats[c] for c in MONTHLY_CSV_COLUMNS])
    return "\ufeff" + out.getvalue()


# ================================================================================================ province
def province_today(service: PanelCore, scope: tenancy.Scope | None = None) -> list[dict[str, Any]]:
    """The province dashboard: per ward, nodes online, today's airings played / planned, alerts sounding."""
    today = service.local(datetime.now(UTC)).date()
    refresh(service)
    out = []
    with service.db.session() as s:
        live = policy.live_alerts(s)
        live_by_ward: dict[int | None, int] = defaultdict(int)
        for a in live:
            for wid in ([w.id for w in a.wards] or [a.ward_id]):
                live_by_ward[wid] += 1
    for ward in tenancy.list_wards(service, scope):
        ward_scope = tenancy.Scope(frozenset({ward.id}))
        with service.db.session() as s:
            presence = list(s.scalars(select(Node.presence).where(Node.ward_id == ward.id)))
        report = compliance(service, today, today, scope=ward_scope)
        out.append({"ward": ward, "nodes": len(presence), "online": sum(1 for p in presence if p == "online"),
                    "planned": report["planned"], "played": report["played"],
                    "live_alerts": live_by_ward.get(ward.id, 0)})
    return out


#: (``heard`` and ``not_heard`` came later: at the end, so that readers by position keep working)
PROVINCE_CSV_COLUMNS = ("month", "ward", "ward_name", "airings", "planned", "played", "missed", "success_rate",
                        "nodes", "nodes_online", "emergencies", "heard", "not_heard")


def province_report(service: PanelCore, month: str | None = None,
                    scope: tenancy.Scope | None = None) -> dict[str, Any]:
    """The province's monthly report to the information-source system: per ward, airings planned and played
    (per loudspeaker), missed, nodes and nodes online now, emergencies. Each ward only in its own scope."""
    first, last = parse_month(month, service.local(datetime.now(UTC)).date())
    refresh(service)
    rows = []
    for ward in tenancy.list_wards(service, scope):
        ward_scope = tenancy.Scope(frozenset({ward.id}))
        stats = monthly(service, f"{first.year:04d}-{first.month:02d}", ward_scope)
        with service.db.session() as s:
            nodes = list(s.scalars(select(Node.presence).where(Node.ward_id == ward.id)))
        planned, played = stats["planned_plays"], stats["played"]
        rows.append({"ward": ward.code, "ward_name": ward.name, "airings": stats["airings"], "planned": planned,
                     "played": played, "heard": stats["heard"], "not_heard": stats["not_heard"],
                     "missed": planned - played, "success_rate": stats["success_rate"],
                     "nodes": len(nodes), "nodes_online": sum(1 for p in nodes if p == "online"),
                     "emergencies": stats["emergencies"]})
    total = {k: sum(r[k] for r in rows) for k in ("airings", "planned", "played", "heard", "not_heard", "missed",
                                                    "nodes", "nodes_online", "emergencies")}
    total["success_rate"] = round(100.0 * total["played"] / total["planned"], 1) if total["planned"] else None
    return {"month": f"{first.year:04d}-{first.month:02d}", "wards": rows, "total": total}


def province_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)  # formula cells neutralised (broadcaster/csvsafe.py)
    writer.writerow(PROVINCE_CSV_COLUMNS)
    for row in report["wards"]:
        writer.writerow([report["month"], *("" if row[c] is None else row[c] for c in PROVINCE_CSV_COLUMNS[1:])])
    total = report["total"]
    writer.writerow([report["month"], "total", "", *("" if total[c] is None else total[c]
                                                      for c in PROVINCE_CSV_COLUMNS[3:])])
    return "\ufeff" + out.getvalue()
