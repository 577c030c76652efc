"""Shared fixtures: real brokers on free ports, never mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import werkzeug.security
from browser import CHROMIUM, DESKTOP, PHONE, chromium_args, fake_voice_wav, keep_screenshot, new_page, start_panel
from firmware_sim.fleet import Fleet
from pg import INSTALL_HINT, PgCluster, PostgresUnavailable
from playwright import sync_api
from stack import PanelStack

from broadcaster.app import create_app, runtime
from broadcaster.broker import EmbeddedBroker, mosquitto_binary
from broadcaster.config import TestConfig

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: The tests' password hash. Werkzeug's default, scrypt at n=32768, costs 0.2-0.7 s a hash on CI's 2 cores, and
#: nearly every panel test creates users and logs in: it was the largest share of the suite's time. The same scrypt
#: at n=2048 runs the same code (each hash names its method, so checking follows it), 16 times cheaper and still
#: real work (tests/test_sessions.py times an unknown username against a known one). Tests only: the panel keeps
#: werkzeug's default.
TEST_PASSWORD_HASH_METHOD = "scrypt:2048:8:1"
assert werkzeug.security.generate_password_hash.__defaults__ == ("scrypt", 16), "werkzeug changed its defaults"
werkzeug.security.generate_password_hash.__defaults__ = (TEST_PASSWORD_HASH_METHOD, 16)


def require_mosquitto() -> None:
    """Mosquitto tests must run under CI=true; locally they may skip if it is not installed."""
    if mosquitto_binary():
        return
    if IN_CI:
        pytest.fail("mosquitto is required under CI=true (apt-get install mosquitto)")
    pytest.skip("mosquitto not installed")


@pytest.fixture(params=["iotcore", "mosquitto"])
def any_broker(request, tmp_path):
    """Each broker the product supports: the embedded iotcore default and Mosquitto."""
    if request.param == "mosquitto":
        require_mosquitto()
    broker = EmbeddedBroker(kind=request.param, data_dir=tmp_path / "broker")
    broker.start()
    yield broker
    broker.cleanup()


@pytest.fixture
def broker(tmp_path):
    """The broker the product would embed by default (Mosquitto when installed, else iotcore)."""
    b = EmbeddedBroker(kind="auto", data_dir=tmp_path / "broker")
    b.start()
    yield b
    b.cleanup()


@pytest.fixture
def mosquitto(tmp_path):
    require_mosquitto()
    b = EmbeddedBroker(kind="mosquitto", data_dir=tmp_path / "mosquitto")
    b.start()
    yield b
    b.cleanup()


# ---------------------------------------------------------------------------------------------- databases
#: Modules whose panel tests (every test using the ``app``/``service``/``client``/``api`` fixtures) run on
#: PostgreSQL as well as SQLite; a test elsewhere can opt in with ``@pytest.mark.both_backends``.
BOTH_BACKENDS_MODULES = frozenset({
    "test_scheduling", "test_approval", "test_release_policy", "test_emergency", "test_fleet",
    "test_reports", "test_panel", "test_tenancy",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run on both databases what BOTH_BACKENDS_MODULES or the ``both_backends`` marker ask for.

    The second run on PostgreSQL of a module in BOTH_BACKENDS_MODULES is marked ``slow`` (`make test-all`, CI): it
    repeats the module's SQLite run and was a quarter of the fast lane. A test marked ``both_backends`` itself
    (users, tenancy: the queries that differ most between the two) runs on PostgreSQL in the fast lane too."""
    if "db_backend" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("db_backend", ["sqlite", "postgresql"], indirect=True)
    elif module in BOTH_BACKENDS_MODULES:
        metafunc.parametrize("db_backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)],
                             indirect=True)


@pytest.fixture
def db_backend(request):
    """"sqlite" (the default) or "postgresql" (see BOTH_BACKENDS_MODULES)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the session (tests/pg.py); never skipped under CI=true."""

    try:
        cluster = PgCluster().start()
    except PostgresUnavailable as exc:  # `make test` installs it: a missing real part is a failure, never a skip
        pytest.fail(f"PostgreSQL is required ({INSTALL_HINT}): {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    """A fresh PostgreSQL database at the head revision (a copy of the migrated template), dropped after."""
    name = pg_cluster.create_database(template=pg_cluster.migrated_template())
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def empty_pg_url(pg_cluster):
    """A fresh, empty PostgreSQL database, dropped after."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def database_url(request, db_backend, tmp_path):
    """The panel's database for this test: SQLite in tmp_path, or a fresh PostgreSQL database."""
    if db_backend == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{(tmp_path / 'panel' / 'loaphuong.db').resolve()}"


# ------------------------------------------------------------------------------------------- panel
ADMIN = ("admin", "admin-password-1")


@pytest.fixture
def app(tmp_path, database_url):
    """A panel with a real database (SQLite in tmp_path, or PostgreSQL: see BOTH_BACKENDS_MODULES) and media
    store in tmp_path; no broker attached."""

    application = create_app(TestConfig(tmp_path / "panel", DATABASE_URL=database_url))
    runtime(application).service.create_user(*ADMIN, role="admin")
    yield application
    runtime(application).db.dispose()


@pytest.fixture
def service(app):
    return runtime(app).service


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client):
    """A test client whose requests carry the admin's API bearer token."""
    token = client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}).json["token"]

    class Api:
        headers = {"Authorization": f"Bearer {token}"}

        def get(self, url, **kw):
            return client.get(url, headers=self.headers, **kw)

        def post(self, url, **kw):
            return client.post(url, headers=self.headers, **kw)

        def delete(self, url, **kw):
            return client.delete(url, headers=self.headers, **kw)

    return Api()


# ------------------------------------------------------------------------------ whole stack, simulator
@pytest.fixture
def panel_stack(tmp_path, broker):
    """Panel (HTTP on a free port, MQTT bridge, scheduler) on a real broker; call .provision() and
    .start_fleet() for simulated nodes. See tests/stack.py."""

    s = PanelStack(tmp_path, broker)
    s.start_panel()
    yield s
    s.stop()


@pytest.fixture
def sim_fleet():
    """Factory: ``sim_fleet([NodeConfig, ...])`` starts simulated nodes and stops them after the test."""

    fleets = []

    def start(configs, playback_log=None):
        fleet = Fleet(list(configs), playback_log=playback_log)
        fleet.start()
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        fleet.stop()


# ------------------------------------------------------------------------------- browser (tests/browser.py)
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test item, so a browser fixture can keep a screenshot on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """One headless Chromium (Debian's package, installed by `make test`) for the whole run, with a fake
    microphone that speaks (tests/browser.py ``fake_voice_wav``) for the live paging tests."""

    assert Path(CHROMIUM).exists(), "Chromium is missing: sudo apt-get install -y chromium"
    voice = fake_voice_wav(tmp_path_factory.mktemp("mic") / "voice.wav")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(voice))
        yield browser
        browser.close()


@pytest.fixture
def live(tmp_path):
    """A live panel with an admin, an officer (canbo), two leaders (lanhdao, lanhdao2), three zones and three
    nodes with coordinates (tests/browser.py)."""

    panel = start_panel(tmp_path / "panel")
    yield panel
    panel.close()


def _browser_page(request, chromium, size):
    page = new_page(chromium, size)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        keep_screenshot(page, request.node.nodeid)
    page.context.close()


@pytest.fixture
def phone(request, chromium):
    """A page in a 390×844 phone-size window (Vietnamese, Asia/Ho_Chi_Minh); screenshot kept on failure."""

    yield from _browser_page(request, chromium, PHONE)


@pytest.fixture
def desktop(request, chromium):
    """A page in a 1280×800 window; screenshot kept on failure."""

    yield from _browser_page(request, chromium, DESKTOP)
