"""Node identity rules and credentials (pure functions, no web or MQTT)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from devices.protocol import NODE_ID_RE


class RegistryError(ValueError):
    """Invalid node data; ``code`` is a stable key the UI translates."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def validate_node_id(node_id: str) -> str:
    node_id = (node_id or "").strip()
    if not NODE_ID_RE.match(node_id):
        raise RegistryError(
            "invalid_node_id",
            "node id must be 1–64 characters: lowercase letters, digits, '-' or '_' (no '+', '#', '/')",
        )
    return node_id


def new_token() -> str:
    """A node or API token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are random, so a plain SHA-256 is a safe lookup key (no need for a slow KDF)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), expected_hash)
