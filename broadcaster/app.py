"""Flask application factory and the runtime (broker, MQTT bridge, scheduler) it may start."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from broadcaster import emergency, i18n, limits, logins, tenancy
from broadcaster.api import (
    contract,
    routes,
    routes_announcements,
    routes_audio,
    routes_auth,
    routes_cap,
    routes_emergency,
    routes_fleet,
    routes_live,
    routes_notifications,
    routes_schedules,
    routes_streams,
    routes_users,
    routes_wards,
)
from broadcaster.bridge import MqttBridge
from broadcaster.broker import EmbeddedBroker, free_port, mosquitto_binary, parse_mqtt_url, port_open
from broadcaster.broker_admin import BrokerRegistryError, DynsecRegistry, NullBrokerRegistry
from broadcaster.brokerconf import dynsec_config, registry_rows
from broadcaster.config import Config
from broadcaster.db import Database
from broadcaster.keys import load_or_create_secret, load_or_create_signing_key, secure_data_dir
from broadcaster.leader import Leadership, is_elected, process_name
from broadcaster.periodic import start_scheduler, stop_scheduler
from broadcaster.publication_queue import PublicationQueue
from broadcaster.services import PanelService
from broadcaster.web import (
    auth,
    cap_feed,
    error_pages,
    humanize,
    idempotency,
    media,
    menu,
    relisten,
    security,
    sessions,
    views,
    views_audio,
    views_emergency,
    views_fleet,
    views_live,
    views_notifications,
    views_schedules,
    views_streams,
    views_users,
)

log = logging.getLogger(__name__)

#: The panel's pages, one blueprint per feature (endpoints ``views.dashboard``, ``schedules.calendar_page``…).
WEB_BLUEPRINTS: tuple[Blueprint, ...] = (
    auth.bp,  # log in / log out, one's own logins
    views.bp,  # dashboard, loudspeakers and zones, announcements, abbreviations, proof of play
    views_schedules.bp,  # schedules, calendar, today, timeline, approvals, audit log
    views_emergency.bp,
    views_fleet.bp,  # fleet, map, registry import/export, node credentials, reports
    views_audio.bp,  # audio settings, uploaded recordings
    views_notifications.bp,
    views_streams.bp,
    views_live.bp,  # live paging: the page and the stream the nodes relay (issue 17 §1)
    views_users.bp,  # users, one's own account and password
    relisten.bp,  # Nghe lại: the public re-listen pages of a ward, no login (issue 17 §4)
    cap_feed.bp,  # the public CAP 1.2 feeds of a ward and of the province, no login (issue 17 §5)
)
#: ``/api/v1``, one blueprint per feature (endpoints ``api_schedules.create_schedule``…). The API authenticates
#: with bearer tokens, not cookies: CSRF does not apply to these, nor to the media download of the nodes.
API_BLUEPRINTS: tuple[Blueprint, ...] = (
    routes.bp,  # the OpenAPI document, the panel's public key
    routes_auth.bp,
    routes_users.bp,
    routes_wards.bp,
    routes_announcements.bp,
    routes_audio.bp,
    routes_schedules.bp,
    routes_fleet.bp,
    routes_emergency.bp,
    routes_notifications.bp,
    routes_streams.bp,
    routes_live.bp,
    routes_cap.bp,  # CAP 1.2: an alert's document, trusted sources, receiving signed alerts (issue 17 §5)
)

csrf = CSRFProtect()
login_manager = sessions.PanelLoginManager()  # the remember-me cookie's flags per request (web/sessions.py)


@dataclass
class Runtime:
    """Per-app state kept in ``app.extensions['loaphuong']``."""

    config: Config
    db: Database
    service: PanelService
    broker: EmbeddedBroker | None = None
    bridge: MqttBridge | None = None
    #: The broker's logins kept in step with the registry when the panel manages them, else None.
    broker_admin: DynsecRegistry | None = None
    scheduler: Any = None
    #: Whether this process is the deployment's leader (broadcaster/leader.py); set by start_services.
    leadership: Leadership | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    secure_data_dir(config)  # data dir 0700, database and key files 0600 (broadcaster/keys.py)
    app = Flask(__name__)
    app.config.from_mapping(config.as_dict())
    app.config["SECRET_KEY"] = config.SECRET_KEY or load_or_create_secret(config.DATA_DIR / "secret_key")

    db = Database(config.DATABASE_URL)
    # The schema (broadcaster/db.py): SQLite upgrades itself; PostgreSQL must already be at the head revision
    # (`loaphuong db upgrade`), else SchemaError. Tests on SQLite take create_all's fast path.
    db.prepare(fast=bool(config.TESTING) and db.is_sqlite)
    service = PanelService(config, db, load_or_create_signing_key(config.SIGNING_KEY_PATH))
    tenancy.ensure_default_ward(service)  # a one-ward installation keeps working exactly as before
    app.extensions["loaphuong"] = Runtime(config=config, db=db, service=service)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = ""
    i18n.init_app(app)
    limits.init_app(app)  # body size per route, the recording decode queue's 503 (broadcaster/limits.py)
    security.init_app(app)  # CSP and the other security headers on every response (broadcaster/web/security.py)
    humanize.init_app(app)  # records said in words (audit log)
    menu.init_app(app)  # the menu fitted to the role, folded on a phone
    error_pages.init_app(app)  # 403/404/500 pages in the reader's language
    idempotency.init_app(app)  # a double tap or a retried form never duplicates (broadcaster/web/idempotency.py)

    @login_manager.user_loader
    def load_user(key: str):
        # The key of a web login (broadcaster/logins.py, from the session or the remember-me cookie): None once
        # it is logged out, revoked or expired, or its user disabled — Flask-Login then treats her as logged out.
        return logins.user_for(db, key, logins.WEB)

    contract.install(app)  # before the blueprints: the bounded <int:> converter, JSON errors under /api/v1
    for bp in WEB_BLUEPRINTS:
        app.register_blueprint(bp)
    app.register_blueprint(media.bp)
    csrf.exempt(media.bp)
    for bp in API_BLUEPRINTS:
        app.register_blueprint(bp)
        csrf.exempt(bp)
    sessions.init_app(app, app.extensions["loaphuong"])  # cookies, trusted proxy, login rate limits

    if config.START_SERVICES:
        start_services(app)
    return app


def runtime(app: Flask) -> Runtime:
    return app.extensions["loaphuong"]


#: What serve/demo say when the broker they need is not there.
MOSQUITTO_MISSING = ("the panel's embedded broker is Mosquitto 2 with authentication and per-node ACLs, and it is "
                     "not installed: run `sudo apt-get install -y mosquitto` (or set LOAPHUONG_MQTT_URL to a "
                     "broker provisioned with `loaphuong broker-config`)")


def start_services(app: Flask) -> Runtime:
    """Start (or connect to) the broker, the MQTT bridge and the leadership. Exactly once per process.

    The scheduler, the consumption of the nodes' messages and the start-up chores run in the leader only
    (``_lead``): on SQLite this process at once; on PostgreSQL whichever process holds the advisory lock
    (broadcaster/leader.py), so that several processes (``loaphuong serve --workers N``) may share a database.

    Without ``MQTT_URL`` the panel starts Mosquitto itself, secured like production: the dynamic-security
    plugin with one login per registered node, per-node ACLs and anonymous clients refused; the panel logs in
    as ``MQTT_USERNAME`` (default ``loaphuong-panel``) with ``MQTT_PASSWORD`` (default: new at each start).
    With ``BROKER_REGISTRY=dynsec`` (always for the embedded broker) the panel also keeps the broker's logins
    in step with the registry: a rotated token or a deleted node is refused and disconnected at once.
    """
    rt = runtime(app)
    cfg = rt.config
    registry = (cfg.BROKER_REGISTRY or "").strip().lower()
    if registry not in ("", "dynsec", "none"):
        raise RuntimeError(f"LOAPHUONG_BROKER_REGISTRY={cfg.BROKER_REGISTRY!r}: use dynsec or none")
    if cfg.MQTT_URL:
        host, port = parse_mqtt_url(cfg.MQTT_URL)
        registry = registry or "none"
        if registry == "none":
            log.warning("the broker at %s is not managed by the panel (LOAPHUONG_BROKER_REGISTRY=none): a rotated "
                        "token or a deleted node keeps its broker login until the broker is re-provisioned",
                        cfg.MQTT_URL)
    else:
        if cfg.EMBEDDED_BROKER not in ("auto", "mosquitto"):
            raise RuntimeError(f"LOAPHUONG_EMBEDDED_BROKER={cfg.EMBEDDED_BROKER!r} is refused: the panel's broker "
                               "must authenticate nodes and enforce per-node ACLs, which only Mosquitto does here")
        if registry == "none":
            raise RuntimeError("the embedded broker is always managed by the panel; unset LOAPHUONG_BROKER_REGISTRY")
        if not mosquitto_binary():
            raise RuntimeError(MOSQUITTO_MISSING)
        registry = "dynsec"
        port = cfg.EMBEDDED_BROKER_PORT
        if port_open("127.0.0.1", port):
            # e.g. a system Mosquitto already on 1883: never talk to a broker we did not configure.
            log.warning("port %s is taken; the embedded broker uses a free port instead "
                        "(set LOAPHUONG_MQTT_URL to use the broker on %s)", port, port)
            port = free_port()
        cfg.MQTT_USERNAME = cfg.MQTT_USERNAME or "loaphuong-panel"
        cfg.MQTT_PASSWORD = cfg.MQTT_PASSWORD or secrets.token_urlsafe(32)
        service = rt.service

        def initial_dynsec() -> dict[str, Any]:
            # Rebuilt from the registry at every (re)start of the broker: the database is the truth.
            return dynsec_config(cfg.MQTT_PREFIX, cfg.MQTT_USERNAME, cfg.MQTT_PASSWORD, registry_rows(service))[0]

        rt.broker = EmbeddedBroker(kind="mosquitto", port=port, data_dir=cfg.DATA_DIR / "broker",
                                   dynsec=initial_dynsec)
        rt.broker.start()
        host, port = rt.broker.host, rt.broker.port
        cfg.MQTT_URL = f"mqtt://{host}:{port}"
        rt.extras["embedded_mqtt_url"] = cfg.MQTT_URL  # so that stop_services + start_services embeds again
        log.info("embedded %s broker at %s (authentication and per-node ACLs on)", rt.broker.kind, cfg.MQTT_URL)
    # Several processes on PostgreSQL: each publishes under a client id of its own; the leader alone consumes the
    # nodes' messages, under MQTT_CLIENT_ID (broadcaster/bridge.py). SQLite: one process, one connection.
    elected = is_elected(cfg.DATABASE_URL)
    own_id = f"{cfg.MQTT_CLIENT_ID}-{process_name()}" if elected else cfg.MQTT_CLIENT_ID
    rt.bridge = MqttBridge(
        rt.service, host, port,
        client_id=own_id, username=cfg.MQTT_USERNAME, password=cfg.MQTT_PASSWORD,
        consumer_id=cfg.MQTT_CLIENT_ID if elected else None,
    )
    rt.service.publisher = rt.bridge
    rt.bridge.start()
    # Plan changes made by requests are published by this thread: the request answers at once.
    rt.service.publication_queue = PublicationQueue(rt.service.publish_plans).start()
    if registry == "dynsec":
        rt.broker_admin = DynsecRegistry(host, port, username=cfg.MQTT_USERNAME, password=cfg.MQTT_PASSWORD,
                                         prefix=cfg.MQTT_PREFIX, client_id=f"{own_id}-admin").start()
        rt.service.broker_registry = rt.broker_admin
    rt.leadership = Leadership(cfg.DATABASE_URL, on_gain=lambda: _lead(rt), on_lose=lambda: _step_down(rt))
    rt.leadership.start()  # SQLite: the leader at once; PostgreSQL: now if the lock is free, else later
    return rt


def _lead(rt: Runtime) -> None:
    """What only the leader runs (broadcaster/leader.py): consume the nodes' messages, the start-up chores, the
    periodic rollover (and one now, so that plans are current from the start)."""
    cfg = rt.config
    log.info("process %s (pid %s) leads: scheduler and node messages", process_name(), os.getpid())
    if rt.bridge is not None:
        rt.bridge.start_consuming()
    if rt.broker_admin is not None:
        try:
            rt.broker_admin.sync(n.node_id for n in rt.service.list_nodes())
        except BrokerRegistryError as exc:
            log.warning("broker: could not compare its logins with the registry: %s", exc)
    # No alert stays "releasing" across a restart. Several processes (PostgreSQL): another one may be releasing an
    # alert right now, so only those stuck longer than a release takes (and periodically: broadcaster/periodic.py).
    several = rt.db.engine.dialect.name == "postgresql"
    emergency.recover_at_start(rt.service, emergency.RELEASE_STALE if several else None)
    rt.scheduler = start_scheduler(rt.service, cfg.DATABASE_URL, cfg.ROLLOVER_MINUTES)
    rt.service.rollover()


def _step_down(rt: Runtime) -> None:
    """Leadership lost or given up: stop the leader's jobs at once (another process may be leading already)."""
    if rt.scheduler is not None:
        stop_scheduler(rt.scheduler)
        rt.scheduler = None
    if rt.bridge is not None:
        rt.bridge.stop_consuming()


def stop_services(app: Flask) -> None:
    rt = runtime(app)
    if rt.service.publication_queue is not None:  # what was asked for still goes out, then the thread ends
        rt.service.publication_queue.stop()
        rt.service.publication_queue = None
    if rt.bridge is not None:
        rt.bridge.stop_consuming(status="stopped")  # several processes: the presence says so before the will could
    if rt.leadership is not None:
        rt.leadership.stop()  # the leader's jobs stop (_step_down) and the lock is free for another process
        rt.leadership = None
    if rt.scheduler is not None:
        stop_scheduler(rt.scheduler)
        rt.scheduler = None
    if rt.broker_admin is not None:
        rt.service.broker_registry = NullBrokerRegistry()
        rt.broker_admin.stop()
        rt.broker_admin = None
    if rt.bridge is not None:
        rt.bridge.stop()
        rt.bridge = None
    if rt.broker is not None:
        rt.broker.stop()
        rt.broker = None
    if rt.extras.get("embedded_mqtt_url") and rt.extras.pop("embedded_mqtt_url") == rt.config.MQTT_URL:
        rt.config.MQTT_URL = ""
