"""/healthz, /readyz (checks run concurrently, 503 with the failing one named) and /metrics access rules."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from dashboards.health import Health, health_app


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("secret host details")


async def _hangs() -> None:
    await asyncio.sleep(60)


def test_readyz_reports_each_check_and_the_backend_status() -> None:
    health = Health(checks={"broker": _ok, "database": _ok}, status=lambda: {"catching_up": True})
    with TestClient(health_app(health)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ready", "checks": {"broker": "ok", "database": "ok"}, "catching_up": True}


def test_readyz_is_503_when_a_server_is_down_or_slow(monkeypatch: object) -> None:
    import dashboards.health as mod

    mod.CHECK_TIMEOUT_S = 0.2  # type: ignore[misc]
    try:
        health = Health(checks={"broker": _ok, "influxdb": _down, "database": _hangs})
        with TestClient(health_app(health)) as c:
            r = c.get("/readyz")
    finally:
        mod.CHECK_TIMEOUT_S = 3.0  # type: ignore[misc]
    assert r.status_code == 503
    assert r.json()["checks"] == {
        "broker": "ok",
        "influxdb": "error: ConnectionRefusedError",
        "database": "error: timeout",
    }
    assert "secret" not in r.text


def test_metrics_only_for_loopback_or_with_the_token() -> None:
    body = b"# HELP x y\nx 1\n"
    with TestClient(health_app(Health(metrics=lambda: body)), client=("203.0.113.9", 5000)) as c:
        assert c.get("/metrics").status_code == 403
    with TestClient(health_app(Health(metrics=lambda: body)), client=("127.0.0.1", 5000)) as c:
        r = c.get("/metrics")
        assert r.status_code == 200 and r.content == body and r.headers["content-type"].startswith("text/plain")
    with TestClient(health_app(Health(metrics=lambda: body, metrics_token="t0ken")), client=("203.0.113.9", 1)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer t0ken"}).status_code == 200
