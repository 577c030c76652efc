"""Decoding panel → node payloads (plan, cmd) exactly in the order of docs/protocol.md §12.

Three stages, and the first failing check decides the ``reason``:

1. *parse*: size, UTF-8, nesting depth, JSON syntax (also ``NaN``/``Infinity`` and duplicate keys), a JSON
   object, numbers (no fraction or exponent; integers within ±(2^53 − 1)), strings (valid Unicode);
2. *signature*: present, base64, 64 bytes, verifies;
3. *content*: fields (a ``null`` counts as absent; times must be real dates), then ``node_id``.

Since protocol v1's hardening every one of these checks lives in ``devices.protocol`` (``decode_json`` and the
models), so the panel applies the same rules; this module keeps the names the simulators import.
"""

from __future__ import annotations

from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from devices.protocol import (
    DEPTH_REASON,
    FLOAT_REASON,
    INTEGER_REASON,
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    UNICODE_REASON,
    decode_json,
    decode_signed,
    without_nulls,
)

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "DEPTH_REASON", "FLOAT_REASON", "INTEGER_REASON", "MAX_DEPTH", "MAX_SAFE_INTEGER", "UNICODE_REASON",
    "decode_from_panel", "drop_nulls", "parse_strict",
]


def parse_strict(raw: bytes) -> dict[str, Any]:
    """Stage 1 (parse) of §12. Raises ``ProtocolError`` with the documented reason."""
    return decode_json(raw)


def drop_nulls(value: Any) -> Any:
    """A ``null`` member counts as absent (§4): remove them from every object, recursively."""
    return without_nulls(value)


def decode_from_panel(model: type[M], raw: bytes, public_key: Ed25519PublicKey, *, node_id: str) -> M:
    """A plan or command as the reference node accepts it, or ``ProtocolError`` with the §12 reason."""
    return decode_signed(model, raw, public_key, node_id=node_id)
