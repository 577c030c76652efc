"""Loa Phường MQTT protocol, version 1 — the wire contract between panel and loudspeaker nodes.

This module is the single source of truth for topics, payload models, canonical JSON and Ed25519
signatures. It imports neither Flask nor paho, so both the panel (``broadcaster``) and node firmware
(``firmware_sim``) use it. ``docs/protocol.md`` describes the same contract for vendors, and the JSON
Schemas under ``devices/schemas/`` are generated from these models (``loaphuong schemas --write``);
a test fails when they drift.

Rules every payload follows:

* UTF-8 JSON objects; receivers ignore unknown keys (additive changes keep version 1).
* Times are RFC 3339 UTC strings with a ``Z`` suffix and millisecond precision.
* No floating-point numbers anywhere in a signed payload, so canonical JSON is unambiguous.
* Panel → node payloads (plan, command) carry ``signature``: base64 of the Ed25519 signature over the
  canonical JSON of the object with ``signature`` removed.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "loaphuong"
PLAN_HORIZON_HOURS = 48
#: Node ids appear in topics: lowercase letters, digits, ``-`` and ``_`` only (never ``+ # /``).
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SHA256_RE = r"^[0-9a-f]{64}$"
#: Largest MQTT payload a node must accept; the panel never publishes more.
MAX_PAYLOAD_BYTES = 256 * 1024

M = TypeVar("M", bound=BaseModel)

NodeId = Annotated[str, Field(pattern=NODE_ID_RE.pattern, description="Node id: [a-z0-9][a-z0-9_-]{0,63}")]
Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$",
        description="RFC 3339 UTC time with Z suffix, e.g. 2026-11-22T23:00:00.000Z",
    ),
]


class ProtocolError(ValueError):
    """A payload that must be dropped: malformed, wrong schema, bad signature, expired or replayed."""


# --------------------------------------------------------------------------------------------- time


def format_ts(moment: datetime) -> str:
    """UTC RFC 3339 with millisecond precision and ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; protocol times are always timezone-aware")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_ts(value: str) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ProtocolError(f"not a UTC timestamp: {value!r}")
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError as exc:
        raise ProtocolError(f"not a UTC timestamp: {value!r}") from exc


# ------------------------------------------------------------------------------------------- topics


class Topics:
    """Topic names for one deployment. ``prefix`` is configurable; the ``v1`` segment is fixed.

    All node topics live under ``{prefix}/v1/nodes/{node_id}/``::

        plan     panel → node  retained, QoS 1, signed
        cmd      panel → node  not retained, QoS 1, signed, expires
        status   node → panel  retained, QoS 1, last-will "offline"
        events   node → panel  not retained, QoS 1, per-node sequence number
        ack      node → panel  not retained, QoS 1, answers one cmd
    """

    NODE_TOPICS = ("plan", "cmd", "status", "events", "ack")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"invalid topic prefix {prefix!r}")
        self.prefix = prefix
        self.root = f"{prefix}/v{PROTOCOL_VERSION}"

    def node(self, node_id: str, leaf: str) -> str:
        if not NODE_ID_RE.fullmatch(node_id):
            raise ValueError(f"invalid node id {node_id!r}")
        if leaf not in self.NODE_TOPICS:
            raise ValueError(f"unknown node topic {leaf!r}")
        return f"{self.root}/nodes/{node_id}/{leaf}"

    def plan(self, node_id: str) -> str:
        return self.node(node_id, "plan")

    def cmd(self, node_id: str) -> str:
        return self.node(node_id, "cmd")

    def status(self, node_id: str) -> str:
        return self.node(node_id, "status")

    def events(self, node_id: str) -> str:
        return self.node(node_id, "events")

    def ack(self, node_id: str) -> str:
        return self.node(node_id, "ack")

    def panel_status(self) -> str:
        return f"{self.root}/panel/status"

    def all_nodes(self, leaf: str) -> str:
        """Wildcard subscription the panel uses, e.g. ``loaphuong/v1/nodes/+/events``."""
        return f"{self.root}/nodes/+/{leaf}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(node_id, leaf)`` for a node topic of this deployment, else ``None``."""
        head = f"{self.root}/nodes/"
        if not topic.startswith(head):
            return None
        rest = topic[len(head) :].split("/")
        if len(rest) != 2 or rest[1] not in self.NODE_TOPICS or not NODE_ID_RE.fullmatch(rest[0]):
            return None
        return rest[0], rest[1]


# ----------------------------------------------------------------------------------------- models


class _Model(BaseModel):
    # Receivers ignore unknown keys so that additive changes keep protocol version 1.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Priority(StrEnum):
    """The three levels of Circular 39/2020/TT-BTTTT."""

    normal = "normal"
    priority = "priority"
    emergency = "emergency"


PRIORITY_RANK = {Priority.normal: 0, Priority.priority: 1, Priority.emergency: 2}


class Media(_Model):
    url: str = Field(description="HTTP(S) URL of the audio; fetch with header 'Authorization: Bearer <token>'")
    sha256: str = Field(pattern=SHA256_RE, description="Lowercase hex SHA-256 of the exact bytes")
    bytes: int = Field(ge=1, description="Exact size of the file in bytes")
    duration_ms: int = Field(ge=1, description="Playing time in milliseconds")
    content_type: str = Field(default="audio/mpeg", description="MIME type; v1 panels send audio/mpeg")


class PlanItem(_Model):
    id: str = Field(min_length=1, max_length=128, description="Unique id of this play within the plan")
    start: Timestamp = Field(description="Absolute UTC start time; play from the node's own NTP clock")
    media: Media
    priority: Priority = Priority.normal
    title: str = Field(default="", max_length=300, description="Human-readable title, for logs and displays")
    max_late_ms: int = Field(
        default=60_000,
        ge=0,
        description="Play only if the node can start within this many ms after `start`; later it is "
        "stale and must be skipped (reported as playback_failed reason=stale)",
    )
    schedule_id: str | None = Field(default=None, description="Panel schedule the item comes from")


class Plan(_Model):
    type: Literal["plan"] = "plan"
    protocol: Literal[1] = 1
    node_id: NodeId
    version: int = Field(ge=1, description="Strictly increasing per node; refuse a plan older than the one held")
    generated_at: Timestamp
    valid_until: Timestamp = Field(description="End of the window this plan covers (≈48 h ahead)")
    items: list[PlanItem] = Field(default_factory=list, max_length=2000)
    signature: str = Field(default="", description="base64 Ed25519 signature; see 'Signatures'")

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[PlanItem]) -> list[PlanItem]:
        seen = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"duplicate item id {item.id!r}")
            seen.add(item.id)
        return items


class CommandName(StrEnum):
    ping = "ping"
    resync = "resync"
    stop = "stop"
    set_volume = "set_volume"


class Command(_Model):
    type: Literal["command"] = "command"
    protocol: Literal[1] = 1
    node_id: NodeId
    id: str = Field(min_length=8, max_length=64, description="Unique id (nonce); a node executes an id once")
    name: str = Field(description="ping | resync | stop | set_volume; unknown names are acked 'rejected'")
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: Timestamp
    expires_at: Timestamp = Field(description="A node refuses a command received after this time")
    signature: str = ""


class NodeState(StrEnum):
    online = "online"
    offline = "offline"
    stopped = "stopped"


class Status(_Model):
    type: Literal["status"] = "status"
    protocol: Literal[1] = 1
    node_id: NodeId
    state: NodeState
    session: int = Field(ge=0, description="Boot counter; the last-will carries the same number")
    at: Timestamp | None = None
    firmware: str | None = None
    plan_version: int | None = None
    volume: int | None = Field(default=None, ge=0, le=100)
    playing: str | None = Field(default=None, description="Plan item id currently playing, if any")
    free_bytes: int | None = None


class EventName(StrEnum):
    plan_applied = "plan_applied"
    plan_rejected = "plan_rejected"
    media_ready = "media_ready"
    media_failed = "media_failed"
    playback_started = "playback_started"
    playback_finished = "playback_finished"
    playback_failed = "playback_failed"
    command_rejected = "command_rejected"


class Event(_Model):
    type: Literal["event"] = "event"
    protocol: Literal[1] = 1
    node_id: NodeId
    seq: int = Field(ge=1, description="Per-node sequence, +1 per event, kept across reboots")
    at: Timestamp = Field(description="When it happened, node clock")
    event: EventName
    plan_version: int | None = None
    item_id: str | None = None
    schedule_id: str | None = None
    sha256: str | None = Field(default=None, pattern=SHA256_RE)
    scheduled_start: Timestamp | None = None
    actual_start: Timestamp | None = None
    offset_ms: int | None = Field(default=None, description="actual_start − scheduled_start in ms")
    reason: str | None = Field(default=None, max_length=500)


class AckStatus(StrEnum):
    ok = "ok"
    error = "error"
    rejected = "rejected"


class Ack(_Model):
    type: Literal["ack"] = "ack"
    protocol: Literal[1] = 1
    node_id: NodeId
    command_id: str
    status: AckStatus
    at: Timestamp
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


#: Payload model per topic leaf.
TOPIC_MODELS: dict[str, type[_Model]] = {
    "plan": Plan,
    "cmd": Command,
    "status": Status,
    "events": Event,
    "ack": Ack,
}


# ------------------------------------------------------------------------------ canonical JSON


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes that signatures cover.

    Equal to RFC 8785 (JCS) for the values v1 allows (objects, arrays, strings, integers, booleans,
    null — never floats): keys sorted, no insignificant whitespace, UTF-8, non-ASCII not escaped.
    """
    try:
        _reject_floats(obj)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except RecursionError as exc:
        raise ProtocolError("payload is nested too deeply") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" from a JSON escape
        raise ProtocolError("payload contains a string that is not valid Unicode") from exc


def _reject_floats(obj: Any) -> None:
    if isinstance(obj, float):
        raise ProtocolError("floating-point numbers are not allowed in signed payloads")
    if isinstance(obj, dict):
        for value in obj.values():
            _reject_floats(value)
    elif isinstance(obj, list):
        for value in obj:
            _reject_floats(value)


# ---------------------------------------------------------------------------------- signatures


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError("panel public key must be 32 raw bytes in base64") from exc


def sign_payload(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of ``payload`` with ``signature`` set."""
    body = {k: v for k, v in payload.items() if k != "signature"}
    signature = private_key.sign(canonical_json(body))
    return {**body, "signature": base64.b64encode(signature).decode()}


def verify_signature(payload: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    sig_b64 = payload.get("signature")
    if not isinstance(sig_b64, str) or not sig_b64:
        raise ProtocolError("unsigned payload")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError as exc:
        raise ProtocolError("signature is not base64") from exc
    body = {k: v for k, v in payload.items() if k != "signature"}
    try:
        public_key.verify(signature, canonical_json(body))
    except InvalidSignature as exc:
        raise ProtocolError("bad signature") from exc


# ------------------------------------------------------------------------------------ decoding


def decode_json(raw: bytes | str) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ProtocolError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("payload is not UTF-8") from exc
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or an int over 4300 digits
        raise ProtocolError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("payload is not a JSON object")
    return data


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise ProtocolError(f"invalid {model.__name__.lower()}: {where}: {first.get('msg')}") from exc


def decode_signed(
    model: type[M], raw: bytes | str, public_key: Ed25519PublicKey, *, node_id: str
) -> M:
    """Decode a panel → node payload: JSON, signature, schema, addressed to this node."""
    data = decode_json(raw)
    verify_signature(data, public_key)
    obj = parse_model(model, data)
    if getattr(obj, "node_id", None) != node_id:
        raise ProtocolError(f"addressed to {getattr(obj, 'node_id', None)!r}, not {node_id!r}")
    return obj


def decode_from_node(model: type[M], raw: bytes | str, *, topic_node_id: str) -> M:
    """Decode a node → panel payload; the node id inside must match the topic."""
    obj = parse_model(model, decode_json(raw))
    if getattr(obj, "node_id", None) != topic_node_id:
        raise ProtocolError(f"node id {getattr(obj, 'node_id', None)!r} does not match topic {topic_node_id!r}")
    return obj


def encode(payload: BaseModel | dict[str, Any]) -> bytes:
    """Serialise a payload for the wire (compact UTF-8 JSON)."""
    data = payload.model_dump(mode="json", exclude_none=True) if isinstance(payload, BaseModel) else payload
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now_utc() -> datetime:
    return datetime.now(UTC)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema per topic leaf, generated from the models (checked in under devices/schemas/)."""
    out = {}
    for leaf, model in TOPIC_MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://loaphuong.example/protocol/v1/{leaf}.schema.json"
        out[leaf] = schema
    return out
