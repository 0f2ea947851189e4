"""The alert's history in the console and on the phone says when the alarm-receiving centre (ARC) was not reached."""

from __future__ import annotations

import time

from dash_harness import TestStoreBackend
from dash_helpers import login
from fastapi.testclient import TestClient
from test_dash_console_ux import _raise

from alerts.arc.channel import ArcChannel
from alerts.arc.events import ArcConfig
from alerts.queries import run_async
from detection.models import AlertType, Severity
from eldercare.servers._child import free_port


def test_an_unreachable_arc_shows_in_the_alerts_history(client: TestClient, backend: TestStoreBackend) -> None:
    alert_id = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, device="btn1")
    config = ArcConfig(host="127.0.0.1", port=free_port(), accounts={"h1": "1234"}, timeout_s=1.0)
    clock = [time.time_ns() // 1_000_000]
    arc = ArcChannel(store=backend.store, config=config, clock=lambda: clock[0])
    arc.kick = lambda: None  # type: ignore[method-assign]  # the test drives the sends itself
    record = backend.store.get_alert(alert_id)
    run_async(lambda: arc.enqueue(record, restore=False, now=clock[0]))
    for _ in range(config.failed_after):
        run_async(lambda: arc.drain())
        clock[0] += 120_000  # past the backoff
    login(client, "W_C1")
    detail = client.get(f"/console/alerts/{alert_id}").text
    assert "报警中心投递失败" in detail and "ARC delivery failed: connect" in detail
    assert "arc_failed" not in detail  # the step is named, not shown as its code
