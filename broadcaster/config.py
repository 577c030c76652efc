"""Configuration: one pydantic-settings model read from the environment, and a test variant.

Every setting is a typed field of :class:`Config` read from the environment variable ``LOAPHUONG_<NAME>``
(two keep older names: ``LOAPHUONG_SIGNING_KEY`` and ``LOAPHUONG_LOCALE``), or given as a keyword
(``Config(PORT=8080)``; a keyword beats the environment). Values are checked when the model is built: a bad one
raises :class:`ConfigError` with one line per bad variable (its name, the value, what is expected), which the CLI
prints before it stops (``loaphuong config`` checks the environment without starting anything).

The variables' documentation is generated from the model: :func:`doc_table` (``loaphuong config --doc``) is the
table of README.md "Configuration", and tests/test_config.py fails when the two differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audio.tts import ENGINE_NAMES
from audio.upload import MAX_UPLOAD_BYTES
from broadcaster.errors import ServiceError
from broadcaster.quiet_hours import parse_quiet

ENV_PREFIX = "LOAPHUONG_"
#: ``SECURE_COOKIES`` values (broadcaster/web/sessions.py): ``auto``, or one meaning always / never.
SECURE_COOKIE_VALUES = ("auto", "1", "true", "yes", "on", "always", "0", "false", "no", "off", "never")
BROKER_REGISTRIES = ("", "dynsec", "none")


def setting(
    default: Any,
    description: str,
    *,
    env: bool = True,
    doc_default: str | None = None,
    secret: bool = False,
    alias: str | None = None,
    **constraints: Any,
) -> Any:
    """A field of :class:`Config`. ``env=False``: Flask's own settings, never read from the environment;
    ``doc_default``: the default as the documentation shows it (a derived one); ``secret``: its value is never
    printed (errors, ``loaphuong config``); ``alias``: an environment variable not named after the field."""
    extra: dict[str, Any] = {"env": env, "secret": secret}
    if doc_default is not None:
        extra["doc_default"] = doc_default
    return Field(default, description=description, json_schema_extra=extra, validation_alias=alias, **constraints)


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable of a field."""
    return field.validation_alias if isinstance(field.validation_alias, str) else ENV_PREFIX + name


class ConfigError(ValueError):
    """Bad settings: ``problems`` holds one line per bad variable (name, value, what is expected)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class _EnvironmentSource(EnvSettingsSource):
    """The environment, except the fields marked ``env=False`` (Flask's own settings: never from a variable)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if not _extra(field).get("env", True):
            return None, field_name, False
        return super().get_field_value(field, field_name)


def _http_url(value: str) -> str:
    if value and urlparse(value).scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL (or empty)")
    return value


class Config(BaseSettings):
    """Defaults give a working single-machine deployment: SQLite + embedded broker under ./instance."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=True, populate_by_name=True,
                                      extra="forbid", validate_default=False)

    # ------------------------------------------------------------------------------------------ storage
    DATA_DIR: Path = setting(Path("instance"), "database, media, signing key, secret key, embedded broker data",
                             validate_default=True)
    DATABASE_URL: str = setting(
        "", "SQLAlchemy URL of the database: SQLite (upgraded by `serve`/`demo` at start) or PostgreSQL "
        "`postgresql+psycopg://user:password@host/loaphuong` (`pip install \"loaphuong[postgres]\"`, schema by "
        "`loaphuong db upgrade`; see Deployment)", doc_default="sqlite:///<data>/loaphuong.db")
    # ------------------------------------------------------------------------------------------ broker
    MQTT_URL: str = setting("", "external broker `mqtt://host:port`; empty → the panel starts an embedded broker")
    MQTT_USERNAME: str = setting("", "the panel's broker username")
    MQTT_PASSWORD: str = setting("", "the panel's broker password", secret=True)
    MQTT_PREFIX: str = setting("loaphuong", "topic prefix; topics are `<prefix>/v1/…`")
    EMBEDDED_BROKER: Literal["auto", "mosquitto", "iotcore"] = setting(
        "auto", "the broker `serve`/`demo` start without `LOAPHUONG_MQTT_URL`: Mosquitto with authentication and "
        "per-node ACLs (`auto` = `mosquitto`); `iotcore` is refused (no ACLs)")
    BROKER_REGISTRY: str = setting(
        "", "`dynsec`: the panel keeps the broker's logins in step with its registry over Mosquitto's "
        "dynamic-security plugin (always for the embedded broker; `broker-config`'s `panel.env` sets it); `none`: "
        "an external broker nobody manages")
    EMBEDDED_BROKER_PORT: int = setting(1883, "embedded broker port (a free one is chosen if taken)", ge=1, le=65535)
    # ------------------------------------------------------------------------------------------ web
    HOST: str = setting("127.0.0.1", "HTTP listen address")
    PORT: int = setting(5000, "HTTP listen port", ge=1, le=65535)
    PUBLIC_URL: str = setting("", "base URL nodes download media from — set it when nodes are on other machines",
                              doc_default="http://HOST:PORT")
    TIMEZONE: str = setting("Asia/Ho_Chi_Minh", "officers' time zone; everything stored and sent is UTC")
    # ------------------------------------------------------------------------------------------ speech
    TTS_ENGINES: str = setting("gtts,espeak", "speech engines in fallback order (of `gtts`, `espeak`, `http`)")
    GTTS_TIMEOUT: float = setting(8.0, "gTTS per-request timeout (s)", gt=0)
    GTTS_URL: str | None = setting(None, "gTTS alternative endpoint (proxy)")
    TTS_VOICE: str = setting("vi", "espeak voice: `vi` (north), `vi-vn-x-central`, `vi-vn-x-south`")
    TTS_HTTP_URL: str = setting("", "a Vietnamese cloud TTS provider for the `http` engine (contract in "
                                "`audio/tts.py` `HttpEngine`; skipped while no URL)")
    TTS_HTTP_KEY: str = setting("", "the cloud TTS provider's API key", secret=True)
    TTS_HTTP_TIMEOUT: float = setting(15.0, "the cloud TTS provider's per-request timeout (s)", gt=0)
    TTS_HTTP_VOICES: str = setting("", "JSON map of panel voices to the provider's, e.g. "
                                   "`{\"north\": \"banmai\", \"south\": \"lannhi\"}`")
    # ------------------------------------------------------------------------------------------ resource limits
    # broadcaster/limits.py, README "Resource limits": an upload's size and length, the decode queue, and the
    # request bodies (MAX_CONTENT_LENGTH is derived from these by create_app: the biggest route's bound).
    MAX_UPLOAD_BYTES: int = setting(MAX_UPLOAD_BYTES, "largest uploaded recording (see Resource limits)", ge=1)
    MAX_UPLOAD_DURATION_MS: int = setting(600_000, "longest uploaded recording (the header's duration is checked "
                                          "before decoding)", ge=1)
    MAX_CONCURRENT_DECODES: int = setting(2, "recordings decoded at once", ge=1)
    DECODE_QUEUE_LENGTH: int = setting(4, "recordings waiting for a decode turn; any further one gets `503 busy`",
                                       ge=0)
    DECODE_QUEUE_WAIT_S: float = setting(5.0, "how long a recording waits for a turn before `503 busy` (s)", ge=0)
    MAX_REQUEST_BYTES: int = setting(1024 * 1024, "largest body of a JSON call or web form", ge=1)
    MAX_IMPORT_BYTES: int = setting(8 * 1024 * 1024, "largest body of a registry CSV import", ge=1)
    # ------------------------------------------------------------------------------------------ audio
    LEAD_IN_MS: int = setting(600, "silence before speech (amplifier warm-up)", ge=0)
    MP3_BITRATE: str = setting("64k", "MP3 bitrate", pattern=r"^\d+k$")
    MAX_TEXT_CHARS: int = setting(5000, "longest announcement text", ge=1)
    MAX_BULLETIN_MS: int = setting(15 * 60_000, "the longest bulletin a render makes (speech × repeat, gaps, "
                                   "chimes); a longer one is refused before it is mastered", ge=1)
    # ------------------------------------------------------------------------------------------ plans
    PLAN_HORIZON_HOURS: int = setting(48, "how far ahead each node's plan reaches", ge=1)
    MAX_LATE_MS: int = setting(60_000, "a node skips an item it cannot start within this many ms", ge=0)
    COMMAND_TTL_S: int = setting(300, "how long a command to a node stays valid (s)", ge=1)
    ROLLOVER_MINUTES: int = setting(10, "how often plans are rebuilt (items entering the window)", ge=1)
    QUIET_HOURS: str = setting("22:00-05:00", "default quiet hours of every ward (local `HH:MM-HH:MM`; `off` = "
                               "none); a ward's own setting (`PUT /api/v1/settings/quiet-hours`, timeline page) wins")
    ALERT_VOLUME: int = setting(100, "volume (0–100) of an emergency or drill and its cancellation when the alert "
                                "names none (never the volume a node was last left at)", ge=0, le=100)
    MQTT_CLIENT_ID: str = setting("loaphuong-panel", "the panel's MQTT client id; its broker-admin connection uses "
                                  "`<id>-admin`")
    WARD_CODE: str = setting("phuong", "code of the first ward, created at the first start (more through the API)")
    WARD_NAME: str = setting("Phường", "name of the first ward")
    # ------------------------------------------------------------------------------------------ fleet health
    PRESENCE_DEBOUNCE_S: int = setting(30, "a node must stay offline this long before the panel shows it offline "
                                       "(no flapping)", ge=0)
    OFFLINE_ALERT_S: int = setting(600, "offline this long → listed under \"offline alerts\" on the fleet page and "
                                   "in the API", ge=0)
    HEARTBEAT_GRACE: int = setting(3, "missed heartbeat periods before a silent node (no last-will seen) counts as "
                                   "offline", ge=1)
    DRIFT_LIMIT_MS: int = setting(1000, "clock offset above which a node is flagged as drifting (it would play "
                                  "off-time)", ge=0)
    CLOCK_SAMPLES: int = setting(5, "status samples kept per node; the clock offset is the best (lowest-latency) "
                                 "of them", ge=1)
    MAP_TILES_URL: str = setting(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "tile URL template of the fleet map, e.g. a self-hosted "
        "tile server `http://tiles.phuong.lan/{z}/{x}/{y}.png`; empty = no background map. Without the internet (or "
        "when the tiles fail) the map still shows zones and loudspeakers on a plain background (Leaflet itself is "
        "served by the panel)")
    FFMPEG: str = setting("", "ffmpeg executable for the audio chain (read by `audio/codec.py` itself)",
                          doc_default="imageio-ffmpeg's binary")
    # ------------------------------------------------------------------------------------------ keys and users
    SECRET_KEY: str | None = setting(None, "Flask session key (generated into the data dir if unset)", secret=True)
    MEDIA_DIR: Path = setting(None, "rendered and uploaded audio the nodes download", doc_default="<data>/media")
    SIGNING_KEY_PATH: Path = setting(None, "the panel's Ed25519 key; back it up — nodes trust only its public key",
                                     alias=ENV_PREFIX + "SIGNING_KEY", doc_default="<data>/panel-ed25519.key")
    ADMIN_USER: str = setting("admin", "first admin, a `province_admin`, created at the first start", min_length=1)
    ADMIN_PASSWORD: str | None = setting(None, "the first admin's password (generated if unset; set, it resets it)",
                                         secret=True)
    # ------------------------------------------------------------------------------------------ sessions, logins
    SECURE_COOKIES: str = setting("auto", "cookies' `Secure` flag: `auto` on HTTPS requests, `1` always, `0` never "
                                  "(see Deployment, \"Sessions, login and API tokens\")")
    TRUSTED_PROXIES: int = setting(0, "reverse proxies whose `X-Forwarded-*` to believe", ge=0)
    REMEMBER_DAYS: int = setting(30, "remember-me length in days (at most 30)", ge=1)
    LOGIN_LIMIT_PER_USER: str = setting("10 per 15 minutes", "failed logins allowed per username from one address")
    LOGIN_LIMIT_PER_ACCOUNT: str = setting("100 per hour", "failed logins allowed per username from all addresses")
    LOGIN_LIMIT_PER_CLIENT: str = setting("200 per 15 minutes", "failed logins allowed per client address")
    RATELIMIT_STORAGE_URI: str = setting("", "where the failed-login counters live (e.g. `redis://…`)",
                                         doc_default="the database")
    DEFAULT_LOCALE: Literal["vi", "en"] = setting("vi", "language of the pages and API messages",
                                                  alias=ENV_PREFIX + "LOCALE")
    # ------------------------------------------------------------------------------------------ notifications
    NOTIFY_WEBHOOK_URL: str = setting(
        "", "the notification centre also POSTs each \"must act\" notification (approve an announcement, confirm an "
        "emergency or its cancel) as JSON `{kind, text, link, recipients, params}` here")
    NOTIFY_SMTP_HOST: str = setting("", "…and e-mails it through this SMTP server to the people concerned who have "
                                    "an e-mail address (users page, account page)")
    NOTIFY_SMTP_PORT: int = setting(25, "the SMTP server's port", ge=1, le=65535)
    NOTIFY_SMTP_FROM: str = setting("", "the e-mails' sender")
    NOTIFY_SMTP_USER: str = setting("", "the SMTP login")
    NOTIFY_SMTP_PASSWORD: str = setting("", "the SMTP password", secret=True)
    NOTIFY_SMTP_STARTTLS: bool = setting(False, "STARTTLS to the SMTP server")
    NOTIFY_TIMEOUT_S: float = setting(5.0, "timeout of the webhook and the e-mails (both sent in the background, "
                                      "failures only logged)", gt=0)
    NOTIFY_POLL_S: float = setting(15.0, "how often an open page asks for new notifications (the badge, and the "
                                   "banner of an emergency waiting for her)", gt=0)
    RELISTEN_RATE_LIMIT: str = setting("120 per minute", "the public re-listen pages (/nghe-lai/…): requests per "
                                       "client address (a whole neighbourhood may share one mobile-carrier "
                                       "address)")
    RELISTEN_AUDIO_RATE_LIMIT: str = setting("600 per minute", "the re-listen audio files: requests per client "
                                             "address (a player asks in ranges)")
    RELISTEN_CACHE_S: float = setting(60.0, "a ward's re-listen list is computed again after this many seconds "
                                      "(sooner, within 2 s, when an airing, an approval or a zone changed)", gt=0)
    HEARD_MIN_LUFS: float = setting(-40.0, "an airing counts as heard at a node when the output level it measured "
                                    "(output_lufs, docs/protocol.md §7.10) is at least this; below it the panel "
                                    "shows \"phát nhưng không nghe thấy\"", ge=-120, le=0)
    # ------------------------------------------------------------------------------------------ operation
    START_SERVICES: bool = setting(False, "start the broker connection and the scheduler with the app (the CLI "
                                   "does; unit tests do not)")
    VALIDATE_API_RESPONSES: bool = setting(False, "check every JSON answer of /api/v1 against the OpenAPI document "
                                           "(on in the test suite)")
    # ------------------------------------------------------------------------------------------ Flask's own
    TESTING: bool = setting(False, "Flask's testing mode", env=False)
    WTF_CSRF_ENABLED: bool = setting(True, "CSRF check of the web forms", env=False)
    WTF_CSRF_TIME_LIMIT: int | None = setting(None, "CSRF token lifetime (none: the session's)", env=False)
    MAX_CONTENT_LENGTH: int = setting(64 * 1024 * 1024, "set by create_app to the biggest route's bound (limits.py)",
                                      env=False)
    SESSION_COOKIE_SAMESITE: str = setting("Lax", "the session cookie's SameSite", env=False)

    def __init__(self, **overrides: Any) -> None:
        try:
            super().__init__(**overrides)
        except ValidationError as exc:
            raise ConfigError(problems(exc, overrides)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords, then the environment (no .env file: the service manager sets the environment)."""
        return init_settings, _EnvironmentSource(settings_cls)

    # ------------------------------------------------------------------------------------------ checks
    @field_validator("NOTIFY_SMTP_STARTTLS", "START_SERVICES", "VALIDATE_API_RESPONSES", mode="before")
    @classmethod
    def _empty_is_false(cls, value: Any) -> Any:
        return False if isinstance(value, str) and not value.strip() else value

    @field_validator("SECRET_KEY", "GTTS_URL", "ADMIN_PASSWORD", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("DATA_DIR", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        return "instance" if value is None or (isinstance(value, str) and not value.strip()) else value

    @field_validator("MEDIA_DIR", "SIGNING_KEY_PATH", mode="before")
    @classmethod
    def _in_data_dir(cls, value: Any, info: ValidationInfo) -> Any:
        """Empty → the default inside the data directory (validated before these: it comes first)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            data_dir = info.data.get("DATA_DIR") or Path("instance").resolve()
            return data_dir / ("media" if info.field_name == "MEDIA_DIR" else "panel-ed25519.key")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value:
            try:
                make_url(value)
            except ArgumentError:
                raise ValueError("expected an SQLAlchemy URL, e.g. sqlite:///path/loaphuong.db or "
                                 "postgresql+psycopg://user:password@host/loaphuong") from None
        return value

    @field_validator("MQTT_URL")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        if value:
            parsed = urlparse(value if "://" in value else f"mqtt://{value}")
            try:
                parsed.port  # noqa: B018 — raises ValueError on a bad port
            except ValueError:
                raise ValueError("expected mqtt://host:port with a port number") from None
            if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
                raise ValueError("expected mqtt://host:port")
        return value

    @field_validator("MQTT_PREFIX")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "+#\0") or value.startswith("$"):
            raise ValueError("expected a non-empty MQTT topic prefix without +, # or a leading $")
        return value

    @field_validator("BROKER_REGISTRY")
    @classmethod
    def _broker_registry(cls, value: str) -> str:
        if value.strip().lower() not in BROKER_REGISTRIES:
            raise ValueError("expected dynsec, none or empty")
        return value

    @field_validator("PUBLIC_URL", "TTS_HTTP_URL", "NOTIFY_WEBHOOK_URL", "GTTS_URL")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else value

    @field_validator("TIMEZONE")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone, e.g. Asia/Ho_Chi_Minh") from None
        return value

    @field_validator("TTS_ENGINES")
    @classmethod
    def _engines(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names or any(n not in ENGINE_NAMES for n in names):
            raise ValueError(f"expected a comma-separated list of {', '.join(ENGINE_NAMES)}")
        return value

    @field_validator("TTS_HTTP_VOICES")
    @classmethod
    def _voices(cls, value: str) -> str:
        if value.strip():
            try:
                voices = json.loads(value)
            except ValueError:
                voices = None
            if not isinstance(voices, dict) or not all(isinstance(v, str) for v in voices.values()):
                raise ValueError('expected a JSON object of voice names, e.g. {"north": "banmai"}')
        return value

    @field_validator("QUIET_HOURS")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        try:
            parse_quiet(value)
        except ServiceError:
            raise ValueError("expected HH:MM-HH:MM (local time) or off") from None
        return value

    @field_validator("SECURE_COOKIES")
    @classmethod
    def _secure_cookies(cls, value: str) -> str:
        if value.strip().lower() not in SECURE_COOKIE_VALUES:
            raise ValueError("expected auto, 1 (always) or 0 (never)")
        return value

    @field_validator("LOGIN_LIMIT_PER_USER", "LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_CLIENT",
                     "RELISTEN_RATE_LIMIT", "RELISTEN_AUDIO_RATE_LIMIT")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a rate limit such as '10 per 15 minutes' or '100/hour'") from None
        return value

    @field_validator("FFMPEG")
    @classmethod
    def _ffmpeg(cls, value: str) -> str:
        if value and shutil.which(value) is None:
            raise ValueError("expected an ffmpeg executable (a path, or a name on PATH)")
        return value

    @field_validator("DATA_DIR")
    @classmethod
    def _resolved(cls, value: Path) -> Path:
        return value.resolve()

    @model_validator(mode="after")
    def _derived(self) -> Config:
        """Where the data directory decides: the database, the media and the signing key."""
        if not self.DATABASE_URL:
            self.DATABASE_URL = f"sqlite:///{self.DATA_DIR / 'loaphuong.db'}"
        if self.MEDIA_DIR is None:
            self.MEDIA_DIR = self.DATA_DIR / "media"
        if self.SIGNING_KEY_PATH is None:
            self.SIGNING_KEY_PATH = self.DATA_DIR / "panel-ed25519.key"
        return self

    # ------------------------------------------------------------------------------------------ use
    @property
    def public_url(self) -> str:
        return (self.PUBLIC_URL or f"http://{self.HOST}:{self.PORT}").rstrip("/")

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name (what create_app hands to Flask's ``app.config``)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def shown(self) -> dict[str, str]:
        """Every environment variable with the value in force, secrets hidden (``loaphuong config``)."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            if _extra(field).get("env", True):
                value = getattr(self, name)
                out[env_name(name, field)] = "***" if _extra(field).get("secret") and value else _text(value)
        return out


class TestConfig(Config):
    """Temporary data dir, CSRF still on (tests fetch the token like a browser), fast gTTS failure."""

    __test__ = False  # not a pytest test class

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        root = Path(data_dir).resolve()
        overrides.setdefault("SECRET_KEY", "test-secret")
        overrides.setdefault("TTS_ENGINES", "espeak")
        overrides.setdefault("TESTING", True)
        # Tests schedule "in 5 seconds" at any hour of the day; those about quiet hours set them explicitly.
        overrides.setdefault("QUIET_HOURS", "off")
        overrides.setdefault("VALIDATE_API_RESPONSES", True)
        # The test's own directory, whatever the environment says.
        overrides.setdefault("DATABASE_URL", f"sqlite:///{root / 'loaphuong.db'}")
        overrides.setdefault("MEDIA_DIR", root / "media")
        overrides.setdefault("SIGNING_KEY_PATH", root / "panel-ed25519.key")
        super().__init__(DATA_DIR=data_dir, **overrides)


# ------------------------------------------------------------------------------------------ errors, documentation
_EXPECTED = {
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "bool_parsing": "expected 1/0, true/false, yes/no or on/off",
    "greater_than_equal": "expected a number ≥ {ge}",
    "greater_than": "expected a number > {gt}",
    "less_than_equal": "expected a number ≤ {le}",
    "string_pattern_mismatch": "expected text matching {pattern}",
    "string_too_short": "expected a non-empty value",
    "extra_forbidden": "no such setting",
}


def problems(exc: ValidationError, overrides: dict[str, Any] | None = None) -> list[str]:
    """One line per bad variable: ``LOAPHUONG_PORT='abc': expected a whole number``. A bad keyword is named as
    the keyword (``PORT=…``), a bad environment variable by its full name."""
    fields = Config.model_fields
    by_alias = {env_name(n, f): n for n, f in fields.items()}
    lines: dict[str, str] = {}
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else ""
        name = by_alias.get(key, key)
        field = fields.get(name)
        label = name if field is None or name in (overrides or {}) else env_name(name, field)
        if label in lines:
            continue  # one line per variable (a union type reports once per member)
        secret = field is not None and _extra(field).get("secret")
        shown = "***" if secret else repr(error.get("input"))
        ctx = error.get("ctx") or {}
        if error["type"] == "value_error":
            expected = str(ctx.get("error", error["msg"]))
        elif error["type"] in _EXPECTED:
            expected = _EXPECTED[error["type"]].format(**{k: _text(v) for k, v in ctx.items()})
        elif error["type"] == "literal_error":
            expected = "expected " + str(ctx.get("expected", error["msg"]))
        else:
            expected = error["msg"][:1].lower() + error["msg"][1:]
        lines[label] = f"{label}={shown}: {expected}"
    return list(lines.values())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def doc_table() -> str:
    """The table of README.md "Configuration": every environment variable, its default and its meaning."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Config.model_fields.items():
        extra = _extra(field)
        if not extra.get("env", True):
            continue
        default = extra.get("doc_default", _text(field.default))
        rows.append(f"| `{env_name(name, field)}` | {f'`{default}`' if default else '(empty)'} "
                    f"| {field.description} |")
    return "\n".join(rows) + "\n"

