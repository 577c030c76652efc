"""Where the simulated nodes connect and with what credentials: shared by both simulator CLIs.

``loaphuong sim`` (:mod:`firmware_sim.cli`) and ``loaphuong sim --scale`` (:mod:`firmware_sim.scale_cli`) take the
same broker URL and the same credentials (``--credentials FILE``, or registration through the panel REST API with
``--api-token`` and ``--zone``). The helpers live here, below both CLIs, so that neither imports the other's
internals and the dispatching CLI can import the scale CLI at module level without a cycle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from devices.protocol import NODE_ID_RE

HTTP_TIMEOUT = 10.0


class CliError(Exception):
    """A problem the user must fix; printed without a traceback."""


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` → ``(host, port)``; default port 1883."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp"):
        raise CliError(f"unsupported broker URL {url!r} (use mqtt://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def load_credentials(path: Path) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Entries, top-level panel key and top-level topic prefix from a credentials file."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read credentials {path}: {exc}") from exc
    top_key = top_prefix = None
    if isinstance(data, dict):
        top_key, top_prefix = data.get("panel_public_key"), data.get("topic_prefix")
        data = data.get("nodes")
    if not isinstance(data, list) or not data:
        raise CliError(f"{path}: expected a non-empty list of {{node_id, token}}")
    for entry in data:
        if not isinstance(entry, dict) or not entry.get("node_id") or not entry.get("token"):
            raise CliError(f"{path}: every entry needs node_id and token")
        if not NODE_ID_RE.match(entry["node_id"]):
            raise CliError(f"{path}: invalid node id {entry['node_id']!r}")
    return data, top_key, top_prefix


def fetch_panel_key(panel: str) -> str:
    """The panel's Ed25519 public key (base64) from its REST API, for credentials that do not carry it."""
    url = panel.rstrip("/") + "/api/v1/panel-key"
    try:
        resp = requests.get(url, timeout=HTTP_TIMEOUT)
        resp.raise_for_status()
        key = resp.json()["public_key"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"cannot get the panel public key from {url}: {exc}") from exc
    return str(key)


def register_nodes(panel: str, api_token: str, zone: str, count: int, id_prefix: str) -> dict[str, Any]:
    """Register ``count`` nodes; returns a credentials document (also what the CLI saves)."""
    url = panel.rstrip("/") + "/api/v1/nodes"
    nodes: list[dict[str, Any]] = []
    key = prefix = None
    for i in range(1, count + 1):
        node_id = f"{id_prefix}-{i:03d}"
        body = {"node_id": node_id, "name": f"Simulated node {i:03d}", "zone": zone}
        try:
            resp = requests.post(url, json=body, headers={"Authorization": f"Bearer {api_token}"},
                                 timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach the panel at {url}: {exc}") from exc
        if resp.status_code == 409:
            raise CliError(f"node {node_id} is already registered; run again with --credentials FILE "
                           "(its token is shown only once, at registration)")
        if resp.status_code != 201:
            raise CliError(f"registering {node_id} failed: HTTP {resp.status_code} {resp.text[:200]}")
        try:
            data = resp.json()
            nodes.append({"node_id": data["node_id"], "token": data["token"]})
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"unexpected registration answer for {node_id}: {resp.text[:200]}") from exc
        key = data.get("panel_public_key") or key
        prefix = data.get("topic_prefix") or prefix
    return {"panel_public_key": key, "topic_prefix": prefix, "nodes": nodes}


def save_credentials(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` readable by the owner only (it holds node tokens, shown once at registration)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
