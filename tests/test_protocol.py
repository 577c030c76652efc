"""Protocol v1 wire contract: schemas, signatures, decoding, topics, timestamps and docs/protocol.md.

Fast, no broker. The property tests (hypothesis) feed arbitrary bytes and arbitrary JSON into every
decoder: the only exception a receiver may ever see is ``ProtocolError``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from firmware_sim.wire import decode_from_panel
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_broker_conformance import ACL

from broadcaster.fleet import NODE_CONFIG_FORMAT, node_config
from devices.protocol import (
    MAX_PAYLOAD_BYTES,
    NODE_ID_RE,
    TOPIC_MODELS,
    Ack,
    Command,
    Event,
    Plan,
    ProtocolError,
    Status,
    Topics,
    canonical_json,
    decode_from_node,
    decode_signed,
    encode,
    format_ts,
    json_schemas,
    load_public_key,
    parse_model,
    parse_ts,
    public_key_b64,
    sign_payload,
    sign_to_wire,
    verify_signature,
)
from devices.schema_files import SCHEMA_DIR, check_schemas, load_schema, write_schemas

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"

#: RFC 8032 test vector 1 — the documented test key (docs/protocol.md, "Worked example").
TEST_SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(TEST_SEED_HEX))
PUB = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LEAF_OF_TYPE = {"plan": "plan", "command": "cmd", "status": "status", "event": "events", "ack": "ack",
                "plan_request": "plan_request"}
SIGNED_LEAVES = {"plan", "cmd"}


# ------------------------------------------------------------------------------------- samples


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_dict(**overrides: Any) -> dict[str, Any]:
    plan = {
        "type": "plan",
        "protocol": 1,
        "node_id": "ben-nghe-07",
        "version": 42,
        "generated_at": "2026-11-22T21:05:12.345Z",
        "valid_until": "2026-11-24T21:05:12.345Z",
        "items": [
            {
                "id": "s12-20261123-0530",
                "start": "2026-11-22T22:30:00.000Z",
                "priority": "normal",
                "title": "Bản tin sáng phường Bến Nghé",
                "max_late_ms": 60000,
                "schedule_id": "s12",
                "media": {
                    "url": "https://loa.example.vn/media/a.mp3",
                    "sha256": sha(b"a"),
                    "bytes": 481280,
                    "duration_ms": 60160,
                    "content_type": "audio/mpeg",
                },
            },
            {
                "id": "e1",
                "start": "2026-11-23T10:00:00Z",
                "priority": "emergency",
                "title": "Cảnh báo bão số 9 — sơ tán khẩn cấp",
                "media": {
                    "url": "https://loa.example.vn/media/b.mp3",
                    "sha256": sha(b"b"),
                    "bytes": 9,
                    "duration_ms": 1,
                },
            },
        ],
    }
    plan.update(overrides)
    return plan


def command_dict(**overrides: Any) -> dict[str, Any]:
    cmd = {
        "type": "command",
        "protocol": 1,
        "node_id": "ben-nghe-07",
        "id": "c-7f3e2a91b4d0",
        "name": "set_volume",
        "args": {"volume": 80},
        "issued_at": "2026-11-23T01:15:00.000Z",
        "expires_at": "2026-11-23T01:20:00.000Z",
    }
    cmd.update(overrides)
    return cmd


def status_dict(**overrides: Any) -> dict[str, Any]:
    status = {
        "type": "status",
        "protocol": 1,
        "node_id": "ben-nghe-07",
        "state": "online",
        "session": 17,
        "at": "2026-11-22T22:29:41.020Z",
        "firmware": "acme-loa 2.4.1",
        "plan_version": 42,
        "volume": 80,
        "playing": "s12-20261123-0530",
        "free_bytes": 734003200,
    }
    status.update(overrides)
    return status


def event_dict(**overrides: Any) -> dict[str, Any]:
    event = {
        "type": "event",
        "protocol": 1,
        "node_id": "ben-nghe-07",
        "seq": 1234,
        "at": "2026-11-22T22:30:00.180Z",
        "event": "playback_started",
        "plan_version": 42,
        "item_id": "s12-20261123-0530",
        "schedule_id": "s12",
        "sha256": sha(b"a"),
        "scheduled_start": "2026-11-22T22:30:00.000Z",
        "actual_start": "2026-11-22T22:30:00.180Z",
        "offset_ms": 180,
    }
    event.update(overrides)
    return event


def ack_dict(**overrides: Any) -> dict[str, Any]:
    ack = {
        "type": "ack",
        "protocol": 1,
        "node_id": "ben-nghe-07",
        "command_id": "c-7f3e2a91b4d0",
        "status": "ok",
        "at": "2026-11-23T01:15:00.412Z",
        "data": {"volume": 80},
    }
    ack.update(overrides)
    return ack


UNSIGNED = {
    "plan": plan_dict,
    "cmd": command_dict,
    "status": status_dict,
    "events": event_dict,
    "ack": ack_dict,
}


def valid_payloads() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("plan", sign_payload(plan_dict(), KEY)),
        ("plan", sign_payload(plan_dict(items=[], version=1), KEY)),
        ("cmd", sign_payload(command_dict(), KEY)),
        ("cmd", sign_payload(command_dict(name="ping", args={}, id="12345678"), KEY)),
        ("status", status_dict()),
        ("status", {"type": "status", "protocol": 1, "node_id": "n1", "state": "offline", "session": 0}),
        ("events", event_dict()),
        ("events", event_dict(event="playback_failed", reason="stale", seq=1, actual_start=None)),
        (
            "events",
            {
                "type": "event",
                "node_id": "n1",
                "seq": 1,
                "at": "2026-01-01T00:00:00Z",
                "event": "plan_applied",
            },
        ),
        ("ack", ack_dict()),
        ("ack", ack_dict(status="rejected", error="expired", data={})),
    ]


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


INVALID: list[tuple[str, str, dict[str, Any]]] = [
    ("plan", "uppercase node id", plan_dict(node_id="Ben-Nghe")),
    ("plan", "node id with slash", plan_dict(node_id="a/b")),
    ("plan", "version 0", plan_dict(version=0)),
    ("plan", "local time", plan_dict(generated_at="2026-11-23 05:30:00")),
    ("plan", "offset instead of Z", plan_dict(valid_until="2026-11-23T05:30:00+07:00")),
    ("plan", "missing node_id", {k: v for k, v in plan_dict().items() if k != "node_id"}),
    ("plan", "wrong type", plan_dict(type="command")),
    ("plan", "protocol 2", plan_dict(protocol=2)),
    ("plan", "items not a list", plan_dict(items={"a": 1})),
    (
        "plan",
        "uppercase sha256",
        plan_dict(
            items=[
                {
                    **plan_dict()["items"][1],
                    "media": {**plan_dict()["items"][1]["media"], "sha256": sha(b"b").upper()},
                }
            ]
        ),
    ),
    ("plan", "unknown priority", plan_dict(items=[{**plan_dict()["items"][1], "priority": "urgent"}])),
    (
        "plan",
        "zero bytes",
        plan_dict(
            items=[{**plan_dict()["items"][1], "media": {**plan_dict()["items"][1]["media"], "bytes": 0}}]
        ),
    ),
    ("plan", "negative max_late_ms", plan_dict(items=[{**plan_dict()["items"][1], "max_late_ms": -1}])),
    ("cmd", "short id", command_dict(id="c-1")),
    ("cmd", "missing expires_at", {k: v for k, v in command_dict().items() if k != "expires_at"}),
    ("cmd", "args not an object", command_dict(args=[80])),
    ("status", "unknown state", status_dict(state="sleeping")),
    ("status", "volume 101", status_dict(volume=101)),
    ("status", "negative session", status_dict(session=-1)),
    ("events", "seq 0", event_dict(seq=0)),
    ("events", "unknown event", event_dict(event="exploded")),
    ("events", "bad sha256", event_dict(sha256="xyz")),
    ("events", "reason too long", event_dict(reason="x" * 501)),
    ("ack", "unknown status", ack_dict(status="maybe")),
    ("ack", "missing command_id", {k: v for k, v in ack_dict().items() if k != "command_id"}),
]


# ---------------------------------------------------------------------------------- schemas


def test_checked_in_schemas_match_models():
    stale = check_schemas()
    assert not stale, (
        f"devices/schemas/ is out of date ({', '.join(stale)}): run `make schemas` "
        "(or `python -m devices.schema_files`) and commit the result"
    )


def test_schema_dir_holds_exactly_one_file_per_topic_leaf():
    expected = sorted(f"{leaf}.schema.json" for leaf in TOPIC_MODELS)
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == expected


def test_write_and_check_schemas(tmp_path):
    written = write_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{leaf}.schema.json" for leaf in TOPIC_MODELS)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert json.loads(text) == json_schemas()[path.name.split(".")[0]]
        assert path.read_bytes() == (SCHEMA_DIR / path.name).read_bytes()
    assert check_schemas(tmp_path) == []
    (tmp_path / "plan.schema.json").write_text("{}\n")
    (tmp_path / "ack.schema.json").unlink()
    assert sorted(check_schemas(tmp_path)) == ["ack.schema.json", "plan.schema.json"]


@pytest.mark.parametrize("leaf", list(TOPIC_MODELS))
def test_checked_in_schema_is_draft_2020_12(leaf):
    schema = load_schema(leaf)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)


def _schema_errors(leaf: str, payload: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema(leaf))
    return [e.message for e in validator.iter_errors(payload)]


@pytest.mark.parametrize(("leaf", "payload"), valid_payloads(), ids=lambda v: v if isinstance(v, str) else "")
def test_valid_payloads_pass_schema_and_model(leaf, payload):
    assert _schema_errors(leaf, payload) == []
    model = TOPIC_MODELS[leaf]
    obj = parse_model(model, payload)
    if leaf in SIGNED_LEAVES:
        assert decode_signed(model, encode(payload), PUB, node_id=payload["node_id"]) == obj
    else:
        assert decode_from_node(model, encode(payload), topic_node_id=payload["node_id"]) == obj
    # What the model writes back is itself valid (the panel re-publishes parsed payloads).
    assert _schema_errors(leaf, obj.model_dump(mode="json", exclude_none=True)) == []


@pytest.mark.parametrize(("leaf", "why", "payload"), INVALID, ids=[f"{c[0]}-{c[1]}" for c in INVALID])
def test_invalid_payloads_fail_schema_and_model(leaf, why, payload):
    payload = _drop_none(payload)
    assert _schema_errors(leaf, payload), f"schema accepted: {why}"
    with pytest.raises(ValidationError):
        TOPIC_MODELS[leaf].model_validate(payload)
    with pytest.raises(ProtocolError):
        parse_model(TOPIC_MODELS[leaf], payload)


def test_duplicate_item_ids_are_refused_by_the_model():
    """JSON Schema cannot express 'unique by id'; the model (and so every node) must."""
    item = plan_dict()["items"][0]
    payload = plan_dict(items=[item, {**item, "start": "2026-11-23T00:00:00Z"}])
    assert _schema_errors("plan", payload) == []
    with pytest.raises(ProtocolError, match="duplicate item id"):
        parse_model(Plan, payload)


def test_defaults_and_unknown_keys():
    plan = parse_model(Plan, plan_dict(future_key={"x": 1}))
    assert plan.items[1].priority == "emergency"
    assert plan.items[1].max_late_ms == 60_000
    assert plan.items[1].media.content_type == "audio/mpeg"
    assert not hasattr(plan, "future_key")


# --------------------------------------------------------------------------------- signatures


def test_sign_verify_roundtrip_keeps_vietnamese_text():
    signed = sign_payload(plan_dict(), KEY)
    verify_signature(signed, PUB)
    wire = encode(signed)
    assert "Bản tin sáng phường Bến Nghé".encode() in wire  # not \u-escaped on the wire either
    plan = decode_signed(Plan, wire, PUB, node_id="ben-nghe-07")
    assert plan.items[0].title == "Bản tin sáng phường Bến Nghé"
    assert plan.items[1].title == "Cảnh báo bão số 9 — sơ tán khẩn cấp"
    assert decode_signed(Plan, wire.decode("utf-8"), PUB, node_id="ben-nghe-07") == plan


def test_sign_payload_replaces_signature_and_leaves_input_alone():
    original = plan_dict(signature="old")
    before = copy.deepcopy(original)
    signed = sign_payload(original, KEY)
    assert original == before
    assert signed["signature"] != "old"
    assert len(base64.b64decode(signed["signature"], validate=True)) == 64
    assert sign_payload(signed, KEY) == signed  # deterministic, signature excluded from what is signed


def test_sign_to_wire_is_the_signed_payload_in_one_serialisation():
    wire = sign_to_wire(plan_dict(signature="old"), KEY)
    assert json.loads(wire) == sign_payload(plan_dict(), KEY)
    assert wire == encode(json.loads(wire))  # compact, UTF-8, what the panel stores and republishes
    assert "Bản tin sáng phường Bến Nghé".encode() in wire
    assert decode_signed(Plan, wire, PUB, node_id="ben-nghe-07") == decode_signed(
        Plan, encode(sign_payload(plan_dict(), KEY)), PUB, node_id="ben-nghe-07")
    assert json.loads(sign_to_wire({}, KEY)).keys() == {"signature"}


TAMPERINGS = {
    "node_id": lambda p: p.update(node_id="ben-nghe-08"),
    "version": lambda p: p.update(version=p["version"] + 1),
    "valid_until": lambda p: p.update(valid_until="2026-12-24T21:05:12.345Z"),
    "item start": lambda p: p["items"][0].update(start="2026-11-22T22:31:00.000Z"),
    "item priority": lambda p: p["items"][0].update(priority="emergency"),
    "item title": lambda p: p["items"][0].update(title="Bản tin sáng phường Bến Nghe"),
    "media url": lambda p: p["items"][0]["media"].update(url="https://evil.example/a.mp3"),
    "media sha256": lambda p: p["items"][0]["media"].update(sha256=sha(b"evil")),
    "media bytes": lambda p: p["items"][0]["media"].update(bytes=481281),
    "drop an item": lambda p: p["items"].pop(),
    "reorder items": lambda p: p["items"].reverse(),
    "add a key": lambda p: p.update(extra=True),
    "drop a defaulted key": lambda p: p["items"][0].pop("max_late_ms"),
    "null instead of absent": lambda p: p["items"][1].update(schedule_id=None),
}


@pytest.mark.parametrize("tamper", list(TAMPERINGS), ids=list(TAMPERINGS))
def test_tampering_any_field_breaks_the_signature(tamper):
    signed = sign_payload(plan_dict(), KEY)
    TAMPERINGS[tamper](signed)
    with pytest.raises(ProtocolError, match="bad signature"):
        verify_signature(signed, PUB)
    with pytest.raises(ProtocolError):
        decode_signed(Plan, encode(signed), PUB, node_id=signed["node_id"])


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        (None, "unsigned"),
        ("", "unsigned"),
        (123, "unsigned"),
        ("!!not base64!!", "not base64"),
        ("chữ ký", "not base64"),
        (base64.b64encode(b"\0" * 64).decode(), "bad signature"),
        (base64.b64encode(b"\0" * 63).decode(), "bad signature"),
    ],
)
def test_missing_or_malformed_signature(signature, match):
    signed = sign_payload(command_dict(), KEY)
    if signature is None:
        del signed["signature"]
    else:
        signed["signature"] = signature
    with pytest.raises(ProtocolError, match=match):
        verify_signature(signed, PUB)
    with pytest.raises(ProtocolError):
        decode_signed(Command, encode(signed), PUB, node_id=signed["node_id"])


def test_signature_by_another_key_is_refused():
    forged = sign_payload(plan_dict(), OTHER_KEY)
    with pytest.raises(ProtocolError, match="bad signature"):
        decode_signed(Plan, encode(forged), PUB, node_id="ben-nghe-07")


def test_validly_signed_payload_for_another_node_is_refused():
    wire = encode(sign_payload(command_dict(node_id="ben-nghe-08"), KEY))
    with pytest.raises(ProtocolError, match="addressed to"):
        decode_signed(Command, wire, PUB, node_id="ben-nghe-07")


def test_unknown_keys_are_signed_too():
    signed = sign_payload(plan_dict(future={"a": [1, 2]}), KEY)
    assert decode_signed(Plan, encode(signed), PUB, node_id="ben-nghe-07").version == 42


def test_canonical_json_is_key_order_independent():
    a = {"b": 1, "a": {"y": [1, {"d": None, "c": True}], "x": "ả"}}
    b = {"a": {"x": "ả", "y": [1, {"c": True, "d": None}]}, "b": 1}
    expected = '{"a":{"x":"ả","y":[1,{"c":true,"d":null}]},"b":1}'.encode()
    assert canonical_json(a) == canonical_json(b) == expected


def test_canonical_json_escaping_matches_rfc8785():
    value = {"s": '\x00\x1f\b\t\n\f\r"\\/\u2028\x7fé', "é": 1, "Z": 2, "a": 3, "n": -0}
    expected = '{"Z":2,"a":3,"n":0,"s":"\\u0000\\u001f\\b\\t\\n\\f\\r\\"\\\\/\u2028\x7fé","é":1}'
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize("value", [1.5, 1.0, {"a": 0.1}, [1, [2, {"b": 1e3}]], {"a": float("nan")}])
def test_canonical_json_rejects_floats(value):
    with pytest.raises(ProtocolError, match="floating-point"):
        canonical_json(value)


def test_float_anywhere_in_a_signed_payload_is_refused():
    with pytest.raises(ProtocolError):
        sign_payload(command_dict(args={"volume": 80.0}), KEY)
    raw = encode(sign_payload(command_dict(), KEY)).replace(b'"volume":80', b'"volume":80.0')
    with pytest.raises(ProtocolError):
        decode_signed(Command, raw, PUB, node_id="ben-nghe-07")


def test_public_key_roundtrip():
    b64 = public_key_b64(KEY)
    assert base64.b64decode(b64).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    verify_signature(sign_payload(plan_dict(), KEY), load_public_key(b64))
    for bad in ("", "AAAA", "not base64!", base64.b64encode(b"\1" * 33).decode()):
        with pytest.raises(ValueError):
            load_public_key(bad)


# ----------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'"plan"',
        b"null",
        b"{",
        b'{"a":' + b"1" * 5000 + b"}",  # int over Python's 4300-digit limit (was a bare ValueError)
        b'{"signature":"AAAA","x":"\\ud800"}',  # lone surrogate (was UnicodeEncodeError)
        b'{"signature":"AAAA","x":' + b"[" * 985 + b"]" * 985 + b"}",  # (was RecursionError)
        b'{"signature":"AAAA","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b" " * (MAX_PAYLOAD_BYTES + 1),
    ],
    ids=[
        "empty",
        "not-utf8",
        "array",
        "string",
        "null",
        "truncated",
        "huge-int",
        "surrogate",
        "deep",
        "deeper",
        "too-large",
    ],
)
def test_garbage_raises_protocol_error_only(raw):
    for model in (Plan, Command):
        with pytest.raises(ProtocolError):
            decode_signed(model, raw, PUB, node_id="n1")
    for model in (Status, Event, Ack):
        with pytest.raises(ProtocolError):
            decode_from_node(model, raw, topic_node_id="n1")


def test_deep_nesting_near_the_recursion_limit():
    """Every depth at which json.loads still succeeds must end in ProtocolError, never RecursionError."""
    for depth in range(900, 1100, 7):
        raw = b'{"signature":"AAAA","x":' + b"[" * depth + b"]" * depth + b"}"
        with pytest.raises(ProtocolError):
            decode_signed(Command, raw, PUB, node_id="n1")


def test_decode_from_node_checks_the_topic_node_id():
    wire = encode(event_dict())
    assert decode_from_node(Event, wire, topic_node_id="ben-nghe-07").seq == 1234
    with pytest.raises(ProtocolError, match="does not match topic"):
        decode_from_node(Event, wire, topic_node_id="ben-nghe-08")


def test_payload_size_limit():
    pad = " " * (MAX_PAYLOAD_BYTES - len(encode(status_dict())))
    at_limit = encode(status_dict())[:-1] + pad.encode() + b"}"
    assert len(at_limit) == MAX_PAYLOAD_BYTES
    assert decode_from_node(Status, at_limit, topic_node_id="ben-nghe-07").session == 17
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_from_node(Status, at_limit + b" ", topic_node_id="ben-nghe-07")


# ---------------------------------------------------------------------------- property tests

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
json_values_no_float = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "signature"), json_values_no_float, max_size=5))
def test_sign_to_wire_equals_sign_then_encode(payload):
    wire = sign_to_wire(payload, KEY)
    assert json.loads(wire) == sign_payload(payload, KEY)
    assert wire == encode(json.loads(wire))
    verify_signature(json.loads(wire), PUB)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key / index path inside a JSON value (not the root)."""
    out = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.append((*prefix, index))
            out.extend(_paths(value, (*prefix, index)))
    return out


def _parent(obj: Any, path: tuple) -> Any:
    for step in path[:-1]:
        obj = obj[step]
    return obj


@st.composite
def near_valid(draw, leaf: str) -> dict[str, Any]:
    """A valid payload of ``leaf`` with a few values replaced, removed or added: reaches deep validators."""
    obj = copy.deepcopy(UNSIGNED[leaf]())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(obj)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(obj, path)
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return obj


def _only_protocol_errors(fn) -> Any:
    try:
        return fn()
    except ProtocolError:
        return None


raw_inputs = (
    st.binary(max_size=600)
    | st.text(max_size=300).map(lambda s: s.encode("utf-8"))
    | st.dictionaries(st.text(max_size=10), json_values, max_size=6).map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8"))
)


@PROPERTY
@given(raw=raw_inputs)
@example(raw=b'{"signature":"AAAA","x":"\\udfff"}')
@example(raw=b'{"node_id":"n1","signature":"' + base64.b64encode(b"x" * 64) + b'"}')
def test_arbitrary_bytes_only_ever_raise_protocol_error(raw):
    for model in (Plan, Command):
        _only_protocol_errors(lambda m=model: decode_signed(m, raw, PUB, node_id="n1"))
    for model in (Event, Status, Ack):
        _only_protocol_errors(lambda m=model: decode_from_node(m, raw, topic_node_id="n1"))


@PROPERTY
@given(data=st.data(), leaf=st.sampled_from(list(UNSIGNED)))
def test_near_valid_payloads_only_ever_raise_protocol_error(data, leaf):
    obj = data.draw(near_valid(leaf))
    raw = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    model = TOPIC_MODELS[leaf]
    if leaf in SIGNED_LEAVES:
        _only_protocol_errors(lambda: decode_signed(model, raw, PUB, node_id="ben-nghe-07"))
        # Correctly signed garbage gets past the signature and into the model validation.
        signed = _only_protocol_errors(lambda: sign_payload(obj, KEY))
        if signed is not None:
            wire = json.dumps(signed, ensure_ascii=False).encode("utf-8")
            got = _only_protocol_errors(lambda: decode_signed(model, wire, PUB, node_id="ben-nghe-07"))
            assert got is None or isinstance(got, model)
    else:
        got = _only_protocol_errors(lambda: decode_from_node(model, raw, topic_node_id="ben-nghe-07"))
        assert got is None or isinstance(got, model)


timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(format_ts)
node_ids = st.from_regex(NODE_ID_RE, fullmatch=True)
safe_ints = st.integers(1, 2**53 - 1)
titles = st.text(max_size=300) | st.sampled_from(
    ["Bản tin sáng", "Thông báo tiêm chủng đợt 2", "Cảnh báo lũ"]
)
media = st.fixed_dictionaries(
    {
        "url": st.text(min_size=1, max_size=80).map(lambda s: "https://loa.example.vn/" + s),
        "sha256": st.binary(min_size=1, max_size=8).map(sha),
        "bytes": safe_ints,
        "duration_ms": safe_ints,
    },
    optional={"content_type": st.sampled_from(["audio/mpeg", "audio/ogg"])},
)
items = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=128), "start": timestamps, "media": media},
    optional={
        "priority": st.sampled_from(["normal", "priority", "emergency"]),
        "title": titles,
        "max_late_ms": st.integers(0, 2**53 - 1),
        "schedule_id": st.text(max_size=20),
    },
)
plans = st.fixed_dictionaries(
    {
        "node_id": node_ids,
        "version": safe_ints,
        "generated_at": timestamps,
        "valid_until": timestamps,
        "items": st.lists(items, max_size=4, unique_by=lambda item: item["id"]),
    },
    optional={"type": st.just("plan"), "protocol": st.just(1)},
)


@PROPERTY
@given(plan=plans)
def test_any_valid_plan_signs_and_verifies(plan):
    model = Plan.model_validate(plan)
    assert _schema_errors("plan", plan) == []
    # As sent (omitted defaults stay omitted) ...
    raw = encode(sign_payload(plan, KEY))
    assert decode_signed(Plan, raw, PUB, node_id=plan["node_id"]).model_dump(exclude={"signature"}) == (
        model.model_dump(exclude={"signature"})
    )
    # ... and as the panel re-serialises the model.
    signed = sign_payload(model.model_dump(mode="json", exclude_none=True), KEY)
    assert decode_signed(Plan, encode(signed), PUB, node_id=plan["node_id"]).signature == signed["signature"]


@PROPERTY
@given(plan=plans, data=st.data())
def test_any_single_mutation_of_a_signed_plan_fails_verification(plan, data):
    signed = sign_payload(plan, KEY)
    paths = [p for p in _paths(signed) if p != ("signature",)]
    path = data.draw(st.sampled_from(paths))
    mutated = copy.deepcopy(signed)
    parent = _parent(mutated, path)
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        old = parent[path[-1]]
        parent[path[-1]] = data.draw(
            json_values_no_float.filter(lambda v: canonical_json(v) != canonical_json(old))
        )
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8).filter(lambda k: k not in parent))] = data.draw(
            json_values_no_float
        )
    else:
        parent.insert(data.draw(st.integers(0, len(parent))), data.draw(json_values_no_float))
    with pytest.raises(ProtocolError, match="bad signature"):
        verify_signature(mutated, PUB)
    with pytest.raises(ProtocolError):
        decode_signed(Plan, encode(mutated), PUB, node_id=plan["node_id"])


def _shuffled(value: Any, rnd) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _shuffled(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@PROPERTY
@given(value=json_values_no_float, rnd=st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order_and_roundtrips(value, rnd):
    canonical = canonical_json(value)
    assert canonical_json(_shuffled(value, rnd)) == canonical
    assert json.loads(canonical.decode("utf-8")) == value


# ------------------------------------------------------------------------------------- topics


def test_topic_names():
    topics = Topics()
    assert topics.plan("n1") == "loaphuong/v1/nodes/n1/plan"
    assert topics.cmd("n1") == "loaphuong/v1/nodes/n1/cmd"
    assert topics.status("n1") == "loaphuong/v1/nodes/n1/status"
    assert topics.events("n1") == "loaphuong/v1/nodes/n1/events"
    assert topics.ack("n1") == "loaphuong/v1/nodes/n1/ack"
    assert topics.panel_status() == "loaphuong/v1/panel/status"
    assert topics.all_nodes("events") == "loaphuong/v1/nodes/+/events"
    assert Topics("hcm/ben-nghe").plan("n1") == "hcm/ben-nghe/v1/nodes/n1/plan"


@pytest.mark.parametrize("prefix", ["", "a/+", "#", "a/#/b", "/loaphuong", "loaphuong/"])
def test_invalid_prefixes(prefix):
    with pytest.raises(ValueError):
        Topics(prefix)


@pytest.mark.parametrize(
    ("node_id", "leaf"),
    [
        ("N1", "plan"),
        ("a/b", "plan"),
        ("+", "plan"),
        ("#", "cmd"),
        ("", "plan"),
        ("n1\n", "plan"),
        ("n1", "nope"),
        ("n1", ""),
    ],
)
def test_node_topic_refuses_bad_parts(node_id, leaf):
    with pytest.raises(ValueError):
        Topics().node(node_id, leaf)


@pytest.mark.parametrize(
    "topic",
    [
        "loaphuong/v1/nodes/+/plan",
        "loaphuong/v1/nodes/#",
        "loaphuong/v1/nodes/n1/#",
        "loaphuong/v1/nodes/n1/+",
        "loaphuong/v1/nodes/n1/plan/extra",
        "loaphuong/v1/nodes/n1/plan/",
        "loaphuong/v1/nodes/n1",
        "loaphuong/v1/nodes/n1/",
        "loaphuong/v1/nodes//plan",
        "loaphuong/v1/nodes/N1/plan",
        "loaphuong/v1/nodes/n1\n/plan",
        "loaphuong/v1/nodes/n1/unknown",
        "loaphuong/v1/panel/status",
        "loaphuong/v2/nodes/n1/plan",
        "other/v1/nodes/n1/plan",
        "loaphuongx/v1/nodes/n1/plan",
        "/loaphuong/v1/nodes/n1/plan",
        "x/loaphuong/v1/nodes/n1/plan",
        "",
    ],
)
def test_parse_rejects(topic):
    assert Topics().parse(topic) is None


@PROPERTY
@given(
    prefix=st.sampled_from(["loaphuong", "hcm/ben-nghe", "a"]),
    node_id=node_ids,
    leaf=st.sampled_from(Topics.NODE_TOPICS),
)
def test_node_and_parse_roundtrip(prefix, node_id, leaf):
    topics = Topics(prefix)
    assert topics.parse(topics.node(node_id, leaf)) == (node_id, leaf)
    assert Topics("other").parse(topics.node(node_id, leaf)) is None


@PROPERTY
@given(
    topic=st.text(max_size=60)
    | st.lists(st.text(max_size=8), max_size=7).map("/".join).map(lambda t: "loaphuong/v1/nodes/" + t)
)
def test_parse_accepts_only_what_node_produces(topic):
    parsed = Topics().parse(topic)
    if parsed is not None:
        assert Topics().node(*parsed) == topic


# --------------------------------------------------------------------------------- timestamps


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.timezones()
    )
)
def test_format_parse_roundtrip(moment):
    text = format_ts(moment)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", text)
    back = parse_ts(text)
    assert back.utcoffset() == timedelta(0)
    utc = moment.astimezone(UTC)  # compare in UTC: local times in a DST gap never compare equal across zones
    assert back == utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    assert format_ts(back) == text


def test_vietnam_morning_is_the_previous_utc_day():
    morning = datetime(2026, 11, 23, 5, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert format_ts(morning) == "2026-11-22T22:30:00.000Z"
    assert (
        format_ts(datetime(2026, 11, 23, 7, 0, tzinfo=timezone(timedelta(hours=7))))
        == "2026-11-23T00:00:00.000Z"
    )


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 11, 23, 5, 30))


@pytest.mark.parametrize("fraction", ["", ".1", ".12", ".123", ".1234", ".123456"])
def test_parse_accepts_zero_to_six_fraction_digits(fraction):
    assert parse_ts(f"2026-11-22T22:30:00{fraction}Z").tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23T05:30:00+07:00",
        "2026-11-23T05:30:00",
        "2026-13-01T00:00:00Z",
        "2026-11-23T25:00:00Z",
        "Z",
        "",
        "garbage",
        None,
        1700000000,
    ],
)
def test_parse_rejects_non_utc_or_invalid(value):
    with pytest.raises(ProtocolError):
        parse_ts(value)


# ------------------------------------------------------------------------- docs/protocol.md


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


FENCE = re.compile(r"^```(\w*)\n(.*?)\n```$", re.S | re.M)


def _block_after(label: str) -> str:
    doc = _doc()
    match = FENCE.search(doc, doc.index(label))
    assert match, f"no code block after {label!r}"
    return match.group(2)


def test_doc_worked_example_is_real():
    seed = _block_after("**Private key seed (hex, TEST ONLY)**").strip()
    assert seed == TEST_SEED_HEX
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    assert _block_after("**Public key (base64, as provisioned)**").strip() == public_key_b64(key)
    assert _block_after("**Public key (hex)**").strip() == base64.b64decode(public_key_b64(key)).hex()

    payload = json.loads(_block_after("**Payload to sign**"))
    body = {k: v for k, v in payload.items() if k != "signature"}
    canonical = _block_after("**Canonical bytes**").encode("utf-8")
    assert canonical_json(body) == canonical
    label = re.search(
        r"\*\*Canonical bytes\*\* \(UTF-8, one line, (\d+) bytes, SHA-256\s+`([0-9a-f]{64})`", _doc()
    )
    assert label, "canonical bytes label changed"
    assert int(label.group(1)) == len(canonical)
    assert label.group(2) == sha(canonical)
    signature = _block_after("**Signature (base64)**").strip()
    assert signature == payload["signature"] == sign_payload(body, key)["signature"]
    decode_signed(Plan, encode(payload), key.public_key(), node_id=payload["node_id"])


def _doc_json_examples() -> list[dict[str, Any]]:
    return [json.loads(m.group(2)) for m in FENCE.finditer(_doc()) if m.group(1) == "json"]


def test_doc_json_examples_validate():
    seen = set()
    for example_payload in _doc_json_examples():
        if example_payload.get("format") == "loaphuong-node-config":  # the provisioning file (§3), not a message

            class _Config:
                MQTT_PREFIX, public_url = "loaphuong", "https://panel"

            class _Service:
                config, public_key_b64 = _Config, "key"

            class _Node:
                node_id = "n1"

            made = node_config(_Service(), _Node(), "token", None)  # type: ignore[arg-type]
            assert list(example_payload) == list(made) and example_payload["format"] == NODE_CONFIG_FORMAT
            assert example_payload["username"] == example_payload["node_id"]
            seen.add("provisioning")
            continue
        if "type" not in example_payload:  # panel presence: {"state", "at"}
            assert set(example_payload) == {"state", "at"}
            assert example_payload["state"] in ("online", "stopped", "offline")
            parse_ts(example_payload["at"])
            seen.add("panel")
            continue
        leaf = LEAF_OF_TYPE[example_payload["type"]]
        seen.add(leaf)
        assert _schema_errors(leaf, example_payload) == [], example_payload
        model = TOPIC_MODELS[leaf]
        wire = encode(example_payload)
        if leaf in SIGNED_LEAVES:
            decode_signed(model, wire, PUB, node_id=example_payload["node_id"])
        else:
            decode_from_node(model, wire, topic_node_id=example_payload["node_id"])
        for key, value in example_payload.items():
            if key in ("at", "start", "generated_at", "valid_until", "issued_at", "expires_at"):
                parse_ts(value)
    assert seen == {*TOPIC_MODELS, "panel", "provisioning"}


def test_doc_python_snippet_verifies_the_examples():
    namespace: dict[str, Any] = {}
    exec(compile(_block_after("**Verification in Python**"), "protocol.md", "exec"), namespace)  # noqa: S102
    verify = namespace["verify"]
    pub_b64 = public_key_b64(KEY)
    signed = [p for p in _doc_json_examples() if "signature" in p]
    assert len(signed) >= 3
    for payload in signed:
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        assert verify(raw, pub_b64) == payload
        tampered = {**payload, "node_id": payload["node_id"] + "x"}
        with pytest.raises(InvalidSignature):
            verify(json.dumps(tampered).encode(), pub_b64)
        with pytest.raises(InvalidSignature):
            verify(raw, public_key_b64(OTHER_KEY))
    with pytest.raises(ValueError):
        verify(encode(sign_payload(command_dict(), KEY)).replace(b'"volume":80', b'"volume":80.5'), pub_b64)
    # The snippet agrees with the reference implementation on arbitrary plans, Vietnamese included.
    plan = sign_payload(plan_dict(), KEY)
    assert namespace["canonical"]({k: v for k, v in plan.items() if k != "signature"}) == canonical_json(
        {k: v for k, v in plan.items() if k != "signature"}
    )


def test_doc_names_every_topic_event_command_and_state():
    doc = _doc()
    for leaf in Topics.NODE_TOPICS:
        assert re.search(rf"^### [\d.]+ `{leaf}` — ", doc, re.M), f"no heading for topic {leaf}"
    assert "### 6.6 `panel/status`" in doc

    for enum in (EventName, CommandName, AckStatus, NodeState, Priority):
        for member in enum:
            assert f"`{member.value}`" in doc or f'"{member.value}"' in doc, f"{enum.__name__}.{member.value}"
    assert "devices/schemas/" in doc
    assert f"{MAX_PAYLOAD_BYTES:,}".replace(",", " ") in doc


def test_doc_acl_is_the_tested_acl():
    def rules(text: str) -> list[tuple[str, ...]]:
        return [
            tuple(line.split()) for line in text.splitlines() if re.match(r"^(user|topic|pattern) ", line)
        ]

    documented = _doc().split("# /etc/mosquitto/acl", 1)[1].split("```", 1)[0]
    assert rules(documented) == rules(ACL)
    assert len(rules(ACL)) == 9


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b" " * (MAX_PAYLOAD_BYTES + 1), "exceeds"),
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"signature":"AAAA","x":"\\ud800"}', "not valid Unicode"),
        (encode(command_dict()), "unsigned"),
        (encode({**command_dict(), "signature": "%%"}), "not base64"),
        (encode(sign_payload(command_dict(), OTHER_KEY)), "bad signature"),
        (encode({**command_dict(), "signature": "AAAA", "x": 1.5}), "floating-point"),
        (encode(sign_payload(command_dict(id="short"), KEY)), "invalid command"),
        (encode(sign_payload(command_dict(node_id="other"), KEY)), "addressed to"),
    ],
)
def test_documented_reason_phrases_are_the_real_messages(raw, phrase):
    """docs/protocol.md §12 tells vendors which texts to use; they must be what protocol.py says."""
    table = _doc().split("## 12. Error handling", 1)[1].split("## 13.", 1)[0]
    assert f"| `{phrase}` |" in table or f"`{phrase}` /" in table or f"/ `{phrase}`" in table, phrase
    with pytest.raises(ProtocolError) as info:
        decode_signed(Command, raw, PUB, node_id="ben-nghe-07")
    assert phrase in str(info.value)


# ------------------------------------------------------- §12 as the reference node applies it

#: Each payload fails the check of its row and (where it can) of later rows: the first in §12's order wins.
_BIG = 2**53
REFERENCE_REFUSALS: list[tuple[bytes, str]] = [
    (b"\xff" * (MAX_PAYLOAD_BYTES + 1), "exceeds"),
    (b"\xff" + b"[" * 100, "not UTF-8"),
    (b"[" * 65 + b"]" * 64, "nested too deeply"),
    (b'{"a":1.5,"a":1}', "not JSON"),  # a duplicate key
    (b'{"signature":"AAAA","a":NaN}', "not JSON"),
    (b'{"a":-Infinity}', "not JSON"),
    (f'[1.5, {_BIG}, "\\ud800"]'.encode(), "not a JSON object"),
    (f'{{"a": 1.5, "b": {_BIG}, "c": "\\ud800"}}'.encode(), "floating-point"),  # unsigned too
    (f'{{"b": {-_BIG}, "c": "\\ud800"}}'.encode(), "integer outside"),
    (b'{"a":' + b"1" * 5000 + b"}", "integer outside"),
    (b'{"\\udc00": 1}', "not valid Unicode"),
    (encode(command_dict(id="short", node_id="other")), "unsigned"),
    (encode({**command_dict(), "signature": 123}), "unsigned"),
    (encode({**command_dict(id="short", node_id="other"), "signature": "AAA"}), "not base64"),  # no padding
    (encode(sign_payload(command_dict(id="short", node_id="other"), OTHER_KEY)), "bad signature"),
    (encode({**command_dict(), "signature": base64.b64encode(b"\0" * 63).decode()}), "bad signature"),
    (encode(sign_payload(command_dict(id="short", node_id="other"), KEY)), "invalid command: id"),
    (encode(sign_payload(command_dict(protocol=2), KEY)), "invalid command: protocol"),
    (encode(sign_payload(command_dict(expires_at="2026-02-30T00:00:00Z", node_id="other"), KEY)),
     "invalid command: expires_at"),  # matches the pattern, but is no date
    (encode(sign_payload(command_dict(node_id="other"), KEY)), "addressed to"),
]


def _section_12_key_phrases() -> list[str]:
    table = _doc().split("## 12. Error handling", 1)[1].split("`media_failed` reasons", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    return [cells[-1].strip() for cells in rows]


def test_section_12_lists_the_reference_nodes_checks_in_order():
    assert _section_12_key_phrases() == [
        "`exceeds`", "`not UTF-8`", "`nested too deeply`", "`not JSON`", "`not a JSON object`",
        "`floating-point`", "`integer outside`", "`not valid Unicode`", "`unsigned`", "`not base64`",
        "`bad signature`", "`invalid plan` / `invalid command`", "`addressed to`", "`version <v> < held <h>`",
        "`retained command`",
    ]


@pytest.mark.parametrize(("raw", "phrase"), REFERENCE_REFUSALS, ids=[p for _, p in REFERENCE_REFUSALS])
def test_reference_node_refuses_in_the_documented_order(raw, phrase):
    assert phrase.split(":")[0] in " ".join(_section_12_key_phrases())
    with pytest.raises(ProtocolError) as info:
        decode_from_panel(Command, raw, PUB, node_id="ben-nghe-07")
    assert phrase in str(info.value)


def test_reference_node_treats_null_as_absent_and_accepts_missing_type_and_protocol():
    body = {k: v for k, v in command_dict(args=None, name="ping").items() if k not in ("type", "protocol")}
    cmd = decode_from_panel(Command, encode(sign_payload(body, KEY)), PUB, node_id="ben-nghe-07")
    assert cmd.args == {} and cmd.type == "command" and cmd.protocol == 1
    plan = plan_dict(items=[{**plan_dict()["items"][1], "priority": None, "max_late_ms": None, "title": None}])
    item = decode_from_panel(Plan, encode(sign_payload(plan, KEY)), PUB, node_id="ben-nghe-07").items[0]
    assert (item.priority, item.max_late_ms, item.title) == ("normal", 60_000, "")
    # what the reference node accepts, every documented example included, is what protocol.py accepts
    for payload in [*_doc_json_examples(), sign_payload(plan_dict(), KEY)]:
        if "signature" in payload:
            model = Plan if payload["type"] == "plan" else Command
            wire = encode(payload)
            assert decode_from_panel(model, wire, PUB, node_id=payload["node_id"]) == decode_signed(
                model, wire, PUB, node_id=payload["node_id"])


@PROPERTY
@given(raw=raw_inputs)
def test_reference_node_decoder_only_ever_raises_protocol_error(raw):
    for model in (Plan, Command):
        _only_protocol_errors(lambda m=model: decode_from_panel(m, raw, PUB, node_id="n1"))


# ------------------------------------------------------------------ protocol v1 additions (this session)

from devices.protocol import (  # noqa: E402 - grouped with the tests they serve
    COMMAND_ARGS,
    AckStatus,
    CommandName,
    EventName,
    NodeState,
    PlayNowArgs,
    Priority,
    QuietHours,
    StopArgs,
    Stream,
    VolumeStep,
    alert_item_id,
    next_profile_change,
    parse_args,
    profile_step,
    profile_volume,
    quiet_overlap,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
STREAM = {"url": "https://stream.example.vn/vov1.mp3", "duration_ms": 1_800_000}


def media_dict(data: bytes = b"a", **kw: Any) -> dict[str, Any]:
    return {"url": "https://loa.example.vn/media/a.mp3", "sha256": sha(data), "bytes": 9, "duration_ms": 5000,
            **kw}


def item_dict(**kw: Any) -> dict[str, Any]:
    return {"id": "i1", "start": "2026-11-22T22:30:00.000Z", "media": media_dict(), **kw}


def plan_with(*items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return plan_dict(items=list(items), **kw)


def refused(payload: dict[str, Any], model: type = Plan) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_signed(model, encode(sign_payload(payload, KEY)), PUB, node_id=payload["node_id"])
    return str(info.value)


def accepted(payload: dict[str, Any], model: type = Plan) -> Any:
    signed = sign_payload(payload, KEY)
    obj = decode_signed(model, encode(signed), PUB, node_id=payload["node_id"])
    assert _schema_errors(LEAF_OF_TYPE[payload["type"]], _drop_none(signed)) == []
    return obj


def stream_item(**kw: Any) -> dict[str, Any]:
    return {"id": "i1", "start": "2026-11-22T22:30:00.000Z", "stream": STREAM, **kw}


def test_plan_item_takes_exactly_one_of_media_and_stream():
    item = accepted(plan_with(stream_item())).items[0]
    assert item.media is None and item.stream == Stream(**STREAM) and item.duration_ms == 1_800_000
    assert accepted(plan_with(item_dict())).items[0].duration_ms == 5000
    both = plan_with(item_dict(stream=STREAM))
    assert refused(both) == "invalid plan: items.0: Value error, exactly one of media or stream is required"
    assert _schema_errors("plan", both)  # the schema says it too
    neither = plan_with({"id": "x", "start": "2026-11-22T22:30:00.000Z"})
    assert "exactly one of media or stream" in refused(neither)
    assert _schema_errors("plan", neither)
    # null counts as absent: a stream beside "media": null is a stream item
    assert accepted_model_only(plan_with(item_dict(media=None, stream=STREAM))).items[0].stream is not None


def accepted_model_only(payload: dict[str, Any]) -> Plan:
    return decode_signed(Plan, encode(sign_payload(payload, KEY)), PUB, node_id=payload["node_id"])


@pytest.mark.parametrize(("field", "value", "where"), [
    ("end_at", "2026-11-22T22:30:00.000Z", "items.0"),  # not after start
    ("end_at", "2026-11-22T22:29:59.999Z", "items.0"),
    ("end_at", "2026-02-30T00:00:00Z", "items.0.end_at"),  # no real date
    ("end_at", "2026-11-22 22:31:00Z", "items.0.end_at"),
    ("drill", "true", "items.0.drill"),
    ("drill", 1, "items.0.drill"),
    ("volume", 101, "items.0.volume"),
    ("volume", -1, "items.0.volume"),
    ("volume", True, "items.0.volume"),
    ("stream", {"url": "rtsp://x/live", "duration_ms": 5}, "items.0"),
])
def test_invalid_item_additions_are_refused_with_their_path(field, value, where):
    item = item_dict(**{field: value})
    if field == "stream":
        del item["media"]
    message = refused(plan_with(item))
    assert message.startswith(f"invalid plan: {where}"), message


def test_item_additions_round_trip():
    plan = accepted(plan_with(item_dict(end_at="2026-11-22T22:30:45Z", drill=True, volume=0,
                                        priority="emergency")))
    item = plan.items[0]
    assert (item.end_at, item.drill, item.volume, item.priority) == ("2026-11-22T22:30:45Z", True, 0, "emergency")
    again = Plan.model_validate_json(encode(plan))
    assert again == plan
    defaults = accepted(plan_with(item_dict())).items[0]
    assert (defaults.end_at, defaults.drill, defaults.volume, defaults.stream) == (None, False, None, None)


def test_media_url_must_be_http():
    for url in ("ftp://x/a.mp3", "file:///etc/passwd", "/media/a.mp3", "HTTPS//x"):
        payload = plan_with(item_dict(media=media_dict(url=url)))
        assert refused(payload).startswith("invalid plan: items.0.media.url"), url
        assert _schema_errors("plan", payload)
    accepted(plan_with(item_dict(media=media_dict(url="http://10.0.0.2:8080/m/a.mp3"))))


def test_plan_local_time_fields():
    plan = accepted(plan_with(item_dict(), quiet_hours={"start": "22:00", "end": "05:00"},
                              volume_profile=[{"at": "21:00", "volume": 30}, {"at": "05:00", "volume": 70}]))
    assert plan.tz == "Asia/Ho_Chi_Minh" and plan.quiet_hours == QuietHours(start="22:00", end="05:00")
    assert [s.at for s in plan.volume_profile] == ["21:00", "05:00"]  # kept as sent; nodes sort
    assert accepted(plan_with(tz="Europe/Berlin")).tz == "Europe/Berlin"
    bad = {
        "tz": ({"tz": "Mars/Olympus"}, "invalid plan: tz"),
        "quiet equal": ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "invalid plan: quiet_hours"),
        "24:00": ({"quiet_hours": {"start": "24:00", "end": "05:00"}}, "invalid plan: quiet_hours.start"),
        "H:MM": ({"quiet_hours": {"start": "5:00", "end": "06:00"}}, "invalid plan: quiet_hours.start"),
        "missing end": ({"quiet_hours": {"start": "22:00"}}, "invalid plan: quiet_hours.end"),
        "dup step": ({"volume_profile": [{"at": "05:00", "volume": 1}, {"at": "05:00", "volume": 2}]},
                     "invalid plan: volume_profile"),
        "step volume": ({"volume_profile": [{"at": "05:00", "volume": 101}]},
                        "invalid plan: volume_profile.0.volume"),
    }
    for why, (fields, prefix) in bad.items():
        assert refused(plan_with(**fields)).startswith(prefix), why


def test_null_counts_as_absent_in_models_and_args():
    plan = accepted_model_only(plan_with(item_dict(end_at=None, drill=None, volume=None, stream=None),
                                         tz=None, quiet_hours=None, volume_profile=None))
    assert plan.tz == "Asia/Ho_Chi_Minh" and plan.quiet_hours is None and plan.volume_profile == []
    assert plan.items[0].drill is False
    cmd = decode_signed(Command, encode(sign_payload(command_dict(
        name="play_now", args={"alert_id": "7", "media": {**media_dict(), "content_type": None},
                               "volume": None, "stream": None}), KEY)), PUB, node_id="ben-nghe-07")
    assert cmd.args == {"alert_id": "7", "media": media_dict()}
    args = parse_args("play_now", cmd.args)
    assert isinstance(args, PlayNowArgs) and args.volume is None and args.media.content_type == "audio/mpeg"
    ack = decode_from_node(Ack, encode({"node_id": "n1", "command_id": "c", "status": "ok",
                                        "at": "2026-11-23T01:15:00.412Z", "data": {"x": None, "y": 1}}),
                           topic_node_id="n1")
    assert ack.data == {"y": 1}


def test_play_now_args():
    args = parse_args("play_now", {"alert_id": "42", "media": media_dict()})
    assert isinstance(args, PlayNowArgs)
    assert (args.priority, args.repeat, args.gap_ms, args.volume, args.drill, args.title) == (
        Priority.emergency, 1, 3000, None, False, "")
    assert args.item_id(3) == "alert:42:3" == alert_item_id("42", 3) and args.duration_ms == 5000
    # the panel builds args with the model: its dump is what goes on the wire, and the node accepts it
    built = PlayNowArgs(alert_id="a-1", stream=Stream(**STREAM), priority=Priority.priority, repeat=10,
                        gap_ms=0, volume=100, drill=True, title="Diễn tập")
    wire = built.model_dump(mode="json", exclude_none=True)
    assert parse_args("play_now", wire) == built
    cmd = accepted(command_dict(name="play_now", args=wire), Command)
    assert cmd.args == wire
    for args_in, prefix in [
        ({"media": media_dict()}, "args.alert_id: Field required"),
        ({"alert_id": "a b", "media": media_dict()}, "args.alert_id"),
        ({"alert_id": "x" * 65, "media": media_dict()}, "args.alert_id"),
        ({"alert_id": "1"}, "args: Value error, exactly one of media or stream is required"),
        ({"alert_id": "1", "media": media_dict(), "stream": STREAM}, "args: Value error, exactly one"),
        ({"alert_id": "1", "media": media_dict(), "repeat": 0}, "args.repeat"),
        ({"alert_id": "1", "media": media_dict(), "repeat": 11}, "args.repeat"),
        ({"alert_id": "1", "media": media_dict(), "repeat": "2"}, "args.repeat"),
        ({"alert_id": "1", "media": media_dict(), "gap_ms": -1}, "args.gap_ms"),
        ({"alert_id": "1", "media": media_dict(), "volume": 101}, "args.volume"),
        ({"alert_id": "1", "media": media_dict(), "drill": "no"}, "args.drill"),
        ({"alert_id": "1", "media": media_dict(), "priority": "urgent"}, "args.priority"),
        ({"alert_id": "1", "media": media_dict(sha256="XYZ")}, "args.media.sha256"),
    ]:
        with pytest.raises(ProtocolError) as info:
            parse_args("play_now", args_in)
        assert str(info.value).startswith(prefix), (args_in, str(info.value))
        # the checked-in cmd schema refuses the same args
        assert _schema_errors("cmd", sign_payload(command_dict(name="play_now", args=args_in), KEY)), args_in


def test_stop_set_volume_and_argless_commands():
    assert parse_args("stop", {}) == StopArgs()
    assert parse_args("stop", {"alert_id": "42", "future": 1}) == StopArgs(alert_id="42")
    with pytest.raises(ProtocolError, match="args.alert_id"):
        parse_args("stop", {"alert_id": ""})
    with pytest.raises(ProtocolError, match="args.volume"):
        parse_args("set_volume", {"volume": True})
    assert parse_args("ping", {"anything": 1}) is None and parse_args("reboot", {}) is None
    assert set(COMMAND_ARGS) == {"play_now", "stop", "set_volume"}
    accepted(command_dict(name="reboot", args={}), Command)


def test_status_and_event_additions():
    status = decode_from_node(Status, encode(status_dict(clock="2026-11-22T22:29:41.020Z", rssi_dbm=-71,
                                                         uptime_s=86412, heartbeat_s=60)),
                              topic_node_id="ben-nghe-07")
    assert (status.clock, status.rssi_dbm, status.uptime_s, status.heartbeat_s) == (
        "2026-11-22T22:29:41.020Z", -71, 86412, 60)
    for bad in ({"rssi_dbm": 5}, {"uptime_s": -1}, {"heartbeat_s": 0}, {"uptime_s": True},
                {"clock": "2026-13-01T00:00:00Z"}):
        with pytest.raises(ProtocolError, match="invalid status"):
            decode_from_node(Status, encode(status_dict(**bad)), topic_node_id="ben-nghe-07")
    event = decode_from_node(Event, encode(event_dict(event="playback_stopped", reason="preempted", drill=True,
                                                      priority="emergency", command_id="c1", alert_id="42")),
                             topic_node_id="ben-nghe-07")
    assert (event.event, event.drill, event.priority, event.command_id, event.alert_id) == (
        "playback_stopped", True, "emergency", "c1", "42")
    with pytest.raises(ProtocolError, match="invalid event: drill"):
        decode_from_node(Event, encode(event_dict(drill="yes")), topic_node_id="ben-nghe-07")


def test_node_payloads_get_the_same_byte_checks_as_panel_payloads():
    """protocol.decode_json makes §12 checks 1–8 for both directions: the panel drops a float offset."""
    wire = encode({k: v for k, v in event_dict().items() if k != "offset_ms"})[:-1] + b',"offset_ms":1.5}'
    with pytest.raises(ProtocolError, match="floating-point"):
        decode_from_node(Event, wire, topic_node_id="ben-nghe-07")
    with pytest.raises(ProtocolError, match="not JSON: duplicate key"):
        decode_from_node(Event, encode(event_dict())[:-1] + b',"seq":1}', topic_node_id="ben-nghe-07")
    with pytest.raises(ProtocolError, match="invalid event: at"):
        decode_from_node(Event, encode(event_dict(at="2026-02-30T00:00:00.000Z")), topic_node_id="ben-nghe-07")


# ------------------------------------------------------------- local-time helpers, against brute force

hhmm_strategy = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31),
                        timezones=st.just(UTC))
zones = st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "UTC"])


def _local_minute(moment: datetime, tz: str) -> int:
    local = moment.astimezone(ZoneInfo(tz))
    return local.hour * 60 + local.minute


def _quiet_minute(q: QuietHours, minute: int) -> bool:
    s, e = (int(q.start[:2]) * 60 + int(q.start[3:]), int(q.end[:2]) * 60 + int(q.end[3:]))
    return s <= minute < e if s < e else minute >= s or minute < e


@PROPERTY
@given(start=hhmm_strategy, end=hhmm_strategy, at=instants, seconds=st.integers(1, 4 * 3600), tz=zones)
def test_quiet_overlap_matches_minute_by_minute(start, end, at, seconds, tz):
    if start == end:
        return
    q = QuietHours(start=start, end=end)
    at = at.replace(second=0, microsecond=0)  # whole minutes: sampling each minute is then exact
    seconds = -(-seconds // 60) * 60
    expected = any(_quiet_minute(q, _local_minute(at + timedelta(minutes=k), tz)) for k in range(seconds // 60))
    assert quiet_overlap(q, tz, at, at + timedelta(seconds=seconds)) == expected
    assert quiet_overlap(None, tz, at, at + timedelta(seconds=seconds)) is False


@PROPERTY
@given(steps=st.dictionaries(hhmm_strategy, st.integers(0, 100), min_size=1, max_size=6), at=instants,
       tz=st.sampled_from(["Asia/Ho_Chi_Minh", "UTC"]))
def test_profile_step_is_the_last_step_before_now_wrapping_midnight(steps, at, tz):
    profile = [VolumeStep(at=k, volume=v) for k, v in steps.items()]
    minute = _local_minute(at, tz)
    ordered = sorted(steps.items())
    before = [v for k, v in ordered if int(k[:2]) * 60 + int(k[3:]) <= minute]
    assert profile_volume(profile, tz, at) == (before[-1] if before else ordered[-1][1])
    began, _ = profile_step(profile, tz, at)
    assert began <= at < began + timedelta(days=1)
    nxt = next_profile_change(profile, tz, at)
    assert nxt is not None and at < nxt <= at + timedelta(days=1)
    # nothing changes between now and the next step
    assert profile_volume(profile, tz, nxt - timedelta(microseconds=1)) == profile_volume(profile, tz, at)


def test_local_time_helpers_in_vietnam():
    q = QuietHours(start="22:00", end="05:00")
    vn = "Asia/Ho_Chi_Minh"

    def utc(h: int, m: int = 0) -> datetime:
        return datetime(2026, 11, 22, h, m, tzinfo=UTC)
    assert quiet_overlap(q, vn, utc(14, 59), utc(15, 0)) is False  # 21:59–22:00 local: ends as quiet begins
    assert quiet_overlap(q, vn, utc(14, 59), utc(15, 1)) is True
    assert quiet_overlap(q, vn, utc(22, 0), utc(23, 0)) is False  # 05:00–06:00 local
    assert quiet_overlap(q, vn, utc(21, 0), utc(21, 30)) is True  # 04:00 local
    profile = [VolumeStep(at="05:00", volume=70), VolumeStep(at="21:00", volume=30)]
    assert profile_volume(profile, vn, utc(21, 59)) == 30  # 04:59 local: yesterday's 21:00 step
    assert profile_volume(profile, vn, utc(22, 0)) == 70
    assert next_profile_change(profile, vn, utc(22, 0)) == utc(14, 0) + timedelta(days=1)
    assert profile_step([], vn, utc(1)) is None and next_profile_change([], vn, utc(1)) is None


# --------------------------------------------------------------- hypothesis: payload parsing of additions

media_strategy = st.builds(lambda d, n, b: media_dict(data=d, duration_ms=n, bytes=b),
                           st.binary(max_size=4), st.integers(1, 10**7), st.integers(1, 10**9))
stream_strategy = st.builds(lambda path, n: {"url": f"https://s.example.vn/{path}", "duration_ms": n},
                            st.text("abc/-_.", max_size=12), st.integers(1, 10**8))
start_ms = st.integers(1_700_000_000_000, 2_000_000_000_000)


def _ts_ms(ms: int) -> str:
    return format_ts(datetime.fromtimestamp(ms / 1000, UTC))


@st.composite
def additions_item(draw, index: int) -> dict[str, Any]:
    start = draw(start_ms)
    item: dict[str, Any] = {"id": f"i{index}", "start": _ts_ms(start)}
    if draw(st.booleans()):
        item["media"] = draw(media_strategy)
    else:
        item["stream"] = draw(stream_strategy)
    if draw(st.booleans()):
        item["end_at"] = _ts_ms(start + draw(st.integers(1, 10**7)))
    if draw(st.booleans()):
        item["drill"] = draw(st.booleans())
    if draw(st.booleans()):
        item["volume"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        item["priority"] = draw(st.sampled_from(["normal", "priority", "emergency"]))
    return item


@st.composite
def additions_plan(draw) -> dict[str, Any]:
    items = [draw(additions_item(i)) for i in range(draw(st.integers(0, 4)))]
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        start, end = draw(hhmm_strategy), draw(hhmm_strategy)
        if start != end:
            extra["quiet_hours"] = {"start": start, "end": end}
    if draw(st.booleans()):
        steps = draw(st.dictionaries(hhmm_strategy, st.integers(0, 100), max_size=5))
        extra["volume_profile"] = [{"at": k, "volume": v} for k, v in steps.items()]
    if draw(st.booleans()):
        extra["tz"] = draw(zones)
    return plan_dict(items=items, **extra)


@PROPERTY
@given(plan=additions_plan())
def test_any_plan_with_additions_round_trips_and_matches_the_schema(plan):
    signed = sign_payload(plan, KEY)
    obj = decode_signed(Plan, encode(signed), PUB, node_id="ben-nghe-07")
    assert _schema_errors("plan", signed) == []
    for sent, got in zip(plan["items"], obj.items, strict=True):
        assert (got.media is None) == ("media" not in sent) and (got.stream is None) == ("stream" not in sent)
        assert got.end_at == sent.get("end_at") and got.drill == sent.get("drill", False)
        assert got.volume == sent.get("volume")
    assert obj.quiet_hours == (QuietHours(**plan["quiet_hours"]) if "quiet_hours" in plan else None)
    # what the model writes is what it reads (the panel re-publishes parsed plans)
    dumped = obj.model_dump(mode="json", exclude_none=True)
    assert Plan.model_validate(dumped) == obj and _schema_errors("plan", dumped) == []


@PROPERTY
@given(plan=additions_plan(), data=st.data())
def test_invalid_combinations_are_always_refused(plan, data):
    if not plan["items"]:
        plan["items"] = [item_dict()]
    item = data.draw(st.sampled_from(plan["items"]))
    how = data.draw(st.sampled_from(["both", "neither", "end_before", "bad_volume", "bad_drill"]))
    if how == "both":
        item.update(media=media_dict(), stream=STREAM)
    elif how == "neither":
        item.pop("media", None)
        item.pop("stream", None)
    elif how == "end_before":
        item["end_at"] = _ts_ms(int(parse_ts(item["start"]).timestamp() * 1000) - data.draw(st.integers(0, 10**6)))
    elif how == "bad_volume":
        item["volume"] = data.draw(st.integers(101, 10**6) | st.integers(-(10**6), -1) | st.booleans())
    else:
        item["drill"] = data.draw(st.integers(-1000, 1000) | st.text(max_size=4))
    assert refused(plan).startswith("invalid plan: items.")


@PROPERTY
@given(args=st.fixed_dictionaries({"alert_id": st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z")},
                                  optional={"repeat": st.integers(1, 10), "gap_ms": st.integers(0, 600_000),
                                            "volume": st.integers(0, 100), "drill": st.booleans(),
                                            "title": st.text(max_size=300),
                                            "priority": st.sampled_from(["normal", "priority", "emergency"])}),
       source=st.sampled_from(["media", "stream"]))
def test_any_valid_play_now_args_parse_and_match_the_schema(args, source):
    args[source] = media_dict() if source == "media" else STREAM
    parsed = parse_args("play_now", args)
    assert isinstance(parsed, PlayNowArgs) and parsed.alert_id == args["alert_id"]
    assert len(parsed.item_id(parsed.repeat)) <= 128  # always a valid item id
    assert _schema_errors("cmd", sign_payload(command_dict(name="play_now", args=args), KEY)) == []
    assert parse_args("play_now", parsed.model_dump(mode="json", exclude_none=True)) == parsed
