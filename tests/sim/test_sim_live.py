"""Live mode against the real mosquitto (auth + ACL): delivery, Last Will, downstream commands."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sim_helpers import Watcher

from eldercare.stack import Broker
from firmware_sim.demo import demo_home_messages
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.live import run_live
from firmware_sim.scenario import generate
from gateway.contract import decode_message

pytestmark = pytest.mark.integration


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def test_gateway_publisher_delivers_records_commands_and_leaves_a_will(broker: Broker, watcher: Watcher) -> None:
    site = f"s{uuid.uuid4().hex[:8]}"
    broker.provision([site])
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    gw.connect()
    msgs = demo_home_messages(site=site, ts=gw.clock(), include_will=False)[:-1]
    gw.publish_all(msgs)
    got = watcher.wait_for(site, len(msgs) + 1)
    payloads = {p for _, p in got}
    assert all(m.payload in payloads for m in msgs)
    for topic, payload in got:
        decode_message(topic, payload, received_ms=gw.clock())
    # The backend announces "help is coming" on the downstream topic; the home shows it.
    watcher.client.publish(f"ec/v1/{site}/call_button/btn1/cmd", b'{"cmd":"help_coming","by":"W001"}', qos=1)
    cmds = gw.wait_for_commands(1)
    assert cmds and cmds[0].device == "btn1" and b"help_coming" in cmds[0].payload
    gw.crash()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p == b'{"online":false}' for _, p in watcher.for_prefix(site)):
            break
        time.sleep(0.1)
    assert (f"ec/v1/{site}/gateway/gw-{site}/status", b'{"online":false}') in watcher.for_prefix(site)


def test_live_mode_delivers_a_simulation_with_one_connection_per_home(broker: Broker, watcher: Watcher) -> None:
    prefix = f"l{uuid.uuid4().hex[:6]}x"
    sim = generate(homes=3, days=1, seed=2, site_prefix=prefix)
    broker.provision([h.site for h in sim.homes])
    stats = run_live(
        sim.messages(),
        sites=[(h.site, h.gateway) for h in sim.homes],
        host=broker.host,
        port=broker.port,
        password_for=broker.gateway_password,
        speed=50_000,
        max_messages=3000,
    )
    assert stats.published == 3000
    got = watcher.wait_for(prefix, 3000)
    assert len(got) >= 3000
    expected = [(t, p) for _, t, p in list(sim.messages())[:3000]]
    assert sorted(got) == sorted(expected)
    assert {t.split("/")[2] for t, _ in got} == {h.site for h in sim.homes}


def test_a_mid_stream_start_reports_each_devices_last_status_first(broker: Broker, watcher: Watcher) -> None:
    """`eldercare up` starts the day's simulation at "now": a door, smoke or gas detector heartbeats every 6 h, so
    the console showed them "never reported" (red) for hours after the start. A gateway reports its devices as it
    connects: its own and each device's last status before the start are published first, then the stream from
    "now" (the gateway's own status every 5 min: the console's gateway column said "never reported" until then)."""
    prefix = f"m{uuid.uuid4().hex[:6]}x"
    sim = generate(homes=2, days=1, seed=3, site_prefix=prefix)
    broker.provision([h.site for h in sim.homes])
    msgs = list(sim.messages())
    start = msgs[0][0] + 12 * 3_600_000
    before = [(t, p) for r, t, p in msgs if r < start]
    last_status: dict[str, bytes] = {}
    for topic, payload in before:
        if topic.endswith("/status"):
            last_status[topic] = payload
    last_status = {t: p for t, p in last_status.items() if p != b'{"online":false}'}  # a gateway down: no report
    assert {t.split("/")[3] for t in last_status} >= {"gateway", "door", "smoke", "gas", "motion"}
    after = [(t, p) for r, t, p in msgs if r >= start][:20]
    stats = run_live(
        msgs,
        sites=[(h.site, h.gateway) for h in sim.homes],
        host=broker.host,
        port=broker.port,
        password_for=broker.gateway_password,
        speed=50_000,
        skip_before_ms=start,
        max_messages=len(last_status) + len(after),
    )
    got = watcher.wait_for(prefix, len(last_status) + len(after))
    assert sorted(got) == sorted([*last_status.items(), *after])
    assert stats.skipped == len(before) and stats.carried == len(last_status)
