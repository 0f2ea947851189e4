"""Clustered mode: a partition worker (``eldercare worker``), one of several on a NATS JetStream cluster.

Homes hash to ``ELDERCARE_PARTITIONS`` fixed partitions. Each worker heartbeats in the members bucket, claims the
partitions rendezvous hashing gives it among the live workers (KV leases), consumes each owned partition's
messages in order (its consumer on ``$MQTT_msgs``), decodes them with the same :class:`GatewayService` as the
embedded backend, writes them to InfluxDB, acknowledges only then, and runs one detection engine per partition.
On taking a partition over it restores that partition's detection state from the last owner's snapshot (NATS object
store, written every ``snapshot_every_s`` and at hand-back) plus the readings InfluxDB stored since, so learned
baselines and armed timers (a night bed exit in progress) survive the move; without a snapshot it rebuilds from the
last 6 h of readings. The partition is consumed meanwhile: its life-safety readings go through an empty engine of
its homes at once (they need no history; InfluxDB may be down, and the restore is retried), the other readings wait
for the restored engine. Alerts that fell due while nobody owned the partition are raised then, unless the store
already holds them or they were raised meanwhile. Alerts go to the alert store (PostgreSQL in this mode; its
unique open-alert key keeps them exactly-once across owners), retried until stored, and no snapshot is stored over
an alert not stored yet (the embedded backend's :class:`alerts.raising.Raiser`). Every worker runs the alert
service's timers (reminders, escalations, retries) and puts back what dead workers were sending; a take-over sends
the first messages the partition's last owner stored an alert for and never sent. A worker that loses a lease
stops that partition at once: no ack, no new alert (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from alerts.checkins import CheckInRelay
from alerts.learned import LearnedPublisher
from alerts.links import LinkSigner
from alerts.notices import NoticeSync
from alerts.notify import AppriseNotifier
from alerts.raising import (
    SHUTDOWN_WAITS_FOR_RAISES_S,
    SNAPSHOT_WAITS_FOR_RAISES_S,
    AlertSink,
    Raiser,
    already_stored,
    resume_owed,
)
from alerts.service import AlertService
from alerts.store.away import AwayStore
from alerts.store.learned import LearnedStore
from alerts.store.repository import AlertStore
from detection.engine import Engine
from detection.errors import SnapshotError
from detection.homes import HomeRegistry
from detection.models import Alert
from detection.state import NEVER, EngineSnapshot, HomeState
from eldercare.backend import NO_SNAPSHOT_LOOKBACK_MS, SNAPSHOT_LOOKBACK_MS
from eldercare.logs import configure_logging, private_umask
from eldercare.pipeline import directory_from_settings, ensure_storage_retrying, send_confirmations
from eldercare.settings import Settings, influx_client, policies_in_force
from gateway.confirm import StoredConfirmations
from gateway.contract import DeviceDirectory
from gateway.deadletter import DeadLetterStore
from gateway.dedupe import Deduplicator
from gateway.listener import RawMessage
from gateway.models import Z2M_PREFIX, Reading
from gateway.provisioning import StaticDirectory
from gateway.retry import Backoff, retry
from gateway.service import GatewayService
from gateway.tasks import cancel_and_wait
from gateway.z2m.adapter import Z2mAdapter
from ingest.history import stored_readings
from ingest.nats_bus import (
    ConsumerMissingError,
    Members,
    NatsBus,
    NatsDownlink,
    PartitionLeases,
    PartitionSnapshots,
    SnapshotUnavailableError,
    Z2mNames,
)
from ingest.partitions import Lease, LeaseLostError, partition_of, preferred_owner, z2m_name_problem
from ingest.reader import InfluxReader
from ingest.spool import Spool
from ingest.writer import InfluxWriter, WriteOptions

_LOG = logging.getLogger(__name__)
READY_LINE = "partition worker ready"
STOPPED_LINE = "partition worker stopped"
REBUILD_LOOKBACK_MS = NO_SNAPSHOT_LOOKBACK_MS
"""How much history a partition without a snapshot is rebuilt from (the embedded backend's); also the most replayed
after an older snapshot. Readings :data:`SNAPSHOT_LOOKBACK_MS` older than a snapshot's watermark are replayed too."""
CONSUME_BACKOFF: Final = Backoff(first_s=0.5, max_s=2.0)
"""Pauses between attempts of a partition's failing NATS or InfluxDB call (a node failing over), same lease."""

SERVICE_TICK_S = 2.0
"""How often a worker fires the alert service's due reminders, escalations and retries (as the embedded backend)."""

RESTORE_SLICE: Final = 5_000
"""Readings a restore replays per turn of the event loop (a few ms), so the worker's live readings never wait long."""
RESTORE_RETRY_MAX_S: Final = 10.0
"""Longest pause between two attempts of a failing restore (InfluxDB down)."""
KEPT_WHILE_RESTORING: Final = 50_000
"""Durable readings a partition keeps for its engine while its state is restored (InfluxDB down at a take-over:
hours of them). Beyond, the oldest are let go: the restore reads back whatever InfluxDB holds by then."""

AlertSeen = Callable[[Alert], bool]
"""True if the alert store already holds this alert (raised by the partition's previous owner)."""


class _Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Owned:
    lease: Lease
    engine: Engine
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    restored: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once :attr:`engine` holds the partition's restored state (only then is it worth a snapshot). Before, the
    partition is already consumed: :attr:`engine` is an empty one that sees the life-safety readings only (they need
    no history), and the durable readings wait in :attr:`kept`."""
    alerts: int = 0
    saved_at: tuple[int, int] = (0, 0)
    """(readings, alerts) of the engine at its last stored snapshot: an unchanged partition is not stored again
    (timers that fall due meanwhile fire again, the same, on the next owner's catch-up)."""
    task: asyncio.Task[None] | None = None
    consumer: str | None = None
    """The partition's consumer this owner took over (its epoch's)."""
    raising: set[asyncio.Task[None]] = field(default_factory=set)
    """This owner's raises of the partition's alerts still under way (stored and notified when done)."""
    dedupe: Deduplicator = field(default_factory=Deduplicator)
    """The partition's dedupe window, kept across its sources and seeded at the restore with what InfluxDB and the
    snapshot already hold: the messages the old owner stored but did not acknowledge come again, and are copies."""
    kept: deque[Reading] = field(default_factory=lambda: deque(maxlen=KEPT_WHILE_RESTORING))
    """Durable readings consumed before the state is restored, in arrival order: the restored engine's, then."""
    kept_dropped: int = 0
    """Readings the full :attr:`kept` let go (the restore reads them back from InfluxDB if it holds them by then)."""
    raised_live: set[tuple[str, str, str | None, int]] = field(default_factory=set)
    """(site, type, device, time) of the alerts raised before the restore: its catch-up does not raise them again."""
    restoring: asyncio.Task[None] | None = None


class PartitionWorker:
    """Owns a changing set of partitions; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        alert_sink: AlertSink,
        alert_seen: AlertSeen | None = None,
        tick_s: float = 1.0,
        snapshot_every_s: float | None = None,
        checkin_store: AlertStore | None = None,
        notifications: AlertService | None = None,
    ) -> None:
        """Build the worker; :meth:`run` starts it. ``alert_sink`` stores (and notifies) an alert.

        Each alert is raised until the sink takes it (:class:`alerts.raising.Raiser`), and a partition's snapshot
        waits until every alert raised before it is stored. ``notifications`` (the sink's alert service) is the
        outbox's follow-up: its timers (reminders, escalations, retries) every :data:`SERVICE_TICK_S`, and on each
        take-over the first messages the partition's last owner stored an alert for and never sent.

        ``alert_seen`` tells alerts the previous owner already stored from new ones after a take-over (without it,
        alerts found while catching up are all raised; the store's open-alert key still keeps them single).
        ``checkin_store`` records check-in steps and knows each home's devices to prompt (issue 19); without it a
        held behavioural alert pages when its window runs out, as before.
        """
        if not settings.nats_urls:
            raise ValueError("ELDERCARE_NATS_URLS is required for a partition worker (docs/scale-out.md)")
        self.settings = settings
        self.worker_id = worker_id_of(settings)
        self.alert_sink = alert_sink
        self.raiser = Raiser(alert_sink)
        self.notifications = notifications
        self.alert_seen = alert_seen
        self.tick_s = tick_s
        self.snapshot_every_s = settings.partition_snapshot_s if snapshot_every_s is None else snapshot_every_s
        self.detect_config = settings.detect_config()
        self._snapshots: PartitionSnapshots | None = None
        self._z2m_names: Z2mNames | None = None
        self._z2m_current: set[str] = set()
        """Z2M homes whose names this worker has loaded (or decoded) since it took their partition over."""
        self.z2m: Z2mAdapter | None = None
        """The worker's one Zigbee2MQTT adapter (set in :meth:`run`); its homes' names outlive a partition move."""
        self.owned: dict[int, _Owned] = {}
        self.ready = asyncio.Event()
        self.alerts_raised = 0
        self.alerts_fenced = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self._leases: PartitionLeases | None = None
        self._last_seq: dict[tuple[str, str], int] = {}
        self.order_violations = 0
        """Readings whose device ``seq`` went backwards on their way into detection (per-home order; must be 0)."""
        self.readings_processed = 0
        self.readings_via_history = 0
        """Readings consumed during a restore that detection got from the history it replays (written before it was
        read, or the previous owner's unacknowledged ones coming again), or that a partition stopped while restoring
        leaves to its next owner's: not fed twice, counted apart."""
        self._handing_back: set[int] = set()
        self.checkin_store = checkin_store
        self.home_registry = HomeRegistry.load(settings.registry_path) if settings.registry_path else None
        self.downlink: NatsDownlink | None = None
        """The one downlink to the gateways (``stored`` confirmations, check-in prompts); set once connected."""
        self.checkin_relay: CheckInRelay | None = None
        self._live: list[str] = []
        """The live workers at the last rebalance, this one included (empty until the first)."""

    def _drain_checkins(self, engine: Engine) -> None:
        """Hand the engine's new check-in steps to the relay (records them, sends prompts; no I/O here)."""
        if self.checkin_relay is not None:
            self.checkin_relay.drain(engine)

    def _count_order(self, readings: Sequence[Reading]) -> None:
        """Count readings that reach detection with a lower ``seq`` than their device's previous one."""
        last = self._last_seq
        for r in readings:
            if r.seq is None:
                continue
            key = (r.site, r.device)
            prev = last.get(key)
            if prev is not None and r.seq < prev:
                self.order_violations += 1
            else:
                last[key] = r.seq
            self.readings_processed += 1

    # ------------------------------------------------------------------ alerts, fenced

    def _dispatch(self, owned: _Owned, alert: Alert) -> None:
        try:
            owned.lease.check(time.monotonic())
        except LeaseLostError:
            self.alerts_fenced += 1
            _LOG.warning("alert %s of a lost partition %d not raised", alert.type, owned.lease.partition)
            return
        self.alerts_raised += 1
        owned.alerts += 1
        # Retried until stored, even past the lease: its reading is durable and acknowledged (the store's open-alert
        # key keeps it single if the next owner raises it too).
        task = self.raiser.raise_(alert)
        owned.raising.add(task)
        task.add_done_callback(owned.raising.discard)

    # ------------------------------------------------------------------ one partition

    def _registry_of(self, partition: int | None) -> HomeRegistry | None:
        """The registry's homes of one partition: its engine watches them (devices, solitary, bed-bound) and no other.

        Without it a worker's engine knew a home only from its messages, as an unknown home: no inside sensor, so
        its silence was never evidence and no inactivity alert (nor check-in) was ever raised (found by
        tests/scale/test_scale_downlink.py).
        """
        if self.home_registry is None or partition is None:
            return None
        n = self.settings.partitions
        return HomeRegistry({s: i for s, i in self.home_registry.sites.items() if partition_of(s, n) == partition})

    def _new_engine(self, partition: int | None = None) -> Engine:
        return Engine(
            config=self.detect_config, clock=_Clock(), refit_inline=False, registry=self._registry_of(partition)
        )

    def _dispatch_live(self, owned: _Owned, alert: Alert) -> None:
        """An alert of the engine that runs while the partition's state is restored (life-safety readings only).

        The dedupe window is seeded by the restore, so until then JetStream's redelivery of what the previous owner
        stored but had not acknowledged gets through: a redelivered press whose alert the store holds is not raised
        again (one store lookup first, during the restore only). The restored engine's catch-up skips these alerts.
        """
        owned.raised_live.add((alert.site, alert.type, alert.device, alert.time_ms))
        seen = self.alert_seen
        if seen is None or alert.clears:
            self._dispatch(owned, alert)
            return

        async def unless_stored() -> None:
            try:
                stored = await asyncio.to_thread(seen, alert)
            except Exception as exc:  # noqa: BLE001 - the store unreachable: raised (retried until stored)
                _LOG.warning("alert store lookup failed (%s: %s); raising %s", type(exc).__name__, exc, alert.type)
                stored = False
            if stored:
                _LOG.info("%s of a redelivered reading: already stored by the previous owner", alert.type)
            else:
                self._dispatch(owned, alert)

        task = asyncio.ensure_future(unless_stored())
        owned.raising.add(task)
        task.add_done_callback(owned.raising.discard)

    async def _restore_until_done(self, owned: _Owned, reader: InfluxReader) -> None:
        """:meth:`_restore`, retried while the lease holds (InfluxDB down: the partition is consumed meanwhile)."""
        partition = owned.lease.partition

        async def attempt() -> None:
            if not owned.stop.is_set() and owned.lease.valid(time.monotonic()):
                await self._restore(owned, reader)

        async def pause(delay: float) -> None:  # a stop ends the wait (and the next attempt does nothing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(owned.stop.wait(), delay)

        def failed(n: int, exc: Exception, delay: float) -> None:
            if n == 1 or n % 10 == 0:
                _LOG.warning(
                    "partition %d: restoring failed (%s: %s); retrying in %.2f s (attempt %d; life-safety alerts"
                    " are raised meanwhile, the other readings are kept for the restored state)",
                    partition,
                    type(exc).__name__,
                    exc,
                    delay,
                    n,
                )

        await retry(attempt, backoff=Backoff(first_s=0.5, max_s=RESTORE_RETRY_MAX_S), on_failure=failed, wait=pause)

    async def _restore(self, owned: _Owned, reader: InfluxReader) -> None:
        """The partition's last snapshot plus the readings stored since (or 6 h of them), caught up to now.

        The partition is consumed meanwhile: the readings kept since its take-over follow the history, then the
        restored engine replaces the one that raised life-safety alerts until then. Alerts found on the way that
        the store does not hold yet, and that were not raised meanwhile, are raised (a timer that fell due while
        nobody owned the partition); the others were the previous owner's.
        """
        partition = owned.lease.partition
        now = _Clock().now_ms()
        engine: Engine | None = None
        source = "no snapshot"
        saved = None
        if self._snapshots is not None:
            try:
                saved = await self._snapshots.load(partition)
            except SnapshotUnavailableError as exc:  # better a rebuild than a partition nobody watches
                _LOG.warning("%s; rebuilding from InfluxDB", exc)
                source = "no snapshot (unreadable)"
        if saved is not None:
            data, source = saved
            try:
                engine, _ = Engine.restore(
                    data, config=self.detect_config, refit_inline=False, registry=self._registry_of(partition)
                )
            except SnapshotError as exc:
                _LOG.warning("partition %d: snapshot unusable (%s); rebuilding from InfluxDB", partition, exc)
        if engine is None:
            engine = self._new_engine(partition)
            start = now - REBUILD_LOOKBACK_MS
        else:
            engine.clock = _Clock()
            start = max(engine.now_ms - SNAPSHOT_LOOKBACK_MS, now - REBUILD_LOOKBACK_MS)
        history = await stored_readings(reader, start_ms=start, end_ms=now + 60_000)
        mine = [r for r in history if partition_of(r.site, self.settings.partitions) == partition]
        found: list[Alert] = []
        for i in range(0, len(mine), RESTORE_SLICE):
            if i:
                await asyncio.sleep(0)  # the owned partitions' live readings go first
            found += engine.catch_up(mine[i : i + RESTORE_SLICE])
        _seed_dedupe(owned.dedupe, engine, mine)
        # The readings consumed meanwhile, less those the history holds (the previous owner's redelivered ones,
        # and those written before it was read), a slice per turn of the loop; the last step (none left) does not
        # await, so no batch slips between them and the restored engine going live.
        stored = {(r.site, r.device, r.seq) for r in mine if r.seq is not None}
        kept = 0
        while owned.kept:
            taken = [owned.kept.popleft() for _ in range(min(RESTORE_SLICE, len(owned.kept)))]
            chunk = [r for r in taken if r.seq is None or (r.site, r.device, r.seq) not in stored]
            self.readings_via_history += len(taken) - len(chunk)
            self._count_order(chunk)
            found += engine.catch_up(chunk)
            kept += len(chunk)
            await asyncio.sleep(0)
        self.readings_via_history += owned.kept_dropped  # written before they were let go: in the history read
        found += engine.advance(_Clock().now_ms())  # no sink yet: timers due while the partition had no owner
        owned.engine = engine
        engine.sink = lambda alert: self._dispatch(owned, alert)
        owned.restored.set()
        raised_live, owned.raised_live = owned.raised_live, set()
        seen = self.alert_seen

        def not_yet_raised() -> list[Alert]:  # one thread hop for all of them, not one per alert
            return [
                a
                for a in found
                if a.clears
                or ((a.site, a.type, a.device, a.time_ms) not in raised_live and (seen is None or not seen(a)))
            ]

        fresh = await asyncio.to_thread(not_yet_raised)
        for alert in fresh:
            self._dispatch(owned, alert)
        self._drain_checkins(engine)
        personal = sum(1 for h in engine.homes.values() if h.baseline.personal)
        _LOG.info(
            "partition %d: restored from %s + %d stored readings and %d consumed meanwhile%s (%d homes, %d with"
            " learned baselines, %d timers armed, %d alerts due)",
            partition,
            source,
            len(mine),
            kept,
            f" ({owned.kept_dropped} more let go: the buffer was full)" if owned.kept_dropped else "",
            len(engine.homes),
            personal,
            len(engine.timers.items()),
            len(fresh),
        )

    async def _save_snapshot(self, owned: _Owned) -> None:
        """Store the partition's engine state for its next owner (fenced: a lost lease writes nothing)."""
        state = (owned.engine.readings, owned.alerts)
        if self._snapshots is None or not owned.restored.is_set() or state == owned.saved_at:
            return
        data = owned.engine.snapshot()
        # The next owner replays only what this snapshot has not seen: not over a reading whose alert is unstored.
        if not await self.raiser.stored(timeout=SNAPSHOT_WAITS_FOR_RAISES_S):
            _LOG.warning("partition %d: snapshot held back: %d alerts are not stored yet (the store is failing)",
                         owned.lease.partition, len(self.raiser.unstored))  # fmt: skip
            return
        try:
            await self._snapshots.save(owned.lease, data)
            owned.saved_at = state
        except LeaseLostError:
            return
        except Exception as exc:  # noqa: BLE001 - a node failing over: the next period tries again
            _LOG.warning("partition %d: snapshot not saved (%s: %s)", owned.lease.partition, type(exc).__name__, exc)

    async def _save_z2m_names(self, handing_back: dict[int, _Owned] | None = None) -> None:
        """Keep the friendly names of the Z2M homes whose ``bridge/devices`` changed, for the next owner.

        Only for homes of partitions this worker holds (``handing_back``: also those it is releasing); called
        before a batch is acknowledged, at every tick, and before a hand-back releases its lease.
        """
        if self.z2m is None or self._z2m_names is None:
            return
        owners = {**self.owned, **(handing_back or {})}
        n = self.settings.partitions
        for site in self.z2m.take_changed():
            owned = owners.get(partition_of(site, n))
            if owned is None or not owned.lease.valid(time.monotonic()):
                continue  # not ours any more: the owner that decodes its newer list keeps it
            try:
                await self._z2m_names.save(site, self.z2m.device_names(site))
            except Exception as exc:  # noqa: BLE001 - a node failing over: the next tick tries again
                self.z2m.lists_changed.add(site)
                _LOG.warning("z2m names of %s not kept (%s: %s)", site, type(exc).__name__, exc)

    async def _load_z2m_names(self, batch: Sequence[RawMessage]) -> None:
        """Before a batch: the names the last owner kept for each Z2M home not seen since the take-over.

        The home then starts as in an embedded backend after a restart (names known, first state a baseline). A
        failed lookup (a node failing over) is tried again with the home's next batch.
        """
        if self.z2m is None or self._z2m_names is None:
            return
        prefix = f"{Z2M_PREFIX}/"
        sites = {m.topic.split("/", 2)[1] for m in batch if m.topic.startswith(prefix) and m.topic.count("/") >= 2}
        for site in sites - self._z2m_current:
            try:
                names = await self._z2m_names.get(site)
            except Exception as exc:  # noqa: BLE001 - its states are dead-lettered as unknown_device meanwhile
                _LOG.warning("z2m names of %s not loaded (%s: %s)", site, type(exc).__name__, exc)
                continue
            if names is not None:
                self.z2m.restore_names(site, names)
            self._z2m_current.add(site)

    async def _tick_loop(self, stop: asyncio.Event) -> None:
        """Fire the owned partitions' due timers every ``tick_s``, on their own schedule (never behind NATS calls)."""
        while not stop.is_set():
            for owned in list(self.owned.values()):
                if owned.restored.is_set():
                    owned.engine.tick()
                    self._drain_checkins(owned.engine)
            await self._save_z2m_names()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)

    async def _service_loop(self, stop: asyncio.Event) -> None:
        """The alert service's due reminders, escalations and retries (every worker: the store arbitrates).

        First what dead workers were sending (their heartbeats gone from the members bucket): sent again now, not
        when their 120-s send lease runs out (worker ids change with every start, so none comes back for them).
        """
        if self.notifications is None:
            return
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SERVICE_TICK_S)
            try:
                if self._live:
                    await self.notifications.release_gone_senders(
                        WORKER_SENDER_PREFIX, [worker_sender(w) for w in self._live]
                    )
                await self.notifications.tick()
            except Exception:  # noqa: BLE001 - the store unreachable for a moment: the next pass tries again
                _LOG.exception("alert service tick failed")

    async def _notice_loop(self, stop: asyncio.Event, *, every_s: float = 5.0) -> None:
        """Away notices (外出报备) of the store into the owned engines, and those a home showed over ended there.

        Also saves what the owned engines learned, for the console's resident page (:mod:`alerts.learned`).
        """
        if self.checkin_store is None:
            return
        notices = NoticeSync(AwayStore(self.checkin_store), clock=_Clock().now_ms)
        learned = LearnedPublisher(LearnedStore(self.checkin_store), clock=_Clock().now_ms)
        while not stop.is_set():
            engines = [o.engine for o in list(self.owned.values()) if o.restored.is_set()]
            try:
                await notices.sync(engines)
            except Exception:  # noqa: BLE001 - the store unreachable for a moment: the next pass tries again
                _LOG.exception("away notices failed")
            try:
                await learned.publish(engines)
            except Exception:  # noqa: BLE001 - as above
                _LOG.exception("saving learned profiles failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    async def _snapshot_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.snapshot_every_s)
            if not stop.is_set():
                for owned in list(self.owned.values()):
                    await self._save_snapshot(owned)

    async def _consume(
        self, bus: NatsBus, owned: _Owned, service_for: Callable[[_Owned], GatewayService], reader: InfluxReader
    ) -> None:
        """Take the partition over and consume it while the lease holds.

        A failing NATS or InfluxDB call (a node failing over, a JetStream API timeout during an election) is
        retried with the same lease, so the partition neither sits unowned until the lease expires nor changes
        epoch; the lease deadline still fences a worker that cannot reach NATS.
        """
        lease = owned.lease
        acked = 0
        consumer: str | None = None
        failures = 0
        try:
            while not owned.stop.is_set():
                try:
                    if consumer is None:
                        consumer = owned.consumer = await bus.take_over_consumer(lease)
                    if owned.restoring is None:
                        self._taken_over(owned, reader)
                    source = await bus.partition_source(lease, consumer, before_batch=self._load_z2m_names)
                    _LOG.info("partition %d: consuming (%s)", lease.partition, consumer)
                    try:
                        await service_for(owned).run(source, max_batch=500, max_wait_s=0.2, stop=owned.stop)
                    finally:
                        await source.close()
                        acked += source.acked
                    break
                except LeaseLostError as lost:
                    _LOG.warning("partition %d fenced: %s", lease.partition, lost.reason)
                    break
                except Exception as exc:
                    failures += 1
                    if isinstance(exc, ConsumerMissingError):
                        consumer = None  # created again from the older epochs' ack floor
                    if not lease.valid(time.monotonic()):
                        _LOG.warning(
                            "partition %d failed past its lease (%s: %s)", lease.partition, type(exc).__name__, exc
                        )
                        break
                    delay = CONSUME_BACKOFF.delay(failures)
                    _LOG.warning(
                        "partition %d: %s: %s; retrying in %.2f s with the same lease",
                        lease.partition,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(owned.stop.wait(), delay)
        finally:
            if owned.restoring is not None and not owned.restoring.done():
                await cancel_and_wait(owned.restoring)
            if not owned.restored.is_set() and (left := len(owned.kept) + owned.kept_dropped):
                # Durable and acknowledged: the next owner's restore replays them from InfluxDB (this owner stored
                # no snapshot, so its history starts before them).
                _LOG.info("partition %d: stopped while restoring; %d readings consumed meanwhile are left to the"
                          " next owner's history replay", lease.partition, left)  # fmt: skip
                self.readings_via_history += left
                owned.kept.clear()
                owned.kept_dropped = 0
        _LOG.info("partition %d: stopped after %d acknowledged", lease.partition, acked)

    def _taken_over(self, owned: _Owned, reader: InfluxReader) -> None:
        """The partition is this worker's: restore its state in the background and send what its last owner owed.

        Neither waits for the other nor holds up consuming: a press in the partition is paged while the history is
        read (InfluxDB may be down: the restore is retried meanwhile).
        """
        partition = owned.lease.partition
        n = self.settings.partitions
        # Its Z2M homes' names come from the last owner, at each home's first message (_load_z2m_names).
        self._z2m_current -= {site for site in self._z2m_current if partition_of(site, n) == partition}
        owned.restoring = asyncio.create_task(self._restore_until_done(owned, reader), name=f"restore-{partition}")
        if self.notifications is not None:
            # The last owner may have died between storing an alert and sending its first messages: nothing else
            # sends them (the alert is stored, so neither engine raises it again).
            self._background(
                resume_owed(
                    self.notifications,
                    started_ms=_Clock().now_ms(),
                    stop=owned.stop,
                    owns=lambda site: partition_of(site, n) == partition,
                ),
                f"resume-{partition}",
            )

    # ------------------------------------------------------------------ membership and leases

    async def _rebalance(self, leases: PartitionLeases, live: Sequence[str], start: Callable[[Lease], None]) -> None:
        """Claim the partitions rendezvous hashing gives this worker; hand back those it gives to others."""
        if self.worker_id not in live:
            live = [*live, self.worker_id]
        wanted: list[int] = []
        for p in range(self.settings.partitions):
            owned = self.owned.get(p)
            mine = preferred_owner(p, live) == self.worker_id
            if owned is not None and owned.task is not None and owned.task.done():
                self.owned.pop(p)  # fenced or failed: its state is dropped; claimed again below if still ours
                owned = None
            if owned is not None and not mine:
                self._handing_back.add(p)
                self._background(self._hand_back(p, self.owned.pop(p), leases), f"hand-back-{p}")
            elif owned is None and mine and p not in self._handing_back:
                wanted.append(p)
        for lease in await asyncio.gather(*(leases.acquire(p) for p in wanted)):
            if lease is not None:
                start(lease)

    async def _retire_older_consumers(self, bus: NatsBus) -> None:
        """Retire the older epochs' consumers a take-over had to keep (its consumer was not on every replica yet)."""
        for p, owned in list(self.owned.items()):
            consumer = owned.consumer
            if consumer is None or consumer not in bus.older_kept or not owned.lease.valid(time.monotonic()):
                continue
            try:
                await bus.retire_older_consumers(p, consumer, wait_s=0)
            except Exception as exc:  # noqa: BLE001 - a node failing over: asked again on the next round
                _LOG.warning("partition %d: older consumers not retired (%s: %s)", p, type(exc).__name__, exc)

    def _background(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hand_back(self, partition: int, owned: _Owned, leases: PartitionLeases) -> None:
        """Graceful hand-over: finish the batch in hand (acked), stop, then delete the lease."""
        try:
            owned.stop.set()
            if owned.task is not None:
                with contextlib.suppress(Exception):
                    await owned.task
            if owned.raising:  # their first messages sent before the successor looks for alerts nobody was told of
                await asyncio.wait(set(owned.raising), timeout=SHUTDOWN_WAITS_FOR_RAISES_S)
            await self._save_snapshot(owned)  # the successor starts from here, not from the last period's
            await self._save_z2m_names({partition: owned})
            await leases.release(owned.lease)
            _LOG.info("partition %d handed back", partition)
        finally:
            self._handing_back.discard(partition)

    async def _renew_all(self, leases: PartitionLeases) -> None:
        async def renew(p: int, owned: _Owned) -> None:
            try:
                await leases.renew(owned.lease)
            except LeaseLostError as lost:
                _LOG.warning("partition %d lost: %s", p, lost.reason)
                owned.stop.set()
            except Exception as exc:  # noqa: BLE001 - NATS unreachable: the local deadline fences us
                _LOG.warning("renewing partition %d failed: %s", p, exc)

        await asyncio.gather(*(renew(p, o) for p, o in list(self.owned.items())))

    async def _keep_alive(self, members: Members, leases: PartitionLeases, stop: asyncio.Event) -> None:
        """Heartbeat and lease renewal, on their own schedule (never behind a slow rebalance)."""
        while not stop.is_set():
            try:
                await members.beat()
            except Exception as exc:  # noqa: BLE001 - a node failing over
                _LOG.warning("heartbeat failed (%s: %s)", type(exc).__name__, exc)
            await self._renew_all(leases)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.lease_s / 4)

    # ------------------------------------------------------------------ run

    async def _join(self, bus: NatsBus) -> tuple[Members, PartitionLeases]:
        """Partition consumers, buckets and the first heartbeat; retried while the cluster elects leaders."""
        s = self.settings
        delay = 0.2
        deadline = time.monotonic() + 120
        while True:
            try:
                await bus.ensure_partition_consumers(s.partitions)
                members = await bus.members(worker=self.worker_id, ttl_s=s.lease_s, replicas=s.nats_replicas)
                leases = await bus.leases(owner=self.worker_id, lease_s=s.lease_s, replicas=s.nats_replicas)
                # Here, retried: creating this R3 bucket timed out (10 s) once with two workers joining a new cluster.
                self._z2m_names = await bus.z2m_names(replicas=s.nats_replicas)
                await members.beat()
                return members, leases
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise
                _LOG.warning("joining the cluster failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self, *, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then hand every partition back and leave."""
        s = self.settings
        influx = influx_client(s, gzip=s.influx_gzip)
        spool = Spool(directory=s.data_dir / "spool" / self.worker_id, max_bytes=s.spool_max_mb * 1024 * 1024)
        deadletter = DeadLetterStore.in_data_dir(s.data_dir / self.worker_id)
        writer = InfluxWriter(
            client=influx,
            spool=spool,
            options=WriteOptions(batch_size=s.influx_batch_size, retry_interval=s.influx_retry_interval_ms),
            rejected=deadletter,
        )
        directory = directory_from_settings(s)
        reader = InfluxReader(client=influx)
        # One Zigbee2MQTT adapter for the worker, not one per consumer run: a partition's consumer retried after a
        # node failure keeps the friendly names its homes' bridge/devices taught it (homes never share state).
        self.z2m = z2m = worker_z2m_adapter(directory)
        # The gateways' end-to-end acknowledgement, as in the embedded backend (gateway/confirm.py): each batch
        # once durable, coalesced per gateway, sent through the NATS downlink.
        confirmations: StoredConfirmations | None = None
        if s.mqtt_confirm_stored:
            gateway_of = directory.gateway_of if isinstance(directory, StaticDirectory) else None
            confirmations = StoredConfirmations(gateway_of=gateway_of)

        def service_for(owned: _Owned) -> GatewayService:
            worker = self

            class _Sink:
                async def accept(self, readings: Sequence[Reading]) -> None:
                    await writer.accept(readings)
                    await worker._save_z2m_names()  # a new bridge/devices: kept before the batch is acknowledged
                    # Durable now. Detection only while we own the homes; a lost lease is not an error to retry
                    # here (the writer's retry loop would spin on it): the ack that follows is refused instead.
                    if not owned.lease.valid(time.monotonic()):
                        return
                    if not owned.restored.is_set():  # the restored engine's, once it exists
                        kept = owned.kept
                        assert kept.maxlen is not None
                        owned.kept_dropped += max(0, len(kept) + len(readings) - kept.maxlen)
                        kept.extend(readings)
                        return
                    engine = owned.engine
                    worker._count_order(readings)
                    engine.process_many([r for r in readings if not r.is_life_safety])
                    worker._drain_checkins(engine)  # an answer (the button's cancel) closes a check-in

            def fast_path(reading: Reading) -> None:
                engine = owned.engine  # before the restore: an empty one of its own (life-safety needs no history)
                engine.process(reading)  # at once; alerts fenced in _dispatch
                worker._drain_checkins(engine)

            return GatewayService(
                directory=directory,
                deadletter=deadletter,
                sink=_Sink(),
                dedupe=owned.dedupe,
                max_skew_ms=s.max_clock_skew_s * 1000,
                z2m=z2m,
                fast_path=fast_path,
                on_stored=confirmations.add if confirmations is not None else None,
                budget=s.new_site_budget(),
            )

        # Retried in the background while InfluxDB is down: a worker that tried once and went on never created the
        # database, so its writes stayed in the spool and its restores failed ("database not found") for ever.
        setup = asyncio.create_task(ensure_storage_retrying(influx, raw_retention=s.influx_raw_retention))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(setup), 10)
        await writer.start()
        try:
            bus = nats_bus(s, name=self.worker_id)
            if not await _connected_unless_stopped(bus, stop):
                _LOG.info("stopped before NATS could be reached (%s)", s.nats_urls)
                return
            async with bus:
                members, leases = await self._join(bus)
                self._leases = leases
                self._snapshots = await bus.snapshots(replicas=s.nats_replicas)
                self.downlink = downlink = NatsDownlink(bus)
                if self.checkin_store is not None:
                    self.checkin_relay = CheckInRelay(
                        store=self.checkin_store, commands=downlink, clock=_Clock().now_ms
                    )
                confirming = (
                    asyncio.create_task(
                        send_confirmations(
                            confirmations, downlink, interval_s=s.mqtt_confirm_interval_ms / 1000, stop=stop
                        ),
                        name="confirmations",
                    )
                    if confirmations is not None
                    else None
                )

                def start(lease: Lease) -> None:
                    # Until the restore replaces it, an empty engine raises the partition's life-safety alerts.
                    owned = _Owned(lease=lease, engine=self._new_engine(lease.partition))
                    owned.engine.sink = lambda alert: self._dispatch_live(owned, alert)
                    owned.task = asyncio.create_task(
                        self._consume(bus, owned, service_for, reader), name=f"partition-{lease.partition}"
                    )
                    self.owned[lease.partition] = owned

                _LOG.info("%s (worker %s, %d partitions)", READY_LINE, self.worker_id, s.partitions)
                self.ready.set()
                keep_alive = asyncio.create_task(self._keep_alive(members, leases, stop), name="keep-alive")
                snapshots = asyncio.create_task(self._snapshot_loop(stop), name="snapshots")
                # Let the workers starting together see each other before claiming (fewer hand-backs).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(2.0, s.lease_s / 2))
                ticks = asyncio.create_task(self._tick_loop(stop), name="ticks")
                notices = asyncio.create_task(self._notice_loop(stop), name="away-notices")
                follow_up = asyncio.create_task(self._service_loop(stop), name="alert-service")
                while not stop.is_set():
                    began = time.monotonic()
                    try:
                        live = await members.live()
                        self._live = sorted({*live, self.worker_id})
                        await self._rebalance(leases, live, start)
                        await self._retire_older_consumers(bus)
                    except Exception as exc:  # noqa: BLE001 - a node failing over; the lease deadlines fence us
                        _LOG.warning("rebalance failed (%s: %s)", type(exc).__name__, exc)
                    if (took := time.monotonic() - began) > s.lease_s / 2:
                        _LOG.warning("rebalance took %.1f s (NATS slow or failing over)", took)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.tick_s)
                await keep_alive
                await snapshots
                await ticks
                await notices
                await follow_up
                owned_now, self.owned = self.owned, {}
                await asyncio.gather(*(self._hand_back(p, o, leases) for p, o in owned_now.items()))
                if confirming is not None:
                    await confirming
                    if confirmations is not None:
                        await downlink.publish_many(confirmations.drain())  # the hand-back's last batches
                if self.checkin_relay is not None:
                    await self.checkin_relay.wait()
                await members.leave()
        finally:
            _LOG.info(
                "%s: %d readings processed, %d order violations; %d more consumed during restores reached detection"
                " through the history they replay",
                STOPPED_LINE,
                self.readings_processed,
                self.order_violations,
                self.readings_via_history,
            )
            if not await self.raiser.stored(timeout=SHUTDOWN_WAITS_FOR_RAISES_S):
                # The store is down: their readings are in InfluxDB and the snapshots were held back, so the
                # partitions' next owners raise them from the stored history.
                _LOG.error("stopping with %d alerts not stored; the next owners raise them from the stored readings",
                           len(self.raiser.unstored))  # fmt: skip
                self.raiser.cancel()
            await self.raiser.wait()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await cancel_and_wait(setup)
            await writer.close()
            await influx.aclose()
            deadletter.close()


def _seed_dedupe(dedupe: Deduplicator, engine: Engine, stored: Sequence[Reading]) -> None:
    """Remember the ``seq`` values a restored partition already holds, so their redelivered copies are dropped.

    Each device's last ``seq`` in the snapshot, then the readings InfluxDB stored since (arrival order). JetStream
    redelivers what the old owner stored but had not yet acknowledged; without this the new owner wrote it again and
    detection saw it twice (a second call-button page). A Z2M device's ``seq`` is its message's stream position
    (:func:`worker_z2m_adapter`), so its copies match here and its new readings never do.
    """
    for home in engine.homes.values():
        for device, state in home.devices.items():
            if state.last_seq != NEVER:
                dedupe.remember(home.site, device, state.last_seq)
    for r in stored:
        if r.seq is not None:
            dedupe.remember(r.site, r.device, r.seq)


def worker_z2m_adapter(directory: DeviceDirectory | None) -> Z2mAdapter:
    """The Zigbee2MQTT adapter of a partition worker: names its transport cannot carry are refused once.

    Its readings are numbered by their message's stream sequence (the partition source's ``RawMessage.mid``), not
    by a counter of its own that a new owner would start again at 1: the seeded take-over dedupe then drops exactly
    the copies of what the last owner stored (JetStream redelivers what it had not acknowledged) and nothing else.
    """
    return Z2mAdapter(directory=directory, name_problem=z2m_name_problem, stream_numbered=True)


async def _connected_unless_stopped(bus: NatsBus, stop: asyncio.Event) -> bool:
    """Connect ``bus``; False (and no connection) if ``stop`` is set first.

    nats-py retries an unreachable cluster for ever, so a worker started while NATS was down ignored SIGTERM until
    systemd killed it (``tests/test_operations.py``).
    """
    connecting = asyncio.ensure_future(bus.connect())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await cancel_and_wait(stopping)
    if connecting.done():
        connecting.result()
        return True
    await cancel_and_wait(connecting)
    await bus.close()
    return False


def nats_bus(settings: Settings, *, name: str) -> NatsBus:
    """A connection to the cluster in ``ELDERCARE_NATS_URLS`` as ``ELDERCARE_NATS_USER`` (if set)."""
    return NatsBus(
        servers=[u.strip() for u in settings.nats_urls.split(",") if u.strip()],
        name=name,
        user=settings.nats_user,
        password=settings.nats_password.get_secret_value(),
        tls_ca=settings.nats_ca,
    )


WORKER_SENDER_PREFIX: Final = "worker:"
"""A partition worker's sender id in the notification outbox is this plus its worker id."""


def worker_id_of(settings: Settings) -> str:
    """This process's worker id: ``ELDERCARE_WORKER_ID``, else ``{host}-{pid}`` (a new one at every start)."""
    return settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"


def worker_sender(worker_id: str) -> str:
    """The outbox sender id of a worker: its peers put back what it was sending once its heartbeat is gone."""
    return f"{WORKER_SENDER_PREFIX}{worker_id}"


def alert_store_sink(settings: Settings) -> tuple[AlertService, AlertSeen, Callable[[], None], AlertStore]:
    """The alert service over the store at ``ELDERCARE_DATABASE_URL`` (it stores and notifies the workers' alerts).

    Also returns the store's "already raised?" test for alerts found while catching up after a take-over, its
    close, and the store itself (the check-in relay records its steps there). Its outbox rows carry this worker's
    sender id (:func:`worker_sender`).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the default SQLite store lives there
    store = AlertStore(url=settings.database_url, migrate="new")
    service = AlertService(
        store=store,
        notifier=AppriseNotifier(),
        policies=settings.policy_book(),
        clock=lambda: time.time_ns() // 1_000_000,
        links=LinkSigner(secret=settings.link_secret.get_secret_value().encode(), base_url=settings.public_url),
        sender=worker_sender(worker_id_of(settings)),
    )

    def seen(alert: Alert) -> bool:
        return already_stored(store, alert)

    return service, seen, store.close, store


def split_snapshot(data: bytes, *, partitions: int) -> dict[int, bytes]:
    """Cut one engine snapshot (e.g. ``eldercare serve``'s ``detect/engine.msgpack``) into per-partition ones.

    The way from one process to the cluster without losing learned baselines: :func:`seed_snapshots` stores them.
    """
    try:
        snap = msgspec.msgpack.decode(data, type=EngineSnapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(str(exc)) from None
    homes: dict[int, list[HomeState]] = {}
    for home in snap.homes:
        homes.setdefault(partition_of(home.site, partitions), []).append(home)
    timers: dict[int, list[tuple[str, str, int]]] = {}
    for timer in snap.timers:
        timers.setdefault(partition_of(timer[0], partitions), []).append(timer)
    return {
        p: msgspec.msgpack.encode(
            EngineSnapshot(version=snap.version, now_ms=snap.now_ms, homes=hs, timers=timers.get(p, []))
        )
        for p, hs in homes.items()
    }


async def seed_snapshots(settings: Settings, data: bytes) -> int:
    """Store a one-process snapshot as the partitions' first snapshots (those without one); returns how many."""
    async with nats_bus(settings, name="seed") as bus:
        store = await bus.snapshots(replicas=settings.nats_replicas)
        seeded = 0
        for p, part in split_snapshot(data, partitions=settings.partitions).items():
            seeded += await store.seed(p, part)
        return seeded


def main() -> None:
    """Entry point of ``python -m eldercare.partition_worker``: settings from the environment, stop on SIGTERM."""
    configure_logging()
    private_umask()  # the SQLite store, dead letters, spool and snapshots hold personal data (as `eldercare` commands)
    settings = Settings()
    _LOG.info("escalation policies: %s", policies_in_force(settings))
    service, seen, close, store = alert_store_sink(settings)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await PartitionWorker(
            settings, alert_sink=service, alert_seen=seen, checkin_store=store, notifications=service
        ).run(stop=stop)

    try:
        asyncio.run(_run())
    finally:
        close()


if __name__ == "__main__":
    main()
