"""Exactly one leader among the panel processes of a deployment (issue 16: beyond one machine).

Several panel processes (gunicorn-style workers, or ``loaphuong serve`` on several machines) may share one
PostgreSQL database and one broker. Every process serves web and API requests and publishes the plans and
commands its own requests cause; only the **leader** runs what must run once per deployment:

* the periodic plan rollover (broadcaster/periodic.py, APScheduler),
* the one subscription to the nodes' messages (status, events, acks, plan requests: the MQTT bridge's
  consumer connection, broadcaster/bridge.py), and with it the panel's presence topic,
* the start-up chores: comparing the broker's logins with the registry, recovering a stuck alert.

The leader is whoever holds a PostgreSQL *session* advisory lock (``pg_try_advisory_lock(LEADER_LOCK_KEY)``)
on a connection of its own. A daemon thread tries to take it every ``interval`` seconds and, once held,
checks the connection as often: a failed check (the connection dropped, the server restarted, the backend was
terminated) is lost leadership at once (``on_lose``). PostgreSQL releases the lock when the holder's session
ends — a killed process closes its socket — so another process takes over within about one ``interval``.

SQLite is one process by definition: the ``Leadership`` of a SQLite deployment is always the leader.

``plan_lock`` is the other half: plan publication for a set of nodes is serialised across processes, so two
processes changing schedules at once never both publish a version for the same node from the same state.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine, create_engine, func, pool, select, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

#: The advisory lock whose holder is the leader ("LoaP" in ASCII; any bigint unique to this application).
LEADER_LOCK_KEY = 0x4C6F6150
#: The advisory lock held while plans are built, stored and published (broadcaster/publication.py).
PLAN_LOCK_KEY = LEADER_LOCK_KEY + 1
#: Seconds between two attempts to take the lock (or two checks of the held connection). A killed leader is
#: replaced within about this long (tests/test_leader_failover.py measures it).
RETRY_S = 2.0
#: ``application_name`` prefix of the lock's connection: ``SELECT … FROM pg_stat_activity`` shows the leader.
APPLICATION_NAME = "loaphuong-leader"

#: The session holding LEADER_LOCK_KEY: its application_name names the leader's host and process id.
LEADER_QUERY = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def process_name() -> str:
    """This process, unique in a deployment of several machines: ``<host>-<pid>``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def is_elected(database_url: str) -> bool:
    """True when the leader must be elected (PostgreSQL); SQLite is one process, always the leader."""
    return not database_url.startswith("sqlite")


class Leadership:
    """Holds (or waits for) the leader's advisory lock; calls ``on_gain``/``on_lose`` when that changes.

    ``on_gain`` and ``on_lose`` run on the leadership thread (or, on SQLite, in ``start``/``stop``). If
    ``on_gain`` raises, the lock is given up again (``on_lose`` runs to undo what was started) and retried at
    the next round: a leader that could not start its jobs must not keep others from running them.
    """

    def __init__(self, database_url: str, *, on_gain: Callable[[], None], on_lose: Callable[[], None],
                 interval: float = RETRY_S, key: int = LEADER_LOCK_KEY, label: str = "") -> None:
        self.on_gain = on_gain
        self.on_lose = on_lose
        self.interval = interval
        self.key = key
        self.elected = is_elected(database_url)
        #: Who holds the lock, as PostgreSQL's ``pg_stat_activity.application_name`` shows it.
        self.name = f"{APPLICATION_NAME} {label or process_name()}"[:63]
        self.is_leader = threading.Event()
        self._lock = threading.Lock()  # check() from the thread and from stop()/tests never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._engine: Engine | None = None
        if self.elected:
            # A connection of its own, never pooled: its session *is* the leadership. TCP keepalives and a user
            # timeout make a silently dead network a failed check within seconds (libpq settings; ignored on a
            # unix socket, where a dead peer is seen at once).
            self._engine = create_engine(database_url, poolclass=pool.NullPool, connect_args={
                "application_name": self.name, "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                "keepalives_interval": 2, "keepalives_count": 3, "tcp_user_timeout": 10_000})

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Leadership:
        """SQLite: become the leader now. PostgreSQL: try once now, then every ``interval`` on a daemon thread."""
        if not self.elected:
            self.is_leader.set()
            self.on_gain()
            return self
        self.check()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Step down (``on_lose`` if leader) and release the lock for another process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 10)
            self._thread = None
        with self._lock:
            if self.is_leader.is_set():
                self._lose("stopping")
            self._close()
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 — the thread must outlive a failing callback
                log.exception("leadership check failed")

    # ------------------------------------------------------------------ one round
    def check(self) -> bool:
        """One round: keep (or lose) the lock if held, else try to take it. Returns whether this is the leader."""
        if not self.elected:
            return self.is_leader.is_set()
        with self._lock:
            if self.is_leader.is_set():
                if not self._alive():
                    self._lose("the connection holding the lock was lost")
                return self.is_leader.is_set()
            if not self._try_take():
                return False
            self.is_leader.set()
            log.info("leadership gained (%s)", self.name)
            try:
                self.on_gain()
            except Exception:  # noqa: BLE001
                log.exception("could not start the leader's jobs: giving the leadership up")
                self._lose("the leader's jobs did not start")
            return self.is_leader.is_set()

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.execute(select(1)).scalar()
        except SQLAlchemyError:
            return False
        return True

    def _try_take(self) -> bool:
        assert self._engine is not None
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return bool(self._conn.execute(select(func.pg_try_advisory_lock(self.key))).scalar())
        except SQLAlchemyError as exc:
            log.warning("leadership: the database is not reachable (%s); retrying", getattr(exc, "orig", None) or exc)
            self._close()
            return False

    def _lose(self, why: str) -> None:
        """Stop the leader's jobs first, then drop the connection (and with it the lock, if still held)."""
        self.is_leader.clear()
        if why == "stopping":
            log.info("leadership given up (%s)", self.name)
        else:
            log.warning("leadership lost (%s): %s", self.name, why)
        try:
            self.on_lose()
        finally:
            if self._conn is not None:  # released now rather than when the server notices the session's end
                with suppress(SQLAlchemyError):
                    self._conn.execute(select(func.pg_advisory_unlock(self.key)))
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None


def current_leader(engine: Engine, key: int = LEADER_LOCK_KEY) -> str | None:
    """The ``application_name`` of the session holding the leader's lock (``loaphuong-leader <host>-<pid>``),
    or None while there is no leader. PostgreSQL only."""
    with engine.connect() as conn:
        return conn.execute(LEADER_QUERY, {"key": key}).scalar()


@contextmanager
def plan_lock(engine: Engine, key: int = PLAN_LOCK_KEY) -> Iterator[None]:
    """Serialise plan publication across the processes of a PostgreSQL deployment; nothing on SQLite (one
    process: the caller's thread lock is enough).

    A session lock on a pooled connection, held from before the nodes' ``plan_version``/``plan_hash`` are read
    until the plans built from them are committed *and handed to the broker*: a second process then reads the
    committed state (and builds nothing if its change gave the same plans), and the broker receives the versions
    of one node in increasing order. If the process dies, its session ends and PostgreSQL releases the lock.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(select(func.pg_advisory_lock(key)))
        try:
            yield
        finally:
            try:
                conn.execute(select(func.pg_advisory_unlock(key)))
            except SQLAlchemyError:  # the connection is gone, and the lock with it
                log.warning("plan lock: the connection was lost before the unlock")
