"""The scale simulator in its own process for the benchmarks (its RSS is measured alone, and it does not share
a GIL with the panel). Driven over a ``multiprocessing`` pipe."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from firmware_sim.scale import NodeCred, ScaleFleet
from firmware_sim.scale_cli import raise_fd_limit


def _rss() -> dict[str, float]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def worker(conn: Connection, config: Any, creds: list[tuple[str, str, float]]) -> None:
    raise_fd_limit(len(creds) + 1024)
    applied: dict[str, tuple[int, float]] = {}
    started: list[tuple[str, str, float, float]] = []
    fleet = ScaleFleet(config, [NodeCred(n, t, off) for n, t, off in creds])

    def on_delivered(node_id: str, event: dict[str, Any], wall: float) -> None:
        if event.get("event") == "plan_applied":
            applied[node_id] = (int(event["plan_version"]), wall)

    def on_started(node_id: str, item_id: str, actual: float, scheduled: float) -> None:
        started.append((node_id, item_id, actual, scheduled))

    fleet.start()
    fleet.add_hook(delivered=on_delivered, started=on_started)
    conn.send(("ready", None))
    while True:
        cmd, arg = conn.recv()
        if cmd == "summary":
            conn.send(("ok", {**fleet.summary(), **_rss()}))
        elif cmd == "applied_count":  # polled while (a) runs: an int, not 10 000 entries pickled 10 times a second
            conn.send(("ok", fleet.call(lambda a=arg: sum(1 for v, _ in applied.values() if v >= a))))
        elif cmd == "applied":
            conn.send(("ok", fleet.call(lambda a=arg: {n: w for n, (v, w) in applied.items() if v >= a})))
        elif cmd == "started":
            conn.send(("ok", fleet.call(lambda a=arg: [s for s in started if s[1].startswith(a)])))
        elif cmd == "storm":
            conn.send(("ok", len(fleet.disconnect_storm(arg))))
        elif cmd == "stop":
            fleet.stop(clean=True)
            conn.send(("ok", _rss()))
            return


class SimProcess:
    def __init__(self, config: Any, creds: list[tuple[str, str, float]]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(child, config, creds), daemon=True)
        self.proc.start()
        status, _ = self.conn.recv()
        assert status == "ready"

    def ask(self, cmd: str, arg: Any = None, timeout: float = 300) -> Any:
        self.conn.send((cmd, arg))
        if not self.conn.poll(timeout):
            raise TimeoutError(f"simulator did not answer {cmd!r}")
        status, value = self.conn.recv()
        return value

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def stop(self) -> dict[str, float]:
        try:
            return self.ask("stop", timeout=120)
        finally:
            self.proc.join(30)
            if self.proc.is_alive():
                self.proc.terminate()


class ShardedSim:
    """The fleet split over ``n`` simulator processes by node, answering like one :class:`SimProcess`.

    Real loudspeakers verify their plans in parallel, each on its own CPU; one simulator process verifies
    10 000 Ed25519 signatures one after another. Two processes let the benchmark use both cores for the
    nodes' side of (a). Counts add up; RSS figures add up (the whole simulator's memory).

    ``hosts``: broker addresses handed out to the shards in turn (shard ``i`` connects to
    ``hosts[i % len(hosts)]``); empty: every shard uses ``config.broker_host``."""

    def __init__(self, config: Any, creds: list[tuple[str, str, float]], processes: int,
                 hosts: tuple[str, ...] = ()) -> None:
        self.shards = []
        for i in range(processes):
            shard_config = dataclasses.replace(
                config, data_dir=config.data_dir / f"shard{i}",
                broker_host=hosts[i % len(hosts)] if hosts else config.broker_host,
                playback_log=config.playback_log.with_name(f"{config.playback_log.stem}-{i}.jsonl")
                if config.playback_log else None)
            self.shards.append(SimProcess(shard_config, creds[i::processes]))

    def ask(self, cmd: str, arg: Any = None, timeout: float = 300) -> Any:
        answers = [shard.ask(cmd, arg, timeout) for shard in self.shards]
        if isinstance(answers[0], dict):
            merged: dict[str, Any] = {}
            for answer in answers:
                for key, value in answer.items():
                    if isinstance(value, int | float) and not isinstance(value, bool) and key in merged:
                        merged[key] += value
                    elif key not in merged:
                        merged[key] = value
            return merged
        if isinstance(answers[0], list):
            return [row for answer in answers for row in answer]
        return sum(answers)

    @property
    def proc(self) -> Any:
        return self.shards[0].proc

    def stop(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for shard in self.shards:
            for key, value in shard.stop().items():
                out[key] = out.get(key, 0.0) + value
        return out
