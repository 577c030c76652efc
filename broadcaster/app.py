"""Flask application factory and the runtime (broker, MQTT bridge, scheduler) it may start."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from broadcaster import i18n
from broadcaster.config import Config
from broadcaster.db import Database
from broadcaster.keys import load_or_create_secret, load_or_create_signing_key
from broadcaster.services import PanelService

log = logging.getLogger(__name__)

csrf = CSRFProtect()
login_manager = LoginManager()


@dataclass
class Runtime:
    """Per-app state kept in ``app.extensions['loaphuong']``."""

    config: Config
    db: Database
    service: PanelService
    broker: Any = None
    bridge: Any = None
    scheduler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    config.DATA_DIR.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__)
    app.config.from_mapping(config.as_dict())
    app.config["SECRET_KEY"] = config.SECRET_KEY or load_or_create_secret(config.DATA_DIR / "secret_key")

    db = Database(config.DATABASE_URL)
    db.create_all()
    service = PanelService(config, db, load_or_create_signing_key(config.SIGNING_KEY_PATH))
    app.extensions["loaphuong"] = Runtime(config=config, db=db, service=service)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = ""
    i18n.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str):
        return service.get_user(int(user_id)) if user_id.isdigit() else None

    from broadcaster.api.routes import bp as api_bp
    from broadcaster.web.auth import bp as auth_bp
    from broadcaster.web.media import bp as media_bp
    from broadcaster.web.views import bp as views_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(views_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, not cookies
    csrf.exempt(media_bp)

    if config.START_SERVICES:
        start_services(app)
    return app


def runtime(app: Flask) -> Runtime:
    return app.extensions["loaphuong"]


def start_services(app: Flask) -> Runtime:
    """Start (or connect to) the broker, the MQTT bridge and the scheduler. Exactly once per process."""
    from broadcaster.bridge import MqttBridge
    from broadcaster.broker import EmbeddedBroker, free_port, parse_mqtt_url, port_open
    from broadcaster.scheduler import start_scheduler

    rt = runtime(app)
    cfg = rt.config
    if cfg.MQTT_URL:
        host, port = parse_mqtt_url(cfg.MQTT_URL)
    else:
        port = cfg.EMBEDDED_BROKER_PORT
        if port_open("127.0.0.1", port):
            # e.g. a system Mosquitto already on 1883: never talk to a broker we did not configure.
            log.warning("port %s is taken; the embedded broker uses a free port instead "
                        "(set LOAPHUONG_MQTT_URL to use the broker on %s)", port, port)
            port = free_port()
        rt.broker = EmbeddedBroker(kind=cfg.EMBEDDED_BROKER, port=port, data_dir=cfg.DATA_DIR / "broker")
        rt.broker.start()
        host, port = rt.broker.host, rt.broker.port
        cfg.MQTT_URL = f"mqtt://{host}:{port}"
        log.info("embedded %s broker at %s", rt.broker.kind, cfg.MQTT_URL)
    rt.bridge = MqttBridge(
        rt.service, host, port,
        client_id=cfg.MQTT_CLIENT_ID, username=cfg.MQTT_USERNAME, password=cfg.MQTT_PASSWORD,
    )
    rt.service.publisher = rt.bridge
    rt.bridge.start()
    rt.scheduler = start_scheduler(rt.service, cfg.DATABASE_URL, cfg.ROLLOVER_MINUTES)
    rt.service.rollover()
    return rt


def stop_services(app: Flask) -> None:
    from broadcaster.scheduler import stop_scheduler

    rt = runtime(app)
    if rt.scheduler is not None:
        stop_scheduler(rt.scheduler)
        rt.scheduler = None
    if rt.bridge is not None:
        rt.bridge.stop()
        rt.bridge = None
    if rt.broker is not None:
        rt.broker.stop()
        rt.broker = None
