"""Shared fixtures: real mosquitto and influxd started once per session on free ports."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support.backend import backend_settings, registry_for, running
from support.broker_sessions import end_backend_sessions
from support.receivers import Webhook

from detection.config import DetectConfig
from eldercare.backend import Backend
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


@pytest.fixture(autouse=True)
def _no_backend_session_left_on_the_shared_broker(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the shared ``broker``, end the backend sessions it left: each would queue every later test's
    messages, and the broker rewrites its whole database every 1,000 changes (support/broker_sessions.py)."""
    yield
    if "broker" in request.fixturenames:
        end_backend_sessions(request.getfixturevalue("broker"))


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """A real influxd (1.x) on a free port with a temporary data dir."""
    server = Influxd(data_dir=tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test only (it is stopped, killed or frozen; ``start()`` again keeps its port and data)."""
    server = Influxd(data_dir=tmp_path / "influxdb")
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
def own_postgres(tmp_path: Path) -> Iterator[Postgres]:
    """A PostgreSQL of this test only (it is killed: ``support.processes.kill_postmaster``)."""
    server = Postgres(data_dir=tmp_path / "postgres")
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


@pytest.fixture
async def detect_backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Backend]]]:
    """Starts a real backend for the home ``unique_site`` on the session's broker and influxd (its own database and
    data directory), with the detection rules ``detect`` given through the operator's setting (``ELDERCARE_DETECT``)
    as a deployment would; its engine ticks every 0.2 s. ``await detect_backend(detect, channel_for=..., **kwargs)``
    returns it running (``channel_for`` goes to ``registry_for``, ``kwargs`` to the Backend); stopped at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(detect: DetectConfig, *, channel_for: Any = None, **backend_kwargs: Any) -> Backend:
            settings = backend_settings(
                broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path
            )
            settings = settings.model_copy(update={"detect": msgspec.to_builtins(detect)})
            app = Backend(
                settings, registry=registry_for(unique_site, channel_for), engine_tick_s=0.2, **backend_kwargs
            )
            return await stack.enter_async_context(running(app))

        yield start
