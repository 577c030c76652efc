"""Decoding panel → node payloads (plan, cmd) exactly in the order of docs/protocol.md §12.

Three stages, and the first failing check decides the ``reason``:

1. *parse*: size, UTF-8, nesting depth, JSON syntax (also ``NaN``/``Infinity`` and duplicate keys), a JSON
   object, numbers (no fraction or exponent; integers within ±(2^53 − 1)), strings (valid Unicode);
2. *signature*: present, base64, 64 bytes, verifies;
3. *content*: fields (a ``null`` counts as absent; times must be real dates), then ``node_id``.

The texts are those of ``devices.protocol``; this module only adds the checks the wire model does not make
(duplicate keys, ``NaN``, integer range, depth limit) and fixes their order.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from devices.protocol import (
    MAX_PAYLOAD_BYTES,
    Command,
    Plan,
    ProtocolError,
    parse_model,
    parse_ts,
    verify_signature,
)

M = TypeVar("M", bound=BaseModel)

MAX_SAFE_INTEGER = 2**53 - 1
#: v1 payloads nest at most 4 levels (plan → items → item → media) plus command ``args``.
MAX_DEPTH = 64

FLOAT_REASON = "floating-point numbers are not allowed in signed payloads"
INTEGER_REASON = "payload contains an integer outside ±(2^53 - 1)"
UNICODE_REASON = "payload contains a string that is not valid Unicode"
DEPTH_REASON = "payload is nested too deeply"


#: A string literal (possibly unterminated) or a bracket: what the nesting check looks at.
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


def _nesting(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside string literals (the root object is 1), syntax errors or not."""
    depth = deepest = 0
    for token in _DEPTH_TOKEN.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _Float(str):
    """A number literal with a fraction or exponent, kept as text until the number check."""


class _BigInt(str):
    """An integer literal outside ±(2^53 − 1), kept as text until the number check."""


def _parse_int(text: str) -> int | _BigInt:
    # 2^53 − 1 has 16 digits: longer literals are out of range (and may exceed Python's 4300-digit limit).
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        return _BigInt(text)
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _walk(value: Any) -> list[Any]:
    """Every value inside ``value`` (and itself)."""
    out, stack = [], [value]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" from a JSON escape
        return False
    return True


def parse_strict(raw: bytes) -> dict[str, Any]:
    """Stage 1 (parse) of §12. Raises ``ProtocolError`` with the documented reason."""
    raw = bytes(raw)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("payload is not UTF-8") from exc
    if _nesting(text) > MAX_DEPTH:
        raise ProtocolError(DEPTH_REASON)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                          parse_float=_Float, parse_int=_parse_int)
    except RecursionError as exc:
        raise ProtocolError(DEPTH_REASON) from exc
    except ValueError as exc:  # JSONDecodeError, NaN / Infinity, a duplicate key
        raise ProtocolError(f"payload is not JSON: {exc}") from exc
    values = _walk(data)
    if not isinstance(data, dict):
        raise ProtocolError("payload is not a JSON object")
    if any(isinstance(v, _Float) for v in values):
        raise ProtocolError(FLOAT_REASON)
    if any(isinstance(v, _BigInt) for v in values):
        raise ProtocolError(INTEGER_REASON)
    strings = [v for v in values if isinstance(v, str)]
    strings += [k for v in values if isinstance(v, dict) for k in v]
    if not all(_valid_unicode(s) for s in strings):
        raise ProtocolError(UNICODE_REASON)
    return data


def drop_nulls(value: Any) -> Any:
    """A ``null`` member counts as absent (§4): remove them from every object, recursively."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def _times(obj: BaseModel) -> list[tuple[str, str]]:
    """(field path, value) of every time in a plan or command: the pattern alone lets "02-30" through."""
    if isinstance(obj, Plan):
        return [("generated_at", obj.generated_at), ("valid_until", obj.valid_until),
                *((f"items.{i}.start", item.start) for i, item in enumerate(obj.items))]
    if isinstance(obj, Command):
        return [("issued_at", obj.issued_at), ("expires_at", obj.expires_at)]
    return []


def decode_from_panel(model: type[M], raw: bytes, public_key: Ed25519PublicKey, *, node_id: str) -> M:
    """A plan or command as the reference node accepts it, or ``ProtocolError`` with the §12 reason."""
    data = parse_strict(raw)
    verify_signature(data, public_key)  # unsigned / not base64 / bad signature (also: not 64 bytes)
    obj = parse_model(model, drop_nulls(data))  # invalid plan / invalid command: <field path>: <message>
    for path, value in _times(obj):
        try:
            parse_ts(value)
        except ProtocolError as exc:
            raise ProtocolError(f"invalid {model.__name__.lower()}: {path}: {exc}") from exc
    if getattr(obj, "node_id", None) != node_id:
        raise ProtocolError(f"addressed to {getattr(obj, 'node_id', None)!r}, not {node_id!r}")
    return obj
