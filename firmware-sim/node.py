"""One simulated loudspeaker node speaking protocol v1 over MQTT 3.1.1 (the protocol simulator).

The simulator stands in for vendor hardware, so it imports nothing from this project except
``devices.protocol`` (the wire contract). What the node *decides* — plan, media, playback, events, commands —
is the shared node core (:mod:`firmware_sim.core`, also driven by the scale simulator); this module is its
driver for one node: a persistent MQTT session with a last-will (paho), the on-disk state, plan, media cache
and event outbox, HTTP media downloads, and the node's own clock.

Threads per node: an MQTT supervisor thread (connects, runs one paho client with ``loop_start`` per
connection, reconnects with back-off using a fresh client each time), a scheduler thread (ticks the core at the
times it asks for; it never waits on MQTT) and a media thread (HTTP downloads with backoff).

Why a fresh paho client per connection: paho keeps its own queue of unacknowledged messages and resends
it after CONNACK, *after* anything published from ``on_connect`` or by other threads during the
handshake, so seq order on the wire would be lost. Here the node's outbox is the only queue: events are
handed to paho only while a connection is up, and on every connect the whole unacknowledged outbox is
sent first, in seq order, before any new event.

Locks: one re-entrant ``_lock`` guards the core and hand-over to paho. Order: ``_lock`` → paho's internal
mutexes → ``_outbox_lock``. paho calls ``on_publish`` while holding its out-message mutex, so ``on_publish``
only takes ``_outbox_lock``, which is never held while calling paho.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
from firmware_sim.core import (
    COMMAND_INTERRUPTED,
    DEFAULT_VOLUME,
    NodeCore,
    Playing,
    verify_media,
)
from imageio_ffmpeg import get_ffmpeg_exe

from devices.protocol import (
    DEFAULT_HEARTBEAT_S,
    Event,
    Media,
    NodeState,
    Topics,
    load_public_key,
)

log = logging.getLogger("firmware_sim")

__all__ = ["COMMAND_INTERRUPTED", "DEFAULT_VOLUME", "NodeConfig", "SimNode", "append_jsonl", "b64_key_ok"]

#: Scheduler sleeps with ``Event.wait`` until this many seconds before a deadline, then fine-waits.
FINE_WAIT_S = 0.03
#: Longest single wait of the scheduler, so a wall-clock step is noticed within this time.
MAX_WAIT_S = 2.0
#: HTTP timeouts (connect, read) for media downloads.
MEDIA_TIMEOUT = (5.0, 30.0)
#: Events are dropped from the on-disk outbox once the broker PUBACKs them; this caps its size.
OUTBOX_MAX = 10_000
#: Stream items: how long the optional reachability probe may take.
STREAM_PROBE_TIMEOUT = (2.0, 10.0)
#: A stream that fails is tried again this often while its item plays (docs/protocol.md §7.6).
STREAM_RETRY_S = 2.0

_LOG_LOCKS: dict[str, threading.Lock] = {}
_LOG_LOCKS_GUARD = threading.Lock()


@dataclass
class NodeConfig:
    node_id: str
    token: str
    broker_host: str
    broker_port: int
    panel_public_key: str  # base64 of the raw 32-byte Ed25519 key
    data_dir: Path
    topic_prefix: str = "loaphuong"
    clock_offset_ms: int = 0  # clock skew: the node's clock is time.time() + this (fault injection)
    keepalive: int = 15
    sink_dir: Path | None = None  # when set, each playback is decoded to a WAV file here
    firmware: str = "sim-0.1"
    reconnect_max_delay: int = 10  # paho reconnect back-off: 1 s doubling up to this
    heartbeat_s: float = DEFAULT_HEARTBEAT_S  # status is republished (retained) this often
    rssi_dbm: int | None = -67  # simulated radio signal (±3 dB jitter per status); None: wired node
    stream_probe: bool = True  # stream items: GET the URL at start and read it (never fails the play)
    stream_retry: bool = True  # a stream that fails is tried again every STREAM_RETRY_S while the item plays
    reboot_delay_s: float = 0.2  # reboot command: time "off" between the clean stop and the new boot
    output_fault: str | None = None  # amp_dead | horn_off | stuck_low (firmware_sim.output): plays, not heard
    output_sensor: bool = True  # False: reports output_sensor false instead of output_lufs

    @property
    def skew_ms(self) -> int:
        """Alias of ``clock_offset_ms``: node clock = real time + skew."""
        return self.clock_offset_ms


def _atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    """Temporary file, fsync, rename: after a crash the file is either the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; a per-path lock keeps lines whole when many nodes share a log."""
    key = str(Path(path).resolve())
    with _LOG_LOCKS_GUARD:
        lock = _LOG_LOCKS.setdefault(key, threading.Lock())
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    with lock:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)


class SimNode:
    """A simulated node. ``start()`` boots it (from its data dir), ``stop()`` shuts it down.

    ``stop(clean=False)`` simulates a power cut: nothing more is sent, the TCP connection is dropped
    without DISCONNECT (so the broker publishes the last-will) and the data dir is left as it was.
    A new ``SimNode`` on the same data dir is the node after a reboot.

    The object is the core's :class:`firmware_sim.core.NodeIO`: the core calls ``persist``, ``event``, ``ack``,
    ``save_plan``, ``status_changed``, ``record``, ``started``, ``reboot`` and ``media_wanted`` under ``_lock``.
    """

    def __init__(self, config: NodeConfig, playback_log: Path | None = None) -> None:
        self.config = config
        self.node_id = config.node_id
        self.playback_log = Path(playback_log) if playback_log else None
        self.topics = Topics(config.topic_prefix)
        self.data_dir = Path(config.data_dir)
        self.media_dir = self.data_dir / "media"
        self.plays: list[dict[str, Any]] = []
        self._plays_lock = threading.Lock()

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.core = NodeCore(self.node_id, load_public_key(config.panel_public_key), self.now, self,
                             max_idle_s=MAX_WAIT_S, output_fault=config.output_fault,
                             output_sensor=config.output_sensor)
        self._booted_mono = time.monotonic()
        self._next_heartbeat = 0.0  # monotonic time of the next heartbeat status
        self.reboots = 0  # reboot commands executed by this object (each one is a new boot, session + 1)

        self._outbox_lock = threading.Lock()
        self._outbox: OrderedDict[int, bytes] = OrderedDict()  # seq → event payload, not yet PUBACKed
        self._acks: OrderedDict[int, bytes] = OrderedDict()  # command acks not yet PUBACKed (memory only)
        self._ack_counter = 0
        self._mid_tag: dict[int, tuple[str, int] | None] = {}  # mid → ("event", seq) / ("ack", n) / None
        self._early_pubacks: set[int] = set()

        self._client: mqtt.Client | None = None
        self._connected = threading.Event()  # set in on_connect once the outbox has been handed over
        self._conn_lost = threading.Event()  # the current client's connection ended (or was refused)
        self._mqtt_wake = threading.Event()  # wakes the MQTT supervisor: connection lost or stop requested
        self._stop_clean = True
        self._stopping = threading.Event()
        self._sched_wake = threading.Event()
        self._media_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._rebooting = False  # set by reboot(); a stop() from outside clears it (stay off)

    # ------------------------------------------------------------------------------ properties

    @property
    def _halted(self) -> bool:
        """After a stop: nothing more is emitted or written."""
        return self.core.halted

    @property
    def plan_version(self) -> int | None:
        return self.core.plan_version

    @property
    def volume(self) -> int:
        return self.core.volume

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def session(self) -> int:
        """Boot counter of this run (the ``session`` of status and last-will)."""
        return self.core.session

    @property
    def seq(self) -> int:
        """Sequence number of the last event produced."""
        return self.core.seq

    def now(self) -> float:
        """The node's own clock (epoch seconds), including the injected skew."""
        return time.time() + self.config.clock_offset_ms / 1000.0

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a SimNode starts once; create a new one to simulate a reboot")
        self._started = True
        self.media_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            state = self._load_state()
            verified = self._load_media()
            self._load_outbox()
            plan_path = self.data_dir / "plan.json"
            try:
                plan_raw = plan_path.read_bytes() if plan_path.exists() else None
            except OSError as exc:
                log.error("%s: stored plan.json unreadable (%s); waiting for the panel", self.node_id, exc)
                plan_raw = None
            self.core.boot(state, plan_raw, verified)
        log.info("%s: boot %d, plan v%s, %d media cached", self.node_id, self.session, self.plan_version,
                 len(verified))
        with self._lock:  # stop() reads the threads under the same lock
            if self._stopping.is_set():
                return  # stopped while booting (e.g. the fleet shut down during a reboot)
            for name, target in (("mqtt", self._mqtt_loop), ("sched", self._scheduler_loop),
                                 ("media", self._media_loop)):
                thread = threading.Thread(target=target, name=f"{self.node_id}-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self, clean: bool = True) -> None:
        if threading.current_thread().name != f"{self.node_id}-reboot":
            self._rebooting = False  # a stop from outside cancels a reboot in progress
        if not self._started or self._stopping.is_set():
            return
        if not clean:
            self.core.halt()  # a power cut: the node says nothing more
        with self._lock:
            self._stop_clean = clean
            self._stopping.set()
            threads = list(self._threads)
        self._sched_wake.set()
        self._media_wake.set()
        if not threads:  # still booting: start() sees _stopping and spawns nothing
            self.core.halt()
            return
        mqtt_thread, *workers = threads
        for thread in workers:
            thread.join(timeout=3)
        if clean:
            with self._lock:
                self.core.shutdown()
            self._drain_outbox(timeout=2.0)
            with self._lock:
                self.core.halt()
                client = self._client if self._connected.is_set() else None
            if client is not None:
                stopped = self._status_payload(NodeState.stopped)
                info = client.publish(self.topics.status(self.node_id), stopped, qos=1, retain=True)
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2.0)
        # The supervisor ends the connection: DISCONNECT if clean, else it drops the TCP connection so the
        # broker publishes the last-will (a power cut).
        self._mqtt_wake.set()
        mqtt_thread.join(timeout=5)
        if mqtt_thread.is_alive():
            log.warning("%s: MQTT thread still running after stop", self.node_id)
        self._connected.clear()
        log.info("%s: stopped (%s)", self.node_id, "clean" if clean else "power cut")

    def wait_for_plan(self, version: int | None = None, timeout: float = 10) -> bool:
        """True once a plan (of ``version`` if given) is applied and all its media are verified."""
        with self._cond:
            return self._cond.wait_for(lambda: self.core.plan_ready(version), timeout=timeout)

    def reboot(self) -> None:
        """The ``reboot`` command: a clean shutdown (``stopped``, DISCONNECT), a pause, then a new boot of
        this same object from the persisted state (session + 1). Alerts in progress are not resumed."""
        self._rebooting = True
        self.stop(clean=True)
        time.sleep(self.config.reboot_delay_s)
        if not self._rebooting:
            return  # stop() was called from outside meanwhile (the fleet is shutting down): stay off
        plays, plays_lock, reboots = self.plays, self._plays_lock, self.reboots
        self.__init__(self.config, self.playback_log)  # type: ignore[misc]  # the fresh RAM of a new boot
        self.plays, self._plays_lock, self.reboots = plays, plays_lock, reboots + 1
        self.start()

    # -------------------------------------------------------------------------- persistence

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "state.json"

    def _load_state(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self._state_path.read_text("utf-8")))
        except FileNotFoundError:
            return None  # a newly provisioned node: seq and session start at 1
        except (OSError, ValueError) as exc:
            # Counters lost: starting seq again at 1 would make the panel drop the events as duplicates.
            # Only re-provisioning (a new token, so a new event epoch at the panel) may restart them.
            raise RuntimeError(f"{self.node_id}: unreadable {self._state_path} ({exc}): the node lost its "
                               "counters and must be re-provisioned (new token, empty data dir)") from exc

    def persist(self) -> None:
        """NodeIO: state.json, written atomically (fsync, rename) before anything that depends on it is sent."""
        if self._halted:
            return
        state = self.core.snapshot()
        state.pop("verified", None)  # the media cache is the files themselves, re-hashed at boot
        _atomic_write(self._state_path, json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8"))

    def _load_media(self) -> set[str]:
        # Re-hash on boot: a file named by its sha256 is only trusted if its bytes still match.
        verified = set()
        for path in self.media_dir.iterdir():
            if path.name.startswith("."):
                with contextlib.suppress(OSError):
                    path.unlink()  # a partial download from before a power cut
                continue
            if not re.fullmatch(r"[0-9a-f]{64}", path.name):
                continue
            if _sha256_file(path) == path.name:
                verified.add(path.name)
            else:
                log.warning("%s: cached media %s is corrupt; deleting", self.node_id, path.name)
                with contextlib.suppress(OSError):
                    path.unlink()
        return verified

    def save_plan(self, raw: bytes) -> None:
        """NodeIO: the accepted plan, verified again at the next boot."""
        _atomic_write(self.data_dir / "plan.json", raw)

    # -------------------------------------------------------------------------------- events

    def event(self, event: Event, payload: bytes) -> None:
        """NodeIO: persist the state (the new seq) and the outbox entry, then send the event (QoS 1).

        An event leaves the outbox only when the broker PUBACKs it; on every (re)connect and after a
        reboot the remaining ones are sent again in seq order (at-least-once; receivers dedupe by seq).
        """
        seq = event.seq
        self.persist()
        with self._outbox_lock:
            self._outbox[seq] = payload
            if len(self._outbox) > OUTBOX_MAX:
                dropped, _ = self._outbox.popitem(last=False)
                log.error("%s: outbox full, oldest event seq %d dropped", self.node_id, dropped)
                self._rewrite_outbox()
            else:
                with open(self.data_dir / "outbox.jsonl", "ab") as fh:
                    fh.write(payload + b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        if self._connected.is_set() and self._client is not None:
            self._hand(self._client, self.topics.events(self.node_id), payload, ("event", seq))

    def _hand(self, client: mqtt.Client, topic: str, payload: bytes, tag: tuple[str, int] | None,
              retain: bool = False) -> None:
        """Give one QoS 1 message to paho and remember which outbox entry its PUBACK clears."""
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("%s: publish to %s failed: %s", self.node_id, topic, mqtt.error_string(info.rc))
            return
        with self._outbox_lock:
            if info.mid in self._early_pubacks:
                self._early_pubacks.discard(info.mid)
                self._acked(tag)
            else:
                self._mid_tag[info.mid] = tag

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        if client is not self._client:
            return  # a PUBACK for an earlier connection's client
        with self._outbox_lock:
            if mid not in self._mid_tag:
                self._early_pubacks.add(mid)  # the PUBACK beat _hand's bookkeeping
                return
            self._acked(self._mid_tag.pop(mid))

    def _acked(self, tag: tuple[str, int] | None) -> None:
        # Caller holds _outbox_lock.
        if tag is None:
            return
        kind, key = tag
        if kind == "ack":
            self._acks.pop(key, None)
        elif self._outbox.pop(key, None) is not None:
            self._rewrite_outbox()

    def _rewrite_outbox(self) -> None:
        if self._halted:
            return
        _atomic_write(self.data_dir / "outbox.jsonl", b"".join(p + b"\n" for p in self._outbox.values()))

    def _load_outbox(self) -> None:
        path = self.data_dir / "outbox.jsonl"
        if not path.exists():
            return
        entries: dict[int, bytes] = {}
        for line in path.read_bytes().splitlines():
            try:
                seq = int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s: skipping a torn outbox line", self.node_id)
                continue
            entries[seq] = line
        with self._outbox_lock:
            self._outbox = OrderedDict(sorted(entries.items()))
            self._rewrite_outbox()
        if entries:
            log.info("%s: %d unacknowledged events in the outbox will be resent", self.node_id, len(entries))

    def _drain_outbox(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.connected and time.monotonic() < deadline:
            with self._outbox_lock:
                if not self._outbox and not self._acks:
                    return
            time.sleep(0.01)

    # -------------------------------------------------------------------------------- acks

    def ack(self, payload: bytes) -> None:
        """NodeIO: publish an ack (QoS 1), kept in RAM until its PUBACK and handed over again after a reconnect
        (state.json, with the command's result, was written before this call)."""
        with self._lock:
            self._ack_counter += 1
            key = self._ack_counter
            with self._outbox_lock:
                self._acks[key] = payload
            if self._connected.is_set() and self._client is not None:
                self._hand(self._client, self.topics.ack(self.node_id), payload, ("ack", key))

    # -------------------------------------------------------------------------------- status

    def _status_payload(self, state: NodeState) -> bytes:
        with self._lock:
            rssi = self.config.rssi_dbm
            if rssi is not None:
                rssi = max(-150, min(0, rssi + random.randint(-3, 3)))
            return self.core.status(state, firmware=self.config.firmware,
                                    uptime_s=int(time.monotonic() - self._booted_mono),
                                    heartbeat_s=max(1, round(self.config.heartbeat_s)), rssi_dbm=rssi)

    def publish_status(self) -> None:
        # Not queued while offline: on_connect publishes a fresh one, and a stale queued copy sent after it
        # would overwrite the retained status with old values.
        payload = self._status_payload(NodeState.online)
        with self._lock:
            if self._connected.is_set() and self._client is not None and not self._halted:
                self._hand(self._client, self.topics.status(self.node_id), payload, None, retain=True)
                self._next_heartbeat = time.monotonic() + self.config.heartbeat_s

    def status_changed(self) -> None:
        """NodeIO: plan version or volume changed."""
        self.publish_status()

    # ---------------------------------------------------------------------------------- MQTT

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.node_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,  # _mqtt_loop reconnects with a fresh client (see module doc)
        )
        client.username_pw_set(self.node_id, self.config.token)
        will = self._status_payload(NodeState.offline)
        client.will_set(self.topics.status(self.node_id), will, qos=1, retain=True)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def _mqtt_loop(self) -> None:
        """Connect, serve one connection, back off, repeat until stopped.

        Back-off: 1 s doubling up to ``reconnect_max_delay``, ±20 % jitter (a fleet must not reconnect
        in lock-step after a broker restart); reset once a connection has lasted 30 s.
        """
        delay = 1.0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                client = self._make_client()
                self._client = client
                self._conn_lost.clear()
            began = time.monotonic()
            try:
                client.connect(self.config.broker_host, self.config.broker_port, self.config.keepalive)
            except (OSError, ValueError) as exc:
                log.debug("%s: cannot reach the broker: %s", self.node_id, exc)
            else:
                client.loop_start()
                self._serve(client)
                client.loop_stop()
            self._connected.clear()
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
            if time.monotonic() - began > 30:
                delay = 1.0
            self._stopping.wait(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, max(1.0, float(self.config.reconnect_max_delay)))

    def _serve(self, client: mqtt.Client) -> None:
        """Wait until the connection ends; end it ourselves when a stop is requested."""
        acted = False
        while True:
            wait = 1.0
            if self._connected.is_set() and not self._stopping.is_set():
                due = self._next_heartbeat - time.monotonic()
                if due <= 0:
                    self.publish_status()  # the heartbeat: retained status with clock and uptime
                    due = self.config.heartbeat_s
                wait = max(0.01, min(wait, due))
            self._mqtt_wake.wait(wait)
            self._mqtt_wake.clear()
            if self._conn_lost.is_set():
                return
            if self._stopping.is_set() and not acted:
                acted = True
                if self._stop_clean:
                    client.disconnect()
                else:
                    sock = client.socket()
                    if sock is None:
                        return
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("%s: broker refused the connection: %s", self.node_id, reason)
            self._conn_lost.set()
            self._mqtt_wake.set()
            return
        log.info("%s: connected (session present: %s)", self.node_id, flags.session_present)
        status = self._status_payload(NodeState.online)
        with self._lock:
            if client is not self._client or self._halted:
                return
            with self._outbox_lock:
                self._mid_tag.clear()
                self._early_pubacks.clear()
                events = list(self._outbox.items())
                acks = list(self._acks.items())
            self._hand(client, self.topics.status(self.node_id), status, None, retain=True)
            client.subscribe([(self.topics.plan(self.node_id), 1), (self.topics.cmd(self.node_id), 1)])
            # §6.7: the current plan even where the broker kept no retained one (a clustered broker)
            self._hand(client, self.topics.plan_request(self.node_id), self.core.plan_request(), None)
            for seq, payload in events:  # everything not yet PUBACKed, in seq order, before new events
                self._hand(client, self.topics.events(self.node_id), payload, ("event", seq))
            for key, payload in acks:
                self._hand(client, self.topics.ack(self.node_id), payload, ("ack", key))
            if events:
                log.info("%s: resent %d unacknowledged events", self.node_id, len(events))
            self._next_heartbeat = time.monotonic() + self.config.heartbeat_s
            self._connected.set()
            self._mqtt_wake.set()  # the supervisor re-reads the heartbeat time

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self._connected.is_set():
            level = logging.INFO if self._stopping.is_set() else logging.WARNING
            log.log(level, "%s: disconnected (%s)", self.node_id, reason)
        self._connected.clear()
        if client is self._client:
            self._conn_lost.set()
            self._mqtt_wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return
        parsed = self.topics.parse(msg.topic)
        try:
            with self._lock:
                if parsed == (self.node_id, "plan"):
                    self.core.on_plan(msg.payload)
                elif parsed == (self.node_id, "cmd"):
                    self.core.on_command(msg.payload, retained=bool(msg.retain))
                else:
                    log.warning("%s: message on unexpected topic %s dropped", self.node_id, msg.topic)
                self._cond.notify_all()
        except Exception:  # never let a bad message kill paho's network thread
            log.exception("%s: error handling a message on %s", self.node_id, msg.topic)
        self._sched_wake.set()

    # -------------------------------------------------------------------------------- NodeIO

    def reboot_requested(self) -> None:
        threading.Thread(target=self.reboot, name=f"{self.node_id}-reboot", daemon=True).start()

    def media_wanted(self) -> None:
        self._media_wake.set()

    def record(self, record: dict[str, Any]) -> None:
        """NodeIO: one playback outcome, appended to the log file first, then to ``plays``."""
        if self.playback_log is not None:  # first the file, so a record seen in ``plays`` is on disk too
            try:
                append_jsonl(self.playback_log, record)
            except OSError as exc:
                log.error("%s: cannot write playback log %s: %s", self.node_id, self.playback_log, exc)
        with self._plays_lock:
            self.plays.append(record)

    def plays_snapshot(self) -> list[dict[str, Any]]:
        """A copy of :attr:`plays` taken under the lock :meth:`record` appends under (safe from any thread;
        :class:`firmware_sim.fleet.Fleet` reads every node's records this way)."""
        with self._plays_lock:
            return list(self.plays)

    def started(self, playing: Playing) -> None:
        """NodeIO: sound started: probe a stream, decode a file to the sink."""
        item = playing.entry.item
        if item.stream is not None and self.config.stream_probe:
            threading.Thread(target=self._probe_stream, args=(playing,), daemon=True,
                             name=f"{self.node_id}-stream").start()
        if self.config.sink_dir is not None and item.media is not None:
            threading.Thread(target=self._decode_to_sink,
                             args=(playing.entry.item.id, item.media.sha256, playing.actual_start,
                                   playing.end - playing.actual_start),
                             daemon=True, name=f"{self.node_id}-sink").start()

    # -------------------------------------------------------------------------------- playback

    def _scheduler_loop(self) -> None:
        while not self._stopping.is_set():
            self._sched_wake.clear()
            try:
                with self._lock:
                    target = self.core.step()
                    self._cond.notify_all()
            except Exception:
                log.exception("%s: scheduler error", self.node_id)
                target = self.now() + 1.0
            remaining = target - self.now()
            if remaining > FINE_WAIT_S:
                self._sched_wake.wait(min(remaining - FINE_WAIT_S, MAX_WAIT_S))
                continue
            # Fine wait: short sleeps up to the instant (Event.wait alone oversleeps by a few ms).
            while not self._sched_wake.is_set() and not self._stopping.is_set():
                remaining = target - self.now()
                if remaining <= 0:
                    break
                time.sleep(min(remaining, 0.0005))

    def _probe_stream(self, playing: Playing) -> None:
        """Stand-in for relaying a live stream: GET its URL and read what comes (as it comes) while the item
        plays, noting when the first audio arrived (the mouth-to-loudspeaker latency of live paging) and how
        much came. Failure never stops the (simulated) relay; the reason is reported on the item's end event."""
        stream = playing.entry.item.stream
        assert stream is not None
        failed = False
        while True:
            error = None
            try:
                with requests.get(stream.url, stream=True, timeout=STREAM_PROBE_TIMEOUT) as resp:
                    if resp.status_code < 400:
                        for chunk in resp.iter_content(chunk_size=None):  # whatever arrived, at once
                            with self._lock:
                                if playing.first_audio_at is None:
                                    playing.first_audio_at = self.now()
                                    playing.stream_error = None  # it could be heard after all
                                playing.stream_bytes += len(chunk)
                                if self.core.current is not playing:  # the item ended or was cut: hang up
                                    return
                        with self._lock:  # the stream ended: an alert's live page is over (§7.6)
                            self.core.stream_ended(playing)
                        self._sched_wake.set()
                        return
                    error = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            if playing.first_audio_at is None and not failed:  # reported on the item's end event (§7.6)
                failed = True
                log.warning("%s: stream %s unreachable: %s", self.node_id, stream.url, error)
                with self._lock:
                    self.core.stream_error(playing, error)
            if (not self.config.stream_retry or self.core.current is not playing
                    or self._stopping.wait(STREAM_RETRY_S) or self.core.current is not playing):
                return

    def _decode_to_sink(self, item_id: str, sha: str, actual: float, seconds_played: float) -> None:
        """Stand-in for the amplifier: decode what is played to a WAV file with imageio's ffmpeg."""
        assert self.config.sink_dir is not None
        sink = Path(self.config.sink_dir)
        sink.mkdir(parents=True, exist_ok=True)
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", item_id)
        out = sink / f"{self.node_id}-{safe_id}-{int(actual * 1000)}.wav"
        source = self.media_dir / sha
        seconds = f"{seconds_played:.3f}"
        cmd = [get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-t", seconds,
               "-f", "wav", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("%s: decoding %s failed: %s", self.node_id, item_id, exc)
            return
        if proc.returncode != 0:
            log.error("%s: ffmpeg could not decode %s: %s", self.node_id, item_id,
                      proc.stderr.decode(errors="replace").strip()[:300])

    # ----------------------------------------------------------------------------------- media

    def _media_loop(self) -> None:
        session = requests.Session()
        try:
            while not self._stopping.is_set():
                self._media_wake.clear()
                try:
                    delay = self._media_step(session)
                except Exception:
                    log.exception("%s: media loop error", self.node_id)
                    delay = 1.0
                self._media_wake.wait(delay)
        finally:
            session.close()

    def _media_step(self, session: requests.Session) -> float:
        """Fetch what the core asks for, hand it the results; return seconds until the next retry is due."""
        with self._lock:
            todo, next_due = self.core.media_todo()
            self._cond.notify_all()
        for sha, media in todo:
            if self._stopping.is_set():
                break
            error = self._download(session, media)
            with self._lock:
                self.core.media_result(sha, error)
                self._cond.notify_all()
            self._sched_wake.set()  # a due item waiting for this file starts now
        # After attempts, ask again at once: the core knows the new retry times (and a resync may be due now).
        return 0.01 if todo else next_due

    def _download(self, session: requests.Session, media: Media) -> str | None:
        """Fetch and verify one media file into the cache. Returns None on success, else the reason."""
        target = self.media_dir / media.sha256
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(prefix=f".{media.sha256[:16]}.", dir=self.media_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                try:
                    with session.get(media.url, headers={"Authorization": f"Bearer {self.config.token}"},
                                     timeout=MEDIA_TIMEOUT, stream=True) as resp:
                        if resp.status_code != 200:
                            return f"HTTP {resp.status_code}"
                        for chunk in resp.iter_content(1 << 16):
                            size += len(chunk)
                            if size > media.bytes:
                                return f"size mismatch: more than {media.bytes} bytes"
                            digest.update(chunk)
                            fh.write(chunk)
                except requests.RequestException as exc:
                    return f"download error: {type(exc).__name__}: {exc}"
                fh.flush()
                os.fsync(fh.fileno())
            error = verify_media(media, size, digest.hexdigest())
            if error is not None:
                return error
            os.replace(tmp, target)
            tmp = ""
            log.info("%s: media %s verified (%d bytes)", self.node_id, media.sha256[:12], size)
            return None
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def b64_key_ok(value: str) -> bool:
    """True if ``value`` is a base64 Ed25519 public key (32 bytes)."""
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False
