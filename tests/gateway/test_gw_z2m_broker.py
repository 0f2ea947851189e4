"""Zigbee2MQTT homes through the real broker: per-home prefixes in the ACL, the adapter behind the service.

Absence is only asserted after a positive signal (a later message of the same test arrived).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from gw_helpers import MakeListener
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import z2m_fixtures as fx
from test_gw_broker import running

from eldercare.stack import Broker
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.models import DeviceKind, MessageType
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.service import GatewayService, ListSink
from gateway.z2m.adapter import MAX_AVAILABILITY, MAX_REPORTED, Z2mAdapter

pytestmark = pytest.mark.integration


class Z2m:
    """A home's Zigbee2MQTT bridge: a plain MQTT client logged in with the home's account, base topic z2m/<site>."""

    def __init__(self, broker: Broker, account: str, *, base_site: str | None = None) -> None:
        self.base = f"z2m/{base_site or account}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"z2m-{account}", protocol=MQTTProtocolVersion.MQTTv311
        )
        self.client.username_pw_set(account, broker.gateway_password(account))
        self.client.will_set(f"z2m/{account}/bridge/state", b'{"state":"offline"}', qos=1, retain=True)
        self.received: list[mqtt.MQTTMessage] = []
        self.client.on_message = lambda _c, _u, m: self.received.append(m)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, rest: str, payload: bytes, *, retain: bool = False, base: str | None = None) -> None:
        info = self.client.publish(f"{base or self.base}/{rest}", payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def bridges() -> Iterator[list[Z2m]]:
    out: list[Z2m] = []
    yield out
    for b in out:
        b.close()


def directory(*sites: str) -> StaticDirectory:
    return StaticDirectory([SiteDevices(site=s, gateway=f"gw-{s}", devices=dict(fx.KINDS)) for s in sites])


async def test_a_home_cannot_publish_into_another_homes_z2m_prefix(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore, bridges: list[Z2m]
) -> None:
    home_a, home_b = unique_site, unique_site + "b"
    broker.provision([home_a, home_b])
    sink = ListSink()
    service = GatewayService(directory=directory(home_a, home_b), deadletter=deadletter, sink=sink)
    listener = await make_listener(subscriptions=(f"z2m/{home_a}/#", f"z2m/{home_b}/#"))
    a, b = Z2m(broker, home_a), Z2m(broker, home_b)
    bridges += [a, b]
    await asyncio.to_thread(a.client.subscribe, f"z2m/{home_b}/#", 1)
    async with running(service, listener):
        await asyncio.to_thread(b.publish, "bridge/devices", fx.bridge_devices(), retain=True)
        # Home A forges B's device list, B's bridge Last Will and an SOS press in B's home.
        base_b = f"z2m/{home_b}"
        await asyncio.to_thread(a.publish, "bridge/devices", b"[]", retain=True, base=base_b)
        await asyncio.to_thread(a.publish, "bridge/state", b'{"state":"offline"}', base=base_b)
        await asyncio.to_thread(a.publish, fx.name_of(fx.SOS), fx.SOS_EMERGENCY, base=base_b)
        # Positive signal: B's own door closes after the attack and arrives, resolved through B's own device list.
        await asyncio.to_thread(b.publish, fx.name_of(fx.DOOR), b'{"contact":false,"battery":90}')
        await asyncio.to_thread(b.publish, fx.name_of(fx.DOOR), b'{"contact":true,"battery":90}')
        readings = await sink.wait_for(lambda rs: any(r.event == "close" for r in rs), timeout=15)
    assert {r.site for r in readings} == {home_b}
    assert [(r.device, r.event) for r in readings if r.type is MessageType.EVENT] == [(fx.DOOR, "close")]
    assert not any(r.kind is DeviceKind.GATEWAY for r in readings)  # no forged Last Will
    assert deadletter.count() == 0, deadletter.query()
    assert [m.topic for m in a.received] == []  # A's wildcard on B's prefix receives nothing either


async def test_a_large_retained_device_list_arrives_whole_and_a_press_is_fast_pathed(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore, bridges: list[Z2m]
) -> None:
    site = unique_site
    broker.provision([site])
    devices = json.loads(fx.bridge_devices())
    for d in devices:
        if d["definition"]:
            d["definition"]["exposes"] = [{"type": "binary", "name": f"x{i}", "property": f"x{i}"} for i in range(40)]
    big = json.dumps(devices).encode()
    assert 4096 < len(big) < 64 * 1024  # over the contract's 4 KiB reading limit, under the broker's limit
    sink, fast = ListSink(), []
    service = GatewayService(directory=directory(site), deadletter=deadletter, sink=sink, fast_path=fast.append)
    bridge = Z2m(broker, site)
    bridges.append(bridge)
    await asyncio.to_thread(bridge.publish, "bridge/state", b'{"state":"online"}', retain=True)
    await asyncio.to_thread(bridge.publish, "bridge/devices", big, retain=True)
    listener = await make_listener(subscriptions=(f"z2m/{site}/#",))  # retained copies arrive on subscribe
    async with running(service, listener):
        await sink.wait_for(lambda rs: any(r.kind is DeviceKind.GATEWAY for r in rs), timeout=15)
        await asyncio.to_thread(bridge.publish, fx.name_of(fx.SOS), fx.SOS_EMERGENCY)
        await asyncio.to_thread(bridge.publish, fx.name_of(fx.SOS), fx.SOS_EMPTY)
        await asyncio.to_thread(bridge.publish, "hue", b'{"state":"ON"}')
        await asyncio.to_thread(bridge.publish, fx.name_of(fx.DOOR), b'{"contact":true}')
        readings = await sink.wait_for(lambda rs: any(r.device == fx.DOOR for r in rs), timeout=15)
    assert [(r.device, r.event) for r in fast] == [(fx.SOS, "press")]
    assert [r.event for r in readings if r.device == fx.SOS and r.type is MessageType.EVENT] == ["press"]
    assert [e.reason for e in deadletter.query()] == [Reason.UNKNOWN_MODEL]
    await asyncio.to_thread(bridge.publish, "bridge/devices", b"", retain=True)  # clear retained test state


async def test_made_up_names_and_keys_of_a_z2m_home_do_not_grow_the_backends_memory(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore, bridges: list[Z2m]
) -> None:
    """A Z2M home's account may publish anything under ``z2m/<site>/``: every made-up ``<name>/availability`` was
    remembered (one entry per name, for ever) and so was every made-up key of a real device's state, so one home
    could grow the backend's memory, which every home shares, without bound. Both are bounded per home now; what
    is not remembered is refused (``unknown_device``) or reported each time (``unknown_field``)."""
    home = unique_site
    broker.provision([home])
    sink = ListSink()
    adapter = Z2mAdapter(directory=directory(home))
    service = GatewayService(directory=directory(home), deadletter=deadletter, sink=sink, z2m=adapter)
    listener = await make_listener(subscriptions=(f"z2m/{home}/#",))
    bridge = Z2m(broker, home)
    bridges.append(bridge)
    names, keys, per_message = 3000, 6000, 300
    door = fx.name_of(fx.DOOR)
    async with running(service, listener):
        await asyncio.to_thread(bridge.publish, "bridge/devices", fx.bridge_devices(), retain=True)
        for i in range(names):
            bridge.client.publish(f"z2m/{home}/made-up-{i}/availability", b"online", qos=1)
        for first in range(0, keys, per_message):
            state = {"contact": True, "battery": 90} | {f"k{k}": 1 for k in range(first, first + per_message)}
            bridge.client.publish(f"z2m/{home}/{door}", json.dumps(state).encode(), qos=1)
        # Positive signal, published after everything above on the same connection: the door opens.
        await asyncio.to_thread(bridge.publish, door, b'{"contact":false,"battery":90}')
        await sink.wait_for(lambda rs: any(r.event == "open" for r in rs), timeout=60)
    assert adapter.remembered(home) < MAX_AVAILABILITY + MAX_REPORTED + 50, "a home's made-up names stay in memory"
    refused = deadletter.query(site=home, limit=10_000)
    counted = {c.reason: c.count for c in deadletter.counted(site=home)}
    by_reason = {r: sum(1 for e in refused if e.reason is r) + counted.get(r, 0) for r in Reason}
    assert by_reason[Reason.UNKNOWN_DEVICE] == names - MAX_AVAILABILITY
    assert by_reason[Reason.UNKNOWN_FIELD] == keys  # each made-up key reported once (it was new every time)
