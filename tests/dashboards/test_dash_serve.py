"""serve_console runs in the caller's loop and stops cleanly when cancelled; demo logins work."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from dash_helpers import Backend

from alerts.queries import StoreBackend
from dashboards.app import create_app
from dashboards.security import verify_password
from dashboards.serve import provision_demo_logins, serve_console
from eldercare.servers._child import free_port
from eldercare.settings import Settings


async def test_serve_console_in_task_group(settings: Settings, backend: Backend) -> None:
    port = free_port()
    app = create_app(settings, backend=backend)
    task = asyncio.create_task(serve_console(app, port=port), name="console")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(200):
            try:
                r = await client.get("/login")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert r.status_code == 200 and "登录" in r.text
        assert (await client.get("/static/vendor/echarts.min.js")).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_demo_logins(backend: Backend) -> None:
    if not isinstance(backend, StoreBackend):
        pytest.skip("demo logins are provisioned in the real store")
    logins = provision_demo_logins(backend, ["W_C1", "W_G1"])
    assert {x.worker_id for x in logins} == {"W_C1", "W_G1"}
    for x in logins:
        account = backend.account(x.worker_id)
        assert account is not None and verify_password(account.password_hash, x.password)
