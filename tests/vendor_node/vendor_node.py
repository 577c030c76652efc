"""Third-party Loa Phường node (protocol v1) written from docs/protocol.md alone; playback = busy for duration_ms."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger("vendor_node")
FIRMWARE, MAX_PAYLOAD, MAX_INT, OUTBOX_MAX = "vendor-loa 0.1", 262_144, 2**53 - 1, 10_000
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
NODE_RE, SHA_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$"), re.compile(r"^[0-9a-f]{64}$")
URL_RE = re.compile(r"^https?://[^/\s]+")
RANK = {"normal": 0, "priority": 1, "emergency": 2}


class Refused(Exception):
    """A payload on plan/cmd that must be dropped; str(exc) is the §12 reason."""


def fmt(t: float) -> str:
    ms = int(round(t * 1000))
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_time(s: Any) -> float:
    if not isinstance(s, str) or not TIME_RE.match(s):
        raise ValueError("not an RFC 3339 UTC time with Z")
    base, _, frac = s[:-1].partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)  # also rejects 2026-02-30
    return dt.timestamp() + (int(frac.ljust(6, "0")) / 1e6 if frac else 0.0)


def is_int(v: Any, lo: int = -MAX_INT, hi: int = MAX_INT) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_time(v: Any) -> bool:
    try:
        return parse_time(v) is not None
    except ValueError:
        return False


def _walk(v: Any):
    yield v
    children = [x for kv in v.items() for x in kv] if isinstance(v, dict) else v if isinstance(v, list) else []
    for child in children:
        yield from _walk(child)


def _strict(pairs_or_name: Any) -> dict:
    """json.loads hook: refuse NaN/Infinity (not JSON) and duplicate keys (ambiguous under a signature)."""
    if isinstance(pairs_or_name, str) or len({k for k, _ in pairs_or_name}) != len(pairs_or_name):
        raise ValueError(f"invalid constant or duplicate key in {str(pairs_or_name)[:40]}")
    return dict(pairs_or_name)


def decode_signed(raw: bytes, key: Ed25519PublicKey) -> dict:
    """§5 + §12: size, UTF-8, JSON object, valid Unicode, signature, no floats. Returns the verified object."""
    if len(raw) > MAX_PAYLOAD:
        raise Refused(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("payload is not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_strict, parse_constant=_strict)
    except ValueError as exc:
        raise Refused(f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Refused("payload is not a JSON object")
    try:
        [v.encode("utf-8") for v in _walk(obj) if isinstance(v, str)]
    except UnicodeEncodeError:
        raise Refused("payload contains a string that is not valid Unicode") from None
    sig_b64 = obj.get("signature")
    if sig_b64 is None or sig_b64 == "":
        raise Refused("unsigned payload")
    try:
        sig = base64.b64decode(sig_b64 if isinstance(sig_b64, str) else 0, validate=True)
    except (ValueError, TypeError):
        raise Refused("signature is not base64") from None
    if any(isinstance(v, float) for v in _walk(obj)):
        raise Refused("floating-point numbers are not allowed in signed payloads")
    body = {k: v for k, v in obj.items() if k != "signature"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    try:
        if len(sig) != 64:
            raise InvalidSignature
        key.verify(sig, canon)
    except InvalidSignature:
        raise Refused("bad signature") from None
    return obj


def _s(lo: int = 0, hi: int = 10**9, pat: re.Pattern | None = None):
    return lambda v: isinstance(v, str) and lo <= len(v) <= hi and (pat is None or pat.match(v))


def _i(lo: int = -MAX_INT):
    return lambda v: is_int(v, lo)


# field: (required, check) — a missing or null optional field takes its default (§4)
COMMON = {"protocol": (False, lambda v: is_int(v) and v == 1), "node_id": (True, _s(pat=NODE_RE))}
PLAN = {**COMMON, "type": (False, lambda v: v == "plan"), "version": (True, _i(1)), "generated_at": (True, _is_time),
        "valid_until": (True, _is_time), "items": (False, lambda v: isinstance(v, list) and len(v) <= 2000)}
ITEM = {"id": (True, _s(1, 128)), "start": (True, _is_time), "media": (True, lambda v: isinstance(v, dict)),
        "priority": (False, lambda v: v in tuple(RANK)), "title": (False, _s(0, 300)),
        "max_late_ms": (False, _i(0)), "schedule_id": (False, _s())}
MEDIA = {"url": (True, _s(pat=URL_RE)), "sha256": (True, _s(pat=SHA_RE)), "bytes": (True, _i(1)),
         "duration_ms": (True, _i(1)), "content_type": (False, _s())}
COMMAND = {**COMMON, "type": (False, lambda v: v == "command"), "id": (True, _s(8, 64)), "name": (True, _s()),
           "args": (False, lambda v: isinstance(v, dict)), "issued_at": (True, _is_time),
           "expires_at": (True, _is_time)}


def check(d: dict, spec: dict, path: str = "") -> None:
    for k, (required, ok) in spec.items():
        if d.get(k) is None:
            if required:
                raise ValueError(f"{path}{k}: field required")
        elif not ok(d[k]):
            raise ValueError(f"{path}{k}: invalid value {json.dumps(d[k], ensure_ascii=False)[:80]}")
    if any(isinstance(v, int) and not isinstance(v, bool) and not is_int(v) for v in _walk(d)):
        raise ValueError(f"{path or 'payload'}: integer outside ±(2^53 - 1)")


def validate_plan(p: dict) -> None:
    check(p, PLAN)
    ids = [it.get("id") if isinstance(it, dict) else None for it in p.get("items") or []]
    for i, it in enumerate(p.get("items") or []):
        if not isinstance(it, dict):
            raise ValueError(f"items.{i}: object required")
        check(it, ITEM, f"items.{i}.")
        check(it["media"], MEDIA, f"items.{i}.media.")
        if ids.index(it["id"]) != i:
            raise ValueError(f"items.{i}.id: duplicate item id {it['id']!r}")


def _opt(d: dict, k: str, default: Any) -> Any:
    return default if d.get(k) is None else d[k]


def item_key(it: dict) -> str:
    """§7.4: the same item across plan versions = same id, start and media.sha256."""
    return f"{it['id']}|{round(parse_time(it['start']) * 1000)}|{it['media']['sha256']}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class VendorNode:
    def __init__(self, node_id: str, token: str, broker_host: str, broker_port: int, panel_public_key_b64: str,
                 data_dir: str | Path, topic_prefix: str = "loaphuong", firmware: str = FIRMWARE) -> None:
        self.node_id, self.token, self.firmware = node_id, token, firmware
        self.host, self.port = broker_host, broker_port
        self.key = Ed25519PublicKey.from_public_bytes(base64.b64decode(panel_public_key_b64, validate=True))
        self.dir = Path(data_dir)
        self.media_dir, self.outbox_dir = self.dir / "media", self.dir / "outbox"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        root = f"{topic_prefix}/v1/nodes/{node_id}"
        self.t_plan, self.t_cmd, self.t_status, self.t_events, self.t_ack = (
            f"{root}/{leaf}" for leaf in ("plan", "cmd", "status", "events", "ack"))
        self.plays: list[dict] = []  # what the "speaker" did
        self.events: list[dict] = []  # every event emitted (also kept for tests)
        self.acks: list[dict] = []
        self._lock = threading.RLock()
        self._wake, self._media_wake, self._stopping = threading.Event(), threading.Event(), threading.Event()
        self._connected, self._plan, self._playing = False, None, None
        self._ready: set[str] = set()  # verified sha256 on disk
        self._fetch: dict[str, dict] = {}  # sha256 -> retry state
        self._inflight: dict[int, Any] = {}  # seq -> MQTTMessageInfo
        self._threads: list[threading.Thread] = []
        self.client: mqtt.Client | None = None
        try:
            saved = json.loads((self.dir / "state.json").read_text("utf-8"))
        except (OSError, ValueError):
            saved = {}
        self.state = {"session": 0, "seq": 0, "volume": 80, "outcomes": {}, "commands": {}, "ready_sent": [],
                      "playing": None, "results": {}, **saved}

    def _save(self) -> None:
        now = time.time()
        self.state["commands"] = {k: v for k, v in self.state["commands"].items() if v >= now}
        self.state["results"] = {k: v for k, v in self.state["results"].items() if k in self.state["commands"]}
        self.state["outcomes"] = {k: v for k, v in self.state["outcomes"].items() if v[1] > now - 7 * 86400}
        _atomic_write(self.dir / "state.json", json.dumps(self.state).encode())

    # ------------------------------------------------------------------ lifecycle (§10, §11)
    def start(self) -> None:
        with self._lock:
            self.state["session"] += 1
            self._save()
            for f in self.media_dir.iterdir():  # §7.1: re-hash at boot, delete what no longer matches
                if f.suffix or hashlib.sha256(f.read_bytes()).hexdigest() != f.name:
                    f.unlink()
                else:
                    self._ready.add(f.name)
            try:  # §7.4: the persisted plan is verified again
                plan = decode_signed((self.dir / "plan.json").read_bytes(), self.key)
                validate_plan(plan)
                self._plan = plan if plan["node_id"] == self.node_id else None
            except (OSError, Refused, ValueError):
                self._plan = None
            if self.state["playing"]:  # power was lost while playing: report, never replay
                p, self.state["playing"] = self.state["playing"], None
                self._playing = {**p, "key": item_key(p["item"])}
                self.plays.append({"item_id": p["item"]["id"], "sha256": p["item"]["media"]["sha256"],
                                   "scheduled_start": parse_time(p["item"]["start"]), "actual_start": p["actual"]})
                self._end("interrupted")
        for target in (self._scheduler, self._fetcher):
            self._threads.append(threading.Thread(target=target, daemon=True, name=f"{self.node_id}-{target.__name__}"))
            self._threads[-1].start()
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.node_id,
                                      clean_session=False, protocol=mqtt.MQTTv311)
        c.username_pw_set(self.node_id, self.token)
        will = {"type": "status", "protocol": 1, "node_id": self.node_id, "state": "offline",
                "session": self.state["session"]}
        c.will_set(self.t_status, json.dumps(will), qos=1, retain=True)
        c.reconnect_delay_set(1, 30)
        c.on_connect, c.on_message = self._on_connect, self._on_message
        c.on_disconnect = lambda *_: setattr(self, "_connected", False)
        c.connect_async(self.host, int(self.port), keepalive=15)
        c.loop_start()

    def stop(self) -> None:
        """Clean shutdown (§10): cut with `shutdown`, flush the outbox briefly, retained `stopped`, DISCONNECT."""
        self._stopping.set()
        with self._lock:
            if self._playing:
                self._end("shutdown")
        deadline = time.monotonic() + 2
        while self._inflight and self._connected and time.monotonic() < deadline:
            with self._lock:
                self._reap()
            time.sleep(0.02)
        with self._lock:  # from here on, events only go to the outbox (sent after the next boot)
            was_connected, self._connected = self._connected, False
        if self.client is not None:
            if was_connected:
                self.client.publish(self.t_status, json.dumps(self._status("stopped")), qos=1,
                                    retain=True).wait_for_publish(2)
            self.client.disconnect()
            self.client.loop_stop()
        self._wake.set()
        self._media_wake.set()
        for t in self._threads:
            t.join(5)

    # ------------------------------------------------------------------ MQTT
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:  # paho backs off and retries (§2)
            log.warning("%s: CONNACK refused: %s", self.node_id, reason_code)
            return
        with self._lock:
            self._publish_status(force=True)
            client.subscribe([(self.t_plan, 1), (self.t_cmd, 1)])
            self._inflight.clear()
            for f in sorted(self.outbox_dir.glob("*.json")):  # §8: resend the outbox in seq order first
                self._inflight[int(f.stem)] = client.publish(self.t_events, f.read_bytes(), qos=1)
            self._connected = True

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if msg.topic == self.t_plan:
                self._on_plan(msg.payload)
            elif msg.topic == self.t_cmd:
                self._on_cmd(msg.payload, msg.retain)
        except Exception:  # one bad message must not kill the network thread
            log.exception("%s: handling %s", self.node_id, msg.topic)

    def _status(self, state: str = "online") -> dict:
        st = {"type": "status", "protocol": 1, "node_id": self.node_id, "state": state,
              "session": self.state["session"], "at": fmt(time.time()), "firmware": self.firmware,
              "plan_version": self._plan["version"] if self._plan else None, "volume": self.state["volume"],
              "playing": self._playing["item"]["id"] if self._playing else None}
        return {k: v for k, v in st.items() if v is not None}

    def _publish_status(self, force: bool = False) -> None:
        if self.client is not None and (self._connected or force):  # never let paho queue stale statuses
            self.client.publish(self.t_status, json.dumps(self._status(), ensure_ascii=False), qos=1, retain=True)

    def _event(self, name: str, **fields: Any) -> None:
        """§8: persist seq, write to the outbox, then publish; the entry leaves the outbox on PUBACK."""
        with self._lock:
            seq = self.state["seq"] = self.state["seq"] + 1
            self._save()
            ev = {"type": "event", "protocol": 1, "node_id": self.node_id, "seq": seq, "at": fmt(time.time()),
                  "event": name, **{k: v for k, v in fields.items() if v is not None}}
            data = json.dumps(ev, ensure_ascii=False).encode("utf-8")
            _atomic_write(self.outbox_dir / f"{seq:012d}.json", data)
            for old in sorted(self.outbox_dir.glob("*.json"))[:-OUTBOX_MAX]:
                old.unlink(missing_ok=True)
            self.events.append(ev)
            if self._connected and self.client is not None:
                self._inflight[seq] = self.client.publish(self.t_events, data, qos=1)

    def _reap(self) -> None:
        for seq, info in list(self._inflight.items()):
            if info.is_published():
                (self.outbox_dir / f"{seq:012d}.json").unlink(missing_ok=True)
                del self._inflight[seq]

    # ------------------------------------------------------------------ plan (§6.1)
    def _on_plan(self, raw: bytes) -> None:
        if not raw:
            return
        with self._lock:
            held = self._plan["version"] if self._plan else None
            try:
                plan = decode_signed(raw, self.key)
                try:
                    validate_plan(plan)
                except ValueError as exc:
                    raise Refused(f"invalid plan: {exc}") from None
                if plan["node_id"] != self.node_id:
                    raise Refused(f"addressed to '{plan['node_id']}', not '{self.node_id}'")
                if held is not None and plan["version"] < held:
                    raise Refused(f"replayed or stale plan: version {plan['version']} < held {held}")
            except Refused as exc:
                log.warning("%s: plan rejected: %s", self.node_id, exc)
                return self._event("plan_rejected", plan_version=held, reason=str(exc)[:500])
            if plan["version"] == held:
                return
            _atomic_write(self.dir / "plan.json", raw)
            keys = {item_key(it) for it in _opt(plan, "items", [])}
            if self._playing and self._playing["key"] not in keys:
                self._end("removed")
            self._plan = plan
            self.state["ready_sent"] = [k for k in self.state["ready_sent"] if k in keys]
            self._save()
            self._event("plan_applied", plan_version=plan["version"])
            self._publish_status()
        self._wake.set()
        self._media_wake.set()

    # ------------------------------------------------------------------ commands (§9)
    def _on_cmd(self, raw: bytes, retained: bool) -> None:
        with self._lock:
            try:
                cmd = decode_signed(raw, self.key)
                try:
                    check(cmd, COMMAND)
                except ValueError as exc:
                    raise Refused(f"invalid command: {exc}") from None
                if cmd["node_id"] != self.node_id:
                    raise Refused(f"addressed to '{cmd['node_id']}', not '{self.node_id}'")
                if retained:
                    raise Refused(f"retained command {cmd['id']}")
            except Refused as exc:
                return self._event("command_rejected", reason=str(exc)[:500])
            cid, name, args, expires = cmd["id"], cmd["name"], _opt(cmd, "args", {}), parse_time(cmd["expires_at"])
            if cid in self.state["commands"]:  # §9: a duplicate gets the first ack again, is not executed again
                if cid not in self.state["results"]:  # accepted, never answered: a restart came in between
                    return self._ack(cid, "error", error="not completed: the node restarted")
                return self._publish_ack(self.state["results"][cid])
            if time.time() > expires:
                return self._ack(cid, "rejected", error=f"expired at {cmd['expires_at']}")
            self.state["commands"][cid] = expires
            self._save()
            if name == "ping":
                self._ack(cid, "ok", {"time": fmt(time.time())})
            elif name == "resync":
                self._publish_status()
                for f in self._fetch.values():
                    f["next"] = 0
                self._media_wake.set()
                self._ack(cid, "ok", {"plan_version": self._plan["version"] if self._plan else None})
            elif name == "stop":
                stopped = self._playing["item"]["id"] if self._playing else None
                if self._playing:
                    self._end("stopped")
                self._ack(cid, "ok", {"stopped": stopped})
            elif name == "set_volume":
                if not is_int(args.get("volume"), 0, 100):
                    return self._ack(cid, "error", error="args.volume must be an integer 0..100")
                self.state["volume"] = args["volume"]
                self._save()
                self._publish_status()
                self._ack(cid, "ok", {"volume": args["volume"]})
            else:
                self._ack(cid, "rejected", error=f"unknown command '{name}'")

    def _ack(self, cid: str, status: str, data: dict | None = None, error: str | None = None) -> None:
        ack = {"type": "ack", "protocol": 1, "node_id": self.node_id, "command_id": cid, "status": status,
               "at": fmt(time.time()), "data": data or {}, **({"error": error} if error else {})}
        if cid in self.state["commands"] and cid not in self.state["results"]:
            self.state["results"][cid] = ack  # the answer to any duplicate, `at` included (§9)
            self._save()
        self._publish_ack(ack)

    def _publish_ack(self, ack: dict) -> None:
        self.acks.append(ack)
        if self.client is not None:
            self.client.publish(self.t_ack, json.dumps(ack, ensure_ascii=False), qos=1)

    # ------------------------------------------------------------------ playback (§7)
    def _item_fields(self, it: dict, pv: int) -> dict:
        return {"plan_version": pv, "item_id": it["id"], "schedule_id": it.get("schedule_id"),
                "sha256": it["media"]["sha256"], "scheduled_start": fmt(parse_time(it["start"]))}

    def _outcome(self, key: str, result: str) -> None:
        self.state["outcomes"][key] = [result, time.time()]
        self._save()

    def _scheduler(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._reap()
                timeout = self._tick()
            self._wake.wait(timeout)
            self._wake.clear()

    def _tick(self) -> float:
        now = time.time()
        wake_at = now + 0.5
        if self._playing and now >= self._playing["end"]:
            self._end(None)
        if self._plan is None or self._stopping.is_set():
            return 0.5
        pv, due = self._plan["version"], []
        for it in _opt(self._plan, "items", []):
            key = item_key(it)
            if key in self.state["outcomes"]:
                continue
            start = parse_time(it["start"])
            last = start + _opt(it, "max_late_ms", 60000) / 1000
            if now < start:
                wake_at = min(wake_at, start)
            elif now > last or it["media"]["sha256"] not in self._ready:
                reason = "stale" if now > last else "media_unavailable"
                self._outcome(key, reason)
                self._event("playback_failed", **self._item_fields(it, pv), reason=reason)
            else:
                due.append((RANK[_opt(it, "priority", "normal")], -start, it, key))
                wake_at = min(wake_at, last)
        if due:
            rank, _, it, key = max(due, key=lambda d: d[:2])  # highest rank, then earliest start
            if self._playing and rank > self._playing["rank"]:
                self._end("preempted")
            if self._playing is None:
                self._start_item(it, key, rank, pv)
        if self._playing:
            wake_at = min(wake_at, self._playing["end"])
        return max(0.0, wake_at - time.time())

    def _start_item(self, it: dict, key: str, rank: int, pv: int) -> None:
        now, start = time.time(), parse_time(it["start"])
        self.state["playing"] = {"item": it, "pv": pv, "actual": now, "rank": rank}
        self._outcome(key, "started")  # persisted before the sound starts: an item never plays twice
        self._playing = {**self.state["playing"], "key": key, "end": now + it["media"]["duration_ms"] / 1000}
        self.plays.append({"item_id": it["id"], "sha256": it["media"]["sha256"], "scheduled_start": start,
                           "actual_start": now, "result": "playing"})
        self._event("playback_started", **self._item_fields(it, pv), actual_start=fmt(now),
                    offset_ms=round((now - start) * 1000))
        self._publish_status()

    def _end(self, reason: str | None) -> None:
        """End the playing item: finished (reason None) or cut (preempted/stopped/removed/shutdown/interrupted)."""
        p = self._playing
        fields = {**self._item_fields(p["item"], p["pv"]), "actual_start": fmt(p["actual"]),
                  "offset_ms": round((p["actual"] - parse_time(p["item"]["start"])) * 1000)}
        self._outcome(p["key"], reason or "finished")
        self.state["playing"], self._playing, self.plays[-1]["result"] = None, None, reason or "finished"
        self._save()
        self._event("playback_failed" if reason else "playback_finished", **fields, reason=reason)
        self._publish_status()
        self._wake.set()

    # ------------------------------------------------------------------ media (§7.1)
    def _fetcher(self) -> None:
        while not self._stopping.is_set():
            timeout, needs = 5.0, {}
            with self._lock:
                for it in _opt(self._plan, "items", []) if self._plan else []:
                    if item_key(it) not in self.state["outcomes"]:  # retried until the item is due
                        needs.setdefault(it["media"]["sha256"], []).append(it)
                pv = self._plan["version"] if self._plan else None
            for sha, items in needs.items():
                if sha not in self._ready:
                    f = self._fetch.setdefault(sha, {"attempt": 0, "next": 0.0, "reason": None})
                    if f["next"] > time.time():
                        timeout = min(timeout, f["next"] - time.time())
                        continue
                    reason = self._download(items[0]["media"])
                    with self._lock:
                        if reason is not None:
                            f["attempt"] += 1
                            delay = min(60.0, 2.0 ** (f["attempt"] - 1)) * random.uniform(0.8, 1.2)
                            f["next"], timeout = time.time() + delay, min(timeout, delay)
                            if reason != f["reason"]:  # first failure and changes of reason only
                                f["reason"] = reason
                                self._event("media_failed", **self._item_fields(items[0], pv),
                                            reason=f"{reason} (attempt {f['attempt']}, retry in {delay:.0f} s)")
                            continue
                        self._ready.add(sha)
                        self._fetch.pop(sha, None)
                with self._lock:
                    for it in [it for it in items if item_key(it) not in self.state["ready_sent"]]:
                        self.state["ready_sent"].append(item_key(it))
                        self._save()
                        self._event("media_ready", **{**self._item_fields(it, pv), "scheduled_start": None})
            self._media_wake.wait(timeout)
            self._media_wake.clear()

    def _download(self, media: dict) -> str | None:
        """Fetch, check size and SHA-256, store by hash. Returns None on success, else a §12 reason."""
        sha, size, part = media["sha256"], media["bytes"], self.media_dir / f"{media['sha256']}.part"
        try:  # requests drops Authorization when a redirect leaves the host (§7.1)
            with requests.get(media["url"], headers={"Authorization": f"Bearer {self.token}"},
                              timeout=(5, 30), stream=True) as r:
                if r.status_code != 200:
                    return f"HTTP {r.status_code}"
                h, n = hashlib.sha256(), 0
                with open(part, "wb") as fh:
                    for chunk in r.iter_content(65536):
                        n += len(chunk)
                        if n > size:
                            break
                        h.update(chunk)
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            if n != size:
                return f"size mismatch: got {'more than ' if n > size else ''}{n} bytes, expected {size}"
            if h.hexdigest() != sha:
                return f"sha256 mismatch: got {h.hexdigest()}"
            os.replace(part, self.media_dir / sha)
            return None
        except (requests.RequestException, OSError) as exc:
            return f"download error: {exc}"[:400]
        finally:
            part.unlink(missing_ok=True)
