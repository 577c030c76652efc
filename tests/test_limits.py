"""Resource limits (issue 13): a panel that holds up to a hostile internet.

Uploads are bounded in bytes, in length (checked before anything is decoded) and in concurrent decodes (a
bounded queue, then 503 busy); request bodies are bounded per route (413); command arguments are checked
against each command's own model (400, nothing stored); every field a node reports is bounded, and one bad
message never costs the rest of its ingest batch — also end to end through a real broker.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import ADMIN
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from stack import wait_for

import audio.upload
from audio import ffmpeg_exe
from broadcaster import audio_settings as aset
from broadcaster import config as settings
from broadcaster import fleet, limits
from broadcaster.app import create_app, runtime
from broadcaster.errors import ServiceError
from broadcaster.i18n import translate
from broadcaster.models import Announcement, AuditEntry, CommandRecord, Node, NodeEvent
from devices import protocol as proto
from devices.schema_files import load_schema

VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]")


# ------------------------------------------------------------------------------------------------ helpers
def sine(tmp_path: Path, seconds: float, ext: str, *, streamed: bool = False) -> bytes:
    """A real recording: mono speech-like tone, low bitrate (a long file stays small and quick to make)."""
    codec = {"mp3": ["-c:a", "libmp3lame", "-b:a", "16k"], "webm": ["-c:a", "libopus", "-b:a", "12k"],
             "wav": ["-c:a", "pcm_s16le", "-ar", "8000"]}[ext]
    src = ["-f", "lavfi", "-i", f"sine=frequency=240:duration={seconds},volume=0.4", "-ac", "1"]
    if streamed:  # to a pipe: the header cannot say how long it is (a browser's MediaRecorder does the same)
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *src, *codec, "-f", ext, "pipe:1"],
                             capture_output=True, timeout=120, check=True)
        return out.stdout
    path = tmp_path / f"sine-{seconds}.{ext}"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *src, *codec, str(path)],
                   capture_output=True, timeout=120, check=True)
    return path.read_bytes()


def panel(tmp_path: Path, **overrides):
    app = create_app(settings.TestConfig(tmp_path / "panel", **overrides))
    runtime(app).service.create_user(*ADMIN, role="admin")
    return app


class Api:
    def __init__(self, app) -> None:
        self.client = app.test_client()
        token = self.client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}).json
        self.headers = {"Authorization": f"Bearer {token['token']}"}

    def __getattr__(self, method: str):
        return lambda url, **kw: getattr(self.client, method)(url, headers=self.headers, **kw)


def upload(api: Api, data: bytes, name: str = "ghi-am.mp3", title: str = "Tin"):
    return api.post("/api/v1/announcements/upload", data={"file": (io.BytesIO(data), name), "title": title},
                    content_type="multipart/form-data")


def count(service, model) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def web_login(client) -> str:
    def token(url: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)

    r = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token("/login")})
    assert r.status_code in (302, 303), r.status_code
    return token("/announcements/upload")


@pytest.fixture
def ffmpeg_calls(monkeypatch):
    """Every ffmpeg command line the upload validator runs (the real ffmpeg still runs)."""

    calls: list[list[str]] = []
    real = subprocess.run

    def run(cmd, *args, **kw):
        calls.append([str(c) for c in cmd])
        return real(cmd, *args, **kw)

    monkeypatch.setattr(audio.upload.subprocess, "run", run)
    return calls


# ---------------------------------------------------------------------------------------- 1. uploads
def test_defaults_are_bounded():
    cfg = settings.Config()
    assert cfg.MAX_UPLOAD_DURATION_MS == 10 * 60 * 1000
    assert cfg.MAX_CONCURRENT_DECODES == 2 and cfg.DECODE_QUEUE_WAIT_S <= 10
    assert cfg.MAX_REQUEST_BYTES == 1024 * 1024
    assert limits.global_body_limit(cfg) == cfg.MAX_IMPORT_BYTES or \
        limits.global_body_limit(cfg) == cfg.MAX_UPLOAD_BYTES + limits.MULTIPART_SLACK


def test_a_too_long_recording_is_refused_from_its_header_without_decoding_it(tmp_path, ffmpeg_calls):
    app = panel(tmp_path, MAX_UPLOAD_DURATION_MS=60_000)
    service, api = runtime(app).service, Api(app)
    long = sine(tmp_path, 600, "mp3")  # 10 minutes, 1.2 MB at 16 kbit/s
    ffmpeg_calls.clear()
    started = time.monotonic()
    r = upload(api, long, "dai.mp3")
    elapsed = time.monotonic() - started
    assert r.status_code == 400 and r.json["error"]["code"] == "upload_too_long", r.json
    assert "10 phút" in r.json["error"]["message"] and "1 phút" in r.json["error"]["message"]
    # Only the header probe ran: nothing was decoded (no PCM output), so 10 minutes cost nothing.
    assert ffmpeg_calls and not any("pcm_s16le" in c for c in ffmpeg_calls), ffmpeg_calls
    assert elapsed < 5, elapsed
    assert count(service, Announcement) == 0
    runtime(app).db.dispose()


def test_a_recording_without_a_duration_is_decoded_only_up_to_the_limit(tmp_path, ffmpeg_calls):
    app = panel(tmp_path, MAX_UPLOAD_DURATION_MS=20_000)
    service, api = runtime(app).service, Api(app)
    live = sine(tmp_path, 240, "webm", streamed=True)  # 4 minutes, no duration in the header
    ffmpeg_calls.clear()
    r = upload(api, live, "ghi-am.webm")
    assert r.status_code == 400 and r.json["error"]["code"] == "upload_too_long", r.json
    assert "hơn 21 giây" in r.json["error"]["message"]  # "longer than": it stopped one second past the limit
    (decode,) = [c for c in ffmpeg_calls if "pcm_s16le" in c]
    assert decode[decode.index("-t") + 1] == "21.000"  # ffmpeg itself stops there: 4 minutes never decode
    assert count(service, Announcement) == 0
    runtime(app).db.dispose()


@pytest.fixture
def slow_decodes(monkeypatch):
    """Hold every recording in its decode until ``release`` is set; counts how many decode at once."""
    state = {"inside": 0, "peak": 0, "entered": 0}
    lock = threading.Lock()
    release = threading.Event()
    real = aset.process_recording

    def held(*args, **kw):
        with lock:
            state["inside"] += 1
            state["entered"] += 1
            state["peak"] = max(state["peak"], state["inside"])
        try:
            assert release.wait(60)
            return real(*args, **kw)
        finally:
            with lock:
                state["inside"] -= 1

    monkeypatch.setattr(aset, "process_recording", held)
    return state, release


def test_uploads_beyond_the_decode_slots_get_503_busy_quickly(tmp_path, slow_decodes):
    state, release = slow_decodes
    app = panel(tmp_path, MAX_CONCURRENT_DECODES=2, DECODE_QUEUE_LENGTH=1, DECODE_QUEUE_WAIT_S=0.5)
    service = runtime(app).service
    recording = sine(tmp_path, 3, "mp3")
    answers: list = []

    def send(title: str) -> None:
        answers.append(upload(Api(app), recording, title=title))

    first = [threading.Thread(target=send, args=(f"Tin {i}",)) for i in range(2)]
    for t in first:
        t.start()
    wait_for(lambda: state["entered"] == 2, 30, "two decodes running")
    try:
        api = Api(app)
        started = time.monotonic()
        r = upload(api, recording, title="Tin 3")  # waits 0.5 s in the queue, then a clear answer
        waited = time.monotonic() - started
        assert r.status_code == 503, r.json
        assert r.json["error"]["code"] == "busy" and "bận" in r.json["error"]["message"]
        assert r.headers["Retry-After"] == str(limits.RETRY_AFTER_S)
        assert 0.4 <= waited < 5, waited
        # The web form says the same in Vietnamese, never hangs.
        web = app.test_client()
        token = web_login(web)
        page = web.post("/announcements/upload", data={"csrf_token": token, "title": "Tin web",
                                                       "file": (io.BytesIO(recording), "web.mp3")},
                        content_type="multipart/form-data")
        assert page.status_code == 503 and "Máy chủ đang bận" in page.text
        assert state["entered"] == 2 and count(service, Announcement) == 0
    finally:
        release.set()
        for t in first:
            t.join(60)
    assert sorted(a.status_code for a in answers) == [201, 201], [a.json for a in answers]
    assert state["peak"] == 2 and count(service, Announcement) == 2
    assert limits.decode_slots(service).refused == 2
    runtime(app).db.dispose()


def test_the_queue_is_bounded_and_a_slot_frees_for_the_next():
    slots = limits.DecodeSlots(1, 1, 5.0)
    held = threading.Event()
    done = threading.Event()
    results: list[str] = []

    def occupy() -> None:
        with slots.slot():
            held.set()
            done.wait(10)

    def queued() -> None:
        with slots.slot():
            results.append("ran")

    threading.Thread(target=occupy).start()
    assert held.wait(5)
    waiter = threading.Thread(target=queued)
    waiter.start()
    wait_for(lambda: slots.waiting == 1, 5, "one upload waiting")
    started = time.monotonic()
    with pytest.raises(limits.Busy) as busy, slots.slot():
        pass  # the queue is full: refused at once, not after the wait
    assert time.monotonic() - started < 0.5 and busy.value.status == 503 and busy.value.code == "busy"
    assert VIETNAMESE.search(translate(f"error.{busy.value.code}", "vi"))
    done.set()
    waiter.join(10)
    assert results == ["ran"] and slots.active == 0


# ---------------------------------------------------------------------------------- 2. request bodies
def test_request_bodies_are_bounded_per_route(tmp_path):
    app = panel(tmp_path, MAX_UPLOAD_BYTES=3 * 1024 * 1024)
    service, api = runtime(app).service, Api(app)
    assert app.config["MAX_CONTENT_LENGTH"] == max(3 * 1024 * 1024 + limits.MULTIPART_SLACK, 8 * 1024 * 1024)
    big_json = {"title": "T", "text": "a" * (1024 * 1024 + 10)}
    r = api.post("/api/v1/announcements", json=big_json)
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large", r.get_data()[:300]
    r = api.post("/api/v1/nodes/x/commands", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                 content_type="application/json")
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"
    # The upload route takes more than a JSON route (a 2 MB body reaches the validator: not audio), not more
    # than its own bound.
    r = upload(api, b"\x00" * (2 * 1024 * 1024), "rac.mp3")
    assert r.status_code == 400 and r.json["error"]["code"] == "upload_not_audio", r.json
    r = upload(api, b"\x00" * (4 * 1024 * 1024), "to.mp3")
    assert r.status_code == 413 and r.json["error"]["code"] == "upload_too_large" and r.json["error"]["field"] == "file"
    assert count(service, Announcement) == 0
    # On the web: a friendly message on the page, not a bare 413.
    web = app.test_client()
    token = web_login(web)
    r = web.post("/announcements/new", data={"csrf_token": token, "title": "T", "text": "a" * (2 * 1024 * 1024)},
                 headers={"Referer": "http://localhost/announcements/new"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/announcements/new")
    page = web.get(r.headers["Location"]).text
    assert "quá lớn" in page and "1 MB" in page
    assert count(service, Announcement) == 0
    runtime(app).db.dispose()


# --------------------------------------------------------------------------------- 3. command arguments
@pytest.fixture
def node(app, service):
    api = Api(app)
    assert api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"}).status_code == 201
    assert api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-1"}).status_code == 201
    return api


def stored(service) -> tuple[int, int, int]:
    """(command records, audit entries about commands, commands published)."""
    with service.db.session() as s:
        audits = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(("command.send", "policy.refused"))))
    published = [t for t, *_ in service.publisher.messages if t.endswith("/cmd")]
    return count(service, CommandRecord), audits, len(published)


@pytest.mark.parametrize(("name", "args", "field"), [
    ("set_volume", {"volume": 50.5}, "volume"),
    ("set_volume", {"volume": True}, "volume"),
    ("set_volume", {"volume": "50"}, "volume"),  # JSON: a string is not a number (the web form sends digits: fine)
    ("set_volume", {"volume": 101}, "volume"),
    ("set_volume", {}, "volume"),
    ("set_volume", {"volume": 50, "colour": "red"}, "colour"),
    ("play_now", {"announcement_id": 1, "repeat": 2.5}, "repeat"),
    ("play_now", {"announcement_id": 1.5}, "announcement_id"),
    ("play_now", {"announcement_id": 1, "gap_ms": 10**12}, "gap_ms"),
    ("play_now", {"announcement_id": 1, "priority": "now"}, "priority"),
    ("stop", {"alert_id": "A" * 400_000}, "alert_id"),
    ("stop", {"alert_id": "42", "reason": "x"}, "reason"),
    ("ping", {"x": "A" * 400_000}, "x"),
    ("reboot", {"delay": 5}, "delay"),
    ("resync", {"B" * 5000: 1}, "B" * 64),
])
def test_command_arguments_are_checked_against_the_commands_own_model(node, service, name, args, field):
    before = stored(service)
    for path, body in (("/api/v1/nodes/loa-01/commands", {"name": name, "args": args}),
                       ("/api/v1/fleet/commands", {"name": name, "args": args, "node_ids": ["loa-01"]})):
        r = node.post(path, json=body)
        if field is None:
            assert r.status_code == 202, r.json
            continue
        assert r.status_code == 400, (path, r.json)
        # the JSON path of the argument: args.<name> (the web form names the bare field)
        assert r.json["error"]["code"] == "invalid_field" and r.json["error"]["field"] == f"args.{field}", r.json
        assert stored(service) == before, "nothing stored: no command, no audit entry, nothing sent"
        assert len(r.get_data()) < 2000, "the refusal does not echo the oversized value"


def test_a_float_never_leaves_a_pending_command_behind(node, service):
    """The crash of the probe: a float reached the signature (500) after the record was committed."""
    before = stored(service)
    with pytest.raises(ServiceError) as exc:
        service.send_command("loa-01", "set_volume", {"volume": 50.5})
    assert exc.value.code == "invalid_field" and exc.value.status == 400
    with pytest.raises(ServiceError):
        service.send_command("loa-01", "play_now", {"alert_id": "a1", "repeat": 2.0, "media": {}})
    with pytest.raises(ServiceError) as big:  # over what a node accepts: refused, not sent, not stored
        service.send_command("loa-01", "stop", {"pad": "x" * (300 * 1024)})
    assert big.value.status == 413
    assert stored(service) == before
    # A float without a fraction, from a JSON client, is a whole number: sent as an integer.
    r = node.post("/api/v1/nodes/loa-01/commands", json={"name": "set_volume", "args": {"volume": 40.0}})
    assert r.status_code == 202 and r.json["args"] == {"volume": 40}
    (cmd,) = [json.loads(p) for t, p, *_ in service.publisher.messages if t.endswith("/cmd")]
    assert cmd["args"] == {"volume": 40} and isinstance(cmd["args"]["volume"], int)


def test_the_web_command_form_goes_through_the_same_validation(node, app, service):
    web = app.test_client()
    web_login(web)
    token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/fleet").text).group(1)
    form = {"csrf_token": token, "target": "node", "node_id": "loa-01", "next": "/fleet", "repeat": "1",
            "announcement_id": ""}
    before = stored(service)
    r = web.post("/fleet/commands", data={**form, "name": "set_volume", "volume": "50.5"}, follow_redirects=True)
    assert r.status_code == 200 and "Dữ liệu không hợp lệ" in r.text
    assert stored(service) == before
    # The form shows every field (repeat=1 is always there); only the chosen command's own fields are sent.
    r = web.post("/fleet/commands", data={**form, "name": "set_volume", "volume": "35"}, follow_redirects=True)
    assert r.status_code == 200 and "Đã gửi lệnh tới 1 cụm loa" in r.text
    r = web.post("/fleet/commands", data={**form, "name": "resync", "volume": "35"}, follow_redirects=True)
    assert "Đã gửi lệnh tới 1 cụm loa" in r.text
    assert [c.args for c in fleet.commands(service, node_id="loa-01")] == [{}, {"volume": 35}]


# ------------------------------------------------------------------------------ 4. node-reported fields
def event(seq: int, **extra) -> dict:
    return {"type": "event", "protocol": 1, "node_id": "loa-01", "seq": seq, "at": "2026-11-22T22:30:00.180Z",
            "event": "playback_started", "item_id": f"s1-{seq}", "schedule_id": "1",
            "scheduled_start": "2026-11-22T22:30:00.000Z", "actual_start": "2026-11-22T22:30:00.180Z",
            "offset_ms": 180, **extra}


@pytest.mark.parametrize(("model", "payload", "where"), [
    (proto.Status, {"node_id": "n", "state": "online", "session": 1, "firmware": "f" * 101}, "firmware"),
    (proto.Status, {"node_id": "n", "state": "online", "session": 2**31}, "session"),
    (proto.Status, {"node_id": "n", "state": "online", "session": 1, "playing": "p" * 129}, "playing"),
    (proto.Status, {"node_id": "n", "state": "online", "session": 1, "free_bytes": -1}, "free_bytes"),
    (proto.Status, {"node_id": "n", "state": "online", "session": 1, "heartbeat_s": 86_401}, "heartbeat_s"),
    (proto.Event, {**event(1), "item_id": "i" * 129}, "item_id"),
    (proto.Event, {**event(1), "schedule_id": "1" * 65}, "schedule_id"),
    (proto.Event, {**event(1), "offset_ms": 2**31}, "offset_ms"),
    (proto.Event, {**event(1), "command_id": "c" * 65}, "command_id"),
    (proto.Event, {**event(1), "alert_id": "a" * 65}, "alert_id"),
    (proto.Event, {**event(1), "reason": "r" * 501}, "reason"),
    (proto.Ack, {"node_id": "n", "command_id": "c" * 65, "status": "ok", "at": "2026-11-22T22:30:00Z"}, "command_id"),
    (proto.Ack, {"node_id": "n", "command_id": "c1", "status": "error", "at": "2026-11-22T22:30:00Z",
                 "error": "e" * 501}, "error"),
    (proto.Ack, {"node_id": "n", "command_id": "c1", "status": "ok", "at": "2026-11-22T22:30:00Z",
                 "data": {str(i): i for i in range(17)}}, "data"),
    (proto.Ack, {"node_id": "n", "command_id": "c1", "status": "ok", "at": "2026-11-22T22:30:00Z",
                 "data": {"blob": "x" * 5000}}, "data"),
])
def test_every_node_reported_field_is_bounded(model, payload, where):
    with pytest.raises(proto.ProtocolError, match=rf"invalid {model.__name__.lower()}: {where}"):
        proto.parse_model(model, payload)


def test_the_published_schemas_carry_the_bounds():
    status, events, ack = load_schema("status"), load_schema("events"), load_schema("ack")
    assert status["properties"]["session"]["maximum"] == 2**31 - 1
    assert {"maxLength": 100, "type": "string"} in status["properties"]["firmware"]["anyOf"]
    assert {"maxLength": 128, "type": "string"} in events["properties"]["item_id"]["anyOf"]
    assert ack["properties"]["data"]["maxProperties"] == 16
    assert ack["properties"]["command_id"]["maxLength"] == 64


def raw(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def test_one_bad_message_never_costs_the_rest_of_its_batch(node, service):
    topic = service.topics.events("loa-01")
    batch = [
        (topic, raw(event(1))),
        (topic, raw(event(2, reason="r" * 600))),  # over 500 characters: dropped, counted
        (topic, raw(event(3))),
        (topic, raw(event(4)).replace(b'"offset_ms": 180', b'"offset_ms": 1.5')),  # a float
        (topic, raw(event(5, schedule_id="\u00b2"))),  # valid, but no schedule of ours: stored without one
        (topic, raw(event(6, offset_ms=2**40))),  # would overflow the column on PostgreSQL
        (topic, b"{not json"),
        (topic, raw(event(7, item_id="x" * 10_000))),
        (service.topics.status("loa-01"), raw({"node_id": "loa-01", "state": "online", "session": 1,
                                               "firmware": "f" * 10_000})),
        (topic, raw(event(8))),
    ]
    service.ingest_batch(batch)
    with service.db.session() as s:
        seqs = sorted(s.scalars(select(NodeEvent.seq).where(NodeEvent.node_id == "loa-01")))
        schedule_of_5 = s.scalar(select(NodeEvent.schedule_id).where(NodeEvent.seq == 5))
    assert seqs == [1, 3, 5, 8]
    assert schedule_of_5 is None
    assert service.ingest_dropped["invalid"] == 6


def test_end_to_end_a_bad_event_between_good_ones_is_dropped_alone(panel_stack):
    stack = panel_stack
    stack.provision({"to-1": ["loa-01"]})
    service = stack.service
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="loa-01")
    client.username_pw_set("loa-01", stack.tokens["loa-01"])
    client.connect(stack.broker.host, stack.broker.port)
    client.loop_start()
    try:
        topic = service.topics.events("loa-01")
        bad = [raw(event(11, reason="r" * 501)), raw(event(13, offset_ms=2**31)),
               raw(event(14, command_id="c" * 200_000)), b"\xff\xfe not utf-8"]
        sent = [raw(event(10)), bad[0], raw(event(12)), bad[1], bad[2], bad[3], raw(event(15))]
        infos = [client.publish(topic, payload, qos=1) for payload in sent]
        client.publish(service.topics.status("loa-01"),
                       raw({"node_id": "loa-01", "state": "online", "session": 3, "firmware": "v" * 5000}), qos=1)
        client.publish(service.topics.ack("loa-01"),
                       raw({"node_id": "loa-01", "command_id": "c" * 100, "status": "ok",
                            "at": "2026-11-22T22:30:00Z"}), qos=1)
        for info in infos:
            info.wait_for_publish(10)

        def stored_seqs():
            with service.db.session() as s:
                got = sorted(s.scalars(select(NodeEvent.seq).where(NodeEvent.node_id == "loa-01")))
            return got if got == [10, 12, 15] else None

        wait_for(stored_seqs, 20, "the good events stored")
        wait_for(lambda: service.ingest_dropped["invalid"] >= 6, 10, "the bad messages counted")
        with service.db.session() as s:
            firmware = s.scalar(select(Node.firmware).where(Node.node_id == "loa-01"))
        assert firmware is None  # the oversized status was dropped, not truncated into the registry
        # ... and the panel still takes the node's next good message.
        client.publish(topic, raw(event(16)), qos=1).wait_for_publish(10)
        wait_for(lambda: _has_seq(service, 16), 20, "the next good event stored")
    finally:
        client.loop_stop()
        client.disconnect()


def _has_seq(service, seq: int) -> bool:
    with service.db.session() as s:
        return bool(s.scalar(select(func.count()).select_from(NodeEvent).where(NodeEvent.seq == seq)))
