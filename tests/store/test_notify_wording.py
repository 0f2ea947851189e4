"""A notification names the device as people know it, by its kind and room, never by its id (both languages).

A grid worker's phone said "卧室的一键呼叫按钮 btn1 被按下" and "设备 pir1（motion）…": the id means nothing to the
worker (the console already said "bedroom"). The stored explanation keeps the id (audit, replay); the message does not.
"""

from __future__ import annotations

import asyncio

from store_helpers import FakeClock, Webhook, make_service, registry_with_channels

from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity


def _alert(kind: AlertType, device: str, en: str, zh: str, clock: FakeClock) -> Alert:
    return Alert(site="h0001", type=kind, severity=Severity.CRITICAL, time_ms=clock(), explanation=en,
                 explanation_zh=zh, device=device)  # fmt: skip


async def test_a_notification_names_the_device_by_its_kind_and_room(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    doc = registry_with_channels(webhook)
    for worker in doc["workers"]:
        if worker["id"] == "W02":
            worker["lang"] = "en"
    store.import_registry(doc, now_ms=clock())
    service = make_service(store, clock)
    # The detectors' own words (detection/detectors/sos.py): a room-less band, a call button in the bedroom.
    button = _alert(AlertType.CALL_BUTTON, "btn1", "Emergency call button btn1 in the bedroom pressed.",
                    "卧室的一键呼叫按钮 btn1 被按下。", clock)  # fmt: skip
    record = await service.raise_alert(button)
    assert record is not None
    got = await asyncio.to_thread(webhook.wait, 2)
    zh = next(m["message"] for m in got if m["path"] == "/W01")
    en = next(m["message"] for m in got if m["path"] == "/W02")
    assert "说明：卧室的一键呼叫按钮被按下。" in zh and "btn1" not in zh
    assert "Why: Emergency call button in the bedroom pressed." in en and "btn1" not in en
    # The stored text keeps the id for technicians, audit and replay.
    assert store.get_alert(record.id).explanation_zh == "卧室的一键呼叫按钮 btn1 被按下。"

    sos = _alert(AlertType.SOS, "band1", "SOS key pressed on wristband band1.", "手环 band1 按下了SOS紧急呼救键。",
                 clock)  # fmt: skip
    await service.raise_alert(sos)
    got = await asyncio.to_thread(webhook.wait, 4)
    zh = [m["message"] for m in got[2:] if m["path"] == "/W01"][0]
    assert "说明：手环按下了SOS紧急呼救键。" in zh and "band1" not in zh
