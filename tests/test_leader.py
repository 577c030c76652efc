"""broadcaster/leader.py on a real PostgreSQL: one leader among holders, a lost connection is lost leadership,
and plan publication serialised across processes."""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, text
from stack import wait_for

from broadcaster.cli import main
from broadcaster.leader import Leadership, current_leader, plan_lock


class Holder:
    """A Leadership with recorded callbacks."""

    def __init__(self, url: str, label: str, interval: float = 0.2) -> None:
        self.events: list[str] = []
        self.leadership = Leadership(url, on_gain=lambda: self.events.append("gain"),
                                     on_lose=lambda: self.events.append("lose"), interval=interval, label=label)

    @property
    def leads(self) -> bool:
        return self.leadership.is_leader.is_set()


def terminate(url: str, application_name: str) -> int:
    """pg_terminate_backend on the sessions of ``application_name``: their connection dropped server-side."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE application_name = :n"), {"n": application_name}).all())
    finally:
        engine.dispose()


def test_two_holders_one_wins_and_the_other_wins_when_the_winners_connection_is_killed(pg_url):
    a, b = Holder(pg_url, "a"), Holder(pg_url, "b")
    engine = create_engine(pg_url)
    try:
        assert a.leadership.check() is True
        assert b.leadership.check() is False
        assert b.leadership.check() is False  # retried: still held
        assert (a.events, b.events) == (["gain"], [])
        assert current_leader(engine) == "loaphuong-leader a"

        assert terminate(pg_url, a.leadership.name) == 1
        assert a.leadership.check() is False  # its check sees the connection gone: lost, jobs stopped
        assert a.events == ["gain", "lose"]
        assert b.leadership.check() is True
        assert b.events == ["gain"]
        assert current_leader(engine) == "loaphuong-leader b"
        assert a.leadership.check() is False  # a reconnects and waits: b holds the lock

        b.leadership.stop()  # giving up frees the lock at once
        assert b.events == ["gain", "lose"]
        assert current_leader(engine) is None
        assert a.leadership.check() is True
    finally:
        a.leadership.stop()
        b.leadership.stop()
        engine.dispose()


def test_with_threads_exactly_one_leads_and_a_killed_leader_is_replaced(pg_url):
    holders = [Holder(pg_url, f"h{i}") for i in range(3)]
    for h in holders:
        h.leadership.start()
    try:
        leader = wait_for(lambda: [h for h in holders if h.leads], 5, "a leader")[0]
        time.sleep(0.6)  # three rounds: nobody else took it
        assert [h for h in holders if h.leads] == [leader]
        started = time.monotonic()
        terminate(pg_url, leader.leadership.name)
        successor = wait_for(lambda: [h for h in holders if h.leads and h is not leader], 5, "a successor")
        took = time.monotonic() - started
        assert len(successor) == 1
        # A backend terminated server-side is noticed at the holder's next check (one interval): the window in
        # which two processes may believe they lead; plan_lock and the consumer's one MQTT session cover it.
        wait_for(lambda: not leader.leads, 2 * leader.leadership.interval + 1, "the old leader to step down")
        assert leader.events[:2] == ["gain", "lose"]
        assert took < 5 * leader.leadership.interval + 1, took
    finally:
        for h in holders:
            h.leadership.stop()
    assert all(h.events.count("gain") == h.events.count("lose") for h in holders)


def test_sqlite_is_always_the_leader(tmp_path):
    h = Holder(f"sqlite:///{tmp_path / 'x.db'}", "s")
    h.leadership.start()
    assert h.leads and h.events == ["gain"] and h.leadership.check() is True
    h.leadership.stop()
    assert h.events == ["gain", "lose"] and not h.leads


def test_plan_lock_serialises_across_connections(pg_url):
    engine_a, engine_b = create_engine(pg_url), create_engine(pg_url)  # as two processes
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait(5)
        with plan_lock(engine_b):
            order.append("b in")

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with plan_lock(engine_a):
            order.append("a in")
            inside.set()
            time.sleep(0.5)  # b waits meanwhile
            order.append("a out")
        thread.join(5)
        assert order == ["a in", "a out", "b in"]
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_serve_workers_needs_postgresql_and_an_external_broker(monkeypatch, tmp_path, pg_url, capsys):
    """`serve --workers N` refuses what cannot be shared by N processes, before starting anything."""
    monkeypatch.setenv("LOAPHUONG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LOAPHUONG_MQTT_URL", raising=False)
    monkeypatch.setenv("LOAPHUONG_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["serve", "--workers", "2"]) == 2
    assert "needs PostgreSQL" in capsys.readouterr().err
    monkeypatch.setenv("LOAPHUONG_DATABASE_URL", pg_url)
    assert main(["serve", "--workers", "2"]) == 2
    assert "needs an external broker (LOAPHUONG_MQTT_URL" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
