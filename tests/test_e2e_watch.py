"""4G elder watch end to end on real components: simulated watch → TCP watch server → InfluxDB → detection → alerts.

The backend runs with ``watch_port`` set; the home's wristband is a 4G watch registered by IMEI (docs/registry.md).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.backend import backend_settings, registry_for, running
from support.receivers import Webhook

from alerts.lifecycle import Action, Channel
from detection.models import AlertType, Severity
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.watch import SimWatch, frame, wall_ms
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.models import DeviceKind, MessageType, Reading
from ingest.history import stored_readings
from ingest.influx import InfluxClient
from ingest.reader import InfluxReader

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMEI = "868000003333333"
NEIGHBOUR_IMEI = "868000004444444"


@pytest.fixture
async def backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> AsyncIterator[Backend]:
    settings = backend_settings(broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path)
    settings = settings.model_copy(update={"watch_port": 0, "watch_host": "127.0.0.1"})
    registry = registry_for(unique_site, webhook.url)
    home = registry["sites"][0]
    for dev in home["devices"]:
        if dev["device"] == "band1":
            dev["imei"] = IMEI  # this home's wristband is a 4G watch
    neighbour: dict[str, Any] = copy.deepcopy(home)
    neighbour |= {"site": f"{unique_site}n", "gateway": f"gw-{unique_site}n"}
    neighbour["devices"] = [{"device": "band1", "kind": "wristband", "imei": NEIGHBOUR_IMEI}]
    neighbour["residents"] = [dict(neighbour["residents"][0], id=f"R{unique_site}n")]
    registry["sites"].append(neighbour)
    app = Backend(settings, registry=registry)
    async with running(app):
        yield app


def watch_of(backend: Backend, imei: str = IMEI) -> SimWatch:
    assert backend.watch_server is not None
    return SimWatch(host="127.0.0.1", port=backend.watch_server.port, imei=imei, battery=88)


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.05)
    return result


async def stored(backend: Backend, site: str, since_ms: int) -> list[Reading]:
    settings = backend.settings
    async with InfluxClient(url=settings.influx_url, db=settings.influx_db) as client:
        return await stored_readings(InfluxReader(client=client), start_ms=since_ms, sites=[site])


async def test_watch_sos_raises_one_sos_alert_and_its_readings_land_in_influxdb(
    backend: Backend, unique_site: str, webhook: Webhook
) -> None:
    since = wall_ms() - 60_000
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.heart(72)
        await watch.sos()
        assert await watch.reply() == "AL"
    alerts = await until(lambda: backend.store.list_alerts(site=unique_site))
    assert [(a.type, a.severity, a.count, a.device) for a in alerts] == [(AlertType.SOS, Severity.CRITICAL, 1, "band1")]
    messages = await asyncio.to_thread(webhook.wait, 2, 20.0)
    assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]

    def kinds(readings: list[Reading]) -> set[tuple[MessageType, str | None]]:
        return {(r.type, r.event) for r in readings if r.kind is DeviceKind.WRISTBAND and r.device == "band1"}

    want = {(MessageType.TELEMETRY, None), (MessageType.EVENT, "sos")}
    async with asyncio.timeout(20):
        while not want <= kinds(readings := await stored(backend, unique_site, since)):
            await asyncio.sleep(0.2)
    (sos,) = [r for r in readings if r.event == "sos"]
    assert sos.fields["gps_valid"] is True and sos.fields["lat"] == pytest.approx(30.2741)
    assert {r.fields.get("hr") for r in readings if r.type is MessageType.TELEMETRY} >= {72.0}


async def test_watch_fall_and_low_battery_raise_their_alerts(backend: Backend, unique_site: str) -> None:
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.fall()
        assert await watch.reply() == "AL"
        await watch.lk(battery=12)
        assert await watch.reply() == "LK"

    def types() -> set[AlertType]:
        return {a.type for a in backend.store.list_alerts(site=unique_site)}

    await until(lambda: {AlertType.FALL, AlertType.LOW_BATTERY} <= types())


async def test_unknown_imei_and_another_homes_imei_are_refused_and_dead_lettered(
    backend: Backend, unique_site: str
) -> None:
    async with watch_of(backend, "999000000000001") as stranger:
        await stranger.sos()
        assert await stranger.closed_by_server()
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.send("AL,010125,000000,A,30.0,N,120.0,E,0,0,0,5,100,82,10,0,00010000,0,0", imei=NEIGHBOUR_IMEI)
        assert await watch.closed_by_server()
    with DeadLetterStore.in_data_dir(backend.settings.data_dir) as record:
        unknown = await until(lambda: record.query(reason=Reason.UNKNOWN_DEVICE))
        mismatch = await until(lambda: record.query(reason=Reason.IMEI_MISMATCH))
    assert unknown[0].topic == "watch/-/***********0001" and b"*999000000000001*" in unknown[0].payload
    assert mismatch[0].topic == f"watch/{unique_site}/band1" and mismatch[0].site == unique_site
    assert f"registered to {unique_site}n" in mismatch[0].detail
    assert backend.store.list_alerts(site=f"{unique_site}n") == []
    assert backend.store.list_alerts(site=unique_site) == []


async def test_frames_read_together_are_stored_apart(backend: Backend, unique_site: str) -> None:
    # Frames without a time of their own get the received time: several in one read share a millisecond.
    since = wall_ms() - 60_000
    rates = list(range(60, 80))
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.send_raw(b"".join(frame("3G", IMEI, f"heart,{hr}") for hr in rates))
        await watch.lk()
        assert await watch.reply() == "LK"  # after the hearts: they are durable

    def hrs(readings: list[Reading]) -> list[float]:
        return sorted(float(r.fields["hr"]) for r in readings if "hr" in r.fields)

    async with asyncio.timeout(20):
        while len(stored_hrs := hrs(await stored(backend, unique_site, since))) < len(rates):
            await asyncio.sleep(0.2)
    assert stored_hrs == [float(hr) for hr in rates]


# --- downlink (issue 16, step 5) -----------------------------------------------------------------------------------


def message_text(content: str) -> str:
    """The text of a ``MESSAGE,<UTF-16BE hex>`` frame (Traccar's WatchProtocolEncoder format)."""
    command, hex_text = content.split(",", 1)
    assert command == "MESSAGE"
    return bytes.fromhex(hex_text).decode("utf-16-be")


async def test_acknowledging_a_watch_sos_tells_the_watch_help_is_coming(backend: Backend, unique_site: str) -> None:
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.sos()
        assert await watch.reply() == "AL"
        (alert,) = await until(lambda: backend.store.list_alerts(site=unique_site))
        await backend.service.transition(alert.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)
        text = message_text(await watch.reply())  # on the watch's own open connection
    assert text.startswith("已收到您的求助，") and text.endswith("正在处理，请保持冷静，尽量留在原地。")
    audit = [e for e in backend.store.audit_entries(entity_id=str(alert.id)) if e.action.startswith("command.")]
    assert [(e.action, e.detail.get("cmd")) for e in audit] == [("command.sent", "help_coming")]
    assert audit[0].detail["topic"] == f"ec/v1/{unique_site}/wristband/band1/cmd"


async def test_a_watch_that_is_not_connected_gets_no_message_and_the_failure_is_audited(
    backend: Backend, unique_site: str
) -> None:
    async with watch_of(backend) as watch:
        assert await watch.login() == "LK"
        await watch.sos()
        assert await watch.reply() == "AL"
    (alert,) = await until(lambda: backend.store.list_alerts(site=unique_site))
    assert backend.watch_server is not None
    await until(lambda: IMEI not in backend.watch_server.connected_imeis)
    result = await backend.service.transition(alert.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)
    assert result.applied  # a watch out of reach never undoes the acknowledgement
    audit = [e for e in backend.store.audit_entries(entity_id=str(alert.id)) if e.action.startswith("command.")]
    assert [e.action for e in audit] == ["command.failed"] and "not connected" in str(audit[0].detail["error"])
