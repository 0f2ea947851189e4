"""Helpers of the store tests: webhook receiver, fake clock, registry example, service factory."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import msgspec
from support.receivers import Webhook

from alerts.escalation import PolicyBook, initial_timers
from alerts.links import LinkSigner
from alerts.notify import AppriseNotifier
from alerts.service import AlertService
from alerts.store.records import RaiseResult
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity

REPO = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000_000  # 2025-11-24 16:00 UTC = 00:00 Beijing
"""A fixed event time; tests move the fake clock from here."""
DAYTIME = T0 + 10 * 3600 * 1000  # 10:00 Beijing


def load_registry_example() -> dict[str, Any]:
    """The example document of docs/registry.md."""
    text = (REPO / "docs" / "registry.md").read_text()
    match = re.search(r"```json\n(.*?)```", text, re.S)
    assert match is not None
    doc: dict[str, Any] = json.loads(match.group(1))
    return doc


class FakeClock:
    """Event-time clock the tests move by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> int:
        """Move forward and return the new time."""
        self.now_ms += int(seconds * 1000)
        return self.now_ms


def registry_with_channels(webhook: Webhook) -> dict[str, Any]:
    """The example registry plus a street worker, each worker with a webhook channel."""
    doc = copy.deepcopy(load_registry_example())
    doc["workers"].append({"id": "W03", "name": "赵街道", "role": "street", "scope": "S01", "phone": "13800000003"})
    for worker in doc["workers"]:
        worker["channels"] = [webhook.url(worker["id"])]
    return doc


LINK_SECRET = b"test-secret-0123456789abcdef"


def make_service(store: AlertStore, clock: FakeClock, **kwargs: Any) -> AlertService:
    """A service with the real apprise notifier and default policies."""
    return AlertService(
        store=store,
        notifier=kwargs.pop("notifier", AppriseNotifier()),
        policies=kwargs.pop("policies", PolicyBook()),
        clock=clock,
        links=LinkSigner(secret=LINK_SECRET, base_url="http://127.0.0.1:8000"),
        **kwargs,
    )


LINK_RE = re.compile(r"http://127\.0\.0\.1:8000/m/(\.?[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)")
"""A one-tap link's token; itsdangerous starts it with "." when the compressed claim is shorter (3 in 5,000)."""


def links_in(message: dict[str, Any]) -> list[str]:
    """Tokens of the one-tap links in a webhook message (ack link first, then the page link)."""
    return LINK_RE.findall(message["message"])


BOOK = PolicyBook()


def make_alert(
    alert_type: AlertType = AlertType.SOS,
    *,
    time_ms: int = DAYTIME,
    site: str = "h0001",
    device: str | None = "btn1",
    clears: bool = False,
    severity: Severity = Severity.CRITICAL,
) -> Alert:
    return Alert(
        site=site,
        type=alert_type,
        severity=severity,
        time_ms=time_ms,
        explanation=f"{alert_type.value} at {site}",
        explanation_zh=f"{site} 触发 {alert_type.value}",
        device=device,
        evidence={"t": time_ms},
        clears=clears,
    )


def store_raise(store: AlertStore, alert: Alert, now_ms: int | None = None) -> RaiseResult:
    policy = BOOK.policy_for(community="C01", alert_type=alert.type, severity=alert.severity)
    now = alert.time_ms if now_ms is None else now_ms
    return store.raise_alert(
        alert,
        now_ms=now,
        context=store.site_context(alert.site),
        policy=msgspec.to_builtins(policy),
        timers=initial_timers(policy, now),
    )
