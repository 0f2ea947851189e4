"""Issue 14 acceptance: schemathesis over every operation of the OpenAPI, with and without a session.

On a throwaway SQLite store with the real alert service: no server error, no status code or content type
the OpenAPI does not document, responses matching their schemas. Examples per operation are kept few so the
suite stays quick. ``/api/alerts/stream`` (Server-Sent Events, never ends) is checked by hand instead.
"""

from __future__ import annotations

import atexit
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from dash_harness import TestStoreBackend, make_store
from dash_helpers import login
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboards.app import create_app
from dashboards.security import SESSION_COOKIE
from detection.models import Alert, AlertType, Severity
from eldercare.settings import Settings

CHECKS: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAM = "/api/alerts/stream"


def _throwaway_app() -> tuple[FastAPI, TestStoreBackend]:
    """The console over a fresh SQLite store in a temporary directory removed when the test run ends."""
    tmp = tempfile.TemporaryDirectory(prefix="ec-schemathesis-")
    atexit.register(tmp.cleanup)
    backend = make_store(Path(tmp.name))
    atexit.register(backend.store.close)
    for site in ("h1", "h2", "h4"):
        backend.raise_alert(
            Alert(
                site=site,
                type=AlertType.SOS,
                severity=Severity.CRITICAL,
                time_ms=int(time.time() * 1000) - 60_000,
                explanation="SOS",
                explanation_zh="呼叫",
            )  # fmt: skip
        )
    settings_ = Settings(
        data_dir=Path(tmp.name), link_secret="schemathesis-link-0123456789", public_url="http://testserver"
    )
    return create_app(settings_, backend=backend, poll_interval_s=0.05), backend


# Built at import: schemathesis parametrizes at collection (its fixture-based loader does not support pytest 9).
APP, _BACKEND = _throwaway_app()


def _session(user: str) -> dict[str, Any]:
    with TestClient(APP) as c:
        csrf = login(c, user)
        return {"cookies": {SESSION_COOKIE: c.cookies[SESSION_COOKIE]}, "headers": {"X-CSRF-Token": csrf}}


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    return _session("admin")


@pytest.fixture(scope="module")
def grid_session() -> dict[str, Any]:
    return _session("W_G1")


schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=STREAM)
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@FEW
def test_api_without_session(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FEW
def test_api_with_admin_session(case: Any, session: dict[str, Any]) -> None:
    case.call_and_validate(cookies=session["cookies"], headers=session["headers"], checks=CHECKS)


@schema.parametrize()
@FEW
def test_api_with_grid_worker_session(case: Any, grid_session: dict[str, Any]) -> None:
    case.call_and_validate(cookies=grid_session["cookies"], headers=grid_session["headers"], checks=CHECKS)


def test_event_stream_is_documented_and_guarded() -> None:
    with TestClient(APP) as c:
        assert c.get(STREAM).status_code == 401
    spec = APP.openapi()["paths"][STREAM]["get"]["responses"]
    assert "text/event-stream" in spec["200"]["content"] and {"401", "403", "404", "422"} <= set(spec)
