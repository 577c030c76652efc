"""Embedded MQTT broker the panel starts and stops itself when no external broker is configured.

Preference order (``kind="auto"``): a local ``mosquitto`` binary if one is installed, else the
``iotcore`` wheel (rumqttd in a child process). amqtt is deliberately not supported (see
``docs/architecture.md``: retained-message leak, no last-will on a silent client).

With ``dynsec`` (what ``serve`` / ``demo`` use, broadcaster/app.py) Mosquitto runs with the dynamic-security
plugin, anonymous clients refused and the same per-node ACLs as production (broadcaster/brokerconf.py); the
plugin's JSON is rewritten from the registry at every start. Without it the broker is open to anyone on
loopback: only for tests and benchmarks about something else. iotcore has no ACLs and cannot be secured.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from iotcore import Broker as IotcoreBroker

from broadcaster.brokerconf import limit_lines, mosquitto_auth_lines, write_dynsec_file

log = logging.getLogger(__name__)

BrokerKind = Literal["auto", "mosquitto", "iotcore"]
#: iotcore is a test broker only (serve/demo refuse it), like the open Mosquitto without ``dynsec``: both let a
#: payload above the protocol's 256 KiB through (up to 1 MiB here), so that tests can check that a *node*
#: refuses it. The panel's own broker (``dynsec``) is limited like production: brokerconf.MAX_PACKET_BYTES.
IOTCORE_MAX_PAYLOAD = 1024 * 1024


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class EmbeddedBroker:
    """A broker on ``127.0.0.1:port`` owned by this process. ``start()`` / ``stop()`` / context manager.

    ``data_dir`` keeps Mosquitto's persistence (retained messages, queued QoS 1 messages of
    persistent sessions) across a restart of the broker. iotcore keeps nothing across a restart;
    the panel republishes retained plans when it (re)connects.
    """

    def __init__(
        self,
        kind: BrokerKind = "auto",
        port: int | None = None,
        host: str = "127.0.0.1",
        data_dir: str | Path | None = None,
        extra_config: str = "",
        dynsec: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
        extra_hosts: tuple[str, ...] = (),
    ) -> None:
        """``dynsec``: the dynamic-security plugin's JSON (or a function returning it, called at each start so
        that a restarted broker is rebuilt from the registry of that moment); ``None`` leaves the broker open.
        ``extra_hosts``: further addresses Mosquitto also listens on, same port (e.g. ``127.0.0.2``: a client
        host can open only ~28 000 connections to one address:port, one per ephemeral source port)."""
        if kind == "auto":
            kind = "mosquitto" if (mosquitto_binary() or dynsec is not None) else "iotcore"
        if kind == "iotcore" and dynsec is not None:
            raise ValueError("iotcore has no authentication or ACLs: a secured broker must be Mosquitto")
        if kind == "iotcore" and extra_hosts:
            raise ValueError("only Mosquitto listens on extra addresses")
        self.kind: Literal["mosquitto", "iotcore"] = kind  # type: ignore[assignment]
        self.host = host
        self.port = port or free_port(host)
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="loaphuong-broker-"))
        self.extra_config = extra_config
        self.dynsec = dynsec
        self.extra_hosts = extra_hosts
        self._proc: subprocess.Popen[bytes] | None = None
        self._iotcore = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The Mosquitto process's id while it runs (``None`` for iotcore, which runs inside this process)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        if self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            self._start_iotcore(timeout)
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with code {self._proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} did not listen on {self.host}:{self.port} within {timeout}s")
            time.sleep(0.02)
        log.info("embedded %s broker on %s", self.kind, self.url)
        return self

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def _start_mosquitto(self) -> None:
        binary = mosquitto_binary()
        if not binary:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        lines = ["per_listener_settings false", f"listener {self.port} {self.host}"]
        lines += [f"listener {self.port} {host}" for host in self.extra_hosts]
        if self.dynsec is not None:
            dynsec_file = self.data_dir / "dynamic-security.json"
            write_dynsec_file(dynsec_file, self.dynsec() if callable(self.dynsec) else self.dynsec)
            lines += mosquitto_auth_lines(dynsec_file) + limit_lines()  # the panel's broker: as in production
        else:
            lines.append("allow_anonymous true")
        lines += [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 1",
            # Sized on purpose: the default of 1000 silently drops messages for a slow subscriber.
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to 'mosquitto' and cannot write data_dir
        conf.write_text("\n".join(lines) + "\n" + self.extra_config + "\n")
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=logf, stderr=logf)

    def _start_iotcore(self, timeout: float) -> None:
        self._iotcore = IotcoreBroker(
            port=self.port, listen=self.host, max_payload_size=IOTCORE_MAX_PAYLOAD, connection_timeout_ms=60_000
        )
        self._iotcore.start(timeout=timeout)

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            self._proc = None
        if self._iotcore is not None:
            self._iotcore.stop()
            self._iotcore = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL for Mosquitto) — for restart tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None
        else:
            self.stop()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` → ``(host, port)`` (default port 1883)."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported broker URL scheme {parsed.scheme!r} (use mqtt://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883
