"""A page the backend owes survives its kill -9 (the notification outbox), on the real servers.

An SOS is acknowledged to the gateway (PUBACK) once its reading is durable, and its alert is stored; the workers'
messages are sent after that. A backend killed while those messages are on their way must send them after its
restart: the alert is in the store, so neither the broker (it has the PUBACK) nor the detection replay (the alert
is already stored) brings the SOS back. Before the outbox, the grid worker and the duty officer were never paged:
the 2-minute reminders go to the workers recorded as told, and nobody was.

The webhook holds the messages unanswered: the kill lands while the backend waits for the answer, the one moment
it cannot know whether the message arrived.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_helpers import new_home_backend, wait
from support.receivers import Webhook

from alerts.links import LinkSigner
from alerts.store.repository import AlertStore
from detection.models import AlertType
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_wristband_event

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def press_sos(broker: Broker, site: str) -> None:
    """Press the wristband's SOS once; returns once the backend confirmed it durable (and so acknowledged it).

    The backend's PUBACK to the broker goes out in the same step as the gateway's ``stored`` confirmation is
    queued, which is sent a confirmation interval later (docs/contract.md): the broker will not deliver it again.
    """
    gw = GatewayPublisher(
        site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port, outbox=100
    )
    gw.connect(timeout=30)
    try:
        now = time.time_ns() // 1_000_000
        assert gw.publish_all([encode_wristband_event(**gw.wire.stamp("band1"), ts=now, event="sos")], timeout=60) == 1
        assert gw.wait_confirmed(timeout=60), "the backend never confirmed the SOS as stored"
    finally:
        gw.close()


LINK = re.compile(r"/m/(\.?[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)")


def links_in(message: dict[str, Any]) -> list[str]:
    """The one-tap links' tokens in a page (the take link first, then the alert page)."""
    return LINK.findall(message["message"])


def sos_alerts(store: AlertStore, site: str) -> list[int]:
    return [a.id for a in store.list_alerts(site=site, alert_type=AlertType.SOS)]


async def test_an_sos_page_in_flight_when_the_backend_is_killed_is_sent_after_the_restart(
    broker: Broker, influxd: Influxd, webhook: Webhook, tmp_path: Path
) -> None:
    site, backend = new_home_backend("hn", broker, influxd, tmp_path, channel_for=webhook.url)
    backend.start()
    store = AlertStore(url=backend.database_url)
    try:
        webhook.hold("W01", "W02")
        await asyncio.to_thread(press_sos, broker, site)  # acknowledged: neither broker nor gateway sends it again
        # The backend stored the alert and is waiting for both phones' answers: kill it now.
        held = await asyncio.to_thread(webhook.wait_held, 2)
        assert sorted(m["path"] for m in held) == ["/W01", "/W02"]
        backend.kill()
        webhook.release()  # too late: nobody is waiting for these answers any more
        (alert_id,) = sos_alerts(store, site)

        backend.start()
        # The pages owed are sent after the restart, to the same two people, once each.
        await asyncio.to_thread(
            wait, lambda: {m["path"] for m in webhook.messages} >= {"/W01", "/W02"}, 60, "the SOS pages", backend
        )
        await asyncio.to_thread(
            wait,
            lambda: (
                {(n.worker_id, n.status) for n in store.notifications(alert_id=alert_id)}
                == {("W01", "sent"), ("W02", "sent")}
            ),
            30,
            "the pages recorded as sent",
            backend,
        )
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        assert all("SOS" in m["title"] for m in webhook.messages)
        assert sos_alerts(store, site) == [alert_id], "one alert, not raised again by the restart"
        assert backend.alive(), backend.log_tail()
    finally:
        webhook.release()
        store.close()
        backend.stop()


POLICIES = {
    "default": {
        "critical": {
            "notify": ["grid_worker", "community_duty"],
            "remind_every_s": None,  # the built-in 2-min reminders off: only the messages below
            "escalate": [{"after_s": 3, "roles": ["street"]}],
            "on_site_within_s": 10,
            "overdue_roles": ["community_duty", "street"],
        }
    }
}
"""Critical alerts: grid worker and duty officer at once, the street after 3 s, overdue (duty, street) at 10 s.

Given to the real ``eldercare serve`` as an operator would: a file named by ``ELDERCARE_POLICIES_PATH``."""


async def test_escalations_owed_when_the_backend_is_killed_are_sent_after_the_restart(
    broker: Broker, influxd: Influxd, webhook: Webhook, tmp_path: Path
) -> None:
    """The street's escalation is on its way when the backend dies; the on-site deadline falls due while it is down.

    After the restart the escalation is sent again at once (its timer had already moved on: before, it was lost for
    good) and the missed deadline fires at once, each to its people, once.
    """
    site, backend = new_home_backend(
        "he", broker, influxd, tmp_path, channel_for=webhook.url, options={"policies": POLICIES}
    )
    backend.start()
    assert "policies.json (default and 0 communities)" in backend.log_tail(200), "its start says which policies apply"
    store = AlertStore(url=backend.database_url)
    try:
        webhook.hold("W03")
        await asyncio.to_thread(press_sos, broker, site)
        await asyncio.to_thread(webhook.wait, 2)  # the first pages: grid worker and duty officer
        await asyncio.to_thread(webhook.wait_held, 1)  # the street's escalation, waiting for its answer
        backend.kill()
        webhook.release()
        (alert,) = store.list_alerts(site=site, alert_type=AlertType.SOS)
        assert alert.escalation_step == 1 and alert.on_site_due_ms is not None
        # Down past the on-site deadline, so it is overdue when the backend comes back.
        await asyncio.to_thread(wait, lambda: time.time_ns() // 1_000_000 > alert.on_site_due_ms, 30, "the deadline")

        backend.start()
        expected = {("W01", "initial"), ("W02", "initial"), ("W03", "escalation"), ("W02", "overdue"),
                    ("W03", "overdue")}  # fmt: skip

        def sent() -> set[tuple[str, str]]:
            return {(n.worker_id, n.kind) for n in store.notifications(alert_id=alert.id) if n.status == "sent"}

        try:
            await asyncio.to_thread(
                wait, lambda: sent() == expected, 60, "the escalation and the overdue notice sent", backend
            )
        except AssertionError as exc:
            rows = [(n.worker_id, n.kind, n.status) for n in store.notifications(alert_id=alert.id)]
            raise AssertionError(f"notifications {rows}, webhook {webhook.messages}\n{exc}") from None
        titles = sorted((m["path"], m["title"]) for m in webhook.messages)
        assert [p for p, _ in titles] == ["/W01", "/W02", "/W02", "/W03", "/W03"], titles
        assert sum("升级" in t for p, t in titles if p == "/W03") == 1
        assert backend.alive(), backend.log_tail()
    finally:
        webhook.release()
        store.close()
        backend.stop()


async def test_a_one_tap_take_and_resolve_survive_a_kill_right_after_the_answer(
    broker: Broker, influxd: Influxd, webhook: Webhook, tmp_path: Path
) -> None:
    """What the grid worker's phone was told (303 to the alert page) holds after kill -9 of the backend right after.

    The transition is committed before the answer, and the "help is coming" command to the home is acknowledged by
    the broker before it too.
    """
    site, backend = new_home_backend("ht", broker, influxd, tmp_path, channel_for=webhook.url)
    backend.start()
    store = AlertStore(url=backend.database_url)
    home = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(home.connect, timeout=30)  # listens for the home's commands
    console = f"http://127.0.0.1:{backend.env['ELDERCARE_CONSOLE_PORT']}"
    try:
        await asyncio.to_thread(press_sos, broker, site)
        await asyncio.to_thread(webhook.wait, 2)
        (page,) = webhook.to("W01")
        ack_token = links_in(page)[0]
        (alert,) = store.list_alerts(site=site, alert_type=AlertType.SOS)

        async with httpx.AsyncClient(base_url=console, follow_redirects=False, timeout=30) as phone:
            taken = await phone.post(f"/m/{ack_token}")
        backend.kill()  # right after the answer
        assert taken.status_code == 303, taken.text
        record = store.get_alert(alert.id)
        assert (record.state, record.owner_id) == ("acknowledged", "W01")
        (command,) = await asyncio.to_thread(home.wait_for_commands, 1, timeout=30)
        assert b"help_coming" in command.payload

        backend.start()
        signer = LinkSigner(secret=backend.env["ELDERCARE_LINK_SECRET"].encode(), base_url="http://127.0.0.1:8000")
        resolve = signer.token(alert_id=alert.id, worker_id="W01", action="resolve", now_ms=time.time_ns() // 1_000_000)
        async with httpx.AsyncClient(base_url=console, follow_redirects=False, timeout=30) as phone:
            resolved = await phone.post(f"/m/{resolve}", data={"outcome": "false_alarm"})
        backend.kill()
        assert resolved.status_code == 303, resolved.text
        record = store.get_alert(alert.id)
        assert (record.state, record.outcome) == ("resolved", "false_alarm")
        backend.start()  # and the restart keeps it so: nothing raised again, nothing reopened
        assert [(a.id, a.state) for a in store.list_alerts(site=site, alert_type=AlertType.SOS)] == [
            (alert.id, "resolved")
        ]
    finally:
        await asyncio.to_thread(home.close)
        store.close()
        backend.stop()
