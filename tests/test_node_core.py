"""One node core, two simulators: the same scenario through the protocol simulator (firmware-sim/node.py, paho
and threads) and the scale simulator (firmware-sim/scale.py, asyncio, group commit), against one real broker,
one media server and the same signed plans and commands — and the same event streams and acks come out.

The scenario touches every check the core makes: quiet hours (refusal, and the live-emergency exemption), expiry
(an item whose window closed before the plan arrived), a wrong sha256 (``media_failed``, then ``playback_failed``
``media_unavailable``), pre-emption of a plan item by a higher one, an equal-priority ``play_now`` cutting a plan
item (``playback_stopped`` ``preempted``), the volume profile, event numbering and the ``play_now`` ack.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from firmware_sim import SimNode
from firmware_sim.scale import FleetConfig, NodeCred, ScaleFleet
from sim_harness import Collector, Panel, make_mp3, wait_until

from devices.protocol import DEFAULT_TZ

pytestmark = pytest.mark.timeout(90)

PROTOCOL_NODE, SCALE_NODE = "core-node", "core-scale"
#: Event fields that are the same on any two nodes given the same plans (not seq, times or node id).
COMPARED = ("event", "item_id", "reason", "plan_version", "schedule_id", "sha256", "scheduled_start", "priority",
            "drill", "command_id", "alert_id")


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _normal(event: dict[str, Any]) -> tuple[Any, ...]:
    fields = dict(event)
    if str(fields.get("item_id", "")).startswith("alert:"):
        fields.pop("scheduled_start", None)  # an alert starts when each node receives the command
    return tuple(fields.get(key) for key in COMPARED)


def _stream(collector: Collector, node_id: str) -> list[dict[str, Any]]:
    """The node's events once each (QoS 1 may deliver one twice), in seq order."""
    by_seq = {e["seq"]: e for e in collector.events(node_id)}
    return [by_seq[s] for s in sorted(by_seq)]


def _acks(collector: Collector, node_id: str) -> dict[str, tuple[Any, ...]]:
    return {a["command_id"]: (a["status"], a.get("data"), a.get("error")) for a in collector.acks(node_id)}


def test_both_simulators_run_the_same_core(broker, tmp_path):
    panel = Panel(broker.host, broker.port)
    collector = Collector(broker.host, broker.port)
    mp3 = make_mp3(0.5)
    good = panel.add_media(mp3, duration_ms=400)
    lying = panel.add_media(b"not what the plan says" * 50, sha256=good["sha256"][::-1])

    node = SimNode(panel.node_config(PROTOCOL_NODE, tmp_path / "node"), playback_log=tmp_path / "node.jsonl")
    token = secrets.token_urlsafe(16)
    panel.media.tokens.add(token)
    fleet = ScaleFleet(FleetConfig(broker_host=broker.host, broker_port=broker.port,
                                   panel_public_key=panel.public_key, data_dir=tmp_path / "scale",
                                   playback_log=tmp_path / "scale.jsonl"), [NodeCred(SCALE_NODE, token)])
    both = (PROTOCOL_NODE, SCALE_NODE)
    try:
        node.start()
        fleet.start()
        assert wait_until(lambda: node.connected and fleet.summary()["connected"] == 1, 10), "not connected"

        # Plan 1: quiet hours now. A normal item is refused, a live emergency is exempt, an item whose window
        # closed two minutes ago is stale.
        local = datetime.now(ZoneInfo(DEFAULT_TZ))
        quiet = {"start": _hhmm(local - timedelta(hours=1)), "end": _hhmm(local + timedelta(hours=1))}
        t0 = time.time() + 1.5
        items1 = [panel.item("q1", t0, good), panel.item("qe", t0 + 0.2, good, priority="emergency"),
                  panel.item("old", time.time() - 120, good, max_late_ms=1000)]
        for node_id in both:
            panel.publish_plan(node_id, panel.plan(node_id, 1, items1, quiet_hours=quiet))

        def finished(item_id: str) -> bool:
            return all(any(e["event"] == "playback_finished" and e.get("item_id") == item_id
                           for e in collector.events(n)) for n in both)

        assert wait_until(lambda: finished("qe"), 10), [collector.events(n) for n in both]

        # Plan 2: no quiet hours, volume 35 from the profile. n1 is cut by the emergency e1; "bad" never gets
        # its bytes; n2 is cut by an equal-priority play_now.
        t1 = time.time() + 1.5
        items2 = [panel.item("n1", t1, good, duration_ms=1200),
                  panel.item("bad", t1, lying, max_late_ms=1500),
                  panel.item("e1", t1 + 0.4, good, priority="emergency"),
                  panel.item("n2", t1 + 1.2, good, duration_ms=4000)]
        for node_id in both:
            panel.publish_plan(node_id, panel.plan(node_id, 2, items2,
                                                   volume_profile=[{"at": "00:00", "volume": 35}]))
        time.sleep(max(0.0, t1 + 2.0 - time.time()))
        alert = {"alert_id": "A1", "media": good, "priority": "normal", "repeat": 1}
        for node_id in both:
            panel.publish_cmd(node_id, panel.command(node_id, "play_now", alert, command_id="cmd-alert-1"))
        assert wait_until(lambda: finished("alert:A1:1"), 10), [collector.events(n) for n in both]
        assert wait_until(lambda: all(any(e.get("item_id") == "bad" and e["event"] == "playback_failed"
                                          for e in collector.events(n)) for n in both), 5)
        time.sleep(0.3)  # anything still in flight (there should be nothing more)

        streams = {n: _stream(collector, n) for n in both}
        for n, events in streams.items():
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), n  # gap-free numbering
        ours, theirs = ([_normal(e) for e in streams[n]] for n in both)
        # The media thread and the scheduler run side by side in node.py: media_ready/media_failed may
        # interleave differently with playback events there. Per item the order is the same, and so is the
        # order of everything else.
        assert sorted(ours, key=str) == sorted(theirs, key=str)
        for item in {e[1] for e in ours}:
            assert [e for e in ours if e[1] == item] == [e for e in theirs if e[1] == item], item
        media = ("media_ready", "media_failed")
        assert [e for e in ours if e[0] not in media] == [e for e in theirs if e[0] not in media]

        # …and the scenario did exercise each check (so equal streams are not equally empty ones).
        outcomes = {(e[1], e[0], e[2]) for e in ours}
        for expected in [("q1", "playback_failed", "quiet_hours"), ("qe", "playback_finished", None),
                         ("old", "playback_failed", "stale"), ("n1", "playback_failed", "preempted"),
                         ("e1", "playback_finished", None), ("bad", "playback_failed", "media_unavailable"),
                         ("n2", "playback_stopped", "preempted"), ("alert:A1:1", "playback_finished", None)]:
            assert expected in outcomes, (expected, sorted(outcomes, key=str))
        failed = [e for e in ours if e[0] == "media_failed"]
        assert failed and all(e[1] == "bad" and "sha256 mismatch" in e[2] for e in failed)
        assert ("n2", "playback_stopped", "preempted") in outcomes
        n2_cut = next(e for e in ours if e[1] == "n2" and e[0] == "playback_stopped")
        assert n2_cut[COMPARED.index("command_id")] == "cmd-alert-1"

        acks = {n: _acks(collector, n) for n in both}
        assert acks[PROTOCOL_NODE] == acks[SCALE_NODE] == {"cmd-alert-1": ("ok", {"item_id": "alert:A1:1"}, None)}

        # The volume profile applies on both: the plays of plan 2 sounded at volume 35.
        fleet.flush()
        node_v2 = {p["item_id"]: p.get("volume") for p in node.plays if p.get("plan_version") == 2}
        scale_log = [json.loads(line)
                     for line in (tmp_path / "scale.jsonl").read_text("utf-8").splitlines()]
        scale_v2 = {p["item_id"]: p.get("volume") for p in scale_log if p.get("plan_version") == 2}
        assert node_v2 == scale_v2 and node_v2.get("e1") == 35, (node_v2, scale_v2)
        assert node.volume == fleet.node_info(SCALE_NODE)["volume"] == 35
    finally:
        node.stop(clean=False)
        fleet.stop()
        collector.close()
        panel.close()


def test_reboot_command_on_both_simulators(broker, tmp_path):
    """The ``reboot`` command: acked ``ok`` first, then a clean restart from persisted state (session + 1), on the
    protocol node and on a scale node (where the fleet performs it once the ack's commit is done)."""
    panel = Panel(broker.host, broker.port)
    collector = Collector(broker.host, broker.port)
    node = SimNode(panel.node_config(PROTOCOL_NODE, tmp_path / "node"))
    token = secrets.token_urlsafe(16)
    panel.media.tokens.add(token)
    fleet = ScaleFleet(FleetConfig(broker_host=broker.host, broker_port=broker.port,
                                   panel_public_key=panel.public_key, data_dir=tmp_path / "scale"),
                       [NodeCred(SCALE_NODE, token)])
    both = (PROTOCOL_NODE, SCALE_NODE)
    try:
        node.start()
        fleet.start()
        assert wait_until(lambda: node.connected and fleet.summary()["connected"] == 1, 10), "not connected"
        before = {PROTOCOL_NODE: node.session, SCALE_NODE: fleet.node_info(SCALE_NODE)["session"]}
        for node_id in both:
            panel.publish_cmd(node_id, panel.command(node_id, "reboot", command_id=f"reboot-{node_id}"))

        def sessions() -> dict[str, int]:
            return {PROTOCOL_NODE: node.session, SCALE_NODE: fleet.node_info(SCALE_NODE)["session"]}

        assert wait_until(lambda: sessions() == {n: s + 1 for n, s in before.items()}, 10), (before, sessions())
        assert wait_until(lambda: node.connected and fleet.node_info(SCALE_NODE)["connected"], 10)
        assert node.reboots == 1
        acks = {n: _acks(collector, n).get(f"reboot-{n}") for n in both}
        assert acks[PROTOCOL_NODE] == acks[SCALE_NODE] and acks[SCALE_NODE][0] == "ok", acks
    finally:
        node.stop(clean=False)
        fleet.stop()
        collector.close()
        panel.close()
