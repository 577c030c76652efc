"""Shared fixtures: real brokers on free ports, never mocks."""

from __future__ import annotations

import os

import pytest

from broadcaster.broker import EmbeddedBroker, mosquitto_binary

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


# ------------------------------------------------------------------------------------------- panel
ADMIN = ("admin", "admin-password-1")


@pytest.fixture
def app(tmp_path):
    """A panel with a real SQLite database and media store in tmp_path; no broker attached."""
    from broadcaster.app import create_app, runtime
    from broadcaster.config import TestConfig

    application = create_app(TestConfig(tmp_path / "panel"))
    runtime(application).service.create_user(*ADMIN, role="admin")
    yield application
    runtime(application).db.dispose()


@pytest.fixture
def service(app):
    from broadcaster.app import runtime

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
    from stack import PanelStack

    s = PanelStack(tmp_path, broker)
    s.start_panel()
    yield s
    s.stop()


@pytest.fixture
def sim_fleet():
    """Factory: ``sim_fleet([NodeConfig, ...])`` starts simulated nodes and stops them after the test."""
    from firmware_sim.fleet import Fleet

    fleets = []

    def start(configs, playback_log=None):
        fleet = Fleet(list(configs), playback_log=playback_log)
        fleet.start()
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        fleet.stop()
