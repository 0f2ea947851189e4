"""The security review's attacks (issue 14, D1–D8), each replayed against the console: all must fail now."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dash_fixtures import PASSWORD, registry
from dash_harness import LiveServer
from dash_helpers import Backend, alert_of, login
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerts.scope import Scope
from alerts.views import Role
from dashboards.app import create_app
from dashboards.security import SESSION_COOKIE, hash_password
from detection.models import Alert, AlertType, Severity
from eldercare.settings import Settings

HEADER = "编号,姓名,性别,出生年份,身份证号,电话,类别,能力等级,住所编号,网格,住址,紧急联系人,关系,联系人电话,知情同意\n"
GOOD_ID = "110101193812120018"
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy")


def _now() -> int:
    return int(time.time() * 1000)


def _sos(backend: Backend, site: str = "h1") -> int:
    alert = Alert(
        site=site, type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=_now() - 30_000,
        explanation="SOS pressed", explanation_zh="按下紧急呼叫",
    )  # fmt: skip
    return backend.raise_alert(alert).id


def _can_log_in(app: FastAPI, user: str, password: str) -> bool:
    with TestClient(app) as other:
        r = other.post("/login", data={"username": user, "password": password}, follow_redirects=False)
        return r.status_code == 303


# -- D1: role rank on account management ---------------------------------------------------------------------


def test_d1_officer_cannot_take_over_a_higher_or_equal_account(
    app: FastAPI, client: TestClient, backend: Backend
) -> None:
    # C03 is the only community of S02: a street officer of S02 has all their grids inside C03.
    pw = hash_password(PASSWORD)
    backend.create_worker(actor="system", worker_id="W_C3", name="社区", role=Role.COMMUNITY_DUTY, scope="C03",
                          phone="13800000031", password_hash=pw)  # fmt: skip
    backend.create_worker(actor="system", worker_id="W_S2", name="街道", role=Role.STREET, scope="S02",
                          phone="13800000032", password_hash=pw)  # fmt: skip
    backend.create_worker(actor="system", worker_id="W_C3b", name="社区二", role=Role.COMMUNITY_DUTY, scope="C03",
                          phone="13800000033", password_hash=pw)  # fmt: skip
    csrf = login(client, "W_C3")
    page = client.get("/workers").text
    assert 'action="/workers/W_S2/password"' not in page and 'action="/workers/W_C3b/active"' not in page
    for target in ("W_S2", "W_C3b"):
        r = client.post(f"/workers/{target}/password", data={"csrf": csrf, "password": "taken over 12345"})
        assert r.status_code in (403, 404), (target, r.status_code)
        r = client.post(f"/workers/{target}/active", data={"csrf": csrf, "active": "false"})
        assert r.status_code in (403, 404), (target, r.status_code)
    assert not _can_log_in(app, "W_S2", "taken over 12345")
    assert backend.account("W_S2") is not None and backend.account("W_C3b") is not None
    # a grid worker of the community is still managed
    backend.create_worker(actor="system", worker_id="W_G9", name="网格", role=Role.GRID_WORKER, scope="G04",
                          phone="13800000034", password_hash=pw)  # fmt: skip
    r = client.post("/workers/W_G9/password", data={"csrf": csrf, "password": "a fresh one 12345"})
    assert r.status_code == 200
    assert _can_log_in(app, "W_G9", "a fresh one 12345")


# -- D2: CSV import across areas ----------------------------------------------------------------------------


def _import(client: TestClient, csrf: str, rows: list[str]) -> dict:  # type: ignore[type-arg]
    text = HEADER + "\n".join(rows) + "\n"
    r = client.post(
        "/api/elders/import?dry_run=false",
        files={"file": ("residents.csv", text.encode("utf-8"), "text/csv")},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_d2_import_cannot_move_another_areas_home_and_is_audited_per_row(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    report = _import(client, csrf, [
        f"R90,周桂兰,F,1938,{GOOD_ID},13911112222,独居,2,h4,G01,幸福路 1 号,,,,是",  # h4 is C03's home
        "R91,吴秀英,F,1941,11010119350505003X,13911112223,独居,1,h91,G02,幸福路 2 号,,,,是",
    ])  # fmt: skip
    assert report["accepted"] == ["R91"]
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, "site")]
    r4 = backend.get_resident(Scope("all"), "R4")
    assert r4 is not None and r4.site == "h4" and r4.place.grid == "G04"  # the home stayed in its area
    assert backend.get_resident(Scope("all"), "R90") is None
    rows = [e for e in backend.audit_log(limit=50) if e.action == "resident.imported"]
    assert [(e.actor, e.entity_id) for e in rows] == [("W_C1", "R91")]
    assert all(e.actor != "console" for e in backend.audit_log(limit=50) if e.action == "registry.imported")


# -- D3: one-tap links at use time ----------------------------------------------------------------------------


def test_d3_link_of_a_deactivated_worker_is_refused(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    ack = backend.link_token(alert_id=sos, worker_id="W_G1", action="acknowledge", now_ms=_now())
    view = backend.link_token(alert_id=sos, worker_id="W_G1", action="view", now_ms=_now())
    backend.set_worker_active("W_G1", False, actor="W_C1")
    assert client.post(f"/m/{ack}", follow_redirects=False).status_code == 404
    assert client.get(f"/m/{view}").status_code == 404
    alert = alert_of(backend, sos)
    assert alert.state == "open" and alert.assignee != "W_G1"


def test_d3_link_of_a_worker_moved_out_of_the_area_is_refused(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend, "h4")  # G04
    ack = backend.link_token(alert_id=sos, worker_id="W_G1", action="acknowledge", now_ms=_now())  # W_G1: G01
    assert client.post(f"/m/{ack}", follow_redirects=False).status_code == 404
    assert alert_of(backend, sos).state == "open"


def test_d3_replaying_a_link_never_renews_it(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    now = _now()
    ack = backend.link_token(alert_id=sos, worker_id="W_G1", action="acknowledge", now_ms=now)
    original = backend.verify_link(ack, now_ms=now)
    for _ in range(3):  # use, then replay
        r = client.post(f"/m/{ack}", follow_redirects=False)
        assert r.status_code == 303
        fresh = r.headers["location"].removeprefix("/m/")
        assert backend.verify_link(fresh, now_ms=now).expires_ms <= original.expires_ms
        page = client.get(f"/m/{fresh}")
        assert page.status_code == 200


# -- D4: server-side sessions ----------------------------------------------------------------------------------


def _cookie(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


def _session_works(app: FastAPI, cookie: str) -> bool:
    with TestClient(app) as other:
        other.cookies.set(SESSION_COOKIE, cookie)
        return other.get("/api/alerts").status_code == 200


def test_d4_logout_ends_the_session_server_side(app: FastAPI, client: TestClient) -> None:
    csrf = login(client, "W_G1")
    stolen = _cookie(client)
    assert _session_works(app, stolen)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert not _session_works(app, stolen)


def test_d4_password_reset_and_deactivation_end_sessions(app: FastAPI, client: TestClient) -> None:
    with TestClient(app) as victim:
        login(victim, "W_G1")
        old = _cookie(victim)
    csrf = login(client, "W_C1")
    assert client.post("/workers/W_G1/password", data={"csrf": csrf, "password": "new password 123"}).status_code == 200
    assert not _session_works(app, old)
    with TestClient(app) as victim:
        login(victim, "W_G1", "new password 123")
        old = _cookie(victim)
    assert client.post("/workers/W_G1/active", data={"csrf": csrf, "active": "false"}).status_code == 200
    assert client.post("/workers/W_G1/active", data={"csrf": csrf, "active": "true"}).status_code == 200
    assert not _session_works(app, old)  # reactivation does not revive it


def test_d4_role_change_ends_sessions(app: FastAPI, backend: Backend) -> None:
    with TestClient(app) as victim:
        login(victim, "W_G2")
        old = _cookie(victim)
    doc = registry()
    doc["workers"] = [w for w in doc["workers"] if w["id"] == "W_G2"]
    doc["workers"][0].update(role="community_duty", scope="C01")
    backend.import_registry(doc)
    assert not _session_works(app, old)


# -- D5: validation is a 422, never a 500 ------------------------------------------------------------------------


@pytest.mark.parametrize("month", ["abc", "2026-13", "2026-00", "99999-01", "2026-1-1", "0000-01"])
def test_d5_bad_month_is_422(client: TestClient, month: str) -> None:
    login(client, "W_C1")
    for path in ("/api/visits", "/api/stats/monthly", "/api/stats/monthly.csv", "/stats", "/stats/report"):
        r = client.get(path, params={"month": month})
        assert r.status_code == 422, (path, r.status_code)
        for h in SECURITY_HEADERS:
            assert h in r.headers


def test_d5_huge_alert_id_is_422(client: TestClient) -> None:
    csrf = login(client, "W_C1")
    big = 9223372036854775808
    assert client.get(f"/api/alerts/{big}").status_code == 422
    for path in (f"/console/alerts/{big}", f"/m/alerts/{big}"):  # a page naming no record: not found, never a 500
        assert client.get(path).status_code == 404, path
    headers = {"X-CSRF-Token": csrf}
    assert client.post(f"/api/alerts/{big}/actions", json={"action": "acknowledge"}, headers=headers).status_code == 422
    assert client.post(f"/api/alerts/{big}/assign", json={"worker_id": "W_G1"}, headers=headers).status_code == 422


def test_d5_security_headers_on_server_errors(app: FastAPI, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("database on fire")

    with TestClient(app, raise_server_exceptions=False) as c:
        login(c, "W_C1")
        monkeypatch.setattr(backend, "list_alerts", broken)
        r = c.get("/api/alerts")
        assert r.status_code == 500
        assert "database on fire" not in r.text and "Traceback" not in r.text
        for h in SECURITY_HEADERS:
            assert h in r.headers


# -- D6: CSV formula injection ------------------------------------------------------------------------------------


def test_d6_exported_cells_cannot_carry_formulas(client: TestClient, backend: Backend) -> None:
    doc = registry()
    doc["workers"] = []
    doc["sites"] = [site for site in doc["sites"] if site["site"] == "h1"]
    doc["sites"][0]["address"] = "+cmd|' /C calc'!A0"
    doc["sites"][0]["residents"][0]["name"] = '=HYPERLINK("http://evil","x")'
    doc["sites"][0]["residents"][0]["phone"] = "@SUM(1+1)"
    backend.import_registry(doc)
    login(client, "W_C1")
    r = client.get("/api/elders/export.csv")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    for bad in ("\n=HYPERLINK", ",=HYPERLINK", ',"=HYPERLINK', ",+cmd", ',"+cmd', ",@SUM", ',"@SUM'):
        assert bad not in r.text, bad
    assert "'=HYPERLINK" in r.text and "'+cmd" in r.text
    r = client.get("/api/stats/monthly.csv")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


# -- D7: the login limiter cannot be used to lock people out --------------------------------------------------


def test_d7_id_and_phone_share_one_budget(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/login", data={"username": "W_C1", "password": "bad"}).status_code == 401
    r = client.post("/login", data={"username": "13800000002", "password": "bad"})
    assert r.status_code == 429


def test_d7_lockout_is_a_short_progressive_delay(app: FastAPI) -> None:
    clock = [1000.0]
    ctx = app.state.ctx
    ctx.limiter.clock = lambda: clock[0]
    with TestClient(app) as attacker:
        for _ in range(40):  # an attacker keeps guessing as fast as the limiter lets them
            r = attacker.post("/login", data={"username": "W_C1", "password": "bad"})
            assert r.status_code in (401, 429)
            clock[0] += 1
    # the owner is never held off for long: at most the cap after the last failure
    clock[0] += ctx.limiter.max_delay_s
    assert _can_log_in(app, "W_C1", PASSWORD)


@pytest.fixture
def proxied_server(app: FastAPI) -> Iterator[str]:
    from dashboards.serve import console_config

    server = LiveServer(app)
    server.server.config = console_config(app, host="127.0.0.1", port=server.port, trusted_proxies="")
    server.server.config.lifespan = "off"
    server.start()
    yield server.url
    server.stop()


def test_d7_forwarded_for_from_an_untrusted_peer_does_not_reset_the_address_budget(proxied_server: str) -> None:
    with httpx.Client(base_url=proxied_server) as c:
        codes = [
            c.post("/login", data={"username": f"nobody{i}", "password": "x"},
                   headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code
            for i in range(31)
        ]  # fmt: skip
    assert codes[:30] == [401] * 30 and codes[30] == 429


# -- D8: least privilege, docs, OpenAPI -----------------------------------------------------------------------


def test_d8_grid_workers_cannot_open_statistics_registry_or_exports(client: TestClient) -> None:
    login(client, "W_G1")
    for path in ("/stats", "/stats/report", "/registry", "/api/stats/monthly", "/api/stats/monthly.csv",
                 "/api/elders/export.csv"):  # fmt: skip
        assert client.get(path).status_code == 403, path


def test_d8_docs_use_no_cdn_and_openapi_documents_real_status_codes(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 404 or "cdn.jsdelivr" not in r.text, path
    spec = client.get("/openapi.json").json()
    read = spec["paths"]["/api/alerts/{alert_id}"]["get"]["responses"]
    assert {"200", "401", "404", "422"} <= set(read)
    act = spec["paths"]["/api/alerts/{alert_id}/actions"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(act)


# -- HTTPS deployments: Secure cookies and HSTS ---------------------------------------------------------------


def test_https_public_url_sets_secure_cookie_and_hsts(tmp_path: Path, backend: Backend) -> None:
    settings = Settings(data_dir=tmp_path, link_secret="x" * 32, public_url="https://care.example.org")
    app = create_app(settings, backend=backend)
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/login", data={"username": "W_C1", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_http_public_url_sends_no_hsts(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/login").headers
