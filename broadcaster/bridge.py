"""MQTT bridge: the only panel code that talks to the broker (paho-mqtt 2.x).

Publishes what the service layer hands it; feeds node → panel messages back through a queue and one
worker thread, so slow database writes never stall paho's network loop. The topic prefix lives in
``devices.protocol.Topics``; the service layer never sees paho.

One process (SQLite, or ``consumer_id`` not given): one connection, client id ``MQTT_CLIENT_ID``, persistent
session; it publishes, takes the nodes' messages and carries the panel's presence (docs/protocol.md §6.6).

Several processes (PostgreSQL, broadcaster/leader.py): each process publishes on a connection of its own
(``<MQTT_CLIENT_ID>-<host>-<pid>``, clean session, no will, no subscription), and only the leader opens the
**consumer** connection (``start_consuming``): client id ``MQTT_CLIENT_ID`` itself, persistent session, the
subscriptions, the presence and its will. The consumer's session is the deployment's, not a process's: while
no process leads, the broker queues the nodes' QoS 1 messages in it, and the next leader receives them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.protocol import format_ts

log = logging.getLogger(__name__)


class MqttBridge:
    #: Most messages handed to ``PanelService.ingest_batch`` at once (one transaction per run of events).
    BATCH = 1000
    #: Longest the worker holds inbound messages back while plans are being published.
    MAX_HOLD_S = 5.0

    def __init__(
        self,
        service,  # broadcaster.services.PanelService (not imported: avoids a cycle)
        host: str,
        port: int,
        *,
        client_id: str = "loaphuong-panel",
        username: str = "",
        password: str = "",
        keepalive: int = 30,
        consumer_id: str | None = None,
    ) -> None:
        """``consumer_id``: several processes — ``client_id`` publishes only; ``start_consuming`` opens the
        consumer connection under ``consumer_id`` (the leader's). None: one connection does both, as always."""
        self.service = service
        self.host = host
        self.port = port
        self.topics = service.topics
        self.username = username
        self.password = password
        self.keepalive = keepalive
        self.consumer_id = consumer_id
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self.connected = threading.Event()
        #: Set while this process's consumer connection is up (one process: the one connection).
        self.consuming = threading.Event()
        self._consumer_lock = threading.Lock()
        # One process: a persistent session, so that events nodes send while the panel is down are queued by
        # the broker. Several: the publishing connection is the process's own and needs no session.
        self.client = self._new_client(client_id, consumer=consumer_id is None)
        #: The connection that takes the nodes' messages: the one client, or the leader's (start_consuming).
        self.consumer: mqtt.Client | None = self.client if consumer_id is None else None
        self._worker = threading.Thread(target=self._work, name="mqtt-ingest", daemon=True)

    def _new_client(self, client_id: str, *, consumer: bool) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not consumer, protocol=mqtt.MQTTv311
        )
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        if consumer:
            client.will_set(self.topics.panel_status(), self._panel_status("offline"), qos=1, retain=True)
        client.max_inflight_messages_set(1000)  # a province-wide alert is one command per node
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @staticmethod
    def _panel_status(state: str) -> bytes:
        return json.dumps({"state": state, "at": format_ts(datetime.now(UTC))}).encode()

    # ---------------------------------------------------------------- lifecycle
    def start(self, wait: float = 10.0) -> None:
        self._worker.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        if wait and not self.connected.wait(wait):
            log.warning("MQTT broker %s:%s not reachable yet; retrying in the background", self.host, self.port)

    def stop(self) -> None:
        self.stop_consuming(status="stopped")
        if self.consumer is self.client and self.connected.is_set():
            info = self.client.publish(self.topics.panel_status(), self._panel_status("stopped"), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2)
        self.consuming.clear()
        self.client.disconnect()
        self.client.loop_stop()
        self._inbox.put(None)
        self._worker.join(5)

    def start_consuming(self, wait: float = 5.0) -> None:
        """Several processes, this one the leader: open the consumer connection (client id ``consumer_id``) and
        wait up to ``wait`` s for it (it keeps retrying in the background)."""
        with self._consumer_lock:
            if self.consumer_id is None or self.consumer is not None:
                return
            self.consumer = self._new_client(self.consumer_id, consumer=True)
            self.consumer.connect_async(self.host, self.port, keepalive=self.keepalive)
            self.consumer.loop_start()
        if wait and not self.consuming.wait(wait):
            log.warning("MQTT broker %s:%s: the consumer connection is not up yet; retrying in the background",
                        self.host, self.port)

    def stop_consuming(self, status: str | None = None) -> None:
        """Several processes, leadership lost or given up: close the consumer connection at once. A clean
        disconnect (no will), without unsubscribing: the session and its subscriptions stay at the broker, which
        queues the nodes' messages for the next leader. ``status`` ("stopped"): presence published first."""
        with self._consumer_lock:
            consumer = self.consumer
            if self.consumer_id is None or consumer is None:
                return
            self.consumer = None
            was_up = self.consuming.is_set()
            self.consuming.clear()
            if status and was_up:
                info = consumer.publish(self.topics.panel_status(), self._panel_status(status), qos=1, retain=True)
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(2)
            consumer.disconnect()
            consumer.loop_stop()

    # ---------------------------------------------------------------- publishing (Publisher protocol)
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        # While disconnected paho queues the message and sends it on reconnect.
        self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---------------------------------------------------------------- callbacks (paho thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        if client is self.consumer:
            log.info("connected to MQTT broker %s:%s%s", self.host, self.port,
                     " (consumer: the leader's session)" if self.consumer_id is not None else "")
            client.subscribe(
                [(self.topics.all_nodes(leaf), 1) for leaf in ("status", "events", "ack", "plan_request")]
            )
            client.publish(self.topics.panel_status(), self._panel_status("online"), qos=1, retain=True)
            self.consuming.set()
            # The broker may have lost retained plans (a restart without persistence). One process: republish at
            # every connect. The leader of several: only when the broker lost its session too (a takeover finds
            # the session, and the retained plans, where the previous leader left them).
            if self.consumer_id is None or not flags.session_present:
                self._inbox.put(("__republish__", b""))
        else:
            log.info("connected to MQTT broker %s:%s (publishing)", self.host, self.port)
        if client is self.client:
            self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is self.client:
            self.connected.clear()
        if client is self.consumer:
            self.consuming.clear()
        if reason_code != 0:
            log.warning("MQTT connection lost (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload)))

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        """Hand queued messages to the service in batches (whatever has queued up, at most BATCH)."""
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            # Proof of play can wait a moment; a plan going out to the whole fleet should not share the
            # interpreter with storing its own echoes. Bounded, so ingest never starves.
            self.service.publication_idle.wait(self.MAX_HOLD_S)
            self._handle(batch)
            for _ in batch:
                self._inbox.task_done()
            if stop:
                return

    def _handle(self, batch: list[tuple[str, bytes]]) -> None:
        messages: list[tuple[str, bytes]] = []
        for topic, payload in batch:
            if topic != "__republish__":
                messages.append((topic, payload))
                continue
            self._ingest(messages)
            messages = []
            try:
                self.service.republish_retained()
            except Exception:  # noqa: BLE001
                log.exception("failed to republish retained plans")
        self._ingest(messages)

    def _ingest(self, messages: list[tuple[str, bytes]]) -> None:
        if not messages:
            return
        try:
            self.service.ingest_batch(messages)
        except Exception:  # noqa: BLE001 — the worker must outlive any bad message
            log.exception("failed to handle %d messages", len(messages))

    @property
    def backlog(self) -> int:
        """Inbound messages received but not yet taken by the worker (approximate: the queue's size)."""
        return self._inbox.qsize()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until queued inbound messages are processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._inbox.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
