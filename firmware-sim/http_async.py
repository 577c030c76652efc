"""Media downloads for the scale simulator: a small HTTP/1.1 GET client on asyncio streams, and a
fault-injecting forward proxy the simulated nodes can be pointed at.

The client reads ``Content-Length`` and ``chunked`` bodies (or up to EOF) with ``Connection: close`` — all a
node needs to fetch one file from the panel. The proxy is a real TCP server between the nodes and the panel
(the nodes use it the way a device uses an HTTP proxy: absolute-form request line), so every fault a node sees
is one it would see on a network: slow bytes, ``503`` answers, connections dropped in the middle of a body,
flipped bytes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_BODY = 64 * 1024 * 1024


class HttpError(Exception):
    """The download did not complete (network error, truncated body, bad answer)."""


async def http_get(url: str, headers: dict[str, str] | None = None, *, proxy: tuple[str, int] | None = None,
                   timeout: float = 30.0) -> tuple[int, bytes]:
    """``GET url`` → ``(status, body)``. Raises :class:`HttpError` when the exchange is cut short."""
    try:
        return await asyncio.wait_for(_get(url, headers or {}, proxy), timeout)
    except TimeoutError as exc:
        raise HttpError(f"timed out after {timeout:.0f} s") from exc
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        raise HttpError(f"{type(exc).__name__}: {exc}") from exc


async def _get(url: str, headers: dict[str, str], proxy: tuple[str, int] | None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported by the simulator, not {parts.scheme!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = url if proxy else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(*(proxy or (host, port)))
    try:
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close", "User-Agent: loaphuong-sim"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def stream_get(url: str, on_data: Callable[[bytes], bool], *, timeout: float = 10.0) -> int:
    """``GET url`` and hand each piece of the body to ``on_data`` as it arrives (a live stream); stop early when
    ``on_data`` returns False. Returns the status; raises :class:`HttpError` when the exchange breaks."""
    parts = urlsplit(url)
    try:
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are supported by the simulator, not {parts.scheme!r}")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 80), timeout)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            writer.write((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
                          "User-Agent: loaphuong-sim\r\n\r\n").encode("latin-1"))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(head.split(b"\r\n", 1)[0].split()[1])
            if status >= 400:
                return status
            chunked = b"transfer-encoding: chunked" in head.lower()
            while True:
                if chunked:
                    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)).split(b";")[0], 16)
                    if size == 0:
                        return status
                    piece = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
                    piece = piece[:-2]
                else:
                    piece = await asyncio.wait_for(reader.read(65536), timeout)
                    if not piece:
                        return status
                if not on_data(piece):
                    return status
        finally:
            writer.close()
    except TimeoutError as exc:
        raise HttpError(f"timed out after {timeout:.0f} s") from exc
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        raise HttpError(f"{type(exc).__name__}: {exc}") from exc


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"bad status line {status_line!r}") from exc
    fields = {}
    for line in header_lines:
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > MAX_BODY:
                raise ValueError("body too large")
        return status, bytes(body)
    if "content-length" in fields:
        length = int(fields["content-length"])
        if length > MAX_BODY:
            raise ValueError("body too large")
        return status, await reader.readexactly(length)
    return status, await reader.read(MAX_BODY)


@dataclass
class MediaFaults:
    """What the proxy does to each request (probabilities 0..1; changed at run time)."""

    fail_rate: float = 0.0  # answer 503 instead of forwarding
    drop_rate: float = 0.0  # send the headers and half the body, then cut the connection
    corrupt_rate: float = 0.0  # flip one byte of the body (the node's sha256 check must catch it)
    delay_s: float = 0.0  # wait this long before answering (a slow server)
    rate_bps: int = 0  # throttle the body to this many bytes per second (0: unlimited)


class FaultProxy:
    """A forward HTTP proxy on 127.0.0.1 that injects :class:`MediaFaults` into media downloads."""

    def __init__(self, faults: MediaFaults | None = None, seed: int | None = None) -> None:
        self.faults = faults or MediaFaults()
        self.rng = random.Random(seed)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.counts = {"requests": 0, "failed": 0, "dropped": 0, "corrupted": 0}

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return "127.0.0.1", self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, url, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    key, value = line.split(":", 1)
                    if key.strip().lower() not in ("host", "connection", "proxy-connection"):
                        headers[key.strip()] = value.strip()
            self.counts["requests"] += 1
            f = self.faults
            if f.delay_s:
                await asyncio.sleep(f.delay_s)
            if method != "GET" or self.rng.random() < f.fail_rate:
                self.counts["failed"] += 1
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            status, body = await http_get(url, headers)
            if status == 200 and body and self.rng.random() < f.corrupt_rate:
                self.counts["corrupted"] += 1
                pos = self.rng.randrange(len(body))
                body = body[:pos] + bytes((body[pos] ^ 0xFF,)) + body[pos + 1 :]
            drop = status == 200 and len(body) > 1 and self.rng.random() < f.drop_rate
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode("latin-1"))
            send = body[: len(body) // 2] if drop else body
            if f.rate_bps:
                step = max(1, f.rate_bps // 20)
                for i in range(0, len(send), step):
                    writer.write(send[i : i + step])
                    await writer.drain()
                    await asyncio.sleep(0.05)
            else:
                writer.write(send)
            await writer.drain()
            if drop:
                self.counts["dropped"] += 1
                writer.transport.abort()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, HttpError):
            pass
        finally:
            writer.close()
