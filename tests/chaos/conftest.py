"""The chaos suite runs its own broker (it kills it), not the shared one (`own_influxd`: tests/conftest.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.stack import Broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test only, with persistence in the test's directory."""
    b = Broker(data_dir=tmp_path / "mosquitto", secret=secrets.token_urlsafe(32))
    b.start()
    yield b
    b.stop()
