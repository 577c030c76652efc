"""The broker enforces the registry: the panel manages Mosquitto's clients over the dynamic-security plugin.

``PanelService`` calls a :class:`BrokerRegistry` when a node's credential changes or a node is deleted; the
default :class:`NullBrokerRegistry` does nothing (unit tests, CLI tools, an unmanaged external broker).
:class:`DynsecRegistry` speaks the plugin's JSON protocol on ``$CONTROL/dynamic-security/v1`` with its own MQTT
connection under the panel's login, and waits for the broker's answer: a rotation or deletion the broker did
not confirm is refused by the service (and rolled back) instead of leaving an old token able to log in.

Measured on Mosquitto 2.0.11 (tests/test_broker_auth.py): ``setClientPassword`` and ``deleteClient`` both
close a session connected with the old credential at once (the plugin kicks the username, without its
last-will), and the old password is refused from the next CONNECT; the command is answered in ~5 ms on
loopback. The 2.0 plugin has no ``%u`` ACL patterns, hence one role per node (broadcaster/brokerconf.py).
The plugin accepts only clear passwords over ``$CONTROL`` (hashes only in its JSON file), so the token is sent
to the broker once, when issued, and never stored.

paho is imported lazily so that importing this module (for the Protocol) does not pull the MQTT client in.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broadcaster.brokerconf import DYNSEC_TOPIC, NODE_ROLE_PREFIX, node_acls, node_rolename

log = logging.getLogger(__name__)


class BrokerRegistryError(RuntimeError):
    """The broker did not confirm a change of its clients (unreachable, timed out, or refused)."""


class BrokerRegistry(Protocol):
    def node_credentials_changed(self, node_id: str, token: str) -> None:
        """``node_id`` now logs in with ``token`` only (a new node, or a rotated token): any session connected
        with an earlier credential is closed."""

    def node_removed(self, node_id: str) -> None:
        """``node_id`` may no longer log in; its session, if any, is closed."""

    def sync(self, node_ids: Iterable[str]) -> dict[str, list[str]]:
        """Remove broker clients of nodes that are no longer registered; report registered nodes it lacks."""


class NullBrokerRegistry:
    """No broker to manage (unit tests, CLI tools, an external broker provisioned by other means)."""

    def node_credentials_changed(self, node_id: str, token: str) -> None:
        pass

    def node_removed(self, node_id: str) -> None:
        pass

    def sync(self, node_ids: Iterable[str]) -> dict[str, list[str]]:
        return {"removed": [], "missing": []}


class DynsecRegistry:
    """Keeps Mosquitto's dynamic-security clients equal to the registry. One request at a time."""

    RESPONSE_TOPIC = f"{DYNSEC_TOPIC}/response"

    def __init__(self, host: str, port: int, *, username: str, password: str, prefix: str,
                 client_id: str = "loaphuong-panel-admin", timeout: float = 5.0) -> None:
        if not username:
            raise BrokerRegistryError("managing the broker's clients needs the panel's broker login "
                                      "(LOAPHUONG_MQTT_USERNAME / LOAPHUONG_MQTT_PASSWORD)")
        self.host, self.port, self.prefix, self.timeout = host, port, prefix, timeout
        self.panel_user = username
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=15)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.ready = threading.Event()  # connected and subscribed to the answers
        self._lock = threading.Lock()
        self._pending: str | None = None
        self._answer: list[dict[str, Any]] | None = None
        self._answered = threading.Event()
        self._sub_mid: int | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self, wait: float = 10.0) -> DynsecRegistry:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if wait and not self.ready.wait(wait):
            log.warning("broker admin: %s:%s not reachable yet; node rotations and deletions are refused "
                        "until it is", self.host, self.port)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker admin: login refused (%s)", reason_code)
            return
        _rc, self._sub_mid = client.subscribe(self.RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        if mid == self._sub_mid:
            if any(rc.is_failure for rc in reason_codes):
                log.error("broker admin: may not read %s: is the panel's role the one broker-config wrote?",
                          self.RESPONSE_TOPIC)
                return
            self.ready.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.ready.clear()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        if responses and self._pending and responses[0].get("correlationData") == self._pending:
            self._answer = responses
            self._answered.set()

    # ---------------------------------------------------------------- requests
    def request(self, commands: list[dict[str, Any]],
                tolerate: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Send ``commands`` in one message and return the plugin's responses, in order. A response with an
        ``error`` raises :class:`BrokerRegistryError` unless ``tolerate[command] == error`` (e.g. deleting a
        client that is already gone)."""
        tolerate = tolerate or {}
        if not self.ready.is_set():
            # Never queue it in paho: applied later, it would act on a change the service has rolled back.
            raise BrokerRegistryError(f"not connected to the broker at {self.host}:{self.port}")
        with self._lock:
            key = uuid.uuid4().hex
            commands = [{**c, "correlationData": f"{key}" if i == 0 else f"{key}-{i}"} for i, c in enumerate(commands)]
            self._pending, self._answer = key, None
            self._answered.clear()
            self.client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands}), qos=1)
            answered = self._answered.wait(self.timeout)
            self._pending = None
            answer = self._answer
        if not answered or answer is None:
            raise BrokerRegistryError(f"the broker did not answer within {self.timeout:g} s")
        for command, response in zip(commands, answer, strict=False):
            error = response.get("error")
            if error and tolerate.get(command["command"]) != error:
                raise BrokerRegistryError(f"broker refused {command['command']}: {error}")
        return answer

    # ---------------------------------------------------------------- BrokerRegistry
    def node_credentials_changed(self, node_id: str, token: str) -> None:
        # The plugin rewrites its whole JSON file after every successful command (~35 ms at 1,000 nodes, ~70 ms
        # at 2,000 on loopback), so each change uses as few as it can: a rotation is one setClientPassword
        # (which also closes the session); a new node is createRole + createClient.
        answer = self.request([{"command": "setClientPassword", "username": node_id, "password": token}],
                              tolerate={"setClientPassword": "Client not found"})
        if answer[0].get("error"):
            role = node_rolename(node_id)
            self.request([
                {"command": "createRole", "rolename": role, "acls": node_acls(self.prefix, node_id)},
                {"command": "createClient", "username": node_id, "clientid": node_id, "password": token,
                 "roles": [{"rolename": role}]},
            ], tolerate={"createRole": "Role already exists"})
        log.info("broker: credential of node %s set", node_id)

    def node_removed(self, node_id: str) -> None:
        self.request([
            {"command": "deleteClient", "username": node_id},
            {"command": "deleteRole", "rolename": node_rolename(node_id)},
        ], tolerate={"deleteClient": "Client not found", "deleteRole": "Role not found"})
        log.info("broker: node %s removed", node_id)

    def sync(self, node_ids: Iterable[str]) -> dict[str, list[str]]:
        """Delete the broker clients and roles of nodes no longer registered (a deletion that happened while
        the broker was unreachable); list registered nodes the broker lacks (they need a new token). Clients
        that are not nodes (the panel, an operator's monitoring login) are left alone."""
        registered = set(node_ids)
        clients = self.request([{"command": "listClients", "verbose": True}])[0]["data"]["clients"]
        roles = self.request([{"command": "listRoles", "verbose": False}])[0]["data"]["roles"]
        broker_nodes = {c["username"] for c in clients
                        if any(r.get("rolename") == node_rolename(c["username"]) for r in c.get("roles", []))}
        removed = sorted(broker_nodes - registered)
        for node_id in removed:
            self.node_removed(node_id)
        for role in roles:
            name = role if isinstance(role, str) else role.get("rolename", "")
            if name.startswith(NODE_ROLE_PREFIX) and name[len(NODE_ROLE_PREFIX):] not in registered:
                self.request([{"command": "deleteRole", "rolename": name}], tolerate={"deleteRole": "Role not found"})
        missing = sorted(registered - broker_nodes)
        if removed:
            log.warning("broker: removed %d client(s) of deleted nodes: %s", len(removed), ", ".join(removed[:20]))
        if missing:
            log.warning("broker: %d registered node(s) have no broker login and need a new token: %s",
                        len(missing), ", ".join(missing[:20]))
        return {"removed": removed, "missing": missing}
