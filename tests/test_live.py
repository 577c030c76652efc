"""Live paging (issue 17 §1; broadcaster/live.py): a leader speaks into the browser and the zones hear her live.

The service and API on a real database with the panel's signed commands checked as a node checks them; then the
whole chain in Chromium with its fake microphone (``--use-file-for-fake-audio-capture``), the panel on a real
broker and simulated nodes that read the live stream: the mouth-to-loudspeaker latency is measured there.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from firmware_sim.scale import FleetConfig, NodeCred, ScaleFleet
from imageio_ffmpeg import get_ffmpeg_exe
from stack import ADMIN, wait_for
from test_emergency import commands
from test_notifications import PW

from broadcaster import live as live_module
from broadcaster.models import Announcement, AuditEntry
from devices.protocol import format_ts, parse_ts

#: The latency the issue asks for: the first audio at a loudspeaker at most this long after the browser began.
MAX_LATENCY_S = 2.0


def opus_webm(seconds: float = 2.0) -> bytes:
    """A real WebM/Opus recording, as MediaRecorder makes (ffmpeg's encoder)."""
    return subprocess.run(
        [get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency=300:duration={seconds}", "-af", "volume=0.5", "-c:a", "libopus", "-b:a", "32k",
         "-f", "webm", "-"], check=True, capture_output=True).stdout


@pytest.fixture
def ward(client, api, service):
    """Zones to-1 (two loudspeakers) and to-2 (one), an officer and a leader with API tokens."""
    for name, role in (("canbo", "officer"), ("lanhdao", "leader")):
        service.create_user(name, PW, role=role)
    for code in ("to-1", "to-2", "to-9"):
        api.post("/api/v1/zones", json={"code": code, "name": f"Tổ {code}"})
    for node_id, zone in (("loa-01", "to-1"), ("loa-02", "to-1"), ("loa-03", "to-2")):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})
    tokens = {n: client.post("/api/v1/auth/token", json={"username": n, "password": PW}).json["token"]
              for n in ("canbo", "lanhdao")}
    service.publisher.messages.clear()

    def call(who: str, method: str, url: str, **kw):
        return client.open(url, method=method, headers={"Authorization": f"Bearer {tokens[who]}",
                                                        **kw.pop("headers", {})}, **kw)

    return call


def test_the_release_policy_decides_who_may_speak_and_a_refusal_sends_nothing(ward, service):
    r = ward("canbo", "POST", "/api/v1/live", json={"zones": ["to-1"]})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    for body, status, code in (({"zones": ["to-1"], "priority": "emergency"}, 400, "invalid_field"),
                               ({"zones": []}, 400, "invalid_field"),
                               ({"zones": ["khong-co"]}, 404, "unknown_zone"),
                               ({"zones": ["to-9"]}, 409, "no_nodes")):
        r = ward("lanhdao", "POST", "/api/v1/live", json=body)
        assert (r.status_code, r.json["error"]["code"]) == (status, code), r.json
    assert commands(service) == [] and service.live_sessions() == {}
    with service.db.session() as s:
        assert s.query(AuditEntry).filter_by(action="policy.refused").count() >= 1


def test_a_live_session_from_start_to_recording(ward, service, client, monkeypatch):
    monkeypatch.setattr(live_module, "STOP_GRACE_S", 0.2)
    r = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-1"], "priority": "priority"})
    assert r.status_code == 201, r.json
    session = r.json
    assert (session["state"], session["nodes"], session["priority"]) == ("connecting", ["loa-01", "loa-02"], "priority")
    plays = commands(service, "play_now")
    assert sorted(c["node_id"] for c in plays) == ["loa-01", "loa-02"]  # signed, only the zone's nodes
    args = plays[0]["args"]
    assert args["stream"]["url"] == session["stream_url"] and "media" not in args
    assert (args["alert_id"], args["priority"]) == (session["alert_id"], "priority")
    stream_path = re.sub(r"^https?://[^/]+", "", session["stream_url"])

    # a node joins before any audio; what it reads is every chunk from the first, as they come
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(client.get(stream_path).response), daemon=True)
    reader.start()
    audio = opus_webm()
    chunks = [audio[i:i + 4000] for i in range(0, len(audio), 4000)]
    started = int(time.time() * 1000)
    for n, chunk in enumerate(chunks):
        headers = {"Content-Type": "audio/webm", **({"X-Live-Started-At": str(started)} if n == 0 else {})}
        r = ward("lanhdao", "POST", f"/api/v1/live/{session['id']}/audio", data=chunk, headers=headers)
        assert r.status_code == 200 and r.json["state"] == "live", r.json
    # only the speaker speaks; a wrong key hears nothing
    assert ward("canbo", "POST", f"/api/v1/live/{session['id']}/audio", data=b"x").status_code == 403
    assert client.get(stream_path.replace(".webm", "x.webm")).status_code == 404
    state = ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json
    assert state["client_started_at"] is not None and state["bytes"] == len(audio)

    r = ward("lanhdao", "DELETE", f"/api/v1/live/{session['id']}")
    assert r.status_code == 200 and r.json["state"] == "ended"
    reader.join(10)
    assert b"".join(received) == audio  # the relay is the recording, byte for byte
    stops = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(commands(service, "stop")), 10,
                     "the stop after the grace period")
    assert sorted(c["node_id"] for c in stops) == ["loa-01", "loa-02"]
    assert all(c["args"] == {"alert_id": session["alert_id"]} for c in stops)
    assert ward("lanhdao", "POST", f"/api/v1/live/{session['id']}/audio", data=b"late").status_code == 409

    # the recording is kept as an announcement of its speaker
    wait_for(lambda: ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json["announcement_id"], 30,
             "the recording kept")
    ann_id = ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json["announcement_id"]
    with service.db.session() as s:
        ann = s.get(Announcement, ann_id)
        assert ann.title.startswith("Phát trực tiếp") and ann.media_sha256 and ann.source == "upload"
        actions = [a.action for a in s.query(AuditEntry).filter(AuditEntry.target == session["id"])]
    assert {"live.start", "live.ended"} <= set(actions)


def test_a_session_without_audio_fails_with_why(ward, service, monkeypatch):
    monkeypatch.setattr(live_module, "FIRST_AUDIO_TIMEOUT_S", 0.5)
    session = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-2"]}).json
    state = wait_for(lambda: (lambda j: j if j["state"] == "failed" else None)(
        ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json), 10, "the session failed")
    assert state["reason"] == "no audio from the microphone"
    stops = wait_for(lambda: commands(service, "stop"), 5, "the stop")  # the loudspeaker is freed at once
    assert [c["node_id"] for c in stops] == ["loa-03"]


def test_only_who_may_speak_live_sees_or_ends_a_session_and_one_session_per_loudspeaker(ward, service):
    session = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-1"]}).json
    for method in ("GET", "DELETE"):  # an officer knows the id from proof of play, not the secret nor the power
        r = ward("canbo", method, f"/api/v1/live/{session['id']}")
        assert r.status_code == 403, (method, r.json)
    assert ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json["state"] == "connecting"
    r = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-1", "to-2"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "live_busy"
    assert ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-2"]}).status_code == 201  # other nodes


def test_a_session_no_loudspeaker_takes_fails_with_their_reason(ward, service):
    session = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-1"]}).json
    for cmd in commands(service, "play_now"):
        ack = {"type": "ack", "protocol": 1, "node_id": cmd["node_id"], "command_id": cmd["id"], "status": "error",
               "at": format_ts(datetime.now(UTC)), "error": "quiet hours 22:00-05:00 Asia/Ho_Chi_Minh"}
        service.ingest(service.topics.ack(cmd["node_id"]), json.dumps(ack).encode())
    state = wait_for(lambda: (lambda j: j if j["state"] == "failed" else None)(
        ward("lanhdao", "GET", f"/api/v1/live/{session['id']}").json), 10, "the session failed")
    assert state["reason"] == "no loudspeaker took it: quiet hours 22:00-05:00 Asia/Ho_Chi_Minh"


def test_a_node_that_joins_late_starts_at_the_newest_cluster_after_the_header(ward, service, client, monkeypatch):
    monkeypatch.setattr(live_module, "JOIN_FROM_START_S", 0.0)
    session = ward("lanhdao", "POST", "/api/v1/live", json={"zones": ["to-2"]}).json
    audio = opus_webm(4.0)
    for i in range(0, len(audio), 3000):
        ward("lanhdao", "POST", f"/api/v1/live/{session['id']}/audio", data=audio[i:i + 3000],
             headers={"Content-Type": "audio/webm"})
    live = service.live_sessions()[session["id"]]
    assert len(live.clusters) >= 2 and live.clusters[0] > 0
    received: list[bytes] = []
    path = re.sub(r"^https?://[^/]+", "", session["stream_url"])
    reader = threading.Thread(target=lambda: received.extend(client.get(path).response), daemon=True)
    reader.start()
    time.sleep(0.3)
    ward("lanhdao", "DELETE", f"/api/v1/live/{session['id']}")
    reader.join(10)
    got = b"".join(received)
    header, newest = audio[:live.clusters[0]], audio[live.clusters[-1]:]
    assert got == header + newest and len(got) < len(audio)
    # what it got decodes: a player can start there
    out = subprocess.run([get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", "-", "-f", "null", "-"],
                         input=got, capture_output=True)
    assert out.returncode == 0, out.stderr


# --------------------------------------------------------------------------------- Chromium, broker, nodes


def speak_live(page, base: str, zone: str, seconds: float) -> str:
    """Log in as the admin, open the live page, pick ``zone``, speak for ``seconds`` (Chromium's fake
    microphone), end it; returns the session id."""
    page.goto(f"{base}/login")
    page.get_by_label(re.compile("Tên đăng nhập")).fill(ADMIN[0])
    page.get_by_label(re.compile("Mật khẩu")).fill(ADMIN[1])
    page.get_by_label(re.compile("Mật khẩu")).press("Enter")
    page.wait_for_url(re.compile(r".*/(?!login).*"))
    page.goto(f"{base}/live")
    page.get_by_label(re.compile(zone)).check()
    page.get_by_role("button", name="Bắt đầu nói").click()
    page.wait_for_selector('#live-status[data-state="live"]', timeout=15_000)
    session_id = page.locator("#live-form").get_attribute("data-session")
    time.sleep(seconds)
    page.get_by_role("button", name="Kết thúc").click()
    page.wait_for_selector('#live-status[data-state="ended"]', timeout=15_000)
    return session_id


def test_speaking_in_chromium_reaches_the_loudspeakers_within_two_seconds(panel_stack, chromium, tmp_path: Path):
    stack = panel_stack.deploy({"to-1": ["loa-01", "loa-02"], "to-2": ["loa-03"]})
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    context.grant_permissions(["microphone"], origin=stack.base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        session_id = speak_live(page, stack.base, "Tổ dân phố to-1", 2.0)
    finally:
        context.close()
    assert errors == []
    session = stack.api("GET", f"/live/{session_id}", 200)
    assert session["state"] == "ended" and session["bytes"] > 2000
    item = f"alert:{session['alert_id']}:1"
    records = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
        [p for p in stack.fleet.plays() if p["item_id"] == item]), 15, "both loudspeakers report the live item")
    assert sorted(p["node_id"] for p in records) == ["loa-01", "loa-02"]  # the zone, and only it
    assert not [p for p in stack.fleet.plays() if p["node_id"] == "loa-03"]
    began = stack.api("GET", f"/live/{session_id}", 200)["client_started_at"]
    latencies = [(_epoch(p["first_audio_at"]) - _epoch(began)) for p in records]
    assert all(0 < x <= MAX_LATENCY_S for x in latencies), latencies
    assert all(p["stream_bytes"] > 2000 for p in records)
    (tmp_path / "latency.json").write_text(json.dumps(latencies))
    # proof of play reaches the panel: the nodes' events for the live item
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 and all(x["result"] != "playing" for x in r) else None)(
        [x for x in stack.api("GET", "/plays", 200) if x["item_id"] == item]), 15, "the live item's events")
    assert {x["node_id"] for x in rows} == {"loa-01", "loa-02"}
    # the end of the stream ended the item: played, not stopped (its proof of play)
    assert all(x["result"] == "played" for x in rows), rows
    # the session is kept as an announcement: what Chromium recorded (chime + voice) decodes and is not silent
    ann_id = wait_for(lambda: stack.api("GET", f"/live/{session_id}", 200)["announcement_id"], 30, "recording")
    media = stack.api("GET", f"/announcements/{ann_id}", 200)["media"]
    assert media["duration_ms"] >= 1500, media


def _epoch(ts: str) -> float:
    return parse_ts(ts).timestamp()


def test_the_scale_simulator_relays_the_live_stream_too(panel_stack, tmp_path):
    """``loaphuong sim --scale`` nodes read the live stream as it comes and finish the item when it closes."""
    stack = panel_stack
    stack.provision({"to-1": ["loa-01", "loa-02"]})
    creds = [NodeCred(n, t) for n, t in stack.tokens.items()]
    config = FleetConfig(broker_host=stack.broker.host, broker_port=stack.broker.port,
                         panel_public_key=stack.service.public_key_b64, data_dir=tmp_path / "scale",
                         topic_prefix=stack.config.MQTT_PREFIX)
    fleet = ScaleFleet(config, creds)
    fleet.start()
    try:
        stack.wait_online()
        session = stack.api("POST", "/live", 201, json={"zones": ["to-1"]})
        time.sleep(0.5)
        audio = opus_webm(2.0)
        started = int(time.time() * 1000)
        for n, i in enumerate(range(0, len(audio), 2000)):
            stack.api("POST", f"/live/{session['id']}/audio", 200, data=audio[i:i + 2000],
                      headers={"Content-Type": "audio/webm", **({"X-Live-Started-At": str(started)} if not n else {})})
        stack.api("DELETE", f"/live/{session['id']}", 200)
        item = f"alert:{session['alert_id']}:1"
        rows = wait_for(lambda: (lambda r: r if len(r) == 2 and all(x["result"] == "played" for x in r) else None)(
            [x for x in stack.api("GET", "/plays", 200) if x["item_id"] == item]), 15, "both finished the live item")
        assert {x["node_id"] for x in rows} == {"loa-01", "loa-02"}
    finally:
        fleet.stop()
