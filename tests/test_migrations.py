"""Alembic migrations on SQLite and PostgreSQL: from empty to the models' schema, from the schema that commit 0b4b8a1
made with create_all (with data in it) to today's without losing a row, unversioned databases recognised, the
panel's start-up policy (SQLite upgrades itself, PostgreSQL refuses an old schema), and a restart on PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, inspect, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from broadcaster import policy
from broadcaster.app import create_app, runtime, start_services, stop_services
from broadcaster.broker import free_port
from broadcaster.cli import main
from broadcaster.config import TestConfig
from broadcaster.db import (
    FOREIGN_TABLES,
    MIGRATIONS_DIR,
    UPGRADE_COMMAND,
    Database,
    SchemaError,
    alembic_config,
    head_revision,
)
from broadcaster.migrations.legacy import LEGACY_SCHEMAS
from broadcaster.models import Announcement, Base, CommandRecord, Node, NodeEvent
from broadcaster.periodic import ROLLOVER_JOB_ID
from devices import protocol as proto

BASELINE = "0001_baseline"
RELEASE_POLICY = "0002_release_policy"
SHA_A = "a" * 64
SHA_B = "b" * 64
NOW = datetime(2025, 6, 30, 23, 0, tzinfo=UTC)
AIRING = datetime(2030, 3, 3, 23, 0, tzinfo=UTC)  # 06:00 on 4 March 2030 in Vietnam


def _old_models():
    """broadcaster/models.py of commit 0b4b8a1 (tests/legacy/models_0b4b8a1.py), as its own module."""
    name = "loaphuong_models_0b4b8a1"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "legacy" / "models_0b4b8a1.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _include(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def schema_diffs(engine, metadata) -> list:
    """What alembic's autogenerate would change to turn the database into ``metadata`` (types included)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _include})
        return compare_metadata(ctx, metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database on each backend."""
    if request.param == "postgresql":
        return request.getfixturevalue("empty_pg_url")
    return f"sqlite:///{tmp_path / 'loaphuong.db'}"


@pytest.fixture
def database(empty_url):
    db = Database(empty_url)
    yield db
    db.dispose()


# ------------------------------------------------------------------------------------------------ schemas
def test_upgrade_from_empty_gives_exactly_the_models_schema(database):
    assert database.current_revision() is None
    assert database.upgrade() == (None, head_revision())
    assert schema_diffs(database.engine, Base.metadata) == []
    assert database.status() == f"{head_revision()} (head)"
    database.check()  # no SchemaError
    assert database.upgrade() == (head_revision(), head_revision())  # a second upgrade is a no-op


def test_the_baseline_is_the_schema_create_all_made_at_0b4b8a1(database):
    database.upgrade(BASELINE)
    assert database.current_revision() == BASELINE
    assert schema_diffs(database.engine, _old_models().Base.metadata) == []


def test_the_legacy_signatures_are_what_the_migrations_make(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sig.db'}")
    for revision, tables in LEGACY_SCHEMAS.items():
        db.upgrade(revision)
        insp = inspect(db.engine)
        assert {t: frozenset(c["name"] for c in insp.get_columns(t))
                for t in insp.get_table_names() if t != "alembic_version"} == tables, revision
    db.dispose()


def test_the_migrations_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert Path(alembic_config().get_main_option("script_location")) == MIGRATIONS_DIR
    assert (MIGRATIONS_DIR / "env.py").is_file() and MIGRATIONS_DIR.is_absolute()


# ------------------------------------------------------------------------------------- data through upgrade
def _fill_0b4b8a1(engine) -> dict[str, int]:
    """A ward as commit 0b4b8a1 left it: an admin, two zones, nodes, audio, an approved, a published and a submitted
    announcement, schedules, events, an alert with its zones and deliveries, settings, commands, audit."""
    t = _old_models().Base.metadata.tables
    day = AIRING
    with engine.begin() as conn:

        class c:  # noqa: N801 - one INSERT per row: the rows of a table need not name the same columns
            @staticmethod
            def execute(stmt, rows=None):
                if rows is None:
                    return conn.execute(stmt)
                for row in rows:
                    conn.execute(stmt, row)

        c.execute(t["users"].insert(), [
            {"id": 1, "username": "chu-tich", "display_name": "Chủ tịch", "role": "admin", "active": True,
             "password_hash": generate_password_hash("mat-khau-cu-1"), "created_at": NOW},
            {"id": 2, "username": "can-bo", "display_name": "", "role": "officer", "active": True,
             "password_hash": generate_password_hash("mat-khau-cu-2"), "created_at": NOW}])
        c.execute(t["zones"].insert(), [
            {"id": 1, "code": "to-3", "name": "Tổ dân phố 3", "kind": "residential_group", "ward": ""},
            {"id": 2, "code": "to-5", "name": "Tổ dân phố 5", "kind": "residential_group", "ward": ""}])
        c.execute(t["nodes"].insert(), [
            {"id": i, "node_id": f"loa-0{i}", "name": "", "zone_id": z, "token_hash": f"{i}" * 64, "created_at": NOW,
             "state": "online", "plan_version": 3, "last_event_seq": 2, "event_epoch": 0,
             "plan_payload": {"v": 1, "items": []}, "clock_samples": [12, -3]}
            for i, z in ((1, 1), (2, 1), (3, 2))])
        c.execute(t["media"].insert(), [
            {"sha256": sha, "size": 1000, "duration_ms": 4000, "content_type": "audio/mpeg", "created_at": NOW}
            for sha in (SHA_A, SHA_B)])
        c.execute(t["announcements"].insert(), [
            {"id": 1, "title": "Tiêm phòng", "text": "Thông báo tiêm phòng.", "status": "ready", "media_sha256": SHA_A,
             "source": "tts", "created_by_id": 2, "created_at": NOW, "updated_at": NOW, "approval": "approved",
             "submitted_by_id": 2, "reviewed_by_id": 1, "reviewed_at": NOW, "audio_options": {"repeat": 2}},
            {"id": 2, "title": "Bầu cử", "text": "Thông báo bầu cử.", "status": "ready", "media_sha256": SHA_B,
             "source": "tts", "created_at": NOW, "updated_at": NOW, "approval": "published"},
            {"id": 3, "title": "Nháp", "text": "Chưa duyệt.", "status": "ready", "media_sha256": SHA_B,
             "source": "tts", "created_at": NOW, "updated_at": NOW, "approval": "submitted"}])
        c.execute(t["schedules"].insert(), [
            {"id": 1, "announcement_id": 1, "start_at": day, "priority": "normal", "status": "active",
             "created_by_id": 2, "created_at": NOW, "repeat": 1, "gap_ms": 0, "on_preempt": "resume",
             "on_clash": "append", "drill": False,
             "recurrence": {"kind": "daily", "start_date": "2030-03-01", "times": ["06:00"]}},
            {"id": 2, "announcement_id": 2, "start_at": day, "priority": "priority", "status": "active",
             "created_at": NOW, "repeat": 2, "gap_ms": 1000, "on_preempt": "resume", "on_clash": "append",
             "drill": False, "items": [{"kind": "announcement", "announcement_id": 2}]}])
        c.execute(t["schedule_zones"].insert(), [
            {"schedule_id": 1, "zone_id": 1}, {"schedule_id": 2, "zone_id": 1}, {"schedule_id": 2, "zone_id": 2}])
        c.execute(t["node_events"].insert(), [
            {"node_id": "loa-01", "epoch": 0, "seq": s, "event": e, "at": NOW, "received_at": NOW, "schedule_id": 1,
             "item_id": "s1", "sha256": SHA_A} for s, e in ((1, "started"), (2, "finished"))])
        c.execute(t["alerts"].insert(), [
            {"id": 1, "kind": "alert", "title": "Bão số 3", "media_sha256": SHA_A, "announcement_id": 1,
             "drill": False, "all_zones": False, "repeat": 3, "gap_ms": 3000, "status": "released",
             "created_by_id": 1, "created_at": NOW, "released_by_id": 1, "released_at": NOW}])
        c.execute(t["alert_zones"].insert(), [{"alert_id": 1, "zone_id": 1}, {"alert_id": 1, "zone_id": 2}])
        c.execute(t["alert_deliveries"].insert(), [
            {"alert_id": 1, "node_id": f"loa-0{i}", "command_id": f"cmd-{i}", "sent_at": NOW} for i in (1, 2, 3)])
        c.execute(t["commands"].insert(), [
            {"id": f"cmd-{i}", "node_id": f"loa-0{i}", "name": "play_now", "args": {"alert": 1}, "issued_at": NOW,
             "expires_at": NOW + timedelta(minutes=5), "status": "ok", "issued_by_id": 1} for i in (1, 2, 3)])
        c.execute(t["ward_settings"].insert(), [  # "" saved its quiet hours only; p2's admin chose "off"
            {"ward": ward, "quiet_start": "22:00", "quiet_end": "05:00", "emergency_two_person": False,
             "updated_at": NOW} for ward in ("", "p2")])
        c.execute(t["audit_log"].insert(), [
            {"at": NOW, "user_id": 1, "action": "announcement.approve", "target": "announcement:1", "detail": {}},
            {"at": NOW, "user_id": 1, "action": "emergency.settings", "target": "ward:p2",
             "detail": {"two_person": False}}])
        c.execute(t["abbreviations"].insert(), [{"abbr": "TDP", "expansion": "tổ dân phố", "created_at": NOW}])
        c.execute(t["canned_media"].insert(), [{"key": "cancel", "text": "Hủy", "media_sha256": SHA_B,
                                                "created_at": NOW}])
        c.execute(t["render_cache"].insert(), [{"key": "k1", "media_sha256": SHA_A, "engine": "espeak",
                                                "created_at": NOW}])
        c.execute(t["audio_settings"].insert(), [{"id": 1, "engine_order": "espeak", "speed": 1.0,
                                                  "target_lufs": -16.0, "bitrate": "64k", "lead_in_ms": 600,
                                                  "intro_chime": False, "outro_chime": False, "updated_at": NOW}])
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequences on, as the panel would have
            for table in ("users", "zones", "nodes", "announcements", "schedules", "alerts"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))"))
    return _counts(engine, t)


def _counts(engine, tables) -> dict[str, int]:
    with engine.connect() as c:
        return {name: c.scalar(select(func.count()).select_from(table)) for name, table in tables.items()}


def _assert_kept(engine, before: dict[str, int]) -> None:
    t = _old_models().Base.metadata.tables
    assert _counts(engine, t) == before
    assert all(before[name] > 0 for name in t), "every 0b4b8a1 table had rows"
    with engine.connect() as c:
        rows = dict(c.execute(text("SELECT id, approved_media_sha256 FROM announcements")).all())
        assert rows == {1: SHA_A, 2: SHA_B, 3: None}  # approved / published keep their audio; submitted is not
        # JSON and the alert's children survive the table rebuild (SQLite batch mode) untouched
        assert c.scalar(text("SELECT count(*) FROM alert_deliveries WHERE alert_id = 1")) == 3
        assert c.scalar(text("SELECT count(*) FROM alert_zones WHERE alert_id = 1")) == 2
        assert c.scalar(text("SELECT count(*) FROM alerts WHERE cancel_requested_by_id IS NULL")) == 1
        # two-person release takes the new default where nobody chose, stays off where an admin switched it off
        two_person = dict(c.execute(text("SELECT ward, emergency_two_person FROM ward_settings")).all())
        assert {w: bool(v) for w, v in two_person.items()} == {"": True, "p2": False}


def _assert_playable(url: str) -> None:

    engine = create_engine(url)
    with Session(engine) as s:
        assert [policy.playable(s.get(Announcement, i)) for i in (1, 2, 3)] == [True, True, False]
    engine.dispose()


def test_upgrade_from_0b4b8a1_with_data_keeps_every_row_and_approved_audio_playable(database, tmp_path):
    database.upgrade(BASELINE)
    before = _fill_0b4b8a1(database.engine)
    assert database.upgrade() == (BASELINE, head_revision())
    _assert_kept(database.engine, before)
    assert schema_diffs(database.engine, Base.metadata) == []
    _assert_playable(database.url)

    # The panel runs on it: the ward's admin logs in with her old password, its schedules are on the timeline.

    app = create_app(TestConfig(tmp_path / "panel", DATABASE_URL=database.url, TESTING=False))
    client = app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": "chu-tich", "password": "mat-khau-cu-1"})
    assert r.status_code == 201, r.json
    headers = {"Authorization": f"Bearer {r.json['token']}"}
    schedules = client.get("/api/v1/schedules", headers=headers)
    assert schedules.status_code == 200 and {x["id"] for x in schedules.json} == {1, 2}
    for day, played in (("2030-03-04", {1, 2}), ("2030-03-05", {1})):  # the 2nd airs once, the 1st daily
        timeline = client.get("/api/v1/timeline", headers=headers, query_string={"zone": "to-3", "date": day}).json
        assert {e["schedule_id"] for e in timeline["entries"] if e["state"] == "play"} == played, timeline


# ------------------------------------------------------------------------------------- unversioned databases
def test_a_create_all_database_without_alembic_version_is_recognised_and_upgraded(database):
    _old_models().Base.metadata.create_all(database.engine)
    before = _fill_0b4b8a1(database.engine)
    assert "unversioned" in database.status()
    assert database.upgrade() == (BASELINE, head_revision())
    _assert_kept(database.engine, before)
    assert schema_diffs(database.engine, Base.metadata) == []


def test_a_0b4b8a1_database_once_opened_by_bedc81b_is_recognised(database):
    """create_all of bedc81b on a 0b4b8a1 database added the new table stream_sources and none of the columns."""
    _old_models().Base.metadata.create_all(database.engine)
    md = MetaData()
    Table("stream_sources", md, Column("id", Integer, primary_key=True), Column("code", String(64), unique=True),
          Column("name", String(200)), Column("url", String(2000)), Column("active", Integer),
          Column("created_by_id", Integer), Column("created_at", String(40)))
    md.create_all(database.engine)
    assert database.upgrade() == (BASELINE, head_revision())


def test_a_create_all_database_of_bedc81b_is_recognised_as_its_revision(database):
    database.upgrade(RELEASE_POLICY)
    with database.engine.begin() as c:
        c.execute(text("DROP TABLE alembic_version"))
    assert database.current_revision() is None
    assert database.upgrade() == (RELEASE_POLICY, head_revision())


def test_an_unknown_unversioned_schema_is_refused_and_left_alone(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'odd.db'}")
    with db.engine.begin() as c:
        c.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(80))"))
    with pytest.raises(SchemaError, match="match no known schema"):
        db.upgrade()
    assert set(inspect(db.engine).get_table_names()) == {"users"}  # nothing stamped, nothing created
    db.dispose()


def test_a_database_migrated_by_a_newer_version_is_left_alone(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'newer.db'}")
    db.upgrade()
    with db.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(SchemaError, match="9999_future, unknown to this version"):
        db.upgrade()
    with pytest.raises(SchemaError, match="9999_future, unknown to this version"):
        db.check()
    assert db.current_revision() == "9999_future"
    db.dispose()


# ------------------------------------------------------------------------------------------ start-up policy
def _cli(monkeypatch, tmp_path, url, *argv) -> int:
    monkeypatch.setenv("LOAPHUONG_DATABASE_URL", url)
    monkeypatch.setenv("LOAPHUONG_DATA_DIR", str(tmp_path / "instance"))
    return main(list(argv))


def test_serve_refuses_an_old_postgresql_schema_and_names_the_command(empty_pg_url, tmp_path, monkeypatch, capsys):
    engine = create_engine(empty_pg_url)
    _old_models().Base.metadata.create_all(engine)  # made by create_all, before migrations: unversioned
    engine.dispose()
    for command in ("serve", "demo"):
        assert _cli(monkeypatch, tmp_path, empty_pg_url, command, "--port", "1") == 2
        err = capsys.readouterr().err
        assert f"`{UPGRADE_COMMAND}`" in err and "before migrations" in err, err
    assert _cli(monkeypatch, tmp_path, empty_pg_url, "db", "current") == 0
    assert "unversioned" in capsys.readouterr().out
    assert _cli(monkeypatch, tmp_path, empty_pg_url, "db", "upgrade", "--revision", BASELINE) == 0
    capsys.readouterr()
    assert _cli(monkeypatch, tmp_path, empty_pg_url, "serve") == 2  # stamped, still behind
    err = capsys.readouterr().err
    assert f"at revision {BASELINE}" in err and f"`{UPGRADE_COMMAND}`" in err, err
    assert _cli(monkeypatch, tmp_path, empty_pg_url, "db", "upgrade") == 0
    assert f"{BASELINE} → {head_revision()}" in capsys.readouterr().out
    assert _cli(monkeypatch, tmp_path, empty_pg_url, "db", "current") == 0
    assert f"{head_revision()} (head)" in capsys.readouterr().out
    Database(empty_pg_url).check()


def test_an_empty_postgresql_database_is_refused_until_db_upgrade(empty_pg_url, tmp_path):
    with pytest.raises(SchemaError, match="no tables yet.*loaphuong db upgrade"):
        create_app(TestConfig(tmp_path / "panel", DATABASE_URL=empty_pg_url))


def test_the_panel_upgrades_an_old_sqlite_database_by_itself(tmp_path):
    url = f"sqlite:///{(tmp_path / 'panel' / 'loaphuong.db').resolve()}"
    (tmp_path / "panel").mkdir()
    engine = create_engine(url)
    _old_models().Base.metadata.create_all(engine)
    before = _fill_0b4b8a1(engine)
    engine.dispose()
    app = create_app(TestConfig(tmp_path / "panel", TESTING=False))  # as serve/demo: no test fast path
    db = runtime(app).db
    assert db.current_revision() == head_revision()
    _assert_kept(db.engine, before)
    db.dispose()


# --------------------------------------------------------------------------------- restart on PostgreSQL
def test_a_panel_restart_on_postgresql_keeps_schedules_and_the_scheduler_job(pg_url, broker, tmp_path):
    def panel():
        port = free_port()
        app = create_app(TestConfig(tmp_path / "panel", DATABASE_URL=pg_url, MQTT_URL=broker.url, PORT=port,
                                    MQTT_CLIENT_ID=f"panel-{port}"))
        start_services(app)
        return app

    app = panel()
    runtime(app).service.create_user("admin", "admin-password-1", role="admin")
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-password-1"}).json
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert client.post("/api/v1/zones", headers=headers, json={"code": "to-3", "name": "Tổ 3"}).status_code == 201
    assert client.post("/api/v1/nodes", headers=headers, json={"node_id": "loa-01", "zone": "to-3"}).status_code == 201
    ann = client.post("/api/v1/announcements", headers=headers,
                      json={"title": "Tiêm phòng", "text": "Thông báo lịch tiêm phòng.", "approve": True}).json
    sched = client.post("/api/v1/schedules", headers=headers, json={
        "announcement_id": ann["id"], "zones": ["to-3"],
        "recurrence": {"kind": "daily", "start_date": "2027-03-01", "times": ["06:00", "17:00"]}})
    assert sched.status_code == 201, sched.json
    job = runtime(app).scheduler.get_job(ROLLOVER_JOB_ID)
    assert job is not None
    stop_services(app)
    runtime(app).db.dispose()

    app = panel()  # the same database, a new process' worth of state
    try:
        client = app.test_client()
        token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-password-1"}).json
        headers = {"Authorization": f"Bearer {token['token']}"}
        listed = client.get("/api/v1/schedules", headers=headers).json
        assert [x["id"] for x in listed] == [sched.json["id"]]
        day = client.get("/api/v1/timeline", headers=headers, query_string={"zone": "to-3", "date": "2027-03-02"})
        assert [e["start_local"][11:16] for e in day.json["entries"]] == ["06:00", "17:00"]
        assert runtime(app).scheduler.get_job(ROLLOVER_JOB_ID) is not None
        engine = create_engine(pg_url)
        with engine.connect() as c:  # the job store is the panel's PostgreSQL database
            assert c.scalar(text("SELECT count(*) FROM apscheduler_jobs WHERE id = :id"), {"id": ROLLOVER_JOB_ID}) == 1
        engine.dispose()
    finally:
        stop_services(app)
        runtime(app).db.dispose()


# ------------------------------------------------------------------------------ PostgreSQL enforces lengths
@pytest.mark.both_backends
def test_overlong_strings_from_a_node_never_break_ingest_on_either_backend(api, service, db_backend):
    """SQLite ignores VARCHAR lengths, PostgreSQL refuses the row: a node's over-long field (a firmware name, an
    item id, an ack's error) is over the protocol's bounds, so that message is dropped and counted alone (issue
    13) — on both backends the good messages of the same batch are stored."""

    assert api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ 3"}).status_code == 201
    assert api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-3"}).status_code == 201
    topics, now = service.topics, proto.format_ts(datetime.now(UTC))
    cmd = service.send_command("loa-01", "ping")
    status = {"type": "status", "protocol": 1, "node_id": "loa-01", "state": "online", "session": 1}
    event = {"type": "event", "protocol": 1, "node_id": "loa-01", "at": now, "event": "playback_failed"}
    ack = {"type": "ack", "protocol": 1, "node_id": "loa-01", "command_id": cmd.id, "status": "error", "at": now}
    dropped = sum(service.ingest_dropped.values())
    service.ingest_batch([
        (topics.status("loa-01"), json.dumps({**status, "firmware": "f" * 300}).encode()),
        (topics.events("loa-01"), json.dumps({**event, "seq": 1, "item_id": "i" * 300}).encode()),
        (topics.ack("loa-01"), json.dumps({**ack, "error": "e" * 2000}).encode()),
        (topics.status("loa-01"), json.dumps({**status, "firmware": "f" * 100}).encode()),
        (topics.events("loa-01"), json.dumps({**event, "seq": 2, "item_id": "i" * 128}).encode()),
        (topics.ack("loa-01"), json.dumps({**ack, "error": "e" * 500}).encode()),
    ])
    assert sum(service.ingest_dropped.values()) - dropped == 3
    with service.db.session() as s:
        assert s.scalar(select(Node.firmware).where(Node.node_id == "loa-01")) == "f" * 100
        assert list(s.scalars(select(NodeEvent.item_id))) == ["i" * 128]
        assert s.scalar(select(CommandRecord.error).where(CommandRecord.id == cmd.id)) == "e" * 500
