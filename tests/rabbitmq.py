"""A throwaway RabbitMQ node with the MQTT plugin, run as a child process of the test (never the system service).

Debian's ``rabbitmq-server`` package (3.10.8 on Debian 12, installed by ``make test``) is started straight from
``/usr/lib/rabbitmq/bin/rabbitmq-server`` with every path in the test's own directory: its node name, Mnesia
directory, logs, configuration, enabled-plugins file and Erlang cookie (``HOME``) are private, and the AMQP,
MQTT, management-HTTP and Erlang-distribution ports are free ones. ``RUNNING_UNDER_SYSTEMD=1`` makes the script
``exec`` the Erlang VM, so the child we hold *is* the broker: SIGTERM stops it cleanly, SIGKILL is a power cut.
The only thing shared with other nodes on the machine is Erlang's port mapper (``epmd`` on 4369), which the
first node starts and which outlives it, as it does for any Erlang program.

Startup measured here (2 cores, shared with other jobs): 12-20 s for a fresh node, once 34 s; ~3.3 s of it is the MQTT
plugin waiting for cluster peers before it elects its client-id tracker. So a test module shares one node and
isolates its tests with a fresh virtual host each (:meth:`RabbitMQ.fresh_vhost`: retained messages, queues and
persistent sessions are all per virtual host).

Access control is RabbitMQ's: a user per node (password = its token), vhost permissions limited to the node's
own MQTT subscription queues, and topic permissions on ``amq.topic`` with ``{username}`` expansion
(:func:`node_permissions`). :func:`operator_commands` is exactly what docs/deployment.md tells an operator to run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from broadcaster.broker import free_port, port_open

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
INSTALL_HINT = "sudo apt-get install -y rabbitmq-server"
#: RabbitMQ's default topic exchange, where the MQTT plugin publishes (MQTT `/` becomes `.` in routing keys).
MQTT_EXCHANGE = "amq.topic"
START_TIMEOUT_S = 90.0  # a fresh node takes 10-20 s on a loaded 2-core machine; give it room, fail clearly after


class RabbitMQUnavailable(RuntimeError):
    """The rabbitmq-server package is not installed."""


def rabbitmq_installed() -> bool:
    return os.access(RABBITMQ_BIN / "rabbitmq-server", os.X_OK)


# ------------------------------------------------------------------------------------------- permissions


def routing_key(topic: str) -> str:
    """The AMQP routing key RabbitMQ's MQTT plugin uses for an MQTT topic (`/` → `.`)."""
    return topic.replace("/", ".")


@dataclass(frozen=True)
class Permissions:
    """One user's rights: vhost permissions (regexes on queue/exchange names) and topic permissions on
    ``amq.topic`` (regexes on routing keys; RabbitMQ expands ``{username}`` when it checks them)."""

    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str


def node_permissions(node_id: str, prefix: str = "loaphuong") -> Permissions:
    """What node ``node_id`` may do: publish only its own status/events/ack/plan_request, subscribe only to its
    own plan/cmd and the panel's presence.

    The MQTT plugin keeps a subscriber's messages in the queue ``mqtt-subscription-{client_id}qos{0,1}``: the
    vhost permissions allow only the node's own two queues (so a node login cannot open a session under another
    client id: its queue would be refused) and the exchange. Vhost permissions have no variable expansion,
    hence the node id in them; the topic permissions are the same text for every node.
    """
    root = routing_key(prefix).replace(".", r"\.") + r"\.v1"
    own_queues = f"mqtt-subscription-{node_id}qos[01]"
    exchange = MQTT_EXCHANGE.replace(".", r"\.")
    return Permissions(
        configure=f"^{own_queues}$",
        write=f"^({exchange}|{own_queues})$",
        read=f"^({exchange}|{own_queues})$",
        topic_write=rf"^{root}\.nodes\.{{username}}\.(status|events|ack|plan_request)$",
        topic_read=rf"^{root}\.(nodes\.{{username}}\.(plan|cmd)|panel\.status)$",
    )


#: The panel may do everything on its virtual host (without topic permissions RabbitMQ would allow every routing
#: key too; they are set to `.*` so that the commands are the same three for every user).
PANEL_PERMISSIONS = Permissions(configure=".*", write=".*", read=".*", topic_write=".*", topic_read=".*")


def operator_commands(user: str, password: str, perms: Permissions, vhost: str = "/") -> list[list[str]]:
    """The ``rabbitmqctl`` command lines that create ``user`` with ``perms`` (docs/deployment.md)."""
    return [
        ["add_user", user, password],
        ["set_permissions", "-p", vhost, user, perms.configure, perms.write, perms.read],
        ["set_topic_permissions", "-p", vhost, user, MQTT_EXCHANGE, perms.topic_write, perms.topic_read],
    ]


def rotation_commands(user: str, new_password: str, perms: Permissions, vhost: str = "/") -> list[list[str]]:
    """A rotated token (``POST /api/v1/nodes/{id}/token``): delete the login, which also closes its MQTT connections,
    and create it again. Measured on 3.10.8: ``change_password`` leaves an open session running and
    ``close_all_user_connections`` does not reach MQTT connections (it closes AMQP ones only). A deleted node:
    the first command alone."""
    return [["delete_user", user], *operator_commands(user, new_password, perms, vhost)]


def password_hash(password: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


# ------------------------------------------------------------------------------------------------ the node


class RabbitMQ:
    """One RabbitMQ node on loopback with the MQTT plugin (and the management plugin, used to set users up
    quickly: the same rights as :func:`operator_commands`, without starting an Erlang VM per command).

    ``anonymous=True`` lets a client without credentials in (as RabbitMQ's configured default user), for the
    conformance tests that use a raw client; production and the ACL tests use ``anonymous=False``.
    Quacks like ``broadcaster.broker.EmbeddedBroker`` (``kind``, ``host``, ``port``, ``url``, ``start``,
    ``stop``, ``kill``, ``cleanup``) so the shared test clients and tests/stack.py can use it.
    """

    kind = "rabbitmq"

    def __init__(self, data_dir: str | Path | None = None, *, anonymous: bool = False,
                 host: str = "127.0.0.1", cluster_with: RabbitMQ | None = None) -> None:
        """``cluster_with``: a node this one will join (:meth:`join_cluster`); it shares that node's Erlang cookie
        and admin login."""
        self.host = host
        self.anonymous = anonymous
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="loaphuong-rabbitmq-"))
        self.port = free_port(host)  # MQTT
        self.amqp_port = free_port(host)
        self.http_port = free_port(host)
        self.dist_port = free_port(host)
        self.node = f"loaphuong-{self.port}@localhost"
        self.admin = cluster_with.admin if cluster_with else ("loaphuong-admin", secrets.token_urlsafe(16))
        self.cookie = cluster_with.cookie if cluster_with else secrets.token_hex(16).upper()
        self.vhost = "/"
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log" / "broker.log"

    def env(self) -> dict[str, str]:
        """The environment both the server and rabbitmqctl need to find this node and nothing else."""
        d = self.data_dir
        return {
            **os.environ,
            "HOME": str(d / "home"),  # the Erlang cookie lives here, not in /var/lib/rabbitmq
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_LOGS": str(self.log_path),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),  # absent: nothing from /etc
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RUNNING_UNDER_SYSTEMD": "1",  # exec the VM: our child is the broker itself
        }

    def config(self) -> str:
        lines = [
            f"listeners.tcp.default = {self.host}:{self.amqp_port}",
            f"mqtt.listeners.tcp.default = {self.host}:{self.port}",
            f"management.tcp.ip = {self.host}",
            f"management.tcp.port = {self.http_port}",
            f"default_user = {self.admin[0]}",
            f"default_pass = {self.admin[1]}",
            "default_user_tags.administrator = true",
            "mqtt.vhost = /",
            f"mqtt.exchange = {MQTT_EXCHANGE}",
            f"mqtt.allow_anonymous = {'true' if self.anonymous else 'false'}",
            # Like Mosquitto's max_queued_messages: the default is unlimited; nothing to raise here.
        ]
        if self.anonymous:
            lines += [f"mqtt.default_user = {self.admin[0]}", f"mqtt.default_pass = {self.admin[1]}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = START_TIMEOUT_S) -> RabbitMQ:
        if not rabbitmq_installed():
            raise RabbitMQUnavailable(f"rabbitmq-server is not installed ({INSTALL_HINT})")
        for sub in ("home", "mnesia", "log"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        cookie = self.data_dir / "home" / ".erlang.cookie"  # nodes of one cluster must share it
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        (self.data_dir / "rabbitmq.conf").write_text(self.config())
        (self.data_dir / "rabbitmq-env.conf").write_text("")
        (self.data_dir / "enabled_plugins").write_text("[rabbitmq_mqtt,rabbitmq_management].\n")
        started = time.monotonic()
        with open(self.data_dir / "server.out", "ab") as out:
            self._proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self.env(), stdout=out,
                                          stderr=out, stdin=subprocess.DEVNULL, cwd=self.data_dir)
        # The MQTT listener opens last, after users, vhosts and the retained-message stores are up.
        while not port_open(self.host, self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with code {self._proc.returncode}; see {self.log_path}")
            if time.monotonic() - started > timeout:
                self.stop()
                raise RuntimeError(f"RabbitMQ did not open MQTT port {self.port} within {timeout:.0f}s")
            time.sleep(0.05)
        self.startup_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM: RabbitMQ closes its connections and writes its stores)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def kill(self) -> None:
        """As if the machine lost power."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def cleanup(self) -> None:
        self.kill()  # a throwaway node: nothing to write back
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RabbitMQ:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # ------------------------------------------------------------------------------------- administration
    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> args…`` (raises with its output when it fails)."""
        proc = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
        return proc

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One call to the management HTTP API as the admin user."""
        r = requests.request(method, f"http://{self.host}:{self.http_port}/api{path}", json=body,
                             auth=self.admin, timeout=30)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def add_user(self, user: str, password: str, perms: Permissions, vhost: str | None = None) -> None:
        """The management-API equivalent of :func:`operator_commands` (milliseconds instead of seconds)."""
        vhost = vhost or self.vhost
        quoted = quote(vhost, safe="")
        self.api("PUT", f"/users/{user}", {"password_hash": password_hash(password),
                                           "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
        self.api("PUT", f"/permissions/{quoted}/{user}",
                 {"configure": perms.configure, "write": perms.write, "read": perms.read})
        self.api("PUT", f"/topic-permissions/{quoted}/{user}",
                 {"exchange": MQTT_EXCHANGE, "write": perms.topic_write, "read": perms.topic_read})

    def join_cluster(self, other: RabbitMQ) -> None:
        """Make this (running) node a member of ``other``'s cluster: what an operator does on each new machine
        (``rabbitmqctl stop_app; rabbitmqctl join_cluster rabbit@first; rabbitmqctl start_app``)."""
        self.ctl("stop_app")
        self.ctl("join_cluster", other.node)
        self.ctl("start_app")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(self.host, self.port):  # the MQTT listener comes back last
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.node} did not reopen MQTT port {self.port} after joining the cluster")
            time.sleep(0.05)

    def fresh_vhost(self, name: str) -> str:
        """Create virtual host ``name`` and send every MQTT connection to it from now on (the plugin's
        ``mqtt_port_to_vhost_mapping``): a clean broker for one test without restarting the node."""
        quoted = quote(name, safe="")
        self.api("PUT", f"/vhosts/{quoted}")
        self.api("PUT", f"/permissions/{quoted}/{self.admin[0]}", {"configure": ".*", "write": ".*", "read": ".*"})
        self.api("PUT", "/global-parameters/mqtt_port_to_vhost_mapping",
                 {"name": "mqtt_port_to_vhost_mapping", "value": {str(self.port): name}})
        self.vhost = name
        return name


def started(root: Path, *, anonymous: bool) -> RabbitMQ:
    """A running throwaway node for a fixture; `make test` installs RabbitMQ, so a missing one fails the test,
    never skips it."""
    node = RabbitMQ(root, anonymous=anonymous)
    try:
        node.start()
    except RabbitMQUnavailable as exc:
        pytest.fail(f"RabbitMQ is required ({INSTALL_HINT}): {exc}")
    return node
