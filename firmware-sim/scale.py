"""Scale simulator: thousands of protocol v1 nodes in one process, on one asyncio event loop.

Each :class:`ScaleNode` is the shared node core (:mod:`firmware_sim.core`, the same state machine the protocol
simulator :mod:`firmware_sim.node` drives) plus the I/O of one node: its own MQTT connection, client id,
username and token, clean session 0, keepalive, retained last-will; media fetched over HTTP with its token; its
own (optionally skewed) clock; state, plan and outbox persisted before anything is sent. So every plan and
command is verified (strict decoding and Ed25519), every file's size and sha256 checked, expiry, quiet hours,
pre-emption and the volume profile applied, events numbered and acks given exactly as by the reference node.
Playback is simulated: it lasts ``duration_ms``, nothing is decoded.

What makes 10 000 of them fit in one process (see docs/performance.md, "Fleet") is only how the cores are
multiplexed:

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
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from firmware_sim.core import NodeCore, Playing, verify_media
from firmware_sim.http_async import FaultProxy, HttpError, MediaFaults, http_get, stream_get
from firmware_sim.mqtt_async import CONNACK_REASONS, MqttConnection, connect_packet
from firmware_sim.scale_store import FleetStore

from devices.protocol import Event, EventName, Media, NodeState, Topics, load_public_key

log = logging.getLogger("firmware_sim.scale")

OUTBOX_MAX = 10_000
#: A node with nothing to do re-checks its clock this often (the wall clock may step).
IDLE_TICK_S = 60.0


@dataclass(slots=True)
class NodeCred:
    node_id: str
    token: str
    clock_offset_ms: float = 0.0
    output_fault: str | None = None  # amp_dead | horn_off | stuck_low (firmware_sim.output)


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


class ScaleNode:
    """One simulated node: a :class:`NodeCore` and its I/O on the fleet's event loop (never blocking it).

    It is the core's :class:`firmware_sim.core.NodeIO`. Durability goes through the fleet's group commit: an
    event is in :attr:`outbox` from the moment it is numbered until its PUBACK, but goes on the wire only once
    the commit that holds it (and the state with its seq) is done; an ack likewise.

    Contract with :class:`ScaleFleet` (the multiplexer), all on the loop thread. The fleet drives a node only
    through :meth:`connect`, :meth:`step`, :meth:`media_wanted`, :meth:`publish_status`, :meth:`restore_link`
    and :meth:`power_off`, and reads :attr:`core`, :attr:`conn`, :attr:`connected`, :attr:`outbox`,
    :attr:`next_heartbeat`, :attr:`clock_offset` and :attr:`link_down`. The node reports to the fleet only
    through :meth:`ScaleFleet.count_event`, :meth:`ScaleFleet.event_delivered`, :meth:`ScaleFleet.play_started`,
    :meth:`ScaleFleet.record_play` and :meth:`ScaleFleet.reboot_soon`, and uses the fleet's shared resources
    (``loop``, ``store``, ``topics``, ``public_key``, ``rng``, ``stats``, ``connect_slots``, ``download``,
    ``sha256``, ``media``, ``encode_status``). Everything else is the node's own.
    """

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
        self.topic_plan_request = fleet.topics.plan_request(self.node_id)
        self.core = NodeCore(self.node_id, fleet.public_key, self.now, self, rng=fleet.rng,
                             max_idle_s=IDLE_TICK_S, counts=fleet.stats, output_fault=cred.output_fault,
                             output_sensor=fleet.config.output_sensor)
        self.outbox: OrderedDict[int, bytes] = OrderedDict()  # seq → event, from numbering until PUBACK
        self.durable_seq = 0  # events up to this seq are committed (and may go on the wire)
        self.pending_acks: dict[int, bytes] = {}
        self.link_down = False  # fault injection: the node's network is cut (ScaleFleet.cut_link)
        self._ack_counter = 0
        self.mids: dict[int, tuple[str, int]] = {}
        self.conn: MqttConnection | None = None
        self.connected = False
        self.backoff = 1.0
        self.connected_since = 0.0
        self.booted_at = time.time()
        self.next_heartbeat = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reconnect: asyncio.TimerHandle | None = None
        self._media_timer: asyncio.TimerHandle | None = None
        self._media_pending = False
        self._boot(saved or {})

    # ------------------------------------------------------------------------------------ clock and state
    def now(self) -> float:
        return time.time() + self.clock_offset

    @property
    def halted(self) -> bool:
        return self.core.halted

    def state(self) -> dict[str, Any]:
        """What the store persists (``Persistent``): the core's snapshot."""
        return self.core.snapshot()

    def _boot(self, saved: dict[str, Any]) -> None:
        """Boot (§11 step 1): counters, outcomes, plan, outbox from the store; ``session`` + 1."""
        state = saved.get("state") or None
        for seq, payload in saved.get("outbox", []):
            self.outbox[seq] = payload
        self.durable_seq = max([int((state or {}).get("seq", 0)), *self.outbox])
        # Media are re-checked at boot: only files the fleet's cache holds with the right hash count.
        verified = {sha for sha in (state or {}).get("verified", []) if sha in self.fleet.media}
        self.core.boot(state, saved.get("plan"), verified)

    # ------------------------------------------------------------------------------------ NodeIO
    def persist(self) -> None:
        self.fleet.store.save_state(self)

    def event(self, event: Event, payload: bytes) -> None:
        store = self.fleet.store
        seq = event.seq
        store.save_state(self)
        store.add_outbox(self.node_id, seq, payload)
        self.outbox[seq] = payload
        if len(self.outbox) > OUTBOX_MAX:
            dropped, _ = self.outbox.popitem(last=False)
            store.delete_outbox(self.node_id, dropped)
        store.after_commit(self._committed, seq)
        self.fleet.count_event(event)

    def _committed(self, seq: int) -> None:
        if self.halted:
            return
        self.durable_seq = max(self.durable_seq, seq)
        payload = self.outbox.get(seq)
        if payload is not None:
            self._publish(self.topic_events, payload, tag=("event", seq))

    def ack(self, payload: bytes) -> None:
        # After the command id and result are durable (a replay after a reboot must still be refused).
        self.fleet.store.after_commit(self._send_ack, payload)

    def _send_ack(self, payload: bytes) -> None:
        if self.halted:
            return
        self._ack_counter += 1
        key = self._ack_counter
        self.pending_acks[key] = payload
        self._publish(self.topic_ack, payload, tag=("ack", key))

    def save_plan(self, raw: bytes) -> None:
        self.fleet.store.save_plan(self.node_id, raw)

    def status_changed(self) -> None:
        self.fleet.store.after_commit(self.publish_status)

    def record(self, record: dict[str, Any]) -> None:
        record["clock_offset_ms"] = round(self.clock_offset * 1000, 3)
        self.fleet.record_play(record)

    def started(self, playing: Playing) -> None:
        self.fleet.play_started(self, playing)
        if playing.entry.item.stream is not None:  # relay it: read the stream as it comes (live paging)
            self.fleet.loop.create_task(self._relay(playing))

    async def _relay(self, playing: Playing) -> None:
        """Read a stream item's audio while it plays, noting when the first bytes came (node clock) and how
        many; a clean end of an alert's stream ends the item (docs/protocol.md §7.6)."""
        stream = playing.entry.item.stream
        assert stream is not None

        def on_data(piece: bytes) -> bool:
            if playing.first_audio_at is None:
                playing.first_audio_at = self.now()
                playing.stream_error = None
            playing.stream_bytes += len(piece)
            return self.core.current is playing and not self.halted

        try:
            status = await stream_get(stream.url, on_data)
        except HttpError as exc:
            if playing.first_audio_at is None and self.core.current is playing:
                self.core.stream_error(playing, str(exc))
            return
        if status >= 400:
            if self.core.current is playing:
                self.core.stream_error(playing, f"HTTP {status}")
        elif self.core.current is playing and not self.halted:
            self.core.stream_ended(playing)
            self.step()

    def reboot_requested(self) -> None:
        # The reboot command: the ack goes out after the commit, then a clean restart.
        self.fleet.store.after_commit(self.fleet.reboot_soon, self.node_id)

    def media_wanted(self) -> None:
        if not self._media_pending:
            self._media_pending = True
            self.fleet.loop.call_soon(self._media)

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

    def restore_link(self) -> None:
        """Fault injection ended (:meth:`ScaleFleet.restore_link`): the network is back; a node waiting out its
        back-off reconnects now."""
        self.link_down = False
        if self.conn is None and self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
            self.connect()

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
        conn.publish(self.topic_plan_request, self.core.plan_request(), 1, False)  # §6.7
        for seq, payload in self.outbox.items():  # unacknowledged durable events first, in seq order
            if seq > self.durable_seq:
                break  # not committed yet: sent by its commit callback
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
            self.fleet.event_delivered(self, payload)

    def on_message(self, conn: MqttConnection, topic: str, payload: bytes, retain: bool) -> None:
        if self.halted:
            return
        try:
            if topic == self.topic_plan:
                self.core.on_plan(payload)
            elif topic == self.topic_cmd:
                self.core.on_command(payload, retained=retain)
            else:
                return
        except Exception:  # a bad message must never take the loop down
            log.exception("%s: error handling a message on %s", self.node_id, topic)
        self.step()

    def _publish(self, topic: str, payload: bytes, retain: bool = False, tag: tuple[str, int] | None = None) -> None:
        conn = self.conn
        if conn is not None and conn.connected and not self.halted:
            mid = conn.publish(topic, payload, 1, retain)
            if tag is not None:
                self.mids[mid] = tag

    def publish_status(self) -> None:
        self._publish(self.topic_status, self.fleet.encode_status(self, "online"), retain=True)
        self.next_heartbeat = time.time() + self.fleet.heartbeat_s

    # ------------------------------------------------------------------------------------ media
    def _media(self) -> None:
        """Start the fetches the core asks for; arm a timer for the next retry."""
        self._media_pending = False
        if self.halted:
            return
        if self._media_timer is not None:
            self._media_timer.cancel()
            self._media_timer = None
        todo, next_due = self.core.media_todo()
        for sha, media in todo:
            self.fleet.loop.create_task(self._fetch(sha, media))
        if any(not st.running for st in self.core.fetch.values()):
            self._media_timer = self.fleet.loop.call_later(next_due, self.media_wanted)

    async def _fetch(self, sha: str, media: Media) -> None:
        error: str | None
        try:
            status, body = await self.fleet.download(media.url, sha, self.token)
            if status != 200:
                error = f"HTTP {status}"
            elif len(body) != media.bytes:
                error = verify_media(media, len(body), "")
            else:
                error = verify_media(media, len(body), self.fleet.sha256(body))  # every node checks its bytes
        except HttpError as exc:
            error = f"download error: {exc}"
        if self.halted:
            return
        if error is not None:
            self.fleet.stats["media_failures"] += 1
        try:
            self.core.media_result(sha, error)
        finally:
            self.media_wanted()
            self.step()

    # ------------------------------------------------------------------------------------ playback
    def _on_timer(self) -> None:
        """Note the node clock at once; do the work after every timer due now has noted its own."""
        self._timer = None
        if not self.halted:
            self.fleet.loop.call_soon(self.step, self.now())

    def step(self, now: float | None = None) -> None:
        """Tick the core (at ``now``, node clock, if given) and arm the timer for the next thing to do."""
        if self.halted:
            return
        wake = self.core.step(now)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.fleet.loop.call_later(max(0.0, wake - self.now()), self._on_timer)

    # ------------------------------------------------------------------------------------ lifecycle
    def power_off(self, clean: bool) -> None:
        """Stop this run: clean (end the play with ``shutdown``, ``stopped`` status, DISCONNECT) or a power cut
        (drop the TCP connection, the broker publishes the will; nothing not yet committed survives)."""
        if self.halted:
            return
        if clean:
            self.core.shutdown()
        else:
            self.fleet.store.forget(self.node_id)
        self.core.halt()
        for handle in (self._timer, self._reconnect, self._media_timer):
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
    output_sensor: bool = True  # False: every node reports output_sensor false instead of output_lufs
    extra: dict[str, Any] = field(default_factory=dict)


class ScaleFleet:
    """Many :class:`ScaleNode` on one event loop in one background thread.

    The public methods are thread-safe: they run their work on the loop and wait for it, except the node
    contract (:meth:`encode_status`, :meth:`download`, :meth:`count_event`, :meth:`event_delivered`,
    :meth:`play_started`, :meth:`record_play`, :meth:`reboot_soon`; see :class:`ScaleNode`), which the nodes
    call on the loop thread.
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
        #: Jitter of the nodes' media retries (seeded with ``config.seed`` for reproducible runs).
        self.rng = random.Random(config.seed)
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
            node.step()
            node.media_wanted()
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
    def encode_status(self, node: ScaleNode, state: str) -> bytes:
        return node.core.status(NodeState(state), firmware=self.config.firmware,
                                uptime_s=int(time.time() - node.booted_at), heartbeat_s=max(1, self.heartbeat_s))

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
    def event_delivered(self, node: ScaleNode, payload: bytes) -> None:
        """Node contract: the broker PUBACKed one of ``node``'s events (counted; the delivered hooks run)."""
        self.stats["events_delivered"] += 1
        if self.delivered_hooks:
            data = json.loads(payload)
            wall = time.time()
            for hook in self.delivered_hooks:
                hook(node.node_id, data, wall)

    def count_event(self, event: Event) -> None:
        """Fleet counters from the events the cores produce."""
        stats = self.stats
        stats["events"] += 1
        name = event.event
        if name == EventName.playback_started:
            stats["plays_started"] += 1
        elif name == EventName.playback_finished:
            stats["plays_finished"] += 1
        elif name in (EventName.playback_stopped, EventName.playback_failed):
            stats["plays_cut" if event.actual_start is not None else "plays_failed"] += 1
        elif name == EventName.plan_applied:
            stats["plans_applied"] += 1
        elif name == EventName.plan_rejected:
            stats["plans_rejected"] += 1

    def play_started(self, node: ScaleNode, playing: Playing) -> None:
        """Node contract: ``node`` started a playback (the started hooks get the true, unskewed start)."""
        for hook in self.started_hooks:
            hook(node.node_id, playing.entry.item.id, playing.actual_start - node.clock_offset, playing.entry.start)

    def record_play(self, record: dict[str, Any]) -> None:
        """Node contract: one playback outcome for the JSONL log (written by the ticker, not per record)."""
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
                if (version := n.core.plan_version) is not None:
                    versions[version] = versions.get(version, 0) + 1
            return {
                "nodes": len(self.nodes),
                "connected": sum(1 for n in nodes if n.connected),
                "with_plan": sum(1 for n in nodes if n.core.plan is not None),
                "plan_versions": versions,
                "playing": sum(1 for n in nodes if n.core.current is not None),
                "outbox": sum(len(n.outbox) for n in nodes),
                **self.stats,
            }
        return self.call(work)

    def node_info(self, node_id: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            n = self.nodes[node_id]
            core = n.core
            return {"seq": core.seq, "session": core.session, "connected": n.connected, "volume": core.volume,
                    "plan_version": core.plan_version, "outbox": len(n.outbox), "verified": sorted(core.verified),
                    "playing": core.current.entry.item.id if core.current else None,
                    "plan_items": len(core.plan.items) if core.plan else 0}
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
                node.restore_link()
        self.call(work)

    def reboot(self, node_ids: Iterable[str], clean: bool = False) -> None:
        """Power-cycle nodes: ``clean=False`` is a power cut. Each comes back from its persisted state only
        (plan, counters, outcomes, outbox), with ``session`` + 1."""
        ids = list(node_ids)
        self.call(self._reboot, ids, clean)

    def reboot_soon(self, node_id: str) -> None:
        """Node contract: the reboot command. Called after the commit that holds its ack, so the ack goes out
        first; a clean restart of the node follows shortly."""
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
            node.step()
            node.media_wanted()
            node.connect()

    def set_clock_skew(self, offsets_ms: dict[str, float]) -> None:
        """Step the clock of some nodes (ms added to true time); their timers are re-armed."""
        def work() -> None:
            for nid, off in offsets_ms.items():
                node = self.nodes[nid]
                node.clock_offset = off / 1000.0
                self.creds[nid].clock_offset_ms = off
                node.step()
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
