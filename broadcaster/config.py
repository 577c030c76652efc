"""Configuration: one class that reads the environment, and a test variant.

Every setting has an environment variable ``LOAPHUONG_<NAME>``; README.md lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from audio.upload import MAX_UPLOAD_BYTES


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"LOAPHUONG_{name}", default)


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class Config:
    """Defaults give a working single-machine deployment: SQLite + embedded broker under ./instance."""

    def __init__(self, **overrides: Any) -> None:
        data_dir = Path(overrides.pop("DATA_DIR", None) or _env("DATA_DIR", "instance")).resolve()
        self.DATA_DIR = data_dir
        self.SECRET_KEY = _env("SECRET_KEY") or None  # None → generated and kept in DATA_DIR/secret_key
        self.DATABASE_URL = _env("DATABASE_URL", f"sqlite:///{data_dir / 'loaphuong.db'}")
        self.MEDIA_DIR = Path(_env("MEDIA_DIR", str(data_dir / "media")))
        self.SIGNING_KEY_PATH = Path(_env("SIGNING_KEY", str(data_dir / "panel-ed25519.key")))
        #: Broker URL (mqtt://host:port). Empty → the panel starts an embedded broker itself.
        self.MQTT_URL = _env("MQTT_URL", "")
        self.MQTT_USERNAME = _env("MQTT_USERNAME", "")
        self.MQTT_PASSWORD = _env("MQTT_PASSWORD", "")
        self.MQTT_PREFIX = _env("MQTT_PREFIX", "loaphuong")
        self.MQTT_CLIENT_ID = _env("MQTT_CLIENT_ID", "loaphuong-panel")
        #: Embedded broker of serve/demo: Mosquitto with the dynamic-security plugin (auth + per-node ACLs);
        #: "auto" and "mosquitto" mean the same. "iotcore" is refused: it has no authentication or ACLs.
        self.EMBEDDED_BROKER = _env("EMBEDDED_BROKER", "auto")
        #: Who keeps the broker's logins in step with the registry (token rotation, node deletion):
        #: "dynsec" = the panel, over Mosquitto's dynamic-security plugin ($CONTROL); "none" = nobody.
        #: Empty → "dynsec" for the embedded broker, "none" for LOAPHUONG_MQTT_URL (broker-config's panel.env
        #: sets "dynsec").
        self.BROKER_REGISTRY = _env("BROKER_REGISTRY", "")
        self.EMBEDDED_BROKER_PORT = int(_env("EMBEDDED_BROKER_PORT", "1883"))
        self.HOST = _env("HOST", "127.0.0.1")
        self.PORT = int(_env("PORT", "5000"))
        #: Base URL nodes use to download media; defaults to http://HOST:PORT.
        self.PUBLIC_URL = _env("PUBLIC_URL", "")
        self.TIMEZONE = _env("TIMEZONE", "Asia/Ho_Chi_Minh")
        self.TTS_ENGINES = _env("TTS_ENGINES", "gtts,espeak")
        self.GTTS_TIMEOUT = float(_env("GTTS_TIMEOUT", "8"))
        self.GTTS_URL = _env("GTTS_URL", "") or None
        self.TTS_VOICE = _env("TTS_VOICE", "vi")
        #: A Vietnamese cloud TTS provider for the ``http`` engine (audio/tts.py HttpEngine); none without a URL.
        self.TTS_HTTP_URL = _env("TTS_HTTP_URL", "")
        self.TTS_HTTP_KEY = _env("TTS_HTTP_KEY", "")
        self.TTS_HTTP_TIMEOUT = float(_env("TTS_HTTP_TIMEOUT", "15"))
        self.TTS_HTTP_VOICES = _env("TTS_HTTP_VOICES", "")  # JSON: panel voice → provider voice
        # Resource limits (broadcaster/limits.py; README "Resource limits"). An uploaded recording: at most
        # MAX_UPLOAD_BYTES, and MAX_UPLOAD_DURATION_MS long (10 min: the header's duration is checked before
        # decoding, and decoding stops 1 s past the limit); at most MAX_CONCURRENT_DECODES recordings are decoded
        # at once, DECODE_QUEUE_LENGTH more wait up to DECODE_QUEUE_WAIT_S seconds, any further one is refused at
        # once (503 busy, Retry-After). Request bodies: MAX_CONTENT_LENGTH is derived from these (the biggest
        # route's bound); uploads MAX_UPLOAD_BYTES + 64 KiB, the registry CSV import MAX_IMPORT_BYTES, every
        # other request (JSON, web forms) MAX_REQUEST_BYTES; over it → 413.
        self.MAX_UPLOAD_BYTES = int(_env("MAX_UPLOAD_BYTES", str(MAX_UPLOAD_BYTES)))
        self.MAX_UPLOAD_DURATION_MS = int(_env("MAX_UPLOAD_DURATION_MS", "600000"))
        self.MAX_CONCURRENT_DECODES = int(_env("MAX_CONCURRENT_DECODES", "2"))
        self.DECODE_QUEUE_LENGTH = int(_env("DECODE_QUEUE_LENGTH", "4"))
        self.DECODE_QUEUE_WAIT_S = float(_env("DECODE_QUEUE_WAIT_S", "5"))
        self.MAX_REQUEST_BYTES = int(_env("MAX_REQUEST_BYTES", str(1024 * 1024)))
        self.MAX_IMPORT_BYTES = int(_env("MAX_IMPORT_BYTES", str(8 * 1024 * 1024)))
        self.MP3_BITRATE = _env("MP3_BITRATE", "64k")
        self.LEAD_IN_MS = int(_env("LEAD_IN_MS", "600"))
        self.MAX_TEXT_CHARS = int(_env("MAX_TEXT_CHARS", "5000"))
        #: The longest bulletin a render makes (speech × repeat with gaps and chimes): a longer one is refused
        #: (render_error) before it is mastered, so no option mix costs minutes of CPU (audio/processing.py).
        self.MAX_BULLETIN_MS = int(_env("MAX_BULLETIN_MS", str(15 * 60_000)))
        self.PLAN_HORIZON_HOURS = int(_env("PLAN_HORIZON_HOURS", "48"))
        self.MAX_LATE_MS = int(_env("MAX_LATE_MS", "60000"))
        self.COMMAND_TTL_S = int(_env("COMMAND_TTL_S", "300"))
        self.ROLLOVER_MINUTES = int(_env("ROLLOVER_MINUTES", "10"))
        #: Default quiet hours of a ward, local "HH:MM-HH:MM" ("off" = none); a ward's own setting wins.
        self.QUIET_HOURS = _env("QUIET_HOURS", "22:00-05:00")
        #: Volume (0–100) of an emergency or drill and its cancellation when the alert names none: never the volume
        #: a node was last left at (an officer may turn one node down for maintenance).
        self.ALERT_VOLUME = int(_env("ALERT_VOLUME", "100"))
        #: The first ward, created at the first start (broadcaster/tenancy.py); more wards through the API.
        self.WARD_CODE = _env("WARD_CODE", "phuong")
        self.WARD_NAME = _env("WARD_NAME", "Phường")
        #: Fleet health (broadcaster/fleet.py): offline only after this long without coming back (no flapping),
        #: an alert after this long offline, missed heartbeats before a silent node counts as offline, the
        #: clock offset that flags a node as drifting, status samples kept for the offset estimate.
        self.PRESENCE_DEBOUNCE_S = int(_env("PRESENCE_DEBOUNCE_S", "30"))
        self.OFFLINE_ALERT_S = int(_env("OFFLINE_ALERT_S", "600"))
        self.HEARTBEAT_GRACE = int(_env("HEARTBEAT_GRACE", "3"))
        self.DRIFT_LIMIT_MS = int(_env("DRIFT_LIMIT_MS", "1000"))
        self.CLOCK_SAMPLES = int(_env("CLOCK_SAMPLES", "5"))
        #: Tile URL template of the fleet map (Leaflet itself is served by the panel).
        self.MAP_TILES_URL = _env("MAP_TILES_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
        #: The notification centre's outgoing messages (broadcaster/notifications.py) to the people who must act:
        #: a JSON POST to NOTIFY_WEBHOOK_URL, and e-mail through NOTIFY_SMTP_HOST to users with an address; both
        #: optional, sent in the background with NOTIFY_TIMEOUT_S, failures only logged.
        self.NOTIFY_WEBHOOK_URL = _env("NOTIFY_WEBHOOK_URL", "")
        self.NOTIFY_SMTP_HOST = _env("NOTIFY_SMTP_HOST", "")
        self.NOTIFY_SMTP_PORT = int(_env("NOTIFY_SMTP_PORT", "25"))
        self.NOTIFY_SMTP_FROM = _env("NOTIFY_SMTP_FROM", "")
        self.NOTIFY_SMTP_USER = _env("NOTIFY_SMTP_USER", "")
        self.NOTIFY_SMTP_PASSWORD = _env("NOTIFY_SMTP_PASSWORD", "")
        self.NOTIFY_SMTP_STARTTLS = _bool(_env("NOTIFY_SMTP_STARTTLS", "0"))
        self.NOTIFY_TIMEOUT_S = float(_env("NOTIFY_TIMEOUT_S", "5"))
        #: How often every page asks for the unread count and for an emergency waiting for its reader (seconds).
        self.NOTIFY_POLL_S = float(_env("NOTIFY_POLL_S", "15"))
        #: Start the broker connection and the scheduler with the app (the CLI does; unit tests do not).
        self.START_SERVICES = _bool(_env("START_SERVICES", "0"))
        self.WTF_CSRF_ENABLED = True
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAX_CONTENT_LENGTH = 64 * 1024 * 1024  # create_app sets the biggest route's bound (limits.py)
        self.SESSION_COOKIE_SAMESITE = "Lax"
        #: Sessions, login and API tokens (broadcaster/web/sessions.py, README "Sessions, login and API tokens"):
        #: cookies get Secure on HTTPS requests ("auto"), always ("1") or never ("0"); TRUSTED_PROXIES = how many
        #: reverse proxies' X-Forwarded-For/-Proto to believe (0: none); remember-me lasts REMEMBER_DAYS (≤ 30).
        self.SECURE_COOKIES = _env("SECURE_COOKIES", "auto")
        self.TRUSTED_PROXIES = int(_env("TRUSTED_PROXIES", "0"))
        self.REMEMBER_DAYS = int(_env("REMEMBER_DAYS", "30"))
        #: Failed logins allowed (web and API together) per username from one client address, per username from
        #: all addresses, per client address; and where the counters live: empty → the panel's database (shared
        #: by every worker); e.g. redis://host:6379/0.
        self.LOGIN_LIMIT_PER_USER = _env("LOGIN_LIMIT_PER_USER", "10 per 15 minutes")
        self.LOGIN_LIMIT_PER_ACCOUNT = _env("LOGIN_LIMIT_PER_ACCOUNT", "100 per hour")
        self.LOGIN_LIMIT_PER_CLIENT = _env("LOGIN_LIMIT_PER_CLIENT", "200 per 15 minutes")
        self.RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "")
        self.DEFAULT_LOCALE = _env("LOCALE", "vi")
        #: Check every JSON answer of /api/v1 against the OpenAPI document (broadcaster/api/contract.py): on in
        #: the test suite, so a serializer that drifts from the published contract fails a test.
        self.VALIDATE_API_RESPONSES = _bool(_env("VALIDATE_API_RESPONSES", "0"))
        self.TESTING = False
        for key, value in overrides.items():
            setattr(self, key, value)

    @property
    def public_url(self) -> str:
        return (self.PUBLIC_URL or f"http://{self.HOST}:{self.PORT}").rstrip("/")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in dir(self) if k.isupper()}


class TestConfig(Config):
    """Temporary data dir, CSRF still on (tests fetch the token like a browser), fast gTTS failure."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        overrides.setdefault("SECRET_KEY", "test-secret")
        overrides.setdefault("TTS_ENGINES", "espeak")
        overrides.setdefault("TESTING", True)
        # Tests schedule "in 5 seconds" at any hour of the day; those about quiet hours set them explicitly.
        overrides.setdefault("QUIET_HOURS", "off")
        overrides.setdefault("VALIDATE_API_RESPONSES", True)
        super().__init__(DATA_DIR=data_dir, **overrides)
        self.DATABASE_URL = f"sqlite:///{Path(data_dir).resolve() / 'loaphuong.db'}"
        self.MEDIA_DIR = Path(data_dir).resolve() / "media"
        self.SIGNING_KEY_PATH = Path(data_dir).resolve() / "panel-ed25519.key"
        for key, value in overrides.items():
            setattr(self, key, value)
