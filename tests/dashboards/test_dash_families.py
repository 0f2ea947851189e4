"""Issue 15, families: a guardian with consent hears about an SOS (real apprise to a local webhook) and opens a
read-only status page for their elder in chromium; a guardian without consent receives nothing."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash_fixtures import registry
from dash_harness import LINK_SECRET, LiveServer, TestStoreBackend
from dash_helpers import Backend, login
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from support.tamper import tampered
from test_dash_console_ux import _shot

from alerts.escalation import PolicyBook
from alerts.guardians import GuardianLinks, GuardianNotifier
from alerts.links import LinkSigner
from alerts.notify import AppriseNotifier
from alerts.queries import run_async
from alerts.service import AlertService
from alerts.store.guardians import GuardianStore
from alerts.store.repository import AlertStore
from dashboards.app import create_app
from dashboards.families import GuardianBook
from detection.models import Alert, AlertType, Severity
from eldercare.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.receivers import Webhook  # noqa: E402

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def families(tmp_path: Path) -> Iterator[tuple[TestStoreBackend, GuardianStore, GuardianLinks]]:
    store = AlertStore(url=f"sqlite:///{tmp_path / 'store.db'}")
    links = GuardianLinks(secret=LINK_SECRET, base_url=BASE)
    guardians = GuardianStore(store)
    notifier = AppriseNotifier(timeout_s=5)
    service = AlertService(
        store=store,
        notifier=notifier,
        policies=PolicyBook(),
        clock=lambda: time.time_ns() // 1_000_000,
        links=LinkSigner(secret=LINK_SECRET, base_url=BASE),
        guardians=GuardianNotifier(source=guardians, links=links, notifier=notifier),
    )
    store.import_registry(registry(), now_ms=service.clock())
    yield TestStoreBackend(store=store, service=service), guardians, links
    store.close()


def _sos(backend: TestStoreBackend, site: str) -> int:
    alert = Alert(
        site=site, type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=int(time.time() * 1000),
        explanation="Call button pressed.", explanation_zh="一键呼叫按钮被按下。", device="btn1",
    )  # fmt: skip

    async def raise_and_tell() -> int:
        record = await backend.service.raise_alert(alert)
        assert record is not None
        await backend.service.families_told()  # families are told in the background
        return record.id

    return run_async(raise_and_tell)


@pytest.mark.integration
@pytest.mark.browser
def test_guardian_with_consent_is_told_and_opens_the_status_page(
    families: tuple[TestStoreBackend, GuardianStore, GuardianLinks],
    webhook: Webhook,
    chromium: Browser,
    tmp_path: Path,
) -> None:
    backend, guardians, links = families
    now = int(time.time() * 1000)
    yes = guardians.add(
        resident_id="R1", name="张明", relation="子女", phone="13700000001", channels=[webhook.url("family-yes")],
        consent=True, actor="W_C1", now_ms=now,
    )  # fmt: skip
    guardians.add(
        resident_id="R1", name="张亮", relation="子女", phone="13700000011", channels=[webhook.url("family-no")],
        consent=False, actor="W_C1", now_ms=now,
    )  # fmt: skip
    guardians.add(
        resident_id="R2", name="刘强", relation="子女", phone="13700000002", channels=[webhook.url("family-other")],
        consent=True, actor="W_C1", now_ms=now,
    )  # fmt: skip

    alert_id = _sos(backend, "h1")  # returns after every family delivery was attempted
    webhook.wait(1)
    told = webhook.to("family-yes")
    assert len(told) == 1 and "张桂英" in told[0]["title"]
    assert webhook.to("family-no") == []  # no consent: nothing
    assert webhook.to("family-other") == []  # another elder's family: nothing
    url = re.search(r"http://\S+/family/\S+", told[0]["message"])
    assert url, told[0]["message"]
    audit = [e for e in backend.audit_log(limit=50) if e.action == "guardian.notified"]
    assert [e.detail["guardian"] for e in audit] == [str(yes.id)]

    # Not a life-safety alert: families are not told.
    run_async(lambda: backend.service.raise_alert(Alert(
        site="h1", type=AlertType.LOW_BATTERY, severity=Severity.INFO, time_ms=int(time.time() * 1000),
        explanation="battery low", explanation_zh="电量低", device="btn1",
    )))  # fmt: skip
    assert len(webhook.to("family-yes")) == 1

    settings = Settings(data_dir=tmp_path, link_secret=LINK_SECRET.decode(), public_url=BASE)
    app = create_app(settings, backend=backend, guardians=GuardianBook(guardians=guardians, links=links))
    server = LiveServer(app)
    server.start()
    try:
        path = url.group(0).removeprefix(BASE)
        context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{server.url}{path}")
        expect(page.locator("#family-title")).to_have_text("张桂英 的安全状态")
        expect(page.locator(f'.family-active [data-alert="{alert_id}"]')).to_contain_text("紧急求助")
        expect(page.locator(f'.family-active [data-alert="{alert_id}"]')).to_contain_text("待处理")
        expect(page.locator("form")).to_have_count(0)  # read-only: no actions
        expect(page.locator("main")).not_to_contain_text("110101194001010024")  # no ID number
        _shot(page, "family.png")
        assert any(e.action == "family.viewed" for e in backend.audit_log(limit=20))

        page.goto(f"{server.url}{tampered(path)}")  # forged
        expect(page.locator(".error")).to_have_text("链接无效或已过期")
        guardians.set_consent(yes.id, False, actor="W_C1", now_ms=int(time.time() * 1000))  # consent withdrawn
        page.goto(f"{server.url}{path}")
        expect(page.locator(".error")).to_have_text("链接无效或已过期")
        context.close()
    finally:
        server.stop()


def test_guardian_register_on_the_resident_page(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_G1")
    page = client.get("/residents/R1/guardians")
    assert page.status_code == 200 and "监护人" in page.text
    r = client.post(
        "/residents/R1/guardians",
        data={"csrf": csrf, "name": "张明", "relation": "子女", "phone": "13712345678", "channel": "json://x/y",
              "consent": "true"},
    )  # fmt: skip
    assert r.status_code == 200 and 'data-consent="yes"' in r.text
    assert "13712345678" not in r.text and "137****5678" in r.text  # masked
    r = client.post(
        "/residents/R1/guardians", data={"csrf": csrf, "name": "张亮", "relation": "子女", "phone": "13700000011"}
    )
    assert r.text.count('data-consent="no"') == 1
    gid = re.search(r'data-guardian="(\d+)" data-consent="yes"', r.text)
    assert gid
    r = client.post(f"/residents/R1/guardians/{gid.group(1)}/consent", data={"csrf": csrf, "consent": "false"})
    assert 'data-consent="yes"' not in r.text
    assert client.get("/residents/R2/guardians").status_code == 404  # another grid's resident
    assert any(e.action == "guardian.read" for e in backend.audit_log(limit=50))


def test_family_links_are_signed_and_expire() -> None:
    from alerts.guardians import GuardianLinkError

    links = GuardianLinks(secret=LINK_SECRET, base_url=BASE, ttl_s=60)
    token = links.token(guardian_id=7, resident_id="R1", now_ms=1_000)
    claim = links.verify(token, now_ms=2_000)
    assert (claim.guardian_id, claim.resident_id) == (7, "R1")
    for bad, now in ((tampered(token), 2_000), (token, 62_000), ("garbage", 2_000)):
        with pytest.raises(GuardianLinkError):
            links.verify(bad, now_ms=now)
    other = GuardianLinks(secret=b"another-secret-0123456789", base_url=BASE)
    with pytest.raises(GuardianLinkError):
        other.verify(token, now_ms=2_000)
    with pytest.raises(ValueError):
        GuardianLinks(secret=b"short", base_url=BASE)


@pytest.mark.integration
def test_a_guardians_phone_or_email_in_a_channel_is_masked_in_the_append_only_audit(
    families: tuple[TestStoreBackend, GuardianStore, GuardianLinks], webhook: Webhook
) -> None:
    """The audit log cannot be erased, and ``guardian.notified`` kept the channel's privacy URL, which hides
    passwords and tokens but not the number or address it sends to: a family's SMS gateway
    ``json://…/sms/13912345678`` stayed in the audit after the guardian was erased."""
    backend, guardians, _ = families
    guardians.add(
        resident_id="R1", name="王芳", relation="子女", phone="13912345678",
        channels=[webhook.url("sms/13912345678"), "mailto://user:pw@example.org?to=wang.fang@example.org"],
        consent=True, actor="W_C1", now_ms=int(time.time() * 1000),
    )  # fmt: skip
    _sos(backend, "h1")
    webhook.wait(1)
    assert len(webhook.to("sms/13912345678")) == 1  # the message itself went to the real number
    targets = [e.detail["target"] for e in backend.audit_log(limit=50) if e.action == "guardian.notified"]
    assert len(targets) == 2, targets
    assert not any("13912345678" in t or "wang.fang" in t for t in targets), targets
    assert any("139****5678" in t for t in targets) and any("@example.org" in t for t in targets), targets
