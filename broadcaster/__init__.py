"""Loa Phường control panel: Flask web UI and API, MQTT bridge, scheduler and CLI."""
