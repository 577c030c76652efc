"""A province-and-more run (issue 16): 100 000 nodes in several simulator processes, one Mosquitto, one panel.

    python bench/bench_100k.py                                  # 100 000 nodes, 4 simulator processes
    python bench/bench_100k.py --nodes 20000 --processes 2 --out /tmp/check.json

Starts Mosquitto, the panel (HTTP API, MQTT bridge, SQLite — hosted in *this* process, so "panel memory" is this
process's RSS) and ``--nodes`` bulk-registered nodes split over ``--processes`` simulator processes
(``bench_fleet.Run`` with ``sim_processes``). Reports the boot time (simulator start → every node connected and
holding its plan), then makes one schedule change and reports, as bench_fleet's (a): the time until every node
PUBACKed its ``plan_applied``, the API response time and the time until every ``plan_applied`` is in the panel
database. Memory: peak (VmHWM) and current (VmRSS) of the panel process, of Mosquitto and of the simulator
processes (summed), plus the kernel's TCP socket memory (not in any process's RSS). CPU seconds each process
spent during the change, and the phase that took longest, point at the next bottleneck.

Writes ``scale_<nodes>`` into ``--out`` (bench/results.json by default; other keys are kept).

What it takes on one machine:
  * open files: Mosquitto holds one socket per node, each simulator process one per node of its share. The soft
    limit is lifted to the hard one (``fleet_setup.raise_fd_limit``); the hard limit itself can only be raised
    with CAP_SYS_RESOURCE (``ulimit -Hn 200000`` as real root, ``docker run --ulimit nofile=200000``). The run
    refuses to start when the hard limit is too low, rather than stalling at the limit.
  * source ports: a client host has one ephemeral port range (``net.ipv4.ip_local_port_range``, 28 232 ports
    by default) per (source address, destination address:port). 100 000 connections to 127.0.0.1:port cannot
    exist. Mosquitto also listens on 127.0.0.2, 127.0.0.3, … (``EmbeddedBroker(extra_hosts=…)``; all of
    127.0.0.0/8 is loopback) and simulator process ``i`` connects to 127.0.0.(2+i): each address needs only
    ``nodes / processes`` ports. ``--widen-port-range`` also widens the range to 1024-65535 for the run (root;
    the old range is put back at the end) for when ``nodes / processes`` is above ~27 000.
  * ``max_connections -1`` (``fleet_setup.MOSQUITTO_SCALE_CONFIG``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_fleet import Run  # noqa: E402
from fleet_setup import raise_fd_limit  # noqa: E402
from sim_worker import ShardedSim  # noqa: E402

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
WIDE_PORT_RANGE = (1024, 65535)
#: Ports per destination address left for anything else on the machine (and sockets in TIME_WAIT).
PORT_MARGIN = 1000
#: File descriptors a process needs besides its node sockets (listeners, logs, pipes, the database, …).
FD_MARGIN = 64


# ------------------------------------------------------------------------------------------ the machine
def proc_status(pid: int | str) -> dict[str, float]:
    """VmHWM (peak resident) and VmRSS of a process, in MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files_limit(pid: int | str) -> int:
    """The soft ``Max open files`` of a running process."""
    with open(f"/proc/{pid}/limits", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def tcp_sockstat() -> dict[str, int]:
    """The kernel's TCP sockets in use and their buffer memory (MB; ``mem`` is counted in pages)."""
    with open("/proc/net/sockstat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("TCP:"):
                words = line.split()[1:]
                stat = dict(zip(words[::2], (int(w) for w in words[1::2]), strict=True))
                return {"inuse": stat["inuse"], "time_wait": stat["tw"],
                        "mem_mb": round(stat["mem"] * os.sysconf("SC_PAGE_SIZE") / 2**20)}
    return {}


def read_port_range() -> tuple[int, int]:
    low, high = PORT_RANGE.read_text("ascii").split()
    return int(low), int(high)


def preflight(nodes: int, processes: int, one_address: bool, widen: bool) -> dict[str, Any]:
    """Check (and where allowed, lift) the limits this run needs; raises SystemExit with the remedy if not."""
    per_process = math.ceil(nodes / processes)
    soft = raise_fd_limit()
    hard = soft  # raise_fd_limit lifts the soft limit to the hard one
    problems = []
    if nodes + FD_MARGIN > hard:
        problems.append(f"Mosquitto needs ~{nodes + FD_MARGIN} open files (one per node) but the hard limit is "
                        f"{hard}; raise it before starting (needs CAP_SYS_RESOURCE: `ulimit -Hn {2 * nodes}` as "
                        f"root, or `docker run --ulimit nofile={2 * nodes}`)")
    if per_process + FD_MARGIN > hard:
        problems.append(f"each simulator process holds {per_process} sockets; the hard limit is {hard}: use "
                        f"--processes {math.ceil(nodes / (hard - FD_MARGIN))} or more")
    old_range = read_port_range()
    port_range = old_range
    per_address = nodes if one_address else per_process
    if per_address + PORT_MARGIN > port_range[1] - port_range[0] + 1 and widen:
        PORT_RANGE.write_text(f"{WIDE_PORT_RANGE[0]} {WIDE_PORT_RANGE[1]}\n", "ascii")
        port_range = read_port_range()
    if per_address + PORT_MARGIN > port_range[1] - port_range[0] + 1:
        problems.append(f"{per_address} connections to one broker address:port but only "
                        f"{port_range[1] - port_range[0] + 1} ephemeral ports ({port_range[0]}-{port_range[1]}): "
                        "use more --processes (one broker address each) or --widen-port-range")
    if problems:
        if port_range != old_range:
            PORT_RANGE.write_text(f"{old_range[0]} {old_range[1]}\n", "ascii")
        raise SystemExit("cannot run at this scale on this machine:\n  * " + "\n  * ".join(problems))
    return {"fd_limit": hard, "port_range": list(port_range), "port_range_before": list(old_range),
            "connections_per_broker_address": per_address}


# ------------------------------------------------------------------------------------------ the run
def sim_pids(run: Run) -> list[int]:
    shards = run.sim.shards if isinstance(run.sim, ShardedSim) else [run.sim]
    return [shard.pid for shard in shards]


def memory(run: Run) -> dict[str, Any]:
    """Peak and current resident memory of the three parts, MB."""
    sims = [proc_status(pid) for pid in sim_pids(run)]
    broker_pid = run.broker.pid
    assert broker_pid is not None, "Mosquitto is not running"
    return {"panel": proc_status("self"), "mosquitto": proc_status(broker_pid),
            "simulator": {"VmHWM": round(sum(s["VmHWM"] for s in sims), 1),
                          "VmRSS": round(sum(s["VmRSS"] for s in sims), 1),
                          "per_process_VmHWM": [s["VmHWM"] for s in sims]},
            "kernel_tcp": tcp_sockstat()}


def cpu(run: Run) -> dict[str, float]:
    broker_pid = run.broker.pid
    assert broker_pid is not None
    return {"panel": cpu_seconds("self"), "mosquitto": cpu_seconds(broker_pid),
            "simulator": sum(cpu_seconds(pid) for pid in sim_pids(run))}


def bottleneck(a: dict[str, Any], cpu_s: dict[str, float], wall_s: float) -> dict[str, Any]:
    """The phases of the change (each from the end of the previous one) and which process used most CPU."""
    plan_at_broker = a["last_plan_at_broker_s"] or a["api_response_s"]
    phases = {"panel_api": a["api_response_s"],
              "panel_to_broker": round(max(0.0, plan_at_broker - a["api_response_s"]), 3),
              "nodes_and_broker": round(max(0.0, a["value"] - plan_at_broker), 3),
              "panel_ingest": round(max(0.0, a["all_in_panel_db_s"] - a["value"]), 3)}
    busiest = max(cpu_s, key=lambda k: cpu_s[k])
    return {"phases_s": phases, "longest_phase": max(phases, key=lambda k: phases[k]),
            "cpu_s_during_change": {k: round(v, 2) for k, v in cpu_s.items()}, "window_s": round(wall_s, 2),
            "busiest_process": busiest, "cores": os.cpu_count()}


def measure(nodes: int, processes: int, root: Path, one_address: bool) -> dict[str, Any]:
    hosts = () if one_address else tuple(f"127.0.0.{2 + i}" for i in range(processes))
    print(f"== {nodes} nodes in {processes} simulator processes"
          + (f", broker also on {', '.join(hosts)}" if hosts else ""), flush=True)
    t = time.monotonic()
    run = Run(nodes, root, sim_processes=processes, broker_hosts=hosts)
    try:
        setup_s = time.monotonic() - t
        at_boot = memory(run)
        broker_pid = run.broker.pid
        assert broker_pid is not None
        broker_fds = open_files_limit(broker_pid)
        print(f"  memory with every node connected and idle: panel {at_boot['panel']['VmRSS']} MB, Mosquitto "
              f"{at_boot['mosquitto']['VmRSS']} MB, simulator {at_boot['simulator']['VmRSS']} MB; kernel TCP "
              f"{at_boot['kernel_tcp']}", flush=True)
        ann = run.announcement()
        before = cpu(run)
        t0 = time.monotonic()
        a, _ = run.plan_change(ann, lead_s=3600)  # starts in an hour: no playback during the measurement
        wall = time.monotonic() - t0
        after = cpu(run)
        spent = {k: after[k] - before[k] for k in before}
        at_end = memory(run)
    finally:
        run.close()
    return {"nodes": nodes, "sim_processes": processes, "broker_addresses": ["127.0.0.1", *hosts],
            "mosquitto_open_files_limit": broker_fds,
            "boot_s": round(run.boot_s, 1), "setup_s": round(setup_s, 1),
            "a_plan_applied_s": a["value"], "a_p50_s": a["p50_s"], "api_response_s": a["api_response_s"],
            "all_in_panel_db_s": a["all_in_panel_db_s"], "plans_at_broker": a["plans_at_broker"],
            "last_plan_at_broker_s": a["last_plan_at_broker_s"],
            "memory_connected_idle_mb": at_boot, "memory_after_change_mb": at_end,
            "peak_rss_mb": {"panel": at_end["panel"]["VmHWM"], "mosquitto": at_end["mosquitto"]["VmHWM"],
                            "simulator_sum": at_end["simulator"]["VmHWM"]},
            "panel_process_note": "the panel (Flask app, MQTT bridge, SQLite) runs inside the benchmark's own "
                                  "process; its RSS includes the benchmark's small bookkeeping (node credentials)",
            "bottleneck": bottleneck(a, spent, wall)}


def git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return commit.stdout.strip() + ("+changes" if dirty else "")


def summary(r: dict[str, Any]) -> str:
    peak = r["peak_rss_mb"]
    b = r["bottleneck"]
    return "\n".join([
        f"scale_{r['nodes']}: {r['nodes']} nodes, {r['sim_processes']} simulator processes, one Mosquitto "
        f"(addresses {', '.join(r['broker_addresses'])}; ports {r['port_range'][0]}-{r['port_range'][1]}, "
        f"open files {r['fd_limit']})",
        f"  boot: every node connected with a plan {r['boot_s']} s after the simulators started "
        f"(registration + boot {r['setup_s']} s)",
        f"  schedule change: plan_applied PUBACKed by all {r['a_plan_applied_s']} s (p50 {r['a_p50_s']} s); "
        f"API answered in {r['api_response_s']} s; last plan passed the broker at {r['last_plan_at_broker_s']} s; "
        f"all plan_applied in the panel DB after {r['all_in_panel_db_s']} s",
        f"  peak RSS: panel (this process) {peak['panel']} MB, Mosquitto {peak['mosquitto']} MB, "
        f"simulator ({r['sim_processes']} processes, sum) {peak['simulator_sum']} MB; kernel TCP buffers "
        f"{r['memory_after_change_mb']['kernel_tcp'].get('mem_mb')} MB",
        f"  phases {b['phases_s']}; longest: {b['longest_phase']}; CPU seconds in the {b['window_s']} s window "
        f"{b['cpu_s_during_change']} on {b['cores']} cores → busiest: {b['busiest_process']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4, help="simulator processes")
    parser.add_argument("--one-address", action="store_true",
                        help="every simulator process connects to 127.0.0.1 (at most ~27 000 nodes)")
    parser.add_argument("--widen-port-range", action="store_true",
                        help="widen net.ipv4.ip_local_port_range to 1024-65535 for the run if needed (root)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOAPHUONG_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    limits = preflight(args.nodes, args.processes, args.one_address, args.widen_port_range)
    tmp = Path(tempfile.mkdtemp(prefix="loaphuong-bench100k-"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        result = measure(args.nodes, args.processes, tmp, args.one_address)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if limits["port_range"] != limits["port_range_before"]:
            low, high = limits["port_range_before"]
            PORT_RANGE.write_text(f"{low} {high}\n", "ascii")
    argv = sys.argv[1:] if argv is None else argv
    result.update(limits)
    result.update({"commit": git_commit(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                   "cpus": os.cpu_count(), "command": " ".join(["python bench/bench_100k.py", *argv]).strip(),
                   "load_average_at_start": load_before,
                   "load_average_at_end": [round(x, 2) for x in os.getloadavg()]})
    # Merged: the other benchmarks' keys stay (an unreadable file raises rather than being replaced).
    results: dict[str, Any] = json.loads(args.out.read_text("utf-8")) if args.out.exists() else {}
    results[f"scale_{args.nodes}"] = result
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(summary(result))
    print(f"results → {args.out} (key scale_{args.nodes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
