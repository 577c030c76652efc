"""Zones, nodes, their credentials and their commands (the registry side of fleet & commands;
broadcaster/fleet.py has presence, health and reports).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from broadcaster import tenancy
from broadcaster.broker_admin import BrokerRegistryError
from broadcaster.brokerconf import mosquitto_hash
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.languages import VIETNAMESE
from broadcaster.languages import check_list as language_list
from broadcaster.models import (
    CommandRecord,
    Node,
    User,
    Zone,
)
from devices import protocol as proto
from devices.registry import RegistryError, new_token, token_hash, validate_node_id

log = logging.getLogger(__name__)

ZONE_KINDS = ("village", "residential_group")


class Nodes(PanelCore):
    """The zones, nodes and commands part of the panel's services."""

    def create_zone(self, code: str, name: str, kind: str = "residential_group", ward: str | None = "",
                    user: User | None = None, languages: list[str] | None = None) -> Zone:
        """A zone of a ward: the caller's own ward (a province user names one when there are several), with the
        languages its residents need in order (broadcaster/languages.py; default Vietnamese only)."""
        wanted = language_list(languages)
        code = (code or "").strip()
        if not proto.NODE_ID_RE.match(code):
            raise ServiceError("invalid_zone_code", "zone code: lowercase letters, digits, '-' or '_'", "code")
        if not (name or "").strip():
            raise ServiceError("required", "zone name is required", "name")
        if kind not in ZONE_KINDS:
            raise ServiceError("invalid_zone_kind", f"kind must be one of {', '.join(ZONE_KINDS)}", "kind")
        with self.db.session() as s:
            w = tenancy.ward_for_new(s, user, (ward or "").strip() or None)
            if s.scalar(select(Zone).where(Zone.code == code)):
                raise ServiceError("zone_exists", f"zone {code!r} exists", "code", 409)
            # ``ward``: the label the caller gave (a one-ward installation's free text), else the ward's code
            zone = Zone(code=code, name=name.strip(), kind=kind, ward=(ward or "").strip() or w.code, ward_id=w.id,
                        languages=None if wanted == [VIETNAMESE] else wanted)
            s.add(zone)
            s.flush()
            self.audit(s, user, "zone.create", code, ward_id=w.id)
            return zone

    def list_zones(self, scope: tenancy.Scope | None = None) -> list[Zone]:
        with self.db.session() as s:
            q = select(Zone).options(selectinload(Zone.nodes)).order_by(Zone.code)
            return list(s.scalars(scope.restrict(q, Zone) if scope is not None else q))

    def register_node(
        self, node_id: str, name: str = "", zone: int | str | None = None, user: User | None = None
    ) -> tuple[Node, str]:
        """Create a node and return ``(node, token)``; the token is shown once and only its hash kept."""
        try:
            node_id = validate_node_id(node_id)
        except RegistryError as exc:
            raise ServiceError(exc.code, str(exc), "node_id") from exc
        if self.config.MQTT_USERNAME and node_id == self.config.MQTT_USERNAME:
            raise ServiceError("invalid_node_id", f"{node_id!r} is the panel's broker username", "node_id")
        token = new_token()
        with self.db.session() as s:
            # node ids are unique across the province (the broker login is the node id)
            if s.scalar(select(Node).where(Node.node_id == node_id)):
                raise ServiceError("node_exists", f"node {node_id!r} is already registered", "node_id", 409)
            z = self.zone_by_ref(s, zone, tenancy.user_scope(user))
            ward_id = z.ward_id if z is not None else tenancy.ward_for_new(s, user).id
            node = Node(node_id=node_id, name=(name or node_id).strip(), zone=z, token_hash=token_hash(token),
                        mqtt_password_hash=mosquitto_hash(token),  # broker login (broadcaster/brokerconf.py)
                        ward_id=ward_id)
            s.add(node)
            s.flush()
            self.audit(s, user, "node.register", node_id, zone=z.code if z else None, ward_id=ward_id)
            node_id_value = node.node_id
            # Before the commit: a login the broker did not confirm rolls the registration back.
            self._tell_broker(lambda: self.broker_registry.node_credentials_changed(node_id_value, token))
        self.publish_plans([node_id_value])
        return self.get_node(node_id_value), token  # type: ignore[return-value]

    def rotate_node_token(self, node_id: str, user: User | None = None) -> str:
        """Issue a new token for a node. The old one stops working at once: for media downloads with this
        commit, and on the broker (refused, its connected session closed) before it — if the broker does not
        confirm, nothing changes and ``broker_unavailable`` (503) is raised."""
        token = new_token()
        with self.db.session() as s:
            node = s.scalar(select(Node).where(Node.node_id == node_id))
            if node is None or not (tenancy.user_scope(user) or tenancy.Scope.everything()).sees(node.ward_id):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            node.token_hash = token_hash(token)
            node.mqtt_password_hash = mosquitto_hash(token)
            # A re-provisioned node starts over (seq from 1, boot counter from 1): a new event epoch,
            # and the old session number must not hide its last-wills.
            node.event_epoch = (node.event_epoch or 0) + 1
            node.last_event_seq = 0
            node.session = None
            self.audit(s, user, "node.rotate_token", node_id)
            self._tell_broker(lambda: self.broker_registry.node_credentials_changed(node_id, token))
        return token

    def delete_node(self, node_id: str, user: User | None = None) -> None:
        """Remove a node from the registry: the broker refuses its login and closes its session, its row goes,
        and its retained plan is cleared (an empty retained message). Its history (events, commands, audit)
        stays. If the broker does not confirm, nothing is deleted (``broker_unavailable``, 503)."""
        with self.db.session() as s:
            node = s.scalar(select(Node).options(selectinload(Node.zone)).where(Node.node_id == node_id))
            if node is None or not (tenancy.user_scope(user) or tenancy.Scope.everything()).sees(node.ward_id):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            zone = node.zone.code if node.zone else None
            s.delete(node)
            s.flush()
            self.audit(s, user, "node.delete", node_id, zone=zone)
            self._tell_broker(lambda: self.broker_registry.node_removed(node_id))
        self.publisher.publish(self.topics.plan(node_id), b"", qos=1, retain=True)

    def provision_broker_logins(self, credentials: dict[str, str]) -> None:
        """Give newly created nodes (``node_id → token``) their broker login; for code that creates ``Node`` rows
        itself (the CSV import). Call it inside the transaction that creates them, before the commit: a login
        the broker did not confirm raises ``broker_unavailable`` and rolls the import back."""
        for node_id, token in credentials.items():
            self._tell_broker(lambda n=node_id, t=token: self.broker_registry.node_credentials_changed(n, t))

    @staticmethod
    def _tell_broker(change: Callable[[], None]) -> None:
        try:
            change()
        except BrokerRegistryError as exc:
            log.error("broker did not confirm a login change: %s", exc)
            raise ServiceError("broker_unavailable", f"the MQTT broker did not confirm the change ({exc}); "
                               "nothing was changed, try again", status=503) from exc

    def list_nodes(self, scope: tenancy.Scope | None = None) -> list[Node]:
        with self.db.session() as s:
            q = select(Node).options(selectinload(Node.zone)).order_by(Node.node_id)
            return list(s.scalars(scope.restrict(q, Node) if scope is not None else q))

    def node_for_token(self, token: str) -> Node | None:
        if not token:
            return None
        with self.db.session() as s:
            return s.scalar(select(Node).where(Node.token_hash == token_hash(token)))

    def send_command(
        self, node_id: str, name: str, args: dict[str, Any] | None = None, user: User | None = None
    ) -> CommandRecord:
        if name not in {c.value for c in proto.CommandName}:
            raise ServiceError("unknown_command", f"unknown command {name!r}", "name")
        now = datetime.now(UTC)
        with self.db.session() as s:
            if not s.scalar(select(Node).where(Node.node_id == node_id)):
                raise ServiceError("not_found", f"no node {node_id!r}", status=404)
            record = CommandRecord(
                id=uuid.uuid4().hex,
                node_id=node_id,
                name=name,
                args=args or {},
                issued_at=now,
                expires_at=now + timedelta(seconds=self.config.COMMAND_TTL_S),
                issued_by_id=user.id if user else None,
            )
            payload = {
                "type": "command",
                "protocol": 1,
                "node_id": node_id,
                "id": record.id,
                "name": name,
                "args": args or {},
                "issued_at": proto.format_ts(now),
                "expires_at": proto.format_ts(record.expires_at),
            }
            # Signed (and sized) before the record is committed: a payload that cannot go out (a float, over
            # the 256 KiB a node accepts) leaves no pending command behind.
            try:
                wire = proto.encode(proto.sign_payload(payload, self.signing_key))
            except proto.ProtocolError as exc:  # e.g. a float: the wire has integers only (protocol §4)
                raise ServiceError("invalid_field", f"args: {exc}", "args") from exc
            if len(wire) > proto.MAX_PAYLOAD_BYTES:
                raise ServiceError("too_large", f"the command is {len(wire)} bytes, over the "
                                   f"{proto.MAX_PAYLOAD_BYTES} a node accepts", "args", 413)
            s.add(record)
            self.audit(s, user, "command.send", node_id, name=name, args=args or {})
        self.publisher.publish(self.topics.cmd(node_id), wire, qos=1, retain=False)
        return record

    def list_commands(self, node_id: str, limit: int = 50) -> list[CommandRecord]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(CommandRecord)
                    .where(CommandRecord.node_id == node_id)
                    .order_by(CommandRecord.issued_at.desc())
                    .limit(limit)
                )
            )
