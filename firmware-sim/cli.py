"""``loaphuong sim``: run N simulated nodes against a broker and a panel until Ctrl-C.

Credentials come from ``--credentials FILE`` (or ``<data>/credentials.json`` left by an earlier run), or
the nodes are registered through the panel REST API with ``--api-token`` and ``--zone``.
"""

from __future__ import annotations

import argparse
import logging
import os
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
from firmware_sim.fleet import Fleet
from firmware_sim.node import NodeConfig, b64_key_ok
from firmware_sim.output import add_output_arguments, faulty_ids
from firmware_sim.scale_cli import main as scale_main

from devices.protocol import DEFAULT_PREFIX

log = logging.getLogger("firmware_sim")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loaphuong sim",
                                description="Run simulated Loa Phường loudspeaker nodes.")
    p.add_argument("--nodes", type=int, default=None,
                   help="number of nodes (default: every entry of the credentials file)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    p.add_argument("--panel", default="http://127.0.0.1:5000", help="panel base URL (registration, key)")
    p.add_argument("--data", type=Path, default=Path("sim-data"), help="data dir; one sub-dir per node")
    p.add_argument("--credentials", type=Path, default=None,
                   help="JSON credentials (list of {node_id, token} or {panel_public_key, nodes: [...]})")
    p.add_argument("--api-token", default=os.environ.get("LOAPHUONG_API_TOKEN"),
                   help="panel API token to register nodes (env LOAPHUONG_API_TOKEN)")
    p.add_argument("--zone", default=None, help="zone code the registered nodes belong to")
    p.add_argument("--id-prefix", default="sim", help="node ids are <id-prefix>-001, -002, …")
    p.add_argument("--prefix", default=None, help=f"MQTT topic prefix (default {DEFAULT_PREFIX})")
    p.add_argument("--log", type=Path, default=None, help="append every playback to this JSONL file")
    p.add_argument("--sink", type=Path, default=None, help="decode each playback to a WAV file in this dir")
    p.add_argument("--clock-offset-ms", type=int, default=0, help="skew every node's clock by this much")
    p.add_argument("--keepalive", type=int, default=15)
    p.add_argument("--heartbeat", type=float, default=60.0, help="seconds between status heartbeats")
    p.add_argument("--summary-every", type=float, default=5.0, help="seconds between summary lines")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many seconds (0: until Ctrl-C)")
    add_output_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log node activity")
    return p


def build_configs(args: argparse.Namespace) -> list[NodeConfig]:
    host, port = parse_mqtt_url(args.broker)
    cred_path: Path | None = args.credentials
    saved = args.data / "credentials.json"
    if cred_path is None and saved.exists():
        print(f"using credentials saved by an earlier run: {saved}")
        cred_path = saved
    if cred_path is not None:
        entries, top_key, top_prefix = load_credentials(cred_path)
    else:
        if not args.api_token or not args.zone or not args.nodes:
            raise CliError("without --credentials, pass --nodes N, --api-token TOKEN and --zone ZONE "
                           "to register nodes through the panel")
        doc = register_nodes(args.panel, args.api_token, args.zone, args.nodes, args.id_prefix)
        save_credentials(saved, doc)
        print(f"registered {len(doc['nodes'])} nodes; credentials saved to {saved}")
        entries, top_key, top_prefix = doc["nodes"], doc["panel_public_key"], doc["topic_prefix"]
    if args.nodes is not None:
        if args.nodes > len(entries):
            raise CliError(f"--nodes {args.nodes} but the credentials hold only {len(entries)} nodes")
        entries = entries[: args.nodes]
    fetched: str | None = None
    configs = []
    faulty = faulty_ids(args.output_fault, [e["node_id"] for e in entries])
    for entry in entries:
        key = entry.get("panel_public_key") or top_key
        if not key:
            fetched = fetched or fetch_panel_key(args.panel)
            key = fetched
        if not b64_key_ok(key):
            raise CliError(f"panel public key for {entry['node_id']} is not a base64 Ed25519 key")
        configs.append(
            NodeConfig(
                node_id=entry["node_id"],
                token=entry["token"],
                broker_host=host,
                broker_port=port,
                panel_public_key=key,
                data_dir=args.data / entry["node_id"],
                topic_prefix=args.prefix or entry.get("topic_prefix") or top_prefix or DEFAULT_PREFIX,
                clock_offset_ms=args.clock_offset_ms,
                keepalive=args.keepalive,
                sink_dir=args.sink,
                heartbeat_s=args.heartbeat,
                output_fault=args.output_fault.kind if entry["node_id"] in faulty else None,
                output_sensor=args.output_sensor,
            )
        )
    return configs


def format_summary(summary: dict[str, Any]) -> str:
    held = summary["plan_versions"]
    versions = ",".join(f"v{v}" for v in held) if len(held) <= 3 else f"{len(held)} versions"
    versions = versions or "-"
    offset = summary["max_abs_offset_ms"]
    return (
        f"[{datetime.now().strftime('%H:%M:%S')}] online {summary['online']}/{summary['nodes']}"
        f" · plan {summary['with_plan']}/{summary['nodes']} ({versions})"
        f" · played {summary['played']} · failed {summary['failed']}"
        f" · max |offset| {'-' if offset is None else f'{offset} ms'}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        argv = argv[1:]
    if "--scale" in argv:  # thousands of nodes on one event loop: firmware_sim.scale_cli
        return scale_main([a for a in argv if a != "--scale"])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        configs = build_configs(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fleet = Fleet(configs, playback_log=args.log)
    fleet.start()
    print(f"{len(configs)} simulated nodes → {args.broker} (data in {args.data}); Ctrl-C to stop")
    started = time.monotonic()
    try:
        while not args.duration or time.monotonic() - started < args.duration:
            remaining = args.duration - (time.monotonic() - started) if args.duration else args.summary_every
            time.sleep(max(0.05, min(args.summary_every, remaining)))
            print(format_summary(fleet.summary()), flush=True)
    except KeyboardInterrupt:
        print("stopping…")
    finally:
        fleet.stop(clean=True)
    print(format_summary(fleet.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
