"""Issue 16 ARC acceptance, end to end: a call button press through the real broker, InfluxDB and backend reaches
a real SIA DC-09 receiver (written from the spec, tests/support/arc_receiver.py) as Contact ID 101, the restore
follows the resolve, and a receiver that is down at first gets the event once it is back while the workers were
told at once. ``eldercare arc test`` sends Contact ID 602 and prints the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.arc_receiver import ArcReceiver
from support.backend import backend_settings, registry_for, running
from support.receivers import Webhook
from typer.testing import CliRunner

from alerts.lifecycle import Action, Channel, Outcome
from eldercare.backend import Backend
from eldercare.cli import app
from eldercare.servers._child import free_port
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_call_button_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a positive signal (polling the store), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


def arc_backend(
    broker: Broker, influxd: Influxd, site: str, db: str, tmp_path: Path, webhook: Webhook, port: int
) -> Backend:
    settings = backend_settings(broker=broker, influxd=influxd, site=site, db=db, data_dir=tmp_path)
    settings = settings.model_copy(update={"arc_host": "127.0.0.1", "arc_port": port, "arc_accounts": {site: "1234"}})
    return Backend(settings, registry=registry_for(site, webhook.url))


async def test_a_call_button_press_reaches_the_arc_and_the_resolve_restores_it(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> None:
    with ArcReceiver() as arc:
        backend = arc_backend(broker, influxd, unique_site, unique_db, tmp_path, webhook, arc.port)
        async with running(backend):
            password = broker.gateway_password(unique_site)
            with GatewayPublisher(site=unique_site, password=password, port=broker.port) as gw:
                gw.publish(encode_call_button_event(**gw.wire.stamp("btn1"), ts=int(time.time() * 1000), event="press"))
                (event,) = await asyncio.to_thread(arc.wait, 1, 20.0)
                assert event.crc_ok and event.kind == "ADM-CID" and event.account == "1234"
                assert event.contact_id == ("1", "101", "01", "002")  # personal emergency, zone 2 = call button
                await asyncio.to_thread(webhook.wait, 2, 20.0)
                (alert,) = backend.store.list_alerts(site=unique_site)
                await backend.service.transition(alert.id, Action.ON_SITE, actor="W01", channel=Channel.PHONE)
                await backend.service.transition(
                    alert.id, Action.RESOLVE, actor="W01", channel=Channel.PHONE, outcome=Outcome.ASSISTED_AT_HOME
                )
                restore = (await asyncio.to_thread(arc.wait, 2, 20.0))[1]
                assert restore.contact_id == ("3", "101", "01", "002")
    rows = [(n.kind, n.status) for n in backend.store.notifications(alert_id=alert.id) if n.channel == "arc"]
    assert rows == [("arc_event", "sent"), ("arc_restore", "sent")]


async def test_an_arc_that_is_down_gets_the_event_when_it_is_back_and_the_workers_are_told_at_once(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> None:
    port = free_port()
    backend = arc_backend(broker, influxd, unique_site, unique_db, tmp_path, webhook, port)
    async with running(backend):
        with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
            gw.publish(encode_call_button_event(**gw.wire.stamp("btn1"), ts=int(time.time() * 1000), event="press"))
            messages = await asyncio.to_thread(webhook.wait, 2, 20.0)
            assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]
            (alert,) = backend.store.list_alerts(site=unique_site)

            def arc_rows() -> list[tuple[str, int]]:
                return [(n.status, n.attempts) for n in backend.store.notifications(alert_id=alert.id)
                        if n.channel == "arc"]  # fmt: skip

            await until(lambda: any(attempts >= 1 for _, attempts in arc_rows()))
            assert arc_rows()[0][0] == "retry"
            with ArcReceiver(port=port) as arc:
                (event,) = await asyncio.to_thread(arc.wait, 1, 60.0)
                assert event.contact_id == ("1", "101", "01", "002")
                await until(lambda: arc_rows()[0][0] == "sent")


def test_arc_test_command_sends_contact_id_602_and_prints_the_answer() -> None:
    with ArcReceiver() as arc:
        result = CliRunner().invoke(app, ["arc", "test", "--host", "127.0.0.1", "--port", str(arc.port)])
        assert result.exit_code == 0, result.output
        assert "answered ACK" in result.output and "报警中心已确认" in result.output
        (got,) = arc.wait(1)
        assert got.crc_ok and got.contact_id == ("1", "602", "00", "000")
        arc.mode = "duh"
        refused = CliRunner().invoke(app, ["arc", "test", "--host", "127.0.0.1", "--port", str(arc.port)])
        assert refused.exit_code == 1 and "duh" in refused.output


def test_arc_test_command_encrypts_with_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key_hex = "00112233445566778899AABBCCDDEEFF"
    monkeypatch.setenv("ELDERCARE_ARC_KEY", key_hex)
    with ArcReceiver(key=bytes.fromhex(key_hex)) as arc:
        result = CliRunner().invoke(app, ["arc", "test", "--host", "127.0.0.1", "--port", str(arc.port)])
        assert result.exit_code == 0, result.output
        assert "answered ACK" in result.output and "AES" in result.output and key_hex not in result.output
        (got,) = arc.wait(1)
        assert got.encrypted and got.contact_id == ("1", "602", "00", "000")
    monkeypatch.setenv("ELDERCARE_ARC_KEY", "1234")
    bad = CliRunner().invoke(app, ["arc", "test", "--host", "127.0.0.1", "--port", "1"])
    assert bad.exit_code != 0 and "1234" not in bad.output + str(bad.exception)
    assert "32, 48 or 64 hex digits" in str(bad.exception)
