"""A set of simulated nodes run in one process (one paho network thread per node)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from firmware_sim.node import NodeConfig, SimNode

log = logging.getLogger("firmware_sim")


class Fleet:
    """Start, stop and observe many :class:`SimNode` at once.

    paho's own loop uses ``select()``, which limits one process to a few hundred clients; the fleet
    is meant for tens of nodes. Spread larger simulations over several processes.
    """

    def __init__(self, configs: list[NodeConfig], playback_log: Path | None = None) -> None:
        ids = [c.node_id for c in configs]
        if len(set(ids)) != len(ids):
            raise ValueError("node ids in a fleet must be unique")
        self.nodes: dict[str, SimNode] = {c.node_id: SimNode(c, playback_log) for c in configs}

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()
        log.info("fleet of %d nodes started", len(self.nodes))

    def stop(self, clean: bool = True) -> None:
        if not self.nodes:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(self.nodes))) as pool:
            list(pool.map(lambda n: n.stop(clean), self.nodes.values()))

    def plays(self) -> list[dict[str, Any]]:
        """Every node's playback records, ordered by scheduled start then node id."""
        out: list[dict[str, Any]] = []
        for node in self.nodes.values():
            out.extend(node.plays_snapshot())
        return sorted(out, key=lambda r: (r["scheduled_start"] or "", r["node_id"], r["item_id"]))

    def summary(self) -> dict[str, Any]:
        """Counts for a live display: nodes online, plans held, playback results."""
        plays = self.plays()
        versions = sorted({n.plan_version for n in self.nodes.values() if n.plan_version is not None})
        offsets = [p["offset_ms"] for p in plays if p["result"] == "finished" and p["offset_ms"] is not None]
        return {
            "nodes": len(self.nodes),
            "online": sum(1 for n in self.nodes.values() if n.connected),
            "with_plan": sum(1 for n in self.nodes.values() if n.plan_version is not None),
            "plan_versions": versions,
            "played": sum(1 for p in plays if p["result"] == "finished"),
            "failed": sum(1 for p in plays if p["result"] != "finished"),
            "max_abs_offset_ms": max((abs(o) for o in offsets), default=None),
        }
