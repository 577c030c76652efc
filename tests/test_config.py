"""The configuration model (broadcaster/config.py, issue 16): the same variables and defaults as before it was a
pydantic-settings model, typed values, one clear line per bad variable at start, and README's table generated from
the model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from broadcaster import limits
from broadcaster.cli import main
from broadcaster.config import Config, ConfigError, TestConfig, doc_table

ROOT = Path(__file__).resolve().parent.parent

#: Every variable and its default as the hand-written parser had them (plus the CLI's admin variables and
#: LOAPHUONG_FFMPEG, which other modules read): a renamed variable or a changed default fails here.
OLD_DEFAULTS = {
    "MQTT_URL": "", "MQTT_USERNAME": "", "MQTT_PASSWORD": "", "MQTT_PREFIX": "loaphuong",
    "MQTT_CLIENT_ID": "loaphuong-panel", "EMBEDDED_BROKER": "auto", "BROKER_REGISTRY": "",
    "EMBEDDED_BROKER_PORT": 1883, "HOST": "127.0.0.1", "PORT": 5000, "PUBLIC_URL": "",
    "TIMEZONE": "Asia/Ho_Chi_Minh", "TTS_ENGINES": "gtts,espeak", "GTTS_TIMEOUT": 8.0, "GTTS_URL": None,
    "TTS_VOICE": "vi", "TTS_HTTP_URL": "", "TTS_HTTP_KEY": "", "TTS_HTTP_TIMEOUT": 15.0, "TTS_HTTP_VOICES": "",
    "MAX_UPLOAD_BYTES": 30 * 1024 * 1024, "MAX_UPLOAD_DURATION_MS": 600_000, "MAX_CONCURRENT_DECODES": 2,
    "DECODE_QUEUE_LENGTH": 4, "DECODE_QUEUE_WAIT_S": 5.0, "MAX_REQUEST_BYTES": 1024 * 1024,
    "MAX_IMPORT_BYTES": 8 * 1024 * 1024, "MP3_BITRATE": "64k", "LEAD_IN_MS": 600, "MAX_TEXT_CHARS": 5000,
    "MAX_BULLETIN_MS": 15 * 60_000, "PLAN_HORIZON_HOURS": 48, "MAX_LATE_MS": 60_000, "COMMAND_TTL_S": 300,
    "ROLLOVER_MINUTES": 10, "QUIET_HOURS": "22:00-05:00", "ALERT_VOLUME": 100, "WARD_CODE": "phuong",
    "WARD_NAME": "Phường", "PRESENCE_DEBOUNCE_S": 30, "OFFLINE_ALERT_S": 600, "HEARTBEAT_GRACE": 3,
    "DRIFT_LIMIT_MS": 1000, "CLOCK_SAMPLES": 5, "MAP_TILES_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "NOTIFY_WEBHOOK_URL": "", "NOTIFY_SMTP_HOST": "", "NOTIFY_SMTP_PORT": 25, "NOTIFY_SMTP_FROM": "",
    "NOTIFY_SMTP_USER": "", "NOTIFY_SMTP_PASSWORD": "", "NOTIFY_SMTP_STARTTLS": False, "NOTIFY_TIMEOUT_S": 5.0,
    "NOTIFY_POLL_S": 15.0, "START_SERVICES": False, "WTF_CSRF_ENABLED": True, "WTF_CSRF_TIME_LIMIT": None,
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024, "SESSION_COOKIE_SAMESITE": "Lax", "SECURE_COOKIES": "auto",
    "TRUSTED_PROXIES": 0, "REMEMBER_DAYS": 30, "LOGIN_LIMIT_PER_USER": "10 per 15 minutes",
    "LOGIN_LIMIT_PER_ACCOUNT": "100 per hour", "LOGIN_LIMIT_PER_CLIENT": "200 per 15 minutes",
    "RATELIMIT_STORAGE_URI": "", "DEFAULT_LOCALE": "vi", "VALIDATE_API_RESPONSES": False, "TESTING": False,
    "SECRET_KEY": None, "ADMIN_USER": "admin", "ADMIN_PASSWORD": None, "FFMPEG": "",
}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No LOAPHUONG_* variable from the machine running the tests; the working directory is a temporary one."""
    for name in list(os.environ):
        if name.startswith("LOAPHUONG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults_are_the_old_ones(clean_env, tmp_path):
    cfg = Config()
    assert {k: getattr(cfg, k) for k in OLD_DEFAULTS} == OLD_DEFAULTS
    data = tmp_path.resolve() / "instance"
    assert data == cfg.DATA_DIR
    assert f"sqlite:///{data / 'loaphuong.db'}" == cfg.DATABASE_URL
    assert data / "media" == cfg.MEDIA_DIR and data / "panel-ed25519.key" == cfg.SIGNING_KEY_PATH
    assert cfg.public_url == "http://127.0.0.1:5000"
    # Flask gets every setting by name (create_app: app.config.from_mapping)
    assert set(cfg.as_dict()) == set(Config.model_fields) and cfg.as_dict()["PORT"] == 5000
    # the decode queue's fallbacks are the model's defaults
    assert {k: OLD_DEFAULTS[k] for k in limits.DEFAULTS} == limits.DEFAULTS


def test_the_environment_is_read_typed_and_keywords_win(clean_env, tmp_path):
    env = {"DATA_DIR": str(tmp_path / "d"), "PORT": "8080", "GTTS_TIMEOUT": "2.5", "NOTIFY_SMTP_STARTTLS": "yes",
           "START_SERVICES": "", "SIGNING_KEY": str(tmp_path / "k.pem"), "LOCALE": "en", "PUBLIC_URL": "https://p/",
           "TESTING": "1", "MQTT_URL": "mqtt://broker:1884"}
    for name, value in env.items():
        clean_env.setenv("LOAPHUONG_" + name, value)
    cfg = Config()
    assert (tmp_path / "d").resolve() == cfg.DATA_DIR and cfg.PORT == 8080 and cfg.GTTS_TIMEOUT == 2.5
    assert cfg.NOTIFY_SMTP_STARTTLS is True and cfg.START_SERVICES is False  # empty counts as off, as before
    assert tmp_path / "k.pem" == cfg.SIGNING_KEY_PATH and cfg.DEFAULT_LOCALE == "en"  # the two older names
    assert (tmp_path / "d").resolve() / "media" == cfg.MEDIA_DIR  # derived from the data directory
    assert cfg.TESTING is False  # Flask's own settings are never read from the environment
    assert cfg.public_url == "https://p"
    assert Config(PORT=9000, DEFAULT_LOCALE="vi").PORT == 9000  # a keyword beats the environment
    cfg.PORT = 7000  # what `serve --port` does
    assert cfg.public_url == "https://p"
    # The tests' variant keeps to its own directory whatever the environment says.
    clean_env.setenv("LOAPHUONG_DATABASE_URL", "postgresql+psycopg://u:p@db/loaphuong")
    test = TestConfig(tmp_path / "t", PORT=1234)
    assert f"sqlite:///{(tmp_path / 't').resolve() / 'loaphuong.db'}" == test.DATABASE_URL
    assert test.TESTING is True and test.PORT == 1234 and test.QUIET_HOURS == "off"
    assert Config().DATABASE_URL == "postgresql+psycopg://u:p@db/loaphuong"


BAD = {
    "PORT": ("http", "LOAPHUONG_PORT='http': expected a whole number"),
    "GTTS_TIMEOUT": ("0", "LOAPHUONG_GTTS_TIMEOUT='0': expected a number > 0"),
    "ALERT_VOLUME": ("110", "LOAPHUONG_ALERT_VOLUME='110': expected a number ≤ 100"),
    "START_SERVICES": ("maybe", "LOAPHUONG_START_SERVICES='maybe': expected 1/0, true/false, yes/no or on/off"),
    "TIMEZONE": ("Asia/Hanoi_City", "LOAPHUONG_TIMEZONE='Asia/Hanoi_City': expected an IANA time zone"),
    "EMBEDDED_BROKER": ("amqtt", "LOAPHUONG_EMBEDDED_BROKER='amqtt': expected 'auto', 'mosquitto' or 'iotcore'"),
    "QUIET_HOURS": ("22h-5h", "LOAPHUONG_QUIET_HOURS='22h-5h': expected HH:MM-HH:MM"),
    "TTS_ENGINES": ("gtts,festival", "LOAPHUONG_TTS_ENGINES='gtts,festival': expected a comma-separated list of"),
    "LOGIN_LIMIT_PER_USER": ("lots", "LOAPHUONG_LOGIN_LIMIT_PER_USER='lots': expected a rate limit"),
    "MQTT_URL": ("http://broker", "LOAPHUONG_MQTT_URL='http://broker': expected mqtt://host:port"),
    "DATABASE_URL": ("loaphuong.db", "LOAPHUONG_DATABASE_URL='loaphuong.db': expected an SQLAlchemy URL"),
    "TTS_HTTP_VOICES": ("north=banmai", "LOAPHUONG_TTS_HTTP_VOICES='north=banmai': expected a JSON object"),
    "SECURE_COOKIES": ("sometimes", "LOAPHUONG_SECURE_COOKIES='sometimes': expected auto, 1 (always) or 0"),
    "LOCALE": ("fr", "LOAPHUONG_LOCALE='fr': expected 'vi' or 'en'"),
}


def test_every_bad_variable_gets_one_clear_line(clean_env):
    for name, (value, _line) in BAD.items():
        clean_env.setenv("LOAPHUONG_" + name, value)
    clean_env.setenv("LOAPHUONG_MQTT_PASSWORD", "hunter2")  # fine, and never printed
    with pytest.raises(ConfigError) as exc:
        Config()
    problems = exc.value.problems
    assert len(problems) == len(BAD), problems
    for name, (_value, line) in BAD.items():
        assert [p for p in problems if p.startswith(line)], (name, problems)
    assert str(exc.value).splitlines()[0] == "invalid configuration:"
    # a keyword is named as the keyword; an unknown one is refused (a typo never passes silently)
    clean_env.delenv("LOAPHUONG_PORT")
    for name in BAD:
        clean_env.delenv("LOAPHUONG_" + name, raising=False)
    with pytest.raises(ConfigError) as exc:
        Config(PORT="x", MAX_UPLOAD_BYTE=5)
    assert exc.value.problems == ["PORT='x': expected a whole number", "MAX_UPLOAD_BYTE=5: no such setting"]


def test_a_secret_is_never_printed(clean_env):
    with pytest.raises(ConfigError) as exc:
        Config(SECRET_KEY=12345)
    assert exc.value.problems == ["SECRET_KEY=***: input should be a valid string"]
    assert "12345" not in str(exc.value)


def test_the_cli_stops_at_start_with_the_lines(clean_env, tmp_path, capsys):
    data = tmp_path / "data"
    clean_env.setenv("LOAPHUONG_DATA_DIR", str(data))
    clean_env.setenv("LOAPHUONG_PORT", "80a")
    clean_env.setenv("LOAPHUONG_ALERT_VOLUME", "-1")
    for argv in (["serve"], ["demo"], ["create-user", "x"], ["db", "upgrade"], ["config"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.splitlines() == ["error: invalid configuration:", "  LOAPHUONG_PORT='80a': expected a whole number",
                                    "  LOAPHUONG_ALERT_VOLUME='-1': expected a number ≥ 0"], (argv, err)
    assert not data.exists()  # nothing was started or written
    clean_env.delenv("LOAPHUONG_PORT")
    clean_env.delenv("LOAPHUONG_ALERT_VOLUME")
    clean_env.setenv("LOAPHUONG_MQTT_PASSWORD", "hunter2")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "LOAPHUONG_PORT=5000\n" in out and "LOAPHUONG_MQTT_PASSWORD=***\n" in out and "hunter2" not in out
    assert "TESTING" not in out


def test_readme_table_is_the_model(capsys):
    """README.md "Configuration" is what `loaphuong config --doc` prints: regenerate it when the model changes."""
    assert main(["config", "--doc"]) == 0
    generated = capsys.readouterr().out
    assert generated == doc_table()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- configuration table: .*? -->\n(.*?)<!-- end of configuration table -->", readme, re.S)
    assert found, "README.md lost its configuration table markers"
    assert found.group(1) == generated, "README.md's configuration table is stale: paste `loaphuong config --doc`"
    for name, field in Config.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        documented = f"`LOAPHUONG_{name}`" in generated or f"`{field.validation_alias}`" in generated
        assert documented == extra.get("env", True), name
        assert field.description, name
