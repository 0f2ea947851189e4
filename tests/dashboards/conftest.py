"""Dashboard fixtures: an in-memory store with a known district, the app, logged-in clients, a live server."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import PASSWORD, registry  # noqa: E402

from alerts.escalation import PolicyBook  # noqa: E402
from alerts.links import LinkSigner  # noqa: E402
from alerts.models import Alert  # noqa: E402
from alerts.notify import Delivery, Message  # noqa: E402
from alerts.service import AlertService  # noqa: E402
from alerts.store.repository import AlertStore  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from dashboards.memory import MemoryBackend  # noqa: E402
from dashboards.models import AlertView  # noqa: E402
from dashboards.scope import Scope  # noqa: E402
from dashboards.sqlstore import StoreBackend, run_async  # noqa: E402
from dashboards.security import hash_password  # noqa: E402
from eldercare.settings import Settings  # noqa: E402

LINK_SECRET = b"test-link-secret-0123456789abcdef"
_HASH = hash_password(PASSWORD)


class NullNotifier:
    """Records messages instead of sending them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    async def send(self, *, url: str, message: Message) -> Delivery:
        self.sent.append((url, message))
        return Delivery(ok=True, channel=url.split("://", 1)[0], target=url)


class TestStoreBackend(StoreBackend):
    """The real store adapter plus the conveniences the tests use (raising alerts as the engine would)."""

    __test__ = False

    def raise_alert(self, alert: Alert) -> AlertView:
        record = run_async(lambda: self.service.raise_alert(alert))
        assert record is not None
        view = self.get_alert(Scope("all"), record.id)
        assert view is not None
        return view


def make_memory() -> MemoryBackend:
    b = MemoryBackend(link_secret=LINK_SECRET)
    b.import_registry(registry())
    for worker in list(b.workers):
        b.set_password_hash(worker, _HASH)
    return b


def make_store(path: Path) -> TestStoreBackend:
    store = AlertStore(url=f"sqlite:///{path / 'store.db'}")
    service = AlertService(
        store=store,
        notifier=NullNotifier(),
        policies=PolicyBook(),
        clock=lambda: time.time_ns() // 1_000_000,
        links=LinkSigner(secret=LINK_SECRET, base_url="http://127.0.0.1:8000"),
    )
    b = TestStoreBackend(store=store, service=service)
    store.import_registry(registry(), now_ms=service.clock())
    for w in registry()["workers"]:
        b.set_password_hash(w["id"], _HASH)
    return b


@pytest.fixture(params=["memory", "store"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryBackend | TestStoreBackend]:
    """Every dashboard test runs against the in-memory fake and the real SQLite alert store."""
    if request.param == "memory":
        yield make_memory()
        return
    b = make_store(tmp_path)
    yield b
    b.store.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, link_secret=LINK_SECRET.decode(), public_url="http://127.0.0.1:8000")


@pytest.fixture
def app(settings: Settings, backend: MemoryBackend | TestStoreBackend) -> FastAPI:
    return create_app(settings, backend=backend, poll_interval_s=0.05)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


class LiveServer:
    """uvicorn serving the app in a background thread on a free port."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        from eldercare.servers._child import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    from eldercare.servers._child import ensure_package

    path = ensure_package("/usr/bin/chromium", "chromium")
    # A CJK font, so Chinese pages (and the committed screenshots) render glyphs rather than boxes.
    ensure_package("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
