"""Small helpers shared by the web views and the API."""

from __future__ import annotations

from flask import request


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        return token or None
    return None
