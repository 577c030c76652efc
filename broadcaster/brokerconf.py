"""Mosquitto provisioning: ``loaphuong broker-config --out DIR`` writes a broker configuration that loads
Mosquitto's dynamic-security plugin, with its initial JSON (clients, roles, ACLs) generated from the registry.
The embedded broker of ``serve`` / ``demo`` is configured by the same functions (broadcaster/broker.py), and
while the panel runs it keeps the broker in step with the registry over ``$CONTROL/dynamic-security/v1``
(broadcaster/broker_admin.py): a rotated token or a deleted node is refused at once and its session is closed.

Credentials: every node logs in with username = client id = its node id and password = its token (the
same token that authorizes media downloads; docs/protocol.md §2). The panel keeps only a SHA-256 of the
token for HTTP, which Mosquitto cannot use, so when a token is issued the panel also stores the token's
Mosquitto hash (``$7$`` = PBKDF2-SHA512, the format of ``mosquitto_passwd`` 2.x) in
``Node.mqtt_password_hash``. The dynamic-security plugin hashes passwords the same way (PBKDF2-SHA512, 12-byte
salt) and stores ``password`` / ``salt`` / ``iterations`` separately, so its JSON is written from that column
without the clear token. Nodes registered before that column existed have none and are listed as needing
re-provisioning (a new token).

Access control: the dynamic-security plugin of Mosquitto 2.0 has no ``%u`` patterns, so every node gets its
own role ``node:<id>``: it may subscribe to and receive only ``nodes/<its id>/plan``, ``nodes/<its id>/cmd``
and the panel's presence, and publish only ``nodes/<its id>/status``, ``events`` and ``ack``. Everything else
is denied by default (``defaultACLAccess`` all false), so a wildcard subscription of a node is refused outright.
The panel's user has the whole ``<prefix>/v1/#`` tree and the plugin's control topic. A node client is pinned
to the client id equal to its node id (a dynamic-security ``clientid``): a node cannot take over another
node's session, nor the panel's, by borrowing its client id (what ``use_username_as_clientid`` did before;
the panel itself needs two connections, bridge and admin, under its one login). Usernames containing ``+``,
``#`` or ``/`` are refused here and at registration (``devices.registry.validate_node_id``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from broadcaster.models import Node
from devices.protocol import MAX_PAYLOAD_BYTES

#: Mosquitto 2's own default. The password is a 256-bit random token, so key stretching adds nothing;
#: a low count keeps 10,000 reconnecting nodes cheap for the broker.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: Where Debian / Ubuntu and a source build put the plugin that ships with Mosquitto 2.
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
#: The plugin's control topic; its answers come on ``…/response``.
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
PANEL_ROLE = "loaphuong-panel"
#: ``max_packet_size`` of every Mosquitto the panel configures (broker-config and the embedded broker of
#: serve/demo): the protocol's largest payload (256 KiB, docs/protocol.md §2) plus 4 KiB for the topic and the
#: MQTT headers. A client sending a bigger packet is disconnected by the broker before the packet is read into
#: memory, so a node with a stolen token cannot push megabytes at the panel; the panel itself never publishes
#: more than 256 KiB.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
NODE_ROLE_PREFIX = "node:"


class BrokerConfigError(ValueError):
    pass


def mosquitto_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """The ``$7$<iterations>$<salt b64>$<hash b64>`` string ``mosquitto_passwd`` writes after ``user:``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, got)


def check_username(name: str) -> str:
    """A broker username: never a topic wildcard or level separator (``%u`` is pasted into topics)."""
    if any(c in name for c in "+#/") or not _USERNAME_RE.match(name):
        raise BrokerConfigError(
            f"invalid broker username {name!r}: letters, digits, '_', '-', '.', '@' only (no '+', '#', '/')")
    return name


def dynsec_plugin_path() -> str | None:
    """The dynamic-security plugin of the installed Mosquitto (``LOAPHUONG_DYNSEC_PLUGIN`` overrides)."""
    override = os.environ.get("LOAPHUONG_DYNSEC_PLUGIN")
    if override:
        return override if os.path.exists(override) else None
    return next((p for p in DYNSEC_PLUGIN_PATHS if os.path.exists(p)), None)


def node_rolename(node_id: str) -> str:
    return f"{NODE_ROLE_PREFIX}{node_id}"


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def node_acls(prefix: str, node_id: str) -> list[dict[str, Any]]:
    """The ACLs of role ``node:<id>``: read its plan and commands and the panel's presence, write its reports."""
    root = f"{prefix}/v1"
    reads = [f"{root}/nodes/{node_id}/plan", f"{root}/nodes/{node_id}/cmd", f"{root}/panel/status"]
    writes = [f"{root}/nodes/{node_id}/{leaf}" for leaf in ("status", "events", "ack", "plan_request")]
    return ([_acl("subscribeLiteral", t) for t in reads] + [_acl("publishClientReceive", t) for t in reads]
            + [_acl("publishClientSend", t) for t in writes])


def panel_acls(prefix: str) -> list[dict[str, Any]]:
    """The panel's role: the whole protocol tree, and the plugin's control topic (it manages node clients)."""
    return [_acl(kind, topic) for topic in (f"{prefix}/v1/#", f"{DYNSEC_TOPIC}/#")
            for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")]


def dynsec_password(hashed: str) -> dict[str, Any]:
    """A ``$7$`` Mosquitto hash as the plugin's ``password`` / ``salt`` / ``iterations`` fields (same PBKDF2)."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7" or len(base64.b64decode(salt)) != SALT_BYTES or len(base64.b64decode(digest)) != 64:
            raise ValueError(hashed[:8])
        return {"password": digest, "salt": salt, "iterations": int(iterations)}
    except (ValueError, TypeError) as exc:
        raise BrokerConfigError("not a Mosquitto $7$ password hash with a 12-byte salt") from exc


def dynsec_config(
    prefix: str, panel_user: str, panel_password: str, nodes: Iterable[tuple[str, str | None]],
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The plugin's JSON for the registry: ``(config, node ids provisioned, node ids without a credential)``.

    ``nodes`` yields ``(node_id, mqtt_password_hash)``. The panel's own password is hashed here.
    """
    check_username(panel_user)
    clients: list[dict[str, Any]] = [{
        "username": panel_user, "textname": "Loa Phường panel", **dynsec_password(mosquitto_hash(panel_password)),
        "roles": [{"rolename": PANEL_ROLE, "priority": 0}],
    }]
    roles: list[dict[str, Any]] = [{"rolename": PANEL_ROLE, "acls": panel_acls(prefix)}]
    provisioned: list[str] = []
    missing: list[str] = []
    for node_id, hashed in nodes:
        check_username(node_id)
        if node_id == panel_user:
            raise BrokerConfigError(f"node id {node_id!r} is the panel's broker username; rename the panel user")
        if not hashed:
            missing.append(node_id)
            continue
        clients.append({"username": node_id, "clientid": node_id, **dynsec_password(hashed),
                        "roles": [{"rolename": node_rolename(node_id), "priority": 0}]})
        roles.append({"rolename": node_rolename(node_id), "acls": node_acls(prefix, node_id)})
        provisioned.append(node_id)
    config = {
        # Deny by default: a client may do only what its role allows.
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                             "unsubscribe": True},
        "clients": clients, "groups": [], "roles": roles,
    }
    return config, provisioned, missing


def write_dynsec_file(path: Path, config: dict[str, Any], owner: str | None = None) -> None:
    """Write the plugin's JSON (0600: it holds password hashes). ``owner``: the user Mosquitto runs as, who
    must be able to rewrite it (the plugin saves every change as ``<file>.new`` + rename in the same folder)."""
    _write_private(path, json.dumps(config, indent=1) + "\n")
    if owner and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        for target in (path.parent, path):
            os.chown(target, entry.pw_uid, entry.pw_gid)


def mosquitto_auth_lines(dynsec_file: Path, plugin: str | None = None) -> list[str]:
    """The lines that put a Mosquitto 2 listener under the dynamic-security plugin, anonymous refused."""
    plugin = plugin or dynsec_plugin_path()
    if not plugin:
        raise BrokerConfigError("Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
                                "install Mosquitto 2 (apt-get install mosquitto) or set LOAPHUONG_DYNSEC_PLUGIN")
    return ["allow_anonymous false", f"plugin {plugin}", f"plugin_opt_config_file {dynsec_file}"]


def limit_lines() -> list[str]:
    """The size limit of a broker the panel configures (see ``MAX_PACKET_BYTES``)."""
    return ["# The largest MQTT packet: a 256 KiB payload (the protocol's limit) + 4 KiB; a client sending a",
            "# bigger one is disconnected.", f"max_packet_size {MAX_PACKET_BYTES}"]


def config_text(out: Path, *, port: int, bind: str = "", run_as: str | None = None,
                certfile: str | None = None, keyfile: str | None = None, dynsec_file: Path | None = None,
                plugin: str | None = None) -> str:
    lines = [
        "# Mosquitto 2.x configuration for Loa Phường — generated by `loaphuong broker-config`.",
        "per_listener_settings false",
        f"listener {port}{' ' + bind if bind else ''}",
    ]
    if certfile and keyfile:
        lines += [f"certfile {certfile}", f"keyfile {keyfile}"]
    lines += [
        "# Clients, passwords and per-node ACLs: the dynamic-security plugin, kept in step with the registry by",
        "# the panel over $CONTROL/dynamic-security/v1 (a rotated or deleted node is refused and disconnected).",
        *mosquitto_auth_lines(dynsec_file or out / "dynsec" / "dynamic-security.json", plugin),
        *limit_lines(),
        "persistence true",
        f"persistence_location {out / 'data'}/",
        "autosave_interval 60",
        "# Sized on purpose: the default of 1000 silently drops messages for a long-offline node or a slow panel.",
        "max_queued_messages 100000",
        "max_inflight_messages 100",
        "max_connections -1",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    return "\n".join(lines) + "\n"


@dataclass
class BrokerFiles:
    out: Path
    conf: Path
    #: The dynamic-security plugin's JSON (clients, roles, ACLs); Mosquitto rewrites it on every change.
    dynsec: Path
    panel_env: Path
    panel_user: str
    panel_password: str
    nodes: list[str] = field(default_factory=list)
    #: Registered nodes with no broker credential yet (registered before provisioning existed).
    missing: list[str] = field(default_factory=list)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)


class PanelState(Protocol):
    """What the broker files need of the panel: its database and configuration (any PanelService is one).
    A structural type, so that this module (below the service layer) never imports it."""

    @property
    def db(self) -> Any: ...

    @property
    def config(self) -> Any: ...


def _read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def registry_rows(service: PanelState) -> list[tuple[str, str | None]]:
    """``(node_id, mqtt_password_hash)`` of every registered node."""
    with service.db.session() as s:
        return [(n, h) for n, h in s.execute(select(Node.node_id, Node.mqtt_password_hash).order_by(Node.node_id))]


def write_broker_config(
    service: PanelState, out: str | Path, *, port: int = 1883, bind: str = "", panel_user: str | None = None,
    panel_password: str | None = None, run_as: str | None = None, certfile: str | None = None,
    keyfile: str | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``dynsec/dynamic-security.json`` and ``panel.env`` (the panel's broker login and
    ``LOAPHUONG_BROKER_REGISTRY=dynsec``, so that the panel manages the broker's clients) to ``out``.

    The panel's password comes from ``panel_password``, else the configured ``MQTT_PASSWORD``, else the
    one already in ``out/panel.env``, else a new random one — so re-running keeps the panel's login.
    Re-run it only while that Mosquitto is stopped: a running one keeps its own copy and saves over the file.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    cfg = service.config
    env_path = out / "panel.env"
    previous = _read_env(env_path)
    user = check_username(panel_user or cfg.MQTT_USERNAME or previous.get("LOAPHUONG_MQTT_USERNAME") or "panel")
    password = panel_password or cfg.MQTT_PASSWORD or previous.get("LOAPHUONG_MQTT_PASSWORD") \
        or secrets.token_urlsafe(32)
    config, provisioned, missing = dynsec_config(cfg.MQTT_PREFIX, user, password, registry_rows(service))
    files = BrokerFiles(out=out, conf=out / "mosquitto.conf", dynsec=out / "dynsec" / "dynamic-security.json",
                        panel_env=env_path, panel_user=user, panel_password=password, nodes=provisioned,
                        missing=missing)
    conf = config_text(out, port=port, bind=bind, run_as=run_as, certfile=certfile, keyfile=keyfile,
                       dynsec_file=files.dynsec)
    write_dynsec_file(files.dynsec, config, owner=run_as)
    if run_as and os.geteuid() == 0:
        entry = pwd.getpwnam(run_as)
        os.chown(out / "data", entry.pw_uid, entry.pw_gid)
    files.conf.write_text(conf, encoding="utf-8")
    _write_private(env_path, f"LOAPHUONG_MQTT_USERNAME={user}\nLOAPHUONG_MQTT_PASSWORD={password}\n"
                             f"LOAPHUONG_MQTT_CLIENT_ID={user}\nLOAPHUONG_BROKER_REGISTRY=dynsec\n")
    return files
