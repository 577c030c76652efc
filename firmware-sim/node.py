"""One simulated loudspeaker node speaking protocol v1 over MQTT 3.1.1.

The simulator stands in for vendor hardware, so it imports nothing from this project except
``devices.protocol`` (the wire contract). Everything a real node must do is here: persistent
session with a last-will, signed plans and commands, verified media cache, playback from the node's
own clock, gap-free event sequence with an on-disk outbox, and autonomy when broker and panel are
unreachable.

Threads per node: an MQTT supervisor thread (connects, runs one paho client with ``loop_start`` per
connection, reconnects with back-off using a fresh client each time), a scheduler thread (playback
timing; it never waits on MQTT) and a media thread (HTTP downloads with backoff).

Why a fresh paho client per connection: paho keeps its own queue of unacknowledged messages and resends
it after CONNACK, *after* anything published from ``on_connect`` or by other threads during the
handshake, so seq order on the wire would be lost. Here the node's outbox is the only queue: events are
handed to paho only while a connection is up, and on every connect the whole unacknowledged outbox is
sent first, in seq order, before any new event.

Locks: one re-entrant ``_lock`` guards node state and hand-over to paho. Order: ``_lock`` → paho's internal
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
from firmware_sim.wire import decode_from_panel

from devices.protocol import (
    DEFAULT_HEARTBEAT_S,
    PRIORITY_RANK,
    Ack,
    AckStatus,
    Command,
    CommandName,
    Event,
    EventName,
    NodeState,
    Plan,
    PlanItem,
    PlayNowArgs,
    Priority,
    ProtocolError,
    Status,
    StopArgs,
    Topics,
    encode,
    format_ts,
    load_public_key,
    next_profile_change,
    parse_args,
    parse_ts,
    profile_step,
    quiet_overlap,
)

log = logging.getLogger("firmware_sim")

#: Scheduler sleeps with ``Event.wait`` until this many seconds before a deadline, then fine-waits.
FINE_WAIT_S = 0.03
#: Longest single wait of the scheduler, so a wall-clock step is noticed within this time.
MAX_WAIT_S = 2.0
#: Media download retry: first delay, doubling per failure up to the cap (±20 % jitter).
MEDIA_RETRY_FIRST_S = 1.0
MEDIA_RETRY_MAX_S = 60.0
#: HTTP timeouts (connect, read) for media downloads.
MEDIA_TIMEOUT = (5.0, 30.0)
DEFAULT_VOLUME = 80
#: Item outcomes (played / failed) are remembered this long after the item's start.
OUTCOME_MEMORY_S = 4 * 24 * 3600
#: Events are dropped from the on-disk outbox once the broker PUBACKs them; this caps its size.
OUTBOX_MAX = 10_000
#: play_now: download attempts for the alert's media before the command is acked ``error``.
ALERT_FETCH_ATTEMPTS = 3
#: play_now: window of repeats 2…n (they wait at most this long behind a higher-priority item).
ALERT_REPEAT_WINDOW_MS = 60_000
#: Stream items: how long the optional reachability probe may take.
STREAM_PROBE_TIMEOUT = (2.0, 2.0)
#: The result of a command accepted but never answered before a restart (docs/protocol.md §9: the answer to
#: its duplicates).
COMMAND_INTERRUPTED = "not completed: the node restarted"

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
    stream_probe: bool = True  # stream items: try a GET of the URL at start (never fails the play)
    reboot_delay_s: float = 0.2  # reboot command: time "off" between the clean stop and the new boot

    @property
    def skew_ms(self) -> int:
        """Alias of ``clock_offset_ms``: node clock = real time + skew."""
        return self.clock_offset_ms


@dataclass
class _AlertRun:
    """A ``play_now`` in progress: ``repeat`` plays of one alert, one pending or playing entry at a time."""

    args: PlayNowArgs
    command_id: str
    rank: int
    n: int = 1  # the repeat pending or playing
    acked: bool = False  # ack ``ok`` is sent when repeat 1 starts
    entry: _Entry | None = None


@dataclass
class _Entry:
    """A plan item (or one repeat of an alert) with its start time resolved on the node's clock."""

    key: str
    item: PlanItem
    start: float  # epoch seconds
    rank: int
    plan_version: int | None
    run: _AlertRun | None = None  # set for the repeats of a play_now

    @property
    def deadline(self) -> float:
        """End of the window in which the item may start (``end_at`` closes it too)."""
        deadline = self.start + self.item.max_late_ms / 1000.0
        if self.item.end_at is not None:
            deadline = min(deadline, parse_ts(self.item.end_at).timestamp())
        return deadline

    @property
    def sha(self) -> str | None:
        """The media file this entry plays; ``None`` for a stream."""
        return self.item.media.sha256 if self.item.media is not None else None

    @property
    def quiet_exempt(self) -> bool:
        """Live emergencies ignore quiet hours; drills and everything else respect them."""
        return self.item.priority == Priority.emergency and not self.item.drill


@dataclass
class _Playing:
    entry: _Entry
    actual_start: float
    end: float
    volume: int
    cut_by_end_at: bool = False
    stream_error: str | None = None


@dataclass
class _FetchState:
    attempts: int = 0
    next_attempt: float = 0.0
    delay: float = MEDIA_RETRY_FIRST_S
    last_reason: str | None = None
    #: A resync came while an attempt was in flight: if that attempt fails, retry at once, not after back-off.
    retry_now: bool = False


def _item_key(item: PlanItem) -> str:
    # An item is "the same" across plan versions only if id, start (as an instant, to the millisecond:
    # "…:00Z" equals "…:00.000Z") and media (or stream URL) are unchanged.
    if item.media is not None:
        source = item.media.sha256
    else:
        assert item.stream is not None
        source = "stream-" + hashlib.sha256(item.stream.url.encode()).hexdigest()[:32]
    return f"{item.id}|{format_ts(parse_ts(item.start))}|{source}"


def _ts(epoch: float) -> str:
    return format_ts(datetime.fromtimestamp(epoch, UTC))


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


def _short(reason: object, limit: int = 500) -> str:
    text = str(reason)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    """

    def __init__(self, config: NodeConfig, playback_log: Path | None = None) -> None:
        self.config = config
        self.node_id = config.node_id
        self.playback_log = Path(playback_log) if playback_log else None
        self.topics = Topics(config.topic_prefix)
        self._public_key = load_public_key(config.panel_public_key)
        self.data_dir = Path(config.data_dir)
        self.media_dir = self.data_dir / "media"
        self.plays: list[dict[str, Any]] = []
        self._plays_lock = threading.Lock()

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._plan: Plan | None = None
        self._entries: list[_Entry] = []
        self._handled: set[str] = set()
        self._ready_reported: set[str] = set()
        self._current: _Playing | None = None
        self._verified: set[str] = set()
        self._fetch: dict[str, _FetchState] = {}
        self._seen_commands: dict[str, float] = {}  # id → expires_at (epoch s) of every command accepted
        # id → the first ack of an accepted command (its bytes, as sent): a duplicate is answered with it (§9).
        self._command_results: dict[str, str] = {}
        self._dup_waiting: dict[str, int] = {}  # duplicates that came before their command's result (RAM only)
        self._seq = 0
        self._boot = 0
        self.volume = DEFAULT_VOLUME
        self._interrupted: dict[str, Any] | None = None
        self._due_seen: set[str] = set()  # items this run has seen due (start <= now <= deadline)
        self._alert: _AlertRun | None = None  # a play_now in progress (not persisted: one-shot)
        # The volume-profile step last applied: (its start, epoch s; its volume). set_volume overrides the
        # base volume until a step with another start begins.
        self._profile_mark: tuple[float, int] | None = None
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
        self._halted = False  # after stop: nothing more is emitted or written
        self._sched_wake = threading.Event()
        self._media_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._rebooting = False  # set by reboot(); a stop() from outside clears it (stay off)

    # ------------------------------------------------------------------------------ properties

    @property
    def plan_version(self) -> int | None:
        plan = self._plan
        return plan.version if plan else None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def session(self) -> int:
        """Boot counter of this run (the ``session`` of status and last-will)."""
        return self._boot

    @property
    def seq(self) -> int:
        """Sequence number of the last event produced."""
        return self._seq

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
            self._load_state()
            self._boot += 1
            self._save_state()
            self._load_media()
            self._load_plan()
            self._load_outbox()
            if self._interrupted:
                self._report_interrupted(self._interrupted)
                self._interrupted = None
                self._save_state()
        log.info("%s: boot %d, plan v%s, %d media cached", self.node_id, self._boot, self.plan_version,
                 len(self._verified))
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
            self._halted = True  # a power cut: the node says nothing more
        with self._lock:
            self._stop_clean = clean
            self._stopping.set()
            threads = list(self._threads)
        self._sched_wake.set()
        self._media_wake.set()
        if not threads:  # still booting: start() sees _stopping and spawns nothing
            self._halted = True
            return
        mqtt_thread, *workers = threads
        for thread in workers:
            thread.join(timeout=3)
        if clean:
            with self._lock:
                if self._current is not None:
                    self._end_current("failed", "shutdown")
                self._save_state()
            self._drain_outbox(timeout=2.0)
            with self._lock:
                self._halted = True
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

        def ready() -> bool:
            plan = self._plan
            if plan is None or (version is not None and plan.version != version):
                return False
            return all(item.media is None or item.media.sha256 in self._verified for item in plan.items)

        with self._cond:
            return self._cond.wait_for(ready, timeout=timeout)

    # -------------------------------------------------------------------------- persistence

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "state.json"

    def _load_state(self) -> None:
        try:
            state = json.loads(self._state_path.read_text("utf-8"))
        except FileNotFoundError:
            return  # a newly provisioned node: seq and session start at 1
        except (OSError, ValueError) as exc:
            # Counters lost: starting seq again at 1 would make the panel drop the events as duplicates.
            # Only re-provisioning (a new token, so a new event epoch at the panel) may restart them.
            raise RuntimeError(f"{self.node_id}: unreadable {self._state_path} ({exc}): the node lost its "
                               "counters and must be re-provisioned (new token, empty data dir)") from exc
        self._boot = int(state.get("boot", 0))
        self._seq = int(state.get("seq", 0))
        self.volume = int(state.get("volume", DEFAULT_VOLUME))
        self._seen_commands = {str(k): float(v) for k, v in state.get("seen_commands", {}).items()}
        self._command_results = {str(k): str(v) for k, v in state.get("command_results", {}).items()
                                 if k in self._seen_commands}
        for cid in self._seen_commands.keys() - self._command_results.keys():
            # Accepted but never answered (the power went, or a reboot cut a play_now short before it
            # sounded): that is its result now, the answer to any duplicate of it (§9).
            ack = Ack(node_id=self.node_id, command_id=cid, status=AckStatus.error, at=_ts(self.now()),
                      error=COMMAND_INTERRUPTED)
            self._command_results[cid] = encode(ack).decode("utf-8")
        self._handled = set(state.get("handled", []))
        self._ready_reported = set(state.get("ready_reported", []))
        self._interrupted = state.get("playing")
        mark = state.get("profile_mark")
        self._profile_mark = (float(mark[0]), int(mark[1])) if mark else None

    def _save_state(self) -> None:
        if self._halted:
            return
        playing = None
        if self._current is not None:
            playing = self._record(self._current.entry, "interrupted", self._current.actual_start)
        state = {
            "node_id": self.node_id,
            "boot": self._boot,
            "seq": self._seq,
            "volume": self.volume,
            "seen_commands": self._seen_commands,
            "command_results": self._command_results,
            "handled": sorted(self._handled),
            "ready_reported": sorted(self._ready_reported),
            "playing": playing,
            "profile_mark": list(self._profile_mark) if self._profile_mark else None,
        }
        _atomic_write(self._state_path, json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8"))

    def _load_media(self) -> None:
        # Re-hash on boot: a file named by its sha256 is only trusted if its bytes still match.
        for path in self.media_dir.iterdir():
            if path.name.startswith("."):
                with contextlib.suppress(OSError):
                    path.unlink()  # a partial download from before a power cut
                continue
            if not re.fullmatch(r"[0-9a-f]{64}", path.name):
                continue
            if _sha256_file(path) == path.name:
                self._verified.add(path.name)
            else:
                log.warning("%s: cached media %s is corrupt; deleting", self.node_id, path.name)
                with contextlib.suppress(OSError):
                    path.unlink()

    def _load_plan(self) -> None:
        path = self.data_dir / "plan.json"
        if not path.exists():
            return
        try:
            plan = decode_from_panel(Plan, path.read_bytes(), self._public_key, node_id=self.node_id)
        except (ProtocolError, OSError) as exc:
            log.error("%s: stored plan.json refused (%s); waiting for the panel", self.node_id, exc)
            return
        self._set_plan(plan)

    # -------------------------------------------------------------------------------- events

    def _emit(self, name: EventName, **fields: Any) -> None:
        """Produce one event: next seq, persisted, appended to the outbox, sent if connected (QoS 1).

        An event leaves the outbox only when the broker PUBACKs it; on every (re)connect and after a
        reboot the remaining ones are sent again in seq order (at-least-once; receivers dedupe by seq).
        """
        with self._lock:
            if self._halted:
                log.debug("%s: halted, event %s dropped", self.node_id, name)
                return
            self._seq += 1
            seq = self._seq
            if "reason" in fields and fields["reason"] is not None:
                fields["reason"] = _short(fields["reason"])
            event = Event(node_id=self.node_id, seq=seq, at=_ts(self.now()), event=name, **fields)
            payload = encode(event)
            self._save_state()
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
            log.info("%s: event #%d %s %s", self.node_id, seq, name.value,
                     {k: v for k, v in fields.items() if v is not None})
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

    # -------------------------------------------------------------------------------- status

    def _status_payload(self, state: NodeState) -> bytes:
        with self._lock:
            playing = self._current.entry.item.id if self._current else None
            rssi = self.config.rssi_dbm
            if rssi is not None:
                rssi = max(-150, min(0, rssi + random.randint(-3, 3)))
            now = _ts(self.now())
            return encode(
                Status(
                    node_id=self.node_id,
                    state=state,
                    session=self._boot,
                    at=now,
                    firmware=self.config.firmware,
                    plan_version=self.plan_version,
                    volume=self.volume,
                    playing=playing,
                    clock=now,
                    rssi_dbm=rssi,
                    uptime_s=int(time.monotonic() - self._booted_mono),
                    heartbeat_s=max(1, round(self.config.heartbeat_s)),
                )
            )

    def publish_status(self) -> None:
        # Not queued while offline: on_connect publishes a fresh one, and a stale queued copy sent after it
        # would overwrite the retained status with old values.
        payload = self._status_payload(NodeState.online)
        with self._lock:
            if self._connected.is_set() and self._client is not None and not self._halted:
                self._hand(self._client, self.topics.status(self.node_id), payload, None, retain=True)
                self._next_heartbeat = time.monotonic() + self.config.heartbeat_s

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
        will = encode(Status(node_id=self.node_id, state=NodeState.offline, session=self._boot))
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
            if parsed == (self.node_id, "plan"):
                self._handle_plan(msg.payload)
            elif parsed == (self.node_id, "cmd"):
                self._handle_command(msg.payload, retained=bool(msg.retain))
            else:
                log.warning("%s: message on unexpected topic %s dropped", self.node_id, msg.topic)
        except Exception:  # never let a bad message kill paho's network thread
            log.exception("%s: error handling a message on %s", self.node_id, msg.topic)

    # ---------------------------------------------------------------------------------- plans

    def _handle_plan(self, raw: bytes) -> None:
        if not raw:
            # An empty retained publish only clears the broker's copy; the node keeps its plan.
            log.warning("%s: empty payload on plan topic ignored (retained plan cleared)", self.node_id)
            return
        try:
            plan = decode_from_panel(Plan, raw, self._public_key, node_id=self.node_id)
        except Exception as exc:  # ProtocolError, or anything unforeseen: refused either way
            self._reject_plan(str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            held = self.plan_version
            if held is not None and plan.version < held:
                self._reject_plan(f"replayed or stale plan: version {plan.version} < held {held}")
                return
            if held is not None and plan.version == held:
                log.debug("%s: plan v%d already held", self.node_id, held)
                return
            _atomic_write(self.data_dir / "plan.json", bytes(raw))
            self._set_plan(plan)
            self._emit(EventName.plan_applied, plan_version=plan.version)
            self._save_state()
        log.info("%s: plan v%d applied (%d items)", self.node_id, plan.version, len(plan.items))
        self.publish_status()
        self._sched_wake.set()
        self._media_wake.set()

    def _prune_outcomes(self) -> None:
        """Forget item outcomes older than any plan can reach back (an item never starts twice, even if a
        later plan re-adds it, so outcomes are kept across plan versions and reboots, not per plan)."""
        horizon = self.now() - OUTCOME_MEMORY_S
        current = {e.key for e in self._all_entries()}

        def keep(key: str) -> bool:
            if key in current:
                return True
            try:
                return parse_ts(key.rsplit("|", 2)[1]).timestamp() >= horizon
            except (ProtocolError, IndexError, ValueError):
                return False

        self._handled = {k for k in self._handled if keep(k)}
        self._ready_reported = {k for k in self._ready_reported if keep(k)}

    def _reject_plan(self, reason: str) -> None:
        log.warning("%s: plan refused: %s", self.node_id, reason)
        self._emit(EventName.plan_rejected, plan_version=self.plan_version, reason=reason)

    def _set_plan(self, plan: Plan) -> None:
        with self._lock:
            entries = []
            for item in plan.items:
                entries.append(
                    _Entry(
                        key=_item_key(item),
                        item=item,
                        start=parse_ts(item.start).timestamp(),
                        rank=PRIORITY_RANK[item.priority],
                        plan_version=plan.version,
                    )
                )
            entries.sort(key=lambda e: (e.start, -e.rank))
            keys = {e.key for e in entries}
            self._plan = plan
            self._entries = entries
            self._due_seen &= keys | {e.key for e in self._alert_entries()}
            self._prune_outcomes()
            cur = self._current
            if cur is not None and cur.entry.run is None:  # alerts are not plan items: a plan never cuts them
                if cur.entry.key not in keys:
                    self._end_current("failed", "removed")
                else:
                    new = next(e for e in entries if e.key == cur.entry.key)
                    cur.entry = new
                    self._apply_end_at(cur)
            # Fresh retry budget for media the new plan still needs.
            needed = {e.sha for e in self._all_entries()}
            self._fetch = {sha: st for sha, st in self._fetch.items() if sha in needed}
            self._apply_profile(self.now())
            self._cond.notify_all()

    def _alert_entries(self) -> list[_Entry]:
        run = self._alert
        return [run.entry] if run is not None and run.entry is not None else []

    def _all_entries(self) -> list[_Entry]:
        """Plan entries and the pending/playing repeat of a play_now. Caller holds ``_lock``."""
        return [*self._entries, *self._alert_entries()]

    def _apply_profile(self, now: float) -> None:
        """Follow the plan's volume profile: when a new step begins, it becomes the base volume (a
        ``set_volume`` in between overrides it until the next step). Caller holds ``_lock``."""
        plan = self._plan
        if plan is None or not plan.volume_profile:
            return
        step = profile_step(plan.volume_profile, plan.tz, datetime.fromtimestamp(now, UTC))
        if step is None:
            return
        mark = (step[0].timestamp(), step[1])
        if mark == self._profile_mark:
            return
        self._profile_mark = mark
        changed = self.volume != step[1]
        self.volume = step[1]
        self._save_state()
        log.info("%s: volume profile step %s → volume %d", self.node_id, _ts(mark[0]), step[1])
        if changed:
            self.publish_status()

    def _next_profile_change(self, now: float) -> float | None:
        plan = self._plan
        if plan is None or not plan.volume_profile:
            return None
        nxt = next_profile_change(plan.volume_profile, plan.tz, datetime.fromtimestamp(now, UTC))
        return nxt.timestamp() if nxt else None

    # -------------------------------------------------------------------------------- commands

    def _handle_command(self, raw: bytes, *, retained: bool) -> None:
        if not raw:
            # Someone cleared a wrongly retained command: nothing to execute, nothing to report.
            log.warning("%s: empty payload on cmd topic ignored", self.node_id)
            return
        try:
            cmd = decode_from_panel(Command, raw, self._public_key, node_id=self.node_id)
        except Exception as exc:  # ProtocolError, or anything unforeseen: refused either way
            reason = str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}"
            log.warning("%s: command refused: %s", self.node_id, reason)
            self._emit(EventName.command_rejected, reason=reason)
            return
        if retained:
            # Commands are never retained; a retained one would be replayed on every reconnect.
            log.warning("%s: retained command %s refused", self.node_id, cmd.id)
            self._emit(EventName.command_rejected, reason=f"retained command {cmd.id}")
            return
        now = self.now()
        with self._lock:
            self._seen_commands = {k: v for k, v in self._seen_commands.items() if v >= now}
            self._command_results = {k: v for k, v in self._command_results.items() if k in self._seen_commands}
            if cmd.id in self._seen_commands:
                # A duplicate (a QoS 1 redelivery, a replay): never executed again, answered with the first
                # result — or, if that is not known yet (a play_now waiting to sound), as soon as it is.
                first = self._command_results.get(cmd.id)
                if first is None:
                    self._dup_waiting[cmd.id] = self._dup_waiting.get(cmd.id, 0) + 1
                    log.info("%s: duplicate command %s: answered once its result is known", self.node_id, cmd.id)
                else:
                    log.info("%s: duplicate command %s answered with its first result", self.node_id, cmd.id)
                    self._send_ack(first.encode("utf-8"))
                return
            try:
                expires = parse_ts(cmd.expires_at).timestamp()
            except ProtocolError as exc:
                self._ack(cmd, AckStatus.rejected, error=str(exc))
                return
            if expires < now:
                self._ack(cmd, AckStatus.rejected, error=f"expired at {cmd.expires_at}")
                return
            self._seen_commands[cmd.id] = expires
            self._save_state()
            self._execute(cmd)

    def _execute(self, cmd: Command) -> None:
        log.info("%s: command %s (%s)", self.node_id, cmd.name, cmd.id)
        if cmd.name == CommandName.ping:
            self._ack(cmd, AckStatus.ok, data={"time": _ts(self.now())})
        elif cmd.name == CommandName.resync:
            self.publish_status()
            with self._lock:
                for st in self._fetch.values():
                    st.next_attempt = 0.0  # retry missing media now
                    st.retry_now = True  # also if an attempt is in flight and about to fail
            self._media_wake.set()
            version = self.plan_version
            self._ack(cmd, AckStatus.ok, data={} if version is None else {"plan_version": version})
        elif cmd.name == CommandName.stop:
            self._stop_command(cmd)
        elif cmd.name == CommandName.set_volume:
            volume = cmd.args.get("volume")
            if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
                self._ack(cmd, AckStatus.error, error="args.volume must be an integer 0..100")
                return
            with self._lock:
                self.volume = volume
                self._save_state()
            self.publish_status()
            self._ack(cmd, AckStatus.ok, data={"volume": volume})
        elif cmd.name == CommandName.play_now:
            self._play_now(cmd)
        elif cmd.name == CommandName.reboot:
            self._ack(cmd, AckStatus.ok, data={"session": self._boot + 1})
            threading.Thread(target=self.reboot, name=f"{self.node_id}-reboot", daemon=True).start()
        else:
            self._ack(cmd, AckStatus.rejected, error=f"unknown command {cmd.name!r}")

    def _stop_command(self, cmd: Command) -> None:
        """``stop``: without ``alert_id`` cut whatever plays; with it, that alert only (its remaining repeats
        are forgotten). Plan items end ``playback_failed`` ``stopped`` (as in v1), alerts ``playback_stopped``
        ``command``."""
        try:
            args = parse_args(cmd.name, cmd.args)
        except ProtocolError as exc:
            self._ack(cmd, AckStatus.error, error=str(exc))
            return
        assert isinstance(args, StopArgs)
        with self._lock:
            cur = self._current
            stopped = None
            run = self._alert
            if args.alert_id is not None:
                if run is not None and run.args.alert_id == args.alert_id:
                    if cur is not None and cur.entry.run is run:
                        stopped = cur.entry.item.id
                        self._end_current("stopped", "command", command_id=cmd.id)
                    self._drop_alert(run, "stopped by command " + cmd.id)
            elif cur is not None:
                stopped = cur.entry.item.id
                if cur.entry.run is not None:
                    self._end_current("stopped", "command", command_id=cmd.id)
                    self._drop_alert(cur.entry.run, "stopped by command " + cmd.id)
                else:
                    self._end_current("failed", "stopped", command_id=cmd.id)
            self._save_state()
        self._sched_wake.set()
        self._ack(cmd, AckStatus.ok, data={} if stopped is None else {"stopped": stopped})

    def _play_now(self, cmd: Command) -> None:
        """``play_now``: validate, refuse in quiet hours unless a live emergency, then hand the alert to the
        scheduler (which pre-empts, plays ``repeat`` times and acks ``ok`` when repeat 1 starts); the media
        thread fetches the file if it is not cached (ack ``error`` after :data:`ALERT_FETCH_ATTEMPTS`)."""
        try:
            args = parse_args(cmd.name, cmd.args)
        except ProtocolError as exc:
            self._ack(cmd, AckStatus.error, error=str(exc))
            return
        assert isinstance(args, PlayNowArgs)
        rank = PRIORITY_RANK[args.priority]
        with self._lock:
            now = self.now()
            old = self._alert
            if old is not None and old.rank > rank:
                self._ack(cmd, AckStatus.error,
                          error=f"alert {old.args.alert_id} of higher priority {old.args.priority.value} is playing")
                return
            run = _AlertRun(args=args, command_id=cmd.id, rank=rank)
            expires = parse_ts(cmd.expires_at).timestamp()
            entry = self._alert_entry(run, 1, now, max(0, round((expires - now) * 1000)))
            plan = self._plan
            total_ms = args.duration_ms * args.repeat + args.gap_ms * (args.repeat - 1)
            if (plan is not None and not entry.quiet_exempt
                    and quiet_overlap(plan.quiet_hours, plan.tz, datetime.fromtimestamp(now, UTC),
                                      datetime.fromtimestamp(now + total_ms / 1000, UTC))):
                self._handled.add(entry.key)
                self._fail_unplayed(entry, "quiet_hours")
                self._ack(cmd, AckStatus.error, error=f"quiet hours {plan.quiet_hours.start}-"  # type: ignore[union-attr]
                                                      f"{plan.quiet_hours.end} {plan.tz}")  # type: ignore[union-attr]
                return
            if old is not None:  # a new alert of equal or higher priority replaces the one in progress
                cur = self._current
                if cur is not None and cur.entry.run is old:
                    self._end_current("stopped", "preempted", command_id=cmd.id)
                self._drop_alert(old, f"superseded by alert {args.alert_id}")
            run.entry = entry
            self._alert = run
            if entry.sha is not None and entry.sha in self._fetch:
                self._fetch[entry.sha].next_attempt = 0.0
            log.info("%s: alert %s (%s%s, %d×) accepted", self.node_id, args.alert_id, args.priority.value,
                     ", drill" if args.drill else "", args.repeat)
        self._media_wake.set()
        self._sched_wake.set()

    def _alert_entry(self, run: _AlertRun, n: int, start: float, window_ms: int) -> _Entry:
        args = run.args
        item = PlanItem(id=args.item_id(n), start=_ts(start), media=args.media, stream=args.stream,
                        priority=args.priority, title=args.title, max_late_ms=window_ms, drill=args.drill,
                        volume=args.volume)
        return _Entry(key=_item_key(item), item=item, start=parse_ts(item.start).timestamp(), rank=run.rank,
                      plan_version=None, run=run)

    def _drop_alert(self, run: _AlertRun, why: str) -> None:
        """Forget an alert's remaining repeats; a play_now not started yet is acked ``error``."""
        if self._alert is run:
            self._alert = None
        if not run.acked:
            run.acked = True
            self._ack_id(run.command_id, AckStatus.error, error=f"not started: {why}")
        self._sched_wake.set()

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

    def _ack(self, cmd: Command, status: AckStatus, *, error: str | None = None,
             data: dict[str, Any] | None = None) -> None:
        self._ack_id(cmd.id, status, error=error, data=data)

    def _ack_id(self, command_id: str, status: AckStatus, *, error: str | None = None,
                data: dict[str, Any] | None = None) -> None:
        if status != AckStatus.ok:
            log.warning("%s: command %s %s: %s", self.node_id, command_id, status.value, error)
        ack = Ack(node_id=self.node_id, command_id=command_id, status=status, at=_ts(self.now()),
                  error=_short(error) if error else None, data=data or {})
        payload = encode(ack)
        with self._lock:
            if self._halted:
                return
            copies = 1
            if command_id in self._seen_commands and command_id not in self._command_results:
                # The first answer to an accepted command is its result: persisted before it is sent, and
                # sent again, byte for byte, for every duplicate of the command (§9).
                self._command_results[command_id] = payload.decode("utf-8")
                copies += self._dup_waiting.pop(command_id, 0)
                self._save_state()
            for _ in range(copies):
                self._send_ack(payload)

    def _send_ack(self, payload: bytes) -> None:
        """Publish an ack (QoS 1), kept in RAM until its PUBACK and handed over again after a reconnect."""
        with self._lock:
            if self._halted:
                return
            self._ack_counter += 1
            key = self._ack_counter
            with self._outbox_lock:
                self._acks[key] = payload
            if self._connected.is_set() and self._client is not None:
                self._hand(self._client, self.topics.ack(self.node_id), payload, ("ack", key))

    # -------------------------------------------------------------------------------- playback

    def _scheduler_loop(self) -> None:
        while not self._stopping.is_set():
            self._sched_wake.clear()
            try:
                target = self._schedule_step()
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

    def _schedule_step(self) -> float:
        """Do everything due now; return the node-clock time of the next thing to do."""
        with self._lock:
            now = self.now()
            self._apply_profile(now)
            cur = self._current
            if cur is not None and now >= cur.end:
                if cur.cut_by_end_at:
                    self._end_current("stopped", "end_at")
                else:
                    self._end_current("finished", cur.stream_error)
            while True:
                now = self.now()
                run = self._alert
                due = [e for e in self._all_entries() if e.key not in self._handled and e.start <= now]
                for entry in due:
                    if now > entry.deadline:
                        # Window closed. Media never verified while the item was due here → media_unavailable;
                        # otherwise (busy, or the node was off or did not hold the item then) → stale.
                        self._handled.add(entry.key)
                        missing = (entry.sha is not None and entry.sha not in self._verified
                                   and entry.key in self._due_seen)
                        self._due_seen.discard(entry.key)
                        self._fail_unplayed(entry, "media_unavailable" if missing else "stale")
                        if entry.run is not None:
                            self._drop_alert(entry.run, "media_unavailable" if missing else "stale")
                    else:
                        self._due_seen.add(entry.key)
                # Only items whose media are verified can start; the others stay due (the media thread keeps
                # fetching until the deadline and wakes us when a file is verified: it then plays late).
                # While an alert is in progress (playing, between repeats or fetching), plan items of its
                # priority or lower wait; higher ones may cut it.
                ready = [e for e in due if e.key not in self._handled
                         and (e.sha is None or e.sha in self._verified)
                         and (e.run is not None or run is None or e.rank > run.rank)]
                if not ready:
                    break
                best = max(ready, key=lambda e: (e.rank, e.run is not None, -e.start))
                cur = self._current
                if cur is not None:
                    # A play_now cuts what plays at its priority or lower; a plan item only a lower one.
                    if best.rank < cur.entry.rank or (best.rank == cur.entry.rank and best.run is None):
                        break  # waits for the current item to finish
                    if best.run is not None or cur.entry.run is not None:
                        cut_run = cur.entry.run
                        self._end_current("stopped", "preempted",
                                          command_id=best.run.command_id if best.run else None)
                        if cut_run is not None and cut_run is not best.run:
                            self._drop_alert(cut_run, f"preempted by {best.item.id}")
                    else:
                        self._end_current("failed", "preempted")
                if not best.quiet_exempt and self._in_quiet_hours(best, now):
                    self._handled.add(best.key)
                    self._due_seen.discard(best.key)
                    self._fail_unplayed(best, "quiet_hours")
                    if best.run is not None:
                        self._drop_alert(best.run, "quiet_hours")
                    continue
                self._begin(best, self.now())
            # (state.json is saved by each _emit, after handled/current were updated)
            # Next wake-up: end of the current item, next start, the deadline of a waiting item, a volume step.
            now = self.now()
            candidates = [now + MAX_WAIT_S]
            if self._current is not None:
                candidates.append(self._current.end)
            for entry in self._all_entries():
                if entry.key in self._handled:
                    continue
                candidates.append(entry.start if entry.start > now else entry.deadline + 0.001)
            step = self._next_profile_change(now)
            if step is not None:
                candidates.append(step)
            return min(candidates)

    def _in_quiet_hours(self, entry: _Entry, start: float) -> bool:
        """Would any part of ``entry`` sound inside the plan's quiet hours if it started at ``start``?"""
        plan = self._plan
        if plan is None or plan.quiet_hours is None:
            return False
        end = start + entry.item.duration_ms / 1000.0
        if entry.item.end_at is not None:
            end = min(end, parse_ts(entry.item.end_at).timestamp())
        return quiet_overlap(plan.quiet_hours, plan.tz, datetime.fromtimestamp(start, UTC),
                             datetime.fromtimestamp(end, UTC))

    def _apply_end_at(self, playing: _Playing) -> None:
        item = playing.entry.item
        natural = playing.actual_start + item.duration_ms / 1000.0
        end_at = parse_ts(item.end_at).timestamp() if item.end_at is not None else None
        playing.cut_by_end_at = end_at is not None and end_at < natural
        playing.end = end_at if playing.cut_by_end_at and end_at is not None else natural

    def _fields(self, entry: _Entry, actual: float | None = None) -> dict[str, Any]:
        """The event fields that identify an item (and its start, if it started)."""
        item = entry.item
        run = entry.run
        fields: dict[str, Any] = dict(
            plan_version=entry.plan_version,
            item_id=item.id,
            schedule_id=item.schedule_id,
            sha256=entry.sha,
            scheduled_start=item.start,
            priority=item.priority,
            drill=item.drill,
            command_id=run.command_id if run else None,
            alert_id=run.args.alert_id if run else None,
        )
        if actual is not None:
            fields.update(actual_start=_ts(actual), offset_ms=round((actual - entry.start) * 1000))
        return fields

    def _begin(self, entry: _Entry, actual: float) -> None:
        item = entry.item
        self._report_ready()  # media_ready always precedes playback_started
        self._handled.add(entry.key)
        self._due_seen.discard(entry.key)
        volume = item.volume if item.volume is not None else self.volume
        playing = _Playing(entry=entry, actual_start=actual, end=actual, volume=volume)
        self._apply_end_at(playing)
        self._current = playing
        fields = self._fields(entry, actual)
        self._emit(EventName.playback_started, **fields)
        log.info("%s: playing %s (%s, offset %+d ms, %d ms, volume %d)", self.node_id, item.id,
                 item.priority.value, fields["offset_ms"], round((playing.end - actual) * 1000), volume)
        run = entry.run
        if run is not None and not run.acked:
            run.acked = True
            self._ack_id(run.command_id, AckStatus.ok, data={"item_id": item.id})
        if item.stream is not None and self.config.stream_probe:
            threading.Thread(target=self._probe_stream, args=(playing,), daemon=True,
                             name=f"{self.node_id}-stream").start()
        if self.config.sink_dir is not None and item.media is not None:
            threading.Thread(target=self._decode_to_sink, args=(entry, actual, playing.end - actual),
                             daemon=True, name=f"{self.node_id}-sink").start()

    def _probe_stream(self, playing: _Playing) -> None:
        """Stand-in for opening a live stream: one GET of its URL. Failure never stops the (simulated) relay;
        the reason is reported on the item's end event."""
        stream = playing.entry.item.stream
        assert stream is not None
        try:
            with requests.get(stream.url, stream=True, timeout=STREAM_PROBE_TIMEOUT) as resp:
                error = None if resp.status_code < 400 else f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log.warning("%s: stream %s unreachable: %s", self.node_id, stream.url, error)
            with self._lock:
                playing.stream_error = _short(f"stream unreachable: {error}")

    def _end_current(self, result: str, reason: str | None, *, command_id: str | None = None) -> None:
        """End the current playback: ``"finished"`` (``reason`` optional, e.g. an unreachable stream),
        ``"stopped"`` (``playback_stopped``: end_at, cut by an alert, stop of an alert) or ``"failed"``
        (``playback_failed``: preempted/stopped/removed/shutdown, as in v1)."""
        cur = self._current
        if cur is None:
            return
        self._current = None
        entry = cur.entry
        fields = self._fields(entry, cur.actual_start)
        if command_id is not None and entry.run is None:
            fields["command_id"] = command_id  # the command that cut a plan item
        if result == "finished":
            self._emit(EventName.playback_finished, reason=reason, **fields)
        elif result == "stopped":
            self._emit(EventName.playback_stopped, reason=reason, **fields)
        else:
            self._emit(EventName.playback_failed, reason=reason, **fields)
        record = self._record(entry, result if result == "finished" else str(reason), cur.actual_start)
        record.update(volume=cur.volume, played_ms=round((min(self.now(), cur.end) - cur.actual_start) * 1000),
                      event=("playback_finished" if result == "finished" else f"playback_{result}"))
        self._record_play(record)
        run = entry.run
        if run is not None and run is self._alert and result == "finished":
            if run.n < run.args.repeat:  # the next repeat, after the gap
                run.n += 1
                run.entry = self._alert_entry(run, run.n, cur.end + run.args.gap_ms / 1000.0,
                                              ALERT_REPEAT_WINDOW_MS)
            else:
                self._alert = None
        self._sched_wake.set()

    def _fail_unplayed(self, entry: _Entry, reason: str) -> None:
        item = entry.item
        log.warning("%s: item %s not played: %s", self.node_id, item.id, reason)
        self._emit(EventName.playback_failed, reason=reason, **self._fields(entry))
        self._record_play(self._record(entry, reason, None))

    def _report_interrupted(self, record: dict[str, Any]) -> None:
        """At boot: the previous run lost power while playing this item."""
        record = {**record, "result": "interrupted"}
        self._emit(
            EventName.playback_failed,
            plan_version=record.get("plan_version"),
            item_id=record.get("item_id"),
            schedule_id=record.get("schedule_id"),
            sha256=record.get("sha256"),
            scheduled_start=record.get("scheduled_start"),
            actual_start=record.get("actual_start"),
            offset_ms=record.get("offset_ms"),
            priority=record.get("priority"),
            drill=record.get("drill"),
            command_id=record.get("command_id"),
            alert_id=record.get("alert_id"),
            reason="interrupted",
        )
        self._record_play(record)

    def _record(self, entry: _Entry, result: str, actual: float | None) -> dict[str, Any]:
        item = entry.item
        return {
            "node_id": self.node_id,
            "item_id": item.id,
            "schedule_id": item.schedule_id,
            "plan_version": entry.plan_version,
            "priority": item.priority.value,
            "sha256": entry.sha,
            "stream_url": item.stream.url if item.stream is not None else None,
            "scheduled_start": item.start,
            "actual_start": _ts(actual) if actual is not None else None,
            "offset_ms": round((actual - entry.start) * 1000) if actual is not None else None,
            "duration_ms": item.duration_ms,
            "drill": item.drill,
            "alert_id": entry.run.args.alert_id if entry.run else None,
            "command_id": entry.run.command_id if entry.run else None,
            "result": result,
        }

    def _record_play(self, record: dict[str, Any]) -> None:
        if self._halted:
            return
        if self.playback_log is not None:  # first the file, so a record seen in ``plays`` is on disk too
            try:
                append_jsonl(self.playback_log, record)
            except OSError as exc:
                log.error("%s: cannot write playback log %s: %s", self.node_id, self.playback_log, exc)
        with self._plays_lock:
            self.plays.append(record)

    def _decode_to_sink(self, entry: _Entry, actual: float, seconds_played: float) -> None:
        """Stand-in for the amplifier: decode what is played to a WAV file with imageio's ffmpeg."""
        from imageio_ffmpeg import get_ffmpeg_exe

        assert self.config.sink_dir is not None
        sink = Path(self.config.sink_dir)
        sink.mkdir(parents=True, exist_ok=True)
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", entry.item.id)
        out = sink / f"{self.node_id}-{safe_id}-{int(actual * 1000)}.wav"
        source = self.media_dir / str(entry.sha)
        seconds = f"{seconds_played:.3f}"
        cmd = [get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-t", seconds,
               "-f", "wav", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("%s: decoding %s failed: %s", self.node_id, entry.item.id, exc)
            return
        if proc.returncode != 0:
            log.error("%s: ffmpeg could not decode %s: %s", self.node_id, entry.item.id,
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
        """Fetch what is due, report readiness; return seconds until the next retry is due."""
        with self._lock:
            now = self.now()
            # sha → (first item needing it, retry deadline). Retry until the last window closes, not only until
            # `start`: an emergency planned "now" is due before its file can be here, and plays late.
            needed: dict[str, tuple[_Entry, float]] = {}
            for entry in [*self._alert_entries(), *self._entries]:  # an alert first: failures are its
                sha = entry.sha
                if sha is None or sha in self._verified or entry.key in self._handled:
                    continue
                first, deadline = needed.get(sha, (entry, entry.deadline))
                needed[sha] = (first, max(deadline, entry.deadline))
            todo = []
            next_due = MAX_WAIT_S * 5
            for sha, (entry, deadline) in needed.items():
                if now > deadline:
                    continue  # too late: the scheduler reports media_unavailable
                st = self._fetch.setdefault(sha, _FetchState())
                if st.next_attempt <= now:
                    st.retry_now = False  # this attempt is the retry asked for
                    todo.append((sha, entry, st))
                else:
                    next_due = min(next_due, st.next_attempt - now)
        for sha, entry, st in todo:
            if self._stopping.is_set():
                break
            error = self._download(session, entry.item)
            with self._lock:
                if error is None:
                    self._verified.add(sha)
                    self._fetch.pop(sha, None)
                    self._report_ready()
                    self._sched_wake.set()  # a due item waiting for this file starts now
                    self._cond.notify_all()
                    continue
                st.attempts += 1
                jitter = 0.0 if st.retry_now else random.uniform(0.8, 1.2)  # resync while in flight: again now
                st.next_attempt = self.now() + st.delay * jitter
                next_due = min(next_due, st.delay * jitter)
                # Report the first failure and every change of reason, not every retry.
                if error != st.last_reason:
                    fields = self._fields(entry)
                    del fields["scheduled_start"]
                    self._emit(EventName.media_failed, **fields,
                               reason=f"{error} (attempt {st.attempts}, retry in {st.delay:.0f} s)")
                st.last_reason = error
                st.delay = min(st.delay * 2, MEDIA_RETRY_MAX_S)
                run = self._alert
                if (run is not None and run.entry is not None and run.entry.sha == sha and not run.acked
                        and st.attempts >= ALERT_FETCH_ATTEMPTS and run.entry.key not in self._handled):
                    # play_now is answered quickly: after a few attempts the panel hears "error", not silence.
                    self._handled.add(run.entry.key)
                    self._fail_unplayed(run.entry, "media_unavailable")
                    run.acked = True
                    self._ack_id(run.command_id, AckStatus.error, error=_short(f"media unavailable: {error}"))
                    self._alert = None
        with self._lock:
            self._report_ready()  # also items whose file was already held
            self._cond.notify_all()
        return max(0.05, next_due)

    def _report_ready(self) -> None:
        """One media_ready per item identity (persisted, so not again after a reboot or in a newer plan
        version), for items without an outcome whose file is verified. Caller holds ``_lock``."""
        for entry in self._all_entries():
            sha = entry.sha
            if sha is None:
                continue  # a stream has nothing to download
            if sha in self._verified and entry.key not in self._ready_reported and entry.key not in self._handled:
                self._ready_reported.add(entry.key)
                fields = self._fields(entry)
                del fields["scheduled_start"]
                self._emit(EventName.media_ready, **fields)

    def _download(self, session: requests.Session, item: PlanItem) -> str | None:
        """Fetch and verify one media file into the cache. Returns None on success, else the reason."""
        media = item.media
        assert media is not None
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
            if size != media.bytes:
                return f"size mismatch: {size} bytes, expected {media.bytes}"
            if digest.hexdigest() != media.sha256:
                return f"sha256 mismatch: got {digest.hexdigest()}"
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
