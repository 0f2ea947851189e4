"""Passwords, sessions, CSRF, login rate limit, language."""

from __future__ import annotations

import dataclasses

from dash_fixtures import PASSWORD
from dash_helpers import Backend, login
from fastapi.testclient import TestClient
from support.tamper import tampered

from alerts.views import Account, Role
from dashboards.i18n import Translator, pick_language
from dashboards.security import AccountThrottle, LoginLimiter, csrf_ok, hash_password, verify_password
from dashboards.sessions import MemorySessionStore, SessionManager


def test_password_hash_is_argon2_and_verifies() -> None:
    h = hash_password("s3cret!")
    assert h.startswith("$argon2id$") and "s3cret" not in h
    assert verify_password(h, "s3cret!")
    assert not verify_password(h, "wrong")
    assert not verify_password(None, "s3cret!")
    assert not verify_password("garbage", "s3cret!")


def test_session_is_server_side_and_expires() -> None:
    clock = [1000.0]
    store = MemorySessionStore()
    sessions = SessionManager(store, ttl_s=60, clock=lambda: clock[0])
    account = Account(id="W01", name="x", role=Role.GRID_WORKER, scope="G01", password_hash="h")
    token, session = sessions.issue(account)
    assert sessions.read(token) == session
    assert sessions.read(tampered(token)) is None
    assert SessionManager(MemorySessionStore()).read(token) is None  # nothing in the cookie is trusted by itself
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "nope") and not csrf_ok(session, None)
    assert sessions.matches(session, account)
    assert not sessions.matches(session, dataclasses.replace(account, password_hash="h2"))
    assert sessions.read(token) is None  # a changed account ended it
    token, _ = sessions.issue(account)
    clock[0] += 61
    assert sessions.read(token) is None


def test_account_throttle_is_progressive_and_capped() -> None:
    clock = [0.0]
    th = AccountThrottle(free_failures=3, base_delay_s=2, max_delay_s=30, clock=lambda: clock[0])
    for _ in range(3):
        assert th.retry_after("u") == 0
        th.failed("u")
    waits = []
    for _ in range(10):
        waits.append(th.retry_after("u"))
        clock[0] += waits[-1]
        th.failed("u")
    assert waits[:4] == [2, 4, 8, 16] and max(waits) == 30
    th.succeeded("u")
    assert th.retry_after("u") == 0


def test_limiter_window() -> None:
    clock = [0.0]
    lim = LoginLimiter(max_failures=3, window_s=60, clock=lambda: clock[0])
    for _ in range(3):
        assert lim.retry_after("u") == 0
        lim.failed("u")
    assert lim.retry_after("u") > 0
    assert lim.retry_after("other") == 0
    clock[0] = 61
    assert lim.retry_after("u") == 0


def test_login_wrong_password_is_rejected_and_audited(client: TestClient, backend: Backend) -> None:
    r = client.post("/login", data={"username": "W_G1", "password": "nope"}, follow_redirects=False)
    assert r.status_code == 401
    assert "账号或密码错误" in r.text
    assert any(e.action == "login.failed" and e.entity_id == "W_G1" for e in backend.audit_log())
    assert client.get("/api/alerts").status_code == 401


def test_login_rate_limited_even_with_right_password(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/login", data={"username": "W_C1", "password": "bad"}).status_code == 401
    r = client.post("/login", data={"username": "W_C1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 429
    # another account is not locked out by W_C1's failures
    assert (
        client.post("/login", data={"username": "W_G1", "password": PASSWORD}, follow_redirects=False).status_code
        == 303
    )


def test_login_by_phone_redirects_by_role_and_sets_safe_cookie(client: TestClient) -> None:
    r = client.post("/login", data={"username": "13800000001", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    r = client.post("/login", data={"username": "W_C1", "password": PASSWORD}, follow_redirects=False)
    assert r.headers["location"] == "/console"


def test_open_redirect_refused(client: TestClient) -> None:
    r = client.post(
        "/login", data={"username": "W_C1", "password": PASSWORD, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert r.headers["location"] == "/console"


def test_pages_redirect_to_login(client: TestClient) -> None:
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/console")


def test_form_post_without_csrf_refused(client: TestClient) -> None:
    login(client, "W_C1")
    r = client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403


def test_api_write_needs_csrf_header(client: TestClient) -> None:
    csrf = login(client, "W_G1")
    body = {"resident_id": "R1", "outcome": "well"}
    assert client.post("/api/visits", json=body).status_code == 403
    assert client.post("/api/visits", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_cross_origin_post_refused(client: TestClient) -> None:
    r = client.post(
        "/login", data={"username": "W_C1", "password": PASSWORD}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403


def test_logout_ends_session(client: TestClient) -> None:
    csrf = login(client, "W_C1")
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/api/alerts").status_code == 401


def test_language_switch(client: TestClient) -> None:
    login(client, "W_C1")
    assert "告警值守" in client.get("/console").text
    assert "Alert console" in client.get("/console?lang=en").text
    assert "Alert console" in client.get("/console").text  # remembered in a cookie
    assert "告警值守" in client.get("/console?lang=zh").text


def test_translator() -> None:
    assert pick_language(None, None) == "zh"
    en = Translator("en")
    assert en("action.acknowledge") == "Acknowledge"
    assert en.term("独居") == "living alone"
    assert Translator("zh").alert_type("sos") == "SOS 紧急求助"  # the name the phone notification uses too
    assert en("no.such.key") == "no.such.key"
