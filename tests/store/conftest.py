"""Store fixtures: the alert store on SQLite and on a real PostgreSQL, a webhook receiver, a fake clock.

``postgres_server`` (one real PostgreSQL per session) lives in ``tests/conftest.py``: the dashboards share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import DAYTIME, FakeClock

from alerts.store.repository import AlertStore
from eldercare.servers.postgres import Postgres


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alerts.db'}"
        return
    server: Postgres = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture
def store(db_url: str) -> Iterator[AlertStore]:
    """A migrated store."""
    s = AlertStore(url=db_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 10:00 Beijing time."""
    return FakeClock(DAYTIME)
