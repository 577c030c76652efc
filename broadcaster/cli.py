"""``loaphuong`` console script.

    loaphuong demo          panel + embedded broker + 3 simulated nodes in 2 zones (what `make run` runs)
    loaphuong serve         panel + scheduler + MQTT bridge (embedded broker unless LOAPHUONG_MQTT_URL)
    loaphuong sim …         node simulator (see firmware_sim.cli)
    loaphuong create-user   add a user (officer | leader | admin [--ward CODE] | province_leader | province_admin)
    loaphuong db upgrade    create or upgrade the database schema (Alembic; also `db current`)
    loaphuong schemas       write or check the protocol JSON Schemas
    loaphuong broker-config --out DIR   Mosquitto config + dynamic-security logins and per-node ACLs
    loaphuong normalize T   print text T as the loudspeaker will say it
    loaphuong tts T -o F    render text T to a broadcast-ready MP3 (normalize → speech → chain)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from broadcaster import logins
from broadcaster.keys import write_private

log = logging.getLogger("loaphuong")

DEMO_ZONES = [("to-3", "Tổ dân phố 3"), ("to-5", "Tổ dân phố 5")]
DEMO_NODES = [
    ("loa-01", "Nhà văn hóa tổ 3", "to-3"),
    ("loa-02", "Ngã ba chợ, tổ 3", "to-3"),
    ("loa-03", "Đầu hẻm 12, tổ 5", "to-5"),
]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _ensure_admin(service, data_dir: Path) -> tuple[str, str | None]:
    """Create the bootstrap admin (``LOAPHUONG_ADMIN_USER``) on first start: a province_admin, who creates the
    wards and their admins. A bootstrap admin from before the province roles (a ward ``admin``) is promoted.
    Returns (username, password if known)."""
    from sqlalchemy import select

    from broadcaster.models import User

    username = os.environ.get("LOAPHUONG_ADMIN_USER", "admin")
    password = os.environ.get("LOAPHUONG_ADMIN_PASSWORD")
    pw_file = data_dir / "admin-password.txt"
    with service.db.session() as s:
        existing = s.scalar(select(User).where(User.username == username))
        role = existing.role if existing is not None else None
    if existing is not None:
        if role == "admin":
            service.update_user(username, role="province_admin")  # the system: audited as user.role
        if password:
            service.set_password(username, password)
            return username, password
        return username, pw_file.read_text().strip() if pw_file.exists() else None
    password = password or logins.new_password()
    service.create_user(username, password, role="province_admin", display_name="Quản trị viên tỉnh")
    write_private(pw_file, password + "\n")  # 0600 from the start (broadcaster/keys.py)
    return username, password


def _bootstrap_admin(service, data_dir: Path) -> tuple[str, str | None]:
    """``_ensure_admin``, returning the password only when this start created the admin: it is printed once, at
    the first start, and never again (it stays in ``<data>/admin-password.txt``, 0600)."""
    from sqlalchemy import select

    from broadcaster.models import User

    username = os.environ.get("LOAPHUONG_ADMIN_USER", "admin")
    with service.db.session() as s:
        existed = s.scalar(select(User.id).where(User.username == username)) is not None
    user, password = _ensure_admin(service, data_dir)
    return user, None if existed else password


def _print_admin_login(user: str, password: str | None, data_dir: Path, prefix: str = "Admin login: ") -> None:
    if password:
        print(f"{prefix}{user} / {password}  (shown once; also in {data_dir / 'admin-password.txt'})", flush=True)
    else:
        print(f"{prefix}{user} (password: {data_dir / 'admin-password.txt'} or the one you set; "
              "LOAPHUONG_ADMIN_PASSWORD resets it)", flush=True)


def _serve_http(app, host: str, port: int, stop: threading.Event) -> None:
    from broadcaster.web.security import make_panel_server

    server = make_panel_server(host, port, app)  # threaded; `Server: Loa Phuong`, no versions
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()


def _start_services(app) -> bool:
    """start_services, with a refusal (no Mosquitto, iotcore asked for) printed as one line, not a traceback."""
    from broadcaster.app import start_services
    from broadcaster.brokerconf import BrokerConfigError

    try:
        start_services(app)
    except (RuntimeError, BrokerConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_serve(args: argparse.Namespace) -> int:
    from broadcaster.app import create_app, runtime, stop_services
    from broadcaster.config import Config

    config = Config()
    if args.port:
        config.PORT = args.port
    app = create_app(config)
    rt = runtime(app)
    user, password = _bootstrap_admin(rt.service, config.DATA_DIR)
    if not _start_services(app):
        stop_services(app)
        return 2
    stop = _wait_for_signal()
    print(f"Loa Phường panel: {config.public_url}  (broker {config.MQTT_URL})", flush=True)
    _print_admin_login(user, password, config.DATA_DIR)
    try:
        _serve_http(app, config.HOST, config.PORT, stop)
    finally:
        stop_services(app)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Panel + embedded broker + simulated nodes, all in one process, embedded defaults only."""
    from firmware_sim.fleet import Fleet
    from firmware_sim.node import NodeConfig

    from broadcaster.app import create_app, runtime, stop_services
    from broadcaster.config import Config
    from broadcaster.services import ServiceError

    config = Config()
    if args.port:
        config.PORT = args.port
    app = create_app(config)
    rt = runtime(app)
    service = rt.service
    user, password = _bootstrap_admin(service, config.DATA_DIR)
    for code, name in DEMO_ZONES:
        with contextlib.suppress(ServiceError):
            service.create_zone(code, name, "residential_group", "Phường demo")
    sim_dir = config.DATA_DIR / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    cred_file = sim_dir / "credentials.json"
    creds: dict[str, str] = json.loads(cred_file.read_text()) if cred_file.exists() else {}
    for node_id, name, zone in DEMO_NODES[: args.nodes]:
        if node_id in creds and service.get_node(node_id):
            continue
        if service.get_node(node_id):
            token = service.rotate_node_token(node_id)
        else:
            _node, token = service.register_node(node_id, name, zone)
        creds[node_id] = token
    write_private(cred_file, json.dumps(creds, indent=1))  # the nodes' tokens: 0600 from the start
    # Where the demo loudspeakers stand (a ward of Hoàn Kiếm, Hà Nội), so that the map shows them; a position an
    # operator set is kept.
    places = {"loa-01": (21.0372, 105.8516, "Nhà văn hóa tổ 3, phố Hàng Buồm"),
              "loa-02": (21.0366, 105.8527, "Ngã ba chợ, phố Hàng Buồm"),
              "loa-03": (21.0351, 105.8539, "Đầu hẻm 12, phố Hàng Bạc")}
    from broadcaster import fleet as registry

    for node_id, _n, _z in DEMO_NODES[: args.nodes]:
        node = service.get_node(node_id)
        if node is not None and node.lat is None and node_id in places:
            lat, lon, address = places[node_id]
            registry.update_node(service, node_id, {"lat": lat, "lon": lon, "address": address})

    if not _start_services(app):
        stop_services(app)
        return 2
    from broadcaster.broker import parse_mqtt_url

    host, port = parse_mqtt_url(config.MQTT_URL)
    fleet = Fleet(
        [
            NodeConfig(
                node_id=node_id, token=creds[node_id], broker_host=host, broker_port=port,
                panel_public_key=service.public_key_b64, data_dir=sim_dir / node_id,
                topic_prefix=config.MQTT_PREFIX,
            )
            for node_id, _n, _z in DEMO_NODES[: args.nodes]
        ],
        playback_log=sim_dir / "plays.jsonl",
    )
    fleet.start()
    stop = _wait_for_signal()
    print("", flush=True)
    print("  Loa Phường — bản demo / demo", flush=True)
    print(f"  Bảng điều khiển / panel:  {config.public_url}", flush=True)
    _print_admin_login(user, password, config.DATA_DIR, prefix="  Đăng nhập / login:        ")
    print(f"  MQTT broker ({rt.broker.kind if rt.broker else 'external'}): {config.MQTT_URL}", flush=True)
    print(f"  {args.nodes} loa mô phỏng / simulated nodes in {len(DEMO_ZONES)} zones; Ctrl-C to stop", flush=True)
    print("", flush=True)
    try:
        _serve_http(app, config.HOST, config.PORT, stop)
    finally:
        fleet.stop()
        stop_services(app)
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from broadcaster.app import create_app, runtime
    from broadcaster.config import Config
    from broadcaster.services import ServiceError

    app = create_app(Config())
    password = args.password or logins.new_password()
    try:
        runtime(app).service.create_user(args.username, password, args.role, ward=args.ward or None)
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"{args.username} / {password} ({args.role}{', ' + args.ward if args.ward else ''})")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from devices.schema_files import SCHEMA_DIR, check_schemas, write_schemas

    if args.write:
        for path in write_schemas():
            print(path)
        return 0
    stale = check_schemas()
    if stale:
        print(f"out of date in {SCHEMA_DIR}: {', '.join(stale)} — run `make schemas`", file=sys.stderr)
        return 1
    print("schemas up to date")
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    """Print what the loudspeaker would say. With --ward, the ward's own abbreviations from the database."""
    from audio.normalize import normalize

    text = args.text if args.text != "-" else sys.stdin.read()
    abbreviations: dict[str, str] = {}
    if args.abbreviations:
        abbreviations.update(json.loads(Path(args.abbreviations).read_text(encoding="utf-8")))
    if args.ward:
        from broadcaster.app import create_app, runtime
        from broadcaster.config import Config

        abbreviations = {**runtime(create_app(Config())).service.ward_abbreviations(), **abbreviations}
    print(normalize(text, abbreviations=abbreviations or None))
    return 0


def cmd_broker_config(args: argparse.Namespace) -> int:
    """Write a Mosquitto config, password file and per-node ACL from the registry (broadcaster/brokerconf.py)."""
    from broadcaster.app import create_app, runtime
    from broadcaster.brokerconf import BrokerConfigError, write_broker_config
    from broadcaster.config import Config

    app = create_app(Config())
    try:
        files = write_broker_config(runtime(app).service, args.out, port=args.port, bind=args.bind,
                                    panel_user=args.panel_user, run_as=args.run_as, certfile=args.certfile,
                                    keyfile=args.keyfile)
    except BrokerConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {files.conf} and {files.dynsec} ({len(files.nodes)} nodes + panel user {files.panel_user!r})")
    print(f"panel login for the broker: {files.panel_env} (load it into the panel's environment; it also sets "
          "LOAPHUONG_BROKER_REGISTRY=dynsec, so the panel keeps the broker's logins in step with the registry)")
    print(f"start: mosquitto -c {files.conf}   (re-run broker-config only while it is stopped)")
    if files.missing:
        print(f"warning: {len(files.missing)} node(s) have no broker credential and cannot log in until "
              f"re-provisioned (new token): {', '.join(files.missing[:20])}", file=sys.stderr)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """The schema, without starting the panel (create_app refuses an old schema on PostgreSQL)."""
    from broadcaster.config import Config
    from broadcaster.db import Database, alembic_config, head_revision

    config = Config()
    db = Database(config.DATABASE_URL)
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        if args.db_command == "upgrade":
            before, after = db.upgrade(args.revision)
            if before == after:
                print(f"{where}: already at {after}")
            else:
                print(f"{where}: upgraded {before or 'empty database'} → {after}")
        elif args.db_command == "current":
            print(f"{where}: {db.status()}")
        elif args.db_command == "check":
            from alembic import command
            from alembic.util import AutogenerateDiffsDetected

            try:
                with db.engine.connect() as conn:
                    command.check(alembic_config(conn))
            except AutogenerateDiffsDetected as exc:
                print(f"{where}: the schema differs from the models: {exc}", file=sys.stderr)
                return 1
            print(f"{where}: the schema is exactly the models'")
        elif args.db_command == "revision":
            from alembic import command

            if not args.empty and db.current_revision() != head_revision():
                print(f"error: {where} is not at {head_revision()}: run `loaphuong db upgrade` first, so that "
                      "the new revision holds only what the models add", file=sys.stderr)
                return 2
            with db.engine.connect() as conn:
                command.revision(alembic_config(conn), message=args.message, autogenerate=not args.empty,
                                 rev_id=args.rev_id)
    finally:
        db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sim":
        from firmware_sim.cli import main as sim_main

        return sim_main(argv[1:])
    if argv and argv[0] == "tts":
        from audio.render import cli_tts

        return cli_tts(argv[1:])
    parser = argparse.ArgumentParser(prog="loaphuong", description="Loa Phường ward loudspeaker system")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="panel + embedded broker + simulated nodes (make run)")
    p.add_argument("--nodes", type=int, default=3, choices=range(1, len(DEMO_NODES) + 1))
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="run the panel")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(func=cmd_serve)
    sub.add_parser("sim", help="run simulated loudspeaker nodes (see `loaphuong sim --help`)")
    sub.add_parser("tts", help="text → broadcast-ready MP3 (see `loaphuong tts --help`)")
    p = sub.add_parser("create-user", help="add a user")
    p.add_argument("username")
    p.add_argument("--role", choices=("officer", "leader", "admin", "province_leader", "province_admin"),
                   default="officer")
    p.add_argument("--ward", metavar="CODE", help="the ward of a ward role (default: the only ward); none for "
                   "province roles")
    p.add_argument("--password")
    p.set_defaults(func=cmd_create_user)
    p = sub.add_parser("normalize", help="print the text as it will be spoken")
    p.add_argument("text", help="announcement text, or - for standard input")
    p.add_argument("--abbreviations", metavar="FILE.json", help="extra readings {\"KP\": \"khu phố\"}")
    p.add_argument("--ward", action="store_true", help="also use the ward's readings from the database")
    p.set_defaults(func=cmd_normalize)
    p = sub.add_parser("broker-config", help="write a Mosquitto config + dynamic-security logins and per-node ACLs")
    p.add_argument("--out", required=True, help="directory for mosquitto.conf, dynsec/, data/, panel.env")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--bind", default="", help="listen address (default: all)")
    p.add_argument("--panel-user", default=None, help="the panel's broker username (default: panel)")
    p.add_argument("--run-as", default=None, help="'user' line of mosquitto.conf (default: Mosquitto's own)")
    p.add_argument("--certfile", default=None, help="TLS certificate for the listener")
    p.add_argument("--keyfile", default=None, help="TLS key for the listener")
    p.set_defaults(func=cmd_broker_config)
    p = sub.add_parser("schemas", help="write or check devices/schemas/*.json")
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_schemas)
    p = sub.add_parser("db", help="database schema: upgrade (create or migrate), current")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    q = dbsub.add_parser("upgrade", help="create or upgrade the schema to this version (keeps every row)")
    q.add_argument("--revision", default="head")
    q = dbsub.add_parser("current", help="the schema's revision and whether it is up to date")
    q = dbsub.add_parser("check", help="(developers) does the upgraded database match the models exactly?")
    q = dbsub.add_parser("revision", help="(developers) write a new migration, autogenerated from the models")
    q.add_argument("-m", "--message", required=True)
    q.add_argument("--rev-id", default=None, help="the revision's id and file name, e.g. 0004_something")
    q.add_argument("--empty", action="store_true", help="an empty revision instead of an autogenerated one")
    p.set_defaults(func=cmd_db)
    args = parser.parse_args(argv)
    _logging(args.verbose)
    from broadcaster.db import SchemaError

    try:
        return int(args.func(args))
    except SchemaError as exc:  # an old schema on PostgreSQL: one line naming `loaphuong db upgrade`
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
