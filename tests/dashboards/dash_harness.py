"""Test harness of the dashboards: the store backend, a live uvicorn server, chromium arguments."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dash_fixtures import PASSWORD, registry
from fastapi import FastAPI

from alerts.escalation import PolicyBook
from alerts.links import LinkSigner
from alerts.notify import Delivery, Message, Notifier
from alerts.queries import StoreBackend, run_async
from alerts.scope import Scope
from alerts.service import AlertService
from alerts.store.repository import AlertStore
from alerts.views import AlertView
from dashboards.security import hash_password
from detection.models import Alert, AlertType, Severity

LINK_SECRET = b"test-link-secret-0123456789abcdef"
if TYPE_CHECKING:
    from playwright.sync_api import Page

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


def store_backend(url: str, *, notifier: Notifier, doc: dict[str, Any]) -> TestStoreBackend:
    """The real store and alert service at ``url`` with the registry ``doc`` imported."""
    store = AlertStore(url=url)
    service = AlertService(
        store=store,
        notifier=notifier,
        policies=PolicyBook(),
        clock=lambda: time.time_ns() // 1_000_000,
        links=LinkSigner(secret=LINK_SECRET, base_url="http://127.0.0.1:8000"),
    )
    store.import_registry(doc, now_ms=service.clock())
    return TestStoreBackend(store=store, service=service)


def make_store(path: Path) -> TestStoreBackend:
    b = store_backend(f"sqlite:///{path / 'store.db'}", notifier=NullNotifier(), doc=registry())
    for w in registry()["workers"]:
        b.set_password_hash(w["id"], _HASH, actor="system")
    return b


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


def raise_sos(backend: StoreBackend, site: str = "h1") -> int:
    """A call-button SOS raised now through the real alert service; its id."""
    alert = Alert(
        site=site,
        type=AlertType.SOS,
        severity=Severity.CRITICAL,
        time_ms=int(time.time() * 1000),
        explanation="The call button in the bedroom was pressed.",
        explanation_zh="卧室一键呼叫按钮被按下。",
        device="btn1",
    )
    return backend.raise_alert(alert).id


def browser_login(page: Page, base: str, user: str) -> None:
    """Log ``user`` in through the console's login form (every test account has the same password)."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
