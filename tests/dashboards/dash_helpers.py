"""Helpers shared by the dashboard tests."""

from __future__ import annotations

import re
import time

import httpx
from dash_fixtures import PASSWORD
from fastapi.testclient import TestClient


def login(client: TestClient | httpx.Client, user: str, password: str = PASSWORD) -> str:
    """Log in and return the session's CSRF token (read from a page's body attribute)."""
    r = client.post("/login", data={"username": user, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/residents")
    m = re.search(r'data-csrf="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


from dash_harness import TestStoreBackend  # noqa: E402

from alerts.scope import Scope  # noqa: E402
from alerts.views import AlertView  # noqa: E402
from detection.models import Alert, AlertType, Severity  # noqa: E402

Backend = TestStoreBackend


def alert_of(backend: Backend, alert_id: int) -> AlertView:
    """The alert as stored now (any scope)."""
    view = backend.get_alert(Scope("all"), alert_id)
    assert view is not None
    return view


def raise_now(
    backend: Backend,
    site: str,
    kind: AlertType,
    severity: Severity,
    ago_s: int = 0,
    device: str = "",
    now_ms: int | None = None,
) -> int:
    """Raise an alert of ``kind`` at ``site`` ``ago_s`` seconds before ``now_ms`` (default: the wall clock, as the live
    console sees it; pass the instant a test later acts at so that durations are exact)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    alert = Alert(
        site=site,
        type=kind,
        severity=severity,
        time_ms=now - ago_s * 1000,
        explanation=f"{kind.value} at {site}",
        explanation_zh=f"{site} 的 {kind.value}",
        device=device or None,
    )
    return backend.raise_alert(alert).id
