"""``loaphuong sim --scale``: thousands of simulated nodes in one process, with a live summary and fault injection.

Credentials as for ``loaphuong sim`` (``--credentials FILE``, or registration through the panel API with
``--api-token`` and ``--zone``). Every playback goes to a JSONL log with scheduled and actual start.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware_sim.credentials import (
    CliError,
    fetch_panel_key,
    load_credentials,
    parse_mqtt_url,
    register_nodes,
    save_credentials,
)
from firmware_sim.http_async import MediaFaults
from firmware_sim.output import add_output_arguments, faulty_ids
from firmware_sim.scale import FleetConfig, NodeCred, ScaleFleet

from devices.protocol import DEFAULT_PREFIX


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loaphuong sim --scale",
                                description="Run up to tens of thousands of simulated nodes in one process.")
    p.add_argument("--nodes", type=int, default=None, help="number of nodes (default: all credentials)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    p.add_argument("--panel", default="http://127.0.0.1:5000", help="panel base URL (registration, key)")
    p.add_argument("--data", type=Path, default=Path("sim-scale-data"), help="state of all nodes (fleet.db)")
    p.add_argument("--credentials", type=Path, default=None, help="JSON credentials file")
    p.add_argument("--api-token", default=None, help="panel API token to register nodes")
    p.add_argument("--zone", default=None, help="zone code for registered nodes")
    p.add_argument("--id-prefix", default="sim", help="ids of registered nodes: <prefix>-001, …")
    p.add_argument("--prefix", default=None, help=f"MQTT topic prefix (default {DEFAULT_PREFIX})")
    p.add_argument("--log", type=Path, default=None, help="JSONL playback log (default <data>/plays.jsonl)")
    p.add_argument("--keepalive", type=int, default=15)
    p.add_argument("--heartbeat", type=int, default=60, help="status heartbeat period, s")
    p.add_argument("--max-connecting", type=int, default=256, help="connection handshakes in flight at once")
    p.add_argument("--summary-every", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)")
    fault = p.add_argument_group("fault injection")
    fault.add_argument("--clock-skew-ms", type=float, default=0.0,
                       help="each node's clock is off by a random amount within ±this")
    fault.add_argument("--storm-every", type=float, default=0.0, help="disconnect storm every N seconds")
    fault.add_argument("--storm-fraction", type=float, default=0.5, help="share of nodes cut in each storm")
    fault.add_argument("--reboot-every", type=float, default=0.0, help="power-cut some nodes every N seconds")
    fault.add_argument("--reboot-fraction", type=float, default=0.05)
    add_output_arguments(p)
    fault.add_argument("--media-fail-rate", type=float, default=0.0, help="share of media requests answered 503")
    fault.add_argument("--media-drop-rate", type=float, default=0.0, help="share of downloads cut mid-body")
    fault.add_argument("--media-corrupt-rate", type=float, default=0.0, help="share of downloads with a flipped byte")
    fault.add_argument("--media-delay", type=float, default=0.0, help="seconds before the media server answers")
    fault.add_argument("--media-rate", type=int, default=0, help="media bytes/s per download (0: unlimited)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def raise_fd_limit(wanted: int) -> int:
    """Each node holds one socket: lift the soft ``RLIMIT_NOFILE`` towards the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def format_summary(s: dict[str, Any]) -> str:
    versions = s["plan_versions"]
    held = ",".join(f"v{v}×{n}" for v, n in sorted(versions.items())) if len(versions) <= 3 else \
        f"{len(versions)} versions"
    return (f"[{datetime.now().strftime('%H:%M:%S')}] connected {s['connected']}/{s['nodes']}"
            f" · plans {s['with_plan']} ({held or '-'}) · playing {s['playing']}"
            f" · plays {s['plays_finished']} done, {s['plays_cut']} cut, {s['plays_failed']} failed"
            f" · media failures {s['media_failures']} · events {s['events_delivered']}/{s['events']}"
            f" · outbox {s['outbox']} · RSS {rss_mb():.0f} MB")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rng = random.Random(args.seed)
    try:
        host, port = parse_mqtt_url(args.broker)
        saved = args.data / "credentials.json"
        cred_path = args.credentials or (saved if saved.exists() else None)
        if cred_path is not None:
            entries, key, prefix = load_credentials(cred_path)
        else:
            if not (args.api_token and args.zone and args.nodes):
                raise CliError("without --credentials, pass --nodes N, --api-token TOKEN and --zone ZONE")
            doc = register_nodes(args.panel, args.api_token, args.zone, args.nodes, args.id_prefix)
            save_credentials(saved, doc)
            entries, key, prefix = doc["nodes"], doc["panel_public_key"], doc["topic_prefix"]
        if args.nodes is not None:
            entries = entries[: args.nodes]
        key = key or entries[0].get("panel_public_key") or fetch_panel_key(args.panel)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    raise_fd_limit(len(entries) + 1024)
    faults = None
    if any((args.media_fail_rate, args.media_drop_rate, args.media_corrupt_rate, args.media_delay, args.media_rate)):
        faults = MediaFaults(fail_rate=args.media_fail_rate, drop_rate=args.media_drop_rate,
                             corrupt_rate=args.media_corrupt_rate, delay_s=args.media_delay,
                             rate_bps=args.media_rate)
    skew = args.clock_skew_ms
    faulty = faulty_ids(args.output_fault, [e["node_id"] for e in entries])
    creds = [NodeCred(e["node_id"], e["token"], rng.uniform(-skew, skew) if skew else 0.0,
                      output_fault=args.output_fault.kind if e["node_id"] in faulty else None) for e in entries]
    config = FleetConfig(broker_host=host, broker_port=port, panel_public_key=key, data_dir=args.data,
                         topic_prefix=args.prefix or prefix or DEFAULT_PREFIX, keepalive=args.keepalive,
                         heartbeat_s=args.heartbeat, max_connecting=args.max_connecting,
                         playback_log=args.log or args.data / "plays.jsonl", media_faults=faults, seed=args.seed,
                         output_sensor=args.output_sensor)
    fleet = ScaleFleet(config, creds)
    fleet.start()
    print(f"{len(creds)} nodes in one process → {args.broker}; playback log {config.playback_log}; Ctrl-C to stop",
          flush=True)
    began = last_storm = last_reboot = time.monotonic()
    try:
        while not args.duration or time.monotonic() - began < args.duration:
            time.sleep(args.summary_every)
            now = time.monotonic()
            if args.storm_every and now - last_storm >= args.storm_every:
                cut = fleet.disconnect_storm(args.storm_fraction)
                print(f"fault: disconnect storm, {len(cut)} connections dropped", flush=True)
                last_storm = now
            if args.reboot_every and now - last_reboot >= args.reboot_every:
                ids = [c.node_id for c in creds if rng.random() < args.reboot_fraction]
                fleet.reboot(ids, clean=False)
                print(f"fault: power cut and reboot of {len(ids)} nodes", flush=True)
                last_reboot = now
            print(format_summary(fleet.summary()), flush=True)
    except KeyboardInterrupt:
        print("stopping…")
    final = fleet.summary()
    fleet.stop(clean=True)
    print(format_summary(final))
    return 0
