"""The node simulator against a real broker, with the test playing the panel (tests/sim_harness.py)."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from firmware_sim import Fleet, SimNode
from firmware_sim.cli import main as cli_main
from firmware_sim.node import NodeConfig
from sim_harness import Collector, Panel, PanelApiStub, make_mp3, retained_status, wait_until

from devices.protocol import parse_ts, public_key_b64, sign_payload

pytestmark = pytest.mark.timeout(60)

NODE = "loa-01"


@pytest.fixture(scope="module")
def mp3() -> bytes:
    return make_mp3(1.0)


@pytest.fixture
def panel(broker):
    p = Panel(broker.host, broker.port)
    yield p
    p.close()


@pytest.fixture
def collector(broker):
    c = Collector(broker.host, broker.port)
    yield c
    c.close()


@pytest.fixture
def nodes():
    """Nodes started by a test; stopped (power cut: fast) at teardown whatever happened."""
    started: list[SimNode] = []
    yield started
    for node in started:
        node.stop(clean=False)


def boot(nodes: list[SimNode], config, playback_log: Path | None = None,
         wait_connected: bool = True) -> SimNode:
    node = SimNode(config, playback_log=playback_log)
    node.start()
    nodes.append(node)
    if wait_connected:
        assert wait_until(lambda: node.connected, 5), "node did not connect"
    return node


def assert_contiguous(events: list[dict]) -> None:
    seqs = [e["seq"] for e in events]
    assert len(seqs) == len(set(seqs)), f"duplicate seq: {seqs}"
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"gap in seq: {sorted(seqs)}"


# ------------------------------------------------------------------------------------------ playback


@pytest.mark.parametrize("any_broker", ["iotcore", "mosquitto"], indirect=True)
def test_plan_plays_on_time(any_broker, tmp_path, mp3):
    broker = any_broker
    panel = Panel(broker.host, broker.port)
    collector = Collector(broker.host, broker.port)
    sink = tmp_path / "sink"
    log_path = tmp_path / "plays.jsonl"
    node = SimNode(panel.node_config(NODE, tmp_path / "node", sink_dir=sink), playback_log=log_path)
    try:
        node.start()
        assert wait_until(lambda: node.connected, 5)
        media = panel.add_media(mp3, duration_ms=300)
        t0 = time.time() + 1.2
        panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("a", t0, media),
                                                      panel.item("b", t0 + 0.6, media, duration_ms=200)]))
        assert node.wait_for_plan(1, timeout=5)
        assert wait_until(lambda: len(node.plays) == 2, 5), node.plays

        assert [p["item_id"] for p in node.plays] == ["a", "b"]
        for play in node.plays:
            assert play["result"] == "finished"
            assert play["sha256"] == media["sha256"]
            assert 0 <= play["offset_ms"] < 50, play
        started = collector.wait_events(NODE, "playback_started", 2)
        assert all(e["sha256"] == media["sha256"] and abs(e["offset_ms"]) < 50 for e in started)
        assert started[0]["scheduled_start"] == panel.item("a", t0, media)["start"]
        assert started[0]["schedule_id"] == "sch-a"
        collector.wait_events(NODE, "playback_finished", 2)
        names = [e["event"] for e in collector.events(NODE)]
        assert names[0] == "plan_applied" and names.count("media_ready") == 2
        assert_contiguous(collector.events(NODE))
        # the media was fetched once, with the node's bearer token, and cached under its sha256
        assert len(panel.media.requests) == 1
        assert panel.media.requests[0]["auth"] == f"Bearer {node.config.token}"
        assert (tmp_path / "node" / "media" / media["sha256"]).read_bytes() == mp3
        status = wait_until(lambda: [s for s in collector.statuses(NODE) if s.get("plan_version") == 1], 3)
        assert status[-1]["state"] == "online" and status[-1]["firmware"] == "sim-0.1"
        lines = [json.loads(x) for x in log_path.read_text().splitlines()]
        assert [(x["item_id"], x["result"]) for x in lines] == [("a", "finished"), ("b", "finished")]
        wavs = wait_until(lambda: sorted(sink.glob("*.wav")), 5)
        assert len(wavs) == 2 and wavs[0].read_bytes()[:4] == b"RIFF"
    finally:
        node.stop()
        collector.close()
        panel.close()
    assert retained_status(broker.host, broker.port, NODE)["state"] == "stopped"


def test_priority_preemption_and_plan_update(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    media = panel.add_media(mp3)
    t0 = time.time() + 1.0
    items = [
        panel.item("n1", t0, media, duration_ms=1500),
        panel.item("e1", t0 + 0.3, media, priority="emergency", duration_ms=400),
        panel.item("n2", t0 + 0.4, media, max_late_ms=3000, duration_ms=200),  # waits for e1
        panel.item("n3", t0 + 0.5, media, max_late_ms=100, duration_ms=200),  # e1 outlasts its window
        panel.item("gone", t0 + 1.2, media),
    ]
    panel.publish_plan(NODE, panel.plan(NODE, 1, items))
    assert node.wait_for_plan(1, 5)
    panel.publish_plan(NODE, panel.plan(NODE, 2, items[:4]))  # v2 removes "gone"
    assert node.wait_for_plan(2, 5)
    assert wait_until(lambda: len(node.plays) == 4, 5), node.plays
    time.sleep(max(0.0, t0 + 1.4 - time.time()))
    results = {p["item_id"]: p for p in node.plays}
    assert set(results) == {"n1", "e1", "n2", "n3"}  # "gone" never played
    assert results["n1"]["result"] == "preempted" and results["n1"]["offset_ms"] < 50
    assert results["e1"]["result"] == "finished" and results["e1"]["offset_ms"] < 50
    assert results["n2"]["result"] == "finished" and 250 <= results["n2"]["offset_ms"] < 350
    assert results["n3"]["result"] == "stale"
    failed = {e["item_id"]: e["reason"] for e in collector.wait_events(NODE, "playback_failed", 2)}
    assert failed == {"n1": "preempted", "n3": "stale"}


def test_media_mismatch_never_played(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    good = panel.add_media(mp3)
    other = bytes(reversed(mp3))  # same size, other bytes
    lying = panel.add_media(other, sha256=good["sha256"][::-1])  # plan claims a sha256 the bytes do not have
    missing = {**panel.add_media(mp3), "url": panel.media.base + "/media/nope.mp3"}
    missing["sha256"] = "0" * 64
    t0 = time.time() + 1.5
    plan = panel.plan(NODE, 1, [panel.item("bad", t0, lying, max_late_ms=800),
                                panel.item("404", t0 + 0.1, missing, max_late_ms=800),
                                panel.item("ok", t0 + 0.2, good)])
    panel.publish_plan(NODE, plan)
    failed = collector.wait_events(NODE, "media_failed", 2)
    reasons = {e["item_id"]: e["reason"] for e in failed}
    assert "sha256 mismatch" in reasons["bad"] and "HTTP 404" in reasons["404"]
    assert {e["sha256"] for e in failed} == {lying["sha256"], missing["sha256"]}
    assert not node.wait_for_plan(1, timeout=0.5)
    assert wait_until(lambda: len(node.plays) == 3, 4), node.plays
    results = {p["item_id"]: p["result"] for p in node.plays}
    assert results == {"bad": "media_unavailable", "404": "media_unavailable", "ok": "finished"}
    assert [e["item_id"] for e in collector.wait_events(NODE, "playback_started")] == ["ok"]
    # media_unavailable only once the window (start + max_late_ms) has closed: the node kept fetching till then
    for event in collector.wait_events(NODE, "playback_failed", 2):
        waited = (parse_ts(event["at"]) - parse_ts(event["scheduled_start"])).total_seconds()
        assert event["reason"] == "media_unavailable" and waited >= 0.8, event
    assert sorted(p.name for p in (tmp_path / "node" / "media").iterdir()) == [good["sha256"]]
    # retried with backoff (≥ 2 attempts each), but reported once per reason
    assert sum(1 for r in panel.media.requests if r["path"].endswith("nope.mp3")) >= 2
    assert len(collector.events(NODE, "media_failed")) == 2


def test_media_arriving_after_start_plays_late_within_max_late(broker, panel, collector, nodes, tmp_path, mp3):
    """An emergency planned "now": its plan reaches the node before its audio, which comes from a slow server
    1.5 s later. The node keeps fetching after `start` and plays it late instead of failing it."""
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    slow = panel.add_media(mp3, name="slow")
    panel.media.delays["/media/slow.mp3"] = 1.5
    queued = panel.add_media(mp3[:-1], name="queued")  # other bytes: a second file, also slow
    panel.media.delays["/media/queued.mp3"] = 1.5
    now = time.time()
    panel.publish_plan(NODE, panel.plan(NODE, 1, [
        panel.item("alert", now, slow, priority="emergency", max_late_ms=5000, duration_ms=300),
        # Its file is fetched after "alert"'s (one download at a time): ready ≈ 3 s, after its 2.5 s window.
        panel.item("too-late", now, queued, max_late_ms=2500, duration_ms=300),
    ]))
    started = collector.wait_events(NODE, "playback_started", 1, timeout=6)
    assert [e["item_id"] for e in started] == ["alert"]
    assert 1500 <= started[0]["offset_ms"] < 3000, started[0]  # late by about the download time
    assert started[0]["scheduled_start"] == panel.item("alert", now, slow)["start"]  # verbatim from the plan
    assert wait_until(lambda: len(node.plays) == 2, 6), node.plays
    results = {p["item_id"]: p for p in node.plays}
    assert results["alert"]["result"] == "finished"
    assert results["alert"]["offset_ms"] == started[0]["offset_ms"]
    assert results["too-late"]["result"] == "media_unavailable"
    events = collector.events(NODE)
    order = [(e["event"], e.get("item_id")) for e in sorted(events, key=lambda e: e["seq"])]
    assert order.index(("media_ready", "alert")) < order.index(("playback_started", "alert"))
    assert ("media_ready", "too-late") not in order  # verified only after its outcome
    assert order.count(("media_ready", "alert")) == 1
    failed = collector.wait_events(NODE, "playback_failed")
    assert [(e["item_id"], e["reason"]) for e in failed] == [("too-late", "media_unavailable")]
    assert (parse_ts(failed[0]["at"]) - parse_ts(failed[0]["scheduled_start"])).total_seconds() >= 2.5
    assert collector.events(NODE, "media_failed") == []
    assert_contiguous(events)


def test_newer_plan_cuts_removed_item_which_never_plays_again(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    media = panel.add_media(mp3)
    cut = panel.item("cut", time.time() + 0.8, media, duration_ms=5000)
    panel.publish_plan(NODE, panel.plan(NODE, 1, [cut]))
    collector.wait_events(NODE, "playback_started")
    panel.publish_plan(NODE, panel.plan(NODE, 2, []))  # the panel cancels the broadcast
    failed = collector.wait_events(NODE, "playback_failed")
    assert failed[0]["item_id"] == "cut" and failed[0]["reason"] == "removed"
    panel.publish_plan(NODE, panel.plan(NODE, 3, [cut]))  # re-added, still inside its window: not replayed
    assert node.wait_for_plan(3, 5)
    time.sleep(0.3)
    assert [(p["item_id"], p["result"]) for p in node.plays] == [("cut", "removed")]
    assert len(collector.events(NODE, "playback_started")) == 1


def test_resync_retries_missing_media_at_once(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    media = panel.add_media(mp3, name="late")
    data = panel.media.files.pop("/media/late.mp3")  # not uploaded yet: 404
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("x", time.time() + 60, media)]))
    assert "HTTP 404" in collector.wait_events(NODE, "media_failed")[0]["reason"]
    # Attempts at ~0, ~1 and ~3 s (back-off 1, 2, 4 s, jitter ±20 %): the next one is due ≥ 3.2 s after the third.
    assert wait_until(lambda: len(panel.media.requests) == 3, 6)
    backoff_due = panel.media.requests[2]["at"] + 0.8 * 4
    panel.media.files["/media/late.mp3"] = data
    resync = panel.command(NODE, "resync")
    sent = time.monotonic()
    panel.publish_cmd(NODE, resync)
    assert collector.wait_ack(NODE, resync["id"])["data"] == {"plan_version": 1}
    assert node.wait_for_plan(1, timeout=10)
    assert len(panel.media.requests) == 4
    assert sent < panel.media.requests[3]["at"] < backoff_due, "fetched because of resync, not the back-off"
    assert [e["item_id"] for e in collector.wait_events(NODE, "media_ready")] == ["x"]



def test_resync_during_a_failing_attempt_retries_as_soon_as_it_fails(broker, panel, collector, nodes, tmp_path, mp3):
    """A resync that arrives while an attempt is in flight (and about to fail) must not be undone by that
    attempt's back-off: the next attempt follows the failure at once, not 3.2–4.8 s later."""
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    media = panel.add_media(mp3, name="late")
    path = "/media/late.mp3"
    data = panel.media.files.pop(path)
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("x", time.time() + 60, media)]))
    assert wait_until(lambda: len(panel.media.requests) == 2, 5)  # attempts at ~0 and ~1 s: back-off now 4 s
    panel.media.delays[path] = 1.5  # the third attempt is answered (404) 1.5 s after it starts
    assert wait_until(lambda: len(panel.media.requests) == 3, 6)
    third = panel.media.requests[2]["at"]
    panel.media.files[path] = data  # uploaded now, too late for the attempt in flight
    panel.media.delays[path] = 0.0
    resync = panel.command(NODE, "resync")
    panel.publish_cmd(NODE, resync)
    assert collector.wait_ack(NODE, resync["id"])["status"] == "ok"
    assert time.monotonic() < third + 1.5, "the resync reached the node while the attempt was in flight"
    assert node.wait_for_plan(1, timeout=10)
    assert len(panel.media.requests) == 4
    assert panel.media.requests[3]["at"] < third + 1.5 + 2.0  # back-off would be ≥ third + 1.5 + 3.2

# ------------------------------------------------------------------------------------ refused input


def test_refused_plans_keep_last_good_plan(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    media = panel.add_media(mp3)
    t0 = time.time() + 2.0
    good = panel.plan(NODE, 2, [panel.item("keep", t0, media)])
    panel.publish_plan(NODE, good)
    assert node.wait_for_plan(2, 5)

    evil = Ed25519PrivateKey.generate()
    tampered = json.loads(json.dumps(good))
    tampered["items"][0]["media"]["url"] = "http://evil.example/x.mp3"
    unsigned = {k: v for k, v in panel.plan(NODE, 3, []).items() if k != "signature"}
    bad = [
        (panel.plan(NODE, 3, [], key=evil), "bad signature"),
        (unsigned, "unsigned"),
        (tampered, "bad signature"),
        (panel.plan(NODE, 1, []), "version 1 < held 2"),
        (panel.plan("loa-02", 3, []), "addressed to 'loa-02'"),
        (b"{not json", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (os.urandom(300_000), "exceeds"),
        ({**panel.plan(NODE, 3, []), "version": "three"}, "bad signature"),
        (panel.plan(NODE, 3, [{"id": "x"}]), "invalid plan"),
        (panel.plan(NODE, 3, [], key=evil) | {"n": 1.5}, "floating-point"),  # checked before the signature
        (panel.plan(NODE, 2**53, []), "integer outside"),  # genuinely signed, beyond ±(2^53 - 1)
        ({**panel.plan(NODE, 3, []), "signature": base64.b64encode(b"\0" * 63).decode()}, "bad signature"),
        (json.dumps(panel.plan(NODE, 3, []))[:-1].encode() + b', "version": 4}', "not JSON: duplicate key"),
        (b'{"version": NaN}', "not JSON"),
        (panel.plan(NODE, 3, [], key=evil) | {"node_id": "loa-02"}, "bad signature"),  # before "addressed to"
    ]
    for payload, _ in bad:
        panel.publish_plan(NODE, payload)
    panel.publish_plan(NODE, good)  # same version again (retained redelivery): ignored silently
    rejected = collector.wait_events(NODE, "plan_rejected", len(bad))
    assert len(rejected) == len(bad)
    for event, (_, expected) in zip(rejected, bad, strict=True):
        assert expected in event["reason"], (expected, event["reason"])
        assert event["plan_version"] == 2
    assert node.plan_version == 2
    assert json.loads((tmp_path / "node" / "plan.json").read_text())["version"] == 2
    assert wait_until(lambda: node.plays, 4)
    assert node.plays[0]["item_id"] == "keep" and node.plays[0]["result"] == "finished"
    assert len(collector.events(NODE, "plan_applied")) == 1


def test_null_counts_as_absent_and_type_protocol_may_be_absent(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    item = {**panel.item("x", time.time() + 60, panel.add_media(mp3)), "priority": None, "max_late_ms": None,
            "title": None, "schedule_id": None}
    body = {k: v for k, v in panel.plan(NODE, 1, [item]).items() if k not in ("type", "protocol", "signature")}
    panel.publish_plan(NODE, sign_payload(body, panel.key))
    assert node.wait_for_plan(1, 5)
    held = node.core.plan.items[0]
    assert (held.priority, held.max_late_ms, held.title, held.schedule_id) == ("normal", 60_000, "", None)
    panel.publish_plan(NODE, sign_payload({**body, "version": 2, "protocol": 2}, panel.key))
    assert "invalid plan: protocol" in collector.wait_events(NODE, "plan_rejected")[0]["reason"]
    ready = collector.wait_events(NODE, "media_ready")
    assert "schedule_id" not in ready[0]  # senders omit null fields


def test_refused_commands_get_no_ack(broker, panel, collector, nodes, tmp_path):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    forged = panel.command(NODE, "stop", key=Ed25519PrivateKey.generate())
    unsigned = {k: v for k, v in panel.command(NODE, "ping").items() if k != "signature"}
    tampered = {**panel.command(NODE, "set_volume", {"volume": 10}), "args": {"volume": 100}}
    bad = [forged, unsigned, tampered, panel.command("loa-02", "ping"), b"\xff\xfe", b"{", b"42",
           os.urandom(300_000)]
    for payload in bad:
        panel.publish_cmd(NODE, payload)
    rejected = collector.wait_events(NODE, "command_rejected", len(bad))
    assert len(rejected) == len(bad)
    time.sleep(0.2)
    assert collector.acks(NODE) == []
    assert node.volume == 80


def test_retained_command_is_refused_and_an_empty_one_ignored(broker, panel, collector, nodes, tmp_path):
    stop = panel.command(NODE, "stop")
    panel.publish_cmd(NODE, stop, retain=True)  # a panel bug: the broker hands it over at every subscribe
    node = boot(nodes, panel.node_config(NODE, tmp_path / "node"))
    rejected = collector.wait_events(NODE, "command_rejected")
    assert [e["reason"] for e in rejected] == [f"retained command {stop['id']}"]
    panel.publish_cmd(NODE, b"", retain=True)  # clearing it, as §9 says
    panel.publish_cmd(NODE, b"")  # and a stray empty message
    ping = panel.command(NODE, "ping")
    panel.publish_cmd(NODE, ping)
    assert collector.wait_ack(NODE, ping["id"])["status"] == "ok"  # handled after the empty ones
    time.sleep(0.1)
    assert len(collector.events(NODE, "command_rejected")) == 1
    assert [a["command_id"] for a in collector.acks(NODE)] == [ping["id"]]  # the retained one got no ack
    assert node.connected


def test_node_with_lost_counters_refuses_to_boot(tmp_path):
    """Restarting seq at 1 under the same token would make the panel drop the events as duplicates: a node
    that lost its counters must be re-provisioned (new token, new event epoch) instead."""
    data = tmp_path / "node"
    data.mkdir()
    (data / "state.json").write_text('{"boot": 3, "seq": 4')  # torn or corrupted
    config = NodeConfig(node_id=NODE, token="t", broker_host="127.0.0.1", broker_port=1,
                        panel_public_key=public_key_b64(Ed25519PrivateKey.generate()), data_dir=data)
    with pytest.raises(RuntimeError, match="re-provisioned"):
        SimNode(config).start()


def test_commands(broker, panel, collector, nodes, tmp_path, mp3):
    config = panel.node_config(NODE, tmp_path / "node")
    node = boot(nodes, config)

    ping = panel.command(NODE, "ping")
    panel.publish_cmd(NODE, ping)
    ack = collector.wait_ack(NODE, ping["id"])
    assert ack["status"] == "ok" and ack["data"]["time"].endswith("Z")

    vol = panel.command(NODE, "set_volume", {"volume": 35})
    panel.publish_cmd(NODE, vol)
    assert collector.wait_ack(NODE, vol["id"])["status"] == "ok"
    assert wait_until(lambda: [s for s in collector.statuses(NODE) if s.get("volume") == 35], 3)
    for args in ({"volume": 101}, {"volume": "loud"}, {"volume": True}, {}):
        cmd = panel.command(NODE, "set_volume", args)
        panel.publish_cmd(NODE, cmd)
        assert collector.wait_ack(NODE, cmd["id"])["status"] == "error"
    assert node.volume == 35

    expired = panel.command(NODE, "ping", ttl=-1)
    panel.publish_cmd(NODE, expired)
    ack = collector.wait_ack(NODE, expired["id"])
    assert ack["status"] == "rejected" and "expired" in ack["error"]

    panel.publish_cmd(NODE, ping)  # the same signed command, replayed: not executed again, the first ack again
    assert wait_until(lambda: len([a for a in collector.acks(NODE) if a["command_id"] == ping["id"]]) == 2, 3)
    first, replay = [a for a in collector.acks(NODE) if a["command_id"] == ping["id"]]
    assert replay == first and replay["status"] == "ok"

    unknown = panel.command(NODE, "self_destruct")
    panel.publish_cmd(NODE, unknown)
    assert collector.wait_ack(NODE, unknown["id"])["status"] == "rejected"

    n_status = len(collector.statuses(NODE))
    resync = panel.command(NODE, "resync")
    panel.publish_cmd(NODE, resync)
    assert collector.wait_ack(NODE, resync["id"])["status"] == "ok"
    assert wait_until(lambda: len(collector.statuses(NODE)) > n_status, 3)

    media = panel.add_media(mp3)
    long_item = panel.item("long", time.time() + 0.8, media, duration_ms=10_000)
    panel.publish_plan(NODE, panel.plan(NODE, 1, [long_item]))
    collector.wait_events(NODE, "playback_started")
    stop = panel.command(NODE, "stop")
    panel.publish_cmd(NODE, stop)
    ack = collector.wait_ack(NODE, stop["id"])
    assert ack["status"] == "ok" and ack["data"] == {"stopped": "long"}
    assert collector.wait_events(NODE, "playback_failed")[0]["reason"] == "stopped"
    assert node.plays[0]["result"] == "stopped"

    # seen ids, their results and volume survive a reboot: the replay gets the first ack once more
    node.stop()
    node2 = boot(nodes, config)
    assert node2.volume == 35
    panel.publish_cmd(NODE, ping)
    assert wait_until(lambda: len([a for a in collector.acks(NODE) if a["command_id"] == ping["id"]]) == 3, 3)
    assert [a for a in collector.acks(NODE) if a["command_id"] == ping["id"]][2] == first


# ---------------------------------------------------------------------------------- reboot, outages


def test_power_cut_during_playback_then_stale_item(broker, panel, collector, nodes, tmp_path, mp3):
    config = panel.node_config(NODE, tmp_path / "node")
    node = boot(nodes, config)
    media = panel.add_media(mp3)
    t0 = time.time() + 1.0
    panel.publish_plan(NODE, panel.plan(NODE, 1, [
        panel.item("cut", t0, media, duration_ms=3000),
        panel.item("missed", t0 + 0.4, media, priority="emergency", max_late_ms=300),
        panel.item("later", t0 + 1.8, media, duration_ms=200),
    ]))
    assert node.wait_for_plan(1, 5)
    collector.wait_events(NODE, "playback_started")
    node.stop(clean=False)  # power cut while "cut" plays; "missed" falls due while the node is down
    time.sleep(max(0.0, t0 + 0.9 - time.time()))
    node2 = boot(nodes, config)
    assert node2.session == node.session + 1
    assert wait_until(lambda: len(node2.plays) == 3, 4), node2.plays
    assert [(p["item_id"], p["result"]) for p in node2.plays] == [
        ("cut", "interrupted"), ("missed", "stale"), ("later", "finished")]
    failed = collector.wait_events(NODE, "playback_failed", 2)
    assert [(e["item_id"], e["reason"]) for e in failed] == [("cut", "interrupted"), ("missed", "stale")]
    assert [e["item_id"] for e in collector.wait_events(NODE, "playback_started", 2)] == ["cut", "later"]
    assert_contiguous(collector.events(NODE))


def test_reboot_with_broker_down_plays_persisted_plan(broker, panel, nodes, tmp_path, mp3):
    config = panel.node_config(NODE, tmp_path / "node")
    node = boot(nodes, config)
    media = panel.add_media(mp3)
    t0 = time.time() + 1.5
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("autonomous", t0, media)]))
    assert node.wait_for_plan(1, 5)
    node.stop(clean=False)
    broker.stop()
    node2 = boot(nodes, config, wait_connected=False)
    assert node2.plan_version == 1 and node2.wait_for_plan(1, 0.1)
    assert wait_until(lambda: node2.plays, 4)
    assert not node2.connected
    play = node2.plays[0]
    assert play["item_id"] == "autonomous" and play["result"] == "finished" and play["offset_ms"] < 50
    node2.stop()  # clean stop with the broker unreachable must not hang
    assert len(panel.media.requests) == 1  # played from the cache


@pytest.mark.parametrize("any_broker", ["iotcore", "mosquitto"], indirect=True)
def test_last_will_and_session_counter(any_broker, tmp_path):
    broker = any_broker
    panel = Panel(broker.host, broker.port)
    config = panel.node_config(NODE, tmp_path / "node", keepalive=5)
    started: list[SimNode] = []
    try:
        node = boot(started, config)
        online = wait_until(lambda: retained_status(broker.host, broker.port, NODE, timeout=1), 3)
        assert online["state"] == "online" and online["session"] == 1
        node.stop(clean=False)
        offline = wait_until(lambda: (s := retained_status(broker.host, broker.port, NODE, timeout=1))
                             and s["state"] == "offline" and s, 5)
        assert offline == {"type": "status", "protocol": 1, "node_id": NODE, "state": "offline", "session": 1}
        node2 = boot(started, config)
        assert wait_until(lambda: retained_status(broker.host, broker.port, NODE, timeout=1)["session"] == 2,
                          3)
        node2.stop(clean=True)
        stopped = retained_status(broker.host, broker.port, NODE)
        assert stopped["state"] == "stopped" and stopped["session"] == 2
    finally:
        for n in started:
            n.stop(clean=False)
        panel.close()


def test_events_survive_broker_outage_and_power_cut(mosquitto, tmp_path, mp3):
    """Events produced while the broker is down arrive after reconnect, gap-free and once each —
    both from paho's in-memory queue (node kept running) and from the outbox file (node rebooted)."""
    broker = mosquitto
    panel = Panel(broker.host, broker.port)
    collector = Collector(broker.host, broker.port, client_id="panel-events", persistent=True)
    config = panel.node_config(NODE, tmp_path / "node", reconnect_max_delay=1)
    started: list[SimNode] = []
    try:
        node = boot(started, config)
        media = panel.add_media(mp3)
        t0 = time.time() + 1.2
        panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("a", t0, media, duration_ms=200),
                                                      # late enough to play in outage 2 under load too
                                                      panel.item("b", t0 + 3.0, media, duration_ms=200)]))
        assert node.wait_for_plan(1, 5)
        collector.wait_events(NODE, "media_ready", 2)
        assert wait_until(lambda: not (tmp_path / "node" / "outbox.jsonl").read_bytes(), 3)
        panel.close()

        broker.stop()  # outage 1: "a" plays offline, node keeps running
        assert wait_until(lambda: len(node.plays) == 1, 3)
        assert not node.connected and node.seq == 5
        broker.start()
        assert wait_until(lambda: node.connected, 5)
        collector.wait_events(NODE, "playback_finished", 1)
        time.sleep(0.2)  # let the collector's PUBACKs reach the broker before it goes down again

        broker.stop()  # outage 2: "b" plays offline, then the node loses power before the broker is back
        assert wait_until(lambda: len(node.plays) == 2, 6)
        assert len((tmp_path / "node" / "outbox.jsonl").read_text().splitlines()) == 2
        node.stop(clean=False)
        broker.start()
        node2 = boot(started, config)
        assert wait_until(lambda: len(collector.events(NODE)) >= 7, 5)
        time.sleep(0.3)
        events = collector.events(NODE)
        assert_contiguous(events)  # the node sent each event once (broker redeliveries are kept apart)
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)  # and in seq order
        originals = {json.dumps(e, sort_keys=True) for e in events}
        assert all(json.dumps(json.loads(p), sort_keys=True) in originals
                   for t, p in collector.dups if t.endswith("/events"))
        assert [e["event"] for e in sorted(events, key=lambda e: e["seq"])][-4:] == [
            "playback_started", "playback_finished", "playback_started", "playback_finished"]
        assert node2.seq == len(events) == 7
        assert wait_until(lambda: not (tmp_path / "node" / "outbox.jsonl").read_bytes(), 3)
    finally:
        for n in started:
            n.stop(clean=False)
        collector.close()


# -------------------------------------------------------------------------------------- fleet, CLI


def test_fleet(broker, panel, tmp_path, mp3):
    configs = [panel.node_config(f"loa-{i:02d}", tmp_path / f"n{i}") for i in range(3)]
    fleet = Fleet(configs, playback_log=tmp_path / "plays.jsonl")
    fleet.start()
    try:
        media = panel.add_media(mp3)
        t0 = time.time() + 1.0
        for i, config in enumerate(configs):
            plan = panel.plan(config.node_id, 1, [panel.item(f"x{i}", t0, media)])
            panel.publish_plan(config.node_id, plan)
        assert all(n.wait_for_plan(1, 5) for n in fleet.nodes.values())
        assert wait_until(lambda: len(fleet.plays()) == 3, 4)
        summary = fleet.summary()
        assert summary["online"] == 3 and summary["played"] == 3 and summary["max_abs_offset_ms"] < 50
        assert len((tmp_path / "plays.jsonl").read_text().splitlines()) == 3
    finally:
        fleet.stop()


def test_cli_registers_then_reuses_credentials(broker, tmp_path, capsys):
    key = Ed25519PrivateKey.generate()
    api = PanelApiStub(public_key_b64(key), api_token="secret-api")
    base = ["sim", "--broker", f"mqtt://{broker.host}:{broker.port}", "--panel", api.base,
            "--data", str(tmp_path / "sim"), "--duration", "0.6", "--summary-every", "0.3"]
    try:
        assert cli_main([*base, "--nodes", "2", "--api-token", "secret-api", "--zone", "P01"]) == 0
        out = capsys.readouterr().out
        assert "registered 2 nodes" in out and "online 2/2" in out
        assert [r["body"] for r in api.requests] == [
            {"node_id": "sim-001", "name": "Simulated node 001", "zone": "P01"},
            {"node_id": "sim-002", "name": "Simulated node 002", "zone": "P01"}]
        assert all(r["auth"] == "Bearer secret-api" for r in api.requests)
        assert retained_status(broker.host, broker.port, "sim-002")["state"] == "stopped"
        # the second run reuses the saved credentials instead of registering again
        assert cli_main(base) == 0
        assert "using credentials saved" in capsys.readouterr().out and len(api.requests) == 2
        # a credentials file without the key fetches it from the panel; registering a taken id fails
        creds = tmp_path / "creds.json"
        creds.write_text(json.dumps([{"node_id": "sim-001", "token": api.registered["sim-001"]}]))
        other = ["--data", str(tmp_path / "other")]
        assert cli_main([*base, *other, "--credentials", str(creds)]) == 0
        assert cli_main([*base, *other, "--nodes", "1", "--api-token", "secret-api", "--zone", "P01"]) == 2
        assert "already registered" in capsys.readouterr().err
    finally:
        api.close()


def test_cli_scale_flag_runs_the_scale_simulator(broker, tmp_path, capsys):
    """``loaphuong sim --scale`` hands over to the scale CLI, which shares the credentials handling."""
    api = PanelApiStub(public_key_b64(Ed25519PrivateKey.generate()), api_token="secret-api")
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps([{"node_id": "sim-001", "token": "t-1"}]))  # no key: fetched from the panel
    try:
        assert cli_main(["sim", "--scale", "--broker", f"mqtt://{broker.host}:{broker.port}", "--panel", api.base,
                         "--data", str(tmp_path / "scale"), "--credentials", str(creds),
                         "--duration", "0.6", "--summary-every", "0.3"]) == 0
        out = capsys.readouterr().out
        assert "1 nodes in one process" in out and "connected" in out and "outbox" in out
        assert cli_main(["sim", "--scale", "--broker", "http://x", "--credentials", str(creds)]) == 2
        assert "unsupported broker URL" in capsys.readouterr().err
    finally:
        api.close()


# ------------------------------------------------------------------ protocol v1 additions (this session)

VN = "Asia/Ho_Chi_Minh"


def hhmm(epoch: float) -> str:
    """Local HH:MM in Vietnam of an instant."""
    return datetime.fromtimestamp(epoch, ZoneInfo(VN)).strftime("%H:%M")


def quiet_now() -> dict[str, str]:
    """Quiet hours from 30 minutes ago to 30 minutes ahead (local time)."""
    now = time.time()
    return {"start": hhmm(now - 1800), "end": hhmm(now + 1800)}


def by_item(events: list[dict], item_id: str) -> list[dict]:
    return [e for e in events if e.get("item_id") == item_id]


def play_now_args(media: dict, alert_id: str = "A1", **kw) -> dict:
    return {"alert_id": alert_id, "media": media, "priority": "emergency", "repeat": 1, "gap_ms": 0,
            "drill": False, "title": f"alert {alert_id}", **kw}


def test_end_at_cuts_the_item(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    media = panel.add_media(mp3, duration_ms=3000)
    t0 = time.time() + 1.0
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("cut", t0, media, end_at=t0 + 0.5)]))
    stopped = collector.wait_events(NODE, "playback_stopped", timeout=6)
    assert len(stopped) == 1 and stopped[0]["reason"] == "end_at" and stopped[0]["item_id"] == "cut"
    assert stopped[0]["schedule_id"] == "sch-cut" and stopped[0]["drill"] is False
    cut_at = parse_ts(stopped[0]["at"]).timestamp()
    assert t0 + 0.45 < cut_at < t0 + 0.7, cut_at - t0
    assert not collector.events(NODE, "playback_finished") and not collector.events(NODE, "playback_failed")
    assert node.plays[0]["result"] == "end_at" and 400 <= node.plays[0]["played_ms"] <= 650


def test_end_at_already_past_is_stale(broker, panel, collector, nodes, tmp_path, mp3):
    boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    media = panel.add_media(mp3, duration_ms=3000)
    t0 = time.time() - 5  # its window (max_late 60 s) is open, but end_at has passed
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("late", t0, media, end_at=t0 + 2)]))
    failed = collector.wait_events(NODE, "playback_failed")
    assert failed[0]["reason"] == "stale" and not collector.events(NODE, "playback_started")


def test_play_now_preempts_a_normal_item_acks_when_started_and_repeats(broker, panel, collector, nodes,
                                                                         tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    bulletin = panel.add_media(mp3, duration_ms=20_000)
    alert_media = panel.add_media(mp3, duration_ms=600)
    t0 = time.time() + 0.5
    panel.publish_plan(NODE, panel.plan(NODE, 1, [
        panel.item("bulletin", t0, bulletin),
        # due while the alert plays: it waits and plays after it (its window is still open)
        panel.item("waiting", t0 + 1.5, bulletin, duration_ms=300, max_late_ms=10_000),
    ]))
    collector.wait_events(NODE, "playback_started")
    time.sleep(0.5)
    cmd = panel.command(NODE, "play_now", play_now_args(alert_media, repeat=2, gap_ms=300, drill=True,
                                                        volume=95))
    sent = time.time()
    panel.publish_cmd(NODE, cmd)
    ack = collector.wait_ack(NODE, cmd["id"])
    assert ack["status"] == "ok" and ack["data"] == {"item_id": "alert:A1:1"}, ack

    stopped = collector.wait_events(NODE, "playback_stopped")
    assert stopped[0]["item_id"] == "bulletin" and stopped[0]["reason"] == "preempted"
    assert stopped[0]["command_id"] == cmd["id"]
    finished = wait_until(lambda: by_item(collector.events(NODE, "playback_finished"), "alert:A1:2"), 6)
    assert finished, collector.events(NODE)
    events = collector.events(NODE)
    started = {e["item_id"]: e for e in events if e["event"] == "playback_started"}
    first, second = started["alert:A1:1"], started["alert:A1:2"]
    for e in (first, second):
        assert e["drill"] is True and e["alert_id"] == "A1" and e["command_id"] == cmd["id"]
        assert e["priority"] == "emergency" and "schedule_id" not in e and "plan_version" not in e
        assert e["sha256"] == alert_media["sha256"]
    assert parse_ts(first["actual_start"]).timestamp() - sent < 1.0  # fetched and started at once
    assert stopped[0]["seq"] < first["seq"] <= ack_seq_bound(events, ack)
    gap = parse_ts(second["actual_start"]).timestamp() - parse_ts(first["actual_start"]).timestamp()
    assert 0.85 < gap < 1.1, gap  # 600 ms + 300 ms gap
    # the plan item due during the alert waited, then played after it
    waited = wait_until(lambda: [p for p in node.plays if p["item_id"] == "waiting"], 5)
    assert waited and waited[0]["result"] == "finished", node.plays
    alert_end = parse_ts(by_item(events, "alert:A1:2")[-1]["at"]).timestamp()
    assert parse_ts(waited[0]["actual_start"]).timestamp() >= alert_end - 0.01
    assert [p["volume"] for p in node.plays if p["item_id"].startswith("alert:")] == [95, 95]
    assert next(p for p in node.plays if p["item_id"] == "waiting")["volume"] == 80  # per item only
    assert_contiguous(collector.events(NODE))


def ack_seq_bound(events: list[dict], ack: dict) -> int:
    """Highest event seq published no later than the ack (the ack comes once playback started)."""
    at = parse_ts(ack["at"])
    return max(e["seq"] for e in events if parse_ts(e["at"]) <= at)


def test_stop_by_alert_id_and_play_now_errors(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    media = panel.add_media(mp3, duration_ms=5000)
    cmd = panel.command(NODE, "play_now", play_now_args(media, alert_id="storm-3", repeat=3))
    panel.publish_cmd(NODE, cmd)
    assert collector.wait_ack(NODE, cmd["id"])["status"] == "ok"
    other = panel.command(NODE, "stop", {"alert_id": "flood-1"})  # another alert: nothing to stop
    panel.publish_cmd(NODE, other)
    assert collector.wait_ack(NODE, other["id"]) == {**collector.wait_ack(NODE, other["id"]), "status": "ok",
                                                     "data": {}}
    assert node.plays == []
    stop = panel.command(NODE, "stop", {"alert_id": "storm-3"})
    panel.publish_cmd(NODE, stop)
    ack = collector.wait_ack(NODE, stop["id"])
    assert ack["status"] == "ok" and ack["data"] == {"stopped": "alert:storm-3:1"}
    stopped = collector.wait_events(NODE, "playback_stopped")
    assert stopped[0]["reason"] == "command" and stopped[0]["alert_id"] == "storm-3"
    time.sleep(3.5)  # gap 0 ms: a remaining repeat would have started by now
    assert [e["item_id"] for e in collector.events(NODE, "playback_started")] == ["alert:storm-3:1"]

    # bad args, missing media: acked error
    bad = panel.command(NODE, "play_now", {"alert_id": "x", "repeat": 11, "media": media})
    panel.publish_cmd(NODE, bad)
    ack = collector.wait_ack(NODE, bad["id"])
    assert ack["status"] == "error" and ack["error"].startswith("args.repeat"), ack
    gone = dict(media, url=panel.media.base + "/media/missing.mp3", sha256="ab" * 32)
    lost = panel.command(NODE, "play_now", play_now_args(gone, alert_id="lost"))
    panel.publish_cmd(NODE, lost)
    ack = collector.wait_ack(NODE, lost["id"], timeout=10)
    assert ack["status"] == "error" and "HTTP 404" in ack["error"], ack
    failed = collector.wait_events(NODE, "playback_failed")
    assert failed[-1]["item_id"] == "alert:lost:1" and failed[-1]["reason"] == "media_unavailable"
    assert collector.events(NODE, "media_failed")[0]["item_id"] == "alert:lost:1"


def test_stop_without_alert_id_stops_any_alert(broker, panel, collector, nodes, tmp_path, mp3):
    boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    media = panel.add_media(mp3, duration_ms=5000)
    cmd = panel.command(NODE, "play_now", play_now_args(media, repeat=2))
    panel.publish_cmd(NODE, cmd)
    assert collector.wait_ack(NODE, cmd["id"])["status"] == "ok"
    stop = panel.command(NODE, "stop")
    panel.publish_cmd(NODE, stop)
    assert collector.wait_ack(NODE, stop["id"])["data"] == {"stopped": "alert:A1:1"}
    assert collector.wait_events(NODE, "playback_stopped")[0]["reason"] == "command"
    time.sleep(0.5)
    assert len(collector.events(NODE, "playback_started")) == 1


def test_quiet_hours_are_enforced_on_the_node_live_emergency_exempt(broker, panel, collector, nodes,
                                                                      tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    media = panel.add_media(mp3, duration_ms=300)
    t0 = time.time() + 1.0
    panel.publish_plan(NODE, panel.plan(NODE, 1, [
        panel.item("normal", t0, media),
        panel.item("drill", t0 + 0.5, media, priority="emergency", drill=True),
        panel.item("live", t0 + 1.0, media, priority="emergency"),
    ], tz=VN, quiet_hours=quiet_now()))
    assert wait_until(lambda: len(node.plays) == 3, 6), node.plays
    assert {p["item_id"]: p["result"] for p in node.plays} == {
        "normal": "quiet_hours", "drill": "quiet_hours", "live": "finished"}
    failed = {e["item_id"]: e for e in collector.wait_events(NODE, "playback_failed", 2)}
    assert failed["normal"]["reason"] == "quiet_hours" and failed["drill"]["drill"] is True
    assert [e["item_id"] for e in collector.events(NODE, "playback_started")] == ["live"]

    drill = panel.command(NODE, "play_now", play_now_args(media, alert_id="d1", drill=True))
    panel.publish_cmd(NODE, drill)
    ack = collector.wait_ack(NODE, drill["id"])
    assert ack["status"] == "error" and "quiet hours" in ack["error"]
    assert collector.wait_events(NODE, "playback_failed", 3)[-1]["item_id"] == "alert:d1:1"
    live = panel.command(NODE, "play_now", play_now_args(media, alert_id="l1"))
    panel.publish_cmd(NODE, live)
    assert collector.wait_ack(NODE, live["id"])["status"] == "ok"

    # quiet hours that end before the item would sound are no obstacle
    media2 = panel.add_media(mp3, duration_ms=300)
    later = time.time() + 1.0
    panel.publish_plan(NODE, panel.plan(NODE, 2, [panel.item("fine", later, media2)], tz=VN,
                                        quiet_hours={"start": hhmm(later - 7200), "end": hhmm(later - 3600)}))
    assert wait_until(lambda: any(p["item_id"] == "fine" and p["result"] == "finished" for p in node.plays), 5)


def test_volume_profile_steps_and_set_volume_override(broker, panel, collector, nodes, tmp_path, mp3):
    # the node's clock sits 1.5 s before 06:00 local (clock skew), so the 06:00 step begins during the test
    local = datetime.now(ZoneInfo(VN))
    six = local.replace(hour=6, minute=0, second=0, microsecond=0)
    if six > local:
        six -= timedelta(days=1)
    skew_ms = round((six.timestamp() - 1.5 - time.time()) * 1000)
    config = panel.node_config(NODE, tmp_path / "n", clock_offset_ms=skew_ms)
    assert config.skew_ms == skew_ms
    node = boot(nodes, config)
    profile = [{"at": "06:00", "volume": 90}, {"at": "21:00", "volume": 30}]
    panel.publish_plan(NODE, panel.plan(NODE, 1, [], tz=VN, volume_profile=profile))
    assert wait_until(lambda: node.plan_version == 1, 3)
    assert node.volume == 30  # 05:59:58: the 21:00 step of the day before
    cmd = panel.command(NODE, "set_volume", {"volume": 55}, ttl=30 - skew_ms / 1000)
    panel.publish_cmd(NODE, cmd)
    assert collector.wait_ack(NODE, cmd["id"])["status"] == "ok" and node.volume == 55  # overrides …
    assert wait_until(lambda: node.volume == 90, 4), node.volume  # … until the next step
    assert wait_until(lambda: any(s.get("volume") == 90 for s in collector.statuses(NODE)), 3)


def test_reboot_command_restarts_from_persisted_state(broker, panel, collector, nodes, tmp_path, mp3):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n", reboot_delay_s=0.3))
    media = panel.add_media(mp3, duration_ms=300)
    t0 = time.time() + 3.0
    panel.publish_plan(NODE, panel.plan(NODE, 1, [panel.item("after", t0, media)]))
    assert node.wait_for_plan(1, 3)
    cmd = panel.command(NODE, "reboot")
    panel.publish_cmd(NODE, cmd)
    ack = collector.wait_ack(NODE, cmd["id"])
    assert ack["status"] == "ok" and ack["data"] == {"session": 2}
    assert wait_until(lambda: node.reboots == 1 and node.connected, 5)
    wait_until(lambda: any(s["session"] == 2 for s in collector.statuses(NODE)), 3)
    states = [(s["state"], s["session"]) for s in collector.statuses(NODE)]
    assert ("stopped", 1) in states and ("online", 2) in states
    assert states.index(("stopped", 1)) < states.index(("online", 2))
    assert node.session == 2 and node.plan_version == 1
    assert wait_until(lambda: [p["result"] for p in node.plays] == ["finished"], 5), node.plays
    assert len(panel.media.requests) == 1  # media kept across the reboot
    assert_contiguous(collector.events(NODE))


def test_heartbeat_status_carries_clock_uptime_and_rssi(broker, panel, collector, nodes, tmp_path):
    boot(nodes, panel.node_config(NODE, tmp_path / "n", heartbeat_s=0.5, clock_offset_ms=4000))
    time.sleep(1.8)
    received = time.time()
    statuses = collector.statuses(NODE)
    assert len(statuses) >= 4, statuses  # online after CONNACK + heartbeats every 0.5 s
    last = statuses[-1]
    assert last["state"] == "online" and last["heartbeat_s"] == 1 and isinstance(last["uptime_s"], int)
    assert -150 <= last["rssi_dbm"] <= 0
    offset = parse_ts(last["clock"]).timestamp() - received
    assert 3.0 < offset < 4.5, offset  # the panel sees the node's 4 s skew
    assert retained_status(broker.host, broker.port, NODE)["clock"]


def test_stream_item_plays_for_its_duration_even_offline(broker, panel, collector, nodes, tmp_path):
    node = boot(nodes, panel.node_config(NODE, tmp_path / "n"))
    panel.media.files["/live/vov1"] = b"ID3"  # a reachable "stream"
    t0 = time.time() + 0.8
    unreachable = {"url": "http://127.0.0.1:9/vov1.mp3", "duration_ms": 400}
    reachable = {"url": panel.media.base + "/live/vov1", "duration_ms": 300}
    panel.publish_plan(NODE, panel.plan(NODE, 1, [
        panel.item("relay-off", t0, None, stream=unreachable),
        panel.item("relay-on", t0 + 0.7, None, stream=reachable),
    ]))
    assert wait_until(lambda: len(node.plays) == 2, 5), node.plays
    assert [p["result"] for p in node.plays] == ["finished", "finished"]
    finished = {e["item_id"]: e for e in collector.wait_events(NODE, "playback_finished", 2)}
    assert finished["relay-off"]["reason"].startswith("stream unreachable")
    assert "sha256" not in finished["relay-off"]
    assert 380 <= node.plays[0]["played_ms"] <= 480
    assert not collector.events(NODE, "media_ready") and not collector.events(NODE, "media_failed")
