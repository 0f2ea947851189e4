"""Shared fixtures: real mosquitto and influxd started once per session on free ports."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.receivers import Webhook

from eldercare.servers.influxd import Influxd
from eldercare.servers.postgres import Postgres
from eldercare.stack import Broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real mosquitto with auth and ACLs; ``broker.provision([...])`` adds home gateways."""
    b = Broker(data_dir=tmp_path_factory.mktemp("mosquitto"), secret=secrets.token_urlsafe(32))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """A real influxd (1.x) on a free port with a temporary data dir."""
    server = Influxd(data_dir=tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A real PostgreSQL (Debian's), one per test session, on a free loopback port (store and dashboards tests)."""
    server = Postgres(data_dir=tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.remove()


@pytest.fixture
def unique_site() -> str:
    """A site id no other test uses (aiomqtt's unique_topic idea)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique_db() -> str:
    """An InfluxDB database name no other test uses."""
    return f"test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A per-test scratch directory."""
    return tmp_path


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local webhook receiver (the notifications' "phone")."""
    hook = Webhook()
    yield hook
    hook.close()
