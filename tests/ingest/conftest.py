"""Fixtures of the ingest tests: a client of a fresh database on the session's real influxd."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eldercare.servers.influxd import Influxd
from ingest.influx import InfluxClient


@pytest.fixture
async def influx(influxd: Influxd, unique_db: str) -> AsyncIterator[InfluxClient]:
    """An InfluxClient on a database of its own (created, dropped afterwards)."""
    client = InfluxClient(url=influxd.url, db=unique_db)
    await client.execute(f'CREATE DATABASE "{unique_db}"')
    yield client
    try:
        await client.drop_database()
    finally:
        await client.aclose()
