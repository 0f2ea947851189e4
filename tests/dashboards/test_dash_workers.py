"""Worker management: scoped list with masked phones, create / deactivate / reset password, CSRF, audit, login."""

from __future__ import annotations

import re

from dash_fixtures import PASSWORD
from dash_helpers import Backend, login
from fastapi import FastAPI
from fastapi.testclient import TestClient

NEW_PASSWORD = "a brand new passphrase"


def _one_time(html: str) -> str:
    m = re.search(r'id="one-time-password">([^<]+)<', html)
    assert m, html[:2000]
    return m.group(1)


def _can_log_in(app: FastAPI, user: str, password: str) -> bool:
    with TestClient(app) as other:
        r = other.post("/login", data={"username": user, "password": password}, follow_redirects=False)
        return r.status_code == 303


def _rows(html: str) -> dict[str, str]:
    """Worker id → ``data-active`` of the rows on the page."""
    return dict(re.findall(r'data-worker="([^"]+)" data-active="(true|false)"', html))


def test_officer_sees_workers_in_scope_with_masked_phones(client: TestClient) -> None:
    login(client, "W_C1")
    page = client.get("/workers")
    assert page.status_code == 200
    assert _rows(page.text) == {"W_C1": "true", "W_G1": "true", "W_G2": "true"}  # C01 only, no admin, no G04
    assert "13800000001" not in page.text and "138****0001" in page.text
    login(client, "W_D")
    assert set(_rows(client.get("/workers").text)) == {"W_D", "W_S1", "W_C1", "W_G1", "W_G2", "W_G4"}


def test_grid_worker_cannot_manage_workers(client: TestClient) -> None:
    csrf = login(client, "W_G1")
    assert client.get("/workers").status_code == 403
    r = client.post(
        "/workers", data={"csrf": csrf, "worker_id": "X1", "name": "X", "role": "grid_worker", "area": "G01"}
    )
    assert r.status_code == 403
    assert client.post("/workers/W_G1/password", data={"csrf": csrf}).status_code == 403
    assert 'href="/workers"' not in client.get("/residents").text


def test_create_worker_with_one_time_password_then_log_in(app: FastAPI, client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    form = {"csrf": csrf, "worker_id": "W_G9", "name": "孙网格", "role": "grid_worker", "area": "G02"}
    r = client.post("/workers", data={**form, "phone": "13800000099"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    password = _one_time(r.text)
    assert len(password) >= 16 and _rows(r.text)["W_G9"] == "true"
    assert "138****0099" in r.text
    assert _one_time(r.text) not in client.get("/workers").text  # shown once only
    assert _can_log_in(app, "W_G9", password) and _can_log_in(app, "13800000099", password)
    assert not _can_log_in(app, "W_G9", PASSWORD)
    created = [e for e in backend.audit_log() if e.action == "worker.created" and e.entity_id == "W_G9"]
    assert created and created[0].actor == "W_C1"
    # the same id or phone again is a conflict shown on the page, not a crash
    again = client.post("/workers", data={**form, "worker_id": "W_G9"})
    assert again.status_code == 409 and 'id="worker-error"' in again.text
    phone = client.post("/workers", data={**form, "worker_id": "W_G8", "phone": "13800000099"})
    assert phone.status_code == 409


def test_create_worker_with_a_chosen_password(app: FastAPI, client: TestClient) -> None:
    csrf = login(client, "W_S1")
    form = {"csrf": csrf, "worker_id": "W_C2", "name": "周值班", "role": "community_duty", "area": "C02"}
    assert client.post("/workers", data={**form, "password": "short"}).status_code == 400
    r = client.post("/workers", data={**form, "password": NEW_PASSWORD})
    assert r.status_code == 200 and 'id="one-time-password"' not in r.text
    assert _can_log_in(app, "W_C2", NEW_PASSWORD)


def test_create_outside_scope_is_refused(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    base = {"csrf": csrf, "name": "X", "password": NEW_PASSWORD}
    # an area of another community: 404, as a missing one
    assert (
        client.post("/workers", data={**base, "worker_id": "X1", "role": "grid_worker", "area": "G04"}).status_code
        == 404
    )
    assert (
        client.post("/workers", data={**base, "worker_id": "X2", "role": "grid_worker", "area": "NOPE"}).status_code
        == 404
    )
    # the street above the officer's community, and a role above their own
    assert (
        client.post("/workers", data={**base, "worker_id": "X3", "role": "community_duty", "area": "S01"}).status_code
        == 404
    )
    assert client.post("/workers", data={**base, "worker_id": "X4", "role": "street", "area": "S01"}).status_code == 403
    assert client.post("/workers", data={**base, "worker_id": "X5", "role": "admin"}).status_code == 403
    # a role that does not match the area's level
    assert (
        client.post("/workers", data={**base, "worker_id": "X6", "role": "grid_worker", "area": "C01"}).status_code
        == 400
    )
    # no CSRF token
    r = client.post(
        "/workers", data={**base, "csrf": "forged", "worker_id": "X7", "role": "grid_worker", "area": "G01"}
    )
    assert r.status_code == 403
    assert backend.account_by_login("X1") is None and backend.account_by_login("X7") is None
    assert not any(e.action == "worker.created" for e in backend.audit_log())


def test_deactivated_worker_cannot_log_in_and_loses_the_session(
    app: FastAPI, client: TestClient, backend: Backend
) -> None:
    with TestClient(app) as worker:
        login(worker, "W_G1")
        assert worker.get("/m").status_code == 200
        csrf = login(client, "W_C1")
        r = client.post("/workers/W_G1/active", data={"csrf": csrf, "active": "false"})
        assert r.status_code == 200 and _rows(r.text)["W_G1"] == "false"
        assert worker.get("/api/alerts").status_code == 401  # the open session ends at once
    assert not _can_log_in(app, "W_G1", PASSWORD) and not _can_log_in(app, "13800000001", PASSWORD)
    assert [e.actor for e in backend.audit_log() if e.action == "worker.deactivated" and e.entity_id == "W_G1"] == [
        "W_C1"
    ]
    r = client.post("/workers/W_G1/active", data={"csrf": csrf, "active": "true"})
    assert r.status_code == 200 and _rows(r.text)["W_G1"] == "true"
    assert _can_log_in(app, "W_G1", PASSWORD)


def test_deactivate_outside_scope_or_self_is_refused(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    assert client.post("/workers/W_G4/active", data={"csrf": csrf, "active": "false"}).status_code == 404
    assert client.post("/workers/admin/active", data={"csrf": csrf, "active": "false"}).status_code == 404
    assert client.post("/workers/W_C1/active", data={"csrf": csrf, "active": "false"}).status_code == 400
    assert client.post("/workers/W_G2/active", data={"csrf": "forged", "active": "false"}).status_code == 403
    assert backend.account("W_G4") is not None and backend.account("W_C1") is not None
    assert backend.account("W_G2") is not None


def test_reset_password(app: FastAPI, client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    r = client.post("/workers/W_G2/password", data={"csrf": csrf})
    assert r.status_code == 200
    generated = _one_time(r.text)
    assert _can_log_in(app, "W_G2", generated) and not _can_log_in(app, "W_G2", PASSWORD)
    assert client.post("/workers/W_G2/password", data={"csrf": csrf, "password": "short"}).status_code == 400
    r = client.post("/workers/W_G2/password", data={"csrf": csrf, "password": NEW_PASSWORD})
    assert r.status_code == 200 and 'id="one-time-password"' not in r.text
    assert _can_log_in(app, "W_G2", NEW_PASSWORD) and not _can_log_in(app, "W_G2", generated)
    assert client.post("/workers/W_G4/password", data={"csrf": csrf}).status_code == 404
    resets = [e for e in backend.audit_log() if e.action == "worker.password_set" and e.entity_id == "W_G2"]
    assert [e.actor for e in resets if e.actor != "system"] == ["W_C1", "W_C1"]  # "system": the fixture's
    assert generated not in str([e.detail for e in backend.audit_log()])
