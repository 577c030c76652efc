"""Persistent state of every node of a scale simulation, in one SQLite file, with group commit.

A real node persists its counters, plan and outbox in its own flash before it publishes (docs/protocol.md §8,
§11). Ten thousand nodes each calling ``fsync`` per event would measure the disk, not the protocol, so the
simulated nodes share one write-ahead-logged SQLite database and a *group commit*: a node queues its writes,
one transaction every few milliseconds makes them durable, and only then do the callbacks run that publish the
events. The guarantee per node is the one the protocol asks for — an event is on disk before it is on the
wire, so a reboot never reuses a ``seq`` — and a power cut loses only what was never published.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

#: Writes queued within this window are committed together.
COMMIT_DELAY_S = 0.004


class Persistent(Protocol):
    node_id: str

    def state(self) -> dict[str, Any]: ...


class FleetStore:
    """Group-committed per-node state. All methods run on the event loop thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS node_state (node_id TEXT PRIMARY KEY, state TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS node_plan (node_id TEXT PRIMARY KEY, raw BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS outbox (node_id TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
                                               PRIMARY KEY (node_id, seq));
            CREATE TABLE IF NOT EXISTS media (sha256 TEXT PRIMARY KEY, body BLOB NOT NULL);
            """
        )
        self._dirty: dict[str, Persistent] = {}
        self._plans: dict[str, bytes] = {}
        self._add: list[tuple[str, int, bytes]] = []
        self._delete: list[tuple[str, int]] = []
        self._after: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.commits = 0

    # ------------------------------------------------------------------------------------ queueing
    def _soon(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(COMMIT_DELAY_S, self.commit)

    def save_state(self, node: Persistent) -> None:
        self._dirty[node.node_id] = node
        self._soon()

    def save_plan(self, node_id: str, raw: bytes) -> None:
        self._plans[node_id] = raw
        self._soon()

    def add_outbox(self, node_id: str, seq: int, payload: bytes) -> None:
        self._add.append((node_id, seq, payload))
        self._soon()

    def delete_outbox(self, node_id: str, seq: int) -> None:
        self._delete.append((node_id, seq))
        self._soon()

    def after_commit(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` once everything queued so far is durable."""
        self._after.append((callback, args))
        self._soon()

    def forget(self, node_id: str) -> None:
        """A power cut: drop every write of the node not yet committed — its state snapshot, plan and new
        outbox entries together, as a real node's flash keeps all of a write or none of it. (Dropping only the
        snapshot kept an event whose ``seq`` the stored counter had not reached, so the next boot numbered a
        new event with the same ``seq``.) Deletions of PUBACKed events stay: losing one only resends it."""
        self._dirty.pop(node_id, None)
        self._plans.pop(node_id, None)
        self._add = [row for row in self._add if row[0] != node_id]

    # ------------------------------------------------------------------------------------ commit
    def commit(self) -> None:
        self._timer = None
        dirty, self._dirty = self._dirty, {}
        plans, self._plans = self._plans, {}
        add, self._add = self._add, []
        delete, self._delete = self._delete, []
        after, self._after = self._after, []
        if dirty or plans or add or delete:
            states = [(nid, json.dumps(node.state(), separators=(",", ":"))) for nid, node in dirty.items()]
            cur = self.db.cursor()
            cur.execute("BEGIN")
            try:
                if states:
                    cur.executemany("INSERT OR REPLACE INTO node_state VALUES (?, ?)", states)
                if plans:
                    cur.executemany("INSERT OR REPLACE INTO node_plan VALUES (?, ?)", list(plans.items()))
                if add:
                    cur.executemany("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)", add)
                if delete:
                    cur.executemany("DELETE FROM outbox WHERE node_id = ? AND seq = ?", delete)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.commits += 1
        for callback, args in after:
            callback(*args)

    # ------------------------------------------------------------------------------------ loading
    def load(self, node_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """``node_id → {"state": dict | None, "plan": bytes | None, "outbox": [(seq, payload), …]}``."""
        out: dict[str, dict[str, Any]] = {}
        wanted = set(node_ids) if node_ids is not None else None

        def slot(nid: str) -> dict[str, Any] | None:
            if wanted is not None and nid not in wanted:
                return None
            return out.setdefault(nid, {"state": None, "plan": None, "outbox": []})

        for nid, state in self.db.execute("SELECT node_id, state FROM node_state"):
            if (s := slot(nid)) is not None:
                s["state"] = json.loads(state)
        for nid, raw in self.db.execute("SELECT node_id, raw FROM node_plan"):
            if (s := slot(nid)) is not None:
                s["plan"] = bytes(raw)
        for nid, seq, payload in self.db.execute("SELECT node_id, seq, payload FROM outbox ORDER BY node_id, seq"):
            if (s := slot(nid)) is not None:
                s["outbox"].append((int(seq), bytes(payload)))
        return out

    # ------------------------------------------------------------------------------------ media
    def put_media(self, sha256: str, body: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO media VALUES (?, ?)", (sha256, body))

    def all_media(self) -> dict[str, bytes]:
        return {sha: bytes(body) for sha, body in self.db.execute("SELECT sha256, body FROM media")}

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.db.close()
