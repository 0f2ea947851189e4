"""Dashboard fixtures: a SQLite alert store with a known district, the app, logged-in clients, a live server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dash_harness import (  # noqa: E402
    CHROMIUM_ARGS,
    LINK_SECRET,
    LiveServer,
    TestStoreBackend,
    make_store,
)

from alerts.guardians import GuardianLinks  # noqa: E402
from alerts.store.guardians import GuardianStore  # noqa: E402
from alerts.store.handover import HandoverStore  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from dashboards.families import GuardianBook  # noqa: E402
from eldercare.settings import Settings  # noqa: E402


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[TestStoreBackend]:
    """Every dashboard test runs against the real alert store on SQLite (a fresh file, fast enough)."""
    b = make_store(tmp_path)
    yield b
    b.store.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, link_secret=LINK_SECRET.decode(), public_url="http://127.0.0.1:8000")


@pytest.fixture
def app(settings: Settings, backend: TestStoreBackend) -> FastAPI:
    # Handover notes and guardians in the real store's tables.
    links = GuardianLinks(secret=LINK_SECRET, base_url="http://127.0.0.1:8000")
    guardians = GuardianBook(guardians=GuardianStore(backend.store), links=links)
    return create_app(
        settings, backend=backend, poll_interval_s=0.05, handover=HandoverStore(backend.store), guardians=guardians
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's chromium driven by Playwright (never a downloaded browser).

    Module-scoped: sync Playwright keeps an event loop running in the main thread while it is open, which
    would stop the async tests of later modules from running.
    """
    from playwright.sync_api import sync_playwright

    from eldercare.servers._child import ensure_package

    path = ensure_package("/usr/bin/chromium", "chromium")
    # A CJK font, so Chinese pages (and the committed screenshots) render glyphs rather than boxes.
    ensure_package("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
