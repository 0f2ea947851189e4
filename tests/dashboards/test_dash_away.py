"""Away notices (外出报备) through the API and the console: 201/422/403/404, scope, audit, an end by the system."""

from __future__ import annotations

import re
import time

from dash_helpers import Backend, login
from fastapi.testclient import TestClient

from alerts.store.away import AwayStore
from detection.models import Alert, AlertType, Severity

DAY = 86_400_000


def _now() -> int:
    return int(time.time() * 1000)


def _away_audit(backend: Backend, action: str) -> list[tuple[str, str, str]]:
    return [(e.actor, e.entity_id, e.detail.get("notice", "")) for e in backend.audit_log() if e.action == action]


def test_register_read_and_end_an_away_notice(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_G1")
    ends = _now() + 5 * DAY
    r = client.post("/api/elders/h1/away", json={"ends_ms": ends, "reason": "住女儿家"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    notice = r.json()
    assert (notice["site"], notice["ends_ms"], notice["reason"]) == ("h1", ends, "住女儿家")
    assert (notice["created_by"], notice["created_by_name"], notice["active"]) == ("W_G1", "李网格", True)
    assert abs(notice["starts_ms"] - _now()) < 60_000  # default: now
    assert _away_audit(backend, "away.registered") == [("W_G1", "h1", str(notice["id"]))]
    assert [n["id"] for n in client.get("/api/elders/h1/away").json()] == [notice["id"]]
    # the community officer above the grid sees it and ends it
    client.cookies.clear()
    csrf = login(client, "W_C1")
    assert [n["id"] for n in client.get("/api/elders/h1/away").json()] == [notice["id"]]
    r = client.post(
        f"/api/elders/h1/away/{notice['id']}/end", json={"reason": "已回家"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["ended_by"], r.json()["ended_reason"], r.json()["active"]) == ("W_C1", "已回家", False)
    assert _away_audit(backend, "away.ended") == [("W_C1", "h1", str(notice["id"]))]
    # ending it again is a conflict, nothing more is audited
    again = client.post(f"/api/elders/h1/away/{notice['id']}/end", json={}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409
    assert len(_away_audit(backend, "away.ended")) == 1


def test_invalid_notices_are_422_with_a_message_in_the_callers_language(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_G1")
    headers = {"X-CSRF-Token": csrf}
    now = _now()
    cases = [
        (
            {"starts_ms": now + DAY, "ends_ms": now + DAY - 1, "reason": "x"},
            "ends_before_starts",
            "返回时间须晚于外出时间",
        ),
        ({"starts_ms": now - 2 * DAY, "ends_ms": now + DAY, "reason": "x"}, "starts_past", "往前填 1 天"),
        ({"ends_ms": now + 91 * DAY, "reason": "x"}, "too_long", "90 天"),
        ({"ends_ms": now + DAY, "reason": "   "}, "reason", "请填写原因"),
    ]
    for body, code, zh in cases:
        r = client.post("/api/elders/h1/away", json=body, headers=headers)
        assert r.status_code == 422, (code, r.text)
        assert r.json()["detail"]["code"] == code
        assert zh in r.json()["detail"]["message"]
    en = client.post("/api/elders/h1/away?lang=en", json=cases[2][0], headers=headers)
    assert en.status_code == 422
    assert en.json()["detail"]["message"] == "The planned return must be within 90 days"
    # schema-level: a reason longer than 200 characters, no return time
    assert (
        client.post(
            "/api/elders/h1/away", json={"ends_ms": now + DAY, "reason": "长" * 201}, headers=headers
        ).status_code
        == 422
    )
    assert client.post("/api/elders/h1/away", json={"reason": "x"}, headers=headers).status_code == 422
    # an overlapping notice is refused and names the one in force
    first = client.post("/api/elders/h1/away", json={"ends_ms": now + 3 * DAY, "reason": "住院"}, headers=headers)
    assert first.status_code == 201
    overlap = client.post(
        "/api/elders/h1/away", json={"starts_ms": now + DAY, "ends_ms": now + 4 * DAY, "reason": "x"}, headers=headers
    )
    assert overlap.status_code == 422
    assert overlap.json()["detail"]["code"] == "overlap"
    assert f"#{first.json()['id']}" in overlap.json()["detail"]["message"]
    assert len(AwayStore(backend.store).of_site("h1")) == 1  # nothing else stored
    assert len(_away_audit(backend, "away.registered")) == 1


def test_away_is_scoped_csrf_guarded_and_needs_a_login(client: TestClient, backend: Backend) -> None:
    body = {"ends_ms": _now() + DAY, "reason": "住院"}
    assert client.get("/api/elders/h1/away").status_code == 401
    assert client.post("/api/elders/h1/away", json=body).status_code in (401, 403)
    csrf = login(client, "W_G1")
    # no CSRF token: 403, nothing stored
    assert client.post("/api/elders/h1/away", json=body).status_code == 403
    assert client.post("/api/elders/h1/away", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    # another grid's home (and a home that does not exist) look the same: 404, so existence does not leak
    for site in ("h2", "h4", "nowhere"):
        r = client.post(f"/api/elders/{site}/away", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404, (site, r.text)
        assert client.get(f"/api/elders/{site}/away").status_code == 404
    assert AwayStore(backend.store).of_site("h2") == []
    # a notice of h2 (registered by its grid worker) cannot be read or ended from G01, nor through h1's path
    h2 = AwayStore(backend.store).register(
        site="h2", starts_ms=_now(), ends_ms=_now() + DAY, reason="住院", by_id="W_G2", by_name="赵网格", now_ms=_now()
    )
    assert client.post(f"/api/elders/h2/away/{h2.id}/end", json={}, headers={"X-CSRF-Token": csrf}).status_code == 404
    assert client.post(f"/api/elders/h1/away/{h2.id}/end", json={}, headers={"X-CSRF-Token": csrf}).status_code == 404
    assert client.post(f"/api/elders/h2/away/{h2.id}/end", json={}).status_code == 403
    assert AwayStore(backend.store).active(_now()) == [h2]
    assert not _away_audit(backend, "away.ended")


def test_an_end_by_the_system_shows_on_the_api_and_the_resident_page(client: TestClient, backend: Backend) -> None:
    away = AwayStore(backend.store)
    notice = away.register(
        site="h1", starts_ms=_now(), ends_ms=_now() + 2 * DAY, reason="住女儿家", by_id="W_G1", by_name="李网格",
        now_ms=_now(),
    )  # fmt: skip
    login(client, "W_G1")
    page = client.get("/residents/R1").text
    assert 'id="away-active"' in page and "住女儿家" in page and "李网格" in page
    ended = away.end(notice.id, by_id="system", by_name="system", reason="bed occupied", now_ms=_now())
    assert ended is not None
    [read] = client.get("/api/elders/h1/away").json()
    assert (read["ended_by"], read["ended_reason"], read["active"]) == ("system", "bed occupied", False)
    assert _away_audit(backend, "away.ended") == [("system", "h1", str(notice.id))]
    page = client.get("/residents/R1").text
    assert 'id="away-active"' not in page
    assert "系统（检测到老人已回家）" in page
    assert 'id="away-form"' in page


def test_console_lists_badge_a_home_with_an_active_notice(client: TestClient, backend: Backend) -> None:
    now = _now()
    AwayStore(backend.store).register(
        site="h1", starts_ms=now, ends_ms=now + DAY, reason="住院，女儿电话 13912345678", by_id="W_C1",
        by_name="王值班", now_ms=now,
    )  # fmt: skip
    alert = Alert(
        site="h1", type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=now - 1000, explanation="SOS",
        explanation_zh="呼叫",
    )  # fmt: skip
    backend.raise_alert(alert)
    login(client, "W_C1")
    residents = client.get("/residents").text
    assert re.search(r'<tr[^>]*data-away="h1"', residents), residents
    assert residents.count('class="tag due away-badge"') == 1  # h1 only (h2 is in scope, not away)
    assert 'class="tag due away-badge"' in client.get("/console/queue").text
    phone = client.get("/m/residents").text
    assert phone.count('class="tag due away-badge"') == 1
    assert 'href="/m/residents/R1/away"' in phone
    # A number written into the reason is masked in the lists (as the audit masks it); the resident's own page,
    # whose every opening is audited, shows it whole.
    for page in (residents, client.get("/console/queue").text, phone):
        assert "13912345678" not in page
    assert "139****5678" in residents
    assert "13912345678" in client.get("/residents/R1").text


def test_console_forms_are_scoped_and_csrf_guarded(client: TestClient, backend: Backend) -> None:
    ends = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 8 * 3600 + 2 * 86400))  # Beijing, in 2 days
    csrf = login(client, "W_G2")
    form = {"csrf": csrf, "ends": ends, "reason": "住院"}
    # R1 lives in G01: the G02 worker gets "not found" on every page and form, and nothing is stored
    assert client.get("/residents/R1/away").status_code == 404
    assert client.get("/m/residents/R1/away").status_code == 404
    assert client.post("/residents/R1/away", data=form).status_code == 404
    assert client.post("/residents/R2/away", data={**form, "csrf": "forged"}).status_code == 403
    assert AwayStore(backend.store).of_site("h1") == [] == AwayStore(backend.store).of_site("h2")
    # a malformed time comes back in the section, in the page's language
    bad = client.post("/residents/R2/away?lang=en", data={**form, "ends": "tomorrow"})
    assert bad.status_code == 200 and "The time is not valid" in bad.text
    ok = client.post("/residents/R2/away?lang=zh", data=form)  # the ?lang=en above set the cookie
    assert 'id="away-active"' in ok.text and "外出报备已登记" in ok.text
    [notice] = AwayStore(backend.store).of_site("h2")
    # its id through another resident's path is not found
    assert client.post(f"/residents/R1/away/{notice.id}/end", data={"csrf": csrf}).status_code == 404
    assert _away_audit(backend, "away.registered") == [("W_G2", "h2", str(notice.id))]
