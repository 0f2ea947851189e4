"""A home's budget of messages that are not life-safety (gateway/budget.py), in the service: messages fed straight
in (no broker), in-memory sink, real dead-letter file, a clock the test sets. The broker-level attack it answers is
in test_gw_hostile.py (a Zigbee2MQTT home's press behind another home's flood)."""

from __future__ import annotations

import json

import pytest
from support import z2m_fixtures as fx
from test_gw_service import NOW, press, raw, sample

from eldercare.settings import Settings
from gateway.budget import SiteBudget
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.metrics import GatewayMetrics, render_metrics
from gateway.models import DeviceKind
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.service import GatewayService, ListSink

TWO_HOMES = StaticDirectory(
    [
        SiteDevices(site=s, gateway=f"gw-{s}", devices={"btn1": DeviceKind.CALL_BUTTON, "mat1": DeviceKind.MATTRESS})
        for s in ("h1", "h2")
    ]
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def service_with(
    deadletter: DeadLetterStore, clock: Clock, *, rate: float = 2.0, burst: int = 3
) -> tuple[GatewayService, ListSink, list[tuple[str, str, int]], GatewayMetrics]:
    sink, confirmed, metrics = ListSink(), [], GatewayMetrics()
    service = GatewayService(
        directory=TWO_HOMES,
        deadletter=deadletter,
        sink=sink,
        metrics=metrics,
        on_stored=confirmed.extend,
        budget=SiteBudget(rate_per_s=rate, burst=burst, clock=clock),
    )
    return service, sink, confirmed, metrics


async def test_over_the_budget_is_counted_not_stored_not_confirmed_and_life_safety_and_other_homes_pass(
    deadletter: DeadLetterStore,
) -> None:
    clock = Clock()
    service, sink, confirmed, metrics = service_with(deadletter, clock)
    other = raw("ec/v1/h2/mattress/mat1/telemetry", b'{"seq":1,"ts":%d,"occupied":true}' % NOW, mid=99)
    batch = [sample(i) for i in range(1, 7)] + [press(7), other]
    await service.handle_batch(batch)
    assert [(r.site, r.seq) for r in sink.readings] == [("h1", 1), ("h1", 2), ("h1", 3), ("h1", 7), ("h2", 1)]
    assert confirmed == [("h1", "mat1", 1), ("h1", "mat1", 2), ("h1", "mat1", 3), ("h1", "btn1", 7), ("h2", "mat1", 1)]
    (kept,) = deadletter.query(site="h1")
    assert (kept.reason, kept.payload) == (Reason.OVER_BUDGET, sample(4).payload)
    assert kept.detail.startswith("3 messages of this home over its budget (2/s, burst 3)")
    (counted,) = deadletter.counted(site="h1")
    assert (counted.reason, counted.count) == (Reason.OVER_BUDGET, 2)
    assert 'eldercare_gateway_dead_letters_total{reason="over_budget"} 3.0' in render_metrics(metrics)

    # The budget refills with time (2 a second here); a copy of a stored reading spends it like any message (a
    # contract reading that cannot be life-safety is counted before it is read) and is confirmed again; a life-safety
    # reading passes with none left.
    clock.now += 1.0
    await service.handle_batch([sample(1), sample(4), sample(5), sample(6), press(8)])
    assert [r.seq for r in sink.readings[5:]] == [4, 8]
    assert confirmed[5:] == [("h1", "mat1", 1), ("h1", "mat1", 4), ("h1", "btn1", 8)]
    assert sum(c.count for c in deadletter.counted(site="h1")) + len(deadletter.query(site="h1")) == 5


async def test_a_zigbee2mqtt_reading_is_budgeted_once_read_and_its_alarm_never(deadletter: DeadLetterStore) -> None:
    """A Zigbee2MQTT topic (``z2m/<site>/<name>``) does not tell what it carries: it is read first; its life-safety
    readings pass whatever the budget, the rest spend it."""
    home = StaticDirectory([SiteDevices(site="h3", gateway="gw-h3", devices=dict(fx.KINDS))])
    sink = ListSink()
    service = GatewayService(directory=home, deadletter=deadletter, sink=sink, budget=SiteBudget(burst=100))
    await service.handle_batch([raw("z2m/h3/bridge/devices", fx.bridge_devices())])
    door = f"z2m/h3/{fx.name_of(fx.DOOR)}"
    service.budget = SiteBudget(rate_per_s=1.0, burst=1, clock=Clock())  # one message left for what follows
    await service.handle_batch(
        [
            raw(door, b'{"contact":false,"battery":90}'),
            raw(door, b'{"contact":true,"battery":90}'),
            raw(f"z2m/h3/{fx.name_of(fx.SOS)}", fx.SOS_EMERGENCY),
            raw(door, b'{"contact":false,"battery":90}'),
        ]
    )
    doors = [r for r in sink.readings if r.device == fx.DOOR]
    assert len(doors) == 1, doors
    assert [(r.device, r.event) for r in sink.readings if r.is_life_safety] == [(fx.SOS, "press")]
    assert {e.reason for e in deadletter.query(site="h3")} == {Reason.OVER_BUDGET}


async def test_a_reading_decoded_elsewhere_is_budgeted_and_its_alarm_never(deadletter: DeadLetterStore) -> None:
    """Readings another adapter decoded (a 4G watch's frames, :meth:`GatewayService.handle_decoded`) are budgeted
    as they are handed over: the life-safety ones pass whatever the budget, the rest spend it."""
    clock = Clock()
    service, sink, _, _ = service_with(deadletter, clock, rate=1.0, burst=1)
    reader = GatewayService(directory=TWO_HOMES, deadletter=deadletter, sink=ListSink())  # decodes, as an adapter
    results = [(m, reader._decode(m)) for m in (sample(1), sample(3), press(2))]  # noqa: SLF001
    await service.handle_decoded(results, received=3)
    assert [(r.seq, r.is_life_safety) for r in sink.readings] == [(1, False), (2, True)]
    assert [e.reason for e in deadletter.query(site="h1")] == [Reason.OVER_BUDGET]


async def test_the_budget_refills_up_to_its_burst_only(deadletter: DeadLetterStore) -> None:
    clock = Clock()
    service, sink, _, _ = service_with(deadletter, clock, rate=2.0, burst=3)
    clock.now += 3600.0  # an hour quiet: still a burst of 3, not 7,200
    await service.handle_batch([sample(i) for i in range(1, 6)])
    assert [r.seq for r in sink.readings] == [1, 2, 3]


def test_a_budget_is_the_setting_or_off_and_a_wrong_one_stops_start_up_with_its_name() -> None:
    default = Settings().new_site_budget()
    assert default is not None and (default.rate_per_s, default.burst) == (50.0, 20_000)
    assert Settings(site_budget="off").new_site_budget() is None
    first, second = Settings(site_budget="5/10"), Settings(site_budget="5/10")
    assert first.new_site_budget() is not first.new_site_budget()  # each receive path its own buckets
    assert repr(second.new_site_budget()) == "5/s, burst 10"
    with pytest.raises(ValueError, match="ELDERCARE_SITE_BUDGET: expected 'rate/burst'"):
        Settings(site_budget="lots")
    with pytest.raises(ValueError, match="ELDERCARE_SITE_BUDGET"):
        Settings(site_budget="0/10")


def test_the_least_recently_seen_home_is_forgotten_beyond_the_limit_and_starts_full() -> None:
    budget = SiteBudget(rate_per_s=1.0, burst=1, max_sites=2)
    assert [budget.take(s, now=0.0) for s in ("a", "b", "a")] == [True, True, False]
    assert budget.take("c", now=0.0)  # "b" was seen least recently: forgotten
    assert not budget.take("a", now=0.0)
    assert budget.take("b", now=0.0)


async def test_a_zigbee2mqtt_device_list_spends_the_budget_by_its_size_before_it_is_parsed(
    deadletter: DeadLetterStore,
) -> None:
    """``z2m/<site>/bridge/devices`` is the one topic the listener lets through whole (up to the broker's 64 KiB),
    and it yields no reading: a Z2M home republishing a large device list as fast as it can cost the backend a
    JSON parse of up to 64 KiB per message (about 0.7 ms, 70 times a reading) and never touched its budget. Bridge
    topics cannot carry a life-safety reading, so they spend the budget before they are parsed, one message and
    one more per KiB."""
    home = StaticDirectory([SiteDevices(site="h3", gateway="gw-h3", devices=dict(fx.KINDS))])
    sink = ListSink()
    service = GatewayService(
        directory=home, deadletter=deadletter, sink=sink, budget=SiteBudget(rate_per_s=1.0, burst=100, clock=Clock())
    )
    devices = json.loads(fx.bridge_devices())
    for device in devices:
        if device["definition"]:
            device["definition"]["exposes"] = [
                {"type": "binary", "name": f"x{i}", "property": f"x{i}"} for i in range(45)
            ]
    big = json.dumps(devices).encode()
    assert 40 * 1024 < len(big) < 64 * 1024
    await service.handle_batch([raw("z2m/h3/bridge/devices", big, mid=i) for i in range(1, 11)])
    refused = deadletter.query(site="h3")
    assert [e.reason for e in refused] == [Reason.OVER_BUDGET]
    assert sum(c.count for c in deadletter.counted(site="h3")) + len(refused) == 9  # the first one was read
    await service.handle_batch([raw(f"z2m/h3/{fx.name_of(fx.SOS)}", fx.SOS_EMERGENCY, mid=11)])
    assert [(r.device, r.event) for r in sink.readings if r.is_life_safety] == [(fx.SOS, "press")]  # names learned
