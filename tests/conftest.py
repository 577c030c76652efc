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
