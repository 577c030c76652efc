"""Scale simulator: thousands of protocol v1 nodes in one process, on one asyncio event loop.

Each :class:`ScaleNode` is a full node of docs/protocol.md — its own MQTT connection, client id, username and
token, clean session 0, keepalive, retained last-will; it verifies every plan and command (strict decoding and
Ed25519 through :mod:`firmware_sim.wire`), fetches media over HTTP with its token and checks size and sha256,
plays at the start time from its own (optionally skewed) clock, reports status, heartbeat and numbered events
through a persisted outbox, and acks commands (``ping``, ``resync``, ``stop``, ``set_volume``, ``play_now``,
``reboot``). Playback is simulated: it lasts ``duration_ms``, nothing is decoded.

What makes 10 000 of them fit in one process (see docs/performance.md, "Fleet"):

* no thread and no ``select()`` per client: :mod:`firmware_sim.mqtt_async` is an ``asyncio.Protocol``, so every
  socket is one epoll registration of one loop; one ticker does keepalives and heartbeats for all nodes;
* one timer per node for playback; a timer only notes the node clock and defers the work (events, disk), so a
  thousand nodes due at the same instant all note it within a few milliseconds;
* state in one SQLite file with group commit (:mod:`firmware_sim.scale_store`) instead of 10 000 fsyncs;
* media downloads shared by sha256 within the process (one HTTP GET per file with the requesting node's token,
  every node still checks size and hash of the bytes it is given).

Fault injection: :meth:`ScaleFleet.disconnect_storm`, :meth:`ScaleFleet.reboot` (power cut or clean, from
persisted state), per-node clock skew, and a :class:`firmware_sim.http_async.FaultProxy` between the nodes and
the panel's media server (slow, failing, dropped mid-download, corrupted). A broker restart needs no help from
the simulator: every node reconnects with exponential back-off and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from firmware_sim.http_async import FaultProxy, HttpError, MediaFaults, http_get
from firmware_sim.mqtt_async import CONNACK_REASONS, MqttConnection, connect_packet
from firmware_sim.scale_store import FleetStore
from firmware_sim.wire import decode_from_panel

from devices.protocol import (
    PRIORITY_RANK,
    Command,
    Event,
    EventName,
    Media,
    Plan,
    Priority,
    ProtocolError,
    Topics,
    format_ts,
    load_public_key,
    parse_ts,
)

log = logging.getLogger("firmware_sim.scale")

DEFAULT_VOLUME = 80
OUTCOME_MEMORY_S = 4 * 24 * 3600
OUTBOX_MAX = 10_000
MEDIA_RETRY_FIRST_S = 1.0
MEDIA_RETRY_MAX_S = 60.0
#: play_now: give up (ack ``error``) when the media cannot be fetched within this many attempts.
PLAY_NOW_FETCH_ATTEMPTS = 3
#: play_now: an alert repeat may start this late (ms) before it counts as stale.
ALERT_MAX_LATE_MS = 300_000
#: The result of a command accepted but never answered before a restart (docs/protocol.md §9: the answer to
#: its duplicates).
COMMAND_INTERRUPTED = "not completed: the node restarted"
#: "playback_stopped" is an addition of protocol v1 agreed in this release; older wire models lack it.
STOPPED_EVENT = "playback_stopped" if "playback_stopped" in EventName.__members__ else "playback_failed"


def _ts(epoch: float) -> str:
    return format_ts(datetime.fromtimestamp(epoch, UTC))


def _short(text: object, limit: int = 500) -> str:
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(slots=True)
class NodeCred:
    node_id: str
    token: str
    clock_offset_ms: float = 0.0


@dataclass(slots=True)
class _Entry:
    """A plan item (or an alert repeat) with its times on the node clock."""

    key: str
    item_id: str
    start: float
    deadline: float
    rank: int
    plan_version: int | None
    scheduled_start: str
    media: Media | None
    duration_ms: int
    schedule_id: str | None = None
    end_at: float | None = None
    title: str = ""
    drill: bool | None = None
    alert: _Alert | None = None

    @property
    def sha256(self) -> str | None:
        return self.media.sha256 if self.media is not None else None


@dataclass(slots=True)
class _Alert:
    alert_id: str
    command_id: str
    media: Media | None
    priority: str
    rank: int
    repeat: int
    gap_ms: int
    duration_ms: int
    drill: bool
    title: str
    acked: bool = False
    n: int = 1


@dataclass(slots=True)
class _Playing:
    entry: _Entry
    actual_start: float
    end: float
    cut_by_end_at: bool = False


@dataclass(slots=True)
class _Fetch:
    attempts: int = 0
    delay: float = MEDIA_RETRY_FIRST_S
    last_reason: str | None = None
    running: bool = False
    handle: asyncio.TimerHandle | None = None
    #: A resync came while an attempt was in flight: if that attempt fails, retry at once, not after back-off.
    retry_now: bool = False


class DigestMemo:
    """sha256 of a body, computed once per bytes object.

    The nodes of one simulator process are handed the same object by :meth:`ScaleFleet.download`; hashing it
    for each of 10 000 nodes would give 10 000 equal answers (a corrupted body is another object, with its own
    digest). In the field every loudspeaker spends that CPU on its own; here it was a second of one core per
    province-wide plan.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._memo: dict[int, tuple[bytes, str]] = {}

    def __call__(self, body: bytes) -> str:
        hit = self._memo.get(id(body))
        if hit is not None and hit[0] is body:
            return hit[1]
        digest = hashlib.sha256(body).hexdigest()
        if len(self._memo) >= self.size:
            self._memo.pop(next(iter(self._memo)))
        self._memo[id(body)] = (body, digest)  # holding the object keeps its id from being reused
        return digest


def _plan_entries(plan: Plan) -> dict[str, _Entry]:
    out = {}
    for item in plan.items:
        media = getattr(item, "media", None)
        stream = getattr(item, "stream", None)
        start = parse_ts(item.start).timestamp()
        end_at = getattr(item, "end_at", None)
        duration = media.duration_ms if media is not None else int(getattr(stream, "duration_ms", 1) or 1)
        key = f"{item.id}|{format_ts(parse_ts(item.start))}|{media.sha256 if media else 'stream'}"
        out[key] = _Entry(
            key=key, item_id=item.id, start=start, deadline=start + item.max_late_ms / 1000.0,
            rank=PRIORITY_RANK[item.priority], plan_version=plan.version, scheduled_start=item.start, media=media,
            duration_ms=duration, schedule_id=item.schedule_id, title=item.title,
            end_at=parse_ts(end_at).timestamp() if end_at else None, drill=getattr(item, "drill", None) or None,
        )
    return out


class ScaleNode:
    """One simulated node. Lives on the fleet's event loop; never blocks it."""

    def __init__(self, fleet: ScaleFleet, cred: NodeCred, saved: dict[str, Any] | None = None) -> None:
        self.fleet = fleet
        self.node_id = cred.node_id
        self.token = cred.token
        self.clock_offset = cred.clock_offset_ms / 1000.0
        self.topic_plan = fleet.topics.plan(self.node_id)
        self.topic_cmd = fleet.topics.cmd(self.node_id)
        self.topic_status = fleet.topics.status(self.node_id)
        self.topic_events = fleet.topics.events(self.node_id)
        self.topic_ack = fleet.topics.ack(self.node_id)
        self.boot = 0
        self.seq = 0
        self.volume = DEFAULT_VOLUME
        self.plan: Plan | None = None
        self.entries: dict[str, _Entry] = {}
        self.alert_entries: dict[str, _Entry] = {}
        self.handled: set[str] = set()
        self.ready_reported: set[str] = set()
        self.due_seen: set[str] = set()
        self.seen_commands: dict[str, float] = {}  # id → expires_at (epoch s) of every command accepted
        self.command_results: dict[str, str] = {}  # id → its first ack as sent: the answer to a duplicate (§9)
        self.dup_waiting: dict[str, int] = {}  # duplicates that came before their command's result (RAM only)
        self.verified: set[str] = set()
        self.fetches: dict[str, _Fetch] = {}
        self.current: _Playing | None = None
        self.outbox: OrderedDict[int, bytes] = OrderedDict()
        self.pending_acks: dict[int, bytes] = {}
        self.link_down = False  # fault injection: the node's network is cut (ScaleFleet.cut_link)
        self._ack_counter = 0
        self.mids: dict[int, tuple[str, int]] = {}
        self.conn: MqttConnection | None = None
        self.connected = False
        self.halted = False
        self.backoff = 1.0
        self.connected_since = 0.0
        self.booted_at = time.time()
        self.next_heartbeat = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reconnect: asyncio.TimerHandle | None = None
        self._restore(saved or {})

    # ------------------------------------------------------------------------------------ clock
    def now(self) -> float:
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        playing = None
        if self.current is not None and self.current.entry.alert is None:
            e = self.current.entry
            playing = {"item_id": e.item_id, "schedule_id": e.schedule_id, "plan_version": e.plan_version,
                       "sha256": e.sha256, "scheduled_start": e.scheduled_start,
                       "actual_start": _ts(self.current.actual_start),
                       "offset_ms": round((self.current.actual_start - e.start) * 1000)}
        return {"boot": self.boot, "seq": self.seq, "volume": self.volume, "handled": sorted(self.handled),
                "ready": sorted(self.ready_reported), "seen_commands": self.seen_commands,
                "command_results": self.command_results, "verified": sorted(self.verified), "playing": playing}

    def _restore(self, saved: dict[str, Any]) -> None:
        """Boot (§11 step 1): counters, outcomes, plan, outbox from the store; ``session`` + 1."""
        state = saved.get("state") or {}
        self.boot = int(state.get("boot", 0)) + 1
        self.seq = int(state.get("seq", 0))
        self.volume = int(state.get("volume", DEFAULT_VOLUME))
        self.handled = set(state.get("handled", []))
        self.ready_reported = set(state.get("ready", []))
        self.seen_commands = {str(k): float(v) for k, v in state.get("seen_commands", {}).items()}
        self.command_results = {str(k): str(v) for k, v in state.get("command_results", {}).items()
                                if k in self.seen_commands}
        for cid in self.seen_commands.keys() - self.command_results.keys():
            # Accepted but never answered before the restart (a play_now not sounding yet): that is its result.
            self.command_results[cid] = self._ack_payload(cid, "error", COMMAND_INTERRUPTED, None).decode("utf-8")
        # Media are re-checked at boot: only files the fleet's cache holds with the right hash count.
        self.verified = {sha for sha in state.get("verified", []) if sha in self.fleet.media}
        for seq, payload in saved.get("outbox", []):
            self.outbox[seq] = payload
        raw = saved.get("plan")
        if raw:
            try:
                self._set_plan(self.fleet.decode_plan(raw, self.node_id))
            except ProtocolError as exc:
                log.error("%s: stored plan refused at boot (%s)", self.node_id, exc)
        interrupted = state.get("playing")
        self.fleet.store.save_state(self)
        if interrupted:
            self._emit("playback_failed", reason="interrupted", **interrupted)
            self.fleet._record({**interrupted, "node_id": self.node_id, "result": "interrupted",
                                "reason": "interrupted"})

    # ------------------------------------------------------------------------------------ MQTT
    def connect(self) -> None:
        self._reconnect = None
        if self.halted:
            return
        if self.link_down:  # no network: try again later, as a real node's back-off would
            self._reconnect = self.fleet.loop.call_later(1.0, self.connect)
            return
        self.fleet.loop.create_task(self._connect())

    async def _connect(self) -> None:
        fleet = self.fleet
        will = fleet.encode_status(self, "offline")
        packet = connect_packet(self.node_id, username=self.node_id, password=self.token,
                                keepalive=fleet.keepalive, clean_session=False,
                                will=(self.topic_status, will, 1, True))
        async with fleet.connect_slots:
            if self.halted:
                return
            fleet.stats["connect_attempts"] += 1
            try:
                _, conn = await asyncio.wait_for(
                    fleet.loop.create_connection(lambda: self._new_conn(packet), fleet.host, fleet.port), 10)
            except (OSError, TimeoutError) as exc:
                log.debug("%s: cannot reach the broker: %s", self.node_id, exc)
                self.conn = None
                self._schedule_reconnect()
                return
            # Hold the slot until CONNACK (or loss), so a reconnect storm is spread over time.
            for _ in range(200):
                if conn.connected or conn.closed:
                    break
                await asyncio.sleep(0.05)
            if not conn.connected and not conn.closed:
                conn.abort()

    def _new_conn(self, packet: bytes) -> MqttConnection:
        # Set before the first byte can arrive, so the CONNACK is matched to this connection.
        self.conn = MqttConnection(self, packet)
        return self.conn

    def _schedule_reconnect(self) -> None:
        """Exponential back-off from 1 s, ±20 % jitter, capped; reset once a connection lasted 30 s."""
        if self.halted or self._reconnect is not None:
            return
        delay = self.backoff * random.uniform(0.8, 1.2)
        self.backoff = min(self.backoff * 2, self.fleet.reconnect_max_delay)
        self._reconnect = self.fleet.loop.call_later(delay, self.connect)

    def on_connack(self, conn: MqttConnection, session_present: bool, rc: int) -> None:
        if conn is not self.conn or self.halted:
            conn.abort()
            return
        if rc != 0:
            log.warning("%s: broker refused the connection: %s", self.node_id, CONNACK_REASONS.get(rc, rc))
            self.fleet.stats["refused"] += 1
            conn.abort()
            return
        self.connected = True
        self.connected_since = self.fleet.loop.time()
        self.fleet.stats["connects"] += 1
        self.mids.clear()
        conn.publish(self.topic_status, self.fleet.encode_status(self, "online"), 1, True)
        conn.subscribe([(self.topic_plan, 1), (self.topic_cmd, 1)])
        for seq, payload in self.outbox.items():  # unacknowledged events first, in seq order
            self.mids[conn.publish(self.topic_events, payload, 1, False)] = ("event", seq)
        for key, payload in self.pending_acks.items():
            self.mids[conn.publish(self.topic_ack, payload, 1, False)] = ("ack", key)
        self.next_heartbeat = time.time() + self.fleet.heartbeat_s * random.uniform(0.5, 1.0)

    def on_lost(self, conn: MqttConnection, exc: Exception | None) -> None:
        if conn is not self.conn:
            return
        if self.connected:
            self.fleet.stats["disconnects"] += 1
            if self.fleet.loop.time() - self.connected_since > 30:
                self.backoff = 1.0
        self.conn = None
        self.connected = False
        self.mids.clear()
        self._schedule_reconnect()

    def on_puback(self, conn: MqttConnection, packet_id: int) -> None:
        tag = self.mids.pop(packet_id, None)
        if tag is None:
            return
        kind, key = tag
        if kind == "ack":
            self.pending_acks.pop(key, None)
            return
        payload = self.outbox.pop(key, None)
        if payload is not None:
            self.fleet.store.delete_outbox(self.node_id, key)
            self.fleet._event_delivered(self, payload)

    def on_message(self, conn: MqttConnection, topic: str, payload: bytes, retain: bool) -> None:
        if self.halted:
            return
        try:
            if topic == self.topic_plan:
                self._handle_plan(payload)
            elif topic == self.topic_cmd:
                self._handle_command(payload, retain)
        except Exception:  # a bad message must never take the loop down
            log.exception("%s: error handling a message on %s", self.node_id, topic)

    def _publish(self, topic: str, payload: bytes, retain: bool = False, tag: tuple[str, int] | None = None) -> None:
        conn = self.conn
        if conn is not None and conn.connected and not self.halted:
            mid = conn.publish(topic, payload, 1, retain)
            if tag is not None:
                self.mids[mid] = tag

    def publish_status(self) -> None:
        self._publish(self.topic_status, self.fleet.encode_status(self, "online"), retain=True)
        self.next_heartbeat = time.time() + self.fleet.heartbeat_s

    # ------------------------------------------------------------------------------------ events
    def _emit(self, name: str, **fields: Any) -> None:
        """Next seq, validated (§6.5), persisted (group commit), then published and kept until PUBACK."""
        if self.halted:
            return
        self.seq += 1
        data: dict[str, Any] = {"type": "event", "protocol": 1, "node_id": self.node_id, "seq": self.seq,
                                "at": _ts(self.now()), "event": name}
        for key, value in fields.items():
            if value is not None:
                data[key] = _short(value) if key == "reason" else value
        Event.model_validate(data)  # a node must send valid payloads (§8); unknown keys are additive fields
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        store = self.fleet.store
        store.save_state(self)
        store.add_outbox(self.node_id, self.seq, payload)
        store.after_commit(self._committed, self.seq, payload)
        self.fleet.stats["events"] += 1

    def _committed(self, seq: int, payload: bytes) -> None:
        if self.halted:
            return
        self.outbox[seq] = payload
        if len(self.outbox) > OUTBOX_MAX:
            dropped, _ = self.outbox.popitem(last=False)
            self.fleet.store.delete_outbox(self.node_id, dropped)
        self._publish(self.topic_events, payload, tag=("event", seq))

    def _ack_payload(self, command_id: str, status: str, error: str | None, data: dict[str, Any] | None) -> bytes:
        ack: dict[str, Any] = {"type": "ack", "protocol": 1, "node_id": self.node_id, "command_id": command_id,
                               "status": status, "at": _ts(self.now()), "data": data or {}}
        if error is not None:
            ack["error"] = _short(error)
        return json.dumps(ack, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def _ack(self, cmd: Command, status: str, *, error: str | None = None,
             data: dict[str, Any] | None = None) -> None:
        payload = self._ack_payload(cmd.id, status, error, data)
        copies = 1
        if cmd.id in self.seen_commands and cmd.id not in self.command_results:
            # The first answer to an accepted command is its result: durable before it is sent (the ack is
            # published after the commit), and sent again, byte for byte, for every duplicate (§9).
            self.command_results[cmd.id] = payload.decode("utf-8")
            copies += self.dup_waiting.pop(cmd.id, 0)
            self.fleet.store.save_state(self)
        for _ in range(copies):
            self._send_ack(payload)

    def _send_ack(self, payload: bytes) -> None:
        self._ack_counter += 1
        key = self._ack_counter
        self.pending_acks[key] = payload
        # After the command id is durable (a replay after a reboot must still be refused).
        self.fleet.store.after_commit(self._publish, self.topic_ack, payload, False, ("ack", key))

    # ------------------------------------------------------------------------------------ plans
    def _handle_plan(self, raw: bytes) -> None:
        if not raw:
            return  # cleared retained topic: keep the plan
        held = self.plan.version if self.plan is not None else None
        try:
            plan = self.fleet.decode_plan(raw, self.node_id)
        except Exception as exc:  # ProtocolError or anything unforeseen: refused either way
            reason = str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}"
            self.fleet.stats["plans_rejected"] += 1
            self._emit("plan_rejected", plan_version=held, reason=reason)
            return
        if held is not None and plan.version < held:
            self.fleet.stats["plans_rejected"] += 1
            self._emit("plan_rejected", plan_version=held,
                       reason=f"replayed or stale plan: version {plan.version} < held {held}")
            return
        if held is not None and plan.version == held:
            return
        self.fleet.store.save_plan(self.node_id, bytes(raw))
        self._set_plan(plan)
        self._emit("plan_applied", plan_version=plan.version)
        self.fleet.store.after_commit(self.publish_status)
        self.fleet.stats["plans_applied"] += 1
        self._fetch_missing()
        self._step()

    def _set_plan(self, plan: Plan) -> None:
        entries = _plan_entries(plan)
        self.plan = plan
        self.entries = entries
        self.due_seen &= set(entries)
        horizon = self.now() - OUTCOME_MEMORY_S

        def keep(key: str) -> bool:
            if key in entries:
                return True
            try:
                return parse_ts(key.rsplit("|", 2)[1]).timestamp() >= horizon
            except (ProtocolError, IndexError, ValueError):
                return False

        self.handled = {k for k in self.handled if keep(k)}
        self.ready_reported = {k for k in self.ready_reported if keep(k)}
        cur = self.current
        if cur is not None and cur.entry.alert is None:
            if cur.entry.key not in entries:
                self._end_current(STOPPED_EVENT, "removed")
            else:
                cur.entry = entries[cur.entry.key]
        needed = {e.sha256 for e in self._all_entries() if e.sha256}
        for sha in list(self.fetches):
            if sha not in needed and not self.fetches[sha].running:
                fetch = self.fetches.pop(sha)
                if fetch.handle is not None:
                    fetch.handle.cancel()

    def _all_entries(self) -> list[_Entry]:
        return [*self.entries.values(), *self.alert_entries.values()]

    # ------------------------------------------------------------------------------------ media
    def _fetch_missing(self) -> None:
        now = self.now()
        for entry in self._all_entries():
            sha = entry.sha256
            if sha is None or entry.key in self.handled:
                continue
            if sha in self.verified or sha in self.fetches or now > entry.deadline:
                continue
            self.fetches[sha] = _Fetch()
            self._start_fetch(sha)
        self._report_ready()

    def _start_fetch(self, sha: str) -> None:
        fetch = self.fetches.get(sha)
        if fetch is None or fetch.running or self.halted:
            return
        fetch.handle = None
        fetch.running = True
        fetch.retry_now = False
        self.fleet.loop.create_task(self._fetch(sha, fetch))

    async def _fetch(self, sha: str, fetch: _Fetch) -> None:
        entry = next((e for e in self._all_entries() if e.sha256 == sha and e.key not in self.handled), None)
        if entry is None or entry.media is None:
            self.fetches.pop(sha, None)
            return
        media = entry.media
        error: str | None = None
        try:
            status, body = await self.fleet.download(media.url, sha, self.token)
            if status != 200:
                error = f"HTTP {status}"
            elif len(body) != media.bytes:
                error = f"size mismatch: {len(body)} bytes, expected {media.bytes}"
            else:
                got = self.fleet.sha256(body)  # every node checks the bytes it is given
                if got != sha:
                    error = f"sha256 mismatch: got {got}"
        except HttpError as exc:
            error = f"download error: {exc}"
        fetch.running = False
        if self.halted:
            return
        if error is None:
            self.fetches.pop(sha, None)
            self.verified.add(sha)
            self.fleet.store.save_state(self)
            self._report_ready()
            self._step()
            return
        fetch.attempts += 1
        self.fleet.stats["media_failures"] += 1
        if error != fetch.last_reason:
            self._emit("media_failed", plan_version=entry.plan_version, item_id=entry.item_id,
                       schedule_id=entry.schedule_id, sha256=sha,
                       reason=f"{error} (attempt {fetch.attempts}, retry in {fetch.delay:.0f} s)")
        fetch.last_reason = error
        if entry.alert is not None and not entry.alert.acked and fetch.attempts >= PLAY_NOW_FETCH_ATTEMPTS:
            self._fail_alert(entry, f"media cannot be fetched: {error}")
            return
        # Retry until the last window needing this file has closed (late media play late, §7.1).
        deadline = max((e.deadline for e in self._all_entries() if e.sha256 == sha and e.key not in self.handled),
                       default=0.0)
        delay = 0.0 if fetch.retry_now else fetch.delay * random.uniform(0.8, 1.2)  # resync while in flight
        fetch.delay = min(fetch.delay * 2, MEDIA_RETRY_MAX_S)
        if self.now() + delay > deadline:
            self.fetches.pop(sha, None)
            self._step()
            return
        fetch.handle = self.fleet.loop.call_later(delay, self._start_fetch, sha)

    def _report_ready(self) -> None:
        for entry in self.entries.values():
            sha = entry.sha256
            if sha in self.verified and entry.key not in self.ready_reported and entry.key not in self.handled:
                self.ready_reported.add(entry.key)
                self._emit("media_ready", plan_version=entry.plan_version, item_id=entry.item_id,
                           schedule_id=entry.schedule_id, sha256=sha)

    def _ready(self, entry: _Entry) -> bool:
        return entry.media is None or entry.media.sha256 in self.verified

    # ------------------------------------------------------------------------------------ playback
    def _on_timer(self) -> None:
        """Note the node clock at once; do the work after every timer due now has noted its own."""
        self._timer = None
        if not self.halted:
            self.fleet.loop.call_soon(self._step, self.now())

    def _step(self, now: float | None = None) -> None:
        """Do everything due at ``now`` (node clock); arm the timer for the next thing to do."""
        if self.halted:
            return
        if now is None:
            now = self.now()
        cur = self.current
        if cur is not None and now >= cur.end:
            cut = cur.cut_by_end_at
            self._end_current(STOPPED_EVENT if cut else "playback_finished", "end_at" if cut else None)
        while True:
            due = [e for e in self._all_entries() if e.key not in self.handled and e.start <= now]
            for entry in due:
                if now > entry.deadline:
                    self.handled.add(entry.key)
                    missing = not self._ready(entry) and entry.key in self.due_seen
                    self.due_seen.discard(entry.key)
                    self._fail_unplayed(entry, "media_unavailable" if missing else "stale")
                else:
                    self.due_seen.add(entry.key)
            ready = [e for e in due if e.key not in self.handled and self._ready(e)]
            if not ready:
                break
            best = max(ready, key=lambda e: (e.rank, -e.start))
            if self.current is not None and best.rank <= self.current.entry.rank:
                break
            if self.current is not None:
                self._end_current(STOPPED_EVENT, "preempted")
            self._begin(best, now)
        self._arm()

    def _arm(self) -> None:
        now = self.now()
        wake = now + 60.0  # re-check at least every minute: the wall clock may step
        if self.current is not None:
            wake = min(wake, self.current.end)
        for entry in self._all_entries():
            if entry.key not in self.handled:
                wake = min(wake, entry.start if entry.start > now else entry.deadline + 0.001)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.fleet.loop.call_later(max(0.0, wake - now), self._on_timer)

    def _event_fields(self, entry: _Entry, actual: float | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {"plan_version": entry.plan_version, "item_id": entry.item_id,
                                  "schedule_id": entry.schedule_id, "sha256": entry.sha256,
                                  "scheduled_start": entry.scheduled_start, "drill": entry.drill}
        if entry.alert is not None:
            fields.update(alert_id=entry.alert.alert_id, command_id=entry.alert.command_id,
                          priority=entry.alert.priority)
        if actual is not None:
            fields.update(actual_start=_ts(actual), offset_ms=round((actual - entry.start) * 1000))
        return fields

    def _begin(self, entry: _Entry, actual: float) -> None:
        self._report_ready()  # media_ready precedes playback_started
        self.handled.add(entry.key)
        self.due_seen.discard(entry.key)
        end = actual + entry.duration_ms / 1000.0
        cut = entry.end_at is not None and entry.end_at < end
        self.current = _Playing(entry, actual, min(end, entry.end_at) if cut else end, cut)
        self._emit("playback_started", **self._event_fields(entry, actual))
        self.fleet.stats["plays_started"] += 1
        self.fleet._started(self, entry, actual)
        alert = entry.alert
        if alert is not None and not alert.acked:
            alert.acked = True
            self._ack_alert(alert, "ok", None)

    def _end_current(self, event: str, reason: str | None) -> None:
        cur = self.current
        if cur is None:
            return
        self.current = None
        entry = cur.entry
        self._emit(event, reason=reason, **self._event_fields(entry, cur.actual_start))
        result = "finished" if event == "playback_finished" else str(reason)
        self.fleet.stats["plays_finished" if result == "finished" else "plays_cut"] += 1
        self.fleet._record(self._record(entry, result, cur.actual_start, reason))
        alert = entry.alert
        if alert is not None:
            self.alert_entries.pop(entry.key, None)
            if reason not in ("command", "preempted", "shutdown") and alert.n < alert.repeat:
                self._next_repeat(alert, cur.end + alert.gap_ms / 1000.0)

    def _fail_unplayed(self, entry: _Entry, reason: str) -> None:
        self._emit("playback_failed", reason=reason, **self._event_fields(entry))
        self.fleet.stats["plays_failed"] += 1
        self.fleet._record(self._record(entry, reason, None, reason))
        if entry.alert is not None:
            self.alert_entries.pop(entry.key, None)

    def _record(self, entry: _Entry, result: str, actual: float | None, reason: str | None) -> dict[str, Any]:
        return {
            "node_id": self.node_id, "item_id": entry.item_id, "schedule_id": entry.schedule_id,
            "alert_id": entry.alert.alert_id if entry.alert else None, "plan_version": entry.plan_version,
            "sha256": entry.sha256, "scheduled_start": entry.scheduled_start,
            "actual_start": _ts(actual) if actual is not None else None,
            "offset_ms": round((actual - entry.start) * 1000, 3) if actual is not None else None,
            "clock_offset_ms": round(self.clock_offset * 1000, 3), "duration_ms": entry.duration_ms,
            "result": result, "reason": reason,
        }

    # ------------------------------------------------------------------------------------ commands
    def _handle_command(self, raw: bytes, retained: bool) -> None:
        if not raw:
            return
        try:
            cmd = self.fleet.decode_command(raw, self.node_id)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}"
            self._emit("command_rejected", reason=reason)
            return
        if retained:
            self._emit("command_rejected", reason=f"retained command {cmd.id}")
            return
        now = self.now()
        self.seen_commands = {k: v for k, v in self.seen_commands.items() if v >= now}
        self.command_results = {k: v for k, v in self.command_results.items() if k in self.seen_commands}
        if cmd.id in self.seen_commands:
            # A duplicate (QoS 1 redelivery, replay): not executed again, answered with the first result — or
            # as soon as that is known (a play_now not sounding yet).
            self.fleet.stats["duplicate_commands"] += 1
            first = self.command_results.get(cmd.id)
            if first is None:
                self.dup_waiting[cmd.id] = self.dup_waiting.get(cmd.id, 0) + 1
            else:
                self._send_ack(first.encode("utf-8"))
            return
        expires = parse_ts(cmd.expires_at).timestamp()
        if expires < now:
            self._ack(cmd, "rejected", error=f"expired at {cmd.expires_at}")
            return
        self.seen_commands[cmd.id] = expires
        self.fleet.store.save_state(self)
        self.fleet.stats["commands"] += 1
        handler = getattr(self, f"_cmd_{cmd.name}", None)
        if handler is None:
            self._ack(cmd, "rejected", error=f"unknown command {cmd.name!r}")
        else:
            handler(cmd)

    def _cmd_ping(self, cmd: Command) -> None:
        self._ack(cmd, "ok", data={"time": _ts(self.now())})

    def _cmd_resync(self, cmd: Command) -> None:
        self.fleet.store.after_commit(self.publish_status)
        for sha, fetch in self.fetches.items():
            if fetch.running:
                fetch.retry_now = True
            elif fetch.handle is not None:
                fetch.handle.cancel()
                self._start_fetch(sha)
        self._ack(cmd, "ok", data={} if self.plan is None else {"plan_version": self.plan.version})

    def _cmd_set_volume(self, cmd: Command) -> None:
        volume = cmd.args.get("volume")
        if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
            self._ack(cmd, "error", error="args.volume must be an integer 0..100")
            return
        self.volume = volume
        self.fleet.store.save_state(self)
        self.fleet.store.after_commit(self.publish_status)
        self._ack(cmd, "ok", data={"volume": volume})

    def _cmd_stop(self, cmd: Command) -> None:
        alert_id = cmd.args.get("alert_id")
        cur = self.current
        stopped = None
        if alert_id is not None:
            alert_id = str(alert_id)
            for key in [k for k, e in self.alert_entries.items() if e.alert and e.alert.alert_id == alert_id]:
                if cur is None or cur.entry.key != key:
                    self.alert_entries.pop(key)
            if cur is not None and cur.entry.alert is not None and cur.entry.alert.alert_id == alert_id:
                stopped = cur.entry.item_id
                cur.entry.alert.repeat = cur.entry.alert.n  # forget its remaining repeats
                self._end_current(STOPPED_EVENT, "command")
        elif cur is not None:
            stopped = cur.entry.item_id
            if cur.entry.alert is not None:
                cur.entry.alert.repeat = cur.entry.alert.n
            self._end_current(STOPPED_EVENT, "command")
        self._step()
        self._ack(cmd, "ok", data={} if stopped is None else {"stopped": stopped})

    def _cmd_reboot(self, cmd: Command) -> None:
        self._ack(cmd, "ok", data={"session": self.boot})
        self.fleet.store.after_commit(self.fleet._reboot_soon, self.node_id)

    def _cmd_play_now(self, cmd: Command) -> None:
        args = cmd.args
        alert_id = args.get("alert_id")
        priority = args.get("priority", "emergency")
        repeat = args.get("repeat", 1)
        gap_ms = args.get("gap_ms", 3000)
        problem = None
        media = None
        duration = 0
        if not isinstance(alert_id, str | int) or isinstance(alert_id, bool) or str(alert_id) == "":
            problem = "args.alert_id is required"
        elif priority not in {p.value for p in Priority}:
            problem = "args.priority must be normal, priority or emergency"
        elif isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 10:
            problem = "args.repeat must be an integer 1..10"
        elif isinstance(gap_ms, bool) or not isinstance(gap_ms, int) or gap_ms < 0:
            problem = "args.gap_ms must be an integer ≥ 0"
        elif isinstance(args.get("media"), dict):
            try:
                media = Media.model_validate(args["media"])
                duration = media.duration_ms
            except ValueError as exc:
                problem = f"args.media: {exc}"
        elif isinstance(args.get("stream"), dict) and isinstance(args["stream"].get("duration_ms"), int):
            duration = max(1, args["stream"]["duration_ms"])
        else:
            problem = "args.media or args.stream is required"
        if problem is not None:
            self._ack(cmd, "error", error=problem)
            return
        alert = _Alert(alert_id=str(alert_id), command_id=cmd.id, media=media, priority=str(priority),
                       rank=PRIORITY_RANK[Priority(priority)], repeat=repeat, gap_ms=gap_ms, duration_ms=duration,
                       drill=bool(args.get("drill", False)), title=str(args.get("title", "")))
        self._replace_alert(alert)
        self._next_repeat(alert, self.now())
        self._fetch_missing()
        self._step()

    def _replace_alert(self, alert: _Alert) -> None:
        # A newer alert with the same id replaces the remaining repeats of the old one.
        for key in [k for k, e in self.alert_entries.items() if e.alert and e.alert.alert_id == alert.alert_id]:
            if self.current is None or self.current.entry.key != key:
                self.alert_entries.pop(key)

    def _next_repeat(self, alert: _Alert, start: float) -> None:
        n = alert.n if alert.n == 1 and not alert.acked else alert.n + 1
        alert.n = n
        item_id = f"alert:{alert.alert_id}:{n}"
        entry = _Entry(key=f"{item_id}|{alert.command_id}", item_id=item_id, start=start,
                       deadline=start + ALERT_MAX_LATE_MS / 1000.0, rank=alert.rank, plan_version=None,
                       scheduled_start=_ts(start), media=alert.media, duration_ms=alert.duration_ms,
                       drill=alert.drill, title=alert.title, alert=alert)
        self.alert_entries[entry.key] = entry
        self._arm()

    def _fail_alert(self, entry: _Entry, error: str) -> None:
        alert = entry.alert
        assert alert is not None
        alert.acked = True
        self.alert_entries.pop(entry.key, None)
        self.handled.add(entry.key)
        self.fetches.pop(entry.sha256 or "", None)
        self._ack_alert(alert, "error", error)

    def _ack_alert(self, alert: _Alert, status: str, error: str | None) -> None:
        fake = Command.model_construct(id=alert.command_id)
        self._ack(fake, status, error=error, data={"alert_id": alert.alert_id} if status == "ok" else None)

    # ------------------------------------------------------------------------------------ lifecycle
    def power_off(self, clean: bool) -> None:
        """Stop this run: clean (end the play with ``shutdown``, ``stopped`` status, DISCONNECT) or a power cut
        (drop the TCP connection, the broker publishes the will; nothing more is written)."""
        if self.halted:
            return
        if clean:
            if self.current is not None:
                self._end_current(STOPPED_EVENT, "shutdown")
            self.fleet.store.save_state(self)
        else:
            self.fleet.store.forget(self.node_id)
        self.halted = True
        for handle in (self._timer, self._reconnect, *(f.handle for f in self.fetches.values())):
            if handle is not None:
                handle.cancel()
        conn = self.conn
        if conn is not None:
            if clean and conn.connected:
                conn.publish(self.topic_status, self.fleet.encode_status(self, "stopped"), 1, True)
                conn.disconnect()
            else:
                conn.abort()


# ============================================================================================== fleet


@dataclass
class FleetConfig:
    broker_host: str
    broker_port: int
    panel_public_key: str
    data_dir: Path
    topic_prefix: str = "loaphuong"
    keepalive: int = 15
    heartbeat_s: int = 60
    reconnect_max_delay: float = 10.0
    max_connecting: int = 256
    firmware: str = "sim-scale-0.1"
    playback_log: Path | None = None
    media_faults: MediaFaults | None = None  # when set, media go through a FaultProxy
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ScaleFleet:
    """Many :class:`ScaleNode` on one event loop in one background thread.

    The public methods are thread-safe: they run their work on the loop and wait for it.
    """

    def __init__(self, config: FleetConfig, creds: Iterable[NodeCred]) -> None:
        self.config = config
        self.creds = {c.node_id: c for c in creds}
        self.topics = Topics(config.topic_prefix)
        self.host, self.port = config.broker_host, config.broker_port
        self.keepalive = config.keepalive
        self.heartbeat_s = config.heartbeat_s
        self.reconnect_max_delay = config.reconnect_max_delay
        self.public_key: Ed25519PublicKey = load_public_key(config.panel_public_key)
        self.nodes: dict[str, ScaleNode] = {}
        self.media: dict[str, bytes] = {}
        self._downloads: dict[str, asyncio.Future[tuple[int, bytes]]] = {}
        self.sha256 = DigestMemo()
        self.stats: dict[str, int] = dict.fromkeys(
            ("connect_attempts", "connects", "disconnects", "refused", "events", "events_delivered",
             "plans_applied", "plans_rejected", "media_failures", "downloads", "plays_started", "plays_finished",
             "plays_cut", "plays_failed", "commands", "duplicate_commands"), 0)
        self.delivered_hooks: list[Callable[[str, dict[str, Any], float], None]] = []
        self.started_hooks: list[Callable[[str, str, float, float], None]] = []
        self._log_lines: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self.proxy: FaultProxy | None = None
        self.proxy_addr: tuple[str, int] | None = None
        self.store: FleetStore = None  # type: ignore[assignment]  # created on the loop thread
        self.connect_slots: asyncio.Semaphore = None  # type: ignore[assignment]
        self._ticker: asyncio.Task[None] | None = None
        if config.seed is not None:
            random.seed(config.seed)

    # ------------------------------------------------------------------------------------ threading
    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="scale-fleet", daemon=True)
        self._thread.start()
        ready.wait()
        self.call(self._boot_all)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 120.0) -> Any:
        """Run ``fn(*args)`` on the loop (awaiting it if it is a coroutine function) and return its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("ScaleFleet.call from the loop thread")

        async def wrapper() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        future: Future[Any] = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        return future.result(timeout)

    def stop(self, clean: bool = True) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(Exception):
            self.call(self._shutdown, clean, timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        with contextlib.suppress(Exception):
            self.loop.close()

    # ------------------------------------------------------------------------------------ boot
    async def _boot_all(self) -> None:
        self.store = FleetStore(self.config.data_dir / "fleet.db")
        self.connect_slots = asyncio.Semaphore(self.config.max_connecting)
        for sha, body in self.store.all_media().items():
            if hashlib.sha256(body).hexdigest() == sha:  # re-hash stored media at boot
                self.media[sha] = body
        if self.config.media_faults is not None:
            self.proxy = FaultProxy(self.config.media_faults, seed=self.config.seed)
            self.proxy_addr = await self.proxy.start()
        saved = self.store.load()
        for cred in self.creds.values():
            self.nodes[cred.node_id] = ScaleNode(self, cred, saved.get(cred.node_id))
        self.store.commit()
        for node in self.nodes.values():
            node._step()
            node._fetch_missing()
            node.connect()
        self._ticker = self.loop.create_task(self._tick())
        # Boot allocated most long-lived objects: keep the cyclic GC from walking them at every collection
        # (a full collection over 10 000 nodes stalls the loop long enough to show as playback skew).
        gc.collect()
        gc.freeze()

    async def _shutdown(self, clean: bool) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for node in self.nodes.values():
            node.power_off(clean)
        self.store.commit()
        await asyncio.sleep(0.2 if clean else 0.05)
        self._flush_log()
        if self.proxy is not None:
            await self.proxy.close()
        self.store.close()

    async def _tick(self) -> None:
        """Once a second for the whole fleet: keepalive pings, heartbeats, the playback log."""
        while True:
            await asyncio.sleep(1.0)
            now_loop = self.loop.time()
            wall = time.time()
            for node in self.nodes.values():
                conn = node.conn
                if conn is None or not conn.connected:
                    continue
                if now_loop - conn.last_sent >= self.keepalive * 0.75 and not conn.ping():
                    conn.abort()  # no PINGRESP for a whole keepalive: the link is dead
                elif wall >= node.next_heartbeat:
                    node.publish_status()
            self._flush_log()

    # ------------------------------------------------------------------------------------ shared work
    def decode_plan(self, raw: bytes, node_id: str) -> Plan:
        return decode_from_panel(Plan, raw, self.public_key, node_id=node_id)

    def decode_command(self, raw: bytes, node_id: str) -> Command:
        return decode_from_panel(Command, raw, self.public_key, node_id=node_id)

    def encode_status(self, node: ScaleNode, state: str) -> bytes:
        data: dict[str, Any] = {"type": "status", "protocol": 1, "node_id": node.node_id, "state": state,
                                "session": node.boot}
        if state != "offline":
            now = node.now()
            data.update(at=_ts(now), clock=_ts(now), firmware=self.config.firmware, volume=node.volume,
                        uptime_s=int(time.time() - node.booted_at), heartbeat_s=self.heartbeat_s)
            if node.plan is not None:
                data["plan_version"] = node.plan.version
            if node.current is not None:
                data["playing"] = node.current.entry.item_id
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    async def download(self, url: str, sha256: str, token: str) -> tuple[int, bytes]:
        """One HTTP GET per file at a time for the whole fleet; a verified body is kept in memory and on disk.

        The bytes are handed to every node that asked, and each node checks size and sha256 itself.
        """
        body = self.media.get(sha256)
        if body is not None:
            return 200, body
        pending = self._downloads.get(sha256)
        if pending is None:
            pending = self.loop.create_future()
            self._downloads[sha256] = pending
            self.loop.create_task(self._download(url, sha256, token, pending))
        return await asyncio.shield(pending)

    async def _download(self, url: str, sha256: str, token: str, future: asyncio.Future[Any]) -> None:
        self.stats["downloads"] += 1
        try:
            status, body = await http_get(url, {"Authorization": f"Bearer {token}"}, proxy=self.proxy_addr)
        except HttpError as exc:
            future.set_exception(exc)
        except Exception as exc:  # anything else is a failed download too, never a hung future
            future.set_exception(HttpError(f"{type(exc).__name__}: {exc}"))
        else:
            if status == 200 and hashlib.sha256(body).hexdigest() == sha256:
                self.media[sha256] = body
                self.store.put_media(sha256, body)
            future.set_result((status, body))
        finally:
            self._downloads.pop(sha256, None)
        future.exception()  # mark retrieved: nobody may be waiting any more

    # ------------------------------------------------------------------------------------ observation
    def _event_delivered(self, node: ScaleNode, payload: bytes) -> None:
        self.stats["events_delivered"] += 1
        if self.delivered_hooks:
            data = json.loads(payload)
            wall = time.time()
            for hook in self.delivered_hooks:
                hook(node.node_id, data, wall)

    def _started(self, node: ScaleNode, entry: _Entry, actual: float) -> None:
        for hook in self.started_hooks:
            hook(node.node_id, entry.item_id, actual - node.clock_offset, entry.start)

    def _record(self, record: dict[str, Any]) -> None:
        if self.config.playback_log is not None:
            self._log_lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    def _flush_log(self) -> None:
        if self._log_lines and self.config.playback_log is not None:
            path = self.config.playback_log
            path.parent.mkdir(parents=True, exist_ok=True)
            lines, self._log_lines = self._log_lines, []
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    def flush(self) -> None:
        """Commit pending state and write the playback log now."""
        def work() -> None:
            self.store.commit()
            self._flush_log()
        self.call(work)

    def summary(self) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            nodes = self.nodes.values()
            versions: dict[int, int] = {}
            for n in nodes:
                if n.plan is not None:
                    versions[n.plan.version] = versions.get(n.plan.version, 0) + 1
            return {
                "nodes": len(self.nodes),
                "connected": sum(1 for n in nodes if n.connected),
                "with_plan": sum(1 for n in nodes if n.plan is not None),
                "plan_versions": versions,
                "playing": sum(1 for n in nodes if n.current is not None),
                "outbox": sum(len(n.outbox) for n in nodes),
                **self.stats,
            }
        return self.call(work)

    def node_info(self, node_id: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            n = self.nodes[node_id]
            return {"seq": n.seq, "session": n.boot, "connected": n.connected, "volume": n.volume,
                    "plan_version": n.plan.version if n.plan else None, "outbox": len(n.outbox),
                    "verified": sorted(n.verified), "playing": n.current.entry.item_id if n.current else None,
                    "plan_items": len(n.plan.items) if n.plan else 0}
        return self.call(work)

    # ------------------------------------------------------------------------------------ faults
    def disconnect_storm(self, fraction: float = 1.0, node_ids: Iterable[str] | None = None) -> list[str]:
        """Drop the TCP connection of a fraction of the nodes at once (no DISCONNECT: the wills fire); they
        reconnect by themselves with back-off and jitter and resend their outboxes."""
        def work() -> list[str]:
            ids = list(node_ids) if node_ids is not None else \
                [n for n in self.nodes if random.random() < fraction]
            for nid in ids:
                conn = self.nodes[nid].conn
                if conn is not None:
                    conn.abort()
            return ids
        return self.call(work)

    def cut_link(self, node_ids: Iterable[str]) -> None:
        """Cut the nodes' link to the broker (the TCP connection drops, no DISCONNECT): they keep playing their plans
        from their own clocks, persist every event in the outbox and cannot reconnect until
        :meth:`restore_link` — e.g. a cluster offline for a whole day."""
        def work() -> None:
            for nid in node_ids:
                node = self.nodes[nid]
                node.link_down = True
                if node.conn is not None:
                    node.conn.abort()
        self.call(work)

    def restore_link(self, node_ids: Iterable[str]) -> None:
        """The network is back: the nodes reconnect with their usual back-off and send their outboxes."""
        def work() -> None:
            for nid in node_ids:
                node = self.nodes[nid]
                node.link_down = False
                if node.conn is None and node._reconnect is not None:
                    node._reconnect.cancel()
                    node._reconnect = None
                    node.connect()
        self.call(work)

    def reboot(self, node_ids: Iterable[str], clean: bool = False) -> None:
        """Power-cycle nodes: ``clean=False`` is a power cut. Each comes back from its persisted state only
        (plan, counters, outcomes, outbox), with ``session`` + 1."""
        ids = list(node_ids)
        self.call(self._reboot, ids, clean)

    def _reboot_soon(self, node_id: str) -> None:
        # The reboot command: ack first (already queued), then a clean restart.
        self.loop.call_later(0.05, lambda: self.loop.create_task(self._reboot([node_id], True)))

    async def _reboot(self, ids: list[str], clean: bool) -> None:
        for nid in ids:
            self.nodes[nid].power_off(clean)
        self.store.commit()
        await asyncio.sleep(0.05)
        saved = self.store.load(ids)
        for nid in ids:
            node = ScaleNode(self, self.creds[nid], saved.get(nid))
            self.nodes[nid] = node
            node._step()
            node._fetch_missing()
            node.connect()

    def set_clock_skew(self, offsets_ms: dict[str, float]) -> None:
        """Step the clock of some nodes (ms added to true time); their timers are re-armed."""
        def work() -> None:
            for nid, off in offsets_ms.items():
                node = self.nodes[nid]
                node.clock_offset = off / 1000.0
                self.creds[nid].clock_offset_ms = off
                node._step()
        self.call(work)

    def set_media_faults(self, **faults: Any) -> None:
        if self.proxy is None:
            raise RuntimeError("start the fleet with FleetConfig.media_faults to inject media faults")
        def work() -> None:
            for key, value in faults.items():
                setattr(self.proxy.faults, key, value)
        self.call(work)

    def add_hook(self, delivered: Callable[[str, dict[str, Any], float], None] | None = None,
                 started: Callable[[str, str, float, float], None] | None = None) -> None:
        """``delivered(node_id, event, wall_time)`` when an event is PUBACKed; ``started(node_id, item_id,
        true_actual_start, scheduled_start)`` when a playback starts. Hooks run on the loop thread."""
        def work() -> None:
            if delivered is not None:
                self.delivered_hooks.append(delivered)
            if started is not None:
                self.started_hooks.append(started)
        self.call(work)
