"""The chaos suite runs its own broker and influxd (it kills them), not the session's shared ones."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test only, with persistence in the test's directory."""
    b = Broker(data_dir=tmp_path / "mosquitto", secret=secrets.token_urlsafe(32))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test only."""
    server = Influxd(data_dir=tmp_path / "influxdb")
    server.start()
    yield server
    server.stop()
