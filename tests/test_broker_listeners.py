"""EmbeddedBroker's extra listen addresses and its process id (used by bench/bench_100k.py: 100 000 nodes need
more source ports than one 127.0.0.1:port offers, and the benchmark reads Mosquitto's memory from /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_mosquitto

from broadcaster.broker import EmbeddedBroker, port_open


@pytest.mark.mosquitto
def test_mosquitto_listens_on_its_extra_addresses_and_tells_its_pid(tmp_path: Path) -> None:
    require_mosquitto()
    broker = EmbeddedBroker(kind="mosquitto", data_dir=tmp_path / "b", extra_hosts=("127.0.0.2", "127.0.0.3"))
    assert broker.pid is None
    with broker:
        pid = broker.pid
        assert pid is not None
        assert "mosquitto" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            assert port_open(host, broker.port), host
        assert not port_open("127.0.0.4", broker.port)
    assert broker.pid is None


@pytest.mark.mosquitto
def test_by_default_mosquitto_listens_on_its_host_only(tmp_path: Path) -> None:
    require_mosquitto()
    with EmbeddedBroker(kind="mosquitto", data_dir=tmp_path / "b") as broker:
        assert port_open("127.0.0.1", broker.port)
        assert not port_open("127.0.0.2", broker.port)


def test_iotcore_refuses_extra_addresses() -> None:
    with pytest.raises(ValueError, match="extra addresses"):
        EmbeddedBroker(kind="iotcore", extra_hosts=("127.0.0.2",))
