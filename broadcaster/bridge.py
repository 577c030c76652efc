"""MQTT bridge: the only panel code that talks to the broker (paho-mqtt 2.x).

Publishes what the service layer hands it; feeds node → panel messages back through a queue and one
worker thread, so slow database writes never stall paho's network loop. The topic prefix lives in
``devices.protocol.Topics``; the service layer never sees paho.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
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
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.topics = service.topics
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self.connected = threading.Event()
        # Persistent session: events nodes send while the panel is down are queued by the broker.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        if username:
            self.client.username_pw_set(username, password or None)
        self.client.will_set(self.topics.panel_status(), self._panel_status("offline"), qos=1, retain=True)
        self.client.max_inflight_messages_set(1000)  # a province-wide alert is one command per node
        self.client.reconnect_delay_set(min_delay=1, max_delay=15)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.keepalive = keepalive
        self._worker = threading.Thread(target=self._work, name="mqtt-ingest", daemon=True)

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
        if self.connected.is_set():
            info = self.client.publish(self.topics.panel_status(), self._panel_status("stopped"), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        self._inbox.put(None)
        self._worker.join(5)

    # ---------------------------------------------------------------- publishing (Publisher protocol)
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        # While disconnected paho queues the message and sends it on reconnect.
        self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---------------------------------------------------------------- callbacks (paho thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        log.info("connected to MQTT broker %s:%s", self.host, self.port)
        client.subscribe(
            [(self.topics.all_nodes(leaf), 1) for leaf in ("status", "events", "ack")]
        )
        client.publish(self.topics.panel_status(), self._panel_status("online"), qos=1, retain=True)
        self.connected.set()
        # The broker may have lost retained plans (iotcore keeps none across restarts).
        self._inbox.put(("__republish__", b""))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
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

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until queued inbound messages are processed (tests, shutdown)."""
        import time

        deadline = time.monotonic() + timeout
        while self._inbox.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
