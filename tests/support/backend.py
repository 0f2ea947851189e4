"""Building a real :class:`eldercare.backend.Backend` against the session's broker and influxd."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.settings import Settings
from eldercare.stack import Broker
from support import broker_sessions

T = TypeVar("T")

REGISTRY_MD = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def registry_for(site: str, channel_for: Any = None) -> dict[str, Any]:
    """The docs/registry.md example for one home ``site``, plus a street worker; channels from ``channel_for(id)``."""
    match = re.search(r"```json\n(.*?)```", REGISTRY_MD.read_text(), re.S)
    assert match is not None
    doc: dict[str, Any] = copy.deepcopy(json.loads(match.group(1)))
    doc["sites"][0]["site"] = site
    doc["sites"][0]["gateway"] = f"gw-{site}"
    doc["workers"].append({"id": "W03", "name": "赵街道", "role": "street", "scope": "S01", "phone": "13800000003"})
    if channel_for is not None:
        for worker in doc["workers"]:
            worker["channels"] = [channel_for(worker["id"])]
    return doc


def backend_login(broker: Broker) -> dict[str, Any]:
    """The backend's account on ``broker``'s backend listener, as keyword arguments of every MQTT client here."""
    return {
        "host": broker.host,
        "port": broker.backend_port,
        "username": broker.backend_user,
        "password": broker.backend_password,
    }


def backend_settings(*, broker: Broker, influxd: Influxd, site: str, db: str, data_dir: Path) -> Settings:
    """Settings for a backend on the test servers (its own client id, database and data directory)."""
    broker.provision([site])
    return Settings(
        data_dir=data_dir,
        mqtt_host=broker.host,
        mqtt_port=broker.backend_port,
        mqtt_username=broker.backend_user,
        mqtt_password=SecretStr(broker.backend_password),
        mqtt_client_id=f"backend-{site}",
        influx_url=influxd.url,
        influx_db=db,
        link_secret=SecretStr("test-link-secret-0123456789"),
        public_url="http://127.0.0.1:8000",
    )


@contextlib.asynccontextmanager
async def running(app: Backend) -> AsyncIterator[Backend]:
    """Run ``app`` until the block ends: yields once it is ready, then stops it and waits for a clean exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    await asyncio.wait_for(app.ready.wait(), 30)
    yield app
    stop.set()
    await asyncio.wait_for(task, 30)


async def until(probe: Callable[[], T], timeout: float = 30.0) -> T:
    """Poll ``probe`` (in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(probe)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")


async def end_session(broker: Broker, client_id: str) -> None:
    """Discard the pipeline's persistent session so the broker stops queueing for it (``broker end-session``'s way)."""
    await asyncio.to_thread(broker_sessions.end_session, broker, client_id)
