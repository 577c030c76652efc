"""A minimal MQTT 3.1.1 client as an ``asyncio.Protocol``: thousands of connections on one event loop.

paho drives each client with its own ``select()`` loop (or thread), which stops working past ~1 000 file
descriptors in one process. The scale simulator needs 10 000 clients in one process, so it speaks the few
packets a loudspeaker node needs itself (MQTT 3.1.1, OASIS standard, sections 3.1–3.14):

CONNECT (client id, username/password, clean session, keepalive, retained QoS 1 will) → CONNACK;
PUBLISH QoS 0/1 both ways with PUBACK; SUBSCRIBE → SUBACK; PINGREQ → PINGRESP; DISCONNECT.

QoS 2 is never used by protocol v1. The protocol object only frames packets; what a connection means (the
outbox, re-sending, back-off) is the owner's job, through the :class:`MqttHandler` callbacks.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

CONNACK_REASONS = {
    0: "accepted",
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class MqttProtocolError(Exception):
    """The peer sent something that is not MQTT 3.1.1; the connection is dropped."""


class MqttHandler(Protocol):
    """What a connection reports to its owner (all called on the event loop thread)."""

    def on_connack(self, conn: MqttConnection, session_present: bool, rc: int) -> None: ...

    def on_message(self, conn: MqttConnection, topic: str, payload: bytes, retain: bool) -> None: ...

    def on_puback(self, conn: MqttConnection, packet_id: int) -> None: ...

    def on_lost(self, conn: MqttConnection, exc: Exception | None) -> None: ...


def _str(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise ValueError("MQTT string longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, *, username: str | None, password: str | None, keepalive: int,
                   clean_session: bool, will: tuple[str, bytes, int, bool] | None) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _str(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _str(topic) + _str(message)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    header = _str("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive)
    return _packet(CONNECT << 4, header + payload)


def publish_packet(topic: str, payload: bytes, qos: int, retain: bool, packet_id: int, dup: bool = False) -> bytes:
    first = (PUBLISH << 4) | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = _str(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return _packet(first, body)


class MqttConnection(asyncio.Protocol):
    """One MQTT client connection. Create with ``loop.create_connection(lambda: MqttConnection(...))``;
    the CONNECT goes out as soon as the TCP connection is made."""

    __slots__ = ("handler", "_connect", "transport", "_buf", "_next_id", "_inflight", "connected", "closed",
                 "last_sent", "last_received", "_ping_outstanding")

    def __init__(self, handler: MqttHandler, connect: bytes) -> None:
        self.handler = handler
        self._connect = connect
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._next_id = 0
        self._inflight: set[int] = set()
        self.connected = False  # CONNACK accepted
        self.closed = False
        self.last_sent = 0.0
        self.last_received = 0.0
        self._ping_outstanding = False

    # ---------------------------------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send(self._connect)
        self._connect = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.connected, self.transport = True, False, None
        self.handler.on_lost(self, exc)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self.last_received = asyncio.get_running_loop().time()
        try:
            self._parse()
        except MqttProtocolError as exc:
            self.abort(exc)

    # ---------------------------------------------------------------------------------- parsing
    def _parse(self) -> None:
        buf = self._buf
        pos = 0
        while True:
            if len(buf) - pos < 2:
                break
            length, mult, i = 0, 1, pos + 1
            while True:
                if i >= len(buf):
                    self._trim(pos)
                    return
                byte = buf[i]
                length += (byte & 0x7F) * mult
                mult *= 128
                i += 1
                if not byte & 0x80:
                    break
                if mult > 128**3:
                    raise MqttProtocolError("malformed remaining length")
            end = i + length
            if end > len(buf):
                break
            self._dispatch(buf[pos], bytes(buf[i:end]))
            if self.closed:
                return
            pos = end
        self._trim(pos)

    def _trim(self, pos: int) -> None:
        if pos:
            del self._buf[:pos]

    def _dispatch(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == PUBLISH:
            qos = (first >> 1) & 0x03
            tlen = struct.unpack_from("!H", body)[0]
            topic = body[2 : 2 + tlen].decode("utf-8", "replace")
            pos = 2 + tlen
            packet_id = 0
            if qos:
                packet_id = struct.unpack_from("!H", body, pos)[0]
                pos += 2
            if qos == 2:
                raise MqttProtocolError("QoS 2 is not used by protocol v1")
            self.handler.on_message(self, topic, body[pos:], bool(first & 0x01))
            if qos == 1 and not self.closed:  # acknowledged after the handler ran (it may persist first)
                self._send(_packet(PUBACK << 4, struct.pack("!H", packet_id)))
        elif kind == PUBACK:
            packet_id = struct.unpack_from("!H", body)[0]
            self._inflight.discard(packet_id)
            self.handler.on_puback(self, packet_id)
        elif kind == CONNACK:
            session_present, rc = bool(body[0] & 0x01), body[1]
            self.connected = rc == 0
            self.handler.on_connack(self, session_present, rc)
        elif kind == PINGRESP:
            self._ping_outstanding = False
        elif kind == SUBACK:
            pass  # granted QoS: protocol v1 asks for 1 and works with what the broker grants
        else:
            raise MqttProtocolError(f"unexpected packet type {kind}")

    # ---------------------------------------------------------------------------------- sending
    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.last_sent = asyncio.get_running_loop().time()

    def _packet_id(self) -> int:
        for _ in range(0xFFFF):
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._inflight:
                self._inflight.add(self._next_id)
                return self._next_id
        raise RuntimeError("no free MQTT packet id (65535 messages in flight)")

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Send a PUBLISH; returns the packet id whose PUBACK ``on_puback`` reports (0 for QoS 0)."""
        packet_id = self._packet_id() if qos else 0
        self._send(publish_packet(topic, payload, qos, retain, packet_id))
        return packet_id

    def subscribe(self, topics: list[tuple[str, int]]) -> None:
        packet_id = self._packet_id()
        self._inflight.discard(packet_id)  # SUBACK is not tracked
        body = struct.pack("!H", packet_id) + b"".join(_str(t) + bytes((q,)) for t, q in topics)
        self._send(_packet((SUBSCRIBE << 4) | 0x02, body))

    def ping(self) -> bool:
        """Send PINGREQ; False if the previous one was never answered (the connection is dead)."""
        if self._ping_outstanding:
            return False
        self._ping_outstanding = True
        self._send(bytes((PINGREQ << 4, 0)))
        return True

    def disconnect(self) -> None:
        """Clean end: DISCONNECT (the broker discards the will), then close."""
        if self.transport is not None and not self.closed:
            self._send(bytes((DISCONNECT << 4, 0)))
            self.closed = True
            self.transport.close()

    def abort(self, exc: Exception | None = None) -> None:
        """Drop the TCP connection without DISCONNECT (a power cut / network loss: the will fires)."""
        if self.transport is not None:
            self.transport.abort()
