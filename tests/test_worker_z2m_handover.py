"""A Zigbee2MQTT home handed over between partition workers: each message's readings stored once (issue 18, Z2M).

The worker's decode path without a cluster: the worker's Z2M adapter, the partition's take-over dedupe seeded as
at a restore (:func:`eldercare.partition_worker._seed_dedupe`), the gateway service, messages numbered by their
JetStream stream sequence (``RawMessage.mid``, as the partition source sets it) and an in-memory InfluxDB that
keeps one point per series and timestamp (a copy with the same timestamp overwrites its point; any other is a new
one). The real cluster run is ``tests/scale/test_scale_z2m.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from support import z2m_fixtures as fx

from detection.engine import Engine
from eldercare.partition_worker import _seed_dedupe, worker_z2m_adapter
from gateway.deadletter import DeadLetter, DeadLetterCount
from gateway.dedupe import Deduplicator
from gateway.listener import RawMessage
from gateway.models import DeviceKind, MessageType, Reading
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.service import GatewayService
from ingest.schema import point_time_ns

SITE = "h1"
T0 = 1_767_261_000_000
DIRECTORY = StaticDirectory([SiteDevices(site=SITE, gateway="gw-h1", devices=dict(fx.KINDS))])
DOOR = f"z2m/{SITE}/{fx.name_of(fx.TUYA_DOOR)}"
SOS = f"z2m/{SITE}/{fx.name_of(fx.SOS)}"

Point = tuple[DeviceKind, str, str, MessageType, str | None, int]


class _Influx:
    """The partition's measurements as InfluxDB keeps them: one point per series and nanosecond timestamp."""

    def __init__(self) -> None:
        self.points: dict[Point, Reading] = {}
        self.readings: list[Reading] = []
        """Every reading written, in order (what a restore reads back)."""

    async def accept(self, readings: Sequence[Reading]) -> None:
        for r in readings:
            self.points[(r.kind, r.site, r.device, r.type, r.event, point_time_ns(r))] = r
        self.readings.extend(readings)


class _Letters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add_many(self, letters: Sequence[DeadLetter], *, counted: Sequence[DeadLetterCount] = ()) -> None:
        assert not counted, "no home here is over its budget"
        self.letters.extend(letters)


class _Owner:
    """One owner of the partition: its worker's adapter, the partition's dedupe, a detection engine, pages."""

    def __init__(self, influx: _Influx, *, engine: Engine | None = None, dedupe: Deduplicator | None = None) -> None:
        self.engine = engine if engine is not None else Engine()
        self.adapter = worker_z2m_adapter(DIRECTORY)
        self.letters = _Letters()
        self.paged: list[Reading] = []
        self.service = GatewayService(
            directory=DIRECTORY,
            deadletter=self.letters,
            sink=influx,
            dedupe=dedupe if dedupe is not None else Deduplicator(),
            z2m=self.adapter,
            fast_path=self.paged.append,
            on_durable=lambda readings: self.engine.process_many([r for r in readings if not r.is_life_safety]),
        )

    async def take(self, *messages: tuple[int, str, bytes]) -> list[Reading]:
        """Handle one batch of ``(stream sequence, topic, payload)``; the readings stored.

        The fixture home's names with a space or a ``/`` are refused once (the cluster cannot carry them); no other
        refusal is expected.
        """
        raw = [RawMessage(topic, payload, seq, 1, False, T0 + seq) for seq, topic, payload in messages]
        stored = await self.service.handle_batch(raw)
        assert [e.detail for e in self.letters.letters if not e.topic.endswith("/bridge/devices")] == []
        return stored


def _hand_over(old: _Owner, snapshot: bytes, influx: _Influx) -> _Owner:
    """The next owner, as PartitionWorker._restore and _load_z2m_names make it: the last snapshot, the dedupe seeded
    from it and the readings InfluxDB stored since, and the home's friendly names from the old owner."""
    engine, _ = Engine.restore(snapshot)
    dedupe = Deduplicator()
    _seed_dedupe(dedupe, engine, influx.readings)
    new = _Owner(influx, engine=engine, dedupe=dedupe)
    new.adapter.restore_names(SITE, old.adapter.device_names(SITE))
    return new


async def test_a_new_owner_stores_a_z2m_homes_new_states_and_drops_the_old_owners_unacknowledged_copies() -> None:
    """The old owner stores messages 1100-1300 but acknowledges only up to 1000; the new owner gets them again.

    Between two of the home's messages the partition carries 100 others (other homes), so a device's stream
    sequences are far apart: a copy is far below the device's latest, which a reboot-tolerant window would accept.
    """
    influx = _Influx()
    old = _Owner(influx)
    assert await old.take((7, f"z2m/{SITE}/bridge/devices", fx.bridge_devices())) == []
    assert [r.type for r in await old.take((1000, DOOR, fx.TUYA_DOOR_CLOSED))] == [MessageType.STATUS]
    snapshot = old.engine.snapshot()  # the last snapshot: the later messages are found in InfluxDB
    assert [r.event for r in await old.take((1100, SOS, fx.SOS_EMERGENCY))] == ["press", None]
    assert [r.event for r in await old.take((1200, DOOR, fx.TUYA_DOOR_OPEN))] == ["open"]
    assert [r.event for r in await old.take((1300, SOS, fx.SOS_EMERGENCY))] == ["press"]
    assert len(old.paged) == 2
    points = dict(influx.points)

    new = _hand_over(old, snapshot, influx)

    # (b) JetStream redelivers what the old owner stored but did not acknowledge: copies, dropped.
    copies = await new.take((1100, SOS, fx.SOS_EMERGENCY), (1200, DOOR, fx.TUYA_DOOR_OPEN))
    copies += await new.take((1300, SOS, fx.SOS_EMERGENCY))
    assert copies == []
    assert new.paged == []
    assert influx.points == points  # no second point for any of them

    # (a) The home's next states are new readings, stored and detected.
    closed = await new.take((1400, DOOR, fx.TUYA_DOOR_CLOSED))
    assert [r.event for r in closed] == ["close"]
    pressed = await new.take((1500, SOS, fx.SOS_EMERGENCY))
    assert [r.event for r in pressed] == ["press"]
    assert [r.event for r in new.paged] == ["press"]
    assert len(influx.points) == len(points) + 2
    assert len(old.paged) + len(new.paged) == 3  # three presses, three pages


async def test_a_redelivered_sos_press_is_paged_and_stored_once_however_long_the_buttons_history() -> None:
    """A copy is recognised by its message, not by a counter: the new owner's adapter numbers readings afresh, so
    a counter-numbered copy of a button with 300 readings behind it looked like a rebooted device, and paged again."""
    influx = _Influx()
    old = _Owner(influx)
    await old.take((7, f"z2m/{SITE}/bridge/devices", fx.bridge_devices()))
    for seq in range(1000, 1300):  # the button's periodic reports (each a status reading)
        assert [r.type for r in await old.take((seq, SOS, fx.SOS_EMPTY))] == [MessageType.STATUS]
    snapshot = old.engine.snapshot()
    assert [r.event for r in await old.take((1300, SOS, fx.SOS_EMERGENCY))] == ["press"]
    points = dict(influx.points)

    new = _hand_over(old, snapshot, influx)
    assert await new.take((1300, SOS, fx.SOS_EMERGENCY)) == []  # the copy
    assert new.paged == []
    assert influx.points == points
    assert [r.event for r in await new.take((1301, SOS, fx.SOS_EMERGENCY))] == ["press"]  # a new press
    assert [r.event for r in old.paged + new.paged] == ["press", "press"]
